//! Opaque, tamper-evident pagination cursors.
//!
//! A cursor carries the position after the last returned item plus a fingerprint of the query it
//! belongs to (sort and filters). It is signed with HMAC-SHA256 under a server secret, so a client
//! can neither forge a position nor reuse a cursor with another sort.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

type HmacSha256 = Hmac<Sha256>;

/// Longest cursor accepted, so a hostile value is rejected before any work. Every cursor the
/// server issues fits: a position holds at most [`MAX_POSITION_BYTES`] of raw bytes.
pub const MAX_CURSOR_LEN: usize = 16 * 1024;

/// The most raw bytes of scope and position a cursor carries (its strings are sort values cut
/// to 400 bytes, ids and index keys of at most 1,024 bytes each).
pub const MAX_POSITION_BYTES: usize = 8 * 1024;

/// First byte of the length-prefixed body. JSON bodies (the earlier format, still read)
/// start with `{`.
const BINARY: u8 = 1;

/// The server secret that signs cursors.
#[derive(Clone)]
pub struct CursorKey(Vec<u8>);

impl std::fmt::Debug for CursorKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CursorKey(..)")
    }
}

impl CursorKey {
    /// Wraps secret bytes (at least 16).
    pub fn new(secret: &[u8]) -> Result<Self> {
        if secret.len() < 16 {
            return Err(Error::invalid(
                "the cursor signing key needs at least 16 bytes",
            ));
        }
        Ok(CursorKey(secret.to_vec()))
    }

    fn mac(&self, data: &[u8]) -> [u8; 16] {
        let mut m = HmacSha256::new_from_slice(&self.0).expect("HMAC accepts any key length");
        m.update(data);
        let full = m.finalize().into_bytes();
        let mut out = [0u8; 16];
        out.copy_from_slice(&full[..16]);
        out
    }

    /// Encodes a position for the query with fingerprint `scope`.
    ///
    /// The body is the strings length-prefixed, not JSON: JSON writes a control character as
    /// six bytes, so a sort value full of them could make a cursor longer than the decoder
    /// accepts.
    pub fn encode(&self, scope: &str, position: &[String]) -> String {
        let mut body = vec![BINARY];
        for part in std::iter::once(scope).chain(position.iter().map(String::as_str)) {
            body.extend_from_slice(&(part.len() as u32).to_le_bytes());
            body.extend_from_slice(part.as_bytes());
        }
        let mac = self.mac(&body);
        format!("{}.{}", B64.encode(&body), B64.encode(mac))
    }

    /// Decodes a cursor and checks that it was issued by this server for the same query.
    pub fn decode(&self, cursor: &str, scope: &str) -> Result<Vec<String>> {
        let bad = || Error::invalid("cursor: not a cursor issued by this server");
        if cursor.len() > MAX_CURSOR_LEN {
            return Err(bad());
        }
        let (body_b64, mac_b64) = cursor.split_once('.').ok_or_else(bad)?;
        let body = B64.decode(body_b64).map_err(|_| bad())?;
        let mac = B64.decode(mac_b64).map_err(|_| bad())?;
        let mut m = HmacSha256::new_from_slice(&self.0).expect("HMAC accepts any key length");
        m.update(&body);
        m.verify_truncated_left(&mac).map_err(|_| bad())?;
        if mac.len() != 16 {
            return Err(bad());
        }
        let p = match body.first() {
            Some(&BINARY) => binary_payload(&body[1..]).ok_or_else(bad)?,
            _ => serde_json::from_slice(&body).map_err(|_| bad())?,
        };
        if p.s != scope {
            return Err(Error::invalid(
                "cursor: issued for a different sort or filter; start again without a cursor",
            ));
        }
        Ok(p.p)
    }
}

#[derive(Serialize, Deserialize)]
struct Payload {
    s: String,
    p: Vec<String>,
}

/// The scope and position of a length-prefixed body (after its format byte).
fn binary_payload(mut rest: &[u8]) -> Option<Payload> {
    let mut parts = Vec::new();
    while !rest.is_empty() {
        let (len, tail) = rest.split_first_chunk::<4>()?;
        let len = u32::from_le_bytes(*len) as usize;
        if len > tail.len() {
            return None;
        }
        let (part, tail) = tail.split_at(len);
        parts.push(String::from_utf8(part.to_vec()).ok()?);
        rest = tail;
    }
    let mut parts = parts.into_iter();
    let s = parts.next()?;
    Some(Payload {
        s,
        p: parts.collect(),
    })
}

/// A short fingerprint of the parts of a query a cursor is bound to.
pub fn scope_of(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p.as_bytes());
    }
    hex::encode(&h.finalize()[..8])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> CursorKey {
        CursorKey::new(b"0123456789abcdef0123").unwrap()
    }

    #[test]
    fn round_trips_within_the_same_scope() {
        let pos = vec!["A#1".to_string(), "L#cl_x".to_string()];
        let c = key().encode("s1", &pos);
        assert_eq!(key().decode(&c, "s1").unwrap(), pos);
    }

    #[test]
    fn rejects_another_scope_tampering_and_garbage() {
        let c = key().encode("s1", &["a".to_string()]);
        assert!(
            key()
                .decode(&c, "s2")
                .unwrap_err()
                .to_string()
                .contains("different sort")
        );
        let (body, mac) = c.split_once('.').unwrap();
        let forged_body = B64.encode(br#"{"s":"s1","p":["b"]}"#);
        assert!(key().decode(&format!("{forged_body}.{mac}"), "s1").is_err());
        assert!(key().decode(&format!("{body}."), "s1").is_err());
        assert!(key().decode("null", "s1").is_err());
        assert!(key().decode("", "s1").is_err());
        let other = CursorKey::new(b"another-secret-key!!").unwrap();
        assert!(other.decode(&c, "s1").is_err());
    }

    #[test]
    fn any_position_the_server_issues_decodes_and_old_json_cursors_still_do() {
        // Sort values of control characters and the largest index keys.
        let pos = vec![
            "\u{0}".repeat(400),
            "\u{1f}\u{fffd}".repeat(300),
            "k".repeat(1024),
            String::new(),
            "L#cl_0123".into(),
        ];
        let c = key().encode("s1", &pos);
        assert!(c.len() <= MAX_CURSOR_LEN);
        assert_eq!(key().decode(&c, "s1").unwrap(), pos);
        let json = br#"{"s":"s1","p":["a","b"]}"#;
        let old = format!("{}.{}", B64.encode(json), B64.encode(key().mac(json)));
        assert_eq!(key().decode(&old, "s1").unwrap(), vec!["a", "b"]);
        // A length prefix past the end is garbage, not a panic.
        let mut broken = vec![BINARY, 200, 0, 0, 0, b'x'];
        let forged = format!("{}.{}", B64.encode(&broken), B64.encode(key().mac(&broken)));
        assert!(key().decode(&forged, "s1").is_err());
        broken.truncate(3);
        let forged = format!("{}.{}", B64.encode(&broken), B64.encode(key().mac(&broken)));
        assert!(key().decode(&forged, "s1").is_err());
    }

    #[test]
    fn scope_separates_parts() {
        assert_ne!(scope_of(&["ab", "c"]), scope_of(&["a", "bc"]));
    }
}
