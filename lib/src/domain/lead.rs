//! Leads, their typed custom attributes, and the validated changes that create or update them.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Longest accepted value for most text fields, in characters.
pub const MAX_TEXT_LEN: usize = 2048;
/// Longest accepted description, in characters.
pub const MAX_DESCRIPTION_LEN: usize = 16 * 1024;
/// Most tags one lead may carry.
pub const MAX_TAGS: usize = 100;
/// Longest accepted tag, in characters.
pub const MAX_TAG_LEN: usize = 128;
/// Most custom attributes one lead may carry.
pub const MAX_ATTRIBUTES: usize = 100;
/// Largest serialized attribute value, in bytes.
pub const MAX_ATTRIBUTE_VALUE_BYTES: usize = 16 * 1024;

/// Where a lead stands in the sales pipeline.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Default,
    Serialize,
    Deserialize,
    PartialOrd,
    Ord,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Not yet worked on (the default).
    #[default]
    New,
    /// Someone reached out.
    Contacted,
    /// Confirmed as a real opportunity.
    Qualified,
    /// Ruled out.
    Disqualified,
    /// Became a customer.
    Converted,
}

impl Status {
    /// Every status, in pipeline order.
    pub const ALL: [Status; 5] = [
        Status::New,
        Status::Contacted,
        Status::Qualified,
        Status::Disqualified,
        Status::Converted,
    ];

    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::New => "new",
            Status::Contacted => "contacted",
            Status::Qualified => "qualified",
            Status::Disqualified => "disqualified",
            Status::Converted => "converted",
        }
    }

    /// Parses a status case-insensitively; anything else is a 400 that lists the valid values.
    pub fn parse(s: &str) -> Result<Status> {
        let t = s.trim();
        Status::ALL
            .into_iter()
            .find(|st| st.as_str().eq_ignore_ascii_case(t))
            .ok_or_else(|| {
                Error::invalid(format!(
                    "status: '{s}' is not one of new, contacted, qualified, disqualified, converted"
                ))
            })
    }
}

/// The type of a custom attribute; the value must fit it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AttrType {
    /// A string.
    Text,
    /// A JSON number.
    Number,
    /// `true` or `false`.
    Bool,
    /// An array of strings.
    List,
    /// A JSON object.
    Object,
}

impl AttrType {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            AttrType::Text => "text",
            AttrType::Number => "number",
            AttrType::Bool => "bool",
            AttrType::List => "list",
            AttrType::Object => "object",
        }
    }

    /// Parses a type name (case-insensitive; `boolean` is accepted for `bool`).
    pub fn parse(s: &str) -> Result<AttrType> {
        match s.trim().to_ascii_lowercase().as_str() {
            "text" | "string" => Ok(AttrType::Text),
            "number" => Ok(AttrType::Number),
            "bool" | "boolean" => Ok(AttrType::Bool),
            "list" => Ok(AttrType::List),
            "object" => Ok(AttrType::Object),
            _ => Err(Error::invalid(format!(
                "type: '{s}' is not one of text, number, bool, list, object"
            ))),
        }
    }

    /// Checks that `value` fits this type.
    pub fn check(self, name: &str, value: &serde_json::Value) -> Result<()> {
        use serde_json::Value as V;
        let ok = match (self, value) {
            (AttrType::Text, V::String(_)) => true,
            (AttrType::Number, V::Number(_)) => true,
            (AttrType::Bool, V::Bool(_)) => true,
            (AttrType::List, V::Array(items)) => items.iter().all(|i| i.is_string()),
            (AttrType::Object, V::Object(_)) => true,
            _ => false,
        };
        if !ok {
            let expected = match self {
                AttrType::Text => "a string",
                AttrType::Number => "a number",
                AttrType::Bool => "true or false",
                AttrType::List => "an array of strings",
                AttrType::Object => "a JSON object",
            };
            return Err(Error::invalid(format!(
                "attribute '{name}': a {} attribute needs {expected}",
                self.as_str()
            )));
        }
        if value.to_string().len() > MAX_ATTRIBUTE_VALUE_BYTES {
            return Err(Error::invalid(format!(
                "attribute '{name}': value is larger than {MAX_ATTRIBUTE_VALUE_BYTES} bytes"
            )));
        }
        Ok(())
    }
}

/// A typed custom field of a lead.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Attribute {
    /// Stable id (a UUID), kept when the value is replaced.
    pub id: String,
    /// Unique per lead: 1–64 letters, digits, `_` or `-`.
    pub name: String,
    /// The declared type.
    #[serde(rename = "type")]
    pub ty: AttrType,
    /// The value, which fits `ty`.
    pub value: serde_json::Value,
}

/// A validated request to create or replace an attribute by name.
#[derive(Debug, Clone, PartialEq)]
pub struct AttributeSpec {
    /// The attribute name.
    pub name: String,
    /// The declared type.
    pub ty: AttrType,
    /// The value, already checked against `ty`.
    pub value: serde_json::Value,
}

impl AttributeSpec {
    /// Validates name, type and value together.
    pub fn new(name: &str, ty: &str, value: serde_json::Value) -> Result<Self> {
        validate_attr_name(name)?;
        let ty = AttrType::parse(ty)?;
        ty.check(name, &value)?;
        Ok(AttributeSpec {
            name: name.to_string(),
            ty,
            value,
        })
    }
}

/// Checks the attribute naming rule: 1–64 of `[A-Za-z0-9_-]`.
pub fn validate_attr_name(name: &str) -> Result<()> {
    let ok = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "attribute name '{name}' must be 1-64 letters, digits, '_' or '-'"
        )))
    }
}

/// The optional text fields of a lead, for code that treats them uniformly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TextField {
    /// `description`
    Description,
    /// `address`
    Address,
    /// `city`
    City,
    /// `state`
    State,
    /// `country`
    Country,
    /// `postal_code`
    PostalCode,
    /// `phone`
    Phone,
    /// `email`
    Email,
    /// `website`
    Website,
    /// `category`
    Category,
    /// `source_id`
    SourceId,
    /// `logo_url`
    LogoUrl,
}

impl TextField {
    /// Every optional text field.
    pub const ALL: [TextField; 12] = [
        TextField::Description,
        TextField::Address,
        TextField::City,
        TextField::State,
        TextField::Country,
        TextField::PostalCode,
        TextField::Phone,
        TextField::Email,
        TextField::Website,
        TextField::Category,
        TextField::SourceId,
        TextField::LogoUrl,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            TextField::Description => "description",
            TextField::Address => "address",
            TextField::City => "city",
            TextField::State => "state",
            TextField::Country => "country",
            TextField::PostalCode => "postal_code",
            TextField::Phone => "phone",
            TextField::Email => "email",
            TextField::Website => "website",
            TextField::Category => "category",
            TextField::SourceId => "source_id",
            TextField::LogoUrl => "logo_url",
        }
    }

    fn max_len(self) -> usize {
        if self == TextField::Description {
            MAX_DESCRIPTION_LEN
        } else {
            MAX_TEXT_LEN
        }
    }
}

/// A stored lead, exactly as the API returns it (wire-contract §4.1). The default is a lead with
/// every field empty, not a valid lead: what [`Lead::create`] starts from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Lead {
    /// `cl_<uuidv7>`.
    pub id: String,
    /// Required display name.
    pub name: String,
    /// Required origin of the lead (e.g. `website`, `google_maps`).
    pub source: String,
    /// Free text.
    pub description: Option<String>,
    /// Street address.
    pub address: Option<String>,
    /// City.
    pub city: Option<String>,
    /// State or region.
    pub state: Option<String>,
    /// Country.
    pub country: Option<String>,
    /// Postal code.
    pub postal_code: Option<String>,
    /// Latitude in degrees.
    pub latitude: Option<f64>,
    /// Longitude in degrees.
    pub longitude: Option<f64>,
    /// Phone number as given.
    pub phone: Option<String>,
    /// E-mail address as given.
    pub email: Option<String>,
    /// Website URL.
    pub website: Option<String>,
    /// Rating, e.g. 4.5.
    pub rating: Option<f64>,
    /// Number of reviews.
    pub review_count: Option<u32>,
    /// Category.
    pub category: Option<String>,
    /// Free-form tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// The caller's own id for this lead, used for deduplication.
    pub source_id: Option<String>,
    /// Logo URL.
    pub logo_url: Option<String>,
    /// Pipeline status.
    #[serde(default)]
    pub status: Status,
    /// Score 0–100 from the scoring rules.
    #[serde(default)]
    pub score: f64,
    /// Typed custom attributes, unique by name.
    #[serde(default)]
    pub attributes: Vec<Attribute>,
    /// Unix seconds when created.
    pub created_at: i64,
    /// Unix seconds of the last change to a stored value.
    pub updated_at: i64,
    /// Unix seconds of the last push or update, whether or not a value changed.
    pub last_interaction_at: i64,
}

/// Validated changes to a lead: what a create, an update or a merge carries.
///
/// For each field, `None` means "leave as is" and `Some(None)` means "clear".
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LeadChanges {
    /// New name (never cleared).
    pub name: Option<String>,
    /// New source (never cleared).
    pub source: Option<String>,
    /// Optional text fields to set or clear.
    pub text: Vec<(TextField, Option<String>)>,
    /// Latitude to set or clear.
    pub latitude: Option<Option<f64>>,
    /// Longitude to set or clear.
    pub longitude: Option<Option<f64>>,
    /// Rating to set or clear.
    pub rating: Option<Option<f64>>,
    /// Review count to set or clear.
    pub review_count: Option<Option<u32>>,
    /// Replacement tag list.
    pub tags: Option<Vec<String>>,
    /// Tags to add when missing (after `tags`), compared case-insensitively; already
    /// validated with [`LeadChanges::tags_value`].
    pub add_tags: Vec<String>,
    /// New status.
    pub status: Option<Status>,
    /// Attributes to upsert by name.
    pub attributes: Vec<AttributeSpec>,
    /// Attribute names to remove.
    pub remove_attributes: Vec<String>,
}

impl LeadChanges {
    /// Validates and normalises a text value: trimmed, empty means clear, bounded length.
    pub fn text_value(field: TextField, v: Option<&str>) -> Result<Option<String>> {
        let Some(v) = v.map(str::trim).filter(|v| !v.is_empty()) else {
            return Ok(None);
        };
        if v.chars().count() > field.max_len() {
            return Err(Error::invalid(format!(
                "{}: longer than {} characters",
                field.as_str(),
                field.max_len()
            )));
        }
        Ok(Some(v.to_string()))
    }

    /// Validates a required text field (`name`, `source`).
    pub fn required_text(field: &str, v: &str) -> Result<String> {
        let v = v.trim();
        if v.is_empty() {
            return Err(Error::invalid(format!("{field} is required")));
        }
        if v.chars().count() > MAX_TEXT_LEN {
            return Err(Error::invalid(format!(
                "{field}: longer than {MAX_TEXT_LEN} characters"
            )));
        }
        Ok(v.to_string())
    }

    /// Validates and normalises a tag list: trimmed, empty tags and exact repeats dropped.
    pub fn tags_value(tags: &[String]) -> Result<Vec<String>> {
        let mut out: Vec<String> = Vec::with_capacity(tags.len());
        for t in tags {
            let t = t.trim();
            if t.is_empty() || out.iter().any(|o| o == t) {
                continue;
            }
            if t.chars().count() > MAX_TAG_LEN {
                return Err(Error::invalid(format!(
                    "tags: a tag is longer than {MAX_TAG_LEN} characters"
                )));
            }
            out.push(t.to_string());
        }
        if out.len() > MAX_TAGS {
            return Err(Error::invalid(format!("tags: more than {MAX_TAGS} tags")));
        }
        Ok(out)
    }

    /// Validates a coordinate or rating: finite and within `lo..=hi`.
    pub fn number_value(field: &str, v: Option<f64>, lo: f64, hi: f64) -> Result<Option<f64>> {
        match v {
            Some(x) if !x.is_finite() || x < lo || x > hi => Err(Error::invalid(format!(
                "{field}: must be a number between {lo} and {hi}"
            ))),
            other => Ok(other),
        }
    }
}

impl Lead {
    /// Builds a new lead from validated changes that include `name` and `source`.
    pub fn create(
        id: String,
        changes: &LeadChanges,
        now: i64,
        new_attr_id: &mut dyn FnMut() -> String,
    ) -> Result<Lead> {
        let (Some(name), Some(source)) = (&changes.name, &changes.source) else {
            let missing = if changes.name.is_none() {
                "name"
            } else {
                "source"
            };
            return Err(Error::invalid(format!("{missing} is required")));
        };
        let mut lead = Lead {
            id,
            name: name.clone(),
            source: source.clone(),
            created_at: now,
            updated_at: now,
            last_interaction_at: now,
            ..Lead::default()
        };
        lead.apply(changes, new_attr_id)?;
        Ok(lead)
    }

    /// The value of an optional text field.
    pub fn text(&self, f: TextField) -> Option<&str> {
        match f {
            TextField::Description => self.description.as_deref(),
            TextField::Address => self.address.as_deref(),
            TextField::City => self.city.as_deref(),
            TextField::State => self.state.as_deref(),
            TextField::Country => self.country.as_deref(),
            TextField::PostalCode => self.postal_code.as_deref(),
            TextField::Phone => self.phone.as_deref(),
            TextField::Email => self.email.as_deref(),
            TextField::Website => self.website.as_deref(),
            TextField::Category => self.category.as_deref(),
            TextField::SourceId => self.source_id.as_deref(),
            TextField::LogoUrl => self.logo_url.as_deref(),
        }
    }

    /// The text field `f`, to change it in place.
    pub(crate) fn text_mut(&mut self, f: TextField) -> &mut Option<String> {
        match f {
            TextField::Description => &mut self.description,
            TextField::Address => &mut self.address,
            TextField::City => &mut self.city,
            TextField::State => &mut self.state,
            TextField::Country => &mut self.country,
            TextField::PostalCode => &mut self.postal_code,
            TextField::Phone => &mut self.phone,
            TextField::Email => &mut self.email,
            TextField::Website => &mut self.website,
            TextField::Category => &mut self.category,
            TextField::SourceId => &mut self.source_id,
            TextField::LogoUrl => &mut self.logo_url,
        }
    }

    /// Applies validated changes; returns whether any stored value changed.
    ///
    /// Timestamps are not touched here: the caller decides `updated_at` from the return value.
    pub fn apply(
        &mut self,
        c: &LeadChanges,
        new_attr_id: &mut dyn FnMut() -> String,
    ) -> Result<bool> {
        let before = self.clone();
        if let Some(v) = &c.name {
            self.name.clone_from(v);
        }
        if let Some(v) = &c.source {
            self.source.clone_from(v);
        }
        for (f, v) in &c.text {
            self.text_mut(*f).clone_from(v);
        }
        if let Some(v) = c.latitude {
            self.latitude = v;
        }
        if let Some(v) = c.longitude {
            self.longitude = v;
        }
        if let Some(v) = c.rating {
            self.rating = v;
        }
        if let Some(v) = c.review_count {
            self.review_count = v;
        }
        if let Some(v) = &c.tags {
            self.tags.clone_from(v);
        }
        for t in &c.add_tags {
            if !self.tags.iter().any(|x| x.eq_ignore_ascii_case(t)) {
                self.tags.push(t.clone());
            }
        }
        if self.tags.len() > MAX_TAGS {
            return Err(Error::invalid(format!("tags: more than {MAX_TAGS} tags")));
        }
        if let Some(v) = c.status {
            self.status = v;
        }
        for spec in &c.attributes {
            self.upsert_attribute(spec, new_attr_id);
        }
        self.attributes
            .retain(|a| !c.remove_attributes.contains(&a.name));
        if self.attributes.len() > MAX_ATTRIBUTES {
            return Err(Error::invalid(format!(
                "attributes: more than {MAX_ATTRIBUTES} attributes on one lead"
            )));
        }
        Ok(*self != before)
    }

    /// Creates the attribute, or replaces type and value of the one with the same name (keeping
    /// its id). Returns the index of the attribute.
    pub fn upsert_attribute(
        &mut self,
        spec: &AttributeSpec,
        new_attr_id: &mut dyn FnMut() -> String,
    ) -> usize {
        if let Some(i) = self.attributes.iter().position(|a| a.name == spec.name) {
            let a = &mut self.attributes[i];
            a.ty = spec.ty;
            a.value = spec.value.clone();
            i
        } else {
            self.attributes.push(Attribute {
                id: new_attr_id(),
                name: spec.name.clone(),
                ty: spec.ty,
                value: spec.value.clone(),
            });
            self.attributes.len() - 1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> impl FnMut() -> String {
        let mut n = 0;
        move || {
            n += 1;
            format!("attr-{n}")
        }
    }

    fn base() -> LeadChanges {
        LeadChanges {
            name: Some("Acme".into()),
            source: Some("web".into()),
            ..Default::default()
        }
    }

    #[test]
    fn status_parses_case_insensitively_and_rejects_others() {
        assert_eq!(Status::parse("Qualified").unwrap(), Status::Qualified);
        let err = Status::parse("bogus").unwrap_err();
        assert!(err.to_string().contains("status"), "{err}");
    }

    #[test]
    fn create_requires_name_and_source() {
        let c = LeadChanges {
            name: Some("x".into()),
            ..Default::default()
        };
        let err = Lead::create("cl_1".into(), &c, 1, &mut ids()).unwrap_err();
        assert_eq!(err, Error::invalid("source is required"));
    }

    #[test]
    fn apply_reports_change_only_when_a_value_differs() {
        let mut lead = Lead::create("cl_1".into(), &base(), 10, &mut ids()).unwrap();
        let same = LeadChanges {
            name: Some("Acme".into()),
            ..Default::default()
        };
        assert!(!lead.apply(&same, &mut ids()).unwrap());
        let city = LeadChanges {
            text: vec![(TextField::City, Some("Paris".into()))],
            ..Default::default()
        };
        assert!(lead.apply(&city, &mut ids()).unwrap());
        assert_eq!(lead.city.as_deref(), Some("Paris"));
    }

    #[test]
    fn attributes_upsert_by_name_and_keep_their_id() {
        let mut next = ids();
        let mut lead = Lead::create("cl_1".into(), &base(), 10, &mut next).unwrap();
        let a = AttributeSpec::new("industry", "text", "Software".into()).unwrap();
        lead.upsert_attribute(&a, &mut next);
        let b = AttributeSpec::new("industry", "text", "Retail".into()).unwrap();
        lead.upsert_attribute(&b, &mut next);
        assert_eq!(lead.attributes.len(), 1);
        assert_eq!(lead.attributes[0].id, "attr-1");
        assert_eq!(lead.attributes[0].value, "Retail");
    }

    #[test]
    fn attribute_values_must_fit_their_type() {
        assert!(AttributeSpec::new("n", "number", serde_json::json!(500.0)).is_ok());
        assert!(AttributeSpec::new("n", "number", serde_json::json!("500")).is_err());
        assert!(AttributeSpec::new("l", "list", serde_json::json!(["a", 1])).is_err());
        assert!(AttributeSpec::new("bad name", "text", serde_json::json!("x")).is_err());
        assert!(AttributeSpec::new("x", "colour", serde_json::json!("x")).is_err());
    }

    #[test]
    fn text_values_are_trimmed_and_empty_means_clear() {
        assert_eq!(
            LeadChanges::text_value(TextField::City, Some("  Lyon ")).unwrap(),
            Some("Lyon".into())
        );
        assert_eq!(
            LeadChanges::text_value(TextField::City, Some("  ")).unwrap(),
            None
        );
    }
}
