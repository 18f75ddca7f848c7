//! `GET /stats`, `/categories` and `/cities` are kept as counters in each lead change's own
//! transaction: after a random mix of creates, merges, updates, deletes, batches and rescoring
//! (over several days), every figure equals what the list endpoint returns for the matching
//! filter; and concurrent creates keep the counters exact. Runs on every backend.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use klozeo_tests::{Api, TestServer, backends, urlencode};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// A small deterministic generator (xorshift64*), so a failure can be replayed by its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len())]
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

const CITIES: &[&str] = &["Paris", "paris", "PARIS", "Berlin", "Oslo", "São Paulo", ""];
const CATEGORIES: &[&str] = &["Bakery", "bakery", "Dentist", "Law Firm", ""];
const SOURCES: &[&str] = &["web", "Web", "crm", "google_maps"];
const STATUSES: &[&str] = &["new", "contacted", "qualified", "disqualified", "converted"];

fn random_lead(r: &mut Rng) -> Value {
    let mut l = json!({
        "name": format!("Lead {}", r.below(1000)),
        "source": r.pick(SOURCES),
        "rating": (r.below(50) as f64) / 10.0,
    });
    let city = r.pick(CITIES);
    if !city.is_empty() {
        l["city"] = json!(city);
    }
    let cat = r.pick(CATEGORIES);
    if !cat.is_empty() {
        l["category"] = json!(cat);
    }
    // A small pool of e-mails, so that some pushes merge.
    if r.chance(50) {
        l["email"] = json!(format!("person{}@example.com", r.below(12)));
    }
    if r.chance(40) {
        l["phone"] = json!(format!("+49 30 {:06}", r.below(1_000_000)));
    }
    if r.chance(30) {
        l["status"] = json!(r.pick(STATUSES));
    }
    l
}

fn q(filters: &[String]) -> String {
    let mut s = "limit=1000".to_string();
    for f in filters {
        s.push_str(&format!("&filter={}", urlencode(f)));
    }
    s
}

async fn count(api: &Api, filters: &[String]) -> u64 {
    api.ids(&q(filters)).await.len() as u64
}

/// Every lead, by walking the list.
async fn all_leads(api: &Api) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = "/leads?limit=1000".to_string();
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={}", urlencode(c)));
        }
        let (st, page) = api.get(&path).await;
        assert_eq!(st, StatusCode::OK, "{page}");
        out.extend(page["leads"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) if page["has_more"] == true => cursor = Some(c.to_string()),
            _ => return out,
        }
    }
}

/// Checks every figure of the analytics routes against the list endpoint.
async fn check_against_list(s: &TestServer, api: &Api, what: &str) {
    let (st, stats) = api.get("/stats").await;
    assert_eq!(st, StatusCode::OK, "{stats}");
    let leads = all_leads(api).await;
    assert_eq!(stats["total"], leads.len() as u64, "{what}: total {stats}");
    assert_eq!(stats["total"], count(api, &[]).await);
    let mut status_sum = 0;
    for st in STATUSES {
        let n = count(api, &[format!("and.eq.status.{st}")]).await;
        assert_eq!(stats["by_status"][st], n, "{what}: status {st} {stats}");
        status_sum += n;
    }
    assert_eq!(status_sum, leads.len() as u64);
    let mut source_sum = 0;
    for (name, n) in stats["by_source"].as_object().unwrap() {
        let listed = count(api, &[format!("and.eq.source.{name}")]).await;
        assert_eq!(n.as_u64().unwrap(), listed, "{what}: source {name} {stats}");
        source_sum += listed;
    }
    assert_eq!(
        source_sum,
        leads.len() as u64,
        "{what}: every source is counted"
    );
    assert_eq!(
        stats["score"]["high"],
        count(api, &["and.gte.score.70".into()]).await,
        "{what}: {stats}"
    );
    assert_eq!(
        stats["score"]["medium"],
        count(api, &["and.gte.score.40".into(), "and.lt.score.70".into()]).await,
        "{what}: {stats}"
    );
    assert_eq!(
        stats["score"]["low"],
        count(api, &["and.lt.score.40".into()]).await,
        "{what}: {stats}"
    );
    let mean = if leads.is_empty() {
        0.0
    } else {
        leads
            .iter()
            .map(|l| l["score"].as_f64().unwrap())
            .sum::<f64>()
            / leads.len() as f64
    };
    let avg = stats["score"]["average"].as_f64().unwrap();
    assert!(
        (avg - mean).abs() <= 0.005 + 1e-9,
        "{what}: average {avg} vs {mean}"
    );
    assert_eq!(
        stats["with_email"],
        count(api, &["and.is_not_empty.email".into()]).await,
        "{what}: {stats}"
    );
    assert_eq!(
        stats["with_phone"],
        count(api, &["and.is_not_empty.phone".into()]).await,
        "{what}: {stats}"
    );
    for (field, days) in [("created_last_7_days", 7), ("created_last_30_days", 30)] {
        let from = s.app.analytics.window_start(days);
        let listed = count(api, &[format!("and.gte.created_at.{from}")]).await;
        assert_eq!(stats[field], listed, "{what}: {field} {stats}");
    }
    for (route, key, field) in [
        ("/categories", "categories", "category"),
        ("/cities", "cities", "city"),
    ] {
        let (st, v) = api.get(route).await;
        assert_eq!(st, StatusCode::OK);
        let list = v[key].as_array().unwrap();
        // The distinct names, case-insensitively, of what is stored.
        let mut expected: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
        for l in &leads {
            if let Some(n) = l[field].as_str().filter(|n| !n.is_empty()) {
                *expected
                    .entry(n.to_lowercase())
                    .or_default()
                    .entry(n.to_string())
                    .or_default() += 1;
            }
        }
        assert_eq!(list.len(), expected.len(), "{what}: {route} {v}");
        for pair in list.windows(2) {
            let (a, b) = (&pair[0], &pair[1]);
            let (ca, cb) = (a["count"].as_u64().unwrap(), b["count"].as_u64().unwrap());
            let (na, nb) = (
                a["name"].as_str().unwrap().to_lowercase(),
                b["name"].as_str().unwrap().to_lowercase(),
            );
            assert!(
                ca > cb || (ca == cb && na < nb),
                "{what}: {route} order {v}"
            );
        }
        for entry in list {
            let name = entry["name"].as_str().unwrap();
            let listed = count(api, &[format!("and.eq.{field}.{name}")]).await;
            assert_eq!(entry["count"], listed, "{what}: {route} {name}");
            let spellings = &expected[&name.to_lowercase()];
            let most = spellings.values().max().unwrap();
            assert_eq!(
                spellings[name], *most,
                "{what}: {name} is the most written spelling"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn figures_equal_the_list_after_a_random_mix_of_changes() {
    for b in backends() {
        let s = TestServer::start(b).await;
        let api = Api::on_plan(&s, "unlimited").await;
        let seed = 0x5eed_u64 + b as u64;
        let mut r = Rng(seed);
        let mut ids: Vec<String> = Vec::new();
        check_against_list(&s, &api, "empty").await;
        let steps = 70;
        for step in 0..steps {
            let what = format!("{b:?} seed {seed} step {step}");
            match r.below(10) {
                0..=2 => {
                    let (st, v) = api
                        .send(Method::POST, "/leads", Some(random_lead(&mut r)))
                        .await;
                    assert!(
                        st == StatusCode::CREATED || st == StatusCode::OK,
                        "{what}: {v}"
                    );
                    let id = v["id"].as_str().unwrap().to_string();
                    if !ids.contains(&id) {
                        ids.push(id);
                    }
                }
                3 if !ids.is_empty() => {
                    let id = ids[r.below(ids.len())].clone();
                    let mut patch = json!({"status": r.pick(STATUSES)});
                    if r.chance(50) {
                        patch["city"] = json!(r.pick(&CITIES[..6]));
                    }
                    if r.chance(30) {
                        patch["category"] = json!(r.pick(&CATEGORIES[..4]));
                    }
                    if r.chance(30) {
                        patch["email"] = json!(null);
                    }
                    if r.chance(20) {
                        patch["source"] = json!(r.pick(SOURCES));
                    }
                    let (st, v) = api
                        .send(Method::PATCH, &format!("/leads/{id}"), Some(patch))
                        .await;
                    assert!(
                        st == StatusCode::OK || st == StatusCode::CONFLICT,
                        "{what}: {v}"
                    );
                }
                4 if !ids.is_empty() => {
                    let id = ids.remove(r.below(ids.len()));
                    let (st, v) = api
                        .send(Method::DELETE, &format!("/leads/{id}"), None)
                        .await;
                    assert_eq!(st, StatusCode::NO_CONTENT, "{what}: {v}");
                }
                5 => {
                    let items: Vec<Value> =
                        (0..2 + r.below(4)).map(|_| random_lead(&mut r)).collect();
                    let (st, v) = api
                        .send(Method::POST, "/leads/batch", Some(json!({"leads": items})))
                        .await;
                    assert!(st.is_success(), "{what}: {v}");
                    for c in v["created"].as_array().unwrap() {
                        let id = c["id"].as_str().unwrap().to_string();
                        if !ids.contains(&id) {
                            ids.push(id);
                        }
                    }
                }
                6 if ids.len() >= 2 => {
                    let pick: Vec<String> =
                        (0..2).map(|_| ids[r.below(ids.len())].clone()).collect();
                    let (st, v) = api
                        .send(
                            Method::PUT,
                            "/leads/batch",
                            Some(json!({"ids": pick, "data": {"status": r.pick(STATUSES), "city": r.pick(&CITIES[..6])}})),
                        )
                        .await;
                    assert!(st.is_success(), "{what}: {v}");
                }
                7 if ids.len() >= 3 => {
                    let a = ids.remove(r.below(ids.len()));
                    let b2 = ids.remove(r.below(ids.len()));
                    let (st, v) = api
                        .send(
                            Method::DELETE,
                            "/leads/batch",
                            Some(json!({"ids": [a, b2]})),
                        )
                        .await;
                    assert!(st.is_success(), "{what}: {v}");
                }
                8 => {
                    // A rule change rescores every lead.
                    let expr = r.pick(&[
                        "rating * 20",
                        "city == \"Paris\" ? 80 : 30",
                        "rating * 10 + 35",
                    ]);
                    let (st, v) = api
                        .send(
                            Method::POST,
                            "/scoring-rules",
                            Some(json!({"name": format!("r{step}"), "expression": expr})),
                        )
                        .await;
                    assert_eq!(st, StatusCode::CREATED, "{what}: {v}");
                    if !ids.is_empty() {
                        let id = &ids[r.below(ids.len())];
                        let (st, v) = api
                            .send(Method::POST, &format!("/leads/{id}/score"), None)
                            .await;
                        assert_eq!(st, StatusCode::OK, "{what}: {v}");
                    }
                }
                _ => {
                    // Time passes: leads age out of the 7- and 30-day windows.
                    s.clock.advance_secs(86_400 * (1 + r.below(6)) as i64);
                }
            }
            if step % 35 == 34 {
                check_against_list(&s, &api, &what).await;
            }
        }
        check_against_list(&s, &api, &format!("{b:?} seed {seed} end")).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_concurrent_creates_keep_the_counters_exact() {
    for b in backends() {
        let s = TestServer::start(b).await;
        let api = Api::on_plan(&s, "unlimited").await;
        let creates = (0..100).map(|i| {
            let api = api.clone();
            async move {
                let city = ["Paris", "paris", "Lyon"][i % 3];
                api.create_lead(json!({
                    "name": format!("Concurrent {i}"), "source": "load",
                    "city": city, "category": "Bakery", "email": format!("c{i}@example.com"),
                }))
                .await
            }
        });
        let ids = futures_util::future::join_all(creates).await;
        assert_eq!(ids.len(), 100);
        let (_, stats) = api.get("/stats").await;
        assert_eq!(stats["total"], 100, "{stats}");
        assert_eq!(stats["by_status"]["new"], 100);
        assert_eq!(stats["by_source"], json!({"load": 100}));
        assert_eq!(stats["with_email"], 100);
        assert_eq!(stats["created_last_7_days"], 100);
        let (_, cities) = api.get("/cities").await;
        assert_eq!(
            cities,
            json!({"cities": [{"name": "Paris", "count": 67}, {"name": "Lyon", "count": 33}]})
        );
        let (_, cats) = api.get("/categories").await;
        assert_eq!(
            cats,
            json!({"categories": [{"name": "Bakery", "count": 100}]})
        );
        check_against_list(&s, &api, &format!("{b:?} concurrent")).await;
    }
}
