//! Ids of the things a caller addresses, parsed once at the edge.
//!
//! A string that cannot be an id of its kind names nothing, so parsing it fails with the same
//! not-found error as a well-formed id that does not exist: a caller learns nothing from the
//! shape of what it sends, and services never look such strings up.

use crate::error::{Error, Result};

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $prefix:expr, $max:expr, $missing:expr) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize,
            schemars::JsonSchema,
        )]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// The fixed beginning of every id of this kind (empty when there is none).
            pub const PREFIX: &'static str = $prefix;
            /// Longest id of this kind.
            pub const MAX_LEN: usize = $max;

            /// Parses an id; anything that cannot be one is not found.
            pub fn parse(s: &str) -> Result<Self> {
                let ok = s.len() > Self::PREFIX.len()
                    && s.len() <= Self::MAX_LEN
                    && s.starts_with(Self::PREFIX)
                    && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
                if ok {
                    Ok($name(s.to_string()))
                } else {
                    Err(Error::NotFound($missing.into()))
                }
            }

            /// Wraps an id this product generated or stored (no check).
            pub fn from_trusted(s: impl Into<String>) -> Self {
                $name(s.into())
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The not-found error for this kind.
            pub fn not_found() -> Error {
                Error::NotFound($missing.into())
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }
    };
}

id_type!(
    /// A lead: `cl_<uuidv7>`.
    LeadId,
    "cl_",
    64,
    "Lead not found"
);
id_type!(
    /// A note: `note_<uuidv7>`.
    NoteId,
    "note_",
    80,
    "Note not found"
);
id_type!(
    /// A scoring rule: a UUID.
    RuleId,
    "",
    64,
    "Scoring rule not found"
);
id_type!(
    /// An attribute of a lead: a UUID.
    AttributeId,
    "",
    64,
    "Attribute not found"
);

id_type!(
    /// A webhook: a UUID.
    WebhookId,
    "",
    64,
    "Webhook not found"
);
id_type!(
    /// A delivery of a webhook: a time-ordered UUID.
    DeliveryId,
    "",
    64,
    "Delivery not found"
);
id_type!(
    /// A background job: a UUID.
    JobId,
    "",
    64,
    "Job not found"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_ids_are_not_found() {
        assert!(LeadId::parse("cl_019a-b_c").is_ok());
        for bad in [
            "",
            "cl_",
            "x_1",
            "cl_a/b",
            "cl_a b",
            &format!("cl_{}", "a".repeat(62)),
        ] {
            assert_eq!(
                LeadId::parse(bad),
                Err(Error::NotFound("Lead not found".into())),
                "{bad:?}"
            );
        }
        assert_eq!(
            NoteId::parse("cl_1"),
            Err(Error::NotFound("Note not found".into()))
        );
        assert!(RuleId::parse("3f2a9c1e-0000-4000-8000-000000000000").is_ok());
        assert!(RuleId::parse("").is_err());
        assert!(AttributeId::parse("../etc").is_err());
    }

    #[test]
    fn ids_serialize_as_plain_strings() {
        let id = LeadId::from_trusted("cl_1");
        assert_eq!(
            serde_json::to_value(&id).unwrap_or_default(),
            serde_json::json!("cl_1")
        );
    }
}
