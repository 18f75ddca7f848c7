//! Leads as rows of a table: the column order of CSV and XLSX exports, each cell's typed value,
//! spreadsheet formula neutralising, and the reverse mapping of a CSV header to a lead field
//! (imports). Pure: the encoders in `services::export` and the importer build on it.

use std::collections::BTreeSet;

use crate::domain::lead::{AttrType, Lead};

/// The fixed columns of an exported table, in order; one `attr:<name>` column per attribute
/// name present in the export follows them, sorted by name.
pub const FIXED_COLUMNS: [&str; 25] = [
    "id",
    "name",
    "source",
    "status",
    "score",
    "email",
    "phone",
    "website",
    "description",
    "address",
    "city",
    "state",
    "country",
    "postal_code",
    "latitude",
    "longitude",
    "rating",
    "review_count",
    "category",
    "tags",
    "source_id",
    "logo_url",
    "created_at",
    "updated_at",
    "last_interaction_at",
];

/// Prefix of an attribute column's header.
pub const ATTR_PREFIX: &str = "attr:";

/// How tags share one cell: joined with this, split on `,` on import.
pub const TAG_SEPARATOR: &str = ", ";

/// One cell of an exported row, typed so XLSX can write numbers as numbers and timestamps as
/// dates; CSV renders each as text.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell<'a> {
    /// No value.
    Empty,
    /// Text, written as a string (never a formula).
    Text(std::borrow::Cow<'a, str>),
    /// A number.
    Number(f64),
    /// A boolean.
    Bool(bool),
    /// Unix seconds, shown as a UTC date and time.
    Time(i64),
}

/// The column layout of one export: the fixed columns and the attribute names found in it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Columns {
    /// Attribute names, sorted, each becoming an `attr:<name>` column.
    pub attributes: Vec<String>,
}

impl Columns {
    /// The layout for the given attribute names.
    pub fn new(names: BTreeSet<String>) -> Self {
        Columns {
            attributes: names.into_iter().collect(),
        }
    }

    /// Every header, in order.
    pub fn headers(&self) -> Vec<String> {
        FIXED_COLUMNS
            .iter()
            .map(|c| c.to_string())
            .chain(self.attributes.iter().map(|a| format!("{ATTR_PREFIX}{a}")))
            .collect()
    }

    /// The cells of `lead`, one per header, in order.
    pub fn row<'a>(&self, lead: &'a Lead, out: &mut Vec<Cell<'a>>) {
        out.clear();
        let text = |s: &'a Option<String>| match s {
            Some(s) => Cell::Text(s.as_str().into()),
            None => Cell::Empty,
        };
        let num = |x: Option<f64>| x.map_or(Cell::Empty, Cell::Number);
        out.push(Cell::Text(lead.id.as_str().into()));
        out.push(Cell::Text(lead.name.as_str().into()));
        out.push(Cell::Text(lead.source.as_str().into()));
        out.push(Cell::Text(lead.status.as_str().into()));
        out.push(Cell::Number(lead.score));
        out.push(text(&lead.email));
        out.push(text(&lead.phone));
        out.push(text(&lead.website));
        out.push(text(&lead.description));
        out.push(text(&lead.address));
        out.push(text(&lead.city));
        out.push(text(&lead.state));
        out.push(text(&lead.country));
        out.push(text(&lead.postal_code));
        out.push(num(lead.latitude));
        out.push(num(lead.longitude));
        out.push(num(lead.rating));
        out.push(num(lead.review_count.map(f64::from)));
        out.push(text(&lead.category));
        out.push(if lead.tags.is_empty() {
            Cell::Empty
        } else {
            Cell::Text(lead.tags.join(TAG_SEPARATOR).into())
        });
        out.push(text(&lead.source_id));
        out.push(text(&lead.logo_url));
        out.push(Cell::Time(lead.created_at));
        out.push(Cell::Time(lead.updated_at));
        out.push(Cell::Time(lead.last_interaction_at));
        for name in &self.attributes {
            let cell = match lead.attributes.iter().find(|a| &a.name == name) {
                None => Cell::Empty,
                Some(a) => match (&a.ty, &a.value) {
                    (_, serde_json::Value::Null) => Cell::Empty,
                    (AttrType::Number, serde_json::Value::Number(n)) => {
                        n.as_f64().map_or(Cell::Empty, Cell::Number)
                    }
                    (AttrType::Bool, serde_json::Value::Bool(b)) => Cell::Bool(*b),
                    (_, serde_json::Value::String(s)) => Cell::Text(s.as_str().into()),
                    // Lists and objects keep their JSON text, which an import reads back.
                    (_, v) => Cell::Text(v.to_string().into()),
                },
            };
            out.push(cell);
        }
    }
}

/// Whether a spreadsheet would run `s` as a formula (or could be tricked into it): it starts
/// with `=`, `+`, `-` or `@`, or with a tab or carriage return that some applications strip
/// before looking (OWASP's CSV injection guidance).
pub fn is_formula_like(s: &str) -> bool {
    matches!(
        s.as_bytes().first(),
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r')
    )
}

/// Neutralises a text cell for CSV: a formula-like value gets a leading `'`, which spreadsheets
/// show as text and hide. [`restore_text`] undoes it on import.
pub fn neutralise(s: &str) -> std::borrow::Cow<'_, str> {
    if is_formula_like(s) {
        format!("'{s}").into()
    } else {
        s.into()
    }
}

/// Undoes [`neutralise`]: a `'` followed by a formula-like value is dropped.
pub fn restore_text(s: &str) -> &str {
    match s.strip_prefix('\'') {
        Some(rest) if is_formula_like(rest) => rest,
        _ => s,
    }
}

/// Unix seconds as an RFC 3339 UTC timestamp, e.g. `2026-11-30T22:30:00Z`.
pub fn rfc3339(secs: i64) -> String {
    let mut s = String::with_capacity(20);
    push_rfc3339(secs, &mut s);
    s
}

/// Appends [`rfc3339`]'s text of `secs` to `out`. Exports write three timestamps per row, so
/// this formats the digits by hand instead of going through `format!`.
pub fn push_rfc3339(secs: i64, out: &mut String) {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    if !(0..=9999).contains(&y) {
        // Outside four-digit years the fixed layout does not fit; rare enough for `format!`.
        use std::fmt::Write as _;
        let _ = write!(
            out,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
            rem / 3600,
            rem % 3600 / 60,
            rem % 60
        );
        return;
    }
    let two = |out: &mut String, v: u32| {
        out.push(char::from(b'0' + (v / 10) as u8));
        out.push(char::from(b'0' + (v % 10) as u8));
    };
    let y = y as u32;
    two(out, y / 100);
    two(out, y % 100);
    out.push('-');
    two(out, m);
    out.push('-');
    two(out, d);
    out.push('T');
    let rem = rem as u32;
    two(out, rem / 3600);
    out.push(':');
    two(out, rem % 3600 / 60);
    out.push(':');
    two(out, rem % 60);
    out.push('Z');
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day) (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// What a CSV header names on import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportColumn {
    /// A lead field the API accepts on create (the name as in `POST /leads`).
    Field(&'static str),
    /// A read-only column of an export (`id`, `score`, timestamps): ignored.
    Ignored,
    /// A custom attribute: `attr:<name>`, or any header that is not a lead field.
    Attribute(String),
}

/// The lead fields an import can set, as `POST /leads` names them.
const WRITABLE: [&str; 21] = [
    "name",
    "source",
    "status",
    "email",
    "phone",
    "website",
    "description",
    "address",
    "city",
    "state",
    "country",
    "postal_code",
    "latitude",
    "longitude",
    "rating",
    "review_count",
    "category",
    "tags",
    "source_id",
    "logo_url",
    "attributes",
];

/// Maps a CSV header to what it sets: lead fields by name (case and spaces ignored, so
/// `Postal Code` is `postal_code`), `attr:<name>` and every other header to an attribute.
pub fn import_column(header: &str) -> ImportColumn {
    let h = header.trim();
    if let Some(name) = h.strip_prefix(ATTR_PREFIX) {
        return ImportColumn::Attribute(name.trim().to_string());
    }
    let norm: String = h
        .chars()
        .map(|c| match c {
            ' ' | '-' => '_',
            c => c.to_ascii_lowercase(),
        })
        .collect();
    if let Some(f) = WRITABLE.iter().find(|f| **f == norm && **f != "attributes") {
        return ImportColumn::Field(f);
    }
    if matches!(
        norm.as_str(),
        "id" | "score" | "created_at" | "updated_at" | "last_interaction_at"
    ) {
        return ImportColumn::Ignored;
    }
    ImportColumn::Attribute(h.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_like_values_are_neutralised_and_restored() {
        for s in ["=1+1", "+49 30", "-2", "@SUM(A1)", "\tx", "\rx"] {
            let n = neutralise(s);
            assert_eq!(n, format!("'{s}"));
            assert_eq!(restore_text(&n), s);
        }
        assert_eq!(neutralise("Acme"), "Acme");
        assert_eq!(restore_text("'quoted"), "'quoted");
    }

    #[test]
    fn timestamps_render_as_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_703_520_000), "2023-12-25T16:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59Z");
        // Past four-digit years the layout widens instead of wrapping.
        assert_eq!(rfc3339(253_402_300_800), "10000-01-01T00:00:00Z");
    }

    #[test]
    fn headers_map_to_fields_and_attributes() {
        assert_eq!(
            import_column("Postal Code"),
            ImportColumn::Field("postal_code")
        );
        assert_eq!(import_column("EMAIL"), ImportColumn::Field("email"));
        assert_eq!(import_column("created_at"), ImportColumn::Ignored);
        assert_eq!(
            import_column("attr:employees"),
            ImportColumn::Attribute("employees".into())
        );
        assert_eq!(
            import_column("industry"),
            ImportColumn::Attribute("industry".into())
        );
    }
}
