//! What a filtered list costs on the embedded store: when SQL can express the whole filter
//! (equality, number ranges, tags, `contains`), a page reads exactly its leads plus the one that
//! tells `has_more`, instead of reading ahead and decoding candidates it throws away; when it
//! cannot (`ends_with` here), the one Rust evaluator still decides and a cursor walk still gives
//! every match exactly once.
#![allow(clippy::unwrap_used)]

use std::collections::HashSet;

use klozeo_tests::{Api, Backend, TestServer};
use serde_json::{Value, json};

/// The synthetic leads: (name, city, rating, vip) for lead `i`.
fn lead(i: usize) -> (String, &'static str, f64, bool) {
    let name = if i.is_multiple_of(4) {
        format!("Orbit {i:03}")
    } else {
        format!("Acme {i:03}")
    };
    let city = if i.is_multiple_of(2) { "Paris" } else { "Lyon" };
    (name, city, (i % 5 + 1) as f64, i.is_multiple_of(3))
}

const LEADS: usize = 120;

async fn load(api: &Api) {
    let leads: Vec<Value> = (0..LEADS)
        .map(|i| {
            let (name, city, rating, vip) = lead(i);
            let tags: Vec<&str> = if vip { vec!["VIP", "b2b"] } else { vec!["b2b"] };
            json!({"name": name, "source": "s", "city": city, "rating": rating, "tags": tags})
        })
        .collect();
    api.batch_create(leads).await;
}

/// Names of every lead of a cursor walk, in order, each page checked by the harness.
async fn walk_names(api: &Api, query: &str) -> Vec<String> {
    let ids = api.ids(query).await;
    let mut names = Vec::with_capacity(ids.len());
    for id in ids {
        names.push(
            api.get_lead(&id).await["name"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    names
}

fn expected(pred: impl Fn(usize) -> bool) -> HashSet<String> {
    (0..LEADS).filter(|i| pred(*i)).map(|i| lead(i).0).collect()
}

fn as_set(names: &[String]) -> HashSet<String> {
    let set: HashSet<String> = names.iter().cloned().collect();
    assert_eq!(set.len(), names.len(), "a lead came twice: {names:?}");
    set
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filter_sql_expresses_reads_only_the_page() {
    let server = TestServer::start(Backend::Embedded).await;
    let api = Api::on_plan(&server, "unlimited").await;
    load(&api).await;

    let three = "filter=and.eq.city.paris&filter=and.gte.rating.4\
                 &filter=and.array_contains.tags.vip&sort_by=rating&sort_order=desc";
    let contains = "filter=and.contains.name.ORBIT";
    for (query, want) in [
        (
            three,
            expected(|i| {
                let (_, city, rating, vip) = lead(i);
                city == "Paris" && rating >= 4.0 && vip
            }),
        ),
        (contains, expected(|i| lead(i).0.starts_with("Orbit"))),
    ] {
        assert!(want.len() > 5, "the data gives more than one page");
        let (st, page) = api
            .get(&format!("/leads?{query}&limit=5&explain=true"))
            .await;
        assert_eq!(st, 200, "{page}");
        assert_eq!(page["count"], 5, "{query}: {page}");
        assert_eq!(page["has_more"], true, "{query}");
        assert_eq!(
            page["plan"]["items_read"], 6,
            "{query}: the page and the one lead after it, nothing decoded in vain: {}",
            page["plan"]
        );
        let walked = walk_names(&api, &format!("{query}&limit=5")).await;
        assert_eq!(as_set(&walked), want, "{query}");
    }

    // Sorted by rating desc: the walk is in that order.
    let ratings: Vec<f64> = walk_names(&api, &format!("{three}&limit=3"))
        .await
        .iter()
        .map(|n| lead(n[n.len() - 3..].parse().unwrap()).2)
        .collect();
    assert!(ratings.windows(2).all(|w| w[0] >= w[1]), "{ratings:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filter_sql_cannot_express_still_fills_pages_and_walks_every_match_once() {
    let server = TestServer::start(Backend::Embedded).await;
    let api = Api::on_plan(&server, "unlimited").await;
    load(&api).await;

    // `ends_with` is decided by the Rust evaluator alone: about one candidate in ten matches.
    let query = "filter=and.ends_with.name.7&filter=and.eq.city.lyon";
    let want = expected(|i| {
        let (name, city, _, _) = lead(i);
        name.ends_with('7') && city == "Lyon"
    });
    assert!(want.len() > 4, "{want:?}");
    let (st, page) = api
        .get(&format!("/leads?{query}&limit=4&explain=true"))
        .await;
    assert_eq!(st, 200, "{page}");
    assert_eq!(
        page["count"], 4,
        "a sparse match still fills the page: {page}"
    );
    assert_eq!(page["has_more"], true);
    let walked = walk_names(&api, &format!("{query}&limit=4")).await;
    assert_eq!(as_set(&walked), want);
}
