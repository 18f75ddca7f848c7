//! Compatibility tests with the official Rust SDK (`klozeo = "=0.1.5"`, renamed `klozeo_sdk`):
//! every leads call the SDK has (create, get, update, delete, list, stream), the error variants
//! it maps statuses to, tenant isolation, and cursor paging over 1,000 leads. Each test runs
//! the real server on a loopback port over every backend of the run (see `klozeo_tests`).
//!
//! Filters, batch, notes, scoring and export are covered by the other sdk_rust* files and are not
//! exercised here.

use crate::common;

use std::collections::HashSet;

use common::sdk;
use futures_util::StreamExt;
use klozeo_sdk::{
    Attribute, AttributeResponse, Client, Error, LeadInput, LeadResponse, ListOptions, SortField,
    SortOrder, UpdateLeadInput,
};
use klozeo_tests::{Backend, TestServer, backends};
use serde_json::json;

/// A raw key of the right shape that no account owns.
const UNKNOWN_KEY: &str = "sk_live_00000000000000000000000000000000";

/// A lead id of the right shape that does not exist.
const MISSING_ID: &str = "cl_01890a5d-ac96-774b-bcce-b302099a8057";

/// A server on `backend` and an SDK client for a fresh account.
async fn setup(backend: klozeo_tests::Backend) -> (TestServer, Client) {
    let server = TestServer::start(backend).await;
    let key = server.account("unlimited").await;
    let client = sdk(&server, &key);
    (server, client)
}

/// A lead input with every field the SDK can send.
fn full_input(name: &str) -> LeadInput {
    LeadInput::builder()
        .name(name)
        .source("website")
        .description("Family-run bakery with a café corner")
        .address("Unter den Linden 1")
        .city("Berlin")
        .state("Berlin")
        .country("DE")
        .postal_code("10117")
        .latitude(52.520008)
        .longitude(13.404954)
        .phone("+49 30 1234567")
        .email("hello@acme.example")
        .website("https://acme.example")
        .rating(4.5)
        .review_count(128)
        .category("Bakery")
        .tags(vec!["vip".into(), "b2b".into()])
        .source_id("ext-42")
        .logo_url("https://acme.example/logo.png")
        .status("qualified")
        .attributes(vec![
            Attribute::text("industry", "Food"),
            Attribute::number("employees", 500.0),
            Attribute::bool("verified", true),
            Attribute::list("products", vec!["bread".into(), "cake".into()]),
            Attribute::object(
                "social",
                json!({"linkedin": "https://linkedin.example/acme"}),
            ),
        ])
        .build()
}

fn minimal_input(name: &str) -> LeadInput {
    LeadInput::builder().name(name).source("import").build()
}

/// Field-by-field equality of two leads (`LeadResponse` has no `PartialEq`).
fn assert_same_lead(a: &LeadResponse, b: &LeadResponse, context: &str) {
    assert_eq!(format!("{a:?}"), format!("{b:?}"), "{context}");
}

fn attr<'a>(lead: &'a LeadResponse, name: &str) -> &'a AttributeResponse {
    lead.attributes
        .iter()
        .find(|a| a.name == name)
        .unwrap_or_else(|| panic!("attribute {name} missing from {:?}", lead.attributes))
}

/// Asserts that `lead` carries exactly what [`full_input`] sent.
fn assert_full_fields(lead: &LeadResponse, name: &str) {
    assert_eq!(lead.name, name);
    assert_eq!(lead.source, "website");
    assert_eq!(
        lead.description.as_deref(),
        Some("Family-run bakery with a café corner")
    );
    assert_eq!(lead.address.as_deref(), Some("Unter den Linden 1"));
    assert_eq!(lead.city.as_deref(), Some("Berlin"));
    assert_eq!(lead.state.as_deref(), Some("Berlin"));
    assert_eq!(lead.country.as_deref(), Some("DE"));
    assert_eq!(lead.postal_code.as_deref(), Some("10117"));
    assert_eq!(lead.latitude, Some(52.520008));
    assert_eq!(lead.longitude, Some(13.404954));
    assert_eq!(lead.phone.as_deref(), Some("+49 30 1234567"));
    assert_eq!(lead.email.as_deref(), Some("hello@acme.example"));
    assert_eq!(lead.website.as_deref(), Some("https://acme.example"));
    assert_eq!(lead.rating, Some(4.5));
    assert_eq!(lead.review_count, Some(128));
    assert_eq!(lead.category.as_deref(), Some("Bakery"));
    assert_eq!(lead.tags, vec!["vip".to_string(), "b2b".to_string()]);
    assert_eq!(lead.source_id.as_deref(), Some("ext-42"));
    assert_eq!(
        lead.logo_url.as_deref(),
        Some("https://acme.example/logo.png")
    );
    assert_eq!(lead.status.as_deref(), Some("qualified"));

    assert_eq!(lead.attributes.len(), 5, "{:?}", lead.attributes);
    let expected: [(&str, &str, serde_json::Value); 5] = [
        ("industry", "text", json!("Food")),
        ("employees", "number", json!(500.0)),
        ("verified", "bool", json!(true)),
        ("products", "list", json!(["bread", "cake"])),
        (
            "social",
            "object",
            json!({"linkedin": "https://linkedin.example/acme"}),
        ),
    ];
    for (n, ty, value) in expected {
        let a = attr(lead, n);
        assert!(!a.id.is_empty(), "attribute {n} has an empty id");
        assert_eq!(a.attr_type, ty, "type of attribute {n}");
        if ty == "number" {
            // 500.0 and 500 are the same JSON number; the store may keep either spelling.
            assert_eq!(a.value.as_f64(), Some(500.0), "value of attribute {n}");
        } else {
            assert_eq!(a.value, value, "value of attribute {n}");
        }
    }
    let ids: HashSet<&str> = lead.attributes.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids.len(), 5, "attribute ids are unique");
}

/// Creates `n` minimal leads one after the other; returns their ids in creation order.
async fn create_many(client: &Client, prefix: &str, n: usize) -> Vec<String> {
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let resp = client
            .leads()
            .create(minimal_input(&format!("{prefix} {i:03}")))
            .await
            .expect("create lead");
        ids.push(resp.id);
    }
    ids
}

/// Checks the per-page invariants of `GET /leads` (wire-contract §3.5, §7).
fn check_page(page: &klozeo_sdk::ListResult, limit: Option<u32>, context: &str) {
    assert_eq!(
        page.count as usize,
        page.leads.len(),
        "{context}: count must equal the number of leads on the page"
    );
    let cursor_present = page.next_cursor.as_deref().is_some_and(|c| !c.is_empty());
    assert_eq!(
        page.has_more, cursor_present,
        "{context}: has_more must be true exactly when next_cursor is a non-empty string (got has_more={}, next_cursor={:?})",
        page.has_more, page.next_cursor
    );
    if !page.has_more {
        assert!(
            page.next_cursor.is_none(),
            "{context}: last page must send next_cursor null, got {:?}",
            page.next_cursor
        );
    }
    if let Some(limit) = limit {
        assert!(
            page.leads.len() <= limit as usize,
            "{context}: {} leads on a page with limit {limit}",
            page.leads.len()
        );
    }
    if page.has_more {
        assert!(
            !page.leads.is_empty(),
            "{context}: a page with has_more must not be empty"
        );
    }
}

/// Walks every page with `list` (not `stream`), checking invariants; returns the leads in
/// order and the size of each page.
async fn list_all(
    client: &Client,
    sort: Option<(SortField, SortOrder)>,
    limit: Option<u32>,
) -> (Vec<LeadResponse>, Vec<usize>) {
    let mut out = Vec::new();
    let mut sizes = Vec::new();
    let mut cursor: Option<String> = None;
    for page_no in 0..10_000 {
        let mut b = ListOptions::builder();
        if let Some((f, o)) = sort.clone() {
            b = b.sort(f, o);
        }
        if let Some(l) = limit {
            b = b.limit(l);
        }
        if let Some(c) = cursor.take() {
            b = b.cursor(c);
        }
        let page = client
            .leads()
            .list(b.build())
            .await
            .unwrap_or_else(|e| panic!("list page {page_no}: {e:?}"));
        check_page(&page, limit, &format!("page {page_no}"));
        sizes.push(page.leads.len());
        out.extend(page.leads);
        if !page.has_more {
            return (out, sizes);
        }
        cursor = page.next_cursor;
    }
    panic!("paging did not end after 10,000 pages");
}

/// Runs `stream()` to the end, failing on the first error.
async fn stream_all(client: &Client, opts: ListOptions) -> Vec<LeadResponse> {
    let leads = client.leads();
    let items: Vec<Result<LeadResponse, Error>> = leads.stream(opts).collect().await;
    items
        .into_iter()
        .enumerate()
        .map(|(i, r)| r.unwrap_or_else(|e| panic!("stream item {i}: {e:?}")))
        .collect()
}

fn ids_of(leads: &[LeadResponse]) -> Vec<String> {
    leads.iter().map(|l| l.id.clone()).collect()
}

/// Asserts the ids are pairwise distinct and form exactly the set `expected`.
fn assert_each_once(got: &[String], expected: &[String], context: &str) {
    let set: HashSet<&String> = got.iter().collect();
    assert_eq!(set.len(), got.len(), "{context}: a lead came back twice");
    let want: HashSet<&String> = expected.iter().collect();
    assert_eq!(
        set, want,
        "{context}: the leads returned differ from the leads created"
    );
}

/// Asserts `(created_at, id)` strictly increases (ASC) or strictly decreases (DESC).
fn assert_created_order(leads: &[LeadResponse], order: SortOrder, context: &str) {
    for w in leads.windows(2) {
        let a = (w[0].created_at, w[0].id.as_str());
        let b = (w[1].created_at, w[1].id.as_str());
        let ok = match order {
            SortOrder::Asc => a < b,
            SortOrder::Desc => a > b,
        };
        assert!(ok, "{context}: {a:?} then {b:?} is not in {order:?} order");
    }
}

// ─── create / get ──────────────────────────────────────────────────────────

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_with_every_field_then_get_returns_every_field() {
    for backend in backends() {
        let (_server, client) = setup(backend).await;
        let before = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs() as i64;

        let created = client
            .leads()
            .create(full_input("Acme Bakery"))
            .await
            .expect("create with every field");
        assert!(
            created.id.starts_with("cl_"),
            "{backend:?}: id {}",
            created.id
        );
        assert!(!created.message.is_empty(), "{backend:?}: empty message");
        assert!(
            (before - 5..=before + 60).contains(&created.created_at),
            "{backend:?}: created_at {} is not around now ({before})",
            created.created_at
        );
        assert_ne!(created.duplicate, Some(true), "{backend:?}: not a merge");

        let lead = client.leads().get(&created.id).await.expect("get");
        assert_eq!(lead.id, created.id);
        assert_full_fields(&lead, "Acme Bakery");
        assert_eq!(lead.score, 0.0, "{backend:?}: no scoring rules, score 0");
        assert_eq!(lead.created_at, created.created_at);
        assert_eq!(lead.updated_at, lead.created_at);
        assert_eq!(lead.last_interaction_at, lead.created_at);

        // The list item is the same full lead.
        let page = client
            .leads()
            .list(ListOptions::default())
            .await
            .expect("list");
        check_page(&page, None, "list after create");
        assert_eq!(page.leads.len(), 1, "{backend:?}");
        assert_same_lead(&page.leads[0], &lead, "list item equals get");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_minimal_lead_gets_defaults() {
    for backend in backends() {
        let (_server, client) = setup(backend).await;
        let created = client
            .leads()
            .create(minimal_input("Bare"))
            .await
            .expect("create minimal");
        let lead = client.leads().get(&created.id).await.expect("get");
        assert_eq!(lead.name, "Bare", "{backend:?}");
        assert_eq!(lead.source, "import");
        assert_eq!(lead.status.as_deref(), Some("new"), "default status");
        assert!(lead.tags.is_empty());
        assert!(lead.attributes.is_empty());
        assert_eq!(lead.score, 0.0);
        for (field, v) in [
            ("description", &lead.description),
            ("address", &lead.address),
            ("city", &lead.city),
            ("state", &lead.state),
            ("country", &lead.country),
            ("postal_code", &lead.postal_code),
            ("phone", &lead.phone),
            ("email", &lead.email),
            ("website", &lead.website),
            ("category", &lead.category),
            ("source_id", &lead.source_id),
            ("logo_url", &lead.logo_url),
        ] {
            assert_eq!(v, &None, "{backend:?}: {field} must be absent");
        }
        assert_eq!(lead.latitude, None);
        assert_eq!(lead.longitude, None);
        assert_eq!(lead.rating, None);
        assert_eq!(lead.review_count, None);
    }
}

// ─── update ────────────────────────────────────────────────────────────────

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_changes_only_the_given_fields() {
    for backend in backends() {
        let (server, client) = setup(backend).await;
        let created = client
            .leads()
            .create(full_input("Acme Bakery"))
            .await
            .expect("create");
        let before = client.leads().get(&created.id).await.expect("get");

        // Move the server's clock so a moved `updated_at` is visible.
        server.clock.advance_secs(5);

        let updated = client
            .leads()
            .update(
                &created.id,
                UpdateLeadInput::builder()
                    .name("Acme Bakery & Café")
                    .city("Hamburg")
                    .rating(3.5)
                    .review_count(7)
                    .tags(vec!["churned".into()])
                    .status("contacted")
                    .email("new@acme.example")
                    .latitude(53.5511)
                    .build(),
            )
            .await
            .expect("update");

        // Changed fields changed.
        assert_eq!(updated.id, created.id, "{backend:?}");
        assert_eq!(updated.name, "Acme Bakery & Café");
        assert_eq!(updated.city.as_deref(), Some("Hamburg"));
        assert_eq!(updated.rating, Some(3.5));
        assert_eq!(updated.review_count, Some(7));
        assert_eq!(updated.tags, vec!["churned".to_string()]);
        assert_eq!(updated.status.as_deref(), Some("contacted"));
        assert_eq!(updated.email.as_deref(), Some("new@acme.example"));
        assert_eq!(updated.latitude, Some(53.5511));

        // Everything else stayed.
        assert_eq!(updated.source, before.source);
        assert_eq!(updated.description, before.description);
        assert_eq!(updated.address, before.address);
        assert_eq!(updated.state, before.state);
        assert_eq!(updated.country, before.country);
        assert_eq!(updated.postal_code, before.postal_code);
        assert_eq!(updated.longitude, before.longitude);
        assert_eq!(updated.phone, before.phone);
        assert_eq!(updated.website, before.website);
        assert_eq!(updated.category, before.category);
        assert_eq!(updated.source_id, before.source_id);
        assert_eq!(updated.logo_url, before.logo_url);
        assert_eq!(updated.score, before.score);
        assert_eq!(
            format!("{:?}", updated.attributes),
            format!("{:?}", before.attributes),
            "{backend:?}: attributes (with their ids) are untouched by an update"
        );

        // Timestamps.
        assert_eq!(updated.created_at, before.created_at, "created_at is fixed");
        assert!(updated.updated_at >= updated.created_at);
        assert_eq!(
            updated.updated_at,
            before.updated_at + 5,
            "{backend:?}: updated_at must move to the time of the change"
        );
        assert!(updated.last_interaction_at >= updated.updated_at);

        // The answer is what is stored.
        let stored = client.leads().get(&created.id).await.expect("get again");
        assert_same_lead(&stored, &updated, "get after update equals update answer");

        // A second, single-field update keeps the first one's changes.
        let again = client
            .leads()
            .update(
                &created.id,
                UpdateLeadInput::builder().description("Now bigger").build(),
            )
            .await
            .expect("second update");
        assert_eq!(again.description.as_deref(), Some("Now bigger"));
        assert_eq!(again.name, "Acme Bakery & Café");
        assert_eq!(again.city.as_deref(), Some("Hamburg"));
        assert_eq!(again.tags, vec!["churned".to_string()]);
        assert_eq!(again.status.as_deref(), Some("contacted"));
        assert!(again.updated_at >= updated.updated_at);
    }
}

// ─── delete ────────────────────────────────────────────────────────────────

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_then_get_is_not_found() {
    for backend in backends() {
        let (_server, client) = setup(backend).await;
        let keep = client
            .leads()
            .create(minimal_input("Keep"))
            .await
            .expect("create keep");
        let gone = client
            .leads()
            .create(full_input("Gone"))
            .await
            .expect("create gone");

        client.leads().delete(&gone.id).await.expect("delete");

        let err = client
            .leads()
            .get(&gone.id)
            .await
            .expect_err("get after delete");
        assert!(
            matches!(err, Error::NotFound),
            "{backend:?}: get after delete: {err:?}"
        );
        let err = client
            .leads()
            .delete(&gone.id)
            .await
            .expect_err("second delete");
        assert!(
            matches!(err, Error::NotFound),
            "{backend:?}: second delete: {err:?}"
        );
        let err = client
            .leads()
            .update(&gone.id, UpdateLeadInput::builder().city("X").build())
            .await
            .expect_err("update after delete");
        assert!(
            matches!(err, Error::NotFound),
            "{backend:?}: update after delete: {err:?}"
        );

        // The other lead is untouched and is the only one listed.
        client
            .leads()
            .get(&keep.id)
            .await
            .expect("other lead stays");
        let (all, _) = list_all(&client, None, None).await;
        assert_eq!(ids_of(&all), vec![keep.id.clone()], "{backend:?}");
    }
}

// ─── list / paging ─────────────────────────────────────────────────────────

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_pages_with_limit_and_cursor() {
    for backend in backends() {
        let (_server, client) = setup(backend).await;

        // Empty account: one empty last page.
        let empty = client
            .leads()
            .list(ListOptions::builder().limit(5).build())
            .await
            .expect("list empty");
        check_page(&empty, Some(5), "empty account");
        assert!(empty.leads.is_empty() && !empty.has_more, "{backend:?}");

        let ids = create_many(&client, "Page", 12).await;

        // limit=5 → 5 + 5 + 2, walking the cursor by hand.
        let (all, sizes) = list_all(&client, None, Some(5)).await;
        assert_eq!(sizes, vec![5, 5, 2], "{backend:?}: page sizes");
        assert_each_once(&ids_of(&all), &ids, "limit=5");
        assert_eq!(
            ids_of(&all),
            ids,
            "{backend:?}: default order is creation order"
        );

        // The first page by hand: has_more with a cursor, then the cursor leads on.
        let first = client
            .leads()
            .list(ListOptions::builder().limit(5).build())
            .await
            .expect("first page");
        assert!(first.has_more, "{backend:?}");
        let cursor = first.next_cursor.clone().expect("cursor on page 1");
        let second = client
            .leads()
            .list(
                ListOptions::builder()
                    .limit(5)
                    .cursor(cursor.clone())
                    .build(),
            )
            .await
            .expect("second page");
        check_page(&second, Some(5), "second page");
        assert_eq!(
            ids_of(&second.leads),
            ids_of(&all[5..10]),
            "{backend:?}: page 2 continues page 1"
        );
        // The same cursor gives the same page again.
        let second_again = client
            .leads()
            .list(ListOptions::builder().limit(5).cursor(cursor).build())
            .await
            .expect("second page again");
        assert_eq!(ids_of(&second_again.leads), ids_of(&second.leads));

        // A page exactly as large as what is left ends the listing.
        let (exact, sizes) = list_all(&client, None, Some(12)).await;
        assert_eq!(sizes, vec![12], "{backend:?}: limit = total is one page");
        assert_each_once(&ids_of(&exact), &ids, "limit=12");

        // Larger limit and default limit: one page, nothing more.
        let (big, sizes) = list_all(&client, None, Some(100)).await;
        assert_eq!(sizes, vec![12]);
        assert_each_once(&ids_of(&big), &ids, "limit=100");
        let (default, sizes) = list_all(&client, None, None).await;
        assert_eq!(sizes, vec![12], "{backend:?}: default limit is 50");
        assert_each_once(&ids_of(&default), &ids, "default limit");

        // limit=1 walks one lead at a time.
        let (ones, sizes) = list_all(&client, None, Some(1)).await;
        assert_eq!(sizes, vec![1; 12]);
        assert_eq!(ids_of(&ones), ids_of(&all), "{backend:?}: stable order");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_yields_every_lead_exactly_once() {
    for backend in backends() {
        let (_server, client) = setup(backend).await;

        let none = stream_all(&client, ListOptions::builder().limit(4).build()).await;
        assert!(
            none.is_empty(),
            "{backend:?}: empty account streams nothing"
        );

        let ids = create_many(&client, "Stream", 25).await;

        for limit in [4u32, 5, 25, 1000] {
            let got = stream_all(&client, ListOptions::builder().limit(limit).build()).await;
            assert_eq!(got.len(), 25, "{backend:?}: limit {limit}");
            assert_each_once(&ids_of(&got), &ids, &format!("stream limit {limit}"));
            assert_created_order(&got, SortOrder::Asc, "stream default order");
            assert_eq!(ids_of(&got), ids, "{backend:?}: stream in creation order");
        }

        let desc = stream_all(
            &client,
            ListOptions::builder()
                .sort(SortField::CreatedAt, SortOrder::Desc)
                .limit(4)
                .build(),
        )
        .await;
        assert_each_once(&ids_of(&desc), &ids, "stream DESC");
        assert_created_order(&desc, SortOrder::Desc, "stream DESC");

        // The default page size streams everything too.
        let default = stream_all(&client, ListOptions::default()).await;
        assert_each_once(&ids_of(&default), &ids, "stream default limit");
    }
}

// ─── sorting ───────────────────────────────────────────────────────────────

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sort_by_created_at_asc_and_desc() {
    for backend in backends() {
        let (server, client) = setup(backend).await;
        // Nine leads over three seconds: ties within a second are broken by id.
        let mut ids = Vec::new();
        for _ in 0..3 {
            ids.extend(create_many(&client, "Sort", 3).await);
            server.clock.advance_secs(1);
        }

        let (asc, _) = list_all(&client, Some((SortField::CreatedAt, SortOrder::Asc)), None).await;
        assert_each_once(&ids_of(&asc), &ids, "ASC");
        assert_created_order(&asc, SortOrder::Asc, "created_at ASC");
        assert_eq!(
            ids_of(&asc),
            ids,
            "{backend:?}: created_at ASC lists leads in creation order"
        );
        let seconds: HashSet<i64> = asc.iter().map(|l| l.created_at).collect();
        assert_eq!(seconds.len(), 3, "{backend:?}: three distinct created_at");

        let (desc, _) =
            list_all(&client, Some((SortField::CreatedAt, SortOrder::Desc)), None).await;
        assert_each_once(&ids_of(&desc), &ids, "DESC");
        assert_created_order(&desc, SortOrder::Desc, "created_at DESC");
        let mut reversed = ids_of(&asc);
        reversed.reverse();
        assert_eq!(ids_of(&desc), reversed, "{backend:?}: DESC is ASC reversed");

        // Paging keeps the order in both directions.
        let (asc_paged, _) = list_all(
            &client,
            Some((SortField::CreatedAt, SortOrder::Asc)),
            Some(2),
        )
        .await;
        assert_eq!(ids_of(&asc_paged), ids_of(&asc), "{backend:?}: ASC paged");
        let (desc_paged, _) = list_all(
            &client,
            Some((SortField::CreatedAt, SortOrder::Desc)),
            Some(2),
        )
        .await;
        assert_eq!(
            ids_of(&desc_paged),
            ids_of(&desc),
            "{backend:?}: DESC paged"
        );

        // No sort parameters: created_at ASC (the documented default).
        let (default, _) = list_all(&client, None, Some(4)).await;
        assert_eq!(ids_of(&default), ids_of(&asc), "{backend:?}: default order");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sort_by_name_and_rating() {
    for backend in backends() {
        let (_server, client) = setup(backend).await;
        let rows: [(&str, Option<f64>); 6] = [
            ("delta", Some(4.5)),
            ("Alpha", Some(3.0)),
            ("charlie", None),
            ("Echo", Some(5.0)),
            ("bravo", Some(1.5)),
            ("foxtrot", Some(4.0)),
        ];
        for (name, rating) in rows {
            let mut b = LeadInput::builder().name(name).source("import");
            if let Some(r) = rating {
                b = b.rating(r);
            }
            client.leads().create(b.build()).await.expect("create");
        }
        let names = |leads: &[LeadResponse]| -> Vec<String> {
            leads.iter().map(|l| l.name.clone()).collect::<Vec<_>>()
        };

        // Name, case-insensitive, through several pages.
        let (asc, _) = list_all(&client, Some((SortField::Name, SortOrder::Asc)), Some(2)).await;
        assert_eq!(
            names(&asc),
            ["Alpha", "bravo", "charlie", "delta", "Echo", "foxtrot"],
            "{backend:?}: name ASC"
        );
        let (desc, _) = list_all(&client, Some((SortField::Name, SortOrder::Desc)), Some(4)).await;
        assert_eq!(
            names(&desc),
            ["foxtrot", "Echo", "delta", "charlie", "bravo", "Alpha"],
            "{backend:?}: name DESC"
        );

        // Rating; the lead without a rating comes last in both directions.
        let ratings = |leads: &[LeadResponse]| -> Vec<Option<f64>> {
            leads.iter().map(|l| l.rating).collect::<Vec<_>>()
        };
        let (asc, _) = list_all(&client, Some((SortField::Rating, SortOrder::Asc)), Some(4)).await;
        assert_eq!(
            ratings(&asc),
            [Some(1.5), Some(3.0), Some(4.0), Some(4.5), Some(5.0), None],
            "{backend:?}: rating ASC"
        );
        let (desc, _) =
            list_all(&client, Some((SortField::Rating, SortOrder::Desc)), Some(5)).await;
        assert_eq!(
            ratings(&desc),
            [Some(5.0), Some(4.5), Some(4.0), Some(3.0), Some(1.5), None],
            "{backend:?}: rating DESC"
        );

        // The stream pages through a non-key sort too.
        let streamed = stream_all(
            &client,
            ListOptions::builder()
                .sort(SortField::Name, SortOrder::Asc)
                .limit(4)
                .build(),
        )
        .await;
        assert_eq!(
            names(&streamed),
            ["Alpha", "bravo", "charlie", "delta", "Echo", "foxtrot"],
            "{backend:?}: stream name ASC"
        );
    }
}

// ─── errors ────────────────────────────────────────────────────────────────

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_map_to_the_sdk_error_variants() {
    for backend in backends() {
        let (server, client) = setup(backend).await;
        let lead = client
            .leads()
            .create(full_input("Err"))
            .await
            .expect("create");

        // Missing ids → NotFound, for every call that takes an id.
        for id in [MISSING_ID, "cl_nope", "not-a-lead-id"] {
            let e = client.leads().get(id).await.expect_err("get missing");
            assert!(matches!(e, Error::NotFound), "{backend:?}: get {id}: {e:?}");
            let e = client
                .leads()
                .update(id, UpdateLeadInput::builder().city("X").build())
                .await
                .expect_err("update missing");
            assert!(
                matches!(e, Error::NotFound),
                "{backend:?}: update {id}: {e:?}"
            );
            let e = client.leads().delete(id).await.expect_err("delete missing");
            assert!(
                matches!(e, Error::NotFound),
                "{backend:?}: delete {id}: {e:?}"
            );
        }

        // Bad keys → Unauthorized, for every call.
        for key in [UNKNOWN_KEY, "not-a-key"] {
            let bad = sdk(&server, key);
            let e = bad.leads().get(&lead.id).await.expect_err("get bad key");
            assert!(
                matches!(e, Error::Unauthorized),
                "{backend:?}: get with {key}: {e:?}"
            );
            let e = bad
                .leads()
                .list(ListOptions::default())
                .await
                .expect_err("list bad key");
            assert!(
                matches!(e, Error::Unauthorized),
                "{backend:?}: list with {key}: {e:?}"
            );
            let e = bad
                .leads()
                .create(minimal_input("Intruder"))
                .await
                .expect_err("create bad key");
            assert!(
                matches!(e, Error::Unauthorized),
                "{backend:?}: create with {key}: {e:?}"
            );
            let e = bad
                .leads()
                .update(&lead.id, UpdateLeadInput::builder().city("X").build())
                .await
                .expect_err("update bad key");
            assert!(
                matches!(e, Error::Unauthorized),
                "{backend:?}: update with {key}: {e:?}"
            );
            let e = bad
                .leads()
                .delete(&lead.id)
                .await
                .expect_err("delete bad key");
            assert!(
                matches!(e, Error::Unauthorized),
                "{backend:?}: delete with {key}: {e:?}"
            );
            let items: Vec<_> = bad
                .leads()
                .stream(ListOptions::default())
                .collect::<Vec<_>>()
                .await;
            assert_eq!(items.len(), 1, "{backend:?}: stream ends after the error");
            assert!(
                matches!(items[0], Err(Error::Unauthorized)),
                "{backend:?}: stream with {key}: {:?}",
                items[0]
            );
        }

        // Invalid status → BadRequest with a message, on create and on update.
        let e = client
            .leads()
            .create(
                LeadInput::builder()
                    .name("Bad status")
                    .source("import")
                    .status("on_fire")
                    .build(),
            )
            .await
            .expect_err("create with invalid status");
        match &e {
            Error::BadRequest(msg) => {
                assert!(msg.contains("status"), "{backend:?}: message {msg:?}")
            }
            other => panic!("{backend:?}: create with invalid status: {other:?}"),
        }
        let e = client
            .leads()
            .update(
                &lead.id,
                UpdateLeadInput::builder()
                    .status("on_fire")
                    .city("Nowhere")
                    .build(),
            )
            .await
            .expect_err("update with invalid status");
        match &e {
            Error::BadRequest(msg) => {
                assert!(msg.contains("status"), "{backend:?}: message {msg:?}")
            }
            other => panic!("{backend:?}: update with invalid status: {other:?}"),
        }

        // Empty name → BadRequest.
        let e = client
            .leads()
            .create(LeadInput::builder().name("").source("import").build())
            .await
            .expect_err("create with empty name");
        assert!(
            matches!(e, Error::BadRequest(_)),
            "{backend:?}: empty name: {e:?}"
        );

        // Nothing of the rejected requests was written.
        let stored = client.leads().get(&lead.id).await.expect("get");
        assert_full_fields(&stored, "Err");
        let (all, _) = list_all(&client, None, None).await;
        assert_eq!(
            ids_of(&all),
            vec![lead.id.clone()],
            "{backend:?}: only the valid lead exists"
        );
    }
}

// ─── tenant isolation ──────────────────────────────────────────────────────

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_account_cannot_see_or_change_a_lead() {
    for backend in backends() {
        let (server, owner) = setup(backend).await;
        let other_key = server.account("unlimited").await;
        let other = sdk(&server, &other_key);

        let lead = owner
            .leads()
            .create(full_input("Private"))
            .await
            .expect("create");
        let theirs = other
            .leads()
            .create(minimal_input("Theirs"))
            .await
            .expect("create in second account");

        let e = other.leads().get(&lead.id).await.expect_err("foreign get");
        assert!(matches!(e, Error::NotFound), "{backend:?}: get: {e:?}");
        let e = other
            .leads()
            .update(&lead.id, UpdateLeadInput::builder().name("Hacked").build())
            .await
            .expect_err("foreign update");
        assert!(matches!(e, Error::NotFound), "{backend:?}: update: {e:?}");
        let e = other
            .leads()
            .delete(&lead.id)
            .await
            .expect_err("foreign delete");
        assert!(matches!(e, Error::NotFound), "{backend:?}: delete: {e:?}");

        // Each account lists and streams only its own lead.
        let (mine, _) = list_all(&owner, None, None).await;
        assert_eq!(ids_of(&mine), vec![lead.id.clone()], "{backend:?}");
        let (their_list, _) = list_all(&other, None, None).await;
        assert_eq!(ids_of(&their_list), vec![theirs.id.clone()], "{backend:?}");
        let streamed = stream_all(&other, ListOptions::builder().limit(1).build()).await;
        assert_eq!(ids_of(&streamed), vec![theirs.id.clone()], "{backend:?}");

        // The owner's lead is unchanged; the owner cannot reach the other lead either.
        let stored = owner.leads().get(&lead.id).await.expect("owner get");
        assert_full_fields(&stored, "Private");
        let e = owner
            .leads()
            .get(&theirs.id)
            .await
            .expect_err("reverse get");
        assert!(matches!(e, Error::NotFound), "{backend:?}: reverse: {e:?}");

        // A cursor from one account does not reveal the other account's leads.
        create_many(&owner, "More", 3).await;
        let page = owner
            .leads()
            .list(ListOptions::builder().limit(1).build())
            .await
            .expect("owner page");
        let cursor = page.next_cursor.expect("owner has more pages");
        match other
            .leads()
            .list(ListOptions::builder().limit(10).cursor(cursor).build())
            .await
        {
            Ok(p) => {
                check_page(&p, Some(10), "foreign cursor");
                for l in &p.leads {
                    assert_eq!(l.id, theirs.id, "{backend:?}: foreign cursor leaked {l:?}");
                }
            }
            Err(Error::BadRequest(_)) => {}
            Err(e) => panic!("{backend:?}: foreign cursor: {e:?}"),
        }
    }
}

// ─── 1,000 leads ───────────────────────────────────────────────────────────

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_leads_page_through_with_limit_7() {
    const N: usize = 1000;
    const IN_FLIGHT: usize = 16;
    // The same 1,000-lead walk runs on DynamoDB in http_leads.rs; through the SDK the embedded
    // store is enough, which keeps the single-threaded emulator's share of the run short.
    for backend in [Backend::Embedded] {
        let (_server, client) = setup(backend).await;

        // Create through HTTP with the SDK, at most IN_FLIGHT requests at a time.
        let results: Vec<Result<String, Error>> = futures_util::stream::iter(0..N)
            .map(|i| {
                let client = client.clone();
                async move {
                    client
                        .leads()
                        .create(
                            LeadInput::builder()
                                .name(format!("Bulk {i:04}"))
                                .source("import")
                                .city(if i % 2 == 0 { "Berlin" } else { "Paris" })
                                .rating((i % 50) as f64 / 10.0)
                                .build(),
                        )
                        .await
                        .map(|r| r.id)
                }
            })
            .buffer_unordered(IN_FLIGHT)
            .collect()
            .await;
        let mut ids = Vec::with_capacity(N);
        for (i, r) in results.into_iter().enumerate() {
            ids.push(r.unwrap_or_else(|e| panic!("{backend:?}: concurrent create #{i}: {e:?}")));
        }
        let unique: HashSet<&String> = ids.iter().collect();
        assert_eq!(unique.len(), N, "{backend:?}: created ids are unique");

        // created_at ASC, 7 at a time, through the cursor.
        let (asc, sizes) = list_all(
            &client,
            Some((SortField::CreatedAt, SortOrder::Asc)),
            Some(7),
        )
        .await;
        assert_eq!(sizes.len(), N.div_ceil(7), "{backend:?}: number of pages");
        assert!(
            sizes[..sizes.len() - 1].iter().all(|&s| s == 7),
            "{backend:?}: every page but the last is full: {sizes:?}"
        );
        assert_eq!(sizes[sizes.len() - 1], N % 7, "{backend:?}: last page");
        assert_each_once(&ids_of(&asc), &ids, "1,000 leads ASC");
        for w in asc.windows(2) {
            assert!(
                w[0].id < w[1].id,
                "{backend:?}: ids must strictly increase for created_at ASC: {} then {}",
                w[0].id,
                w[1].id
            );
            assert!(w[0].created_at <= w[1].created_at, "{backend:?}");
        }

        // The same listing again is identical (stable order).
        let (again, _) = list_all(
            &client,
            Some((SortField::CreatedAt, SortOrder::Asc)),
            Some(7),
        )
        .await;
        assert_eq!(ids_of(&again), ids_of(&asc), "{backend:?}: stable order");

        // stream() with limit 7, newest first: exactly the reverse.
        let desc = stream_all(
            &client,
            ListOptions::builder()
                .sort(SortField::CreatedAt, SortOrder::Desc)
                .limit(7)
                .build(),
        )
        .await;
        let mut reversed = ids_of(&asc);
        reversed.reverse();
        assert_eq!(ids_of(&desc), reversed, "{backend:?}: stream DESC");
    }
}
