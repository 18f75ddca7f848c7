//! Deduplication rules (klozeo-docs.txt, "Deduplication"): how values are normalised and how
//! similar two names must be to count as the same company.

use serde::Serialize;

/// Names at least this similar (and sharing a phone) are the same lead.
pub const NAME_SIMILARITY_THRESHOLD: f64 = 0.80;
/// Most phone candidates examined per push, which bounds the work of tier 3.
pub const MAX_PHONE_CANDIDATES: u32 = 20;

/// Which tier matched, and how strongly: the explanation sent with a merge or hint.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct MatchInfo {
    /// `email`, `source_id`, `phone_name` or `name_city`.
    pub tier: &'static str,
    /// Name similarity, for `phone_name`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub similarity: Option<f64>,
}

/// E-mail as compared: trimmed and case-folded.
pub fn normalize_email(e: &str) -> Option<String> {
    let e = e.trim().to_lowercase();
    (!e.is_empty()).then_some(e)
}

/// Phone as compared: digits only, with a leading `+` kept as a marker.
pub fn normalize_phone(p: &str) -> Option<String> {
    let t = p.trim();
    let mut out = String::with_capacity(t.len());
    if t.starts_with('+') {
        out.push('+');
    }
    out.extend(t.chars().filter(char::is_ascii_digit));
    (out.trim_start_matches('+').len() >= 3).then_some(out)
}

/// Name as compared for similarity: lower-cased, punctuation dropped, spaces collapsed.
pub fn normalize_name(n: &str) -> String {
    let mut out = String::with_capacity(n.len());
    let mut space = false;
    for c in n.chars().flat_map(char::to_lowercase) {
        if c.is_alphanumeric() {
            if space && !out.is_empty() {
                out.push(' ');
            }
            space = false;
            out.push(c);
        } else if c.is_whitespace() || c == '-' || c == '_' || c == '/' || c == '&' {
            space = true;
        }
    }
    out
}

/// Name or city as compared for the name + city hint: trimmed and case-folded.
pub fn fold(s: &str) -> String {
    s.trim().to_lowercase()
}

/// The folded name and city ([`fold`]) of a lead stored as JSON, read without decoding the
/// rest of the lead; `None` without a city (or for a body that is not a lead). The name + city
/// tier matches leads on exactly this pair.
pub fn name_city_of(lead_json: &[u8]) -> Option<(String, String)> {
    #[derive(serde::Deserialize)]
    struct NameCity {
        name: String,
        city: Option<String>,
    }
    let lead = serde_json::from_slice::<NameCity>(lead_json).ok()?;
    Some((fold(&lead.name), fold(lead.city.as_deref()?)))
}

/// Similarity of two normalised names in `0.0..=1.0`: one minus the Levenshtein distance over
/// the longer length. Uses a fixed stack buffer for names up to 64 characters, so the common
/// case does not allocate.
pub fn similarity(a: &str, b: &str) -> f64 {
    if a == b {
        return 1.0;
    }
    let (a, b) = if a.chars().count() < b.chars().count() {
        (b, a)
    } else {
        (a, b)
    };
    let la = a.chars().count();
    let lb = b.chars().count();
    if lb == 0 {
        return 0.0;
    }
    let mut stack = [0usize; 65];
    let mut heap;
    let row: &mut [usize] = if lb < stack.len() {
        &mut stack[..=lb]
    } else {
        heap = vec![0usize; lb + 1];
        &mut heap
    };
    for (j, r) in row.iter_mut().enumerate() {
        *r = j;
    }
    for (i, ca) in a.chars().enumerate() {
        let mut prev_diag = row[0];
        row[0] = i + 1;
        for (j, cb) in b.chars().enumerate() {
            let cost = usize::from(ca != cb);
            let next = (row[j + 1] + 1).min(row[j] + 1).min(prev_diag + cost);
            prev_diag = row[j + 1];
            row[j + 1] = next;
        }
    }
    1.0 - row[lb] as f64 / la as f64
}

/// One tier-3 candidate: a lead sharing the phone, with its normalised name.
#[derive(Debug, Clone, PartialEq)]
pub struct PhoneCandidate {
    /// Lead id.
    pub id: String,
    /// Normalised name.
    pub name: String,
}

/// Picks the most similar candidate above the threshold (ties: the first, i.e. the oldest).
pub fn best_phone_match(name_norm: &str, candidates: &[PhoneCandidate]) -> Option<(usize, f64)> {
    let mut best: Option<(usize, f64)> = None;
    for (i, c) in candidates.iter().enumerate() {
        let s = similarity(name_norm, &c.name);
        if s > NAME_SIMILARITY_THRESHOLD && best.is_none_or(|(_, b)| s > b) {
            best = Some((i, s));
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_name_pairs() {
        let s = similarity(&normalize_name("Acme Corp"), &normalize_name("ACME Corp."));
        assert!(s > NAME_SIMILARITY_THRESHOLD, "{s}");
        let s = similarity(&normalize_name("Acme Corp"), &normalize_name("Zenith Labs"));
        assert!(s < NAME_SIMILARITY_THRESHOLD, "{s}");
        let s = similarity(&normalize_name("Acme Corp"), &normalize_name("Acme Corp"));
        assert_eq!(s, 1.0);
    }

    #[test]
    fn phones_keep_digits_and_the_plus_marker() {
        assert_eq!(
            normalize_phone(" +49 (30) 123-45 ").as_deref(),
            Some("+493012345")
        );
        assert_eq!(normalize_phone("030 12345").as_deref(), Some("03012345"));
        assert_ne!(normalize_phone("+4930"), normalize_phone("4930"));
        assert_eq!(normalize_phone("n/a"), None);
    }

    #[test]
    fn emails_fold_and_trim() {
        assert_eq!(
            normalize_email(" A@Acme.COM ").as_deref(),
            Some("a@acme.com")
        );
        assert_eq!(normalize_email("  "), None);
    }

    #[test]
    fn long_names_use_the_heap_path() {
        let a = "x".repeat(100);
        let b = format!("{}y", "x".repeat(99));
        assert!((similarity(&a, &b) - 0.99).abs() < 1e-9);
    }

    #[test]
    fn best_match_takes_the_most_similar_above_threshold() {
        let c = vec![
            PhoneCandidate {
                id: "a".into(),
                name: normalize_name("Zenith Labs"),
            },
            PhoneCandidate {
                id: "b".into(),
                name: normalize_name("ACME Corp."),
            },
        ];
        assert_eq!(
            best_phone_match(&normalize_name("Acme Corp"), &c).map(|(i, _)| i),
            Some(1)
        );
        assert_eq!(best_phone_match(&normalize_name("Other Co"), &c), None);
    }
}
