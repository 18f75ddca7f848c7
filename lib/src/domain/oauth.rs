//! OAuth 2.1 rules with no I/O: redirect URIs (RFC 8252 loopback rules), client id URLs
//! (Client ID Metadata Documents), PKCE S256 (RFC 7636), scopes, token shapes.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use sha2::{Digest, Sha256};

use crate::domain::account::Scope;

/// Prefix of an access token.
pub const ACCESS_PREFIX: &str = "kloa_";
/// Prefix of a refresh token.
pub const REFRESH_PREFIX: &str = "klor_";
/// Prefix of an authorization code.
pub const CODE_PREFIX: &str = "kloc_";
/// Prefix of a client id issued by dynamic registration.
pub const CLIENT_PREFIX: &str = "klcl_";

/// Longest redirect URI or client id URL accepted.
pub const MAX_URI_LEN: usize = 2000;

/// A secret token: the prefix and 64 lowercase hex characters (32 random bytes).
pub fn token_from_bytes(prefix: &str, a: [u8; 16], b: [u8; 16]) -> String {
    format!("{prefix}{}{}", hex::encode(a), hex::encode(b))
}

/// Whether `s` has the shape of a token minted with `prefix` (cheap rejection before a lookup).
pub fn looks_like(prefix: &str, s: &str) -> bool {
    s.len() == prefix.len() + 64
        && s.starts_with(prefix)
        && s[prefix.len()..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Whether a presented credential is an OAuth access token (rather than an API key or session).
pub fn is_access_token(s: &str) -> bool {
    looks_like(ACCESS_PREFIX, s)
}

/// Compares two secrets in time that depends only on their lengths.
pub fn ct_eq(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq as _;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// Whether `host` names the loopback interface (RFC 8252 §7.3; `localhost` is accepted too
/// because common MCP clients register it).
fn is_loopback_host(host: &url::Host<&str>) -> bool {
    match host {
        url::Host::Ipv4(ip) => ip.is_loopback(),
        url::Host::Ipv6(ip) => ip.is_loopback(),
        url::Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
    }
}

/// Checks a redirect URI a client registers or presents: absolute, no fragment, no
/// credentials; `https`, or `http` on a loopback host (any port), or a private-use scheme
/// with a dot in it (`com.example.app:/cb`, RFC 8252 §7.1). The reason is for people.
pub fn check_redirect_uri(uri: &str) -> Result<url::Url, String> {
    if uri.len() > MAX_URI_LEN {
        return Err(format!("longer than {MAX_URI_LEN} characters"));
    }
    let u = url::Url::parse(uri).map_err(|_| "not an absolute URL".to_string())?;
    if u.fragment().is_some() {
        return Err("must not carry a fragment".into());
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err("must not carry credentials".into());
    }
    match u.scheme() {
        "https" => {
            if u.host_str().is_none_or(str::is_empty) {
                return Err("has no host".into());
            }
            Ok(u)
        }
        "http" => match u.host() {
            Some(h) if is_loopback_host(&h) => Ok(u),
            _ => {
                Err("http is allowed only on a loopback host (127.0.0.1, [::1], localhost)".into())
            }
        },
        s if s.contains('.') && !matches!(s, "javascript" | "data" | "file" | "vbscript") => Ok(u),
        s => Err(format!("scheme '{s}' is not https")),
    }
}

/// Whether a presented redirect URI matches a registered one: exactly, except that the port of
/// an `http` loopback URI may differ (RFC 8252 §7.3: native apps listen on any free port).
pub fn redirect_matches(registered: &str, presented: &str) -> bool {
    if registered == presented {
        return true;
    }
    let (Ok(r), Ok(p)) = (url::Url::parse(registered), url::Url::parse(presented)) else {
        return false;
    };
    let loopback = r.scheme() == "http" && r.host().is_some_and(|h| is_loopback_host(&h));
    loopback
        && p.scheme() == "http"
        && r.host_str() == p.host_str()
        && r.path() == p.path()
        && r.query() == p.query()
        && p.fragment().is_none()
        && p.username().is_empty()
        && p.password().is_none()
}

/// Checks a client id that is a URL (a Client ID Metadata Document): `https`, a host, a path
/// other than `/`, no fragment, credentials or dot segments. `http_hosts` are hosts the
/// operator allows over `http` (the webhook setting, for local development).
pub fn check_client_id_url(id: &str, http_hosts: &[String]) -> Result<url::Url, String> {
    if id.len() > MAX_URI_LEN {
        return Err(format!("longer than {MAX_URI_LEN} characters"));
    }
    let u = url::Url::parse(id).map_err(|_| "not an absolute URL".to_string())?;
    // `Url` normalizes; a client id must already be in normal form to be compared exactly.
    if u.as_str() != id {
        return Err("must be in normal form (no dot segments, lowercase scheme and host)".into());
    }
    let host = u
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or("has no host")?;
    match u.scheme() {
        "https" => {}
        "http" if http_hosts.iter().any(|h| h.eq_ignore_ascii_case(host)) => {}
        s => return Err(format!("scheme '{s}' is not https")),
    }
    if u.fragment().is_some() || !u.username().is_empty() || u.password().is_some() {
        return Err("must not carry a fragment or credentials".into());
    }
    if u.path() == "/" || u.path().is_empty() {
        return Err("must have a path".into());
    }
    Ok(u)
}

/// The S256 challenge of a verifier: `BASE64URL(SHA256(verifier))`.
pub fn s256(verifier: &str) -> String {
    B64URL.encode(Sha256::digest(verifier.as_bytes()))
}

/// Whether `verifier` is well formed (RFC 7636 §4.1: 43–128 unreserved characters).
pub fn verifier_is_valid(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// Whether a code challenge is well formed (an S256 challenge is 43 base64url characters).
pub fn challenge_is_valid(challenge: &str) -> bool {
    challenge.len() == 43
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
}

/// Verifies a PKCE S256 verifier against the stored challenge, in constant time.
pub fn pkce_matches(verifier: &str, challenge: &str) -> bool {
    verifier_is_valid(verifier) && ct_eq(&s256(verifier), challenge)
}

/// The scopes a client may ask for.
pub const SCOPES: [&str; 3] = ["read", "write", "admin"];

/// Maps a requested OAuth scope (space-separated) to a key scope: the widest named. Absent or
/// empty asks for `read write`. An unknown scope is an error naming it.
pub fn parse_scope(scope: Option<&str>) -> Result<Scope, String> {
    let mut out: Option<Scope> = None;
    for s in scope.unwrap_or("").split_ascii_whitespace() {
        let this = match s {
            "read" => Scope::Read,
            "write" => Scope::Write,
            "admin" => Scope::Admin,
            other => return Err(format!("unknown scope '{other}' (known: read write admin)")),
        };
        out = Some(match (out, this) {
            (Some(Scope::Admin), _) | (_, Scope::Admin) => Scope::Admin,
            (Some(Scope::Write), _) | (_, Scope::Write) => Scope::Write,
            _ => Scope::Read,
        });
    }
    Ok(out.unwrap_or(Scope::Write))
}

/// The OAuth scope string of a granted key scope (each scope includes the narrower ones).
pub fn scope_string(s: Scope) -> &'static str {
    match s {
        Scope::Read => "read",
        Scope::Write => "read write",
        Scope::Admin => "read write admin",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uris_follow_rfc_8252() {
        assert!(check_redirect_uri("https://app.example.com/cb").is_ok());
        assert!(check_redirect_uri("http://127.0.0.1:33418/callback").is_ok());
        assert!(check_redirect_uri("http://[::1]/cb").is_ok());
        assert!(check_redirect_uri("http://localhost:8080/cb").is_ok());
        assert!(check_redirect_uri("com.example.app:/oauth").is_ok());
        assert!(check_redirect_uri("http://example.com/cb").is_err());
        assert!(check_redirect_uri("http://127.0.0.1.nip.io/cb").is_err());
        assert!(check_redirect_uri("https://app.example.com/cb#x").is_err());
        assert!(check_redirect_uri("https://u:p@app.example.com/cb").is_err());
        assert!(check_redirect_uri("javascript:alert(1)").is_err());
        assert!(check_redirect_uri("/relative").is_err());
    }

    #[test]
    fn loopback_redirects_match_on_any_port() {
        assert!(redirect_matches(
            "http://127.0.0.1/cb",
            "http://127.0.0.1:5000/cb"
        ));
        assert!(!redirect_matches(
            "http://127.0.0.1/cb",
            "http://127.0.0.1:5000/other"
        ));
        assert!(!redirect_matches(
            "https://a.example/cb",
            "https://a.example:444/cb"
        ));
        assert!(!redirect_matches(
            "https://a.example/cb",
            "https://a.example/cb2"
        ));
    }

    #[test]
    fn client_id_urls_are_https_with_a_path() {
        assert!(check_client_id_url("https://app.example.com/client.json", &[]).is_ok());
        assert!(check_client_id_url("https://app.example.com/", &[]).is_err());
        assert!(check_client_id_url("http://app.example.com/c.json", &[]).is_err());
        assert!(check_client_id_url("https://app.example.com/a/../c.json", &[]).is_err());
        assert!(
            check_client_id_url("http://127.0.0.1:9/c.json", &["127.0.0.1".to_string()]).is_ok()
        );
    }

    #[test]
    fn pkce_s256_matches_the_rfc_example() {
        // RFC 7636 appendix B.
        let v = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert_eq!(s256(v), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
        assert!(pkce_matches(
            v,
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        ));
        assert!(!pkce_matches(
            v,
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cX"
        ));
        assert!(!pkce_matches("short", &s256("short")));
    }

    #[test]
    fn scopes_map_to_the_widest_named() {
        assert_eq!(parse_scope(None), Ok(Scope::Write));
        assert_eq!(parse_scope(Some("read")), Ok(Scope::Read));
        assert_eq!(parse_scope(Some("read admin")), Ok(Scope::Admin));
        assert!(parse_scope(Some("read leads:all")).is_err());
    }
}
