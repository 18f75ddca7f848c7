//! Webhooks: subscriptions, the deliveries made to them, how a delivery is signed, when it is
//! retried, and which targets may be called at all.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::domain::event::EventKind;
use crate::error::{Error, Result};

/// Most webhooks one account may have.
pub const MAX_WEBHOOKS: usize = 25;
/// Longest accepted webhook URL.
pub const MAX_URL_LEN: usize = 2048;
/// Longest accepted signing secret.
pub const MAX_SECRET_LEN: usize = 256;
/// How long a target may take to answer one delivery attempt.
pub const DELIVERY_TIMEOUT_SECS: u64 = 5;
/// How many bytes of a failed answer are kept in the delivery log.
pub const MAX_ERROR_LEN: usize = 300;
/// The event name of `POST /webhooks/{id}/test` deliveries (never subscribed to).
pub const PING_EVENT: &str = "ping";

/// A stored webhook subscription.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Webhook {
    /// A UUID.
    pub id: String,
    /// Where deliveries are POSTed.
    pub url: String,
    /// The events it receives.
    pub events: Vec<EventKind>,
    /// Whether deliveries are made.
    pub active: bool,
    /// Unix seconds.
    pub created_at: i64,
    /// The signing secret, if any; never shown after creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

impl Webhook {
    /// Whether this webhook receives `kind`.
    pub fn wants(&self, kind: EventKind) -> bool {
        self.active && self.events.contains(&kind)
    }
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    /// Not yet succeeded; another attempt is due at `next_attempt_at`.
    Pending,
    /// The target answered 2xx.
    Succeeded,
    /// Every attempt failed (or the webhook is gone); no more attempts are made.
    Failed,
}

/// One event sent (or to be sent) to one webhook, with what happened so far.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    /// The delivery id; also the `webhook-id` header, the same on every attempt.
    pub id: String,
    /// The webhook it goes to.
    pub webhook_id: String,
    /// The event name (`lead.created`, …, or `ping`).
    pub event: String,
    /// The exact body sent on every attempt.
    pub payload: String,
    /// Where it stands.
    pub status: DeliveryStatus,
    /// Attempts made.
    pub attempts: u32,
    /// The status code of the last answer, if the target answered.
    pub last_status_code: Option<u16>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// Unix seconds of the next attempt, while pending.
    pub next_attempt_at: Option<i64>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds of the event (the `webhook-timestamp` header, the same on every attempt).
    pub timestamp: i64,
}

/// The body a webhook receives: `{event, timestamp, data}` (klozeo-docs.txt, "Payload format").
pub fn payload(event: &str, timestamp: i64, data: &serde_json::Value) -> Result<String> {
    serde_json::to_string(&serde_json::json!({
        "event": event,
        "timestamp": timestamp,
        "data": data,
    }))
    .map_err(Error::internal)
}

/// Parses the subscribed event names: each must be one of the documented events. Absent or
/// empty means every event.
pub fn parse_events(names: Option<&[String]>) -> Result<Vec<EventKind>> {
    let Some(names) = names.filter(|n| !n.is_empty()) else {
        return Ok(EventKind::ALL.to_vec());
    };
    let mut out = Vec::new();
    for n in names {
        let kind = EventKind::parse(n.trim()).ok_or_else(|| {
            let valid: Vec<&str> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
            Error::invalid(format!(
                "events: '{n}' is not an event; valid events are {}",
                valid.join(", ")
            ))
        })?;
        if !out.contains(&kind) {
            out.push(kind);
        }
    }
    Ok(out)
}

/// Checks a webhook URL: absolute, `https` (or `http` for a host the operator allows), with a
/// host and no credentials.
pub fn validate_url(url: &str, http_hosts: &[String]) -> Result<()> {
    let bad = |why: &str| Err(Error::invalid(format!("url: {why}")));
    if url.len() > MAX_URL_LEN {
        return bad(&format!("longer than {MAX_URL_LEN} characters"));
    }
    let Ok(u) = url::Url::parse(url) else {
        return bad("not an absolute URL");
    };
    let Some(host) = u.host_str().filter(|h| !h.is_empty()) else {
        return bad("has no host");
    };
    if !u.username().is_empty() || u.password().is_some() {
        return bad("must not carry credentials");
    }
    match u.scheme() {
        "https" => Ok(()),
        "http" if http_hosts.iter().any(|h| h.eq_ignore_ascii_case(host)) => Ok(()),
        "http" => bad(&format!(
            "must use https (http is allowed only for hosts the operator lists in \
             KLOZEO_WEBHOOK_HTTP_HOSTS; '{host}' is not one)"
        )),
        other => bad(&format!("scheme '{other}' is not https")),
    }
}

/// Checks a signing secret: printable ASCII, at most [`MAX_SECRET_LEN`] characters.
pub fn validate_secret(secret: &str) -> Result<()> {
    if secret.is_empty() || secret.len() > MAX_SECRET_LEN {
        return Err(Error::invalid(format!(
            "secret: must be 1-{MAX_SECRET_LEN} characters"
        )));
    }
    if !secret.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return Err(Error::invalid("secret: must be visible ASCII characters"));
    }
    Ok(())
}

fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

/// `X-Klozeo-Signature`: lower-case hex HMAC-SHA256 of the raw body with the secret, as the
/// vendor's documented verifier computes it.
pub fn klozeo_signature(secret: &str, body: &[u8]) -> String {
    hex::encode(hmac_sha256(secret.as_bytes(), &[body]))
}

/// The Standard Webhooks `webhook-signature` value, `v1,<base64 HMAC-SHA256 of
/// "id.timestamp.body">`. A secret of the standard form `whsec_<base64>` signs with the decoded
/// bytes, so receivers can use the standard libraries with the same secret; any other secret
/// signs with its own bytes.
pub fn standard_signature(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> String {
    let key = secret
        .strip_prefix("whsec_")
        .and_then(|b| B64.decode(b).ok())
        .unwrap_or_else(|| secret.as_bytes().to_vec());
    let ts = timestamp.to_string();
    let mac = hmac_sha256(&key, &[id.as_bytes(), b".", ts.as_bytes(), b".", body]);
    format!("v1,{}", B64.encode(mac))
}

/// The headers of one delivery attempt (the same on every attempt of a delivery).
pub fn delivery_headers(
    secret: Option<&str>,
    delivery_id: &str,
    timestamp: i64,
    event: &str,
    body: &[u8],
) -> Vec<(&'static str, String)> {
    let mut h = vec![
        ("content-type", "application/json".to_string()),
        ("user-agent", "klozeo-webhooks/1".to_string()),
        ("x-klozeo-event", event.to_string()),
        ("webhook-id", delivery_id.to_string()),
        ("webhook-timestamp", timestamp.to_string()),
    ];
    if let Some(s) = secret {
        h.push(("x-klozeo-signature", klozeo_signature(s, body)));
        h.push((
            "webhook-signature",
            standard_signature(s, delivery_id, timestamp, body),
        ));
    }
    h
}

/// When failed deliveries are tried again: seconds after each failed attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct RetrySchedule(Vec<u64>);

impl Default for RetrySchedule {
    /// Eight attempts over about 27 hours: at once, then after 5 s, 5 min, 30 min, 2 h, 5 h,
    /// 10 h and 10 h (the Standard Webhooks schedule).
    fn default() -> Self {
        RetrySchedule(vec![5, 300, 1800, 7200, 18_000, 36_000, 36_000])
    }
}

impl RetrySchedule {
    /// Parses `KLOZEO_WEBHOOK_RETRY_SCHEDULE`: comma-separated whole seconds, e.g. `1,2,5`.
    pub fn parse(s: &str) -> Result<Self> {
        let mut v = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let n: u64 = part.parse().map_err(|_| {
                Error::invalid(format!(
                    "KLOZEO_WEBHOOK_RETRY_SCHEDULE: '{part}' is not a whole number of seconds"
                ))
            })?;
            v.push(n);
        }
        if v.is_empty() {
            return Err(Error::invalid(
                "KLOZEO_WEBHOOK_RETRY_SCHEDULE: give at least one delay",
            ));
        }
        Ok(RetrySchedule(v))
    }

    /// Attempts in all: the first plus one per delay.
    pub fn max_attempts(&self) -> u32 {
        self.0.len() as u32 + 1
    }

    /// The delay after failed attempt number `attempts` (1-based), with ±10 % jitter drawn
    /// from `unit` in [0, 1) so retries of many deliveries spread out; `None` when no attempt
    /// is left.
    pub fn delay_after(&self, attempts: u32, unit: f64) -> Option<u64> {
        let base = *self.0.get(attempts.checked_sub(1)? as usize)?;
        let jitter = 0.9 + 0.2 * unit.clamp(0.0, 1.0);
        Some(((base as f64) * jitter).round() as u64)
    }
}

/// Whether a target address must not be called (unless the operator allows private targets):
/// loopback, private, link-local (cloud metadata lives there), carrier-grade NAT, unspecified,
/// multicast, documentation and other reserved ranges, and their IPv4-mapped IPv6 forms.
pub fn is_forbidden_target(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return forbidden_v4(v4);
            }
            let seg0 = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (seg0 & 0xfe00) == 0xfc00 // unique local
                || (seg0 & 0xffc0) == 0xfe80 // link-local
                || (seg0 == 0x2001 && v6.segments()[1] == 0x0db8) // documentation
                || v6 == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) // EC2 metadata (IPv6)
        }
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || o[0] == 0
        || (o[0] == 100 && (o[1] & 0xc0) == 64) // carrier-grade NAT, 100.64.0.0/10
        || (o[0] == 192 && o[1] == 0 && o[2] == 0) // IETF protocol assignments
        || (o[0] == 198 && (o[1] & 0xfe) == 18) // benchmarking, 198.18.0.0/15
        || o[0] >= 240 // reserved
}

/// Unix seconds as an ISO-8601 UTC timestamp, `2023-12-25T16:00:00Z` (the one timestamp the
/// SDKs read as a string: `Webhook.created_at`).
pub fn iso8601(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso8601_formats_utc() {
        assert_eq!(iso8601(1_703_520_000), "2023-12-25T16:00:00Z");
        assert_eq!(iso8601(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso8601(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(iso8601(4_102_444_799), "2099-12-31T23:59:59Z");
    }

    #[test]
    fn standard_signature_matches_the_specification_example() {
        // The example of the Standard Webhooks specification.
        let sig = standard_signature(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn klozeo_signature_is_hex_hmac_of_the_body() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        assert_eq!(
            klozeo_signature("Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn events_are_checked_and_default_to_all() {
        assert_eq!(parse_events(None).unwrap_or_default().len(), 11);
        let got = parse_events(Some(&["lead.created".into(), "lead.created".into()]));
        assert_eq!(got, Ok(vec![EventKind::LeadCreated]));
        let err = parse_events(Some(&["lead.exploded".into()])).unwrap_err();
        assert!(err.to_string().contains("leads.scored"), "{err}");
    }

    #[test]
    fn urls_must_be_https_unless_the_host_is_allowed() {
        assert!(validate_url("https://hooks.example.com/k", &[]).is_ok());
        assert!(validate_url("http://hooks.example.com/k", &[]).is_err());
        assert!(validate_url("http://127.0.0.1:9/k", &["127.0.0.1".into()]).is_ok());
        for bad in [
            "ftp://x.example/",
            "https://",
            "not a url",
            "https://u:p@x.example/",
        ] {
            assert!(validate_url(bad, &[]).is_err(), "{bad}");
        }
    }

    #[test]
    fn private_and_metadata_targets_are_forbidden() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "fd00:ec2::254",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
        ] {
            let ip: IpAddr = ip.parse().unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
            assert!(is_forbidden_target(ip), "{ip}");
        }
        for ip in [
            "93.184.216.34",
            "2606:2800:220:1:248:1893:25c8:1946",
            "8.8.8.8",
        ] {
            let ip: IpAddr = ip.parse().unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
            assert!(!is_forbidden_target(ip), "{ip}");
        }
    }

    #[test]
    fn default_schedule_is_eight_attempts_over_a_day() {
        let s = RetrySchedule::default();
        assert_eq!(s.max_attempts(), 8);
        let total: u64 = (1..s.max_attempts())
            .filter_map(|a| s.delay_after(a, 0.0))
            .sum();
        assert!(total >= 24 * 3600, "{total}");
        assert_eq!(s.delay_after(8, 0.5), None);
        assert_eq!(
            RetrySchedule::parse("1,2,5").map(|s| s.max_attempts()),
            Ok(4)
        );
        assert!(RetrySchedule::parse("1,x").is_err());
    }
}
