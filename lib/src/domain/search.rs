//! Free-text search over leads (the `query` of the MCP `list_leads` tool).
//!
//! A query is split into words; a lead matches when **every** remaining word appears in its
//! name, category, city, description, email or one of its tags. Matching is a
//! case-insensitive substring test after folding common Latin accents, so `cafe` finds
//! `Café` and `paris` finds `Paris, France`.
//!
//! Two decisions make natural phrasings work ("restaurants in Paris"):
//! - English stop words (`in`, `the`, `of`, `near`, ...) are dropped: they say how the words
//!   relate, not what to find, and no lead field is required to contain them.
//! - Each word is reduced to a light stem (plural `-ies` → `-y`, `-es` after s/x/z/ch/sh,
//!   and a final `-s` except `-ss`), so `restaurants` finds `Restaurant` and `companies` finds
//!   `Company`. Because matching is by substring, a stem never loses matches its full word had.
//!
//! A query of stop words only constrains nothing. No ranking: the list keeps its sort.

use crate::domain::lead::{Lead, TextField};
use crate::error::{Error, Result};

/// Longest accepted query, in characters.
pub const MAX_QUERY_LEN: usize = 500;
/// Most words one query may keep after stop words are dropped.
pub const MAX_QUERY_WORDS: usize = 20;

/// Words dropped from queries. Kept short on purpose: only words that never carry the
/// subject of a lead search.
const STOP_WORDS: &[&str] = &[
    "a", "an", "and", "any", "are", "as", "at", "by", "for", "from", "in", "into", "is", "near",
    "of", "on", "or", "the", "to", "with", "within",
];

/// A parsed free-text query: the stems every matching lead must contain.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TextQuery {
    /// Lower-cased, accent-folded stems.
    pub words: Vec<String>,
}

/// Lower-cases and folds the common Latin accents, so `É` and `e` compare equal.
pub fn fold(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars().flat_map(char::to_lowercase) {
        let f = match c {
            'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' => 'a',
            'ç' => 'c',
            'è' | 'é' | 'ê' | 'ë' => 'e',
            'ì' | 'í' | 'î' | 'ï' => 'i',
            'ñ' => 'n',
            'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' => 'o',
            'ù' | 'ú' | 'û' | 'ü' => 'u',
            'ý' | 'ÿ' => 'y',
            'ß' => {
                out.push_str("ss");
                continue;
            }
            other => other,
        };
        out.push(f);
    }
    out
}

/// The light stem of a folded word; see the module documentation.
pub fn stem(word: &str) -> String {
    let n = word.chars().count();
    if n > 4 && word.ends_with("ies") {
        return format!("{}y", &word[..word.len() - 3]);
    }
    if n > 4
        && word.ends_with("es")
        && ["ses", "xes", "zes", "ches", "shes"]
            .iter()
            .any(|s| word.ends_with(s))
    {
        return word[..word.len() - 2].to_string();
    }
    if n > 3 && word.ends_with('s') && !word.ends_with("ss") {
        return word[..word.len() - 1].to_string();
    }
    word.to_string()
}

impl TextQuery {
    /// Parses a query; see the module documentation for what a word is.
    pub fn parse(q: &str) -> Result<TextQuery> {
        if q.chars().count() > MAX_QUERY_LEN {
            return Err(Error::invalid(format!(
                "query: longer than {MAX_QUERY_LEN} characters"
            )));
        }
        let folded = fold(q);
        let mut words: Vec<String> = Vec::new();
        // Words are runs of letters and digits; `@`, `.`, `-` and `_` stay inside a word so
        // an e-mail address or a domain is searched as one.
        for raw in folded.split(|c: char| !(c.is_alphanumeric() || "@.-_'".contains(c))) {
            let w = raw.trim_matches(|c: char| !c.is_alphanumeric());
            let w = w.strip_suffix("'s").unwrap_or(w);
            if w.is_empty() || STOP_WORDS.contains(&w) {
                continue;
            }
            let s = stem(w);
            if !words.contains(&s) {
                words.push(s);
            }
        }
        if words.len() > MAX_QUERY_WORDS {
            return Err(Error::invalid(format!(
                "query: more than {MAX_QUERY_WORDS} words"
            )));
        }
        Ok(TextQuery { words })
    }

    /// Whether the query constrains nothing.
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// Whether every word appears in one of the searched fields of `lead`.
    pub fn matches(&self, lead: &Lead) -> bool {
        if self.words.is_empty() {
            return true;
        }
        let mut hay = fold(&lead.name);
        for f in [
            TextField::Category,
            TextField::City,
            TextField::Description,
            TextField::Email,
        ] {
            if let Some(v) = lead.text(f) {
                hay.push('\n');
                hay.push_str(&fold(v));
            }
        }
        for t in &lead.tags {
            hay.push('\n');
            hay.push_str(&fold(t));
        }
        self.words.iter().all(|w| hay.contains(w.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lead(name: &str, category: Option<&str>, city: Option<&str>, tags: &[&str]) -> Lead {
        let mut l = Lead {
            name: name.into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            ..Default::default()
        };
        *l.text_mut(TextField::Category) = category.map(str::to_string);
        *l.text_mut(TextField::City) = city.map(str::to_string);
        l
    }

    #[test]
    fn restaurants_in_paris_finds_paris_restaurants_only() {
        let q = TextQuery::parse("restaurants in Paris").unwrap();
        assert_eq!(q.words, vec!["restaurant", "pari"]);
        assert!(q.matches(&lead("Le Bistro", Some("Restaurant"), Some("Paris"), &[])));
        assert!(!q.matches(&lead("Le Bistro", Some("Restaurant"), Some("Lyon"), &[])));
        assert!(!q.matches(&lead("Paris Bakery", Some("Bakery"), Some("Paris"), &[])));
        // A tag counts as much as the category.
        assert!(q.matches(&lead("Chez Nous", None, Some("Paris"), &["restaurants"])));
    }

    #[test]
    fn accents_case_and_plurals_fold() {
        let q = TextQuery::parse("CAFES Montréal").unwrap();
        assert!(q.matches(&lead("Café Olimpico", None, Some("Montreal"), &[])));
        let q = TextQuery::parse("companies").unwrap();
        assert!(q.matches(&lead("Acme Company", None, None, &[])));
        let q = TextQuery::parse("boxes").unwrap();
        assert_eq!(q.words, vec!["box"]);
        let q = TextQuery::parse("business").unwrap();
        assert_eq!(q.words, vec!["business"]);
    }

    #[test]
    fn stop_words_only_and_limits() {
        assert!(TextQuery::parse("in the of").unwrap().is_empty());
        assert!(TextQuery::parse(&"x".repeat(501)).is_err());
        let many: Vec<String> = (0..21).map(|i| format!("w{i}")).collect();
        assert!(TextQuery::parse(&many.join(" ")).is_err());
        let q = TextQuery::parse("a@acme.com").unwrap();
        assert_eq!(q.words, vec!["a@acme.com"]);
    }
}
