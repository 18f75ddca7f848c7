//! Webhooks end to end on every backend, with a real HTTP receiver on loopback: the API, every
//! event kind delivered once with both signatures, grouped batch events, retries through a
//! receiver that fails for a while, the delivery log, retry and test, and the SSRF refusal.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use hmac::{Hmac, Mac};
use klozeo_tests::{Api, TestServer, assert_flat_error, backends};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::Sha256;

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    headers: axum::http::HeaderMap,
    body: Vec<u8>,
    json: Value,
}

/// A webhook receiver on a loopback port that records what it gets and answers `fail_status`
/// until `fail_until`, then 200.
#[derive(Clone)]
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Received>>>,
    fail_until: Arc<Mutex<Option<Instant>>>,
}

impl Receiver {
    async fn start() -> Receiver {
        let got: Arc<Mutex<Vec<Received>>> = Arc::default();
        let fail_until: Arc<Mutex<Option<Instant>>> = Arc::default();
        let (g, f) = (got.clone(), fail_until.clone());
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(
                move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                    let (g, f) = (g.clone(), f.clone());
                    async move {
                        let failing = f.lock().unwrap().is_some_and(|t| Instant::now() < t);
                        g.lock().unwrap().push(Received {
                            headers,
                            json: serde_json::from_slice(&body).unwrap_or(Value::Null),
                            body: body.to_vec(),
                        });
                        if failing {
                            (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "not now")
                        } else {
                            (axum::http::StatusCode::OK, "ok")
                        }
                    }
                },
            ),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Receiver {
            url: format!("http://{addr}/hook"),
            got,
            fail_until,
        }
    }

    fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    /// The successfully answered deliveries, one per `webhook-id` (a repeat of the same id is
    /// the same delivery).
    fn delivered(&self) -> Vec<Received> {
        let mut seen = std::collections::HashSet::new();
        self.received()
            .into_iter()
            .filter(|r| seen.insert(header(r, "webhook-id")))
            .collect()
    }

    /// Waits until `pred` holds of what was received, or fails after `secs`.
    async fn wait_for(&self, secs: u64, what: &str, pred: impl Fn(&[Received]) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if pred(&self.received()) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; got: {:?}",
                self.received()
                    .iter()
                    .map(|r| r.json["event"].clone())
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Polls the webhook's delivery log until a delivery satisfies `pred`, or fails after `secs`.
async fn wait_for_delivery(
    api: &Api,
    hook: &str,
    secs: u64,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let (_, log) = api.get(&format!("/webhooks/{hook}/deliveries")).await;
        if let Some(d) = log["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| pred(d))
        {
            return d.clone();
        }
        assert!(Instant::now() < deadline, "no such delivery: {log}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn header(r: &Received, name: &str) -> String {
    r.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

fn events_of(rs: &[Received]) -> Vec<String> {
    rs.iter()
        .map(|r| r.json["event"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Checks both signatures of a delivery with the receiver's own HMAC code.
fn assert_signed(r: &Received, secret: &str) {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(&r.body);
    let hex_sig = hex::encode(mac.finalize().into_bytes());
    assert_eq!(
        header(r, "x-klozeo-signature"),
        hex_sig,
        "X-Klozeo-Signature"
    );
    let (id, ts) = (header(r, "webhook-id"), header(r, "webhook-timestamp"));
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{id}.{ts}.").as_bytes());
    mac.update(&r.body);
    let std_sig = format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    );
    assert_eq!(header(r, "webhook-signature"), std_sig, "webhook-signature");
    assert_eq!(
        ts,
        r.json["timestamp"].to_string(),
        "timestamp header = payload"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_kind_arrives_once_signed_both_ways() {
    for b in backends() {
        let s = TestServer::start(b).await;
        s.clock.run_in_real_time();
        let _workers = s.spawn_workers();
        let api = Api::on_plan(&s, "unlimited").await;
        let rx = Receiver::start().await;
        let secret = "s3cret-signing-key";
        let (st, hook) = api
            .send(
                Method::POST,
                "/webhooks",
                Some(json!({"url": rx.url, "secret": secret})),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{b:?}: {hook}");
        assert_eq!(hook["active"], true);
        assert_eq!(hook["events"].as_array().unwrap().len(), 11, "{hook}");
        let created_at = hook["created_at"].as_str().unwrap();
        assert!(
            created_at.ends_with('Z') && created_at.len() == 20,
            "{hook}"
        );
        assert!(hook.get("secret").is_none(), "the secret is never returned");

        let id = api
            .create_lead(json!({"name": "Hooked", "source": "s", "rating": 3.0}))
            .await;
        let (st, _) = api
            .send(
                Method::PATCH,
                &format!("/leads/{id}"),
                Some(json!({"city": "Paris"})),
            )
            .await;
        assert_eq!(st, StatusCode::OK);
        let (_, note) = api
            .send(
                Method::POST,
                &format!("/leads/{id}/notes"),
                Some(json!({"content": "hello"})),
            )
            .await;
        let note_id = note["id"].as_str().unwrap().to_string();
        api.send(
            Method::PUT,
            &format!("/notes/{note_id}"),
            Some(json!({"content": "edited"})),
        )
        .await;
        api.send(Method::DELETE, &format!("/notes/{note_id}"), None)
            .await;
        let (st, rule) = api
            .send(
                Method::POST,
                "/scoring-rules",
                Some(json!({"name": "r", "expression": "rating * 10"})),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{rule}");
        assert!(rule["job_id"].is_string(), "{rule}");
        let (st, _) = api
            .send(Method::POST, &format!("/leads/{id}/score"), None)
            .await;
        assert_eq!(st, StatusCode::OK);
        let (st, batch) = api
            .send(
                Method::POST,
                "/leads/batch",
                Some(json!({"leads": [{"name": "B1", "source": "s"}, {"name": "B2", "source": "s"}]})),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{batch}");
        let ids: Vec<String> = batch["created"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_string())
            .collect();
        api.send(
            Method::PUT,
            "/leads/batch",
            Some(json!({"ids": ids, "data": {"status": "contacted"}})),
        )
        .await;
        api.send(Method::DELETE, "/leads/batch", Some(json!({"ids": ids})))
            .await;
        api.send(Method::DELETE, &format!("/leads/{id}"), None)
            .await;

        let all = [
            "lead.created",
            "lead.updated",
            "note.created",
            "note.updated",
            "note.deleted",
            "leads.scored",
            "lead.scored",
            "leads.created",
            "leads.updated",
            "leads.deleted",
            "lead.deleted",
        ];
        rx.wait_for(30, "every event kind", |got| {
            let ev = events_of(got);
            all.iter().all(|k| ev.iter().any(|e| e == k))
        })
        .await;
        // Let any stray duplicate arrive before counting.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let got = rx.delivered();
        let ev = events_of(&got);
        for k in all {
            let n = ev.iter().filter(|e| *e == k).count();
            // lead.updated: the PATCH; the rule's rescoring changes the score through
            // leads.scored, and POST /score of an unchanged score records lead.scored.
            assert_eq!(n, 1, "{b:?}: {k} arrived {n} times: {ev:?}");
        }
        assert_eq!(got.len(), all.len(), "{b:?}: {ev:?}");
        for r in &got {
            assert_signed(r, secret);
            assert_eq!(header(r, "content-type"), "application/json");
            let keys: Vec<&String> = r.json.as_object().unwrap().keys().collect();
            assert_eq!(keys, ["data", "event", "timestamp"], "{}", r.json);
        }
        let by = |k: &str| got.iter().find(|r| r.json["event"] == k).unwrap().json["data"].clone();
        // The data is the full lead or note as it was when the event happened.
        assert_eq!(by("lead.created")["name"], "Hooked");
        assert_eq!(by("lead.created")["city"], Value::Null);
        assert_eq!(by("lead.updated")["city"], "Paris");
        assert_eq!(by("note.created")["content"], "hello");
        assert_eq!(by("note.updated")["content"], "edited");
        assert_eq!(by("leads.created"), json!({"ids": ids, "count": 2}));
        assert_eq!(by("leads.updated"), json!({"ids": ids, "count": 2}));
        assert_eq!(by("leads.deleted"), json!({"ids": ids, "count": 2}));
        assert_eq!(
            by("leads.scored"),
            json!({"leads": [{"id": id, "score": 30.0}], "count": 1})
        );
        assert_eq!(by("lead.scored"), json!({"id": id, "score": 30.0}));

        // The delivery log shows each one succeeded on its first attempt.
        let hook_id = hook["id"].as_str().unwrap();
        let (st, log) = api.get(&format!("/webhooks/{hook_id}/deliveries")).await;
        assert_eq!(st, StatusCode::OK);
        let log = log["deliveries"].as_array().unwrap().clone();
        assert_eq!(log.len(), all.len(), "{b:?}: {log:?}");
        for d in &log {
            assert_eq!(d["status"], "succeeded", "{d}");
            assert_eq!(d["attempts"], 1, "{d}");
            assert_eq!(d["last_status_code"], 200, "{d}");
        }

        // A rescoring run that changes nothing still reports itself, with count 0; a single
        // lead whose score moves reports lead.scored beside lead.updated.
        let (st, v) = api.send(Method::POST, "/leads/score/batch", None).await;
        assert_eq!(st, StatusCode::OK, "{v}");
        let id2 = api
            .create_lead(json!({"name": "Later", "source": "s", "rating": 1.0}))
            .await;
        api.send(
            Method::PATCH,
            &format!("/leads/{id2}"),
            Some(json!({"rating": 2.0})),
        )
        .await;
        rx.wait_for(30, "the empty run and the moved score", |got| {
            let ev: Vec<&Value> = got.iter().map(|r| &r.json).collect();
            ev.iter().any(|j| {
                j["event"] == "leads.scored" && j["data"] == json!({"leads": [], "count": 0})
            }) && ev.iter().any(|j| {
                j["event"] == "lead.scored" && j["data"] == json!({"id": id2, "score": 20.0})
            })
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_api_validates_and_isolates() {
    for b in backends() {
        let s = TestServer::start(b).await;
        let api = Api::on_plan(&s, "unlimited").await;
        let other = Api::on_plan(&s, "unlimited").await;
        for (body, why) in [
            (json!({}), "url is required"),
            (json!({"url": "ftp://x.example/h"}), "https"),
            (json!({"url": "http://hooks.example.com/h"}), "https"),
            (
                json!({"url": "https://x.example/h", "events": ["lead.exploded"]}),
                "not an event",
            ),
            (
                json!({"url": "https://x.example/h", "secret": ""}),
                "secret",
            ),
            (
                json!({"url": "https://x.example/h", "events": "lead.created"}),
                "events",
            ),
        ] {
            let (st, v) = api
                .send(Method::POST, "/webhooks", Some(body.clone()))
                .await;
            assert_eq!(st, StatusCode::BAD_REQUEST, "{b:?} {body}: {v}");
            assert_flat_error(&v, "bad_request");
            assert!(v["message"].as_str().unwrap().contains(why), "{body}: {v}");
        }
        let (st, hook) = api
            .send(
                Method::POST,
                "/webhooks",
                Some(json!({"url": "https://hooks.example.com/k", "events": ["lead.created", "leads.created"]})),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED);
        assert_eq!(hook["events"], json!(["lead.created", "leads.created"]));
        let hid = hook["id"].as_str().unwrap().to_string();
        let (_, list) = api.get("/webhooks").await;
        assert_eq!(list["webhooks"].as_array().unwrap().len(), 1);
        let (st, upd) = api
            .send(
                Method::PATCH,
                &format!("/webhooks/{hid}"),
                Some(json!({"active": false})),
            )
            .await;
        assert_eq!((st, &upd["active"]), (StatusCode::OK, &json!(false)));
        assert_eq!(upd["url"], "https://hooks.example.com/k");
        for (m, path) in [
            (Method::GET, format!("/webhooks/{hid}")),
            (Method::PATCH, format!("/webhooks/{hid}")),
            (Method::DELETE, format!("/webhooks/{hid}")),
            (Method::GET, format!("/webhooks/{hid}/deliveries")),
            (Method::POST, format!("/webhooks/{hid}/test")),
        ] {
            let body = (m == Method::PATCH).then(|| json!({"active": true}));
            let (st, v) = other.send(m.clone(), &path, body).await;
            assert_eq!(st, StatusCode::NOT_FOUND, "{b:?} {m} {path}: {v}");
        }
        let (_, list) = other.get("/webhooks").await;
        assert_eq!(list, json!({"webhooks": []}));
        let (st, _) = api
            .send(Method::DELETE, &format!("/webhooks/{hid}"), None)
            .await;
        assert_eq!(st, StatusCode::NO_CONTENT);
        let (st, _) = api.get(&format!("/webhooks/{hid}")).await;
        assert_eq!(st, StatusCode::NOT_FOUND);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_failing_for_a_while_still_receives_everything() {
    for b in backends() {
        let s = TestServer::start_with_config(b, |c| {
            // Attempts at about 0, 1, 3, 7 and 15 s fail; the sixth, at 35 s ±10 % (never
            // before 31.5 s), meets the receiver answering again.
            c.webhooks.retry =
                klozeo_core::domain::webhook::RetrySchedule::parse("1,2,4,8,20,20").unwrap();
        })
        .await;
        s.clock.run_in_real_time();
        let _workers = s.spawn_workers();
        let api = Api::on_plan(&s, "unlimited").await;
        let rx = Receiver::start().await;
        // 500 for 30 s, then 200.
        *rx.fail_until.lock().unwrap() = Some(Instant::now() + Duration::from_secs(30));
        let (st, hook) = api
            .send(
                Method::POST,
                "/webhooks",
                Some(json!({"url": rx.url, "events": ["lead.created"], "secret": "k"})),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED);
        let hid = hook["id"].as_str().unwrap().to_string();
        let mut ids = Vec::new();
        for i in 0..5 {
            ids.push(
                api.create_lead(json!({"name": format!("R{i}"), "source": "s"}))
                    .await,
            );
        }
        rx.wait_for(90, "five successful deliveries", |got| {
            let ok: std::collections::HashSet<String> = got
                .iter()
                .filter(|r| r.json["event"] == "lead.created")
                .map(|r| {
                    r.json["data"]["id"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string()
                })
                .collect();
            ok.len() == 5 && *rx.fail_until.lock().unwrap() < Some(Instant::now()) && got.len() > 5
        })
        .await;
        // Each delivery kept its id and body across attempts.
        let got = rx.received();
        for r in &got {
            let same_id: Vec<&Received> = got
                .iter()
                .filter(|o| header(o, "webhook-id") == header(r, "webhook-id"))
                .collect();
            assert!(same_id.iter().all(|o| o.body == r.body), "{b:?}");
            assert_signed(r, "k");
        }
        let deadline = Instant::now() + Duration::from_secs(45);
        loop {
            let (_, log) = api.get(&format!("/webhooks/{hid}/deliveries")).await;
            let log = log["deliveries"].as_array().unwrap().clone();
            let done = log.iter().filter(|d| d["status"] == "succeeded").count();
            if done == 5 {
                assert!(
                    log.iter().all(|d| d["attempts"].as_u64().unwrap() >= 2),
                    "{b:?}: every first attempt met the failing receiver: {log:?}"
                );
                break;
            }
            assert!(Instant::now() < deadline, "{b:?}: {log:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_deliveries_are_logged_and_can_be_retried_and_tested() {
    for b in backends() {
        let s = TestServer::start(b).await;
        s.clock.run_in_real_time();
        let _workers = s.spawn_workers();
        let api = Api::on_plan(&s, "unlimited").await;
        let rx = Receiver::start().await;
        // Fails for longer than the test schedule's three retries (1 s each).
        *rx.fail_until.lock().unwrap() = Some(Instant::now() + Duration::from_secs(3600));
        let (_, hook) = api
            .send(
                Method::POST,
                "/webhooks",
                Some(json!({"url": rx.url, "events": ["lead.created"]})),
            )
            .await;
        let hid = hook["id"].as_str().unwrap().to_string();
        api.create_lead(json!({"name": "F", "source": "s"})).await;
        let failed = wait_for_delivery(&api, &hid, 30, |d| d["status"] == "failed").await;
        assert_eq!(failed["attempts"], 4, "{failed}");
        assert_eq!(failed["last_status_code"], 500, "{failed}");
        assert!(
            failed["last_error"].as_str().unwrap().contains("not now"),
            "{failed}"
        );
        assert_eq!(failed["next_attempt_at"], Value::Null);
        // No unsigned delivery carries a signature header.
        assert!(
            rx.received()
                .iter()
                .all(|r| header(r, "x-klozeo-signature").is_empty())
        );
        *rx.fail_until.lock().unwrap() = None;
        let did = failed["id"].as_str().unwrap();
        let (st, v) = api
            .send(
                Method::POST,
                &format!("/webhooks/{hid}/deliveries/{did}/retry"),
                None,
            )
            .await;
        assert_eq!(st, StatusCode::ACCEPTED, "{v}");
        let (st, ping) = api
            .send(Method::POST, &format!("/webhooks/{hid}/test"), None)
            .await;
        assert_eq!(st, StatusCode::ACCEPTED, "{ping}");
        rx.wait_for(20, "the retry and the ping", |got| {
            got.iter().any(|r| r.json["event"] == "ping")
                && got
                    .iter()
                    .filter(|r| header(r, "webhook-id") == did)
                    .count()
                    == 5
        })
        .await;
        let ping_rx = rx
            .received()
            .into_iter()
            .find(|r| r.json["event"] == "ping")
            .unwrap();
        assert_eq!(ping_rx.json["data"]["webhook_id"], json!(hid));
        let (st, v) = api
            .send(
                Method::POST,
                &format!("/webhooks/{hid}/deliveries/00000000-0000-7000-8000-000000000000/retry"),
                None,
            )
            .await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{v}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_target_is_refused_without_the_opt_in() {
    for b in backends() {
        let s = TestServer::start_with_config(b, |c| {
            c.webhooks.allow_private = false;
        })
        .await;
        s.clock.run_in_real_time();
        let _workers = s.spawn_workers();
        let api = Api::on_plan(&s, "unlimited").await;
        let rx = Receiver::start().await;
        let (st, hook) = api
            .send(
                Method::POST,
                "/webhooks",
                Some(json!({"url": rx.url, "events": ["lead.created"]})),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{hook}");
        let hid = hook["id"].as_str().unwrap().to_string();
        api.create_lead(json!({"name": "P", "source": "s"})).await;
        let d = wait_for_delivery(&api, &hid, 30, |d| d["status"] == "failed").await;
        assert!(
            d["last_error"].as_str().unwrap().contains("refused target"),
            "{b:?}: {d}"
        );
        assert_eq!(d["last_status_code"], Value::Null);
        assert!(
            rx.received().is_empty(),
            "nothing reached the private target"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_function_handles_stream_sqs_and_schedule_events() {
    use klozeo_core::edges::lambda::handle_worker_event;
    use klozeo_core::ports::Table;
    for b in backends() {
        let s = TestServer::start(b).await;
        s.clock.run_in_real_time();
        let api = Api::on_plan(&s, "unlimited").await;
        let rx = Receiver::start().await;
        let (_, hook) = api
            .send(
                Method::POST,
                "/webhooks",
                Some(json!({"url": rx.url, "events": ["lead.created"], "secret": "w"})),
            )
            .await;
        let hid = hook["id"].as_str().unwrap().to_string();
        let id = api
            .create_lead(json!({"name": "Streamed", "source": "s"}))
            .await;

        // The outbox table's stream hands the new event to the worker as DynamoDB JSON.
        let outbox = s
            .app
            .deps
            .store
            .scan(Table::Outbox, None, 100)
            .await
            .unwrap();
        let records: Vec<Value> = outbox
            .items
            .iter()
            .map(|i| {
                json!({
                    "eventSource": "aws:dynamodb",
                    "eventName": "INSERT",
                    "dynamodb": {"NewImage": {
                        "pk": {"S": i.key.pk}, "sk": {"S": i.key.sk},
                        "b": {"S": String::from_utf8_lossy(&i.body)},
                        "v": {"N": i.version.to_string()}
                    }}
                })
            })
            .collect();
        assert_eq!(records.len(), 1, "{b:?}: one event recorded");
        let out = handle_worker_event(&s.app, json!({ "Records": records }))
            .await
            .unwrap();
        assert_eq!(out, json!({}));
        let left = s
            .app
            .deps
            .store
            .scan(Table::Outbox, None, 100)
            .await
            .unwrap();
        assert!(
            left.items.is_empty(),
            "{b:?}: dispatched events leave the outbox"
        );

        // SQS then hands the delivery message to the worker; a message that cannot be read is
        // dead-lettered rather than failed forever.
        let source = s.app.job_source.clone().unwrap();
        let mut msgs = Vec::new();
        for _ in 0..50 {
            msgs = source.receive(10, Duration::from_secs(30)).await.unwrap();
            if !msgs.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(msgs.len(), 1, "{b:?}: one delivery queued");
        let mut records: Vec<Value> = msgs
            .iter()
            .map(|m| json!({"eventSource": "aws:sqs", "messageId": "m-1", "body": m.body}))
            .collect();
        records.push(json!({"eventSource": "aws:sqs", "messageId": "m-bad", "body": "{not json"}));
        let out = handle_worker_event(&s.app, json!({ "Records": records }))
            .await
            .unwrap();
        assert_eq!(out, json!({"batchItemFailures": []}), "{b:?}");
        let got = rx.received();
        assert_eq!(got.len(), 1, "{b:?}");
        assert_eq!(got[0].json["data"]["id"], json!(id));
        assert_signed(&got[0], "w");
        let (_, log) = api.get(&format!("/webhooks/{hid}/deliveries")).await;
        assert_eq!(log["deliveries"][0]["status"], "succeeded", "{b:?}: {log}");

        // The scheduled sweep dispatches whatever the stream did not.
        api.create_lead(json!({"name": "Swept", "source": "s"}))
            .await;
        let out = handle_worker_event(
            &s.app,
            json!({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}),
        )
        .await
        .unwrap();
        assert_eq!(out, json!({"swept": 1}), "{b:?}");
        let left = s
            .app
            .deps
            .store
            .scan(Table::Outbox, None, 100)
            .await
            .unwrap();
        assert!(left.items.is_empty(), "{b:?}");
    }
}
