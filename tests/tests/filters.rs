//! The filter language, sorting and keyset pagination over real HTTP: one shared table of cases
//! runs on the embedded store and on DynamoDB and must give the same, expected answers.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeSet, HashSet};

use klozeo_tests::{Api, Backend, TestServer, backends};
use reqwest::Client;
use serde_json::{Value, json};

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            b' ' => "+".to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn get(api: &Api, q: &str) -> (u16, Value) {
    let (st, v) = api.get(&format!("/leads?{q}")).await;
    (st.as_u16(), v)
}

/// Walks every page and returns the names in order.
async fn walk(api: &Api, q: &str, limit: u32) -> Vec<String> {
    let mut names = Vec::new();
    let mut cursor = String::new();
    loop {
        let mut query = format!("{q}&limit={limit}");
        if !cursor.is_empty() {
            query.push_str(&format!("&cursor={}", enc(&cursor)));
        }
        let (st, page) = get(api, &query).await;
        assert_eq!(st, 200, "{q}: {page}");
        let has_more = page["has_more"].as_bool().unwrap();
        assert_eq!(
            has_more,
            page["next_cursor"].as_str().is_some_and(|c| !c.is_empty())
        );
        for l in page["leads"].as_array().unwrap() {
            names.push(l["name"].as_str().unwrap().to_string());
        }
        if !has_more {
            return names;
        }
        cursor = page["next_cursor"].as_str().unwrap().to_string();
    }
}

fn dataset() -> Vec<Value> {
    vec![
        json!({"name": "Alpha", "source": "google_maps", "city": "Paris", "country": "FR", "rating": 4.5,
               "review_count": 120, "tags": ["vip", "b2b"], "email": "alpha@a.fr", "status": "qualified",
               "latitude": 48.8566, "longitude": 2.3522, "website": "https://alpha.fr",
               "attributes": [{"name": "employees", "type": "number", "value": 500},
                              {"name": "industry", "type": "text", "value": "Software"},
                              {"name": "remote", "type": "bool", "value": true},
                              {"name": "langs", "type": "list", "value": ["fr", "en"]}]}),
        json!({"name": "Bravo", "source": "website", "city": "paris", "country": "FR", "rating": 3.0,
               "tags": ["cold"], "phone": "+33 1 23", "status": "new", "latitude": 48.86, "longitude": 2.35,
               "attributes": [{"name": "employees", "type": "number", "value": 50},
                              {"name": "industry", "type": "text", "value": "Retail"}]}),
        json!({"name": "Charlie", "source": "Website", "city": "Lyon", "country": "FR", "rating": 4.0,
               "review_count": 8, "status": "contacted", "latitude": 45.764, "longitude": 4.8357,
               "description": "Bakery. Fresh bread & co",
               "attributes": [{"name": "employees", "type": "text", "value": "250"}]}),
        json!({"name": "Delta", "source": "api", "city": "Berlin", "country": "DE", "rating": 5.0,
               "review_count": 300, "tags": ["VIP"], "email": "d@delta.de", "status": "converted",
               "latitude": 52.52, "longitude": 13.405}),
        json!({"name": "Echo", "source": "api", "city": "St. Louis, MO & co", "country": "US",
               "status": "disqualified", "postal_code": "63101"}),
        json!({"name": "Foxtrot", "source": "google_maps", "country": "DE", "rating": 2.5,
               "tags": ["b2b"], "status": "new", "category": "Software house"}),
    ]
}

/// (filters, sort query, expected names in order, or None when only the set matters)
fn cases() -> Vec<(Vec<&'static str>, &'static str, Vec<&'static str>)> {
    vec![
        (vec!["and.eq.city.PARIS"], "", vec!["Alpha", "Bravo"]),
        (
            vec!["and.neq.city.paris"],
            "",
            vec!["Charlie", "Delta", "Echo", "Foxtrot"],
        ),
        (vec!["and.contains.name.ha"], "", vec!["Alpha", "Charlie"]),
        (vec!["and.not_contains.name.a"], "", vec!["Echo", "Foxtrot"]),
        (vec!["and.starts_with.name.d"], "", vec!["Delta"]),
        (vec!["and.ends_with.name.OT"], "", vec!["Foxtrot"]),
        (
            vec!["and.in.source.api,website"],
            "",
            vec!["Bravo", "Charlie", "Delta", "Echo"],
        ),
        (
            vec!["and.is_empty.email"],
            "",
            vec!["Bravo", "Charlie", "Echo", "Foxtrot"],
        ),
        (vec!["and.is_not_empty.phone"], "", vec!["Bravo"]),
        (vec!["and.eq.city.St. Louis, MO & co"], "", vec!["Echo"]),
        (vec!["and.eq.postal_code.63101"], "", vec!["Echo"]),
        (
            vec!["and.contains.description.bread & co"],
            "",
            vec!["Charlie"],
        ),
        (vec!["and.eq.category.software house"], "", vec!["Foxtrot"]),
        (vec!["and.eq.status.new"], "", vec!["Bravo", "Foxtrot"]),
        (
            vec!["and.eq.source.GOOGLE_MAPS"],
            "",
            vec!["Alpha", "Foxtrot"],
        ),
        (vec!["and.eq.rating.4.0"], "", vec!["Charlie"]),
        (vec!["and.eq.rating.4"], "", vec!["Charlie"]),
        (
            vec!["and.neq.rating.4"],
            "",
            vec!["Alpha", "Bravo", "Delta", "Echo", "Foxtrot"],
        ),
        (vec!["and.gt.rating.4"], "", vec!["Alpha", "Delta"]),
        (
            vec!["and.gte.rating.4"],
            "",
            vec!["Alpha", "Charlie", "Delta"],
        ),
        (vec!["and.lt.rating.3"], "", vec!["Foxtrot"]),
        (vec!["and.lte.rating.3.0"], "", vec!["Bravo", "Foxtrot"]),
        (vec!["and.gte.review_count.1e2"], "", vec!["Alpha", "Delta"]),
        (
            vec!["and.gt.rating.-1e-07", "and.lt.rating.0.0000001"],
            "",
            vec![],
        ),
        (
            vec!["and.gte.score.0", "and.lte.score.0"],
            "",
            vec!["Alpha", "Bravo", "Charlie", "Delta", "Echo", "Foxtrot"],
        ),
        (
            vec!["and.array_contains.tags.vip"],
            "",
            vec!["Alpha", "Delta"],
        ),
        (
            vec!["and.array_not_contains.tags.vip"],
            "",
            vec!["Bravo", "Charlie", "Echo", "Foxtrot"],
        ),
        (vec!["and.array_empty.tags"], "", vec!["Charlie", "Echo"]),
        (
            vec!["and.array_not_empty.tags"],
            "",
            vec!["Alpha", "Bravo", "Delta", "Foxtrot"],
        ),
        (
            vec!["and.within_radius.location.48.8566,2.3522,5"],
            "",
            vec!["Alpha", "Bravo"],
        ),
        (
            vec!["and.within_radius.location.48.8566,2.3522,400"],
            "",
            vec!["Alpha", "Bravo", "Charlie"],
        ),
        (
            vec!["and.is_set.location"],
            "",
            vec!["Alpha", "Bravo", "Charlie", "Delta"],
        ),
        (vec!["and.is_not_set.location"], "", vec!["Echo", "Foxtrot"]),
        (vec!["and.eq.attr:industry.software"], "", vec!["Alpha"]),
        (vec!["and.contains.attr:industry.tai"], "", vec!["Bravo"]),
        (
            vec!["and.gte.attr:employees.100"],
            "",
            vec!["Alpha", "Charlie"],
        ),
        (vec!["and.eq.attr:employees.500"], "", vec!["Alpha"]),
        (vec!["and.eq.attr:remote.true"], "", vec!["Alpha"]),
        (vec!["and.array_contains.attr:langs.EN"], "", vec!["Alpha"]),
        (
            vec!["and.neq.attr:industry.software"],
            "",
            vec!["Bravo", "Charlie", "Delta", "Echo", "Foxtrot"],
        ),
        (
            vec!["or.eq.city.Lyon", "or.eq.city.Berlin"],
            "",
            vec!["Charlie", "Delta"],
        ),
        (
            vec![
                "and.eq.country.FR",
                "or.eq.city.Lyon",
                "or.array_contains.tags.vip",
            ],
            "",
            vec!["Alpha", "Charlie"],
        ),
        (
            vec!["and.eq.status.new", "and.eq.source.website"],
            "",
            vec!["Bravo"],
        ),
        // Sorting: text case-insensitive, missing last both ways, ties by id.
        (
            vec![],
            "sort_by=city",
            vec!["Delta", "Charlie", "Alpha", "Bravo", "Echo", "Foxtrot"],
        ),
        (
            vec![],
            "sort_by=city&sort_order=desc",
            vec!["Echo", "Bravo", "Alpha", "Charlie", "Delta", "Foxtrot"],
        ),
        (
            vec![],
            "sort_by=rating&sort_order=DESC",
            vec!["Delta", "Alpha", "Charlie", "Bravo", "Foxtrot", "Echo"],
        ),
        (
            vec!["and.gte.rating.3"],
            "sort_by=rating&sort_order=asc",
            vec!["Bravo", "Charlie", "Alpha", "Delta"],
        ),
        (
            vec![],
            "sort_by=review_count",
            vec!["Charlie", "Alpha", "Delta", "Bravo", "Echo", "Foxtrot"],
        ),
        (
            vec![],
            "sort_by=attr:employees",
            vec!["Bravo", "Charlie", "Alpha", "Delta", "Echo", "Foxtrot"],
        ),
        (
            vec!["and.eq.country.fr"],
            "sort_by=created_at&sort_order=desc",
            vec!["Charlie", "Bravo", "Alpha"],
        ),
        (
            vec!["and.eq.city.paris"],
            "sort_by=name&sort_order=desc",
            vec!["Bravo", "Alpha"],
        ),
        (
            vec![],
            "sort_by=status",
            vec!["Charlie", "Delta", "Echo", "Bravo", "Foxtrot", "Alpha"],
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operator_gives_the_expected_answer_on_every_store() {
    for b in backends() {
        let s = TestServer::start(b).await;
        let key = s.account("unlimited").await;
        let api = Api::new(&s, &key);
        let c = Client::new();
        for lead in dataset() {
            let r = c
                .post(format!("{}/leads", s.base_url))
                .header("X-API-Key", &key)
                .json(&lead)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 201);
        }
        for (filters, sort, expected) in cases() {
            let mut q: Vec<String> = filters
                .iter()
                .map(|f| format!("filter={}", enc(f)))
                .collect();
            if !sort.is_empty() {
                q.push(sort.to_string());
            }
            let q = q.join("&");
            for limit in [2, 50] {
                let got = walk(&api, &q, limit).await;
                if sort.is_empty() {
                    // Default order is created_at, which is dataset order.
                    assert_eq!(got, expected, "{b:?} {q} limit={limit}");
                } else {
                    assert_eq!(got, expected, "{b:?} {q} limit={limit}");
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_filters_are_400s_that_name_the_filter() {
    let s = TestServer::start(Backend::Embedded).await;
    let key = s.account("free").await;
    let api = Api::new(&s, &key);
    for (f, why) in [
        ("xor.eq.city.x", "unknown logic"),
        ("and.like.city.x", "unknown operator"),
        ("and.eq.colour.x", "unknown field"),
        ("and.gt.city.3", "does not apply"),
        ("and.gt.rating.four", "not a number"),
        ("and.within_radius.location.1,2", "lat,lng,km"),
    ] {
        let (st, v) = get(&api, &format!("filter={}", enc(f))).await;
        assert_eq!(st, 400, "{f}");
        let msg = v["message"].as_str().unwrap();
        assert!(msg.contains(f) && msg.contains(why), "{f}: {msg}");
    }
    // A cursor is bound to its filters too.
    for i in 0..3 {
        api.create_lead(json!({"name": format!("n{i}"), "source": "s", "city": "Oslo"}))
            .await;
    }
    let (_, p) = get(&api, "filter=and.eq.city.Oslo&limit=1").await;
    let cur = p["next_cursor"].as_str().unwrap();
    let (st, _) = get(
        &api,
        &format!("filter=and.eq.city.Bergen&limit=1&cursor={}", enc(cur)),
    )
    .await;
    assert_eq!(st, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_walk_with_filter_and_sort_survives_concurrent_inserts_and_deletes() {
    for b in backends() {
        // The emulator is a single-threaded Python process; a smaller tenant keeps the run short
        // while exercising the same code paths.
        let total = if b == Backend::Embedded { 10_000 } else { 400 };
        let s = TestServer::start(b).await;
        let key = s.account("unlimited").await;
        let tenant = s.app.accounts.authenticate(&key).await.unwrap();
        let mut qualifying = BTreeSet::new();
        let mut deletable = Vec::new();
        for i in 0..total {
            let status = if i % 3 == 0 { "qualified" } else { "new" };
            let changes = klozeo_core::edges::wire::LeadInput {
                name: klozeo_core::domain::patch::Patch::Value(format!("lead-{i:05}")),
                source: klozeo_core::domain::patch::Patch::Value("bulk".into()),
                status: klozeo_core::domain::patch::Patch::Value(status.into()),
                rating: klozeo_core::domain::patch::Patch::Value(f64::from(i % 50) / 10.0),
                ..Default::default()
            }
            .into_changes(klozeo_core::edges::wire::InputMode::Create)
            .unwrap();
            let lead = s.app.ingest.create(&tenant, &changes).await.unwrap().lead;
            if status == "qualified" {
                if i % 2 == 0 {
                    qualifying.insert(lead.name.clone());
                } else {
                    deletable.push(lead.id.clone());
                }
            }
        }
        let api = Api::new(&s, &key);
        let limit = if b == Backend::Embedded { 97 } else { 17 };
        let q = format!(
            "filter={}&sort_by=rating&sort_order=desc&limit={limit}",
            enc("and.eq.status.qualified")
        );
        let mut seen = Vec::new();
        let mut cursor = String::new();
        let mut round = 0;
        loop {
            let mut query = q.clone();
            if !cursor.is_empty() {
                query.push_str(&format!("&cursor={}", enc(&cursor)));
            }
            let (st, page) = get(&api, &query).await;
            assert_eq!(st, 200, "{page}");
            seen.extend(
                page["leads"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|l| l["name"].as_str().unwrap().to_string()),
            );
            // Between pages: insert new qualifying leads and delete some others.
            round += 1;
            let extra = klozeo_core::edges::wire::LeadInput {
                name: klozeo_core::domain::patch::Patch::Value(format!("late-{round}")),
                source: klozeo_core::domain::patch::Patch::Value("bulk".into()),
                status: klozeo_core::domain::patch::Patch::Value("qualified".into()),
                rating: klozeo_core::domain::patch::Patch::Value(2.5),
                ..Default::default()
            }
            .into_changes(klozeo_core::edges::wire::InputMode::Create)
            .unwrap();
            s.app.ingest.create(&tenant, &extra).await.unwrap();
            if let Some(id) = deletable.pop() {
                s.app
                    .ingest
                    .delete(
                        &tenant,
                        &klozeo_core::domain::ids::LeadId::parse(&id).unwrap(),
                    )
                    .await
                    .unwrap();
            }
            if !page["has_more"].as_bool().unwrap() {
                break;
            }
            cursor = page["next_cursor"].as_str().unwrap().to_string();
        }
        let counted: HashSet<&String> = seen.iter().collect();
        assert_eq!(counted.len(), seen.len(), "{b:?}: a lead was repeated");
        let missing: Vec<_> = qualifying.iter().filter(|n| !counted.contains(n)).collect();
        assert!(
            missing.is_empty(),
            "{b:?}: skipped {} unchanged leads",
            missing.len()
        );
    }
}
