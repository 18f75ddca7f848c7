//! Notes, typed attributes and scoring over real HTTP on every backend: CRUD, isolation,
//! validation, and scores that stay current when leads, attributes or rules change.
#![allow(clippy::unwrap_used)]

use klozeo_tests::{Api, TestServer, backends};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn account(s: &TestServer) -> Api {
    Api::on_plan(s, "unlimited").await
}

async fn score(api: &Api, id: &str) -> f64 {
    api.get_lead(id).await["score"].as_f64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notes_crud_newest_first_isolated_and_deleted_with_their_lead() {
    for b in backends() {
        let s = TestServer::start(b).await;
        let api = account(&s).await;
        let other = account(&s).await;
        let id = api.create_lead(json!({"name": "N", "source": "s"})).await;
        let (st, n1) = api
            .send(
                Method::POST,
                &format!("/leads/{id}/notes"),
                Some(json!({"content": "first"})),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{b:?} {n1}");
        assert!(n1["id"].as_str().unwrap().starts_with("note_"));
        assert_eq!(n1["lead_id"], json!(id));
        assert!(n1["created_at"].is_i64() && n1["updated_at"].is_i64());
        let (_, n2) = api
            .send(
                Method::POST,
                &format!("/leads/{id}/notes"),
                Some(json!({"content": "second"})),
            )
            .await;
        let (st, list) = api
            .send(Method::GET, &format!("/leads/{id}/notes"), None)
            .await;
        assert_eq!(st, StatusCode::OK);
        let contents: Vec<&str> = list["notes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["content"].as_str().unwrap())
            .collect();
        assert_eq!(contents, ["second", "first"], "newest first");
        s.clock.advance_secs(10);
        let (st, edited) = api
            .send(
                Method::PUT,
                &format!("/notes/{}", n1["id"].as_str().unwrap()),
                Some(json!({"content": "edited"})),
            )
            .await;
        assert_eq!(st, StatusCode::OK);
        assert_eq!(edited["content"], "edited");
        assert_eq!(
            edited["updated_at"].as_i64().unwrap(),
            n1["updated_at"].as_i64().unwrap() + 10
        );
        for bad in [
            json!({"content": "   "}),
            json!({}),
            json!({"content": "x".repeat(65 * 1024)}),
        ] {
            let (st, v) = api
                .send(Method::POST, &format!("/leads/{id}/notes"), Some(bad))
                .await;
            assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
        }
        // Another account sees neither the lead's notes nor the note.
        let nid = n2["id"].as_str().unwrap();
        assert_eq!(
            other
                .send(Method::GET, &format!("/leads/{id}/notes"), None)
                .await
                .0,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            other
                .send(
                    Method::PUT,
                    &format!("/notes/{nid}"),
                    Some(json!({"content": "x"}))
                )
                .await
                .0,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            other
                .send(Method::DELETE, &format!("/notes/{nid}"), None)
                .await
                .0,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            other
                .send(
                    Method::POST,
                    &format!("/leads/{id}/notes"),
                    Some(json!({"content": "x"}))
                )
                .await
                .0,
            StatusCode::NOT_FOUND
        );
        let (st, _) = api
            .send(Method::DELETE, &format!("/notes/{nid}"), None)
            .await;
        assert_eq!(st, StatusCode::NO_CONTENT);
        assert_eq!(
            api.send(
                Method::PUT,
                &format!("/notes/{nid}"),
                Some(json!({"content": "x"}))
            )
            .await
            .0,
            StatusCode::NOT_FOUND
        );
        // Deleting the lead deletes its notes.
        api.send(Method::DELETE, &format!("/leads/{id}"), None)
            .await;
        let n1id = n1["id"].as_str().unwrap();
        assert_eq!(
            api.send(
                Method::PUT,
                &format!("/notes/{n1id}"),
                Some(json!({"content": "x"}))
            )
            .await
            .0,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            api.send(Method::GET, &format!("/leads/{id}/notes"), None)
                .await
                .0,
            StatusCode::NOT_FOUND
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attributes_crud_with_types_and_both_update_bodies() {
    for b in backends() {
        let s = TestServer::start(b).await;
        let api = account(&s).await;
        let id = api.create_lead(json!({"name": "A", "source": "s"})).await;
        let path = format!("/leads/{id}/attributes");
        let (st, a) = api
            .send(
                Method::POST,
                &path,
                Some(json!({"name": "cuisine", "type": "text", "value": "Italian"})),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{b:?} {a}");
        assert_eq!(a["name"], "cuisine");
        let aid = a["id"].as_str().unwrap().to_string();
        let (st, again) = api
            .send(
                Method::POST,
                &path,
                Some(json!({"name": "cuisine", "type": "text", "value": "Greek"})),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "replacing by name answers 200");
        assert_eq!(again["id"], json!(aid));
        for (ty, value) in [
            ("number", json!(500.0)),
            ("bool", json!(true)),
            ("list", json!(["a", "b"])),
            ("object", json!({"k": 1})),
        ] {
            let (st, v) = api
                .send(
                    Method::POST,
                    &path,
                    Some(json!({"name": format!("a_{ty}"), "type": ty, "value": value})),
                )
                .await;
            assert_eq!(st, StatusCode::CREATED, "{ty} {v}");
        }
        for bad in [
            json!({"name": "n", "type": "number", "value": "500"}),
            json!({"name": "l", "type": "list", "value": [1]}),
            json!({"name": "bad name!", "type": "text", "value": "x"}),
            json!({"name": "x".repeat(65), "type": "text", "value": "x"}),
            json!({"name": "t", "type": "colour", "value": "x"}),
        ] {
            let (st, v) = api.send(Method::POST, &path, Some(bad)).await;
            assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
        }
        // Raw value (the Python SDK) and {"value": ...} (the docs).
        let (st, v) = api
            .send(
                Method::PUT,
                &format!("{path}/{aid}"),
                Some(json!("Mediterranean")),
            )
            .await;
        assert_eq!(
            (st, v["value"].clone()),
            (StatusCode::OK, json!("Mediterranean"))
        );
        let (st, v) = api
            .send(
                Method::PUT,
                &format!("{path}/{aid}"),
                Some(json!({"value": "French"})),
            )
            .await;
        assert_eq!((st, v["value"].clone()), (StatusCode::OK, json!("French")));
        let (st, _) = api
            .send(Method::PUT, &format!("{path}/{aid}"), Some(json!(12)))
            .await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "the value must fit the type");
        let (_, list) = api.send(Method::GET, &path, None).await;
        assert_eq!(list["attributes"].as_array().unwrap().len(), 5);
        let (_, lead) = api.send(Method::GET, &format!("/leads/{id}"), None).await;
        assert_eq!(
            lead["attributes"], list["attributes"],
            "lead responses embed attributes with ids"
        );
        let (st, _) = api
            .send(Method::DELETE, &format!("{path}/{aid}"), None)
            .await;
        assert_eq!(st, StatusCode::NO_CONTENT);
        assert_eq!(
            api.send(Method::DELETE, &format!("{path}/{aid}"), None)
                .await
                .0,
            StatusCode::NOT_FOUND
        );
        let (_, list) = api.send(Method::GET, &path, None).await;
        assert_eq!(list["attributes"].as_array().unwrap().len(), 4);
        let other = account(&s).await;
        assert_eq!(
            other.send(Method::GET, &path, None).await.0,
            StatusCode::NOT_FOUND
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scoring_rules_crud_and_scores_stay_current() {
    for b in backends() {
        let s = TestServer::start(b).await;
        let api = account(&s).await;
        let id = api
            .create_lead(json!({"name": "S", "source": "s", "rating": 4.5, "city": "Paris"}))
            .await;
        assert_eq!(score(&api, &id).await, 0.0);
        let (st, r1) = api
            .send(
                Method::POST,
                "/scoring-rules",
                Some(json!({"name": "rating", "expression": "rating * 10"})),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{b:?} {r1}");
        assert_eq!(
            (r1["priority"].clone(), r1["weight"].clone()),
            (json!(0), json!(1.0))
        );
        assert!(r1["created_at"].is_i64());
        assert_eq!(
            score(&api, &id).await,
            45.0,
            "{b:?}: a rule change rescores existing leads"
        );
        let (st, r2) = api
            .send(Method::POST, "/scoring-rules", Some(json!({"name": "paris", "expression": "city == \"PARIS\" ? 30 : 0", "weight": 0.5, "priority": 5})))
            .await;
        assert_eq!(st, StatusCode::CREATED);
        assert_eq!(score(&api, &id).await, 60.0);
        let (_, rules) = api.send(Method::GET, "/scoring-rules", None).await;
        let names: Vec<&str> = rules["rules"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["paris", "rating"], "highest priority first");
        // Changing the lead rescores it in the same write; the clamp holds at 100.
        let (_, updated) = api
            .send(
                Method::PUT,
                &format!("/leads/{id}"),
                Some(json!({"rating": 9.0})),
            )
            .await;
        assert_eq!(updated["score"], json!(100.0));
        let (_, updated) = api
            .send(
                Method::PUT,
                &format!("/leads/{id}"),
                Some(json!({"rating": 1.0, "city": "Lyon"})),
            )
            .await;
        assert_eq!(updated["score"], json!(10.0));
        // New leads are scored on create.
        let id2 = api
            .create_lead(json!({"name": "T", "source": "s", "rating": 2.0, "city": "paris"}))
            .await;
        assert_eq!(score(&api, &id2).await, 35.0);
        // Attributes in rules, and attribute changes rescore.
        let r2id = r2["id"].as_str().unwrap();
        let (st, _) = api
            .send(
                Method::PUT,
                &format!("/scoring-rules/{r2id}"),
                Some(json!({"expression": "attr_employees > 100 ? 40 : 0"})),
            )
            .await;
        assert_eq!(st, StatusCode::OK);
        assert_eq!(score(&api, &id2).await, 20.0);
        api.send(
            Method::POST,
            &format!("/leads/{id2}/attributes"),
            Some(json!({"name": "employees", "type": "number", "value": 500})),
        )
        .await;
        assert_eq!(score(&api, &id2).await, 40.0);
        // Explain lists each rule's value, weight and contribution.
        let (st, ex) = api
            .send(Method::GET, &format!("/leads/{id2}/score/explain"), None)
            .await;
        assert_eq!(st, StatusCode::OK);
        assert_eq!(ex["score"], json!(40.0));
        let parts: Vec<(f64, f64, f64)> = ex["rules"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["value"].as_f64().unwrap(),
                    r["weight"].as_f64().unwrap(),
                    r["contribution"].as_f64().unwrap(),
                )
            })
            .collect();
        assert_eq!(parts, [(40.0, 0.5, 20.0), (20.0, 1.0, 20.0)]);
        // An invalid expression points at the problem and changes nothing.
        let (st, v) = api
            .send(
                Method::POST,
                "/scoring-rules",
                Some(json!({"name": "bad", "expression": "rating * (2 +"})),
            )
            .await;
        assert_eq!(st, StatusCode::BAD_REQUEST);
        assert!(v["message"].as_str().unwrap().contains("position"), "{v}");
        // Deleting a rule rescores.
        let (st, _) = api
            .send(Method::DELETE, &format!("/scoring-rules/{r2id}"), None)
            .await;
        assert_eq!(st, StatusCode::NO_CONTENT);
        assert_eq!(score(&api, &id2).await, 20.0);
        assert_eq!(
            api.send(Method::GET, &format!("/scoring-rules/{r2id}"), None)
                .await
                .0,
            StatusCode::NOT_FOUND
        );
        // Explicit rescoring endpoints (no body at all).
        let (st, v) = api
            .send(Method::POST, &format!("/leads/{id2}/score"), None)
            .await;
        assert_eq!(st, 200);
        assert_eq!(v, json!({"id": id2, "score": 20.0}));
        let (st, v) = api.send(Method::POST, "/leads/score/batch", None).await;
        assert_eq!((st, v["total"].clone()), (StatusCode::OK, json!(2)));
        // Another account's rules are invisible.
        let other = account(&s).await;
        let r1id = r1["id"].as_str().unwrap();
        assert_eq!(
            other
                .send(Method::GET, &format!("/scoring-rules/{r1id}"), None)
                .await
                .0,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            other.send(Method::GET, "/scoring-rules", None).await.1,
            json!({"rules": []})
        );
    }
}

/// A rule change rescores every lead of an account that spans two pages of the store, each
/// from its own stored values, and an explicit rescore then finds nothing left to change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rule_changes_rescore_leads_across_pages() {
    for b in backends() {
        let s = TestServer::start(b).await;
        let api = account(&s).await;
        let mut ids = Vec::new();
        for batch in 0..3 {
            let leads: Vec<Value> = (0..70)
                .map(|j| {
                    let i = batch * 70 + j;
                    let city = ["Paris", "Lyon", "paris"][i % 3];
                    let mut l = json!({
                        "name": format!("Company {i}"), "source": "import",
                        "rating": (i % 5) as f64, "city": city,
                    });
                    if i % 4 == 0 {
                        l["attributes"] =
                            json!([{"name": "employees", "type": "number", "value": i}]);
                    }
                    l
                })
                .collect();
            let (st, v) = api
                .send(
                    Method::POST,
                    "/leads/batch",
                    Some(json!({ "leads": leads })),
                )
                .await;
            assert!(st.is_success(), "{b:?} {st} {v}");
            let created = v["created"].as_array().unwrap();
            assert_eq!(created.len(), 70, "{b:?} {v}");
            ids.extend(
                created
                    .iter()
                    .map(|c| c["id"].as_str().unwrap().to_string()),
            );
        }
        let want = |i: usize, w: f64| {
            let employees = if i.is_multiple_of(4) { i as f64 } else { 0.0 };
            let paris = if i % 3 == 1 { 0.0 } else { 5.0 };
            (((i % 5) as f64 * 10.0 + paris + employees / 100.0) * w).clamp(0.0, 100.0)
        };
        let (st, rule) = api
            .send(
                Method::POST,
                "/scoring-rules",
                Some(json!({"name": "fit", "expression": "rating * 10 + (city == 'PARIS' ? 5 : 0) + attr_employees / 100"})),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{rule}");
        // The first and last lead, and leads on either side of the 200-lead page boundary.
        let sample = [0, 1, 199, 200, 201, 209];
        for i in sample {
            assert_eq!(score(&api, &ids[i]).await, want(i, 1.0), "{b:?} lead {i}");
        }
        let rid = rule["id"].as_str().unwrap();
        let (st, _) = api
            .send(
                Method::PUT,
                &format!("/scoring-rules/{rid}"),
                Some(json!({"weight": 2.0})),
            )
            .await;
        assert_eq!(st, StatusCode::OK);
        for i in sample {
            assert_eq!(score(&api, &ids[i]).await, want(i, 2.0), "{b:?} lead {i}");
        }
        let (st, v) = api.send(Method::POST, "/leads/score/batch", None).await;
        assert_eq!(st, StatusCode::OK);
        assert_eq!(
            (v["total"].clone(), v["updated"].clone()),
            (json!(210), json!(0))
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rule_change_on_thousands_of_leads_answers_at_once_and_its_job_finishes() {
    for b in backends() {
        // The emulator serves one request at a time; a smaller account takes the same path.
        let n: usize = if b == klozeo_tests::Backend::Embedded {
            5000
        } else {
            300
        };
        let s = TestServer::start_with_config(b, |c| {
            c.jobs.inline_budget = std::time::Duration::from_millis(100);
            c.jobs.step_budget = std::time::Duration::from_millis(500);
        })
        .await;
        s.clock.run_in_real_time();
        let api = account(&s).await;
        let tenant = s.app.accounts.authenticate(&api.key).await.unwrap();
        for i in 0..n {
            let changes = klozeo_core::edges::wire::LeadInput {
                name: klozeo_core::domain::patch::Patch::Value(format!("L{i}")),
                source: klozeo_core::domain::patch::Patch::Value("bulk".into()),
                rating: klozeo_core::domain::patch::Patch::Value((i % 5) as f64),
                ..Default::default()
            }
            .into_changes(klozeo_core::edges::wire::InputMode::Create)
            .unwrap();
            s.app.ingest.create(&tenant, &changes).await.unwrap();
        }
        let _workers = s.spawn_workers();
        let started = std::time::Instant::now();
        let (st, rule) = api
            .send(
                Method::POST,
                "/scoring-rules",
                Some(json!({"name": "stars", "expression": "rating * 10"})),
            )
            .await;
        let answered_in = started.elapsed();
        assert_eq!(st, StatusCode::CREATED, "{b:?}: {rule}");
        assert!(
            answered_in < std::time::Duration::from_secs(10),
            "{b:?}: the rule change waited for the whole rescoring ({answered_in:?})"
        );
        let job_id = rule["job_id"].as_str().unwrap().to_string();
        let (_, job) = api.get(&format!("/jobs/{job_id}")).await;
        assert_eq!(job["kind"], "rescore", "{job}");
        assert_eq!(job["total"], n, "{job}");
        // A liveness bound, not a speed target: the emulator serves one request at a time to
        // every test of this binary running beside this one, and on a slow CI machine 300
        // leads there took over 300 s.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(900);
        let job = loop {
            let (st, job) = api.get(&format!("/jobs/{job_id}")).await;
            assert_eq!(st, StatusCode::OK, "{job}");
            if job["status"] != "running" {
                break job;
            }
            assert!(std::time::Instant::now() < deadline, "{b:?}: {job}");
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        };
        assert_eq!(job["status"], "succeeded", "{b:?}: {job}");
        assert_eq!(job["processed"], n, "{job}");
        assert_eq!(
            job["changed"],
            n - n / 5,
            "{b:?}: every lead rated above 0 changed: {job}"
        );
        assert!(job["finished_at"].is_i64(), "{job}");
        // Every stored score is right.
        let mut cursor: Option<String> = None;
        let mut seen = 0;
        loop {
            let q = match &cursor {
                Some(c) => format!("/leads?limit=1000&cursor={}", klozeo_tests::urlencode(c)),
                None => "/leads?limit=1000".into(),
            };
            let (_, page) = api.get(&q).await;
            for l in page["leads"].as_array().unwrap() {
                let want = l["rating"].as_f64().unwrap() * 10.0;
                assert_eq!(l["score"].as_f64().unwrap(), want, "{b:?}: {l}");
                seen += 1;
            }
            if page["has_more"] != true {
                break;
            }
            cursor = page["next_cursor"].as_str().map(str::to_string);
        }
        assert_eq!(seen, n);
        // Unknown and other accounts' jobs are not found.
        let (st, _) = api.get("/jobs/00000000-0000-4000-8000-000000000000").await;
        assert_eq!(st, StatusCode::NOT_FOUND);
        let other = account(&s).await;
        let (st, _) = other.get(&format!("/jobs/{job_id}")).await;
        assert_eq!(st, StatusCode::NOT_FOUND);
    }
}

/// The score a lead gets when it is created now.
async fn created_score(api: &Api, name: &str, rating: f64) -> f64 {
    let (st, lead) = api
        .send(
            Method::POST,
            "/leads",
            Some(json!({"name": name, "source": "s", "rating": rating})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{lead}");
    let id = lead["id"].as_str().unwrap().to_string();
    score(api, &id).await
}

/// Creates reuse the rules of earlier creates until a rule changes: each rule write (create,
/// update, delete) applies to the very next create, and one account's rules never score
/// another's leads.
#[tokio::test]
async fn each_rule_write_applies_to_the_next_create_of_its_account_only() {
    for b in backends() {
        let s = TestServer::start(b).await;
        let api = account(&s).await;
        let other = account(&s).await;
        assert_eq!(created_score(&api, "a1", 3.0).await, 0.0, "{b:?}");
        assert_eq!(created_score(&api, "a2", 3.0).await, 0.0, "{b:?}");
        let (st, rule) = api
            .send(
                Method::POST,
                "/scoring-rules",
                Some(json!({"name": "r", "expression": "rating * 10"})),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{rule}");
        assert_eq!(created_score(&api, "a3", 3.0).await, 30.0, "{b:?}: created");
        assert_eq!(created_score(&other, "b1", 3.0).await, 0.0, "{b:?}: other");
        let path = format!("/scoring-rules/{}", rule["id"].as_str().unwrap());
        let (st, _) = api
            .send(
                Method::PUT,
                &path,
                Some(json!({"expression": "rating * 20"})),
            )
            .await;
        assert_eq!(st, StatusCode::OK);
        assert_eq!(created_score(&api, "a4", 3.0).await, 60.0, "{b:?}: updated");
        let (st, _) = api.send(Method::DELETE, &path, None).await;
        assert!(st.is_success(), "{st}");
        assert_eq!(created_score(&api, "a5", 3.0).await, 0.0, "{b:?}: deleted");
        assert_eq!(created_score(&other, "b2", 3.0).await, 0.0, "{b:?}: other");
    }
}
