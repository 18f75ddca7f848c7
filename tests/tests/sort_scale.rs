//! Every sort field at a size where the key-range planner gave up (10,000 candidate leads), on
//! the embedded store, which lists through its own typed, indexed lead table: cursor walks
//! return every lead exactly once, in the domain's order (value, then id; missing values last
//! in both directions), alone and together with filters.
#![allow(clippy::unwrap_used)]

use std::cmp::Ordering;

use klozeo_core::domain::filter::FilterSet;
use klozeo_core::domain::lead::{AttrType, Attribute, Lead, Status};
use klozeo_core::domain::query::{SortField, SortOrder, compare};
use klozeo_core::ports::{Cond, Item, Table, WriteOp};
use klozeo_core::schema;
use klozeo_tests::{Api, Backend, TestServer, urlencode};

/// Above `CANDIDATE_BUDGET` (10,000), where sorting by name used to answer 400.
const LEADS: usize = 10_100;

/// A small deterministic generator, so a failure reproduces.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.next() as usize % xs.len()]
    }
}

fn text(r: &mut Lcg, xs: &[Option<&str>]) -> Option<String> {
    r.pick(xs).map(str::to_string)
}

/// Leads with ties, missing values, mixed case and non-ASCII text, signed zeros, and an
/// attribute that is a number, a numeric string, text, a bool or missing.
///
/// Ids follow `created_at` as the API mints them (a UUIDv7 from the same clock reading), ties
/// apart: both stores serve the `created_at` order from the lead items' key order.
fn random_lead(r: &mut Lcg, i: usize) -> Lead {
    let created_at = 1_700_000_000 + (r.next() % 50) as i64;
    let id = format!("cl_{created_at:012x}{:016x}{i:08x}", r.next());
    let mut lead = Lead {
        id,
        created_at,
        name: r
            .pick(&[
                "Acme",
                "acme",
                "Émile & fils",
                "zeta",
                "Zeta Corp",
                "bakery",
                "Ölwerk",
            ])
            .to_string(),
        source: r.pick(&["web", "Maps", "csv"]).to_string(),
        city: text(
            r,
            &[
                Some("Paris"),
                Some("paris"),
                Some("Lyon"),
                Some("Zürich"),
                None,
            ],
        ),
        state: text(r, &[Some("IDF"), Some("Bavaria"), None, None]),
        country: text(r, &[Some("FR"), Some("de"), Some("CH"), None]),
        category: text(r, &[Some("Food"), Some("food"), Some("Retail"), None]),
        email: text(r, &[Some("a@x.io"), Some("B@x.io"), None, None]),
        phone: text(r, &[Some("+33 1"), Some("0123"), None]),
        website: text(r, &[Some("https://a.io"), Some(""), None]),
        rating: *r.pick(&[
            None,
            Some(0.0),
            Some(-0.0),
            Some(1.5),
            Some(4.0),
            Some(4.5),
            Some(5.0),
        ]),
        review_count: *r.pick(&[None, Some(0), Some(7), Some(120)]),
        score: *r.pick(&[0.0, 12.5, 40.0, 99.0]),
        updated_at: 1_700_000_000 + (r.next() % 50) as i64,
        last_interaction_at: 1_700_000_000 + (r.next() % 7) as i64,
        status: *r.pick(&[Status::New, Status::Contacted]),
        ..Lead::default()
    };
    for t in ["vip", "B2B", "Ünique"] {
        if r.next().is_multiple_of(3) {
            lead.tags.push(t.to_string());
        }
    }
    let size = match r.next() % 6 {
        0 => Some((
            AttrType::Number,
            serde_json::json!((r.next() % 5) as f64 - 2.0),
        )),
        1 => Some((
            AttrType::Text,
            serde_json::json!(format!("{}", r.next() % 3)),
        )),
        2 => Some((
            AttrType::Text,
            serde_json::json!(*r.pick(&["Big", "small", "ß"])),
        )),
        3 => Some((
            AttrType::Bool,
            serde_json::json!(r.next().is_multiple_of(2)),
        )),
        _ => None,
    };
    if let Some((ty, value)) = size {
        lead.attributes.push(Attribute {
            id: format!("a{i}"),
            name: "size".into(),
            ty,
            value,
        });
    }
    lead
}

/// Writes the leads straight into the store (as ingest stores them), 100 per transaction.
async fn seed(s: &TestServer, account_id: &str, leads: &[Lead]) {
    for chunk in leads.chunks(100) {
        let ops = chunk
            .iter()
            .map(|l| {
                let mut item = Item::new(
                    schema::lead_key(account_id, &l.id),
                    serde_json::to_vec(l).unwrap(),
                );
                item.index_keys = schema::lead_index_keys(account_id, l);
                WriteOp::Put {
                    table: Table::Leads,
                    item,
                    cond: Cond::NotExists,
                }
            })
            .collect();
        s.app.deps.store.transact(ops).await.unwrap();
    }
}

/// The ids the API returns for `query`, walking every page with `limit`.
async fn walk(api: &Api, query: &str, limit: u32) -> Vec<String> {
    let mut ids = Vec::new();
    let mut cursor = String::new();
    loop {
        let mut q = format!("/leads?{query}&limit={limit}");
        if !cursor.is_empty() {
            q.push_str(&format!("&cursor={}", urlencode(&cursor)));
        }
        let (st, page) = api.get(&q).await;
        assert_eq!(st.as_u16(), 200, "{q}: {page}");
        let leads = page["leads"].as_array().unwrap();
        ids.extend(leads.iter().map(|l| l["id"].as_str().unwrap().to_string()));
        match page["next_cursor"].as_str() {
            Some(c) if page["has_more"].as_bool().unwrap() => cursor = c.to_string(),
            _ => return ids,
        }
    }
}

/// The ids of the leads matching `filters` in (value, id) order: what every store must return.
fn expected(leads: &[Lead], filters: &[&str], field: &SortField, order: SortOrder) -> Vec<String> {
    let set = FilterSet::parse(filters).unwrap();
    let mut rows: Vec<_> = leads
        .iter()
        .filter(|l| set.matches(l))
        .map(|l| (field.value(l), l.id.clone()))
        .collect();
    rows.sort_by(|a, b| compare((&a.0, &a.1), (&b.0, &b.1), order));
    rows.into_iter().map(|(_, id)| id).collect()
}

fn assert_same(got: &[String], want: &[String], what: &str) {
    if got == want {
        return;
    }
    let first = got
        .iter()
        .zip(want)
        .position(|(a, b)| a != b)
        .unwrap_or(got.len().min(want.len()));
    panic!(
        "{what}: {} ids, want {}; first difference at {first}: got {:?}, want {:?}",
        got.len(),
        want.len(),
        got.get(first),
        want.get(first)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sort_field_walks_past_ten_thousand_leads_once_each_in_order() {
    let s = TestServer::start(Backend::Embedded).await;
    let key = s.account("unlimited").await;
    let tenant = s.app.accounts.authenticate(&key).await.unwrap();
    let mut r = Lcg(13);
    let leads: Vec<Lead> = (0..LEADS).map(|i| random_lead(&mut r, i)).collect();
    seed(&s, &tenant.account_id, &leads).await;
    // Another tenant's leads must never show up.
    let other = s.account("unlimited").await;
    let other = s.app.accounts.authenticate(&other).await.unwrap();
    seed(&s, &other.account_id, &leads[..300]).await;
    let api = Api::new(&s, &key);

    let fields = [
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
        "status",
        "attr:size",
    ];
    for name in fields {
        let field = SortField::parse(name).unwrap();
        for (order, spelled) in [(SortOrder::Asc, "asc"), (SortOrder::Desc, "desc")] {
            let got = walk(&api, &format!("sort_by={name}&sort_order={spelled}"), 1000).await;
            let want = expected(&leads, &[], &field, order);
            assert_eq!(want.len(), LEADS);
            assert_same(&got, &want, &format!("sort_by={name} {spelled}"));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filtered_sorts_past_ten_thousand_leads_match_the_filter_evaluator() {
    let s = TestServer::start(Backend::Embedded).await;
    let key = s.account("unlimited").await;
    let tenant = s.app.accounts.authenticate(&key).await.unwrap();
    let mut r = Lcg(29);
    let leads: Vec<Lead> = (0..LEADS).map(|i| random_lead(&mut r, i)).collect();
    seed(&s, &tenant.account_id, &leads).await;
    let api = Api::new(&s, &key);

    let cases: &[(&[&str], &str, &str, u32)] = &[
        // The shapes: an equality with a sort on another field.
        (&["and.eq.category.Food"], "rating", "desc", 250),
        (
            &[
                "and.eq.city.Paris",
                "and.gte.rating.4",
                "and.array_contains.tags.vip",
            ],
            "rating",
            "desc",
            50,
        ),
        (&["and.contains.name.AC"], "name", "asc", 500),
        (&["and.starts_with.name.ze"], "created_at", "desc", 300),
        (&["and.in.city.lyon,ZÜRICH"], "attr:size", "asc", 400),
        (&["and.eq.rating.0"], "score", "asc", 200),
        (
            &["and.lt.rating.0.5", "and.neq.review_count.7"],
            "review_count",
            "desc",
            100,
        ),
        (&["and.is_empty.website"], "website", "asc", 700),
        (
            &["and.array_contains.tags.ünique", "and.eq.status.contacted"],
            "city",
            "desc",
            90,
        ),
        (&["or.eq.city.lyon", "or.gte.score.99"], "name", "desc", 333),
        (
            &["and.gte.attr:size.0", "and.is_not_empty.email"],
            "attr:size",
            "desc",
            64,
        ),
        (
            &[
                "and.not_contains.name.acme",
                "and.lte.created_at.1700000010",
            ],
            "state",
            "asc",
            128,
        ),
    ];
    for (filters, sort, order, limit) in cases {
        let mut q: Vec<String> = filters
            .iter()
            .map(|f| format!("filter={}", urlencode(f)))
            .collect();
        q.push(format!("sort_by={sort}&sort_order={order}"));
        let got = walk(&api, &q.join("&"), *limit).await;
        let o = if *order == "asc" {
            SortOrder::Asc
        } else {
            SortOrder::Desc
        };
        let want = expected(&leads, filters, &SortField::parse(sort).unwrap(), o);
        assert!(!want.is_empty(), "{filters:?} matches nothing: a weak case");
        assert_same(&got, &want, &format!("{filters:?} sort_by={sort} {order}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ties_break_by_id_and_equal_values_never_repeat_across_pages() {
    // Every lead has the same rating, so each page boundary falls inside one value.
    let s = TestServer::start(Backend::Embedded).await;
    let key = s.account("unlimited").await;
    let tenant = s.app.accounts.authenticate(&key).await.unwrap();
    let mut r = Lcg(7);
    let leads: Vec<Lead> = (0..500)
        .map(|i| {
            let mut l = random_lead(&mut r, i);
            l.rating = Some(3.0);
            l
        })
        .collect();
    seed(&s, &tenant.account_id, &leads).await;
    let api = Api::new(&s, &key);
    for limit in [1, 7, 499, 500] {
        let got = walk(&api, "sort_by=rating&sort_order=desc", limit).await;
        let mut want: Vec<String> = leads.iter().map(|l| l.id.clone()).collect();
        want.sort_by(|a, b| b.cmp(a));
        assert_same(&got, &want, &format!("limit {limit}"));
    }
    assert_eq!(
        compare(
            (&SortField::Rating.value(&leads[0]), "a"),
            (&SortField::Rating.value(&leads[1]), "b"),
            SortOrder::Desc
        ),
        Ordering::Greater
    );
}
