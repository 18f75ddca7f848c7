//! Faults injected into the store and the jobs queue under a mixed workload (issue 19): with
//! 10 % of store calls throttled, canceled or timing out after their commit, and 10 % of queue
//! calls misbehaving (acknowledgements dropped so the message comes back, messages received
//! twice, sends failing or failing after they queued), callers that retry what failed end with
//! every acknowledged write present, no duplicated lead, the plan-usage counter and the
//! statistics equal to a recount, every creation event delivered at least once (and every
//! repeat of a delivery recognisable by its `webhook-id`), every stored score equal to a
//! recomputation under the last acknowledged rules, and no answer was a 500: what failed
//! answered 503 with `Retry-After` (or a 409 to retry).
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use klozeo_core::adapters::http_sender::HttpSender;
use klozeo_core::adapters::store_queue::StoreQueue;
use klozeo_core::app::App;
use klozeo_tests::faults::{FaultyQueue, FaultyStore};
use klozeo_tests::{Api, Backend, Resp, TestServer, backends};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Every answer the workload saw, by status.
type Seen = Arc<Mutex<BTreeMap<u16, u64>>>;

/// Calls until the answer is final: retries 503 (honouring `Retry-After` in spirit, briefly)
/// and 409 conflicts with the same idempotency key, as the official SDKs do.
async fn call(
    api: &Api,
    seen: &Seen,
    m: Method,
    path: &str,
    body: Option<Value>,
    idem: Option<&str>,
) -> Resp {
    let mut last = String::new();
    for _ in 0..60 {
        let headers: Vec<(&str, &str)> = idem.map(|k| ("Idempotency-Key", k)).into_iter().collect();
        let r = api.request(m.clone(), path, body.clone(), &headers).await;
        *seen.lock().unwrap().entry(r.status.as_u16()).or_default() += 1;
        assert!(
            r.status != StatusCode::INTERNAL_SERVER_ERROR,
            "{m} {path} answered 500: {}",
            r.body
        );
        match r.status {
            StatusCode::SERVICE_UNAVAILABLE => {
                assert!(
                    r.headers.get("retry-after").is_some(),
                    "{m} {path}: 503 without Retry-After"
                );
            }
            StatusCode::CONFLICT => {}
            _ => return r,
        }
        last = format!("{} {}", r.status, r.body);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("{m} {path} never got a final answer; the last was {last}");
}

/// What one client was told was done.
#[derive(Default)]
struct Acked {
    /// Lead id → the name its last acknowledged write gave it.
    leads: HashMap<String, String>,
    /// Leads acknowledged as deleted.
    deleted: HashSet<String>,
    /// Lead id → notes acknowledged on it.
    notes: HashMap<String, Vec<String>>,
    /// Every e-mail of an acknowledged create.
    emails: Vec<String>,
    /// Ids of acknowledged creates (not merges).
    created: Vec<String>,
    /// This client's scoring rule and the expression last acknowledged for it.
    rule: Option<(String, String)>,
}

async fn client(api: Api, seen: Seen, who: usize, ops: usize, seed: u64) -> Acked {
    let mut rng = StdRng::seed_from_u64(seed + who as u64);
    let mut a = Acked::default();
    for op in 0..ops {
        let live: Vec<String> = a
            .leads
            .keys()
            .filter(|id| !a.deleted.contains(*id))
            .cloned()
            .collect();
        let choice = if live.is_empty() {
            0
        } else {
            rng.random_range(0..8)
        };
        let tag = format!("c{who}-{op}");
        match choice {
            0 | 1 => {
                let email = format!("{tag}@example.com");
                let r = call(
                    &api,
                    &seen,
                    Method::POST,
                    "/leads",
                    Some(json!({"name": tag, "source": format!("faults-{}", op % 3),
                                "email": email, "city": "Lyon", "rating": (op % 5) as f64})),
                    Some(&format!("idem-{tag}")),
                )
                .await;
                assert!(r.status.is_success(), "create: {} {}", r.status, r.body);
                let id = r.body["id"].as_str().unwrap().to_string();
                a.leads.insert(id.clone(), tag.clone());
                a.emails.push(email);
                a.created.push(id);
            }
            2 => {
                // A push of a known e-mail merges into its lead.
                let i = rng.random_range(0..a.emails.len());
                let email = a.emails[i].clone();
                let r = call(
                    &api,
                    &seen,
                    Method::POST,
                    "/leads",
                    Some(
                        json!({"name": format!("{tag}-merge"), "source": "faults", "email": email}),
                    ),
                    Some(&format!("idem-{tag}")),
                )
                .await;
                let id = r.body["id"].as_str().unwrap_or_default().to_string();
                if a.deleted.contains(&id) || !a.leads.contains_key(&id) {
                    // The lead of that e-mail was deleted: the push created a new one.
                    assert!(r.status.is_success(), "{}", r.body);
                    a.deleted.remove(&id);
                    a.created.push(id.clone());
                } else {
                    assert_eq!(r.status, StatusCode::OK, "merge: {}", r.body);
                    assert_eq!(r.body["duplicate"], json!(true), "{}", r.body);
                }
                a.leads.insert(id, format!("{tag}-merge"));
            }
            3 => {
                let leads: Vec<Value> = (0..4)
                    .map(|k| {
                        json!({"name": format!("{tag}-b{k}"), "source": "faults",
                               "email": format!("{tag}-b{k}@example.com")})
                    })
                    .collect();
                let r = call(
                    &api,
                    &seen,
                    Method::POST,
                    "/leads/batch",
                    Some(json!({ "leads": leads })),
                    Some(&format!("idem-{tag}")),
                )
                .await;
                assert!(r.status.is_success(), "batch: {} {}", r.status, r.body);
                for c in r.body["created"].as_array().unwrap() {
                    let k = c["index"].as_u64().unwrap();
                    let id = c["id"].as_str().unwrap().to_string();
                    a.leads.insert(id.clone(), format!("{tag}-b{k}"));
                    a.emails.push(format!("{tag}-b{k}@example.com"));
                    a.created.push(id);
                }
            }
            4 => {
                let id = &live[rng.random_range(0..live.len())];
                let name = format!("{tag}-upd");
                let r = call(
                    &api,
                    &seen,
                    Method::PUT,
                    &format!("/leads/{id}"),
                    Some(json!({ "name": name })),
                    None,
                )
                .await;
                assert_eq!(r.status, StatusCode::OK, "update: {}", r.body);
                a.leads.insert(id.clone(), name);
            }
            5 => {
                let id = live[rng.random_range(0..live.len())].clone();
                let r = call(
                    &api,
                    &seen,
                    Method::DELETE,
                    &format!("/leads/{id}"),
                    None,
                    None,
                )
                .await;
                // A retry after a delete that committed but timed out finds nothing: 404.
                assert!(
                    r.status == StatusCode::NO_CONTENT || r.status == StatusCode::NOT_FOUND,
                    "delete: {} {}",
                    r.status,
                    r.body
                );
                a.deleted.insert(id.clone());
                a.notes.remove(&id);
            }
            7 => {
                // A rule change: every lead is rescored by a job on the queue.
                let expression = format!("rating * {}", op % 4 + 1);
                let r =
                    match &a.rule {
                        None => call(
                            &api,
                            &seen,
                            Method::POST,
                            "/scoring-rules",
                            Some(json!({"name": format!("rule-{who}"), "expression": expression})),
                            Some(&format!("idem-{tag}")),
                        )
                        .await,
                        Some((id, _)) => {
                            call(
                                &api,
                                &seen,
                                Method::PUT,
                                &format!("/scoring-rules/{id}"),
                                Some(json!({ "expression": expression })),
                                None,
                            )
                            .await
                        }
                    };
                assert!(r.status.is_success(), "rule: {} {}", r.status, r.body);
                let id = r.body["id"].as_str().unwrap().to_string();
                a.rule = Some((id, expression));
            }
            _ => {
                let id = live[rng.random_range(0..live.len())].clone();
                let r = call(
                    &api,
                    &seen,
                    Method::POST,
                    &format!("/leads/{id}/notes"),
                    Some(json!({ "content": tag })),
                    Some(&format!("idem-{tag}")),
                )
                .await;
                assert_eq!(r.status, StatusCode::CREATED, "note: {}", r.body);
                a.notes.entry(id).or_default().push(tag);
            }
        }
    }
    a
}

async fn run(backend: Backend, clients: usize, ops: usize) {
    let seed: u64 = std::env::var("KLOZEO_FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(19);
    let faulty: Arc<Mutex<Option<Arc<FaultyStore>>>> = Arc::default();
    let slot = faulty.clone();
    let queue: Arc<Mutex<Option<Arc<FaultyQueue<StoreQueue>>>>> = Arc::default();
    let qslot = queue.clone();
    // Rescoring after a rule change goes to the jobs queue rather than running inline.
    let tweak = |c: &mut klozeo_core::config::Config| {
        c.jobs.inline_budget = Duration::ZERO;
    };
    let s = TestServer::start_mapped(
        backend,
        move |inner| {
            let f = FaultyStore::new(inner, 100, seed);
            f.set_enabled(false);
            *slot.lock().unwrap() = Some(f.clone());
            f
        },
        tweak,
        move |app| {
            // The same application over a queue (kept in the faulty store) that misbehaves
            // too; a dropped acknowledgement brings the message back after 2 s.
            let mut config = klozeo_tests::test_config();
            tweak(&mut config);
            let d = app.deps.clone();
            let inner = Arc::new(StoreQueue::new(
                d.store.clone(),
                d.clock.clone(),
                d.ids.clone(),
            ));
            let q = FaultyQueue::new(inner, 100, Duration::from_secs(2), seed);
            q.set_enabled(false);
            *qslot.lock().unwrap() = Some(q.clone());
            let sender = Arc::new(HttpSender::new(true).expect("sender"));
            App::compose(
                d.store,
                d.clock,
                d.ids,
                (q.clone(), Some(q)),
                sender,
                &config,
            )
            .expect("compose")
        },
    )
    .await;
    let faulty = faulty.lock().unwrap().clone().unwrap();
    let queue = queue.lock().unwrap().clone().unwrap();
    s.clock.run_in_real_time();
    let api = Api::on_plan(&s, "unlimited").await;

    // A webhook receiver that records every creation event it is sent, with its
    // `webhook-id` and the raw body.
    type Got = Arc<Mutex<Vec<(String, Vec<u8>, Value)>>>;
    let got_all: Got = Arc::default();
    let g = got_all.clone();
    let rx = axum::Router::new().route(
        "/hook",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let g = g.clone();
                async move {
                    let id = headers
                        .get("webhook-id")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_string();
                    g.lock().unwrap().push((
                        id,
                        body.to_vec(),
                        serde_json::from_slice(&body).unwrap_or(Value::Null),
                    ));
                    "ok"
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, rx).await.unwrap() });
    let (st, _) = api
        .send(
            Method::POST,
            "/webhooks",
            Some(json!({"url": format!("http://{addr}/hook"), "events": ["lead.created", "leads.created"]})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);
    let _workers = s.spawn_workers();

    faulty.set_enabled(true);
    queue.set_enabled(true);
    let seen: Seen = Arc::default();
    let tasks: Vec<_> = (0..clients)
        .map(|who| tokio::spawn(client(api.clone(), seen.clone(), who, ops, seed)))
        .collect();
    let mut acked = Vec::new();
    for t in tasks {
        acked.push(
            t.await
                .expect("a client finished without a broken property"),
        );
    }
    let injected = faulty.counts.injected();
    faulty.set_enabled(false);
    let q_injected = queue.counts.injected();
    assert!(
        injected >= 20,
        "{backend:?}: only {injected} faults were injected"
    );
    assert!(
        faulty.counts.timed_out_after_commit.load(Ordering::Relaxed) > 0,
        "{backend:?}: the workload never met a commit whose answer was lost"
    );

    // Every acknowledged write is there, as last acknowledged.
    let mut live_emails = HashSet::new();
    for a in &acked {
        for (id, name) in &a.leads {
            let (st, lead) = api.get(&format!("/leads/{id}")).await;
            if a.deleted.contains(id) {
                assert_eq!(
                    st,
                    StatusCode::NOT_FOUND,
                    "{backend:?}: deleted {id}: {lead}"
                );
                continue;
            }
            assert_eq!(st, StatusCode::OK, "{backend:?}: acknowledged {id} is gone");
            assert_eq!(lead["name"], json!(name), "{backend:?}: {id}");
            if let Some(e) = lead["email"].as_str() {
                live_emails.insert(e.to_string());
            }
            let (_, notes) = api.get(&format!("/leads/{id}/notes")).await;
            let contents: HashSet<String> = notes
                .as_array()
                .or_else(|| notes["notes"].as_array())
                .unwrap()
                .iter()
                .map(|n| n["content"].as_str().unwrap().to_string())
                .collect();
            for n in a.notes.get(id).into_iter().flatten() {
                assert!(
                    contents.contains(n),
                    "{backend:?}: note {n} on {id} is gone"
                );
            }
        }
    }

    // No lead was duplicated by a retried create or batch: each e-mail once.
    let all = api.ids("limit=1000").await;
    let mut per_email: HashMap<String, usize> = HashMap::new();
    for id in &all {
        let lead = api.get_lead(id).await;
        if let Some(e) = lead["email"].as_str() {
            *per_email.entry(e.to_string()).or_default() += 1;
        }
    }
    let dups: Vec<_> = per_email.iter().filter(|(_, n)| **n > 1).collect();
    assert!(dups.is_empty(), "{backend:?}: duplicated leads: {dups:?}");
    for e in &live_emails {
        assert_eq!(per_email.get(e), Some(&1), "{backend:?}: {e}");
    }

    // The plan-usage counter equals a recount.
    let (st, page) = api.get("/leads?limit=1").await;
    assert_eq!(st, StatusCode::OK);
    let account = s
        .app
        .accounts
        .authenticate(&api.key)
        .await
        .expect("the key still works");
    let counter = s
        .app
        .deps
        .store
        .get(
            klozeo_core::ports::Table::Accounts,
            &klozeo_core::schema::lead_counter_key(&account.account_id),
        )
        .await
        .unwrap()
        .map_or(0, |i| i.counter);
    assert_eq!(
        counter as usize,
        all.len(),
        "{backend:?}: plan usage counter vs recount ({page})"
    );

    // Every acknowledged create's event (`lead.created`, or its batch's `leads.created`)
    // arrives at least once.
    // A batch that failed part-way left member events that only the dispatcher folds, once
    // they are old enough to be sure the batch died: move the clock past that.
    s.clock
        .advance_secs(klozeo_core::services::webhooks::ORPHAN_AFTER_SECS + 60);
    let created: HashSet<String> = acked.iter().flat_map(|a| a.created.clone()).collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let delivered: HashSet<String> = got_all
            .lock()
            .unwrap()
            .iter()
            .map(|(_, _, v)| v)
            .flat_map(|v| {
                // `lead.created` carries the lead, `leads.created` a batch's ids.
                let one = v["data"]["id"].as_str().map(str::to_string);
                let many = v["data"]["ids"]
                    .as_array()
                    .map(|ids| {
                        ids.iter()
                            .filter_map(|i| i.as_str().map(str::to_string))
                            .collect::<Vec<_>>()
                    })
                    .unwrap_or_default();
                one.into_iter().chain(many)
            })
            .collect();
        let missing: Vec<&String> = created.difference(&delivered).collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{backend:?}: {} lead.created events never arrived, e.g. {:?}",
            missing.len(),
            missing.iter().take(3).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // A repeated delivery is recognisable: every receipt under one `webhook-id` carries the
    // same bytes (Standard Webhooks' promise to receivers that deduplicate on it).
    let mut by_id: HashMap<String, (Vec<u8>, usize)> = HashMap::new();
    for (id, body, _) in got_all.lock().unwrap().iter() {
        assert!(!id.is_empty(), "{backend:?}: a delivery without webhook-id");
        let e = by_id.entry(id.clone()).or_insert((body.clone(), 0));
        assert_eq!(
            &e.0, body,
            "{backend:?}: webhook-id {id} was sent with two different bodies"
        );
        e.1 += 1;
    }
    let repeats: usize = by_id.values().map(|(_, n)| n - 1).sum();
    queue.set_enabled(false);

    // Every rule is as last acknowledged, and once the rescoring jobs have run (through the
    // faulty queue, duplicates included) every stored score equals a recomputation.
    for a in &acked {
        if let Some((id, expression)) = &a.rule {
            let (st, rule) = api.get(&format!("/scoring-rules/{id}")).await;
            assert_eq!(st, StatusCode::OK, "{backend:?}: rule {id}: {rule}");
            assert_eq!(rule["expression"], json!(expression), "{backend:?}: {rule}");
        }
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let mut stale = Vec::new();
        for id in &all {
            let lead = api.get_lead(id).await;
            let (st, explained) = api.get(&format!("/leads/{id}/score/explain")).await;
            assert_eq!(st, StatusCode::OK, "{backend:?}: {explained}");
            if lead["score"].as_f64().unwrap_or(0.0) != explained["score"].as_f64().unwrap() {
                stale.push((
                    id.clone(),
                    lead["score"].clone(),
                    explained["score"].clone(),
                ));
            }
        }
        if stale.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{backend:?}: {} stored scores differ from a recomputation, e.g. {:?}",
            stale.len(),
            &stale[..stale.len().min(3)]
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // The statistics equal a recount of the leads.
    let mut leads = Vec::new();
    for id in &all {
        leads.push(api.get_lead(id).await);
    }
    let (st, stats) = api.get("/stats").await;
    assert_eq!(st, StatusCode::OK, "{stats}");
    let count = |f: &dyn Fn(&Value) -> bool| leads.iter().filter(|l| f(l)).count() as u64;
    assert_eq!(stats["total"], json!(leads.len()), "{backend:?}: {stats}");
    assert_eq!(
        stats["with_email"],
        json!(count(&|l| l["email"].is_string())),
        "{backend:?}: {stats}"
    );
    assert_eq!(
        stats["with_phone"],
        json!(count(&|l| l["phone"].is_string())),
        "{backend:?}: {stats}"
    );
    assert_eq!(
        stats["created_last_7_days"],
        json!(leads.len()),
        "{backend:?}: {stats}"
    );
    let mut by_source: BTreeMap<String, u64> = BTreeMap::new();
    let mut by_status: BTreeMap<String, u64> = BTreeMap::new();
    for l in &leads {
        *by_source
            .entry(l["source"].as_str().unwrap().to_string())
            .or_default() += 1;
        *by_status
            .entry(l["status"].as_str().unwrap_or("new").to_string())
            .or_default() += 1;
    }
    assert_eq!(stats["by_source"], json!(by_source), "{backend:?}: {stats}");
    for (status, n) in &by_status {
        assert_eq!(stats["by_status"][status], json!(n), "{backend:?}: {stats}");
    }

    let statuses = seen.lock().unwrap().clone();
    eprintln!(
        "{backend:?}: {injected} store faults injected ({} throttled, {} canceled, {} lost answers); \
         {q_injected} queue faults by the end of the workload, {} by the end of delivery \
         ({} acks dropped, {} duplicated, {} sends failed, {} sends lost their answer); \
         {repeats} repeated webhook receipts over {} webhook-ids; \
         answers by status: {statuses:?}; {} leads",
        faulty.counts.throttled.load(Ordering::Relaxed),
        faulty.counts.canceled.load(Ordering::Relaxed),
        faulty.counts.timed_out_after_commit.load(Ordering::Relaxed),
        queue.counts.injected(),
        queue.counts.acks_dropped.load(Ordering::Relaxed),
        queue.counts.duplicated.load(Ordering::Relaxed),
        queue.counts.sends_failed.load(Ordering::Relaxed),
        queue.counts.sends_lost_answer.load(Ordering::Relaxed),
        by_id.len(),
        all.len()
    );
    assert!(
        queue.counts.acks_dropped.load(Ordering::Relaxed) > 0
            && queue.counts.duplicated.load(Ordering::Relaxed) > 0,
        "{backend:?}: the queue faults never hit an acknowledgement or a receive"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mixed_workload_under_ten_percent_store_and_queue_faults_loses_nothing() {
    for b in backends() {
        match b {
            Backend::Embedded => run(b, 6, 40).await,
            // The emulator serves one request at a time: a smaller workload.
            Backend::Dynamo => run(b, 4, 15).await,
        }
    }
}
