//! Event to first delivery attempt under the runtime of `klozeo serve`: the router and the
//! background runtime (`edges::worker::spawn`, the dispatcher and the jobs worker) over an
//! embedded store in a temporary directory, a webhook to a receiver on loopback, and N lead
//! creates one after another. For each create, the time from its 201 answer to the receiver
//! getting the `lead.created` delivery. Prints p50, p90, p99 and the maximum.
//!
//! `cargo run --release -p klozeo-tests --bin webhook_latency [N]` (default 300); results in
//! `lib/docs/benchmarks.md`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use klozeo_core::adapters::sqlite::SqliteStore;
use klozeo_core::app::App;
use klozeo_core::edges::http::{Routes, service};
use klozeo_core::ports::{SystemClock, UuidIds};

type Arrivals = Arc<Mutex<HashMap<String, Instant>>>;

async fn receiver(arrivals: Arrivals) -> String {
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: axum::body::Bytes| {
            let arrivals = arrivals.clone();
            async move {
                let at = Instant::now();
                if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body)
                    && let Some(id) = v["data"]["id"].as_str()
                {
                    arrivals
                        .lock()
                        .expect("lock")
                        .entry(id.to_string())
                        .or_insert(at);
                }
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    format!("http://{addr}/hook")
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(300);
    let dir = tempfile::tempdir()?;
    let mut config = klozeo_tests::test_config();
    config.webhooks.retry = Default::default();
    let store = Arc::new(SqliteStore::open(dir.path())?);
    let app = Arc::new(App::with_parts(
        store,
        Arc::new(SystemClock),
        Arc::new(UuidIds),
        &config,
    )?);
    let _workers = klozeo_core::edges::worker::spawn(app.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}/api/v1", listener.local_addr()?);
    let svc = service(app.clone(), Routes::All);
    tokio::spawn(async move {
        let _ = axum::serve(listener, tower::make::Shared::new(svc)).await;
    });
    let (_, key) = app
        .accounts
        .create_account("latency@example.com", "unlimited")
        .await?;
    let arrivals: Arrivals = Arc::default();
    let url = receiver(arrivals.clone()).await;
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{base}/webhooks"))
        .header("X-API-Key", &key.raw)
        .json(&serde_json::json!({"url": url, "events": ["lead.created"], "secret": "s"}))
        .send()
        .await?;
    anyhow::ensure!(r.status() == 201, "webhook: {}", r.text().await?);

    let mut acked: Vec<(String, Instant)> = Vec::with_capacity(n);
    for i in 0..n {
        let r = http
            .post(format!("{base}/leads"))
            .header("X-API-Key", &key.raw)
            .json(&serde_json::json!({"name": format!("Latency {i}"), "source": "bench"}))
            .send()
            .await?;
        let at = Instant::now();
        anyhow::ensure!(r.status() == 201, "create: {}", r.status());
        let v: serde_json::Value = r.json().await?;
        acked.push((v["id"].as_str().unwrap_or_default().to_string(), at));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while arrivals.lock().expect("lock").len() < n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let got = arrivals.lock().expect("lock").clone();
    let mut lat: Vec<Duration> = acked
        .iter()
        .filter_map(|(id, at)| got.get(id).map(|t| t.saturating_duration_since(*at)))
        .collect();
    lat.sort();
    anyhow::ensure!(
        lat.len() == n,
        "only {} of {n} deliveries arrived",
        lat.len()
    );
    println!(
        "{n} events: p50 {:.0} ms, p90 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        percentile(&lat, 0.5).as_secs_f64() * 1000.0,
        percentile(&lat, 0.9).as_secs_f64() * 1000.0,
        percentile(&lat, 0.99).as_secs_f64() * 1000.0,
        lat.last().map_or(0.0, |d| d.as_secs_f64() * 1000.0),
    );
    Ok(())
}
