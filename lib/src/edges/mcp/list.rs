//! `list_leads`: structured filters (or REST filter strings), a free-text query, sorting,
//! pagination and a field projection, translated into the same [`ListRequest`] that
//! `GET /leads` builds.

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

use crate::domain::filter::FilterSet;
use crate::domain::lead::{Lead, TextField};
use crate::domain::query::{Sort, SortField, SortOrder};
use crate::domain::search::TextQuery;
use crate::edges::wire::{ExportLinkResponse, ListResponse};
use crate::error::{Error, Result};
use crate::services::export::{ExportRequest, Format};
use crate::services::leads::{DEFAULT_LIMIT, ListRequest, MAX_LIMIT};

/// `list_leads` arguments.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
pub struct ListLeads {
    /// Conditions; and-ed, or any `or` one.
    #[serde(default)]
    pub filters: Vec<FilterArg>,
    /// Words all found in name, city, tags...
    #[serde(default)]
    pub query: Option<String>,
    /// Field to sort by (default created_at).
    #[serde(default)]
    #[schemars(schema_with = "sort_schema")]
    pub sort: Option<String>,
    /// ASC or DESC (default ASC).
    #[serde(default)]
    pub sort_order: Option<SortDirection>,
    /// Page size, 1-1000 (default 50).
    #[serde(default)]
    #[schemars(range(min = 1, max = 1000))]
    pub limit: Option<u32>,
    /// next_cursor of the previous page.
    #[serde(default)]
    pub cursor: Option<String>,
    /// Only these lead fields (id always).
    #[serde(default)]
    #[schemars(schema_with = "fields_schema")]
    pub fields: Option<Vec<String>>,
    /// A file of all matches instead of a page.
    #[serde(default)]
    pub format: Option<FileFormat>,
}

/// The file `format` of a `list_leads` export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum FileFormat {
    /// UTF-8 CSV with a header row.
    Csv,
    /// A JSON array of leads.
    Json,
    /// An Excel workbook.
    Xlsx,
}

impl From<FileFormat> for Format {
    fn from(f: FileFormat) -> Format {
        match f {
            FileFormat::Csv => Format::Csv,
            FileFormat::Json => Format::Json,
            FileFormat::Xlsx => Format::Xlsx,
        }
    }
}

/// What `list_leads` answers: a page of leads, or, with `format`, a link to a file of all of
/// them (the same answer as `GET /leads/export?delivery=url`).
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum ListLeadsOutput {
    /// A page.
    Page(ListResponse<Lead>),
    /// A file.
    File(ExportLinkResponse),
}

/// Sort direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
pub enum SortDirection {
    /// Smallest first.
    #[serde(alias = "asc")]
    ASC,
    /// Largest first.
    #[serde(alias = "desc")]
    DESC,
}

/// One filter: a structured condition or a REST filter string.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum FilterArg {
    /// A structured condition.
    Structured(StructuredFilter),
    /// `logic.operator.field[.value]`, e.g. `and.eq.city.Paris`.
    Raw(String),
}

/// A structured condition.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StructuredFilter {
    /// Lead field, location, or attr:<name>.
    #[schemars(schema_with = "filter_field_schema")]
    pub field: String,
    /// Comparison.
    pub operator: Operator,
    /// Value; a list for in and within_radius.
    #[serde(default)]
    pub value: Option<FilterValue>,
    /// and (default) or or.
    #[serde(default)]
    pub logic: Option<LogicArg>,
}

/// How a condition combines with the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LogicArg {
    /// Must match.
    And,
    /// At least one `or` condition must match.
    Or,
}

/// A filter value.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum FilterValue {
    /// Text.
    Text(String),
    /// Number.
    Number(f64),
    /// Boolean.
    Bool(bool),
    /// Several values (`in`, `within_radius`: lat, lng, km).
    List(Vec<Scalar>),
}

/// One element of a list value.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Scalar {
    /// Text.
    Text(String),
    /// Number.
    Number(f64),
}

/// Filter operators (the REST filter language's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum Operator {
    Eq,
    Neq,
    Contains,
    NotContains,
    StartsWith,
    EndsWith,
    In,
    IsEmpty,
    IsNotEmpty,
    Gt,
    Gte,
    Lt,
    Lte,
    ArrayContains,
    ArrayNotContains,
    ArrayEmpty,
    ArrayNotEmpty,
    WithinRadius,
    IsSet,
    IsNotSet,
}

impl Operator {
    fn as_str(self) -> &'static str {
        match self {
            Operator::Eq => "eq",
            Operator::Neq => "neq",
            Operator::Contains => "contains",
            Operator::NotContains => "not_contains",
            Operator::StartsWith => "starts_with",
            Operator::EndsWith => "ends_with",
            Operator::In => "in",
            Operator::IsEmpty => "is_empty",
            Operator::IsNotEmpty => "is_not_empty",
            Operator::Gt => "gt",
            Operator::Gte => "gte",
            Operator::Lt => "lt",
            Operator::Lte => "lte",
            Operator::ArrayContains => "array_contains",
            Operator::ArrayNotContains => "array_not_contains",
            Operator::ArrayEmpty => "array_empty",
            Operator::ArrayNotEmpty => "array_not_empty",
            Operator::WithinRadius => "within_radius",
            Operator::IsSet => "is_set",
            Operator::IsNotSet => "is_not_set",
        }
    }
}

const NUMBER_FIELDS: [&str; 8] = [
    "rating",
    "review_count",
    "score",
    "latitude",
    "longitude",
    "created_at",
    "updated_at",
    "last_interaction_at",
];

fn text_fields() -> Vec<&'static str> {
    let mut v = vec!["name", "source", "status"];
    v.extend(TextField::ALL.iter().map(|f| f.as_str()));
    v
}

/// Every field of a lead as the API shows it, for `fields`.
pub fn lead_fields() -> Vec<&'static str> {
    let mut v = vec!["id"];
    v.extend(text_fields());
    v.extend(NUMBER_FIELDS);
    v.extend(["tags", "attributes"]);
    v
}

fn filter_field_schema(_: &mut SchemaGenerator) -> Schema {
    let mut named = text_fields();
    named.extend(NUMBER_FIELDS);
    named.extend(["tags", "location"]);
    json_schema!({
        "anyOf": [
            {"type": "string", "enum": named},
            {"type": "string", "pattern": "^attr:[A-Za-z0-9_]{1,64}$"}
        ]
    })
}

fn sort_schema(_: &mut SchemaGenerator) -> Schema {
    let mut named = text_fields();
    named.extend(NUMBER_FIELDS);
    json_schema!({
        "anyOf": [
            {"type": "string", "enum": named},
            {"type": "string", "pattern": "^attr:[A-Za-z0-9_]{1,64}$"}
        ]
    })
}

fn fields_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "array",
        "items": {"type": "string", "enum": lead_fields()}
    })
}

fn scalar_text(s: &Scalar) -> String {
    match s {
        Scalar::Text(t) => t.clone(),
        Scalar::Number(n) => n.to_string(),
    }
}

impl StructuredFilter {
    /// The filter in the REST syntax `logic.operator.field[.value]`.
    pub fn to_rest(&self) -> String {
        let logic = match self.logic {
            Some(LogicArg::Or) => "or",
            _ => "and",
        };
        let value = match &self.value {
            None => String::new(),
            Some(FilterValue::Text(t)) => t.clone(),
            Some(FilterValue::Number(n)) => n.to_string(),
            Some(FilterValue::Bool(b)) => b.to_string(),
            Some(FilterValue::List(l)) => l.iter().map(scalar_text).collect::<Vec<_>>().join(","),
        };
        let head = format!("{logic}.{}.{}", self.operator.as_str(), self.field.trim());
        if value.is_empty() {
            head
        } else {
            format!("{head}.{value}")
        }
    }
}

impl ListLeads {
    /// The list request these arguments describe.
    pub fn to_request(&self) -> Result<ListRequest> {
        let limit = match self.limit {
            None => DEFAULT_LIMIT,
            Some(0) => return Err(Error::invalid("limit: must be at least 1")),
            Some(n) => n.min(MAX_LIMIT),
        };
        let raw: Vec<String> = self
            .filters
            .iter()
            .map(|f| match f {
                FilterArg::Structured(s) => s.to_rest(),
                FilterArg::Raw(r) => r.clone(),
            })
            .collect();
        let mut filters = FilterSet::parse(&raw)?;
        if let Some(q) = &self.query {
            filters = filters.with_query(TextQuery::parse(q)?);
        }
        let sort = Sort {
            field: SortField::parse(self.sort.as_deref().unwrap_or(""))
                .map_err(|e| Error::invalid(e.to_string().replacen("sort_by", "sort", 1)))?,
            order: match self.sort_order {
                Some(SortDirection::DESC) => SortOrder::Desc,
                _ => SortOrder::Asc,
            },
        };
        if let Some(fields) = &self.fields {
            let known = lead_fields();
            if let Some(bad) = fields.iter().find(|f| !known.contains(&f.as_str())) {
                return Err(Error::invalid(format!(
                    "fields: '{bad}' is not a lead field"
                )));
            }
        }
        Ok(ListRequest {
            limit,
            cursor: self.cursor.clone().filter(|c| !c.is_empty()),
            sort,
            filters,
        })
    }

    /// With `format`, the export these arguments describe: every lead the filters and query
    /// match, in the requested order. Paging and projection do not apply to a file, and are
    /// refused rather than silently ignored.
    pub fn to_export(&self) -> Result<Option<ExportRequest>> {
        let Some(format) = self.format else {
            return Ok(None);
        };
        let paged = [
            ("limit", self.limit.is_some()),
            (
                "cursor",
                self.cursor.as_deref().is_some_and(|c| !c.is_empty()),
            ),
            ("fields", self.fields.is_some()),
        ];
        if let Some((name, _)) = paged.iter().find(|(_, set)| *set) {
            return Err(Error::invalid(format!(
                "{name}: not used with format, which exports every matching lead with all its \
                 fields; leave {name} out"
            )));
        }
        let req = self.to_request()?;
        Ok(Some(ExportRequest {
            format: format.into(),
            sort: req.sort,
            filters: req.filters,
        }))
    }

    /// A lead as answered: whole, or only the requested fields and `id`.
    pub fn project(&self, lead: Lead) -> Result<serde_json::Value> {
        let v = serde_json::to_value(lead).map_err(Error::internal)?;
        let Some(fields) = &self.fields else {
            return Ok(v);
        };
        let serde_json::Value::Object(mut map) = v else {
            return Ok(v);
        };
        map.retain(|k, _| k == "id" || fields.iter().any(|f| f == k));
        Ok(serde_json::Value::Object(map))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structured_filters_become_rest_filters() {
        let args: ListLeads = serde_json::from_value(serde_json::json!({
            "filters": [
                {"field": "city", "operator": "eq", "value": "Paris"},
                {"field": "rating", "operator": "gte", "value": 4.5, "logic": "or"},
                {"field": "location", "operator": "within_radius", "value": [48.85, 2.35, 10]},
                "and.array_contains.tags.vip"
            ]
        }))
        .unwrap();
        let rest: Vec<String> = args
            .filters
            .iter()
            .map(|f| match f {
                FilterArg::Structured(s) => s.to_rest(),
                FilterArg::Raw(r) => r.clone(),
            })
            .collect();
        assert_eq!(
            rest,
            vec![
                "and.eq.city.Paris",
                "or.gte.rating.4.5",
                "and.within_radius.location.48.85,2.35,10",
                "and.array_contains.tags.vip"
            ]
        );
        assert!(args.to_request().is_ok());
    }

    #[test]
    fn bad_sort_and_fields_are_validation_errors() {
        let args = ListLeads {
            sort: Some("nope".into()),
            ..Default::default()
        };
        let e = args.to_request().unwrap_err().to_string();
        assert!(e.starts_with("sort:"), "{e}");
        let args = ListLeads {
            fields: Some(vec!["name".into(), "secret".into()]),
            ..Default::default()
        };
        assert!(args.to_request().is_err());
        let args = ListLeads {
            limit: Some(0),
            ..Default::default()
        };
        assert!(args.to_request().is_err());
    }
}
