//! Reading import files into lead changes: a CSV whose headers name lead fields (anything else,
//! and `attr:<name>`, becomes a custom attribute), or a JSON array of lead objects (an export
//! reads back as is). Each row goes through the same wire validation as a `POST /leads/batch`
//! item, so a bad row is rejected with the same message, at its place.

use serde_json::{Map, Value, json};

use crate::domain::lead::LeadChanges;
use crate::domain::table::{ImportColumn, import_column, restore_text};
use crate::edges::wire::{InputMode, LeadInput, from_value};
use crate::error::{Error, Result};

/// Fields whose cells are numbers.
const NUMERIC: [&str; 4] = ["latitude", "longitude", "rating", "review_count"];

/// The rows of a CSV import, each a lead input or the reason it cannot be one. `source` fills
/// the `source` of rows that have none.
pub struct CsvRows<R: std::io::Read> {
    records: csv::StringRecordsIntoIter<R>,
    columns: Vec<ImportColumn>,
    source: Option<String>,
}

impl<R: std::io::Read> CsvRows<R> {
    /// Reads the header row of `reader`.
    pub fn new(reader: R, source: Option<String>) -> Result<Self> {
        let mut r = csv::ReaderBuilder::new().flexible(true).from_reader(reader);
        let headers = r
            .headers()
            .map_err(|e| Error::invalid(format!("CSV header: {e}")))?;
        let columns = headers.iter().map(import_column).collect();
        Ok(CsvRows {
            records: r.into_records(),
            columns,
            source,
        })
    }
}

impl<R: std::io::Read> Iterator for CsvRows<R> {
    type Item = Result<LeadChanges>;

    fn next(&mut self) -> Option<Self::Item> {
        let rec = self.records.next()?;
        Some(
            rec.map_err(|e| Error::invalid(format!("CSV: {e}")))
                .and_then(|rec| {
                    let mut obj = Map::new();
                    let mut attrs = Vec::new();
                    for (col, cell) in self.columns.iter().zip(rec.iter()) {
                        let cell = restore_text(cell);
                        if cell.trim().is_empty() {
                            continue;
                        }
                        match col {
                            ImportColumn::Ignored => {}
                            ImportColumn::Field(f) if NUMERIC.contains(f) => {
                                let n: f64 = cell.trim().parse().map_err(|_| {
                                    Error::invalid(format!("{f}: '{cell}' is not a number"))
                                })?;
                                obj.insert((*f).into(), json!(n));
                            }
                            ImportColumn::Field("tags") => {
                                let tags: Vec<&str> = cell
                                    .split(',')
                                    .map(str::trim)
                                    .filter(|t| !t.is_empty())
                                    .collect();
                                obj.insert("tags".into(), json!(tags));
                            }
                            ImportColumn::Field(f) => {
                                obj.insert((*f).into(), json!(cell));
                            }
                            ImportColumn::Attribute(name) => attrs.push(attribute(name, cell)),
                        }
                    }
                    if let Some(s) = &self.source {
                        obj.entry("source").or_insert_with(|| json!(s));
                    }
                    if !attrs.is_empty() {
                        obj.insert("attributes".into(), Value::Array(attrs));
                    }
                    changes(Value::Object(obj))
                }),
        )
    }
}

/// An attribute from a cell, typed by what the text is: `true`/`false`, a number, a JSON list
/// or object (as an export writes them), else text.
fn attribute(name: &str, cell: &str) -> Value {
    let t = cell.trim();
    let (ty, value) = if t == "true" || t == "false" {
        ("bool", json!(t == "true"))
    } else if let Ok(n) = t.parse::<i64>() {
        ("number", json!(n))
    } else if let Some(n) = t.parse::<f64>().ok().filter(|n| n.is_finite()) {
        ("number", json!(n))
    } else {
        match serde_json::from_str::<Value>(t) {
            Ok(v @ Value::Array(_)) => ("list", v),
            Ok(v @ Value::Object(_)) => ("object", v),
            _ => ("text", json!(cell)),
        }
    };
    json!({ "name": name, "type": ty, "value": value })
}

fn changes(v: Value) -> Result<LeadChanges> {
    from_value::<LeadInput>(v).and_then(|i| i.into_changes(InputMode::Create))
}

/// The rows of a JSON import: an array of lead objects (read-only fields such as `id` and
/// `score` are ignored, as in `POST /leads`).
pub fn json_rows(bytes: &[u8], source: Option<&str>) -> Result<Vec<Result<LeadChanges>>> {
    let v: Value =
        serde_json::from_slice(bytes).map_err(|e| Error::invalid(format!("JSON: {e}")))?;
    let Value::Array(items) = v else {
        return Err(Error::invalid("JSON: expected an array of lead objects"));
    };
    Ok(items
        .into_iter()
        .map(|mut item| {
            if let (Some(s), Some(obj)) = (source, item.as_object_mut()) {
                obj.entry("source").or_insert_with(|| json!(s));
            }
            if let Some(attrs) = item.get_mut("attributes").and_then(Value::as_array_mut) {
                for a in attrs {
                    if let Some(o) = a.as_object_mut() {
                        o.remove("id");
                    }
                }
            }
            changes(item)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::lead::TextField;

    #[test]
    fn csv_headers_become_fields_and_attributes() {
        let text = "Name,source,Postal Code,rating,tags,phone,industry,attr:employees,score,id\n\
                    Acme,web,10117,4.5,\"vip, b2b\",'+49 30,Food,500,99,cl_x\n\
                    ,web,,,,,,,,\n";
        let rows: Vec<_> = CsvRows::new(text.as_bytes(), None).unwrap().collect();
        let a = rows[0].as_ref().unwrap();
        assert_eq!(a.name.as_deref(), Some("Acme"));
        assert!(
            a.text
                .contains(&(TextField::PostalCode, Some("10117".into())))
        );
        assert!(a.text.contains(&(TextField::Phone, Some("+49 30".into()))));
        assert_eq!(a.rating, Some(Some(4.5)));
        assert_eq!(a.tags, Some(vec!["vip".to_string(), "b2b".to_string()]));
        let names: Vec<_> = a
            .attributes
            .iter()
            .map(|s| (s.name.as_str(), s.ty.as_str()))
            .collect();
        assert_eq!(names, vec![("industry", "text"), ("employees", "number")]);
        assert!(rows[1].as_ref().unwrap_err().to_string().contains("name"));
    }
}
