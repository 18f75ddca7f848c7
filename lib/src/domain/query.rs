//! Sorting of lead lists: which fields can be sorted on and how values compare.
//!
//! Text sorts case-insensitively, missing values sort last in both directions, and ties are broken
//! by id so the order is total (and a keyset cursor can resume after any lead).

use std::cmp::Ordering;

use crate::domain::lead::{Lead, TextField};
use crate::error::{Error, Result};

/// A field a list can be sorted by.
#[derive(Debug, Clone, PartialEq)]
pub enum SortField {
    /// `created_at` (the default).
    CreatedAt,
    /// `updated_at`.
    UpdatedAt,
    /// `last_interaction_at`.
    LastInteractionAt,
    /// `score`.
    Score,
    /// `rating`.
    Rating,
    /// `review_count`.
    ReviewCount,
    /// `latitude`.
    Latitude,
    /// `longitude`.
    Longitude,
    /// `name`.
    Name,
    /// `source`.
    Source,
    /// `status` (alphabetical by its wire value).
    Status,
    /// One of the optional text fields.
    Text(TextField),
    /// `attr:<name>`: numbers before text, each in its own order.
    Attr(String),
}

impl SortField {
    /// Parses a `sort_by` value.
    pub fn parse(s: &str) -> Result<SortField> {
        let t = s.trim();
        if let Some(name) = t.strip_prefix("attr:") {
            crate::domain::lead::validate_attr_name(name).map_err(|_| {
                Error::invalid(format!("sort_by: '{s}' names an invalid attribute"))
            })?;
            return Ok(SortField::Attr(name.to_string()));
        }
        Ok(match t {
            "" | "created_at" => SortField::CreatedAt,
            "updated_at" => SortField::UpdatedAt,
            "last_interaction_at" => SortField::LastInteractionAt,
            "score" => SortField::Score,
            "rating" => SortField::Rating,
            "review_count" => SortField::ReviewCount,
            "latitude" => SortField::Latitude,
            "longitude" => SortField::Longitude,
            "name" => SortField::Name,
            "source" => SortField::Source,
            "status" => SortField::Status,
            other => match TextField::ALL.iter().find(|f| f.as_str() == other) {
                Some(f) => SortField::Text(*f),
                None => {
                    return Err(Error::invalid(format!(
                        "sort_by: '{s}' is not a sortable field (use a lead field such as created_at, name, rating, score, or attr:<name>)"
                    )));
                }
            },
        })
    }

    /// The canonical spelling, used in cursor fingerprints.
    pub fn canonical(&self) -> String {
        match self {
            SortField::CreatedAt => "created_at".into(),
            SortField::UpdatedAt => "updated_at".into(),
            SortField::LastInteractionAt => "last_interaction_at".into(),
            SortField::Score => "score".into(),
            SortField::Rating => "rating".into(),
            SortField::ReviewCount => "review_count".into(),
            SortField::Latitude => "latitude".into(),
            SortField::Longitude => "longitude".into(),
            SortField::Name => "name".into(),
            SortField::Source => "source".into(),
            SortField::Status => "status".into(),
            SortField::Text(f) => f.as_str().into(),
            SortField::Attr(n) => format!("attr:{n}"),
        }
    }

    /// The value of this field on a lead, in comparable form.
    pub fn value(&self, lead: &Lead) -> SortValue {
        let num = |x: Option<f64>| x.map_or(SortValue::Missing, SortValue::Num);
        let text = |x: Option<&str>| x.map_or(SortValue::Missing, SortValue::text);
        match self {
            SortField::CreatedAt => SortValue::Num(lead.created_at as f64),
            SortField::UpdatedAt => SortValue::Num(lead.updated_at as f64),
            SortField::LastInteractionAt => SortValue::Num(lead.last_interaction_at as f64),
            SortField::Score => SortValue::Num(lead.score),
            SortField::Rating => num(lead.rating),
            SortField::ReviewCount => num(lead.review_count.map(f64::from)),
            SortField::Latitude => num(lead.latitude),
            SortField::Longitude => num(lead.longitude),
            SortField::Name => text(Some(&lead.name)),
            SortField::Source => text(Some(&lead.source)),
            SortField::Status => text(Some(lead.status.as_str())),
            SortField::Text(f) => text(lead.text(*f)),
            SortField::Attr(name) => match lead.attributes.iter().find(|a| &a.name == name) {
                None => SortValue::Missing,
                Some(a) => match &a.value {
                    serde_json::Value::Number(n) => num(n.as_f64()),
                    serde_json::Value::String(s) => match s.trim().parse::<f64>() {
                        Ok(x) if x.is_finite() => SortValue::Num(x),
                        _ => SortValue::text(s),
                    },
                    serde_json::Value::Bool(b) => SortValue::Num(if *b { 1.0 } else { 0.0 }),
                    serde_json::Value::Null => SortValue::Missing,
                    other => SortValue::text(&other.to_string()),
                },
            },
        }
    }
}

/// Ascending or descending.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortOrder {
    /// Smallest first (the default).
    #[default]
    Asc,
    /// Largest first.
    Desc,
}

impl SortOrder {
    /// Parses `ASC`/`DESC` in any case; empty means ASC.
    pub fn parse(s: &str) -> Result<SortOrder> {
        match s.trim().to_ascii_lowercase().as_str() {
            "" | "asc" => Ok(SortOrder::Asc),
            "desc" => Ok(SortOrder::Desc),
            _ => Err(Error::invalid(format!(
                "sort_order: '{s}' must be ASC or DESC"
            ))),
        }
    }
}

/// A sort specification.
#[derive(Debug, Clone, PartialEq)]
pub struct Sort {
    /// The field.
    pub field: SortField,
    /// The direction.
    pub order: SortOrder,
}

impl Default for Sort {
    fn default() -> Self {
        Sort {
            field: SortField::CreatedAt,
            order: SortOrder::Asc,
        }
    }
}

/// A comparable field value; `Missing` sorts after everything in both directions.
#[derive(Debug, Clone, PartialEq)]
pub enum SortValue {
    /// A number.
    Num(f64),
    /// Case-folded text.
    Text(String),
    /// No value.
    Missing,
}

/// How many bytes of case-folded text take part in sorting. Texts that agree on their first
/// `SORT_TEXT_BYTES` bytes sort as equal (ties break by id), which lets every store hold the
/// sort value in a bounded index key (DynamoDB sort keys hold at most 1,024 bytes).
pub const SORT_TEXT_BYTES: usize = 400;

impl SortValue {
    /// The sort value of a text: case-folded and cut to [`SORT_TEXT_BYTES`] at a character
    /// boundary.
    pub fn text(s: &str) -> SortValue {
        let mut folded = s.to_lowercase();
        if folded.len() > SORT_TEXT_BYTES {
            let mut cut = SORT_TEXT_BYTES;
            while !folded.is_char_boundary(cut) {
                cut -= 1;
            }
            folded.truncate(cut);
        }
        SortValue::Text(folded)
    }

    fn rank(&self) -> u8 {
        match self {
            SortValue::Num(_) => 0,
            SortValue::Text(_) => 1,
            SortValue::Missing => 2,
        }
    }

    /// Encodes the value for a cursor.
    pub fn encode(&self) -> String {
        match self {
            SortValue::Num(x) => format!("n{x:e}"),
            SortValue::Text(s) => format!("t{s}"),
            SortValue::Missing => "m".into(),
        }
    }

    /// Decodes a cursor value.
    pub fn decode(s: &str) -> Option<SortValue> {
        match s.split_at_checked(1)? {
            ("n", x) => x.parse().ok().map(SortValue::Num),
            ("t", x) => Some(SortValue::Text(x.to_string())),
            ("m", "") => Some(SortValue::Missing),
            _ => None,
        }
    }
}

/// Compares two (value, id) pairs in list order for `order`.
pub fn compare(a: (&SortValue, &str), b: (&SortValue, &str), order: SortOrder) -> Ordering {
    let (va, ia) = a;
    let (vb, ib) = b;
    // Missing values go last in both directions; among them ids keep the direction.
    let by_presence = (va.rank() == 2).cmp(&(vb.rank() == 2));
    if by_presence != Ordering::Equal {
        return by_presence;
    }
    let natural = match (va, vb) {
        (SortValue::Num(x), SortValue::Num(y)) => x.total_cmp(y),
        (SortValue::Text(x), SortValue::Text(y)) => x.cmp(y),
        _ => va.rank().cmp(&vb.rank()),
    }
    .then_with(|| ia.cmp(ib));
    match order {
        SortOrder::Asc => natural,
        SortOrder::Desc => natural.reverse(),
    }
}

/// Selects one page of an in-memory candidate set: the leads that match `filters`, come after
/// `after` in `sort` order, limited to `limit + 1` so the caller can tell whether more follow.
/// Returns indexes into `leads`, in page order. Runs in O(n) plus O(limit log limit).
pub fn select_page(
    leads: &[Lead],
    filters: &crate::domain::filter::FilterSet,
    sort: &Sort,
    after: Option<(&SortValue, &str)>,
    limit: usize,
) -> Vec<usize> {
    let mut rows: Vec<(SortValue, usize)> = Vec::new();
    for (i, lead) in leads.iter().enumerate() {
        if !filters.matches(lead) {
            continue;
        }
        let v = sort.field.value(lead);
        if let Some((av, aid)) = after
            && compare((&v, &lead.id), (av, aid), sort.order) != Ordering::Greater
        {
            continue;
        }
        rows.push((v, i));
    }
    let cmp = |a: &(SortValue, usize), b: &(SortValue, usize)| {
        compare((&a.0, &leads[a.1].id), (&b.0, &leads[b.1].id), sort.order)
    };
    let take = (limit + 1).min(rows.len());
    if take < rows.len() {
        rows.select_nth_unstable_by(take, cmp);
        rows.truncate(take);
    }
    rows.sort_by(cmp);
    rows.into_iter().map(|(_, i)| i).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_sorts_last_both_ways_and_ids_break_ties() {
        let one = SortValue::Num(1.0);
        let two = SortValue::Num(2.0);
        let m = SortValue::Missing;
        for order in [SortOrder::Asc, SortOrder::Desc] {
            assert_eq!(compare((&one, "a"), (&m, "a"), order), Ordering::Less);
            assert_eq!(compare((&m, "a"), (&two, "a"), order), Ordering::Greater);
        }
        assert_eq!(
            compare((&one, "a"), (&two, "a"), SortOrder::Desc),
            Ordering::Greater
        );
        assert_eq!(
            compare((&one, "a"), (&one, "b"), SortOrder::Asc),
            Ordering::Less
        );
        assert_eq!(
            compare((&one, "a"), (&one, "b"), SortOrder::Desc),
            Ordering::Greater
        );
    }

    #[test]
    fn sort_values_round_trip_through_cursor_encoding() {
        for v in [
            SortValue::Num(-1e-7),
            SortValue::Num(4.5),
            SortValue::Text("a.b#c".into()),
            SortValue::Missing,
        ] {
            assert_eq!(SortValue::decode(&v.encode()), Some(v));
        }
    }

    #[test]
    fn parse_accepts_fields_and_rejects_unknown() {
        assert_eq!(
            SortField::parse("attr:employees").unwrap(),
            SortField::Attr("employees".into())
        );
        assert_eq!(
            SortField::parse("city").unwrap(),
            SortField::Text(TextField::City)
        );
        assert!(SortField::parse("bogus").is_err());
        assert_eq!(SortOrder::parse("desc").unwrap(), SortOrder::Desc);
        assert!(SortOrder::parse("down").is_err());
    }
}
