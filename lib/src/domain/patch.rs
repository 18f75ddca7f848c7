//! A three-state field for partial updates: absent, explicitly null, or a value.

use serde::{Deserialize, Deserializer};

/// One field of a partial-update body.
///
/// JSON cannot distinguish "leave unchanged" from "clear" with `Option<T>` alone, so a missing key
/// deserializes to [`Patch::Missing`] (with `#[serde(default)]`) and `null` to [`Patch::Null`].
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Patch<T> {
    /// The key was not sent: keep the stored value.
    #[default]
    Missing,
    /// The key was sent as `null`: clear the stored value.
    Null,
    /// The key was sent with a value.
    Value(T),
}

impl<T> Patch<T> {
    /// The sent value, if any.
    pub fn value(&self) -> Option<&T> {
        match self {
            Patch::Value(v) => Some(v),
            _ => None,
        }
    }

    /// Whether the key was present in the body at all.
    pub fn is_present(&self) -> bool {
        !matches!(self, Patch::Missing)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Patch<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match Option::<T>::deserialize(d)? {
            Some(v) => Patch::Value(v),
            None => Patch::Null,
        })
    }
}

/// A patch field is described like the optional value it carries: absent and `null` are both
/// allowed by the schema; what they mean is the update's business.
impl<T: schemars::JsonSchema> schemars::JsonSchema for Patch<T> {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> std::borrow::Cow<'static, str> {
        <Option<T>>::schema_name()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        <Option<T>>::json_schema(generator)
    }
}
