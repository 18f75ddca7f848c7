//! End-to-end tests of the leads REST API over real HTTP, on every backend of the run.
//! They assert what a caller sees: status codes, bodies, headers, and what ends up stored.
#![allow(clippy::unwrap_used)]

use std::collections::HashSet;

use klozeo_core::ports::{Cond, Item, Table, WriteOp};
use klozeo_core::schema;
use klozeo_tests::{
    Api, TestServer, assert_flat_error, backends, check_page_invariants, urlencode,
};
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authentication_is_required_and_accepts_both_header_forms() {
    for b in backends() {
        let s = TestServer::start(b).await;
        let key = s.account("free").await;
        let c = Client::new();
        let url = format!("{}/leads", s.base_url);
        let r = c.get(&url).send().await.unwrap();
        assert_eq!(r.status(), 401);
        assert_flat_error(&r.json().await.unwrap(), "unauthorized");
        let r = c
            .get(&url)
            .header("X-API-Key", "sk_live_00000000000000000000000000000000")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        for (name, value) in [
            ("x-api-key", key.clone()),
            ("X-API-KEY", key.clone()),
            ("Authorization", format!("Bearer {key}")),
        ] {
            let r = c.get(&url).header(name, value).send().await.unwrap();
            assert_eq!(r.status(), 200, "{b:?} {name}");
            let v: Value = r.json().await.unwrap();
            assert_eq!(
                v,
                json!({"leads": [], "next_cursor": null, "has_more": false, "count": 0})
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_then_get_returns_every_field_in_the_sdk_shape() {
    for b in backends() {
        let s = TestServer::start(b).await;
        let api = Api::new(&s, &s.account("free").await);
        let (st, created) = api
            .send(
                Method::POST,
                "/leads",
                Some(json!({
                    "name": "  Acme Corp ", "source": "website", "description": "d", "address": "1 Main St",
                    "city": "Berlin", "state": "BE", "country": "DE", "postal_code": "10115",
                    "latitude": 52.52, "longitude": 13.405, "phone": "+49 30 1234", "email": "a@acme.com",
                    "website": "https://acme.com", "rating": 4.5, "review_count": 12, "category": "Software",
                    "tags": ["vip", "b2b"], "source_id": "ext-1", "logo_url": "https://acme.com/l.png",
                    "status": "qualified",
                    "attributes": [{"name": "employees", "type": "number", "value": 500.0},
                                   {"name": "industry", "type": "text", "value": "Software"}],
                    "id": "cl_forged", "score": 99, "created_at": 1, "updated_at": 1
                })),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{b:?} {created}");
        let id = created["id"].as_str().unwrap();
        assert!(
            id.starts_with("cl_") && id != "cl_forged" && id.len() == 39,
            "{id}"
        );
        assert_eq!(created["message"], "Lead created successfully");
        assert!(created["created_at"].is_i64());
        let (st, lead) = api.get(&format!("/leads/{id}")).await;
        assert_eq!(st, StatusCode::OK);
        assert_eq!(lead["name"], "Acme Corp", "values are trimmed");
        for (k, v) in [
            ("source", json!("website")),
            ("city", json!("Berlin")),
            ("country", json!("DE")),
            ("postal_code", json!("10115")),
            ("latitude", json!(52.52)),
            ("review_count", json!(12)),
            ("tags", json!(["vip", "b2b"])),
            ("status", json!("qualified")),
            ("source_id", json!("ext-1")),
            ("logo_url", json!("https://acme.com/l.png")),
            ("score", json!(0.0)),
        ] {
            assert_eq!(lead[k], v, "{b:?} field {k}");
        }
        assert_eq!(lead["created_at"], created["created_at"]);
        for ts in ["created_at", "updated_at", "last_interaction_at"] {
            assert!(lead[ts].is_i64(), "{ts} must be an integer: {lead}");
        }
        let attrs = lead["attributes"].as_array().unwrap();
        assert_eq!(attrs.len(), 2);
        assert!(
            attrs
                .iter()
                .all(|a| a["id"].as_str().is_some_and(|i| i.len() == 36))
        );
        assert_eq!(attrs[0]["value"], json!(500.0));
        // A minimal lead has the defaults the SDKs require.
        let id2 = api
            .create_lead(json!({"name": "Min", "source": "api"}))
            .await;
        let (_, min) = api.get(&format!("/leads/{id2}")).await;
        assert_eq!(min["tags"], json!([]));
        assert_eq!(min["attributes"], json!([]));
        assert_eq!(min["status"], "new");
        assert!(min["email"].is_null());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_a_clear_400_and_changes_nothing() {
    for b in backends() {
        let s = TestServer::start(b).await;
        let api = Api::new(&s, &s.account("free").await);
        let c = Client::new();
        let raw = |body: &'static str| {
            c.post(format!("{}/leads", s.base_url))
                .header("X-API-Key", &api.key)
                .body(body)
                .send()
        };
        let cases: [(&str, &str); 7] = [
            (r#"{"name":"a","source":"b""#, "malformed JSON"),
            (r#"{"name":"a","source":"b","rating":"high"}"#, "rating"),
            (
                r#"{"name":"a","source":"b","review_count":-1}"#,
                "review_count",
            ),
            (r#"{"name":"a","source":"b","status":"bogus"}"#, "status"),
            (r#"{"source":"b"}"#, "name is required"),
            (r#"{"name":"a","source":"b","latitude":123}"#, "latitude"),
            ("", "body is required"),
        ];
        for (body, needle) in cases {
            let r = raw(body).await.unwrap();
            assert_eq!(r.status(), 400, "{b:?} {body}");
            let v: Value = r.json().await.unwrap();
            assert_flat_error(&v, "bad_request");
            assert!(
                v["message"].as_str().unwrap().contains(needle),
                "{v} should mention {needle}"
            );
        }
        let (_, page) = api.get("/leads").await;
        assert_eq!(page["count"], 0, "{b:?}: nothing may be stored");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_is_partial_and_moves_timestamps_correctly() {
    for b in backends() {
        let s = TestServer::start(b).await;
        let api = Api::new(&s, &s.account("free").await);
        let id = api
            .create_lead(json!({"name": "Acme", "source": "web", "city": "Paris", "rating": 4.0, "tags": ["a"]}))
            .await;
        let (_, before) = api.get(&format!("/leads/{id}")).await;
        s.clock.advance_secs(100);
        // Same values: nothing changes but the interaction time.
        let (st, same) = api
            .send(
                Method::PUT,
                &format!("/leads/{id}"),
                Some(json!({"city": "Paris"})),
            )
            .await;
        assert_eq!(st, StatusCode::OK);
        assert_eq!(same["updated_at"], before["updated_at"], "{b:?}");
        assert_eq!(
            same["last_interaction_at"].as_i64().unwrap(),
            before["last_interaction_at"].as_i64().unwrap() + 100
        );
        s.clock.advance_secs(100);
        let (st, after) = api
            .send(
                Method::PATCH,
                &format!("/leads/{id}"),
                Some(json!({"rating": 4.8, "status": "contacted", "email": "x@y.z", "score": 5, "id": "cl_other"})),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{after}");
        assert_eq!(after["id"], json!(id));
        assert_eq!(after["rating"], json!(4.8));
        assert_eq!(after["status"], "contacted");
        assert_eq!(after["city"], "Paris", "untouched fields stay");
        assert_eq!(after["tags"], json!(["a"]));
        assert_eq!(after["score"], json!(0.0), "score is read-only");
        assert_eq!(after["created_at"], before["created_at"]);
        assert_eq!(
            after["updated_at"].as_i64().unwrap(),
            before["updated_at"].as_i64().unwrap() + 200
        );
        // null clears an optional field; a bad value is rejected and changes nothing.
        let (_, cleared) = api
            .send(
                Method::PUT,
                &format!("/leads/{id}"),
                Some(json!({"city": null})),
            )
            .await;
        assert!(cleared["city"].is_null());
        let (st, _) = api
            .send(
                Method::PUT,
                &format!("/leads/{id}"),
                Some(json!({"status": "nope", "name": "Changed"})),
            )
            .await;
        assert_eq!(st, StatusCode::BAD_REQUEST);
        let (_, now) = api.get(&format!("/leads/{id}")).await;
        assert_eq!(now["name"], "Acme");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_answers_204_and_the_lead_is_gone() {
    for b in backends() {
        let s = TestServer::start(b).await;
        let api = Api::new(&s, &s.account("free").await);
        let id = api
            .create_lead(json!({"name": "Gone", "source": "web"}))
            .await;
        let r = Client::new()
            .delete(format!("{}/leads/{id}", s.base_url))
            .header("X-API-Key", &api.key)
            .header("Content-Type", "application/json")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
        assert!(r.bytes().await.unwrap().is_empty());
        let (st, v) = api.get(&format!("/leads/{id}")).await;
        assert_eq!(st, StatusCode::NOT_FOUND);
        assert_eq!(
            v,
            json!({"error": "not_found", "message": "Lead not found", "code": "not_found"})
        );
        let (st, _) = api
            .send(Method::DELETE, &format!("/leads/{id}"), None)
            .await;
        assert_eq!(st, StatusCode::NOT_FOUND);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_tenants_lead_is_indistinguishable_from_a_missing_one() {
    for b in backends() {
        let s = TestServer::start(b).await;
        let owner = Api::new(&s, &s.account("free").await);
        let other = Api::new(&s, &s.account("free").await);
        let id = owner
            .create_lead(json!({"name": "Mine", "source": "web"}))
            .await;
        let missing = "cl_00000000-0000-7000-8000-000000000000";
        for target in [id.as_str(), missing] {
            for m in [Method::GET, Method::DELETE] {
                let (st, v) = other
                    .send(m.clone(), &format!("/leads/{target}"), None)
                    .await;
                assert_eq!(st, StatusCode::NOT_FOUND, "{b:?} {m}");
                assert_eq!(v["message"], "Lead not found");
            }
            let (st, _) = other
                .send(
                    Method::PUT,
                    &format!("/leads/{target}"),
                    Some(json!({"name": "Stolen"})),
                )
                .await;
            assert_eq!(st, StatusCode::NOT_FOUND);
        }
        let (_, page) = other.get("/leads").await;
        assert_eq!(page["count"], 0);
        let (st, lead) = owner.get(&format!("/leads/{id}")).await;
        assert_eq!((st, lead["name"].clone()), (StatusCode::OK, json!("Mine")));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routing_errors_use_the_flat_body() {
    for b in backends() {
        let s = TestServer::start(b).await;
        let api = Api::new(&s, &s.account("free").await);
        let (st, v) = api.get("/nothing-here").await;
        assert_eq!(st, StatusCode::NOT_FOUND);
        assert_flat_error(&v, "not_found");
        let (st, v) = api.send(Method::DELETE, "/leads", None).await;
        assert_eq!(st, StatusCode::METHOD_NOT_ALLOWED);
        assert_flat_error(&v, "method_not_allowed");
        // A base URL with a trailing slash makes the Rust and Go SDKs request `//leads`.
        let (st, _) = api.get("//leads/").await;
        assert_eq!(st, StatusCode::OK);
        let big = format!(
            r#"{{"name":"a","source":"b","description":"{}"}}"#,
            "x".repeat(1_100_000)
        );
        let r = Client::new()
            .post(format!("{}/leads", s.base_url))
            .header("X-API-Key", &api.key)
            .body(big)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 413);
        assert_flat_error(&r.json().await.unwrap(), "payload_too_large");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_parameters_are_validated_and_cursors_cannot_be_forged() {
    for b in backends() {
        let s = TestServer::start(b).await;
        let api = Api::new(&s, &s.account("free").await);
        for i in 0..5 {
            api.create_lead(json!({"name": format!("L{i}"), "source": "web"}))
                .await;
        }
        for bad in [
            "limit=0",
            "limit=-3",
            "limit=ten",
            "sort_order=up",
            "sort_by=bogus",
        ] {
            let (st, v) = api.get(&format!("/leads?{bad}")).await;
            assert_eq!(st, StatusCode::BAD_REQUEST, "{b:?} {bad}");
            assert_flat_error(&v, "bad_request");
        }
        let (st, page) = api.get("/leads?limit=5000").await;
        assert_eq!((st, page["count"].clone()), (StatusCode::OK, json!(5)));
        let (_, p1) = api.get("/leads?limit=2&sort_order=desc").await;
        check_page_invariants(&p1);
        let cursor = p1["next_cursor"].as_str().unwrap().to_string();
        // Same sort in another case is the same query.
        let (st, _) = api
            .get(&format!(
                "/leads?limit=2&sort_order=DESC&cursor={}",
                urlencode(&cursor)
            ))
            .await;
        assert_eq!(st, StatusCode::OK);
        let (st, v) = api
            .get(&format!(
                "/leads?limit=2&sort_order=asc&cursor={}",
                urlencode(&cursor)
            ))
            .await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
        assert!(v["message"].as_str().unwrap().contains("cursor"));
        let mut forged = cursor.clone().into_bytes();
        forged[3] = if forged[3] == b'A' { b'B' } else { b'A' };
        let (st, _) = api
            .get(&format!(
                "/leads?limit=2&sort_order=desc&cursor={}",
                urlencode(&String::from_utf8(forged).unwrap())
            ))
            .await;
        assert_eq!(st, StatusCode::BAD_REQUEST);
        let (st, _) = api.get("/leads?cursor=null").await;
        assert_eq!(st, StatusCode::BAD_REQUEST);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_leads_listed_seven_at_a_time_come_back_once_each_in_order() {
    for b in backends() {
        let s = TestServer::start(b).await;
        let api = Api::new(&s, &s.account("unlimited").await);
        // The emulator serves one request at a time: 300 leads (43 pages per walk) take the
        // same cursor path there as the thousand do on the embedded store.
        let chunks = if b == klozeo_tests::Backend::Embedded {
            20
        } else {
            6
        };
        let mut created = Vec::new();
        for chunk in 0..chunks {
            let futs = (0..50).map(|i| {
                api.create_lead(
                    json!({"name": format!("Lead {}", chunk * 50 + i), "source": "bulk"}),
                )
            });
            created.extend(futures_util::future::join_all(futs).await);
        }
        let listed = api.ids("limit=7").await;
        assert_eq!(listed.len(), chunks * 50, "{b:?}");
        assert_eq!(
            listed.iter().collect::<HashSet<_>>().len(),
            chunks * 50,
            "no repeats"
        );
        assert_eq!(
            listed.iter().collect::<HashSet<_>>(),
            created.iter().collect::<HashSet<_>>()
        );
        assert!(
            listed.windows(2).all(|w| w[0] < w[1]),
            "created_at order, ties by id"
        );
        assert_eq!(api.ids("limit=7").await, listed, "the order is stable");
        let mut desc = api.ids("limit=7&sort_order=DESC").await;
        desc.reverse();
        assert_eq!(desc, listed);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_sorts_order_by_value_with_missing_last_and_page_cleanly() {
    for b in backends() {
        let s = TestServer::start(b).await;
        let api = Api::new(&s, &s.account("free").await);
        for (name, rating) in [
            ("b", Some(3.0)),
            ("A", None),
            ("c", Some(5.0)),
            ("d", Some(3.0)),
        ] {
            let mut body = json!({"name": name, "source": "web"});
            if let Some(r) = rating {
                body["rating"] = json!(r);
            }
            api.create_lead(body).await;
        }
        let names = |ids: Vec<String>| async {
            let mut out = Vec::new();
            for id in ids {
                out.push(
                    api.get(&format!("/leads/{id}")).await.1["name"]
                        .as_str()
                        .unwrap()
                        .to_string(),
                );
            }
            out
        };
        assert_eq!(
            names(api.ids("sort_by=name&limit=3").await).await,
            ["A", "b", "c", "d"]
        );
        assert_eq!(names(api.ids("sort_by=rating&limit=1").await).await[3], "A");
        let desc = names(api.ids("sort_by=rating&sort_order=desc&limit=2").await).await;
        assert_eq!(desc[0], "c");
        assert_eq!(desc[3], "A", "{b:?}: missing sorts last in both directions");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plan_lead_limit_is_a_403_that_writes_nothing() {
    for b in backends() {
        let s = TestServer::start(b).await;
        let api = Api::new(&s, &s.account("leads100").await);
        let futs =
            (0..100).map(|i| api.create_lead(json!({"name": format!("L{i}"), "source": "web"})));
        let ids = futures_util::future::join_all(futs).await;
        let (st, v) = api
            .send(
                Method::POST,
                "/leads",
                Some(json!({"name": "one too many", "source": "web"})),
            )
            .await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{b:?}");
        assert_flat_error(&v, "leads_limit_reached");
        assert_eq!(api.ids("limit=1000").await.len(), 100);
        let (st, _) = api
            .send(Method::DELETE, &format!("/leads/{}", ids[0]), None)
            .await;
        assert_eq!(st, StatusCode::NO_CONTENT);
        api.create_lead(json!({"name": "fits again", "source": "web"}))
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_change_records_its_event_in_the_outbox() {
    for b in backends() {
        let s = TestServer::start(b).await;
        let api = Api::new(&s, &s.account("free").await);
        api.subscribe().await;
        let id = api
            .create_lead(json!({"name": "Evented", "source": "web"}))
            .await;
        api.send(
            Method::PUT,
            &format!("/leads/{id}"),
            Some(json!({"city": "Oslo"})),
        )
        .await;
        // A no-op update changes no stored value and records nothing.
        api.send(
            Method::PUT,
            &format!("/leads/{id}"),
            Some(json!({"city": "Oslo"})),
        )
        .await;
        api.send(Method::DELETE, &format!("/leads/{id}"), None)
            .await;
        let events = api.outbox(&s).await;
        let names: Vec<&str> = events
            .iter()
            .map(|e| e["event"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            ["lead.created", "lead.updated", "lead.deleted"],
            "{b:?}"
        );
        assert!(events.iter().all(|e| e["data"]["id"] == json!(id)));
        assert_eq!(events[1]["data"]["city"], "Oslo");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_record_events_once_the_account_has_a_webhook() {
    for b in backends() {
        let s = TestServer::start(b).await;
        let api = Api::on_plan(&s, "unlimited").await;
        let id = api
            .create_lead(json!({"name": "Quiet", "source": "web"}))
            .await;
        api.batch_create(vec![
            json!({"name": "Quiet 2", "source": "web"}),
            json!({"name": "Quiet 3", "source": "web"}),
        ])
        .await;
        let (st, _) = api
            .send(
                Method::PUT,
                &format!("/leads/{id}"),
                Some(json!({"city": "Oslo"})),
            )
            .await;
        assert_eq!(st, StatusCode::OK);
        assert_eq!(
            outbox_names(&api, &s).await,
            Vec::<String>::new(),
            "{b:?}: no webhook, no events"
        );
        // Another process (another Lambda instance) creates the account's first webhook
        // while this one still trusts that there is none: the changes that commit after it
        // still record their events, a batch's (checked in its own transactions) as well as
        // a single create's.
        for batch_first in [true, false] {
            let api = Api::on_plan(&s, "unlimited").await;
            api.create_lead(json!({"name": "Quiet", "source": "web"}))
                .await;
            let tenant = s.app.accounts.authenticate(&api.key).await.unwrap();
            s.app
                .deps
                .store
                .transact(vec![WriteOp::Put {
                    table: Table::Leads,
                    item: Item::new(
                        schema::webhooks_marker_key(&tenant.account_id),
                        b"{}".to_vec(),
                    ),
                    cond: Cond::Always,
                }])
                .await
                .unwrap();
            let batch = || {
                api.batch_create(vec![
                    json!({"name": "Heard 2", "source": "web"}),
                    json!({"name": "Heard 3", "source": "web"}),
                ])
            };
            let want = if batch_first {
                batch().await;
                api.create_lead(json!({"name": "Heard", "source": "web"}))
                    .await;
                ["\"leads.created\"", "\"lead.created\""]
            } else {
                api.create_lead(json!({"name": "Heard", "source": "web"}))
                    .await;
                batch().await;
                ["\"lead.created\"", "\"leads.created\""]
            };
            assert_eq!(outbox_names(&api, &s).await, want, "{b:?}");
        }
    }
}

/// The names of the events in an account's outbox, oldest first.
async fn outbox_names(api: &Api, s: &TestServer) -> Vec<String> {
    api.outbox(s)
        .await
        .iter()
        .map(|e| e["event"].to_string())
        .collect()
}
