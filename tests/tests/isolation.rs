//! Tenant isolation as one table: every route that addresses a lead, a note, an attribute or a
//! rule, called with a second account's key, answers exactly like a missing id (404 in the flat
//! shape), and the first account's data is unchanged afterwards. Runs on every backend.
#![allow(clippy::unwrap_used)]

use klozeo_tests::{Api, TestServer, assert_flat_error, backends};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// The first account's data, as its owner sees it.
async fn snapshot(api: &Api, lead: &str, rule: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for path in [
        format!("/leads/{lead}"),
        format!("/leads/{lead}/notes"),
        format!("/leads/{lead}/attributes"),
        format!("/scoring-rules/{rule}"),
        "/leads".to_string(),
        "/scoring-rules".to_string(),
    ] {
        let (st, v) = api.get(&path).await;
        assert_eq!(st, StatusCode::OK, "{path}: {v}");
        out.push(v);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_accounts_ids_answer_like_missing_ones_on_every_route() {
    for b in backends() {
        let s = TestServer::start(b).await;
        let owner = Api::on_plan(&s, "unlimited").await;
        let intruder = Api::on_plan(&s, "unlimited").await;
        let lead = owner
            .create_lead(
                json!({"name": "Mine", "source": "s", "email": "mine@example.com",
                "attributes": [{"name": "employees", "type": "number", "value": 5}]}),
            )
            .await;
        let (st, note) = owner
            .send(
                Method::POST,
                &format!("/leads/{lead}/notes"),
                Some(json!({"content": "private"})),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED);
        let note = note["id"].as_str().unwrap().to_string();
        let (_, attrs) = owner.get(&format!("/leads/{lead}/attributes")).await;
        let attr = attrs["attributes"][0]["id"].as_str().unwrap().to_string();
        let (st, rule) = owner
            .send(
                Method::POST,
                "/scoring-rules",
                Some(json!({"name": "r", "expression": "rating * 10"})),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED);
        let rule = rule["id"].as_str().unwrap().to_string();
        let before = snapshot(&owner, &lead, &rule).await;

        let lead_body = json!({"name": "Stolen", "source": "x"});
        let cases: Vec<(Method, String, Option<Value>)> = vec![
            (Method::GET, format!("/leads/{lead}"), None),
            (
                Method::PUT,
                format!("/leads/{lead}"),
                Some(lead_body.clone()),
            ),
            (
                Method::PATCH,
                format!("/leads/{lead}"),
                Some(lead_body.clone()),
            ),
            (Method::DELETE, format!("/leads/{lead}"), None),
            (Method::GET, format!("/leads/{lead}/notes"), None),
            (
                Method::POST,
                format!("/leads/{lead}/notes"),
                Some(json!({"content": "x"})),
            ),
            (
                Method::PUT,
                format!("/notes/{note}"),
                Some(json!({"content": "x"})),
            ),
            (Method::DELETE, format!("/notes/{note}"), None),
            (Method::GET, format!("/leads/{lead}/attributes"), None),
            (
                Method::POST,
                format!("/leads/{lead}/attributes"),
                Some(json!({"name": "employees", "type": "number", "value": 9})),
            ),
            (
                Method::PUT,
                format!("/leads/{lead}/attributes/{attr}"),
                Some(json!({"value": 9})),
            ),
            (
                Method::DELETE,
                format!("/leads/{lead}/attributes/{attr}"),
                None,
            ),
            (Method::POST, format!("/leads/{lead}/score"), None),
            (Method::GET, format!("/leads/{lead}/score/explain"), None),
            (Method::GET, format!("/scoring-rules/{rule}"), None),
            (
                Method::PUT,
                format!("/scoring-rules/{rule}"),
                Some(json!({"weight": 9})),
            ),
            (Method::DELETE, format!("/scoring-rules/{rule}"), None),
        ];
        for (m, path, body) in cases {
            let (st, v) = intruder.send(m.clone(), &path, body.clone()).await;
            assert_eq!(st, StatusCode::NOT_FOUND, "{b:?} {m} {path}: {v}");
            assert_flat_error(&v, "not_found");
            // The same route with an id that never existed answers the same way.
            let missing = path
                .replace(&lead, "cl_00000000-0000-7000-8000-000000000000")
                .replace(&note, "note_00000000-0000-7000-8000-000000000000")
                .replace(&attr, "00000000-0000-4000-8000-000000000000")
                .replace(&rule, "00000000-0000-4000-8000-000000000001");
            let (st2, v2) = intruder.send(m.clone(), &missing, body).await;
            assert_eq!(
                (st2, &v2["message"]),
                (st, &v["message"]),
                "{b:?} {m} {path} vs {missing}"
            );
        }
        // Batches address ids too: each item fails alone as not found.
        for m in [Method::PUT, Method::DELETE] {
            let body = match m {
                Method::PUT => json!({"ids": [lead], "data": {"name": "Stolen"}}),
                _ => json!({"ids": [lead]}),
            };
            let (st, v) = intruder.send(m.clone(), "/leads/batch", Some(body)).await;
            assert_eq!(st, StatusCode::OK, "{b:?} {m}: {v}");
            assert_eq!(v["failed"], 1, "{b:?} {m}: {v}");
            assert_eq!(v["results"][0]["message"], "Lead not found", "{b:?} {m}");
        }
        // Lists show none of it; pushing the owner's e-mail creates the intruder's own lead.
        let (_, list) = intruder.get("/leads").await;
        assert_eq!(list["count"], 0, "{b:?}");
        let (st, v) = intruder
            .send(
                Method::POST,
                "/leads",
                Some(json!({"name": "Mine", "source": "s", "email": "mine@example.com"})),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{b:?}: {v}");
        assert_ne!(v["id"], json!(lead));
        assert_eq!(snapshot(&owner, &lead, &rule).await, before, "{b:?}");
    }
}
