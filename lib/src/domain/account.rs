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
    /// PHC string of the argon2id hash of the password, for accounts that can log in
    /// (registered over HTTP); operator-created accounts have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_hash: Option<String>,
}

/// What an API key may do. Beyond the vendor, whose keys all have full access.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Reading only (`GET`).
    Read,
    /// Everything but key and account management.
    Write,
    /// Everything (the default, so keys made before scopes existed keep full access).
    #[default]
    Admin,
}

/// What a request does, as far as scopes are concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Reads data (a `GET` outside key and account management).
    Read,
    /// Changes data (any other method outside key and account management).
    Write,
    /// Reads or changes the account or its keys.
    Manage,
}

impl Scope {
    /// Whether a key with this scope may do `access`.
    pub fn permits(self, access: Access) -> bool {
        match self {
            Scope::Admin => true,
            Scope::Write => access != Access::Manage,
            Scope::Read => access == Access::Read,
        }
    }

    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::Admin => "admin",
        }
    }

    /// Parses the wire spelling (case-insensitive); a 400 names the known scopes.
    pub fn parse(s: &str) -> Result<Scope> {
        match s.trim().to_ascii_lowercase().as_str() {
            "read" => Ok(Scope::Read),
            "write" => Ok(Scope::Write),
            "admin" => Ok(Scope::Admin),
            _ => Err(Error::invalid(format!(
                "scope: '{s}' is not one of read, write, admin"
            ))),
        }
    }
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
    /// Id of the API key used (for a session, an id derived from the session).
    pub key_id: String,
    /// What the credential may do.
    pub scope: Scope,
    /// The account's revision when the request was authenticated: the account item's counter,
    /// which every scoring-rule write and every key revocation adds one to in its own
    /// transaction, so compiled rules and verified keys can be reused until it moves; `None`
    /// when not read.
    pub account_rev: Option<u64>,
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
    /// What the key may do.
    #[serde(default)]
    pub scope: Scope,
    /// Unix seconds of the last authenticated request (to the minute), if any.
    #[serde(default)]
    pub last_used_at: Option<i64>,
}

/// A stored login session. The raw token is never stored, only its SHA-256.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionRecord {
    /// The account logged in.
    pub account_id: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds after which the token is refused.
    pub expires_at: i64,
}

/// Prefix of every raw session token (tells it apart from an API key in `Authorization`).
pub const SESSION_PREFIX: &str = "kls_";

/// Builds a raw session token from 32 random bytes.
pub fn session_token_from_bytes(a: [u8; 16], b: [u8; 16]) -> String {
    format!("{SESSION_PREFIX}{}{}", hex::encode(a), hex::encode(b))
}

/// Whether a presented string has the shape of a session token.
pub fn looks_like_session(s: &str) -> bool {
    s.len() == SESSION_PREFIX.len() + 64
        && s.starts_with(SESSION_PREFIX)
        && s[SESSION_PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Shortest accepted password.
pub const MIN_PASSWORD_CHARS: usize = 10;
/// Longest accepted password (hashing cost must stay bounded).
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Checks a new password's length.
pub fn check_new_password(p: &str) -> Result<()> {
    if p.chars().count() < MIN_PASSWORD_CHARS {
        return Err(Error::invalid(format!(
            "password: at least {MIN_PASSWORD_CHARS} characters are required"
        )));
    }
    if p.len() > MAX_PASSWORD_BYTES {
        return Err(Error::invalid(format!(
            "password: at most {MAX_PASSWORD_BYTES} bytes are accepted"
        )));
    }
    Ok(())
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

    #[test]
    fn scopes_permit_what_they_name() {
        use Access::*;
        assert!(Scope::Read.permits(Read));
        assert!(!Scope::Read.permits(Write));
        assert!(!Scope::Read.permits(Manage));
        assert!(Scope::Write.permits(Write) && Scope::Write.permits(Read));
        assert!(!Scope::Write.permits(Manage));
        assert!(Scope::Admin.permits(Manage));
        assert_eq!(Scope::default(), Scope::Admin);
        let old: ApiKeyRecord = serde_json::from_value(serde_json::json!({
            "id": "k", "account_id": "a", "prefix": "sk_live_0000", "hash": "h",
            "name": null, "created_at": 1
        }))
        .unwrap();
        assert_eq!(
            old.scope,
            Scope::Admin,
            "keys stored before scopes keep full access"
        );
        assert!(Scope::parse("owner").is_err());
    }

    #[test]
    fn session_tokens_are_told_apart_from_keys() {
        let t = session_token_from_bytes([1; 16], [2; 16]);
        assert!(looks_like_session(&t));
        assert!(!looks_like_key(&t));
        assert!(!looks_like_session(&raw_key_from_bytes([1; 16])));
        assert!(check_new_password("short").is_err());
        assert!(check_new_password("0123456789").is_ok());
    }
}
