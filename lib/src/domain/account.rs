//! Accounts, plans and API keys.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// The plan definitions shipped with the product; an operator can replace them with a file
/// (`KLOZEO_PLANS_FILE`), so limits are data rather than code.
pub const DEFAULT_PLANS_JSON: &str = include_str!("../../plans.json");

/// The limits of one plan. `None` means unlimited.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanLimits {
    /// Most leads an account may store.
    pub max_leads: Option<u64>,
    /// Most requests per API key in the sliding window.
    pub requests_per_window: Option<u32>,
    /// Length of the rate-limit window in seconds.
    pub window_secs: u64,
    /// Most items in one batch request.
    pub max_batch: u32,
}

/// The known plans by name.
#[derive(Debug, Clone, PartialEq)]
pub struct Plans(BTreeMap<String, PlanLimits>);

impl Plans {
    /// Parses a plans document (`{"free": {...}, ...}`).
    pub fn from_json(s: &str) -> Result<Plans> {
        let map: BTreeMap<String, PlanLimits> =
            serde_json::from_str(s).map_err(|e| Error::invalid(format!("plans file: {e}")))?;
        if map.is_empty() {
            return Err(Error::invalid("plans file: no plans defined"));
        }
        Ok(Plans(map))
    }

    /// The plans shipped with the product.
    pub fn builtin() -> Plans {
        Plans::from_json(DEFAULT_PLANS_JSON).expect("the built-in plans file is valid JSON")
    }

    /// The limits of a plan, or a 400 naming the known plans.
    pub fn get(&self, name: &str) -> Result<&PlanLimits> {
        self.0.get(name).ok_or_else(|| {
            let known: Vec<&str> = self.0.keys().map(String::as_str).collect();
            Error::invalid(format!(
                "unknown plan '{name}' (known: {})",
                known.join(", ")
            ))
        })
    }
}

/// An account: the tenant that owns leads and API keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Account {
    /// A UUID.
    pub id: String,
    /// Contact e-mail, unique across accounts (stored lower-cased).
    pub email: String,
    /// Plan name, a key of [`Plans`].
    pub plan: String,
    /// Unix seconds.
    pub created_at: i64,
}

/// The authenticated caller of a request: which account, under which limits, with which key.
#[derive(Debug, Clone, PartialEq)]
pub struct Tenant {
    /// The account id; every key the services build starts with it.
    pub account_id: String,
    /// The account's plan name.
    pub plan: String,
    /// The plan's limits at the time of the request.
    pub limits: PlanLimits,
    /// Id of the API key used.
    pub key_id: String,
}

/// Stored metadata of an API key. The raw key is never stored, only its SHA-256.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiKeyRecord {
    /// A UUID, used to list and revoke the key.
    pub id: String,
    /// The owning account.
    pub account_id: String,
    /// The first characters of the raw key (`sk_live_1a2b`), so a user can tell keys apart.
    pub prefix: String,
    /// Hex SHA-256 of the raw key.
    pub hash: String,
    /// Optional label.
    pub name: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
}

/// A freshly minted API key: the raw secret (shown once) and what is stored.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    /// `sk_live_` followed by 32 lowercase hex characters.
    pub raw: String,
    /// What the store keeps.
    pub record: ApiKeyRecord,
}

/// Prefix of every raw API key.
pub const KEY_PREFIX: &str = "sk_live_";

/// Builds a raw key from 16 random bytes.
pub fn raw_key_from_bytes(bytes: [u8; 16]) -> String {
    format!("{KEY_PREFIX}{}", hex::encode(bytes))
}

/// Whether a presented string has the shape of a raw key (cheap rejection before any lookup).
pub fn looks_like_key(s: &str) -> bool {
    s.len() == KEY_PREFIX.len() + 32
        && s.starts_with(KEY_PREFIX)
        && s[KEY_PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Hex SHA-256 of a raw key: the only form in which keys are stored.
pub fn hash_key(raw: &str) -> String {
    hex::encode(Sha256::digest(raw.as_bytes()))
}

/// Normalises and checks an account e-mail.
pub fn normalize_account_email(email: &str) -> Result<String> {
    let e = email.trim().to_lowercase();
    let valid = e.len() <= 254
        && e.split_once('@')
            .is_some_and(|(l, d)| !l.is_empty() && d.contains('.') && !d.starts_with('.'));
    if valid {
        Ok(e)
    } else {
        Err(Error::invalid(format!(
            "email: '{email}' is not an e-mail address"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_plans_have_documented_limits() {
        let p = Plans::builtin();
        assert_eq!(p.get("free").unwrap().max_leads, Some(100));
        assert_eq!(p.get("pro").unwrap().requests_per_window, Some(1000));
        assert_eq!(p.get("unlimited").unwrap().max_leads, None);
        assert!(p.get("gold").unwrap_err().to_string().contains("free"));
    }

    #[test]
    fn keys_have_the_documented_shape_and_hash() {
        let raw = raw_key_from_bytes([0xab; 16]);
        assert_eq!(raw, format!("sk_live_{}", "ab".repeat(16)));
        assert!(looks_like_key(&raw));
        assert!(!looks_like_key("sk_live_ABABABABABABABABABABABABABABABAB"));
        assert_eq!(hash_key(&raw).len(), 64);
        assert_ne!(hash_key(&raw), raw);
    }
}
