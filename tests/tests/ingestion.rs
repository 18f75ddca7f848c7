//! Ingestion over real HTTP on every backend: four-tier deduplication, batch operations, plan
//! and rate limits, and idempotency keys.
#![allow(clippy::unwrap_used)]

use std::collections::HashSet;

use klozeo_core::ports::{QueryReq, Table};
use klozeo_tests::{Api, Resp, TestServer, backends};
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};

/// What these tests need beyond the shared client: an optional `Idempotency-Key` on any call.
trait IngestApi {
    async fn call(&self, m: Method, path: &str, body: Option<Value>, idem: Option<&str>) -> Resp;
    async fn push(&self, body: Value) -> Resp;
    async fn lead(&self, id: &str) -> Value;
    async fn count(&self) -> usize;
}

impl IngestApi for Api {
    async fn call(&self, m: Method, path: &str, body: Option<Value>, idem: Option<&str>) -> Resp {
        match idem {
            Some(k) => self.request(m, path, body, &[("Idempotency-Key", k)]).await,
            None => self.request(m, path, body, &[]).await,
        }
    }

    async fn push(&self, body: Value) -> Resp {
        self.call(Method::POST, "/leads", Some(body), None).await
    }

    async fn lead(&self, id: &str) -> Value {
        self.get_lead(id).await
    }

    async fn count(&self) -> usize {
        self.call(Method::GET, "/leads?limit=1000", None, None)
            .await
            .body["count"]
            .as_u64()
            .unwrap() as usize
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_merges_last_touch_wins() {
    for b in backends() {
        let s = TestServer::start(b).await;
        let api = Api::on_plan(&s, "unlimited").await;
        let first = api
            .push(json!({"name": "Acme", "source": "maps", "email": "Hello@Acme.com", "city": "Paris",
                         "rating": 4.0, "tags": ["a"],
                         "attributes": [{"name": "industry", "type": "text", "value": "Software"}]}))
            .await;
        assert_eq!(first.status, StatusCode::CREATED);
        let id = first.body["id"].as_str().unwrap().to_string();
        let before = api.lead(&id).await;
        s.clock.advance_secs(60);
        // Nothing new: a merge that changes no value moves only last_interaction_at.
        let same = api
            .push(json!({"name": "Acme", "source": "maps", "email": " Hello@Acme.com "}))
            .await;
        assert_eq!(same.status, StatusCode::OK, "{b:?} {}", same.body);
        assert_eq!(same.body["id"], json!(id));
        assert_eq!(same.body["duplicate"], json!(true));
        assert_eq!(
            same.body["message"],
            "Duplicate detected, existing lead updated"
        );
        assert_eq!(same.body["created_at"], before["created_at"]);
        assert_eq!(same.body["match"], json!({"tier": "email"}));
        let after_same = api.lead(&id).await;
        assert_eq!(after_same["updated_at"], before["updated_at"]);
        assert_eq!(
            after_same["last_interaction_at"].as_i64().unwrap(),
            before["last_interaction_at"].as_i64().unwrap() + 60
        );
        s.clock.advance_secs(60);
        let merged = api
            .push(
                json!({"name": "Acme", "source": "maps", "email": "HELLO@acme.com", "city": "",
                         "rating": 4.9, "phone": "+33 1 00 00",
                         "attributes": [{"name": "industry", "type": "text", "value": "Retail"},
                                        {"name": "size", "type": "number", "value": 10}]}),
            )
            .await;
        assert_eq!(merged.status, StatusCode::OK);
        let l = api.lead(&id).await;
        assert_eq!(
            l["city"], "Paris",
            "an empty incoming value leaves the stored one"
        );
        assert_eq!(
            l["rating"],
            json!(4.9),
            "a non-empty incoming value overwrites"
        );
        assert_eq!(l["phone"], "+33 1 00 00");
        assert_eq!(l["tags"], json!(["a"]), "absent fields stay");
        let attrs = l["attributes"].as_array().unwrap();
        assert_eq!(attrs.len(), 2);
        assert_eq!(
            attrs[0]["id"], before["attributes"][0]["id"],
            "upsert keeps the id"
        );
        assert_eq!(attrs[0]["value"], "Retail");
        assert_eq!(
            l["updated_at"].as_i64().unwrap(),
            before["updated_at"].as_i64().unwrap() + 120
        );
        assert_eq!(api.count().await, 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn source_id_phone_and_name_city_tiers() {
    for b in backends() {
        let s = TestServer::start(b).await;
        let api = Api::on_plan(&s, "unlimited").await;
        let a = api
            .push(
                json!({"name": "Acme Corp", "source": "maps", "source_id": "ext-1",
                         "phone": "+49 30 1234567", "city": "Berlin"}),
            )
            .await
            .body["id"]
            .as_str()
            .unwrap()
            .to_string();
        let by_sid = api
            .push(json!({"name": "Acme Corp", "source": "crm", "source_id": "ext-1"}))
            .await;
        assert_eq!(
            (by_sid.status, by_sid.body["id"].clone()),
            (StatusCode::OK, json!(a))
        );
        assert_eq!(by_sid.body["match"]["tier"], "source_id");
        let by_phone = api
            .push(json!({"name": "ACME Corp.", "source": "crm", "phone": "+49 (30) 123-4567"}))
            .await;
        assert_eq!(by_phone.status, StatusCode::OK, "{b:?} {}", by_phone.body);
        assert_eq!(by_phone.body["id"], json!(a));
        assert_eq!(by_phone.body["match"]["tier"], "phone_name");
        assert!(by_phone.body["match"]["similarity"].as_f64().unwrap() > 0.8);
        // Same phone, unrelated name: a new lead.
        let zenith = api
            .push(json!({"name": "Zenith Labs", "source": "crm", "phone": "+49 30 1234567"}))
            .await;
        assert_eq!(zenith.status, StatusCode::CREATED);
        // Name + city only: created, with a hint.
        let hinted = api
            .push(json!({"name": " acme corp. ", "source": "x", "city": "BERLIN"}))
            .await;
        assert_eq!(hinted.status, StatusCode::CREATED);
        assert_eq!(
            hinted.body["potential_duplicate_id"],
            json!(a),
            "{}",
            hinted.body
        );
        assert_eq!(hinted.body["match"]["tier"], "name_city");
        assert_eq!(api.count().await, 3);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiers_are_tried_in_order_and_the_first_match_decides() {
    for b in backends() {
        let s = TestServer::start(b).await;
        let api = Api::on_plan(&s, "unlimited").await;
        let by_email = api
            .push(json!({"name": "E", "source": "s", "email": "e@x.com"}))
            .await
            .body["id"]
            .clone();
        let by_sid = api
            .push(json!({"name": "S", "source": "s", "source_id": "sid"}))
            .await
            .body["id"]
            .clone();
        let r = api
            .push(json!({"name": "Both", "source": "s", "email": "E@x.com", "source_id": "sid"}))
            .await;
        assert_eq!(
            r.body["id"], by_email,
            "{b:?}: e-mail (tier 1) wins over source_id"
        );
        assert_eq!(r.body["match"]["tier"], "email");
        assert_ne!(r.body["id"], by_sid);
        // The source_id stays with the lead that had it first.
        let again = api
            .push(json!({"name": "x", "source": "s", "source_id": "sid"}))
            .await;
        assert_eq!(again.body["id"], by_sid);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_identical_pushes_end_in_one_lead() {
    for b in backends() {
        let s = TestServer::start(b).await;
        let api = Api::on_plan(&s, "unlimited").await;
        let body = json!({"name": "Race Inc", "source": "scraper", "email": "race@inc.com", "source_id": "r-1"});
        let futs = (0..50).map(|_| api.push(body.clone()));
        let results = futures_util::future::join_all(futs).await;
        let ids: HashSet<String> = results
            .iter()
            .map(|r| {
                assert!(r.status.is_success(), "{b:?} {} {}", r.status, r.body);
                r.body["id"].as_str().unwrap().to_string()
            })
            .collect();
        assert_eq!(ids.len(), 1, "{b:?}");
        assert_eq!(
            results
                .iter()
                .filter(|r| r.status == StatusCode::CREATED)
                .count(),
            1
        );
        assert_eq!(api.count().await, 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_create_reports_per_index_and_groups_its_events() {
    for b in backends() {
        let s = TestServer::start(b).await;
        let api = Api::on_plan(&s, "unlimited").await;
        api.subscribe().await;
        let existing = api
            .push(json!({"name": "Old", "source": "s", "email": "old@x.com"}))
            .await
            .body["id"]
            .clone();
        let r = api
            .call(
                Method::POST,
                "/leads/batch",
                Some(json!({"leads": [
                    {"name": "One", "source": "import", "city": "Athens"},
                    {"source": "import"},
                    {"name": "Two", "source": "import", "email": "two@x.com"},
                    {"name": "Two again", "source": "import", "email": "TWO@x.com"},
                    {"name": "Old again", "source": "import", "email": "old@x.com"},
                    {"name": "Bad", "source": "import", "rating": "high"},
                    "not an object"
                ]})),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::MULTI_STATUS, "{b:?} {}", r.body);
        let created = r.body["created"].as_array().unwrap();
        let idx: Vec<u64> = created
            .iter()
            .map(|c| c["index"].as_u64().unwrap())
            .collect();
        assert_eq!(idx, [0, 2, 3, 4]);
        assert!(created.iter().all(|c| c["created_at"].is_i64()));
        assert_eq!(
            created[2]["duplicate"],
            json!(true),
            "dedup within the batch"
        );
        assert_eq!(created[2]["id"], created[1]["id"]);
        assert_eq!(created[3]["id"], existing);
        let errs = r.body["errors"].as_array().unwrap();
        let eidx: Vec<u64> = errs.iter().map(|e| e["index"].as_u64().unwrap()).collect();
        assert_eq!(eidx, [1, 5, 6]);
        assert!(
            errs[0]["message"]
                .as_str()
                .unwrap()
                .contains("name is required")
        );
        assert!(errs[1]["message"].as_str().unwrap().contains("rating"));
        assert_eq!(
            (
                r.body["total"].clone(),
                r.body["success"].clone(),
                r.body["failed"].clone()
            ),
            (json!(7), json!(4), json!(3))
        );
        assert_eq!(api.count().await, 3);
        let events = api.outbox(&s).await;
        let names: Vec<&str> = events
            .iter()
            .map(|e| e["event"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            ["lead.created", "leads.created", "leads.updated"],
            "{b:?}"
        );
        assert_eq!(events[1]["data"]["count"], 2);
        assert_eq!(events[2]["data"]["count"], 2);
        assert!(
            events.iter().all(|e| e.get("group").is_none()),
            "members are folded"
        );
        // All good: 201.
        let ok = api
            .call(
                Method::POST,
                "/leads/batch",
                Some(json!({"leads": [{"name": "Z", "source": "s"}]})),
                None,
            )
            .await;
        assert_eq!(ok.status, StatusCode::CREATED);
        assert_eq!(ok.body["errors"], json!([]));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_update_and_delete_answer_per_id_results() {
    for b in backends() {
        let s = TestServer::start(b).await;
        let api = Api::on_plan(&s, "unlimited").await;
        api.subscribe().await;
        let mut ids = Vec::new();
        for i in 0..3 {
            ids.push(
                api.push(json!({"name": format!("L{i}"), "source": "s"}))
                    .await
                    .body["id"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            );
        }
        let missing = "cl_00000000-0000-7000-8000-000000000000".to_string();
        let r = api
            .call(Method::PUT, "/leads/batch", Some(json!({"ids": [ids[0], missing, ids[1]], "data": {"source": "LinkedIn", "tags": ["reviewed"]}})), None)
            .await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(
            (
                r.body["total"].clone(),
                r.body["success"].clone(),
                r.body["failed"].clone()
            ),
            (json!(3), json!(2), json!(1))
        );
        assert_eq!(
            r.body["results"][1],
            json!({"index": 1, "id": missing, "success": false, "message": "Lead not found"})
        );
        assert_eq!(api.lead(&ids[1]).await["source"], "LinkedIn");
        assert_eq!(api.lead(&ids[2]).await["source"], "s");
        let bad = api
            .call(
                Method::PUT,
                "/leads/batch",
                Some(json!({"ids": [ids[0]], "data": {"status": "nope"}})),
                None,
            )
            .await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST);
        let d = api
            .call(
                Method::DELETE,
                "/leads/batch",
                Some(json!({"ids": [ids[0], ids[2]]})),
                None,
            )
            .await;
        assert_eq!(d.status, StatusCode::OK);
        assert_eq!(d.body["success"], 2);
        assert_eq!(api.count().await, 1);
        let names: Vec<String> = api
            .outbox(&s)
            .await
            .iter()
            .map(|e| e["event"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(&names[3..], ["leads.updated", "leads.deleted"], "{b:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_over_the_plan_limit_is_rejected_whole() {
    for b in backends() {
        let s = TestServer::start(b).await;
        let api = Api::on_plan(&s, "leads100").await;
        let leads: Vec<Value> = (0..101)
            .map(|i| json!({"name": format!("L{i}"), "source": "s"}))
            .collect();
        let r = api
            .call(
                Method::POST,
                "/leads/batch",
                Some(json!({"leads": leads})),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{b:?}");
        assert!(
            r.body["message"]
                .as_str()
                .unwrap()
                .contains("batch limit of 100")
        );
        assert_eq!(api.count().await, 0);
        // Merges take no slot: 100 distinct then 100 duplicates all succeed; one more new is refused.
        let leads: Vec<Value> = (0..100)
            .map(
                |i| json!({"name": format!("L{i}"), "source": "s", "email": format!("l{i}@x.com")}),
            )
            .collect();
        let r = api
            .call(
                Method::POST,
                "/leads/batch",
                Some(json!({"leads": leads.clone()})),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED);
        let r = api
            .call(
                Method::POST,
                "/leads/batch",
                Some(json!({"leads": leads})),
                None,
            )
            .await;
        assert_eq!(
            (r.status, r.body["success"].clone()),
            (StatusCode::CREATED, json!(100))
        );
        let over = api.push(json!({"name": "new", "source": "s"})).await;
        assert_eq!(over.status, StatusCode::FORBIDDEN);
        assert_eq!(over.body["code"], "leads_limit_reached");
        assert_eq!(api.count().await, 100);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_at_the_limit_cannot_both_succeed() {
    for b in backends() {
        let s = TestServer::start(b).await;
        let api = Api::on_plan(&s, "leads100").await;
        let leads: Vec<Value> = (0..99)
            .map(|i| json!({"name": format!("L{i}"), "source": "s"}))
            .collect();
        api.call(
            Method::POST,
            "/leads/batch",
            Some(json!({"leads": leads})),
            None,
        )
        .await;
        let futs = (0..2).map(|i| api.push(json!({"name": format!("last{i}"), "source": "s"})));
        let r = futures_util::future::join_all(futs).await;
        let ok = r.iter().filter(|x| x.status == StatusCode::CREATED).count();
        assert_eq!(ok, 1, "{b:?}");
        assert_eq!(api.count().await, 100);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_101st_request_in_the_window_is_a_429_with_no_side_effect() {
    for b in backends() {
        let s = TestServer::start(b).await;
        let api = Api::on_plan(&s, "free").await;
        let mut last_remaining = 100;
        for i in 0..100 {
            let r = api.call(Method::GET, "/leads", None, None).await;
            assert_eq!(r.status, StatusCode::OK, "{b:?} request {i}");
            let limit: u32 = r.headers["x-ratelimit-limit"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            let remaining: u32 = r.headers["x-ratelimit-remaining"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert_eq!(limit, 100);
            assert_eq!(remaining, last_remaining - 1);
            last_remaining = remaining;
            if i == 50 {
                s.clock.advance_secs(120);
            }
        }
        let r = api.push(json!({"name": "too late", "source": "s"})).await;
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.body["code"], "rate_limit_exceeded");
        assert_eq!(r.body["error"], "rate_limit_exceeded");
        let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
        // The first 51 requests are 120 s older: their slots free after the rest of the window.
        assert!((470..=490).contains(&retry), "Retry-After {retry}");
        let tenant = s.app.accounts.authenticate(&api.key).await.unwrap();
        let page = s.app.leads.list(&tenant, &Default::default()).await;
        assert!(
            page.is_err() || page.unwrap().leads.is_empty(),
            "no lead was written"
        );
        // Unauthenticated requests are not counted and get 401.
        let anon = Client::new()
            .get(format!("{}/leads", s.base_url))
            .send()
            .await
            .unwrap();
        assert_eq!(anon.status(), 401);
        // After the window slides, requests are accepted again.
        s.clock.advance_secs(retry as i64);
        let ok = api.call(Method::GET, "/leads", None, None).await;
        assert_eq!(ok.status, StatusCode::OK);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_keys_replay_and_detect_misuse() {
    for b in backends() {
        let s = TestServer::start(b).await;
        let api = Api::on_plan(&s, "unlimited").await;
        let body = json!({"name": "Once", "source": "agent"});
        let first = api
            .call(Method::POST, "/leads", Some(body.clone()), Some("k-1"))
            .await;
        assert_eq!(first.status, StatusCode::CREATED);
        assert!(first.headers.get("idempotency-replayed").is_none());
        s.clock.advance_secs(3600);
        let again = api
            .call(Method::POST, "/leads", Some(body.clone()), Some("k-1"))
            .await;
        assert_eq!(again.status, StatusCode::CREATED, "{b:?}");
        assert_eq!(again.body, first.body);
        assert_eq!(again.headers["idempotency-replayed"], "true");
        assert_eq!(api.count().await, 1, "the replay did nothing");
        let other = api
            .call(
                Method::POST,
                "/leads",
                Some(json!({"name": "Different", "source": "agent"})),
                Some("k-1"),
            )
            .await;
        assert_eq!(other.status, StatusCode::CONFLICT);
        assert_eq!(other.body["code"], "idempotency_conflict");
        // Keys are per account.
        let api2 = Api::on_plan(&s, "unlimited").await;
        let theirs = api2
            .call(Method::POST, "/leads", Some(body.clone()), Some("k-1"))
            .await;
        assert_eq!(theirs.status, StatusCode::CREATED);
        assert!(theirs.headers.get("idempotency-replayed").is_none());
        // Errors replay too, and a DELETE can carry a key.
        let id = first.body["id"].as_str().unwrap();
        let d1 = api
            .call(Method::DELETE, &format!("/leads/{id}"), None, Some("del-1"))
            .await;
        let d2 = api
            .call(Method::DELETE, &format!("/leads/{id}"), None, Some("del-1"))
            .await;
        assert_eq!(
            (d1.status, d2.status),
            (StatusCode::NO_CONTENT, StatusCode::NO_CONTENT)
        );
        assert_eq!(d2.headers["idempotency-replayed"], "true");
        // After 24 hours the key is forgotten.
        s.clock.advance_secs(24 * 3600);
        let late = api
            .call(Method::POST, "/leads", Some(body), Some("k-1"))
            .await;
        assert_eq!(late.status, StatusCode::CREATED);
        assert!(late.headers.get("idempotency-replayed").is_none());
    }
}

/// A store that fails every attempt to record a finished idempotent response, as a store
/// outage right after the change itself committed would.
struct FailIdemRecord(std::sync::Arc<dyn klozeo_core::ports::Store>);

#[async_trait::async_trait]
impl klozeo_core::ports::Store for FailIdemRecord {
    async fn get(
        &self,
        table: Table,
        key: &klozeo_core::ports::Key,
    ) -> klozeo_core::Result<Option<klozeo_core::ports::Item>> {
        self.0.get(table, key).await
    }
    async fn batch_get(
        &self,
        table: Table,
        keys: &[klozeo_core::ports::Key],
    ) -> klozeo_core::Result<Vec<klozeo_core::ports::Item>> {
        self.0.batch_get(table, keys).await
    }
    async fn query(&self, req: &QueryReq) -> klozeo_core::Result<klozeo_core::ports::Page> {
        self.0.query(req).await
    }
    async fn scan(
        &self,
        table: Table,
        start_after: Option<klozeo_core::ports::Key>,
        limit: u32,
    ) -> klozeo_core::Result<klozeo_core::ports::Page> {
        self.0.scan(table, start_after, limit).await
    }
    async fn transact(
        &self,
        ops: Vec<klozeo_core::ports::WriteOp>,
    ) -> Result<(), klozeo_core::ports::StoreError> {
        let records_response = ops.iter().any(|op| {
            matches!(op, klozeo_core::ports::WriteOp::Put { item, .. }
                if item.key.pk.starts_with("IDEM#")
                    && String::from_utf8_lossy(&item.body).contains("\"done\":true"))
        });
        if records_response {
            return Err(klozeo_core::Error::Unavailable("injected store outage".into()).into());
        }
        self.0.transact(ops).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_that_cannot_be_recorded_still_reaches_the_caller_and_frees_the_key() {
    for b in backends() {
        let s =
            TestServer::start_wrapped(b, |inner| std::sync::Arc::new(FailIdemRecord(inner))).await;
        let api = Api::on_plan(&s, "unlimited").await;
        let body = json!({"name": "Recorded?", "source": "s", "email": "rec@example.com"});
        let first = api
            .call(Method::POST, "/leads", Some(body.clone()), Some("k-lost"))
            .await;
        assert_eq!(first.status, StatusCode::CREATED, "{b:?}: {}", first.body);
        let id = first.body["id"].as_str().unwrap().to_string();
        assert_eq!(api.lead(&id).await["name"], "Recorded?", "{b:?}: stored");
        // The key was released, not left locked: a retry runs again (and dedup merges it)
        // instead of a 409 "still in progress".
        let retry = api
            .call(Method::POST, "/leads", Some(body), Some("k-lost"))
            .await;
        assert_eq!(retry.status, StatusCode::OK, "{b:?}: {}", retry.body);
        assert_eq!(retry.body["id"], json!(id), "{b:?}");
        assert_eq!(retry.body["duplicate"], json!(true), "{b:?}");
        assert_eq!(api.count().await, 1, "{b:?}");
    }
}

/// The name + city hint compares whole names (two long names that agree on their first 400
/// bytes are different names) and follows a lead that moves or goes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn name_city_hints_compare_whole_names_and_follow_moves() {
    for b in backends() {
        let s = TestServer::start(b).await;
        let api = Api::on_plan(&s, "unlimited").await;
        let hint = |r: &Resp| {
            assert_eq!(r.status, StatusCode::CREATED, "{b:?} {}", r.body);
            r.body["potential_duplicate_id"]
                .as_str()
                .map(str::to_string)
        };
        let long = "Société Générale de Boulangerie ".repeat(14);
        let alpha = api
            .create_lead(json!({"name": format!("{long}Alpha"), "source": "x", "city": "Paris"}))
            .await;
        let beta = api
            .push(json!({"name": format!("{long}Beta"), "source": "x", "city": "Paris"}))
            .await;
        assert_eq!(hint(&beta), None, "{b:?}: another name");
        let again = api
            .push(json!({"name": format!("{long}beta "), "source": "y", "city": " PARIS"}))
            .await;
        let hinted = hint(&again);
        assert_eq!(hinted.as_deref(), beta.body["id"].as_str(), "{b:?}");
        assert_ne!(hinted, Some(alpha), "{b:?}");

        let shop = api
            .create_lead(json!({"name": "Corner Shop", "source": "x", "city": "Lyon"}))
            .await;
        let (st, v) = api
            .send(
                Method::PATCH,
                &format!("/leads/{shop}"),
                Some(json!({"city": "Nice"})),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{v}");
        let in_lyon = api
            .push(json!({"name": "Corner Shop", "source": "y", "city": "Lyon"}))
            .await;
        assert_eq!(hint(&in_lyon), None, "{b:?}: the shop left Lyon");
        let in_nice = api
            .push(json!({"name": "corner shop", "source": "y", "city": "nice"}))
            .await;
        assert_eq!(hint(&in_nice), Some(shop.clone()), "{b:?}");
        for id in [&shop, in_nice.body["id"].as_str().unwrap()] {
            let (st, _) = api
                .send(Method::DELETE, &format!("/leads/{id}"), None)
                .await;
            assert!(st.is_success(), "{st}");
        }
        let gone = api
            .push(json!({"name": "Corner Shop", "source": "z", "city": "Nice"}))
            .await;
        assert_eq!(hint(&gone), None, "{b:?}: deleted leads are not hinted at");
    }
}
