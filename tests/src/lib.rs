//! Test harness shared by the cross-crate tests: start the real router on a loopback port over
//! either store, and create accounts to call it with.
//!
//! The DynamoDB variant runs only when `KLOZEO_TEST_DYNAMODB_ENDPOINT` names an emulator (the
//! README's test command starts moto and sets it); with `KLOZEO_REQUIRE_DYNAMODB=1` a missing
//! emulator is a failure instead of a skip.

pub mod faults;
pub mod fuzzing;
pub mod oauth;

use std::sync::Arc;

use klozeo_core::adapters::dynamodb::DynamoStore;
use klozeo_core::adapters::sqlite::SqliteStore;
use klozeo_core::app::App;
use klozeo_core::config::{Config, DEFAULT_MAX_BODY_BYTES, StoreConfig};
use klozeo_core::domain::account::Plans;
use klozeo_core::edges::http::Routes;
use klozeo_core::ports::{Clock, Store, SystemClock, UuidIds};

/// Which backend a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The embedded SQLite store in a temporary directory.
    Embedded,
    /// DynamoDB through the emulator named by `KLOZEO_TEST_DYNAMODB_ENDPOINT`.
    Dynamo,
}

/// The backends available in this run: always embedded, plus DynamoDB when an emulator is set.
pub fn backends() -> Vec<Backend> {
    let mut v = vec![Backend::Embedded];
    if dynamo_endpoint().is_some() {
        v.push(Backend::Dynamo);
    } else if std::env::var("KLOZEO_REQUIRE_DYNAMODB").is_ok_and(|v| v == "1") {
        panic!("KLOZEO_REQUIRE_DYNAMODB=1 but KLOZEO_TEST_DYNAMODB_ENDPOINT is not set");
    }
    v
}

fn dynamo_endpoint() -> Option<String> {
    std::env::var("KLOZEO_TEST_DYNAMODB_ENDPOINT")
        .ok()
        .filter(|s| !s.is_empty())
}

/// A store on `backend` with fresh, empty tables.
pub async fn fresh_store(backend: Backend) -> (Arc<dyn Store>, Option<tempfile::TempDir>) {
    fresh_store_with_clock(backend, Arc::new(SystemClock)).await
}

/// [`fresh_store`] whose item expiry follows `clock`.
pub async fn fresh_store_with_clock(
    backend: Backend,
    clock: Arc<dyn Clock>,
) -> (Arc<dyn Store>, Option<tempfile::TempDir>) {
    let (store, dir, _) = fresh_store_parts(backend, clock).await;
    (store, dir)
}

/// [`fresh_store_with_clock`], with the embedded store's own handle when that is the backend.
async fn fresh_store_parts(
    backend: Backend,
    clock: Arc<dyn Clock>,
) -> (
    Arc<dyn Store>,
    Option<tempfile::TempDir>,
    Option<SqliteStore>,
) {
    match backend {
        Backend::Embedded => {
            let dir = tempfile::tempdir().expect("temp dir");
            let store = SqliteStore::open(dir.path())
                .expect("open sqlite store")
                .with_clock(clock);
            (Arc::new(store.clone()), Some(dir), Some(store))
        }
        Backend::Dynamo => {
            let endpoint = dynamo_endpoint().expect("emulator endpoint");
            let sdk = aws_config_for(&endpoint).await;
            let prefix = format!("t{}-", uuid_like());
            let store =
                DynamoStore::new(klozeo_core::app::dynamo_client(&sdk), prefix).with_clock(clock);
            store.create_tables().await.expect("create tables");
            (Arc::new(store), None, None)
        }
    }
}

/// The emulator endpoint of a DynamoDB run (it serves S3 too), if any.
pub fn emulator_endpoint() -> Option<String> {
    dynamo_endpoint()
}

async fn aws_config_for(endpoint: &str) -> klozeo_core::app::SdkConfig {
    klozeo_core::app::sdk_config_for_endpoint(endpoint).await
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{:x}{:x}{}",
        nanos,
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// The built-in plans plus `leads100`: the free plan's lead and batch limits without its
/// request rate limit, for tests that make many requests.
pub fn test_plans() -> Plans {
    let mut v: serde_json::Value =
        serde_json::from_str(klozeo_core::domain::account::DEFAULT_PLANS_JSON).expect("plans");
    v["leads100"] = serde_json::json!({
        "max_leads": 100, "requests_per_window": null, "window_secs": 600, "max_batch": 100
    });
    v["burst"] = serde_json::json!({
        "max_leads": null, "requests_per_window": 3, "window_secs": 3, "max_batch": 100
    });
    Plans::from_json(&v.to_string()).expect("test plans")
}

/// A configuration for tests (fixed signing key, default plans and body limit).
pub fn test_config() -> Config {
    Config {
        store: StoreConfig::Embedded {
            data_dir: std::env::temp_dir(),
        },
        signing_key: b"test-signing-key-0123456789".to_vec(),
        max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        plans: test_plans(),
        // Rule changes in the tests rescore inline to the end, so a test reads final scores
        // right after the change (the job tests lower this).
        jobs: klozeo_core::config::JobsConfig {
            inline_budget: std::time::Duration::from_secs(600),
            step_budget: std::time::Duration::from_secs(20),
        },
        webhooks: klozeo_core::config::WebhookConfig {
            retry: klozeo_core::domain::webhook::RetrySchedule::parse("1,1,1").expect("schedule"),
            allow_private: true,
            http_hosts: vec!["127.0.0.1".into(), "localhost".into()],
        },
        jobs_queue_url: None,
        jobs_dlq_url: None,
        accounts: klozeo_core::config::AccountsConfig::default(),
        exports: Default::default(),
    }
}

/// A clock the test moves by hand (starts at the real time, then stands still), or that runs
/// with real time from a point on ([`ManualClock::run_in_real_time`]).
#[derive(Debug)]
pub struct ManualClock {
    ms: std::sync::atomic::AtomicI64,
    running_since: std::sync::Mutex<Option<std::time::Instant>>,
}

impl ManualClock {
    /// A standing clock at the real time.
    pub fn new() -> ManualClock {
        ManualClock {
            ms: std::sync::atomic::AtomicI64::new(SystemClock.now_ms()),
            running_since: std::sync::Mutex::new(None),
        }
    }

    /// Moves the clock forward.
    pub fn advance_secs(&self, secs: i64) {
        self.ms
            .fetch_add(secs * 1000, std::sync::atomic::Ordering::SeqCst);
    }

    /// From now on the clock runs with real time (background work waits on it).
    pub fn run_in_real_time(&self) {
        let mut g = self.running_since.lock().expect("clock lock");
        if g.is_none() {
            *g = Some(std::time::Instant::now());
        }
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        let base = self.ms.load(std::sync::atomic::Ordering::SeqCst);
        match *self.running_since.lock().expect("clock lock") {
            Some(t) => base + t.elapsed().as_millis() as i64,
            None => base,
        }
    }
}

/// A running server on a loopback port.
pub struct TestServer {
    /// `http://127.0.0.1:PORT/api/v1`
    pub base_url: String,
    /// `http://127.0.0.1:PORT`
    pub origin: String,
    /// The application behind it, for direct checks of what is stored.
    pub app: Arc<App>,
    /// Which store it runs on.
    pub backend: Backend,
    /// The server's clock.
    pub clock: Arc<ManualClock>,
    _dir: Option<tempfile::TempDir>,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

impl TestServer {
    /// Starts the full router (every route) over a fresh store.
    pub async fn start(backend: Backend) -> TestServer {
        Self::start_wrapped(backend, |s| s).await
    }

    /// Starts the full router over a fresh store seen through `wrap` (tests put a
    /// fault-injecting store in front of the real one).
    pub async fn start_wrapped(
        backend: Backend,
        wrap: impl FnOnce(Arc<dyn Store>) -> Arc<dyn Store>,
    ) -> TestServer {
        Self::start_custom(backend, wrap, |_| {}).await
    }

    /// Starts the full router with the test configuration changed by `tweak`.
    pub async fn start_with_config(
        backend: Backend,
        tweak: impl FnOnce(&mut Config),
    ) -> TestServer {
        Self::start_custom(backend, |s| s, tweak).await
    }

    /// Starts the full router over a fresh store seen through `wrap`, with the test
    /// configuration changed by `tweak`.
    pub async fn start_custom(
        backend: Backend,
        wrap: impl FnOnce(Arc<dyn Store>) -> Arc<dyn Store>,
        tweak: impl FnOnce(&mut Config),
    ) -> TestServer {
        Self::start_mapped(backend, wrap, tweak, |app| app).await
    }

    /// [`TestServer::start_custom`] whose composed application is changed by `map` before it
    /// serves (tests swap in another adapter, such as S3 on the emulator for exports).
    pub async fn start_mapped(
        backend: Backend,
        wrap: impl FnOnce(Arc<dyn Store>) -> Arc<dyn Store>,
        tweak: impl FnOnce(&mut Config),
        map: impl FnOnce(App) -> App,
    ) -> TestServer {
        let clock = Arc::new(ManualClock::new());
        let (store, dir, sqlite) = fresh_store_parts(backend, clock.clone()).await;
        let store = wrap(store);
        // A wrapper that hides the embedded store's lead index lists through the key-range
        // planner, which reads the index rows the embedded store otherwise does not write.
        if let Some(sqlite) = sqlite
            && store.lead_index().is_none()
        {
            sqlite.set_lead_index_entries(true);
        }
        let mut config = test_config();
        tweak(&mut config);
        let app = Arc::new(map(App::with_parts(
            store,
            clock.clone(),
            Arc::new(UuidIds),
            &config,
        )
        .expect("compose app")));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let svc = klozeo_core::edges::http::service_with_client_addr(app.clone(), Routes::All);
        tokio::spawn(async move {
            axum::serve(listener, svc)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await
                .expect("serve");
        });
        TestServer {
            base_url: format!("http://{addr}/api/v1"),
            origin: format!("http://{addr}"),
            app,
            backend,
            clock,
            _dir: dir,
            _shutdown: tx,
        }
    }

    /// Starts the background runtime of `klozeo serve` (webhook dispatch, the jobs worker)
    /// for this server; it runs until the returned handle is dropped or stopped.
    pub fn spawn_workers(&self) -> klozeo_core::edges::worker::Workers {
        klozeo_core::edges::worker::spawn(self.app.clone())
    }

    /// Creates an account on `plan` and returns its raw API key.
    pub async fn account(&self, plan: &str) -> String {
        let email = format!("user-{}@example.com", uuid_like());
        let (_, key) = self
            .app
            .accounts
            .create_account(&email, plan)
            .await
            .expect("create account");
        key.raw
    }
}

/// An answer from the API, as a test reads it.
#[derive(Debug)]
pub struct Resp {
    /// Status code.
    pub status: reqwest::StatusCode,
    /// Headers.
    pub headers: reqwest::header::HeaderMap,
    /// The JSON body; a non-JSON body as a string; `Null` when empty.
    pub body: serde_json::Value,
}

/// The one HTTP client of the end-to-end suites: calls the API of a [`TestServer`] with one
/// account's key and hands back status and JSON body.
#[derive(Debug, Clone)]
pub struct Api {
    c: reqwest::Client,
    /// `http://127.0.0.1:PORT/api/v1`
    pub base: String,
    /// The API key sent with every call.
    pub key: String,
}

/// Percent-encodes a query-string value (every byte but unreserved ASCII).
pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl Api {
    /// A client for `key` on `server`.
    pub fn new(server: &TestServer, key: &str) -> Api {
        Api {
            c: reqwest::Client::new(),
            base: server.base_url.clone(),
            key: key.to_string(),
        }
    }

    /// A client for a new account on `plan`.
    pub async fn on_plan(server: &TestServer, plan: &str) -> Api {
        let key = server.account(plan).await;
        Api::new(server, &key)
    }

    /// Calls `path` (below `/api/v1`) with an optional JSON body and extra headers.
    pub async fn request(
        &self,
        m: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
        headers: &[(&str, &str)],
    ) -> Resp {
        let mut r = self
            .c
            .request(m, format!("{}{}", self.base, path))
            .header("X-API-Key", &self.key);
        if let Some(b) = body {
            r = r.json(&b);
        }
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        let resp = r.send().await.expect("the server answers");
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.expect("a readable body");
        let body = if text.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text))
        };
        Resp {
            status,
            headers,
            body,
        }
    }

    /// Calls `path` and returns status and body.
    pub async fn send(
        &self,
        m: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (reqwest::StatusCode, serde_json::Value) {
        let r = self.request(m, path, body, &[]).await;
        (r.status, r.body)
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> (reqwest::StatusCode, serde_json::Value) {
        self.send(reqwest::Method::GET, path, None).await
    }

    /// Registers a webhook (to an address nothing listens on) so that the account's changes
    /// record outbox events: an account that never had a webhook records none.
    pub async fn subscribe(&self) {
        let body = serde_json::json!({ "url": "https://hooks.example.com/klozeo" });
        let (st, v) = self
            .send(reqwest::Method::POST, "/webhooks", Some(body))
            .await;
        assert_eq!(st, reqwest::StatusCode::CREATED, "{v}");
    }

    /// The events in the account's outbox (what the dispatcher has not taken yet), oldest
    /// first.
    pub async fn outbox(&self, server: &TestServer) -> Vec<serde_json::Value> {
        let tenant = server
            .app
            .accounts
            .authenticate(&self.key)
            .await
            .expect("the key authenticates");
        let page = server
            .app
            .deps
            .store
            .query(&klozeo_core::ports::QueryReq {
                table: klozeo_core::ports::Table::Outbox,
                index: None,
                pk: format!("O#{}", tenant.account_id),
                sk: klozeo_core::ports::SkCond::Any,
                start_after: None,
                descending: false,
                limit: 1000,
            })
            .await
            .expect("the outbox reads");
        page.items
            .iter()
            .map(|i| serde_json::from_slice(&i.body).expect("an event is JSON"))
            .collect()
    }

    /// `POST /leads` that must create (201); returns the new id.
    pub async fn create_lead(&self, body: serde_json::Value) -> String {
        let (st, v) = self.send(reqwest::Method::POST, "/leads", Some(body)).await;
        assert_eq!(st, reqwest::StatusCode::CREATED, "{v}");
        v["id"].as_str().expect("an id").to_string()
    }

    /// `POST /leads/batch` with `leads` that must succeed; returns the answer.
    pub async fn batch_create(&self, leads: Vec<serde_json::Value>) -> serde_json::Value {
        let (st, v) = self
            .send(
                reqwest::Method::POST,
                "/leads/batch",
                Some(serde_json::json!({ "leads": leads })),
            )
            .await;
        assert!(st.is_success(), "{v}");
        v
    }

    /// `GET /leads/{id}`'s body.
    pub async fn get_lead(&self, id: &str) -> serde_json::Value {
        self.get(&format!("/leads/{id}")).await.1
    }

    /// Every id of `GET /leads?{query}`, walking the cursors to the end, with the page
    /// invariants checked on each page.
    pub async fn ids(&self, query: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut q = query.to_string();
            if let Some(c) = &cursor {
                q.push_str(&format!("&cursor={}", urlencode(c)));
            }
            let (st, page) = self.get(&format!("/leads?{q}")).await;
            assert_eq!(st, reqwest::StatusCode::OK, "{page}");
            check_page_invariants(&page);
            for l in page["leads"].as_array().expect("leads") {
                out.push(l["id"].as_str().expect("id").to_string());
            }
            if !page["has_more"].as_bool().expect("has_more") {
                return out;
            }
            cursor = Some(page["next_cursor"].as_str().expect("cursor").to_string());
        }
    }
}

/// What every list page must satisfy: `count` is the page's length, and `next_cursor` is a
/// non-empty string exactly when `has_more` (null otherwise).
pub fn check_page_invariants(page: &serde_json::Value) {
    let leads = page["leads"].as_array().expect("leads is an array");
    assert_eq!(page["count"].as_u64().expect("count") as usize, leads.len());
    let has_more = page["has_more"].as_bool().expect("has_more is a bool");
    let cursor_ok = page["next_cursor"].as_str().is_some_and(|c| !c.is_empty());
    assert_eq!(
        has_more, cursor_ok,
        "has_more must match a non-empty cursor: {page}"
    );
    if !has_more {
        assert!(page["next_cursor"].is_null());
    }
}

/// Asserts the flat error body `{"error": code, "message": text, "code": code}`.
pub fn assert_flat_error(v: &serde_json::Value, code: &str) {
    assert_eq!(v["error"], code, "{v}");
    assert_eq!(v["code"], code, "{v}");
    assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
}

/// A store seen without its own lead index: list requests then run the key-range planner, as
/// they do on DynamoDB. The planner tests use it to run DynamoDB's plans on the embedded store
/// too (which otherwise answers lists from its typed lead table).
pub fn planner_only(inner: Arc<dyn Store>) -> Arc<dyn Store> {
    Arc::new(PlannerOnly(inner))
}

struct PlannerOnly(Arc<dyn Store>);

#[async_trait::async_trait]
impl Store for PlannerOnly {
    async fn get(
        &self,
        table: klozeo_core::ports::Table,
        key: &klozeo_core::ports::Key,
    ) -> klozeo_core::Result<Option<klozeo_core::ports::Item>> {
        self.0.get(table, key).await
    }
    async fn batch_get(
        &self,
        table: klozeo_core::ports::Table,
        keys: &[klozeo_core::ports::Key],
    ) -> klozeo_core::Result<Vec<klozeo_core::ports::Item>> {
        self.0.batch_get(table, keys).await
    }
    async fn query(
        &self,
        req: &klozeo_core::ports::QueryReq,
    ) -> klozeo_core::Result<klozeo_core::ports::Page> {
        self.0.query(req).await
    }
    async fn transact(
        &self,
        ops: Vec<klozeo_core::ports::WriteOp>,
    ) -> Result<(), klozeo_core::ports::StoreError> {
        self.0.transact(ops).await
    }
    async fn scan(
        &self,
        table: klozeo_core::ports::Table,
        start_after: Option<klozeo_core::ports::Key>,
        limit: u32,
    ) -> klozeo_core::Result<klozeo_core::ports::Page> {
        self.0.scan(table, start_after, limit).await
    }
}
