//! Test harness shared by the cross-crate tests: start the real router on a loopback port over
//! either store, and create accounts to call it with.
//!
//! The DynamoDB variant runs only when `KLOZEO_TEST_DYNAMODB_ENDPOINT` names an emulator (the
//! README's test command starts moto and sets it); with `KLOZEO_REQUIRE_DYNAMODB=1` a missing
//! emulator is a failure instead of a skip.

use std::sync::Arc;

use klozeo_core::adapters::dynamodb::DynamoStore;
use klozeo_core::adapters::sqlite::SqliteStore;
use klozeo_core::app::App;
use klozeo_core::config::{Config, DEFAULT_MAX_BODY_BYTES, StoreConfig};
use klozeo_core::domain::account::Plans;
use klozeo_core::edges::http::{Routes, service};
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
    match backend {
        Backend::Embedded => {
            let dir = tempfile::tempdir().expect("temp dir");
            let store = SqliteStore::open(dir.path())
                .expect("open sqlite store")
                .with_clock(clock);
            (Arc::new(store), Some(dir))
        }
        Backend::Dynamo => {
            let endpoint = dynamo_endpoint().expect("emulator endpoint");
            let sdk = aws_config_for(&endpoint).await;
            let prefix = format!("t{}-", uuid_like());
            let store =
                DynamoStore::new(klozeo_core::app::dynamo_client(&sdk), prefix).with_clock(clock);
            store.create_tables().await.expect("create tables");
            (Arc::new(store), None)
        }
    }
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
    }
}

/// A clock the test moves by hand (starts at the real time).
#[derive(Debug)]
pub struct ManualClock(std::sync::atomic::AtomicI64);

impl ManualClock {
    /// Moves the clock forward.
    pub fn advance_secs(&self, secs: i64) {
        self.0
            .fetch_add(secs * 1000, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
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
        let clock = Arc::new(ManualClock(std::sync::atomic::AtomicI64::new(
            SystemClock.now_ms(),
        )));
        let (store, dir) = fresh_store_with_clock(backend, clock.clone()).await;
        let app = Arc::new(
            App::with_parts(store, clock.clone(), Arc::new(UuidIds), &test_config())
                .expect("compose app"),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let svc = service(app.clone(), Routes::All);
        tokio::spawn(async move {
            axum::serve(listener, tower::make::Shared::new(svc))
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
