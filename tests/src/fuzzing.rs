//! Fuzz entry points: each takes arbitrary bytes and checks what must hold for every input
//! (no panic, a 4xx in the flat error shape rather than a 5xx, bounded work).
//!
//! Two drivers share them, so a crash found by one replays in the other:
//! - the cargo-fuzz targets under `tests/fuzz/` (coverage-guided, long runs; commands and
//!   figures in `lib/docs/reliability.md`);
//! - `tests/tests/fuzz_short.rs`, which every `cargo test` runs: it replays the checked-in corpus
//!   (`tests/fuzz/corpus/<target>/`) and a few thousand seeded mutations of it.

use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::http::{Method, Request};
use klozeo_core::adapters::sqlite::SqliteStore;
use klozeo_core::app::App;
use klozeo_core::domain::cursor::CursorKey;
use klozeo_core::domain::filter::FilterSet;
use klozeo_core::domain::lead::Lead;
use klozeo_core::domain::scoring::Expr;
use klozeo_core::domain::webhook;
use klozeo_core::edges::http::{Routes, service};
use klozeo_core::ports::UuidIds;
use tower::ServiceExt as _;

/// The named targets, as the corpus directories and the cargo-fuzz binaries are called.
pub const TARGETS: [&str; 7] = [
    "filter",
    "scoring",
    "cursor",
    "webhook_url",
    "api_body",
    "oauth_uri",
    "csv_import",
];

/// Runs the target called `name` on `data`; panics when a property breaks.
pub fn run(name: &str, data: &[u8]) {
    match name {
        "filter" => filter(data),
        "scoring" => scoring(data),
        "cursor" => cursor(data),
        "webhook_url" => webhook_url(data),
        "api_body" => api_body(data),
        "oauth_uri" => oauth_uri(data),
        "csv_import" => csv_import(data),
        other => panic!("no fuzz target called {other}"),
    }
}

/// Leads chosen to reach the evaluators' edge cases: every field set to an extreme, and every
/// optional field missing.
fn sample_leads() -> &'static [Lead] {
    static LEADS: OnceLock<Vec<Lead>> = OnceLock::new();
    LEADS.get_or_init(|| {
        let full = serde_json::json!({
            "id": "cl_1", "name": "Ünïcode Café", "source": "s", "description": "d",
            "address": "1 rue", "city": "İstanbul", "state": "\u{212A}", "country": "FR",
            "postal_code": "1e3", "latitude": 89.9, "longitude": -179.9, "phone": "+33 1 23",
            "email": "a@b.co", "website": "https://x.y", "rating": 4.5, "review_count": 3,
            "category": "Food", "tags": ["é", "vip", "\u{212A}"], "source_id": "src-1",
            "logo_url": null, "status": "new", "score": 1e300,
            "attributes": [
                {"id": "1", "name": "x", "type": "list", "value": ["a"]},
                {"id": "2", "name": "n", "type": "number", "value": 1e308},
                {"id": "3", "name": "t", "type": "text", "value": "NaN"},
                {"id": "4", "name": "b", "type": "bool", "value": true},
                {"id": "5", "name": "o", "type": "object", "value": {}}
            ],
            "created_at": i64::MAX, "updated_at": i64::MIN, "last_interaction_at": 0
        });
        let empty = serde_json::json!({
            "id": "cl_2", "name": "", "source": "", "description": null, "address": null,
            "city": null, "state": null, "country": null, "postal_code": null,
            "latitude": null, "longitude": null, "phone": null, "email": null,
            "website": null, "rating": null, "review_count": null, "category": null,
            "tags": [], "source_id": null, "logo_url": null,
            "created_at": 0, "updated_at": 0, "last_interaction_at": 0
        });
        [full, empty]
            .into_iter()
            .map(|v| serde_json::from_value(v).expect("sample lead"))
            .collect()
    })
}

/// The `filter` query parameters (one per line): parsing either succeeds or is a 400, and a
/// parsed filter can be evaluated on any lead.
pub fn filter(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let params: Vec<&str> = text.lines().take(64).collect();
    match FilterSet::parse(&params) {
        Ok(set) => {
            for lead in sample_leads() {
                let _ = set.matches(lead);
            }
        }
        Err(e) => assert_client_error(&e),
    }
}

/// A scoring-rule expression: parsing succeeds or is a 400, and evaluation of what parses is
/// finite on every lead.
pub fn scoring(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    match Expr::parse(&text) {
        Ok(expr) => {
            for lead in sample_leads() {
                let v = expr.eval(lead);
                assert!(v.is_finite(), "{text:?} evaluated to {v}");
            }
        }
        Err(e) => assert_client_error(&e),
    }
}

/// A cursor sent by a client: decoding a forged value fails with a 400, and any position the
/// server encodes decodes to itself under its scope only.
pub fn cursor(data: &[u8]) {
    let key = CursorKey::new(b"fuzz-cursor-key-0123456789").expect("key");
    let text = String::from_utf8_lossy(data);
    if let Err(e) = key.decode(&text, "scope") {
        assert_client_error(&e);
    }
    // Positions as the server builds them: a few strings, at most MAX_POSITION_BYTES in all.
    let mut budget = klozeo_core::domain::cursor::MAX_POSITION_BYTES - "scope".len() - 8 * 4;
    let position: Vec<String> = text
        .split('\u{1f}')
        .take(8)
        .map(|p| {
            let mut cut = p.len().min(budget);
            while !p.is_char_boundary(cut) {
                cut -= 1;
            }
            budget -= cut;
            p[..cut].to_string()
        })
        .collect();
    let encoded = key.encode("scope", &position);
    assert_eq!(key.decode(&encoded, "scope").expect("round trip"), position);
    assert!(key.decode(&encoded, "other").is_err());
}

/// A webhook URL: validation succeeds or is a 400, and nothing accepted is outside https
/// (or http to an allowed host) or carries credentials.
pub fn webhook_url(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let hosts = vec!["localhost".to_string()];
    match webhook::validate_url(&text, &hosts) {
        Ok(()) => {
            let u = url::Url::parse(&text).expect("an accepted URL parses");
            assert!(
                u.username().is_empty() && u.password().is_none(),
                "{text:?}"
            );
            match u.scheme() {
                "https" => {}
                "http" => assert_eq!(u.host_str(), Some("localhost"), "{text:?}"),
                other => panic!("accepted scheme {other} in {text:?}"),
            }
        }
        Err(e) => assert_client_error(&e),
    }
}

/// An OAuth redirect URI and client id URL: what the validators accept is never http off
/// loopback, never carries credentials or a fragment, and a client id URL is https with a path;
/// a loopback redirect matches itself on another port and never another path.
pub fn oauth_uri(data: &[u8]) {
    use klozeo_core::domain::oauth::{check_client_id_url, check_redirect_uri, redirect_matches};
    let text = String::from_utf8_lossy(data);
    if let Ok(u) = check_redirect_uri(&text) {
        assert!(
            u.username().is_empty() && u.password().is_none() && u.fragment().is_none(),
            "{text:?}"
        );
        match u.scheme() {
            "https" => assert!(u.host_str().is_some_and(|h| !h.is_empty()), "{text:?}"),
            "http" => {
                let loopback = match u.host() {
                    Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                    Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                    Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
                    None => false,
                };
                assert!(loopback, "http redirect off loopback accepted: {text:?}");
                let mut other = u.clone();
                if other.set_port(Some(1)).is_ok() {
                    assert!(redirect_matches(&text, other.as_str()), "{text:?}");
                }
                let mut elsewhere = u.clone();
                elsewhere.set_path("/klozeo-fuzz-elsewhere");
                if elsewhere.path() != u.path() {
                    assert!(!redirect_matches(&text, elsewhere.as_str()), "{text:?}");
                }
            }
            s => assert!(
                s.contains('.') && !matches!(s, "javascript" | "data" | "file"),
                "{text:?}"
            ),
        }
    }
    if let Ok(u) = check_client_id_url(&text, &[]) {
        assert_eq!(u.scheme(), "https", "{text:?}");
        assert_eq!(u.as_str(), text, "a client id is compared exactly");
        assert!(u.path().len() > 1 && u.fragment().is_none(), "{text:?}");
        assert!(
            u.username().is_empty() && u.password().is_none(),
            "{text:?}"
        );
    }
}

/// Rows read per input (a row needs at least a line break, so inputs of fuzzing size stay
/// below it).
const MAX_IMPORT_ROWS: usize = 4096;

/// An import file (`klozeo import`, CSV or JSON): the header and every row parse into lead
/// changes or fail with a 400 naming the row's problem, never a panic; a row that parses is a
/// valid create (name and source set, finite numbers); and the rows are no more than the
/// file's lines.
pub fn csv_import(data: &[u8]) {
    use klozeo_core::edges::import::{CsvRows, json_rows};
    match CsvRows::new(data, Some("fuzz".into())) {
        Ok(rows) => {
            let mut n = 0;
            for row in rows.take(MAX_IMPORT_ROWS) {
                n += 1;
                match row {
                    Ok(changes) => {
                        // A create needs a name and a source; numbers that parse are finite.
                        assert!(changes.name.is_some(), "{changes:?}");
                        assert!(changes.source.is_some(), "{changes:?}");
                        for n in [changes.latitude, changes.longitude, changes.rating] {
                            assert!(n.flatten().is_none_or(f64::is_finite), "{changes:?}");
                        }
                    }
                    Err(e) => assert_client_error(&e),
                }
            }
            assert!(n <= data.len() + 1, "{n} rows from {} bytes", data.len());
        }
        Err(e) => assert_client_error(&e),
    }
    match json_rows(data, Some("fuzz")) {
        Ok(rows) => {
            for row in rows {
                if let Err(e) = row {
                    assert_client_error(&e);
                }
            }
        }
        Err(e) => assert_client_error(&e),
    }
}

fn assert_client_error(e: &klozeo_core::Error) {
    let status = e.code().http_status();
    assert!(
        (400..500).contains(&status),
        "an input error answered {status}: {e}"
    );
}

/// The request bodies and query strings the API accepts, sent through the real router over an
/// embedded store: whatever the bytes, the answer is below 500, and every 4xx has the flat
/// error shape.
///
/// The first byte picks the route; the rest is the body (or the query string for lists).
pub fn api_body(data: &[u8]) {
    let _ = api_status(data);
}

/// [`api_body`], returning the status the router answered (`None` for an empty input), so a
/// test can check that the inputs reach the handlers rather than stopping at authentication.
pub fn api_status(data: &[u8]) -> Option<u16> {
    let (&selector, rest) = data.split_first()?;
    let fx = fixture();
    let route = &fx.routes[usize::from(selector) % fx.routes.len()];
    let (method, uri, body) = if route.1.ends_with('?') {
        let query: String = url::form_urlencoded::byte_serialize(rest).collect();
        // The fuzzer writes `&` and `=` literally so it can build several parameters.
        let query = query.replace("%26", "&").replace("%3D", "=");
        (route.0.clone(), format!("{}{query}", route.1), Vec::new())
    } else {
        (route.0.clone(), route.1.clone(), rest.to_vec())
    };
    let (status, text) = fx.rt.block_on(async {
        let req = Request::builder()
            .method(method.clone())
            .uri(&uri)
            .header("x-api-key", &fx.key)
            .header("content-type", "application/json")
            .body(Body::from(body))
            .expect("request");
        let resp = service(fx.app.clone(), Routes::All)
            .oneshot(req)
            .await
            .expect("infallible");
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), 64 << 20)
            .await
            .expect("body");
        (status, String::from_utf8_lossy(&bytes).into_owned())
    });
    assert!(
        status.as_u16() < 500,
        "{method} {uri} answered {status}: {text}"
    );
    if status.is_client_error() {
        let v: serde_json::Value = serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("{method} {uri} answered {status} with non-JSON {text:?}"));
        assert!(
            v["error"].is_string() && v["code"].is_string() && v["message"].is_string(),
            "{method} {uri} answered {status} without the flat error shape: {text}"
        );
    }
    Some(status.as_u16())
}

struct Fixture {
    rt: tokio::runtime::Runtime,
    app: Arc<App>,
    key: String,
    routes: Vec<(Method, String)>,
    _dir: tempfile::TempDir,
}

/// One server per process: an account with a lead, a note, a rule and a webhook, so the
/// id-addressed routes reach their validation instead of stopping at 404.
fn fixture() -> &'static Fixture {
    static FX: OnceLock<Fixture> = OnceLock::new();
    FX.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Arc::new(SqliteStore::open(dir.path()).expect("store"));
        let mut config = crate::test_config();
        // A rule change rescores the account inline for up to the job budget (5 s by default)
        // and the fuzzer's account grows by every lead it creates, so a long run would reach a
        // 5 s libFuzzer timeout by design, not by a hang. The rest of the job is the worker's,
        // which this fixture does not run.
        config.jobs.inline_budget = std::time::Duration::from_millis(50);
        let app = Arc::new(
            App::with_parts(
                store,
                Arc::new(klozeo_core::ports::SystemClock),
                Arc::new(UuidIds),
                &config,
            )
            .expect("app"),
        );
        let (key, lead, note, rule, hook) = rt.block_on(async {
            let (_, key) = app
                .accounts
                .create_account("fuzz@example.com", "unlimited")
                .await
                .expect("account");
            let call = |m: Method, path: &str, body: serde_json::Value| {
                let app = app.clone();
                let key = key.raw.clone();
                let path = format!("/api/v1{path}");
                async move {
                    let req = Request::builder()
                        .method(m)
                        .uri(path)
                        .header("x-api-key", key)
                        .header("content-type", "application/json")
                        .body(Body::from(body.to_string()))
                        .expect("request");
                    let resp = service(app, Routes::All).oneshot(req).await.expect("ok");
                    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
                        .await
                        .expect("body");
                    let v: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
                    v["id"].as_str().expect("an id").to_string()
                }
            };
            let lead = call(
                Method::POST,
                "/leads",
                serde_json::json!({"name": "Fuzz", "source": "fuzz", "city": "Paris"}),
            )
            .await;
            let note = call(
                Method::POST,
                &format!("/leads/{lead}/notes"),
                serde_json::json!({"content": "n"}),
            )
            .await;
            let rule = call(
                Method::POST,
                "/scoring-rules",
                serde_json::json!({"name": "r", "expression": "rating > 4", "weight": 1}),
            )
            .await;
            let hook = call(
                Method::POST,
                "/webhooks",
                serde_json::json!({"url": "https://example.com/hook"}),
            )
            .await;
            (key.raw, lead, note, rule, hook)
        });
        let p = |s: &str| format!("/api/v1{s}");
        let routes = vec![
            (Method::POST, p("/leads")),
            (Method::PUT, p(&format!("/leads/{lead}"))),
            (Method::PATCH, p(&format!("/leads/{lead}"))),
            (Method::POST, p("/leads/batch")),
            (Method::PUT, p("/leads/batch")),
            (Method::DELETE, p("/leads/batch")),
            (Method::POST, p(&format!("/leads/{lead}/notes"))),
            (Method::PUT, p(&format!("/notes/{note}"))),
            (Method::POST, p(&format!("/leads/{lead}/attributes"))),
            (Method::POST, p("/scoring-rules")),
            (Method::PUT, p(&format!("/scoring-rules/{rule}"))),
            (Method::POST, p("/leads/score/batch")),
            (Method::POST, p("/webhooks")),
            (Method::PUT, p(&format!("/webhooks/{hook}"))),
            (Method::GET, p("/leads?")),
            (Method::GET, p(&format!("/webhooks/{hook}/deliveries?"))),
        ];
        Fixture {
            rt,
            app,
            key,
            routes,
            _dir: dir,
        }
    })
}
