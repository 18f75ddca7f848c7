//! The filter language of `GET /leads` (and export and MCP): `logic.operator.field[.value]`.
//!
//! Parsing validates everything once (field, operator fit, numbers, radius) into a compact
//! [`Filter`]; evaluation is allocation-free on ASCII text and never panics.

use crate::domain::lead::{Lead, TextField, validate_attr_name};
use crate::error::{Error, Result};

/// Longest accepted filter parameter, in bytes; longer input is rejected before parsing.
pub const MAX_FILTER_LEN: usize = 2048;
/// Most filters in one request.
pub const MAX_FILTERS: usize = 50;
/// Mean Earth radius used by `within_radius`, in km.
pub const EARTH_RADIUS_KM: f64 = 6371.0088;

/// How a filter combines with the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Logic {
    /// Must match.
    And,
    /// At least one `or` filter must match (when there is any).
    Or,
}

/// Text fields that can be filtered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextRef {
    /// `name`
    Name,
    /// `source`
    Source,
    /// `status`
    Status,
    /// An optional text field.
    Opt(TextField),
}

/// Numeric fields that can be filtered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumRef {
    /// `rating`
    Rating,
    /// `review_count`
    ReviewCount,
    /// `score`
    Score,
    /// `latitude`
    Latitude,
    /// `longitude`
    Longitude,
    /// `created_at`
    CreatedAt,
    /// `updated_at`
    UpdatedAt,
    /// `last_interaction_at`
    LastInteractionAt,
}

impl NumRef {
    fn get(self, l: &Lead) -> Option<f64> {
        match self {
            NumRef::Rating => l.rating,
            NumRef::ReviewCount => l.review_count.map(f64::from),
            NumRef::Score => Some(l.score),
            NumRef::Latitude => l.latitude,
            NumRef::Longitude => l.longitude,
            NumRef::CreatedAt => Some(l.created_at as f64),
            NumRef::UpdatedAt => Some(l.updated_at as f64),
            NumRef::LastInteractionAt => Some(l.last_interaction_at as f64),
        }
    }
}

/// Text comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextOp {
    /// Equal (case-insensitive).
    Eq,
    /// Not equal.
    Neq,
    /// Contains.
    Contains,
    /// Does not contain.
    NotContains,
    /// Starts with.
    StartsWith,
    /// Ends with.
    EndsWith,
    /// Equal to one of a comma-separated list.
    In,
    /// Missing or empty.
    IsEmpty,
    /// Present and non-empty.
    IsNotEmpty,
}

/// Number comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumOp {
    /// `==`
    Eq,
    /// `!=`
    Neq,
    /// `>`
    Gt,
    /// `>=`
    Gte,
    /// `<`
    Lt,
    /// `<=`
    Lte,
}

impl NumOp {
    fn test(self, a: f64, b: f64) -> bool {
        match self {
            NumOp::Eq => a == b,
            NumOp::Neq => a != b,
            NumOp::Gt => a > b,
            NumOp::Gte => a >= b,
            NumOp::Lt => a < b,
            NumOp::Lte => a <= b,
        }
    }
}

/// Array operators (tags and list attributes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArrOp {
    /// Has the element.
    Contains,
    /// Lacks the element.
    NotContains,
    /// Has no elements.
    Empty,
    /// Has elements.
    NotEmpty,
}

/// A compiled predicate.
#[derive(Debug, Clone, PartialEq)]
pub enum Pred {
    /// On a text field; `needle` is lower-cased, `list` holds the `in` values.
    Text {
        /// Field.
        field: TextRef,
        /// Operator.
        op: TextOp,
        /// Lower-cased value.
        needle: String,
        /// Lower-cased `in` values.
        list: Vec<String>,
    },
    /// On a number field.
    Num {
        /// Field.
        field: NumRef,
        /// Operator.
        op: NumOp,
        /// Value.
        x: f64,
    },
    /// On tags.
    Tags {
        /// Operator.
        op: ArrOp,
        /// Lower-cased element.
        needle: String,
    },
    /// Great-circle distance from a point, inclusive.
    WithinRadius {
        /// Latitude in degrees.
        lat: f64,
        /// Longitude in degrees.
        lng: f64,
        /// Radius in km.
        km: f64,
    },
    /// Both coordinates present (`true`) or not (`false`).
    LocationSet(bool),
    /// On a custom attribute; behaviour follows the stored type.
    Attr {
        /// Attribute name.
        name: String,
        /// The operator as written.
        op: AttrOp,
        /// Lower-cased raw value.
        needle: String,
        /// The value as a number, when it parses as one.
        num: Option<f64>,
        /// `in` values.
        list: Vec<String>,
    },
    /// Free text: every word in one of the searched fields (see [`crate::domain::search`]).
    Search(crate::domain::search::TextQuery),
}

/// Operators accepted on `attr:<name>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttrOp {
    /// Text operator.
    Text(TextOp),
    /// Number operator other than eq/neq.
    Num(NumOp),
    /// Array operator.
    Arr(ArrOp),
}

/// One parsed filter.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    /// And / or.
    pub logic: Logic,
    /// What to test.
    pub pred: Pred,
}

fn parse_num(raw: &str, what: &str) -> Result<f64> {
    match raw.trim().parse::<f64>() {
        Ok(x) if x.is_finite() => Ok(x),
        _ => Err(Error::invalid(format!("{what}: '{raw}' is not a number"))),
    }
}

fn text_op(op: &str) -> Option<TextOp> {
    Some(match op {
        "eq" => TextOp::Eq,
        "neq" => TextOp::Neq,
        "contains" => TextOp::Contains,
        "not_contains" => TextOp::NotContains,
        "starts_with" => TextOp::StartsWith,
        "ends_with" => TextOp::EndsWith,
        "in" => TextOp::In,
        "is_empty" => TextOp::IsEmpty,
        "is_not_empty" | "not_empty" => TextOp::IsNotEmpty,
        _ => return None,
    })
}

fn num_op(op: &str) -> Option<NumOp> {
    Some(match op {
        "eq" => NumOp::Eq,
        "neq" => NumOp::Neq,
        "gt" => NumOp::Gt,
        "gte" => NumOp::Gte,
        "lt" => NumOp::Lt,
        "lte" => NumOp::Lte,
        _ => return None,
    })
}

fn arr_op(op: &str) -> Option<ArrOp> {
    Some(match op {
        "array_contains" => ArrOp::Contains,
        "array_not_contains" => ArrOp::NotContains,
        "array_empty" => ArrOp::Empty,
        "array_not_empty" => ArrOp::NotEmpty,
        _ => return None,
    })
}

const KNOWN_OPS: &[&str] = &[
    "eq",
    "neq",
    "contains",
    "not_contains",
    "starts_with",
    "ends_with",
    "in",
    "is_empty",
    "is_not_empty",
    "not_empty",
    "gt",
    "gte",
    "lt",
    "lte",
    "array_contains",
    "array_not_contains",
    "array_empty",
    "array_not_empty",
    "within_radius",
    "is_set",
    "is_not_set",
];

fn in_list(v: &str) -> Vec<String> {
    v.split(',')
        .map(|s| s.trim().to_lowercase())
        .filter(|s| !s.is_empty())
        .collect()
}

impl Filter {
    /// Parses one `filter` parameter value.
    pub fn parse(raw: &str) -> Result<Filter> {
        let shown: String = raw.chars().take(80).collect();
        let bad = |why: String| Error::invalid(format!("filter '{shown}': {why}"));
        if raw.len() > MAX_FILTER_LEN {
            return Err(bad(format!("longer than {MAX_FILTER_LEN} bytes")));
        }
        let mut parts = raw.splitn(4, '.');
        let (Some(logic), Some(op), Some(field)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("expected logic.operator.field[.value]".into()));
        };
        let value = parts.next().unwrap_or("");
        let logic = match logic {
            "and" => Logic::And,
            "or" => Logic::Or,
            other => return Err(bad(format!("unknown logic '{other}' (use and or or)"))),
        };
        if !KNOWN_OPS.contains(&op) {
            return Err(bad(format!("unknown operator '{op}'")));
        }
        let misfit = |kind: &str| {
            bad(format!(
                "operator '{op}' does not apply to {kind} field '{field}'"
            ))
        };
        let text = |f: TextRef| -> Result<Pred> {
            let top = text_op(op).ok_or_else(|| misfit("text"))?;
            Ok(Pred::Text {
                field: f,
                op: top,
                needle: value.to_lowercase(),
                list: if top == TextOp::In {
                    in_list(value)
                } else {
                    Vec::new()
                },
            })
        };
        let num = |f: NumRef| -> Result<Pred> {
            let nop = num_op(op).ok_or_else(|| misfit("number"))?;
            Ok(Pred::Num {
                field: f,
                op: nop,
                x: parse_num(value, "value").map_err(|e| bad(e.to_string()))?,
            })
        };
        let pred = match field {
            "name" => text(TextRef::Name)?,
            "source" => text(TextRef::Source)?,
            "status" => text(TextRef::Status)?,
            "rating" => num(NumRef::Rating)?,
            "review_count" => num(NumRef::ReviewCount)?,
            "score" => num(NumRef::Score)?,
            "latitude" => num(NumRef::Latitude)?,
            "longitude" => num(NumRef::Longitude)?,
            "created_at" => num(NumRef::CreatedAt)?,
            "updated_at" => num(NumRef::UpdatedAt)?,
            "last_interaction_at" => num(NumRef::LastInteractionAt)?,
            "tags" => Pred::Tags {
                op: arr_op(op).ok_or_else(|| misfit("array"))?,
                needle: value.trim().to_lowercase(),
            },
            "location" => match op {
                "is_set" => Pred::LocationSet(true),
                "is_not_set" => Pred::LocationSet(false),
                "within_radius" => {
                    let nums: Vec<&str> = value.split(',').collect();
                    let [lat, lng, km] = nums.as_slice() else {
                        return Err(bad("within_radius needs lat,lng,km".into()));
                    };
                    let lat = parse_num(lat, "latitude").map_err(|e| bad(e.to_string()))?;
                    let lng = parse_num(lng, "longitude").map_err(|e| bad(e.to_string()))?;
                    let km = parse_num(km, "radius").map_err(|e| bad(e.to_string()))?;
                    if !(-90.0..=90.0).contains(&lat)
                        || !(-180.0..=180.0).contains(&lng)
                        || km < 0.0
                    {
                        return Err(bad("within_radius needs a valid latitude, longitude and a non-negative radius".into()));
                    }
                    Pred::WithinRadius { lat, lng, km }
                }
                _ => return Err(misfit("location")),
            },
            f if f.starts_with("attr:") => {
                let name = &f[5..];
                validate_attr_name(name).map_err(|e| bad(e.to_string()))?;
                let aop = if let Some(a) = arr_op(op) {
                    AttrOp::Arr(a)
                } else if let Some(t) = text_op(op) {
                    AttrOp::Text(t)
                } else if let Some(n) = num_op(op) {
                    AttrOp::Num(n)
                } else {
                    return Err(misfit("attribute"));
                };
                let num = value.trim().parse::<f64>().ok().filter(|x| x.is_finite());
                if matches!(aop, AttrOp::Num(_)) && num.is_none() {
                    return Err(bad(format!("'{value}' is not a number")));
                }
                Pred::Attr {
                    name: name.to_string(),
                    op: aop,
                    needle: value.trim().to_lowercase(),
                    num,
                    list: in_list(value),
                }
            }
            other => match TextField::ALL.iter().find(|t| t.as_str() == other) {
                Some(t) => text(TextRef::Opt(*t))?,
                None => return Err(bad(format!("unknown field '{other}'"))),
            },
        };
        Ok(Filter { logic, pred })
    }

    /// Whether a lead satisfies this filter alone.
    pub fn test(&self, lead: &Lead) -> bool {
        match &self.pred {
            Pred::Text {
                field,
                op,
                needle,
                list,
            } => {
                let v = match field {
                    TextRef::Name => Some(lead.name.as_str()),
                    TextRef::Source => Some(lead.source.as_str()),
                    TextRef::Status => Some(lead.status.as_str()),
                    TextRef::Opt(f) => lead.text(*f),
                };
                text_test(v, *op, needle, list)
            }
            Pred::Num { field, op, x } => match field.get(lead) {
                Some(v) => op.test(v, *x),
                None => *op == NumOp::Neq,
            },
            Pred::Tags { op, needle } => {
                arr_test(lead.tags.iter().map(String::as_str), *op, needle)
            }
            Pred::LocationSet(want) => {
                (lead.latitude.is_some() && lead.longitude.is_some()) == *want
            }
            Pred::WithinRadius { lat, lng, km } => match (lead.latitude, lead.longitude) {
                (Some(a), Some(b)) => haversine_km(*lat, *lng, a, b) <= *km * (1.0 + 1e-12),
                _ => false,
            },
            Pred::Attr {
                name,
                op,
                needle,
                num,
                list,
            } => attr_test(lead, name, *op, needle, *num, list),
            Pred::Search(q) => q.matches(lead),
        }
    }
}

/// Great-circle distance in km on a sphere of [`EARTH_RADIUS_KM`].
pub fn haversine_km(lat1: f64, lng1: f64, lat2: f64, lng2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = p2 - p1;
    let dl = (lng2 - lng1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * a.sqrt().min(1.0).asin()
}

fn eq_ci(hay: &str, needle_lower: &str) -> bool {
    if hay.is_ascii() && needle_lower.is_ascii() {
        hay.eq_ignore_ascii_case(needle_lower)
    } else {
        hay.to_lowercase() == needle_lower
    }
}

fn find_ci(hay: &str, needle_lower: &str, mode: TextOp) -> bool {
    if hay.is_ascii() && needle_lower.is_ascii() {
        let (h, n) = (hay.as_bytes(), needle_lower.as_bytes());
        if n.len() > h.len() {
            return false;
        }
        return match mode {
            TextOp::StartsWith => h[..n.len()].eq_ignore_ascii_case(n),
            TextOp::EndsWith => h[h.len() - n.len()..].eq_ignore_ascii_case(n),
            _ => h.windows(n.len().max(1)).any(|w| w.eq_ignore_ascii_case(n)) || n.is_empty(),
        };
    }
    let lower = hay.to_lowercase();
    match mode {
        TextOp::StartsWith => lower.starts_with(needle_lower),
        TextOp::EndsWith => lower.ends_with(needle_lower),
        _ => lower.contains(needle_lower),
    }
}

fn text_test(v: Option<&str>, op: TextOp, needle: &str, list: &[String]) -> bool {
    let v = v.filter(|s| !s.is_empty());
    match (op, v) {
        (TextOp::IsEmpty, v) => v.is_none(),
        (TextOp::IsNotEmpty, v) => v.is_some(),
        (TextOp::Neq | TextOp::NotContains, None) => true,
        (_, None) => false,
        (TextOp::Eq, Some(s)) => eq_ci(s, needle),
        (TextOp::Neq, Some(s)) => !eq_ci(s, needle),
        (TextOp::Contains | TextOp::StartsWith | TextOp::EndsWith, Some(s)) => {
            find_ci(s, needle, op)
        }
        (TextOp::NotContains, Some(s)) => !find_ci(s, needle, TextOp::Contains),
        (TextOp::In, Some(s)) => list.iter().any(|n| eq_ci(s, n)),
    }
}

fn arr_test<'a>(mut items: impl Iterator<Item = &'a str> + Clone, op: ArrOp, needle: &str) -> bool {
    match op {
        ArrOp::Empty => items.next().is_none(),
        ArrOp::NotEmpty => items.next().is_some(),
        ArrOp::Contains => items.any(|t| eq_ci(t, needle)),
        ArrOp::NotContains => !items.any(|t| eq_ci(t, needle)),
    }
}

fn attr_test(
    lead: &Lead,
    name: &str,
    op: AttrOp,
    needle: &str,
    num: Option<f64>,
    list: &[String],
) -> bool {
    use serde_json::Value as V;
    let value = lead
        .attributes
        .iter()
        .find(|a| a.name == name)
        .map(|a| &a.value);
    let value = value.filter(|v| !v.is_null());
    let Some(value) = value else {
        // A lead without the attribute behaves as a missing field.
        return match op {
            AttrOp::Text(t) => text_test(None, t, needle, list),
            AttrOp::Num(n) => n == NumOp::Neq,
            AttrOp::Arr(a) => matches!(a, ArrOp::Empty | ArrOp::NotContains),
        };
    };
    match value {
        V::Number(n) => {
            let x = n.as_f64().unwrap_or(f64::NAN);
            match op {
                AttrOp::Num(o) => num.is_some_and(|y| o.test(x, y)),
                AttrOp::Text(TextOp::Eq) => num.is_some_and(|y| x == y),
                AttrOp::Text(TextOp::Neq) => num.is_none_or(|y| x != y),
                AttrOp::Text(TextOp::In) => {
                    list.iter().any(|s| s.parse::<f64>().is_ok_and(|y| x == y))
                }
                AttrOp::Text(TextOp::IsEmpty) => false,
                AttrOp::Text(TextOp::IsNotEmpty) => true,
                AttrOp::Text(t) => text_test(Some(&n.to_string()), t, needle, list),
                AttrOp::Arr(_) => false,
            }
        }
        V::String(s) => {
            let as_num = s.trim().parse::<f64>().ok().filter(|x| x.is_finite());
            match (op, as_num, num) {
                (AttrOp::Num(o), Some(x), Some(y)) => o.test(x, y),
                (AttrOp::Num(_), _, _) => false,
                (AttrOp::Text(TextOp::Eq), Some(x), Some(y)) => x == y || eq_ci(s, needle),
                (AttrOp::Text(TextOp::Neq), Some(x), Some(y)) => x != y && !eq_ci(s, needle),
                (AttrOp::Text(t), _, _) => text_test(Some(s), t, needle, list),
                (AttrOp::Arr(_), _, _) => false,
            }
        }
        V::Bool(b) => {
            let want = match needle {
                "true" | "1" => Some(true),
                "false" | "0" => Some(false),
                _ => None,
            };
            match op {
                AttrOp::Text(TextOp::Eq) => want == Some(*b),
                AttrOp::Text(TextOp::Neq) => want != Some(*b),
                AttrOp::Text(TextOp::IsEmpty) => false,
                AttrOp::Text(TextOp::IsNotEmpty) => true,
                _ => false,
            }
        }
        V::Array(items) => {
            let strs = items.iter().filter_map(V::as_str);
            match op {
                AttrOp::Arr(a) => arr_test(strs, a, needle),
                AttrOp::Text(TextOp::Eq | TextOp::Contains) => {
                    arr_test(strs, ArrOp::Contains, needle)
                }
                AttrOp::Text(TextOp::Neq | TextOp::NotContains) => {
                    arr_test(strs, ArrOp::NotContains, needle)
                }
                AttrOp::Text(TextOp::IsEmpty) => items.is_empty(),
                AttrOp::Text(TextOp::IsNotEmpty) => !items.is_empty(),
                AttrOp::Text(TextOp::In) => strs.clone().any(|t| list.iter().any(|n| eq_ci(t, n))),
                _ => false,
            }
        }
        V::Object(_) => match op {
            AttrOp::Text(TextOp::IsEmpty) => false,
            AttrOp::Text(TextOp::IsNotEmpty) => true,
            _ => false,
        },
        V::Null => false,
    }
}

/// A parsed set of filters with the and/or rule.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FilterSet {
    /// The filters, cheapest to evaluate first.
    pub filters: Vec<Filter>,
    /// The raw values, in order, for cursor fingerprints.
    pub raw: Vec<String>,
}

impl FilterSet {
    /// Parses every `filter` value.
    pub fn parse<S: AsRef<str>>(raw: &[S]) -> Result<FilterSet> {
        if raw.len() > MAX_FILTERS {
            return Err(Error::invalid(format!(
                "filter: at most {MAX_FILTERS} filters per request"
            )));
        }
        let mut filters = Vec::with_capacity(raw.len());
        for r in raw {
            filters.push(Filter::parse(r.as_ref())?);
        }
        // The result does not depend on evaluation order, so test the cheapest predicates
        // first: numbers live inline in the lead, text and attributes need a pointer chase.
        filters.sort_by_key(|f| match f.pred {
            Pred::Num { .. } | Pred::LocationSet(_) => 0,
            Pred::WithinRadius { .. } => 1,
            Pred::Text { .. } => 2,
            Pred::Tags { .. } => 3,
            Pred::Attr { .. } => 4,
            Pred::Search(_) => 5,
        });
        Ok(FilterSet {
            filters,
            raw: raw.iter().map(|s| s.as_ref().to_string()).collect(),
        })
    }

    /// Every `and` filter matches, and at least one `or` filter matches when there is any.
    pub fn matches(&self, lead: &Lead) -> bool {
        let mut any_or = false;
        let mut or_hit = false;
        for f in &self.filters {
            match f.logic {
                Logic::And => {
                    if !f.test(lead) {
                        return false;
                    }
                }
                Logic::Or => {
                    any_or = true;
                    if !or_hit && f.test(lead) {
                        or_hit = true;
                    }
                }
            }
        }
        !any_or || or_hit
    }

    /// Adds a free-text query as one more `and` condition. Its words join the raw values, so a
    /// cursor is only valid for the same query.
    pub fn with_query(mut self, q: crate::domain::search::TextQuery) -> FilterSet {
        if !q.is_empty() {
            self.raw.push(format!("query:{}", q.words.join(" ")));
            self.filters.push(Filter {
                logic: Logic::And,
                pred: Pred::Search(q),
            });
        }
        self
    }

    /// Whether there is no filter.
    pub fn is_empty(&self) -> bool {
        self.filters.is_empty()
    }

    /// The `and` predicates, for the query planner.
    pub fn and_preds(&self) -> impl Iterator<Item = &Pred> {
        self.filters
            .iter()
            .filter(|f| f.logic == Logic::And)
            .map(|f| &f.pred)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lead(v: serde_json::Value) -> Lead {
        let mut base = serde_json::json!({
            "id": "cl_1", "name": "Acme Corp", "source": "website", "description": null,
            "address": null, "city": "St. Louis, MO & co", "state": null, "country": "US",
            "postal_code": null, "latitude": 52.52, "longitude": 13.405, "phone": null,
            "email": "a@acme.com", "website": "", "rating": 4.0, "review_count": 12,
            "category": null, "tags": ["VIP", "b2b"], "source_id": null, "logo_url": null,
            "status": "new", "score": 40.0,
            "attributes": [
                {"id": "1", "name": "industry", "type": "text", "value": "Software"},
                {"id": "2", "name": "employees", "type": "number", "value": 500.0},
                {"id": "3", "name": "size", "type": "text", "value": "250"},
                {"id": "4", "name": "active", "type": "bool", "value": true},
                {"id": "5", "name": "langs", "type": "list", "value": ["en", "de"]}
            ],
            "created_at": 1, "updated_at": 1, "last_interaction_at": 1
        });
        for (k, val) in v.as_object().unwrap() {
            base[k] = val.clone();
        }
        serde_json::from_value(base).unwrap()
    }

    fn m(filters: &[&str], l: &Lead) -> bool {
        FilterSet::parse(filters).unwrap().matches(l)
    }

    #[test]
    fn splits_on_the_first_three_dots_only() {
        let l = lead(serde_json::json!({}));
        assert!(m(&["and.eq.city.St. Louis, MO & co"], &l));
        assert!(m(&["and.eq.email.A@ACME.com"], &l));
        assert!(m(&["and.within_radius.location.52.52,13.405,0"], &l));
    }

    #[test]
    fn text_operators_and_missing_fields() {
        let l = lead(serde_json::json!({}));
        assert!(m(&["and.contains.name.acme"], &l));
        assert!(m(&["and.starts_with.name.ACME"], &l));
        assert!(m(&["and.ends_with.name.corp"], &l));
        assert!(m(&["and.in.source.api,Website"], &l));
        assert!(m(&["and.not_contains.name.zenith"], &l));
        assert!(
            m(&["and.is_empty.website"], &l),
            "empty string counts as empty"
        );
        assert!(m(&["and.is_empty.phone"], &l));
        assert!(!m(&["and.eq.phone."], &l));
        assert!(m(&["and.neq.phone.123"], &l));
        assert!(m(&["and.not_contains.phone.1"], &l));
        assert!(!m(&["and.contains.phone.1"], &l));
        assert!(m(&["and.eq.status.NEW"], &l));
    }

    #[test]
    fn number_operators_parse_any_float_spelling() {
        let l = lead(serde_json::json!({"rating": 4.0}));
        for v in ["4", "4.0", "4e0", "0.4e1"] {
            assert!(m(&[&format!("and.eq.rating.{v}")], &l), "{v}");
        }
        assert!(m(&["and.gt.rating.-1e-07"], &l));
        assert!(m(&["and.gte.rating.0.0000001"], &l));
        let none = lead(serde_json::json!({"rating": null}));
        assert!(!m(&["and.lt.rating.5"], &none));
        assert!(m(&["and.neq.rating.5"], &none));
        assert!(Filter::parse("and.gt.rating.high").is_err());
        assert!(Filter::parse("and.gt.rating.inf").is_err());
    }

    #[test]
    fn tags_location_and_logic() {
        let l = lead(serde_json::json!({}));
        assert!(m(&["and.array_contains.tags.vip"], &l));
        assert!(m(&["and.array_not_contains.tags.cold"], &l));
        assert!(m(&["and.array_not_empty.tags"], &l));
        assert!(!m(&["and.array_empty.tags"], &l));
        assert!(m(&["and.is_set.location"], &l));
        assert!(
            m(&["and.within_radius.location.48.8566,2.3522,900"], &l),
            "Paris-Berlin ~878 km"
        );
        assert!(!m(&["and.within_radius.location.48.8566,2.3522,800"], &l));
        assert!(m(&["or.eq.city.Lyon", "or.eq.country.us"], &l));
        assert!(!m(&["or.eq.city.Lyon", "or.eq.country.fr"], &l));
        assert!(!m(&["and.eq.country.us", "or.eq.city.Lyon"], &l));
    }

    #[test]
    fn attributes_follow_their_stored_type() {
        let l = lead(serde_json::json!({}));
        assert!(m(&["and.eq.attr:industry.software"], &l));
        assert!(m(&["and.gte.attr:employees.100"], &l));
        assert!(m(&["and.eq.attr:employees.500"], &l));
        assert!(
            m(&["and.lt.attr:size.1000"], &l),
            "text that parses compares numerically"
        );
        assert!(m(&["and.eq.attr:active.true"], &l));
        assert!(m(&["and.neq.attr:active.false"], &l));
        assert!(m(&["and.array_contains.attr:langs.DE"], &l));
        assert!(m(&["and.eq.attr:langs.en"], &l));
        assert!(!m(&["and.eq.attr:missing.x"], &l));
        assert!(m(&["and.neq.attr:missing.x"], &l));
        assert!(m(&["and.is_empty.attr:missing"], &l));
    }

    #[test]
    fn errors_say_which_filter_and_why() {
        for (f, why) in [
            ("xor.eq.city.x", "logic"),
            ("and.like.city.x", "operator"),
            ("and.eq.colour.x", "field"),
            ("and.gt.city.3", "does not apply"),
            ("and.array_contains.city.x", "does not apply"),
            ("and.eq.tags.x", "does not apply"),
            ("and.within_radius.location.1,2", "lat,lng,km"),
            ("and.eq", "expected"),
            ("and.gt.attr:x.abc", "not a number"),
        ] {
            let e = Filter::parse(f).unwrap_err().to_string();
            assert!(e.contains(why) && e.contains("filter"), "{f}: {e}");
        }
        assert!(Filter::parse(&"a".repeat(5000)).is_err());
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Any input parses or fails with a 400; it never panics.
        #[test]
        fn parse_never_panics(s in "\\PC{0,300}") {
            let _ = Filter::parse(&s);
        }

        /// Well-formed clauses built from real tokens with arbitrary values never panic either,
        /// and whatever parses can be evaluated.
        #[test]
        fn structured_input_never_panics(
            logic in prop::sample::select(vec!["and", "or", "xor"]),
            op in prop::sample::select(KNOWN_OPS.to_vec()),
            field in prop::sample::select(vec!["name", "city", "rating", "tags", "location", "attr:x", "score", "status", "bogus"]),
            value in "\\PC{0,40}",
        ) {
            let raw = format!("{logic}.{op}.{field}.{value}");
            if let Ok(f) = Filter::parse(&raw) {
                let lead: Lead = serde_json::from_value(serde_json::json!({
                    "id": "cl_1", "name": "n", "source": "s", "description": null, "address": null,
                    "city": "Ünïcode", "state": null, "country": null, "postal_code": null,
                    "latitude": 1.0, "longitude": null, "phone": null, "email": null, "website": null,
                    "rating": 1.0, "review_count": null, "category": null, "tags": ["é"],
                    "source_id": null, "logo_url": null,
                    "attributes": [{"id": "1", "name": "x", "type": "list", "value": ["a"]}],
                    "created_at": 1, "updated_at": 1, "last_interaction_at": 1
                })).unwrap();
                let _ = f.test(&lead);
            }
        }
    }
}
