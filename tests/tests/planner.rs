//! The list planner against a naive oracle: random leads, random filters (every operator, and/or),
//! every sort and full cursor walks, on the embedded store and on DynamoDB (when an emulator is
//! set). The oracle filters with the domain evaluator, sorts by the domain ordering rule and cuts
//! pages of `limit`; the stores must give identical pages.
//!
//! The seed is random per run and printed in every failure; `KLOZEO_PLANNER_SEED=<n>` replays one.
#![allow(clippy::unwrap_used)]

use std::cmp::Ordering;
use std::collections::HashSet;

use klozeo_core::domain::account::Tenant;
use klozeo_core::domain::filter::FilterSet;
use klozeo_core::domain::lead::Lead;
use klozeo_core::domain::query::{Sort, SortField, SortOrder, compare};
use klozeo_core::services::leads::{LeadService, ListPage, ListRequest};
use klozeo_tests::{Api, Backend, TestServer, backends, urlencode};
use serde_json::{Value, json};

/// A small deterministic generator (SplitMix64), so a seed replays a run exactly.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
}

fn seed() -> u64 {
    std::env::var("KLOZEO_PLANNER_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        })
}

const NAMES: &[&str] = &[
    "Acme",
    "acme",
    "ACME Corp",
    "Bistro",
    "bistro du Coin",
    "Zeta",
    "Éclair",
    "éclair",
    "Café Ñ",
    "a",
    "Ab",
    "ab!",
    "ab#",
    "ab ",
    "Żubr",
    "zz",
];
const CITIES: &[&str] = &["Paris", "paris", "Lyon", "Zürich", "Ab", "ab", "São Paulo"];
const WORDS: &[&str] = &[
    "Food", "food", "Retail", "Tech", "b2b", "Ab", "ab!", "x#y", "Über",
];
const SOURCES: &[&str] = &["google_maps", "Import", "import", "csv"];
const STATUSES: &[&str] = &["new", "contacted", "qualified"];

fn opt<'a>(r: &mut Rng, xs: &'a [&'a str], percent: u64) -> Value {
    if r.chance(percent) {
        json!(r.pick(xs))
    } else {
        Value::Null
    }
}

/// One random lead body. Many values repeat (ties), some are missing, a few names are longer
/// than the bounded sort key so that its cut shows.
fn random_lead(r: &mut Rng, i: usize) -> Value {
    let mut name = r.pick(NAMES).to_string();
    if r.chance(40) {
        name.push_str(&format!(" {}", r.below(5)));
    }
    if r.chance(4) {
        name = format!("{}{}", "Ł".repeat(199), r.pick(&["a", "b", "ąb"]));
    }
    let mut lead = json!({
        "name": name,
        "source": r.pick(SOURCES),
        "status": r.pick(STATUSES),
        "city": opt(r, CITIES, 75),
        "state": opt(r, WORDS, 40),
        "country": opt(r, &["FR", "fr", "DE", "US"], 60),
        "category": opt(r, WORDS, 60),
        "website": opt(r, &["https://a.fr", "https://B.com", "http://z.io"], 50),
        "rating": if r.chance(70) { json!(r.pick(&[0.0, 1.5, 2.25, 3.0, 4.0, 4.5, 5.0])) } else { Value::Null },
        "review_count": if r.chance(65) { json!(r.below(40)) } else { Value::Null },
    });
    if r.chance(60) {
        lead["email"] = json!(format!("u{i}@{}", r.pick(&["A.com", "b.com", "c.org"])));
    }
    if r.chance(50) {
        lead["phone"] = json!(format!("+33 1 {:08}", (i * 7919 + 17) % 100_000_000));
    }
    if r.chance(50) {
        let tags: Vec<&str> = ["vip", "b2b", "cold"]
            .into_iter()
            .filter(|_| r.chance(40))
            .collect();
        lead["tags"] = json!(tags);
    }
    if r.chance(40) {
        lead["latitude"] = json!(48.0 + r.below(300) as f64 / 100.0);
        lead["longitude"] = json!(2.0 + r.below(300) as f64 / 100.0);
    }
    let mut attrs = Vec::new();
    if r.chance(50) {
        attrs.push(json!({"name": "employees", "type": "number", "value": r.below(6) * 50}));
    } else if r.chance(20) {
        attrs.push(
            json!({"name": "employees", "type": "text", "value": r.pick(&["250", "many", "Few"])}),
        );
    }
    if r.chance(40) {
        attrs.push(json!({"name": "industry", "type": "text", "value": r.pick(WORDS)}));
    }
    if !attrs.is_empty() {
        lead["attributes"] = json!(attrs);
    }
    lead
}

/// One random filter over every operator family.
fn random_filter(r: &mut Rng) -> String {
    let logic = if r.chance(70) { "and" } else { "or" };
    let text_fields = [
        "name", "city", "state", "country", "category", "email", "website", "phone", "source",
        "status",
    ];
    let (op, field, value) = match r.below(6) {
        0 | 1 => {
            let field = *r.pick(&text_fields);
            let op = *r.pick(&[
                "eq",
                "neq",
                "contains",
                "not_contains",
                "starts_with",
                "ends_with",
                "in",
                "is_empty",
                "is_not_empty",
            ]);
            let word = match field {
                "name" => r.pick(NAMES).to_string(),
                "city" => r.pick(CITIES).to_string(),
                "source" => r.pick(SOURCES).to_string(),
                "status" => r.pick(STATUSES).to_string(),
                "email" => r.pick(&["a.com", "u1", ".org"]).to_string(),
                _ => r.pick(WORDS).to_string(),
            };
            let value = match op {
                "contains" | "not_contains" | "starts_with" | "ends_with" => {
                    word.chars().take(1 + r.below(3)).collect()
                }
                "in" => format!("{word},{}", r.pick(CITIES)),
                "is_empty" | "is_not_empty" => String::new(),
                _ => word,
            };
            (op.to_string(), field.to_string(), value)
        }
        2 => {
            let field = *r.pick(&["rating", "review_count", "score", "latitude"]);
            let op = *r.pick(&["eq", "neq", "gt", "gte", "lt", "lte"]);
            let x = match field {
                "rating" => r.pick(&["0", "2.25", "3", "4", "4.5"]).to_string(),
                "review_count" => r.below(40).to_string(),
                "latitude" => "49".to_string(),
                _ => "0".to_string(),
            };
            (op.to_string(), field.to_string(), x)
        }
        3 => {
            let op = *r.pick(&[
                "array_contains",
                "array_not_contains",
                "array_empty",
                "array_not_empty",
            ]);
            (
                op.to_string(),
                "tags".into(),
                r.pick(&["vip", "b2b", "VIP"]).to_string(),
            )
        }
        4 => match r.below(3) {
            0 => ("is_set".into(), "location".into(), String::new()),
            1 => ("is_not_set".into(), "location".into(), String::new()),
            _ => (
                "within_radius".into(),
                "location".into(),
                "48.85,2.35,150".into(),
            ),
        },
        _ => {
            if r.chance(50) {
                let op = *r.pick(&["gt", "gte", "lt", "lte", "eq", "neq"]);
                (
                    op.to_string(),
                    "attr:employees".into(),
                    r.pick(&["0", "100", "250"]).to_string(),
                )
            } else {
                let op = *r.pick(&["eq", "contains", "neq", "in", "is_empty", "is_not_empty"]);
                (
                    op.to_string(),
                    "attr:industry".into(),
                    r.pick(WORDS).to_lowercase(),
                )
            }
        }
    };
    if value.is_empty() {
        format!("{logic}.{op}.{field}")
    } else {
        format!("{logic}.{op}.{field}.{value}")
    }
}

/// Every SDK sort field, an attribute sort (no index) and the unindexed built-ins.
const SORTS: &[&str] = &[
    "name",
    "city",
    "country",
    "state",
    "category",
    "source",
    "email",
    "phone",
    "website",
    "rating",
    "review_count",
    "score",
    "created_at",
    "updated_at",
    "last_interaction_at",
    "attr:employees",
    "attr:industry",
    "latitude",
    "status",
];

struct Fixture {
    server: TestServer,
    tenant: Tenant,
    leads: Vec<Lead>,
}

/// Which plan answers the lists of a fixture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plans {
    /// The store's own: the typed lead table on the embedded store, the planner on DynamoDB.
    Native,
    /// The key-range planner on either store (DynamoDB's plans, also run on SQLite).
    Planner,
}

async fn fixture(backend: Backend, r: &mut Rng, n: usize, plans: Plans) -> Fixture {
    let server = match plans {
        Plans::Native => TestServer::start(backend).await,
        Plans::Planner => TestServer::start_wrapped(backend, klozeo_tests::planner_only).await,
    };
    let key = server.account("unlimited").await;
    let api = Api::new(&server, &key);
    let bodies: Vec<Value> = (0..n).map(|i| random_lead(r, i)).collect();
    for chunk in bodies.chunks(100) {
        let (st, v) = api
            .send(
                reqwest::Method::POST,
                "/leads/batch",
                Some(json!({ "leads": chunk })),
            )
            .await;
        assert!(st.is_success(), "{st} {v}");
    }
    let tenant = server.app.accounts.authenticate(&key).await.unwrap();
    // Change some leads after creation, so that index entries are replaced, not only written.
    let ids = api.ids("limit=1000").await;
    for id in &ids {
        if !r.chance(12) {
            continue;
        }
        let mut change = json!({
            "city": r.pick(CITIES),
            "rating": r.pick(&[1.0, 4.5]),
            "name": r.pick(NAMES),
        });
        if r.chance(50) {
            change["category"] = json!(r.pick(WORDS));
        }
        let (st, v) = api
            .send(reqwest::Method::PUT, &format!("/leads/{id}"), Some(change))
            .await;
        assert!(st.is_success(), "{st} {v}");
    }
    // The oracle's input is what the store holds (dedup may have merged a few bodies).
    let mut leads = Vec::new();
    let mut cursor = None;
    loop {
        let page = server
            .app
            .leads
            .list(
                &tenant,
                &ListRequest {
                    limit: 1000,
                    cursor,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        leads.extend(page.leads);
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert!(leads.len() > n / 2, "most bodies became leads");
    Fixture {
        server,
        tenant,
        leads,
    }
}

/// The oracle: every matching lead in the domain order.
fn oracle(leads: &[Lead], filters: &FilterSet, sort: &Sort) -> Vec<String> {
    let mut rows: Vec<&Lead> = leads.iter().filter(|l| filters.matches(l)).collect();
    rows.sort_by(|a, b| -> Ordering {
        compare(
            (&sort.field.value(a), &a.id),
            (&sort.field.value(b), &b.id),
            sort.order,
        )
    });
    rows.into_iter().map(|l| l.id.clone()).collect()
}

/// Walks every page of a request; returns the ids of each page.
async fn walk(
    svc: &LeadService,
    tenant: &Tenant,
    base: &ListRequest,
    what: &str,
) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut cursor = None;
    for _ in 0..10_000 {
        let req = ListRequest {
            cursor: cursor.clone(),
            ..base.clone()
        };
        let page: ListPage = svc
            .list(tenant, &req)
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        pages.push(page.leads.iter().map(|l| l.id.clone()).collect());
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => return pages,
        }
    }
    panic!("{what}: the walk does not end");
}

fn request(filters: &[String], sort_by: &str, order: &str, limit: u32) -> ListRequest {
    ListRequest {
        limit,
        cursor: None,
        sort: Sort {
            field: SortField::parse(sort_by).unwrap(),
            order: SortOrder::parse(order).unwrap(),
        },
        filters: FilterSet::parse(filters).unwrap(),
    }
}

async fn differential(backend: Backend, plans: Plans, n_leads: usize, n_queries: usize) {
    let seed = seed();
    let mut r = Rng(seed);
    let f = fixture(backend, &mut r, n_leads, plans).await;
    for q in 0..n_queries {
        let filters: Vec<String> = (0..r.below(4)).map(|_| random_filter(&mut r)).collect();
        let sort_by = *r.pick(SORTS);
        let order = *r.pick(&["asc", "desc"]);
        let limit = *r.pick(&[1u32, 3, 7, 20, 50]);
        let req = request(&filters, sort_by, order, limit);
        let what = format!(
            "{backend:?} ({plans:?} plans) seed={seed} query#{q}: filters={filters:?} sort_by={sort_by} {order} limit={limit}"
        );
        let want = oracle(&f.leads, &req.filters, &req.sort);
        let mut want_pages: Vec<Vec<String>> = want
            .chunks(limit as usize)
            .map(<[String]>::to_vec)
            .collect();
        if want_pages.is_empty() {
            want_pages.push(Vec::new());
        }
        let got = walk(&f.server.app.leads, &f.tenant, &req, &what).await;
        assert_eq!(got, want_pages, "{what}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stores_answer_random_queries_exactly_like_the_oracle() {
    for b in backends() {
        match b {
            // Both of the embedded store's plans: its typed lead table, and DynamoDB's.
            Backend::Embedded => {
                differential(b, Plans::Native, 200, 120).await;
                differential(b, Plans::Planner, 200, 120).await;
            }
            // The emulator scans its table on every index query (about 16 minutes for 120
            // leads and 30 queries on a loaded machine); fewer still cross every plan.
            Backend::Dynamo => differential(b, Plans::Native, 60, 16).await,
        }
    }
}

/// Every sort field with a read budget and candidate chunk far below the account size: the
/// walk must list each matching lead exactly once in the oracle's order, whatever the
/// budget cuts, and key-ordered pages never read more than the budget.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sort_walks_past_lowered_bounds_on_both_stores() {
    let seed = seed();
    for b in backends() {
        let mut r = Rng(seed);
        let n = if b == Backend::Dynamo { 45 } else { 160 };
        // The read budget and chunk are the planner's (the typed lead table has its own).
        let f = fixture(b, &mut r, n, Plans::Planner).await;
        let budget = 25;
        let svc = LeadService::new(f.server.app.deps.clone()).with_bounds(budget, 17);
        let filter_sets: &[&[&str]] = if b == Backend::Dynamo {
            &[&[], &["or.gte.rating.4", "or.array_contains.tags.vip"]]
        } else {
            &[
                &[],
                &["and.is_not_empty.city", "and.neq.source.csv"],
                &["or.gte.rating.4", "or.array_contains.tags.vip"],
            ]
        };
        for sort_by in SORTS {
            for order in ["asc", "desc"] {
                for filters in filter_sets {
                    let filters: Vec<String> = filters.iter().map(|s| s.to_string()).collect();
                    let req = request(&filters, sort_by, order, 20);
                    let what =
                        format!("{b:?} seed={seed} sort_by={sort_by} {order} filters={filters:?}");
                    let want = oracle(&f.leads, &req.filters, &req.sort);
                    let mut cursor = None;
                    let mut got = Vec::new();
                    let mut pages = 0;
                    loop {
                        let page = svc
                            .list(
                                &f.tenant,
                                &ListRequest {
                                    cursor: cursor.clone(),
                                    ..req.clone()
                                },
                            )
                            .await
                            .unwrap_or_else(|e| panic!("{what}: {e}"));
                        pages += 1;
                        assert!(pages < 1000, "{what}: the walk does not end");
                        if page.plan.access == "key_ordered" {
                            assert!(
                                page.plan.items_read <= u64::from(budget),
                                "{what}: read {} items",
                                page.plan.items_read
                            );
                        }
                        got.extend(page.leads.iter().map(|l| l.id.clone()));
                        match page.next_cursor {
                            Some(c) => cursor = Some(c),
                            None => break,
                        }
                    }
                    let unique: HashSet<&String> = got.iter().collect();
                    assert_eq!(unique.len(), got.len(), "{what}: a lead listed twice");
                    assert_eq!(got, want, "{what}");
                }
            }
        }
    }
}

/// "Lead 00" to "Lead 29", every third in Paris and the others in Lyon, in one batch.
async fn thirty_leads(api: &Api) {
    let leads: Vec<Value> = (0..30)
        .map(|i| json!({"name": format!("Lead {i:02}"), "source": "s", "city": if i % 3 == 0 { "Paris" } else { "Lyon" }}))
        .collect();
    api.batch_create(leads).await;
}

/// `explain=true` adds the plan to the page and changes nothing else; without it the SDK
/// shape has no `plan` key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_reports_the_access_path_and_what_it_read() {
    for b in backends() {
        // DynamoDB's plans, on both stores (the embedded store's own plan is checked below).
        let server = TestServer::start_wrapped(b, klozeo_tests::planner_only).await;
        let api = Api::on_plan(&server, "unlimited").await;
        thirty_leads(&api).await;
        let (st, plain) = api.get("/leads?sort_by=name&limit=5").await;
        assert_eq!(st, 200, "{plain}");
        assert!(plain.get("plan").is_none(), "{b:?}: {plain}");
        let (st, explained) = api.get("/leads?sort_by=name&limit=5&explain=true").await;
        assert_eq!(st, 200, "{explained}");
        assert_eq!(explained["leads"], plain["leads"], "{b:?}");
        assert_eq!(explained["count"], 5);
        let plan = &explained["plan"];
        assert_eq!(plan["access"], "key_ordered", "{b:?}: {plan}");
        assert_eq!(plan["index"], "sort_name", "{b:?}: {plan}");
        // An unfiltered index page reads exactly its leads plus the one that tells has_more.
        assert_eq!(plan["items_read"], 6, "{b:?}: {plan}");
        assert!(plan["estimated_rcu"].as_f64().unwrap() > 0.0, "{plan}");
        let (_, filtered) = api
            .get("/leads?filter=and.eq.city.Paris&sort_by=attr:x&explain=true")
            .await;
        let plan = &filtered["plan"];
        assert_eq!(plan["access"], "candidates", "{plan}");
        assert_eq!(plan["index"], "by_city", "{plan}");
        assert_eq!(
            plan["items_read"], 10,
            "every Paris lead is a candidate: {plan}"
        );
        assert_eq!(filtered["count"], 10);
        let (_, base) = api.get("/leads?explain=true&limit=100").await;
        assert_eq!(base["plan"]["index"], "base");
        assert_eq!(base["plan"]["items_read"], 30);
    }
}

/// On the embedded store a list reads its typed lead table in list order: the plan says so,
/// reads exactly the page plus one, and costs no read units.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_on_the_embedded_store_names_its_lead_table() {
    let server = TestServer::start(Backend::Embedded).await;
    let api = Api::on_plan(&server, "unlimited").await;
    thirty_leads(&api).await;
    let (st, page) = api.get("/leads?sort_by=name&limit=5&explain=true").await;
    assert_eq!(st, 200, "{page}");
    assert_eq!(page["leads"][0]["name"], "Lead 00");
    let plan = &page["plan"];
    assert_eq!(plan["access"], "key_ordered", "{plan}");
    assert_eq!(plan["index"], "lead_rows", "{plan}");
    assert_eq!(plan["items_read"], 6, "{plan}");
    assert_eq!(plan["estimated_rcu"], 0.0, "{plan}");
}

/// The numbers of `lib/docs/query-cost.md`: items read and estimated read units of the first
/// 50-lead page of each query shape, from the explain plan. Not a check (it prints a table):
/// `cargo test -p klozeo-tests --test integration planner::query_cost_table -- --ignored --nocapture`,
/// with `KLOZEO_TEST_DYNAMODB_ENDPOINT` set to measure on the emulator too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "prints the measurements of lib/docs/query-cost.md"]
async fn query_cost_table() {
    let n: usize = std::env::var("KLOZEO_COST_LEADS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000);
    for b in backends() {
        let server = TestServer::start(b).await;
        let api = Api::on_plan(&server, "unlimited").await;
        let mut r = Rng(7);
        let bodies: Vec<Value> = (0..n)
            .map(|i| {
                // About 1.2 KB as stored: a description, an address and a few attributes.
                json!({
                    "name": format!("{} {i}", r.pick(NAMES)),
                    "source": r.pick(SOURCES),
                    "status": r.pick(STATUSES),
                    "city": r.pick(&["Paris", "Lyon", "Lille", "Nantes"]),
                    "country": "FR",
                    "category": r.pick(&["Food", "Retail", "Tech", "Health"]),
                    "email": format!("contact{i}@example-{}.com", i % 97),
                    "phone": format!("+33 1 {:08}", i * 7919 % 100_000_000),
                    "website": format!("https://www.example-{i}.com"),
                    "address": format!("{} rue de la République", i % 300),
                    "description": "A family business serving the neighbourhood since 1987, \
                        open six days a week with a small team and a loyal customer base. "
                        .repeat(4),
                    "rating": (r.below(9) as f64) / 2.0 + 1.0,
                    "review_count": r.below(500),
                    "tags": if r.chance(20) { json!(["vip", "b2b"]) } else { json!(["b2b"]) },
                    "attributes": [
                        {"name": "employees", "type": "number", "value": r.below(200)},
                        {"name": "industry", "type": "text", "value": "Hospitality"}
                    ]
                })
            })
            .collect();
        for chunk in bodies.chunks(100) {
            let (st, v) = api
                .send(
                    reqwest::Method::POST,
                    "/leads/batch",
                    Some(json!({ "leads": chunk })),
                )
                .await;
            assert!(st.is_success(), "{v}");
        }
        println!("\n{b:?}, {n} leads\n");
        println!("| query | access | index | items read | est. RCU | leads |");
        println!("|---|---|---|---|---|---|");
        for q in [
            "",
            "sort_by=name",
            "sort_by=city&sort_order=desc",
            "sort_by=review_count&sort_order=desc",
            "sort_by=updated_at&sort_order=desc",
            "filter=and.eq.status.qualified",
            "filter=and.eq.city.Paris&filter=and.gte.rating.4",
            "filter=and.eq.city.Paris&filter=and.gte.rating.4&filter=and.array_contains.tags.vip&sort_by=rating&sort_order=desc",
            "filter=and.eq.category.Food&sort_by=rating",
            "filter=and.gte.score.0&sort_by=score&sort_order=desc",
            "filter=and.contains.name.bistro",
            "sort_by=attr:employees",
            "filter=and.eq.city.Paris&sort_by=attr:employees",
        ] {
            let (st, v) = api.get(&format!("/leads?limit=50&explain=true&{q}")).await;
            assert_eq!(st, 200, "{v}");
            let p = &v["plan"];
            println!(
                "| `{}` | {} | {} | {} | {:.1} | {} |",
                if q.is_empty() { "(none)" } else { q },
                p["access"].as_str().unwrap(),
                p["index"].as_str().unwrap(),
                p["items_read"],
                p["estimated_rcu"].as_f64().unwrap(),
                v["count"]
            );
        }
        let (_, one) = api.get("/leads?limit=1").await;
        let id = one["leads"][0]["id"].as_str().unwrap().to_string();
        let t = server.app.accounts.authenticate(&api.key).await.unwrap();
        let item = server
            .app
            .deps
            .store
            .get(
                klozeo_core::ports::Table::Leads,
                &klozeo_core::schema::lead_key(&t.account_id, &id),
            )
            .await
            .unwrap()
            .unwrap();
        let lead: Lead = serde_json::from_slice(&item.body).unwrap();
        let index = klozeo_core::schema::index_entries_size(&t.account_id, &lead);
        println!(
            "\none lead item: {} bytes as stored (body {} bytes) + {index} bytes of index key \
             attributes on DynamoDB",
            klozeo_core::ports::item_size(&item),
            item.body.len(),
        );
    }
}

/// Sort columns and index keys hold texts cut to 400 bytes, so a filter that the store pushes
/// into SQL or a key condition must still find a text whose match lies past the cut (a seed of
/// the differential test once lost a 600-byte name that contained its needle at the end).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_match_texts_longer_than_the_sort_cut() {
    let long = "x".repeat(450);
    let polish = format!("{}ąb", "Ł".repeat(300));
    let (alpha, beta) = (format!("{long} alpha"), format!("{long} beta"));
    let city = |n: u8| format!("{}{n}", "y".repeat(450));
    for b in backends() {
        for planner in [false, true] {
            let server = if planner {
                TestServer::start_wrapped(b, klozeo_tests::planner_only).await
            } else {
                TestServer::start(b).await
            };
            let api = Api::on_plan(&server, "unlimited").await;
            api.batch_create(vec![
                json!({"name": alpha, "source": "s", "city": city(1)}),
                json!({"name": beta, "source": "s", "city": city(2)}),
                json!({"name": "short beta", "source": "s", "city": "Paris"}),
                json!({"name": polish, "source": "s"}),
                // A city whose index key would pass DynamoDB's 2,048-byte key limit.
                json!({"name": "far", "source": "s", "city": "z".repeat(2030)}),
            ])
            .await;
            let names = |filter: String| {
                let api = &api;
                async move {
                    let mut got = Vec::new();
                    let mut cursor = String::new();
                    loop {
                        let (st, page) = api
                            .get(&format!(
                                "/leads?filter={}&sort_by=name&limit=1{cursor}",
                                urlencode(&filter)
                            ))
                            .await;
                        assert_eq!(st, 200, "{filter}: {page}");
                        for l in page["leads"].as_array().unwrap() {
                            got.push(l["name"].as_str().unwrap().to_string());
                        }
                        match page["next_cursor"].as_str() {
                            Some(c) => cursor = format!("&cursor={}", urlencode(c)),
                            None => break,
                        }
                    }
                    got.sort();
                    got
                }
            };
            let sorted = |mut v: Vec<String>| {
                v.sort();
                v
            };
            let what = format!("{b:?} planner={planner}");
            assert_eq!(
                names("and.contains.name.beta".into()).await,
                sorted(vec![beta.clone(), "short beta".into()]),
                "{what}"
            );
            assert_eq!(
                names("and.contains.name.B".into()).await,
                sorted(vec![polish.clone(), beta.clone(), "short beta".into()]),
                "{what}"
            );
            assert_eq!(
                names(format!("and.eq.name.{alpha}")).await,
                vec![alpha.clone()],
                "{what}"
            );
            assert_eq!(
                names(format!("and.starts_with.name.{long} al")).await,
                vec![alpha.clone()],
                "{what}"
            );
            assert_eq!(
                names(format!("and.in.name.{beta},short beta")).await,
                sorted(vec![beta.clone(), "short beta".into()]),
                "{what}"
            );
            assert_eq!(
                names(format!("and.eq.city.{}", "Z".repeat(2030))).await,
                ["far".to_string()],
                "{what}"
            );
            assert_eq!(
                names(format!("and.eq.city.{}", city(2))).await,
                vec![beta.clone()],
                "{what}"
            );
        }
    }
}
