//! Compatibility tests with the official Rust SDK (`klozeo = "=0.1.5"`, renamed `klozeo_sdk`)
//! for the filter builders, sorting with filters, the batch calls, deduplication through
//! `create`, and 429 handling. Every test runs the real server on a loopback port over every
//! backend of the run (see `klozeo_tests`) with a fresh account, so the expected result of each
//! filter is an exact set of lead names.
//!
//! Every builder of `klozeo_sdk::filters` is exercised with every operator it emits, with AND
//! and OR logic: `name city country state category source email phone website` × `eq neq
//! contains not_contains is_empty is_not_empty`; `rating review_count` × `eq neq gt gte lt lte`
//! (the SDK writes `f64` with `Display`: `4` and `0.0000001`); `tags` × `contains not_contains
//! is_empty is_not_empty`; `location` × `within_radius is_set is_not_set`; `attr(name)` × `eq
//! neq contains eq_number gt gte lt lte`. The Python SDK's spellings (`4.0`, `1e-07`, `50.0`)
//! are sent through the same client with a hand-written [`Filter`].
//!
//! Semantics pinned for a lead without the field or attribute: it matches `neq`,
//! `not_contains`, `array_not_contains`, `is_empty` and `is_not_set`, and nothing else.

use crate::common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::sdk_with as sdk;
use futures_util::StreamExt;
use klozeo_sdk::filters::{
    self as f, AttrFilterBuilder, Filter, GenericFilter, LocationFilterBuilder,
    NumberFilterBuilder, TagsFilterBuilder, TextFilterBuilder,
};
use klozeo_sdk::{
    Attribute, Client, Error, LeadInput, LeadResponse, ListOptions, SortField, SortOrder,
    UpdateLeadInput,
};
use klozeo_tests::{ManualClock, TestServer, backends};

/// A lead id of the right shape that does not exist.
const MISSING_ID: &str = "cl_01890a5d-ac96-774b-bcce-b302099a8057";

/// A value with dots, a comma, spaces and `&`.
const ST_LOUIS: &str = "St. Louis, MO & co";

const A: &str = "Alpha Bakery";
const B: &str = "Bravo Labs";
const C: &str = "Charlie Café";
const D: &str = "Delta";
const E: &str = "Echo";
const ALL: [&str; 5] = [A, B, C, D, E];

/// The burst plan of the test harness: 3 requests per 3 s.
const BURST_LIMIT: u64 = 3;

/// A server on `backend` and a retry-less SDK client for a fresh unlimited account.
async fn setup(backend: klozeo_tests::Backend) -> (TestServer, Client) {
    let server = TestServer::start(backend).await;
    let key = server.account("unlimited").await;
    let client = sdk(&server, &key, Some(0));
    (server, client)
}

/// A filter written by hand, as another SDK would send it (e.g. Python's `4.0`).
struct Raw(&'static str);

impl Filter for Raw {
    fn to_param(&self) -> String {
        self.0.to_string()
    }
}

/// One filter of a case: an SDK builder's output or a hand-written parameter.
#[derive(Clone)]
enum F {
    Sdk(GenericFilter),
    Raw(&'static str),
}

impl F {
    fn param(&self) -> String {
        match self {
            F::Sdk(g) => g.to_param(),
            F::Raw(s) => s.to_string(),
        }
    }
}

impl From<GenericFilter> for F {
    fn from(g: GenericFilter) -> Self {
        F::Sdk(g)
    }
}

fn options(
    filters: &[F],
    sort: Option<(SortField, SortOrder)>,
    limit: Option<u32>,
) -> klozeo_sdk::types::ListOptionsBuilder {
    let mut b = ListOptions::builder();
    for flt in filters {
        b = match flt.clone() {
            F::Sdk(g) => b.filter(g),
            F::Raw(s) => b.filter(Raw(s)),
        };
    }
    if let Some((field, order)) = sort {
        b = b.sort(field, order);
    }
    if let Some(l) = limit {
        b = b.limit(l);
    }
    b
}

/// Names through `list` pages of 2 (following the cursor) and through `stream`; checks the
/// page invariants on the way.
async fn names(
    client: &Client,
    filters: &[F],
    sort: Option<(SortField, SortOrder)>,
) -> Result<(Vec<String>, Vec<String>), String> {
    let mut paged = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..100 {
        let mut b = options(filters, sort.clone(), Some(2));
        if let Some(c) = cursor.take() {
            b = b.cursor(c);
        }
        let page = client
            .leads()
            .list(b.build())
            .await
            .map_err(|e| format!("list: {e:?}"))?;
        if page.count as usize != page.leads.len() || page.leads.len() > 2 {
            return Err(format!(
                "bad page: count {} with {} leads",
                page.count,
                page.leads.len()
            ));
        }
        let has_cursor = page.next_cursor.as_deref().is_some_and(|c| !c.is_empty());
        if page.has_more != has_cursor {
            return Err(format!(
                "has_more={} but next_cursor={:?}",
                page.has_more, page.next_cursor
            ));
        }
        paged.extend(page.leads.into_iter().map(|l| l.name));
        if !page.has_more {
            let leads = client.leads();
            let streamed: Vec<Result<LeadResponse, Error>> = leads
                .stream(options(filters, sort, None).build())
                .collect()
                .await;
            let mut s = Vec::new();
            for item in streamed {
                s.push(item.map_err(|e| format!("stream: {e:?}"))?.name);
            }
            return Ok((paged, s));
        }
        cursor = page.next_cursor;
    }
    Err("paging did not end after 100 pages".into())
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// A filter case: label, filters, expected names.
type Case = (String, Vec<F>, BTreeSet<String>);

fn case(label: &str, filters: Vec<F>, expected: BTreeSet<String>) -> Case {
    (label.to_string(), filters, expected)
}

fn one(label: &str, g: GenericFilter, expected: &[&str]) -> Case {
    case(label, vec![g.into()], set(expected))
}

/// Runs every case and panics with the list of every mismatch.
async fn check_cases(backend: klozeo_tests::Backend, client: &Client, cases: Vec<Case>) {
    let mut problems = Vec::new();
    let n = cases.len();
    for (label, filters, expected) in cases {
        let wire: Vec<String> = filters.iter().map(F::param).collect();
        match names(client, &filters, None).await {
            Err(e) => problems.push(format!("{label} {wire:?}: {e}")),
            Ok((paged, streamed)) => {
                let got: BTreeSet<String> = paged.iter().cloned().collect();
                if got.len() != paged.len() {
                    problems.push(format!("{label} {wire:?}: a lead came twice: {paged:?}"));
                }
                if got != expected {
                    problems.push(format!(
                        "{label} {wire:?}: expected {expected:?}, got {got:?}"
                    ));
                }
                if streamed != paged {
                    problems.push(format!(
                        "{label} {wire:?}: stream gave {streamed:?}, pages of 2 gave {paged:?}"
                    ));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{backend:?}: {} of {n} filter cases failed:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// Five leads; A–C have source `Web.Site & co`, D and E `api`.
///
/// | | city | country | state | category | email | phone | website | rating | reviews | tags | location | attributes |
/// |-|-|-|-|-|-|-|-|-|-|-|-|-|
/// | A | St. Louis, MO & co | US | MO | Food & Drink | alpha@example.com | +1 314-555-0101 | https://alpha.example.com | 4.0 | 120 | vip, b2b | Berlin | industry Software, employees 500, ratio 0.5, tier gold.plus |
/// | B | Berlin | DE | Berlin | Software | bravo@example.com | +49 30 1234567 | "" | 4.5 | 10 | b2b | Potsdam (~26 km) | industry Hardware, employees 50, ratio 1e-7 |
/// | C | Paris | FR | – | – | – | – | – | 1e-7 | 0 | – | – | industry Software Services, employees 4, ratio 0 |
/// | D | st. louis, mo & co | us | Missouri | Retail | delta@mail.example.org | +44 20 7946 0958 | https://delta.example.org/path?x=1&y=2 | – | – | vip, partner | Hamburg (~255 km) | – |
/// | E | – | – | – | – | – | – | – | 3.0 | 4 | churned | – | tier silver |
async fn create_dataset(client: &Client) {
    let web = "Web.Site & co";
    let rows = vec![
        LeadInput::builder()
            .name(A)
            .source(web)
            .city(ST_LOUIS)
            .country("US")
            .state("MO")
            .category("Food & Drink")
            .email("alpha@example.com")
            .phone("+1 314-555-0101")
            .website("https://alpha.example.com")
            .rating(4.0)
            .review_count(120)
            .tags(vec!["vip".into(), "b2b".into()])
            .latitude(52.52)
            .longitude(13.405)
            .attributes(vec![
                Attribute::text("industry", "Software"),
                Attribute::number("employees", 500.0),
                Attribute::number("ratio", 0.5),
                Attribute::text("tier", "gold.plus"),
            ])
            .build(),
        LeadInput::builder()
            .name(B)
            .source(web)
            .city("Berlin")
            .country("DE")
            .state("Berlin")
            .category("Software")
            .email("bravo@example.com")
            .phone("+49 30 1234567")
            .website("")
            .rating(4.5)
            .review_count(10)
            .tags(vec!["b2b".into()])
            .latitude(52.3906)
            .longitude(13.0645)
            .attributes(vec![
                Attribute::text("industry", "Hardware"),
                Attribute::number("employees", 50.0),
                Attribute::number("ratio", 1e-7),
            ])
            .build(),
        LeadInput::builder()
            .name(C)
            .source(web)
            .city("Paris")
            .country("FR")
            .rating(1e-7)
            .review_count(0)
            .attributes(vec![
                Attribute::text("industry", "Software Services"),
                Attribute::number("employees", 4.0),
                Attribute::number("ratio", 0.0),
            ])
            .build(),
        LeadInput::builder()
            .name(D)
            .source("api")
            .city(ST_LOUIS.to_lowercase())
            .country("us")
            .state("Missouri")
            .category("Retail")
            .email("delta@mail.example.org")
            .phone("+44 20 7946 0958")
            .website("https://delta.example.org/path?x=1&y=2")
            .tags(vec!["vip".into(), "partner".into()])
            .latitude(53.5511)
            .longitude(9.9937)
            .build(),
        LeadInput::builder()
            .name(E)
            .source("api")
            .rating(3.0)
            .review_count(4)
            .tags(vec!["churned".into()])
            .attributes(vec![Attribute::text("tier", "silver")])
            .build(),
    ];
    for row in rows {
        let name = row.name.clone();
        let resp = client
            .leads()
            .create(row)
            .await
            .expect("create dataset lead");
        assert_ne!(resp.duplicate, Some(true), "{name} was merged");
    }
}

/// The AND and OR entry points of the builder, behind one type.
#[derive(Clone, Copy, Debug)]
enum Root {
    And,
    Or,
}

impl Root {
    fn name(self) -> TextFilterBuilder {
        match self {
            Root::And => f::name(),
            Root::Or => f::or().name(),
        }
    }
    fn city(self) -> TextFilterBuilder {
        match self {
            Root::And => f::city(),
            Root::Or => f::or().city(),
        }
    }
    fn country(self) -> TextFilterBuilder {
        match self {
            Root::And => f::country(),
            Root::Or => f::or().country(),
        }
    }
    fn state(self) -> TextFilterBuilder {
        match self {
            Root::And => f::state(),
            Root::Or => f::or().state(),
        }
    }
    fn category(self) -> TextFilterBuilder {
        match self {
            Root::And => f::category(),
            Root::Or => f::or().category(),
        }
    }
    fn source(self) -> TextFilterBuilder {
        match self {
            Root::And => f::source(),
            Root::Or => f::or().source(),
        }
    }
    fn email(self) -> TextFilterBuilder {
        match self {
            Root::And => f::email(),
            Root::Or => f::or().email(),
        }
    }
    fn phone(self) -> TextFilterBuilder {
        match self {
            Root::And => f::phone(),
            Root::Or => f::or().phone(),
        }
    }
    fn website(self) -> TextFilterBuilder {
        match self {
            Root::And => f::website(),
            Root::Or => f::or().website(),
        }
    }
    fn rating(self) -> NumberFilterBuilder {
        match self {
            Root::And => f::rating(),
            Root::Or => f::or().rating(),
        }
    }
    fn review_count(self) -> NumberFilterBuilder {
        match self {
            Root::And => f::review_count(),
            Root::Or => f::or().review_count(),
        }
    }
    fn tags(self) -> TagsFilterBuilder {
        match self {
            Root::And => f::tags(),
            Root::Or => f::or().tags(),
        }
    }
    fn location(self) -> LocationFilterBuilder {
        match self {
            Root::And => f::location(),
            Root::Or => f::or().location(),
        }
    }
    fn attr(self, name: &str) -> AttrFilterBuilder {
        match self {
            Root::And => f::attr(name),
            Root::Or => f::or().attr(name),
        }
    }
}

/// Every builder × operator, written against a [`Root`], with the expected names.
/// A builder case: label, the filter written against a [`Root`], expected names.
type BuilderCase = (&'static str, fn(Root) -> GenericFilter, Vec<&'static str>);

fn builder_cases() -> Vec<BuilderCase> {
    vec![
        // name
        (
            "name eq (non-ASCII, case)",
            |r| r.name().eq("charlie CAFÉ"),
            vec![C],
        ),
        ("name neq", |r| r.name().neq("Delta"), vec![A, B, C, E]),
        (
            "name contains",
            |r| r.name().contains("a"),
            vec![A, B, C, D],
        ),
        (
            "name not_contains",
            |r| r.name().not_contains("LAB"),
            vec![A, C, D, E],
        ),
        ("name is_empty", |r| r.name().is_empty(), vec![]),
        (
            "name is_not_empty",
            |r| r.name().is_not_empty(),
            ALL.to_vec(),
        ),
        // city
        (
            "city eq . , & spaces",
            |r| r.city().eq(ST_LOUIS),
            vec![A, D],
        ),
        (
            "city eq upper",
            |r| r.city().eq(ST_LOUIS.to_uppercase()),
            vec![A, D],
        ),
        ("city neq", |r| r.city().neq(ST_LOUIS), vec![B, C, E]),
        (
            "city contains",
            |r| r.city().contains(". Louis, MO &"),
            vec![A, D],
        ),
        (
            "city not_contains",
            |r| r.city().not_contains("louis"),
            vec![B, C, E],
        ),
        ("city is_empty", |r| r.city().is_empty(), vec![E]),
        (
            "city is_not_empty",
            |r| r.city().is_not_empty(),
            vec![A, B, C, D],
        ),
        // country
        ("country eq", |r| r.country().eq("US"), vec![A, D]),
        ("country neq", |r| r.country().neq("us"), vec![B, C, E]),
        ("country contains", |r| r.country().contains("e"), vec![B]),
        (
            "country not_contains",
            |r| r.country().not_contains("u"),
            vec![B, C, E],
        ),
        ("country is_empty", |r| r.country().is_empty(), vec![E]),
        (
            "country is_not_empty",
            |r| r.country().is_not_empty(),
            vec![A, B, C, D],
        ),
        // state
        ("state eq", |r| r.state().eq("berlin"), vec![B]),
        ("state neq", |r| r.state().neq("MO"), vec![B, C, D, E]),
        ("state contains", |r| r.state().contains("mo"), vec![A]),
        (
            "state not_contains",
            |r| r.state().not_contains("i"),
            vec![A, C, E],
        ),
        ("state is_empty", |r| r.state().is_empty(), vec![C, E]),
        (
            "state is_not_empty",
            |r| r.state().is_not_empty(),
            vec![A, B, D],
        ),
        // category
        (
            "category eq &",
            |r| r.category().eq("food & drink"),
            vec![A],
        ),
        (
            "category neq",
            |r| r.category().neq("Software"),
            vec![A, C, D, E],
        ),
        (
            "category contains",
            |r| r.category().contains("& Dr"),
            vec![A],
        ),
        (
            "category not_contains",
            |r| r.category().not_contains("o"),
            vec![C, D, E],
        ),
        ("category is_empty", |r| r.category().is_empty(), vec![C, E]),
        (
            "category is_not_empty",
            |r| r.category().is_not_empty(),
            vec![A, B, D],
        ),
        // source
        (
            "source eq . &",
            |r| r.source().eq("web.site & CO"),
            vec![A, B, C],
        ),
        ("source neq", |r| r.source().neq("api"), vec![A, B, C]),
        (
            "source contains",
            |r| r.source().contains(".Site &"),
            vec![A, B, C],
        ),
        (
            "source not_contains",
            |r| r.source().not_contains("web"),
            vec![D, E],
        ),
        ("source is_empty", |r| r.source().is_empty(), vec![]),
        (
            "source is_not_empty",
            |r| r.source().is_not_empty(),
            ALL.to_vec(),
        ),
        // email
        (
            "email eq (case)",
            |r| r.email().eq("ALPHA@example.com"),
            vec![A],
        ),
        (
            "email neq",
            |r| r.email().neq("bravo@example.com"),
            vec![A, C, D, E],
        ),
        (
            "email contains",
            |r| r.email().contains("@example.com"),
            vec![A, B],
        ),
        (
            "email not_contains",
            |r| r.email().not_contains("@example.com"),
            vec![C, D, E],
        ),
        ("email is_empty", |r| r.email().is_empty(), vec![C, E]),
        (
            "email is_not_empty",
            |r| r.email().is_not_empty(),
            vec![A, B, D],
        ),
        // phone ('+' must not become a space)
        ("phone eq +", |r| r.phone().eq("+49 30 1234567"), vec![B]),
        (
            "phone neq",
            |r| r.phone().neq("+1 314-555-0101"),
            vec![B, C, D, E],
        ),
        (
            "phone contains +",
            |r| r.phone().contains("+49 30"),
            vec![B],
        ),
        (
            "phone not_contains",
            |r| r.phone().not_contains("+4"),
            vec![A, C, E],
        ),
        ("phone is_empty", |r| r.phone().is_empty(), vec![C, E]),
        (
            "phone is_not_empty",
            |r| r.phone().is_not_empty(),
            vec![A, B, D],
        ),
        // website (B sent "", which is not a value)
        (
            "website eq ? & =",
            |r| r.website().eq("https://delta.example.org/path?x=1&y=2"),
            vec![D],
        ),
        (
            "website neq",
            |r| r.website().neq("https://alpha.example.com"),
            vec![B, C, D, E],
        ),
        (
            "website contains",
            |r| r.website().contains(".org/path?x=1&y"),
            vec![D],
        ),
        (
            "website not_contains",
            |r| r.website().not_contains("alpha"),
            vec![B, C, D, E],
        ),
        (
            "website is_empty",
            |r| r.website().is_empty(),
            vec![B, C, E],
        ),
        (
            "website is_not_empty",
            |r| r.website().is_not_empty(),
            vec![A, D],
        ),
        // rating: A 4, B 4.5, C 1e-7, D none, E 3
        ("rating eq 4", |r| r.rating().eq(4.0), vec![A]),
        ("rating neq 4", |r| r.rating().neq(4.0), vec![B, C, D, E]),
        ("rating gt 4", |r| r.rating().gt(4.0), vec![B]),
        ("rating gte 4", |r| r.rating().gte(4.0), vec![A, B]),
        ("rating lt 4", |r| r.rating().lt(4.0), vec![C, E]),
        ("rating lte 4", |r| r.rating().lte(4.0), vec![A, C, E]),
        (
            "rating eq 1e-7 ('0.0000001')",
            |r| r.rating().eq(1e-7),
            vec![C],
        ),
        ("rating gt 1e-7", |r| r.rating().gt(1e-7), vec![A, B, E]),
        (
            "rating gte 1e-7",
            |r| r.rating().gte(1e-7),
            vec![A, B, C, E],
        ),
        ("rating lt 1e-7", |r| r.rating().lt(1e-7), vec![]),
        ("rating lte 1e-7", |r| r.rating().lte(1e-7), vec![C]),
        // review_count: A 120, B 10, C 0, D none, E 4
        ("review_count eq 0", |r| r.review_count().eq(0.0), vec![C]),
        (
            "review_count neq 10",
            |r| r.review_count().neq(10.0),
            vec![A, C, D, E],
        ),
        (
            "review_count gt 0",
            |r| r.review_count().gt(0.0),
            vec![A, B, E],
        ),
        (
            "review_count gte 10",
            |r| r.review_count().gte(10.0),
            vec![A, B],
        ),
        (
            "review_count lt 10",
            |r| r.review_count().lt(10.0),
            vec![C, E],
        ),
        (
            "review_count lte 10",
            |r| r.review_count().lte(10.0),
            vec![B, C, E],
        ),
        // tags
        ("tags contains", |r| r.tags().contains("vip"), vec![A, D]),
        (
            "tags contains b2b",
            |r| r.tags().contains("b2b"),
            vec![A, B],
        ),
        (
            "tags not_contains",
            |r| r.tags().not_contains("vip"),
            vec![B, C, E],
        ),
        ("tags is_empty", |r| r.tags().is_empty(), vec![C]),
        (
            "tags is_not_empty",
            |r| r.tags().is_not_empty(),
            vec![A, B, D, E],
        ),
        // location: A Berlin, B Potsdam ~26 km, D Hamburg ~255 km
        (
            "within_radius 50",
            |r| r.location().within_radius(52.52, 13.405, 50.0),
            vec![A, B],
        ),
        (
            "within_radius 10",
            |r| r.location().within_radius(52.52, 13.405, 10.0),
            vec![A],
        ),
        (
            "within_radius 300",
            |r| r.location().within_radius(52.52, 13.405, 300.0),
            vec![A, B, D],
        ),
        (
            "within_radius 1e-7 km",
            |r| r.location().within_radius(52.52, 13.405, 1e-7),
            vec![A],
        ),
        (
            "within_radius Hamburg",
            |r| r.location().within_radius(53.55, 10.0, 5.0),
            vec![D],
        ),
        ("location is_set", |r| r.location().is_set(), vec![A, B, D]),
        (
            "location is_not_set",
            |r| r.location().is_not_set(),
            vec![C, E],
        ),
        // attributes
        (
            "attr eq (case)",
            |r| r.attr("industry").eq("software"),
            vec![A],
        ),
        (
            "attr neq",
            |r| r.attr("industry").neq("Software"),
            vec![B, C, D, E],
        ),
        (
            "attr contains",
            |r| r.attr("industry").contains("SOFT"),
            vec![A, C],
        ),
        (
            "attr eq with a dot",
            |r| r.attr("tier").eq("gold.plus"),
            vec![A],
        ),
        (
            "attr contains a dot",
            |r| r.attr("tier").contains("d.p"),
            vec![A],
        ),
        (
            "attr neq with a dot",
            |r| r.attr("tier").neq("gold.plus"),
            vec![B, C, D, E],
        ),
        (
            "attr eq_number 500",
            |r| r.attr("employees").eq_number(500.0),
            vec![A],
        ),
        (
            "attr text eq on a number",
            |r| r.attr("employees").eq("500"),
            vec![A],
        ),
        ("attr gt 50", |r| r.attr("employees").gt(50.0), vec![A]),
        ("attr gte 50", |r| r.attr("employees").gte(50.0), vec![A, B]),
        ("attr lt 50", |r| r.attr("employees").lt(50.0), vec![C]),
        ("attr lte 50", |r| r.attr("employees").lte(50.0), vec![B, C]),
        ("attr gt 1e-7", |r| r.attr("ratio").gt(1e-7), vec![A]),
        ("attr gte 1e-7", |r| r.attr("ratio").gte(1e-7), vec![A, B]),
        ("attr lt 1e-7", |r| r.attr("ratio").lt(1e-7), vec![C]),
        ("attr lte 1e-7", |r| r.attr("ratio").lte(1e-7), vec![B, C]),
        (
            "attr eq_number 1e-7",
            |r| r.attr("ratio").eq_number(1e-7),
            vec![B],
        ),
        (
            "attr eq_number 0",
            |r| r.attr("ratio").eq_number(0.0),
            vec![C],
        ),
        ("attr nobody has", |r| r.attr("nope").eq("x"), vec![]),
    ]
}

// ─── filters ───────────────────────────────────────────────────────────────

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_builder_and_operator_with_and_logic() {
    for backend in backends() {
        let (_server, client) = setup(backend).await;
        create_dataset(&client).await;
        let mut cases: Vec<Case> = builder_cases()
            .into_iter()
            .map(|(label, build, expected)| {
                let g = build(Root::And);
                assert!(g.to_param().starts_with("and."), "{}", g.to_param());
                one(label, g, &expected)
            })
            .collect();
        // Several and-filters together, including equality filters the server can serve from
        // an index (city, source) combined with other predicates.
        cases.extend([
            case(
                "city eq + source eq",
                vec![f::city().eq(ST_LOUIS).into(), f::source().eq("api").into()],
                set(&[D]),
            ),
            case(
                "source eq + rating range",
                vec![
                    f::source().eq("Web.Site & co").into(),
                    f::rating().gt(1e-7).into(),
                    f::rating().lte(4.5).into(),
                ],
                set(&[A, B]),
            ),
            case(
                "tags vip + tags b2b",
                vec![
                    f::tags().contains("vip").into(),
                    f::tags().contains("b2b").into(),
                ],
                set(&[A]),
            ),
            case(
                "attr gte + attr lt",
                vec![
                    f::attr("employees").gte(4.0).into(),
                    f::attr("employees").lt(500.0).into(),
                ],
                set(&[B, C]),
            ),
        ]);
        check_cases(backend, &client, cases).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_sdks_number_spellings_reach_the_same_leads() {
    for backend in backends() {
        let (_server, client) = setup(backend).await;
        create_dataset(&client).await;
        let raw = |label: &str, p: &'static str, expected: &[&str]| {
            case(label, vec![F::Raw(p)], set(expected))
        };
        let cases = vec![
            // Python writes 4.0 and 1e-07; TypeScript 1e-7; Go like Rust.
            raw("PY rating eq 4.0", "and.eq.rating.4.0", &[A]),
            raw("PY rating gte 4.0", "and.gte.rating.4.0", &[A, B]),
            raw("PY rating gt 1e-07", "and.gt.rating.1e-07", &[A, B, E]),
            raw("TS rating lte 1e-7", "and.lte.rating.1e-7", &[C]),
            raw(
                "PY review_count lte 10.0",
                "and.lte.review_count.10.0",
                &[B, C, E],
            ),
            raw(
                "PY within_radius 50.0",
                "and.within_radius.location.52.52,13.405,50.0",
                &[A, B],
            ),
            raw(
                "PY attr eq_number 500.0",
                "and.eq.attr:employees.500.0",
                &[A],
            ),
            raw("PY attr gte 1e-07", "and.gte.attr:ratio.1e-07", &[A, B]),
            raw("PY or rating eq 1e-07", "or.eq.rating.1e-07", &[C]),
            raw(
                "GO trailing dot on is_not_empty",
                "and.is_not_empty.city.",
                &[A, B, C, D],
            ),
            raw(
                "GO trailing dot on array_empty",
                "and.array_empty.tags.",
                &[C],
            ),
        ];
        check_cases(backend, &client, cases).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_builder_and_operator_with_or_logic() {
    for backend in backends() {
        let (_server, client) = setup(backend).await;
        create_dataset(&client).await;
        let all = builder_cases();
        let mut cases = Vec::new();
        for (i, (label, build, expected)) in all.iter().enumerate() {
            let g = build(Root::Or);
            assert!(g.to_param().starts_with("or."), "{}", g.to_param());
            // A single or-filter matches like its and-twin.
            cases.push(one(&format!("OR {label}"), g.clone(), expected));
            // Two or-filters: the union.
            let (label2, build2, expected2) = &all[(i + 11) % all.len()];
            let mut union = set(expected);
            union.extend(set(expected2));
            cases.push(case(
                &format!("OR {label} | OR {label2}"),
                vec![g.into(), build2(Root::Or).into()],
                union,
            ));
        }
        // and + or: every and-filter holds and at least one or-filter.
        cases.extend([
            case(
                "rating gte 3 AND (city Paris OR tags vip)",
                vec![
                    f::rating().gte(3.0).into(),
                    f::or().city().eq("Paris").into(),
                    f::or().tags().contains("vip").into(),
                ],
                set(&[A]),
            ),
            case(
                "rating gt 0 AND (tags churned OR attr employees eq 4)",
                vec![
                    f::rating().gt(0.0).into(),
                    f::or().tags().contains("churned").into(),
                    f::or().attr("employees").eq_number(4.0).into(),
                ],
                set(&[C, E]),
            ),
            case(
                "source eq AND (within 50 km OR is_not_set)",
                vec![
                    f::source().eq("web.site & co").into(),
                    f::or().location().within_radius(52.52, 13.405, 50.0).into(),
                    f::or().location().is_not_set().into(),
                ],
                set(&[A, B, C]),
            ),
            case(
                "an or-filter that matches nothing excludes everything",
                vec![
                    f::name().is_not_empty().into(),
                    f::or().name().eq("nobody").into(),
                ],
                set(&[]),
            ),
        ]);
        check_cases(backend, &client, cases).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sorting_together_with_filters() {
    for backend in backends() {
        let (_server, client) = setup(backend).await;
        create_dataset(&client).await;
        let employees = || SortField::Attr("employees".into());
        type SortCase = (
            &'static str,
            Vec<F>,
            SortField,
            SortOrder,
            Vec<&'static str>,
        );
        let cases: Vec<SortCase> = vec![
            // A lead without the sort value comes last in both directions.
            (
                "rating DESC",
                vec![],
                SortField::Rating,
                SortOrder::Desc,
                vec![B, A, E, C, D],
            ),
            (
                "rating ASC",
                vec![],
                SortField::Rating,
                SortOrder::Asc,
                vec![C, E, A, B, D],
            ),
            (
                "rating DESC + rating gte 1e-7",
                vec![f::rating().gte(1e-7).into()],
                SortField::Rating,
                SortOrder::Desc,
                vec![B, A, E, C],
            ),
            (
                "rating DESC + rating eq 4",
                vec![f::rating().eq(4.0).into()],
                SortField::Rating,
                SortOrder::Desc,
                vec![A],
            ),
            (
                "rating ASC + source eq",
                vec![f::source().eq("api").into()],
                SortField::Rating,
                SortOrder::Asc,
                vec![E, D],
            ),
            (
                "name ASC",
                vec![],
                SortField::Name,
                SortOrder::Asc,
                vec![A, B, C, D, E],
            ),
            (
                "name DESC + tags not empty",
                vec![f::tags().is_not_empty().into()],
                SortField::Name,
                SortOrder::Desc,
                vec![E, D, B, A],
            ),
            (
                "name ASC + city St. Louis",
                vec![f::city().eq(ST_LOUIS).into()],
                SortField::Name,
                SortOrder::Asc,
                vec![A, D],
            ),
            (
                "review_count DESC",
                vec![],
                SortField::ReviewCount,
                SortOrder::Desc,
                vec![A, B, E, C, D],
            ),
            (
                "city ASC + city not empty",
                vec![f::city().is_not_empty().into()],
                SortField::City,
                SortOrder::Asc,
                vec![B, C],
            ),
            (
                "attr:employees DESC + attr gt 4",
                vec![f::attr("employees").gt(4.0).into()],
                employees(),
                SortOrder::Desc,
                vec![A, B],
            ),
            (
                "attr:employees ASC + attr set",
                vec![f::attr("employees").gte(0.0).into()],
                employees(),
                SortOrder::Asc,
                vec![C, B, A],
            ),
        ];
        let mut problems = Vec::new();
        for (label, filters, field, order, want) in cases {
            match names(&client, &filters, Some((field, order))).await {
                Err(e) => problems.push(format!("{label}: {e}")),
                Ok((paged, streamed)) => {
                    // St. Louis ties (A and D have the same city, case aside) are checked
                    // only as a set.
                    if label.starts_with("city ASC") {
                        if paged.len() != 4
                            || paged[..2] != [B, C]
                            || set(&[paged[2].as_str(), paged[3].as_str()]) != set(&[A, D])
                        {
                            problems.push(format!("{label}: got {paged:?}"));
                        }
                    } else if paged != want {
                        problems.push(format!("{label}: expected {want:?}, got {paged:?}"));
                    }
                    if streamed != paged {
                        problems.push(format!(
                            "{label}: stream gave {streamed:?}, pages gave {paged:?}"
                        ));
                    }
                }
            }
        }
        // Attribute sort without a filter: the two leads without the attribute come last.
        for (order, head) in [(SortOrder::Asc, [C, B, A]), (SortOrder::Desc, [A, B, C])] {
            match names(&client, &[], Some((employees(), order))).await {
                Err(e) => problems.push(format!("attr:employees {order:?}: {e}")),
                Ok((paged, _)) => {
                    if paged.len() != 5
                        || paged[..3] != head
                        || set(&[paged[3].as_str(), paged[4].as_str()]) != set(&[D, E])
                    {
                        problems.push(format!("attr:employees {order:?}: got {paged:?}"));
                    }
                }
            }
        }
        assert!(problems.is_empty(), "{backend:?}:\n{}", problems.join("\n"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_filter_values_are_bad_requests() {
    for backend in backends() {
        let (_server, client) = setup(backend).await;
        for p in [
            "and.gte.rating.four",
            "and.within_radius.location.52.52,13.405",
            "and.gt.attr:employees.many",
            "and.array_contains.city.x",
            "xor.eq.city.Paris",
        ] {
            let e = client
                .leads()
                .list(ListOptions::builder().filter(Raw(p)).build())
                .await
                .expect_err(p);
            assert!(matches!(e, Error::BadRequest(_)), "{backend:?}: {p}: {e:?}");
        }
    }
}

// ─── batch ─────────────────────────────────────────────────────────────────

async fn all_leads(client: &Client) -> Vec<LeadResponse> {
    let leads = client.leads();
    let items: Vec<Result<LeadResponse, Error>> =
        leads.stream(ListOptions::default()).collect().await;
    items.into_iter().map(|r| r.expect("stream item")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_create_with_valid_invalid_and_duplicate_items() {
    for backend in backends() {
        let (_server, client) = setup(backend).await;
        let minimal = |name: &str| LeadInput::builder().name(name).source("import");
        let items = vec![
            minimal("Batch Zero")
                .email("zero@example.com")
                .city("Lyon")
                .rating(4.0)
                .build(),
            minimal("").email("one@example.com").build(), // name required
            minimal("Batch Two")
                .tags(vec!["t1".into(), "t2".into()])
                .review_count(3)
                .attributes(vec![Attribute::number("employees", 12.0)])
                .build(),
            minimal("Batch Three").status("bogus").build(), // invalid status
            minimal("Batch Zero Again") // duplicate of item 0
                .email("ZERO@example.com")
                .city("Marseille")
                .build(),
            minimal("Batch Five").latitude(200.0).longitude(0.0).build(), // bad latitude
        ];
        let r = client
            .leads()
            .batch_create(items)
            .await
            .expect("batch create");
        let created: Vec<usize> = r.created.iter().map(|c| c.index).collect();
        let errors: Vec<usize> = r.errors.iter().map(|e| e.index).collect();
        assert_eq!(created, [0, 2, 4], "{backend:?}: {r:?}");
        assert_eq!(errors, [1, 3, 5], "{backend:?}: {r:?}");
        assert_eq!((r.total, r.success, r.failed), (6, 3, 3), "{backend:?}");
        for e in &r.errors {
            assert!(!e.message.is_empty(), "{backend:?}: {e:?}");
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs() as i64;
        for c in &r.created {
            assert!(c.id.starts_with("cl_"), "{backend:?}: {c:?}");
            assert!((c.created_at - now).abs() < 3600, "{backend:?}: {c:?}");
        }
        assert_eq!(
            r.created[2].id, r.created[0].id,
            "{backend:?}: the in-batch duplicate merges into item 0"
        );
        assert_ne!(r.created[1].id, r.created[0].id);

        // Read back: exactly the two leads, the merge applied.
        let stored = all_leads(&client).await;
        let mut ids: Vec<&str> = stored.iter().map(|l| l.id.as_str()).collect();
        ids.sort_unstable();
        let mut want = vec![r.created[0].id.as_str(), r.created[1].id.as_str()];
        want.sort_unstable();
        assert_eq!(ids, want, "{backend:?}: rejected items must not be stored");
        let zero = client.leads().get(&r.created[0].id).await.expect("get 0");
        assert_eq!(zero.city.as_deref(), Some("Marseille"), "{backend:?}");
        assert_eq!(zero.rating, Some(4.0), "{backend:?}: kept");
        assert_eq!(
            zero.email.as_deref().map(str::to_lowercase).as_deref(),
            Some("zero@example.com")
        );
        let two = client.leads().get(&r.created[1].id).await.expect("get 2");
        assert_eq!(two.name, "Batch Two");
        assert_eq!(two.tags, ["t1", "t2"]);
        assert_eq!(two.review_count, Some(3));
        assert_eq!(two.attributes.len(), 1);
        assert_eq!(two.attributes[0].value.as_f64(), Some(12.0));

        // All valid: every item created.
        let r = client
            .leads()
            .batch_create(vec![minimal("Ok A").build(), minimal("Ok B").build()])
            .await
            .expect("batch create all valid");
        assert_eq!(
            r.created.iter().map(|c| c.index).collect::<Vec<_>>(),
            [0, 1]
        );
        assert!(r.errors.is_empty(), "{backend:?}: {r:?}");
        assert_eq!((r.total, r.success, r.failed), (2, 2, 0));
        assert_eq!(all_leads(&client).await.len(), 4, "{backend:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_over_the_plan_limit_is_rejected_whole() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        // The burst plan allows 100 items per batch (and 3 requests per 3 s).
        let key = server.account("burst").await;
        let client = sdk(&server, &key, Some(0));
        let items: Vec<LeadInput> = (0..101)
            .map(|i| {
                LeadInput::builder()
                    .name(format!("Over {i}"))
                    .source("import")
                    .build()
            })
            .collect();
        let e = client
            .leads()
            .batch_create(items)
            .await
            .expect_err("101 items on a 100-item plan");
        assert!(matches!(e, Error::BadRequest(_)), "{backend:?}: {e:?}");
        let page = client
            .leads()
            .list(ListOptions::default())
            .await
            .expect("list");
        assert_eq!(page.count, 0, "{backend:?}: nothing was written");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_update_and_batch_delete() {
    for backend in backends() {
        let (_server, client) = setup(backend).await;
        let mut ids = Vec::new();
        for (name, city) in [("Upd A", "Berlin"), ("Upd B", "Paris"), ("Upd C", "Rome")] {
            let r = client
                .leads()
                .create(
                    LeadInput::builder()
                        .name(name)
                        .source("import")
                        .city(city)
                        .rating(2.0)
                        .tags(vec!["old".into()])
                        .build(),
                )
                .await
                .expect("create");
            ids.push(r.id);
        }
        let (a, b, c) = (ids[0].clone(), ids[1].clone(), ids[2].clone());

        let r = client
            .leads()
            .batch_update(
                vec![a.clone(), MISSING_ID.into(), b.clone()],
                UpdateLeadInput::builder()
                    .city("Lyon")
                    .status("contacted")
                    .tags(vec!["batch".into(), "vip".into()])
                    .rating(4.5)
                    .build(),
            )
            .await
            .expect("batch update");
        assert_eq!(
            r.results.iter().map(|x| x.index).collect::<Vec<_>>(),
            [0, 1, 2]
        );
        assert_eq!(
            r.results.iter().map(|x| x.id.as_str()).collect::<Vec<_>>(),
            [a.as_str(), MISSING_ID, b.as_str()]
        );
        assert_eq!(
            r.results.iter().map(|x| x.success).collect::<Vec<_>>(),
            [true, false, true],
            "{backend:?}: {r:?}"
        );
        assert!(
            r.results[1]
                .message
                .as_deref()
                .is_some_and(|m| !m.is_empty())
        );
        assert_eq!((r.total, r.success, r.failed), (3, 2, 1), "{backend:?}");
        for (id, name) in [(&a, "Upd A"), (&b, "Upd B")] {
            let l = client.leads().get(id).await.expect("get");
            assert_eq!(l.name, name, "{backend:?}: untouched field kept");
            assert_eq!(l.city.as_deref(), Some("Lyon"));
            assert_eq!(l.status.as_deref(), Some("contacted"));
            assert_eq!(l.tags, ["batch", "vip"]);
            assert_eq!(l.rating, Some(4.5));
        }
        let untouched = client.leads().get(&c).await.expect("get c");
        assert_eq!(untouched.city.as_deref(), Some("Rome"), "{backend:?}");
        assert_eq!(untouched.status.as_deref(), Some("new"));
        // The filters see the new values.
        let (lyon, _) = names(&client, &[f::city().eq("lyon").into()], None)
            .await
            .expect("filter");
        assert_eq!(set_of(&lyon), set(&["Upd A", "Upd B"]), "{backend:?}");
        let (rated, _) = names(&client, &[f::rating().gte(4.5).into()], None)
            .await
            .expect("filter");
        assert_eq!(set_of(&rated), set(&["Upd A", "Upd B"]), "{backend:?}");

        // An invalid update is rejected whole.
        let e = client
            .leads()
            .batch_update(
                vec![c.clone()],
                UpdateLeadInput::builder().status("bogus").build(),
            )
            .await
            .expect_err("invalid status");
        assert!(matches!(e, Error::BadRequest(_)), "{backend:?}: {e:?}");

        let r = client
            .leads()
            .batch_delete(vec![a.clone(), MISSING_ID.into(), b.clone()])
            .await
            .expect("batch delete");
        assert_eq!(
            r.results
                .iter()
                .map(|x| (x.index, x.success))
                .collect::<Vec<_>>(),
            [(0, true), (1, false), (2, true)],
            "{backend:?}: {r:?}"
        );
        assert_eq!((r.total, r.success, r.failed), (3, 2, 1));
        for id in [&a, &b] {
            let e = client.leads().get(id).await.expect_err("deleted");
            assert!(matches!(e, Error::NotFound), "{backend:?}: {e:?}");
        }
        let rest = all_leads(&client).await;
        assert_eq!(
            rest.iter().map(|l| l.id.as_str()).collect::<Vec<_>>(),
            [c.as_str()],
            "{backend:?}"
        );
        let r = client
            .leads()
            .batch_delete(vec![a.clone()])
            .await
            .expect("delete again");
        assert_eq!((r.total, r.success, r.failed), (1, 0, 1), "{backend:?}");
        assert!(!r.results[0].success);
    }
}

fn set_of(v: &[String]) -> BTreeSet<String> {
    v.iter().cloned().collect()
}

// ─── deduplication ─────────────────────────────────────────────────────────

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_the_same_email_twice_merges() {
    for backend in backends() {
        let (_server, client) = setup(backend).await;
        let first = client
            .leads()
            .create(
                LeadInput::builder()
                    .name("Dup Co")
                    .source("import")
                    .email("dup@example.com")
                    .city("Berlin")
                    .build(),
            )
            .await
            .expect("first");
        assert_ne!(first.duplicate, Some(true));
        let second = client
            .leads()
            .create(
                LeadInput::builder()
                    .name("Dup Company")
                    .source("import")
                    .email("DUP@example.com")
                    .phone("+49 30 1234567")
                    .build(),
            )
            .await
            .expect("second");
        assert_eq!(second.duplicate, Some(true), "{backend:?}: {second:?}");
        assert_eq!(second.id, first.id);
        assert_eq!(second.created_at, first.created_at);
        assert!(!second.message.is_empty());
        let lead = client.leads().get(&first.id).await.expect("get");
        assert_eq!(lead.phone.as_deref(), Some("+49 30 1234567"));
        assert_eq!(lead.city.as_deref(), Some("Berlin"));
        assert_eq!(all_leads(&client).await.len(), 1, "{backend:?}");

        // Name + city only: a new lead that points at the similar one.
        let third = client
            .leads()
            .create(
                LeadInput::builder()
                    .name("dup company")
                    .source("import")
                    .city("BERLIN")
                    .build(),
            )
            .await
            .expect("third");
        assert_ne!(third.duplicate, Some(true), "{backend:?}");
        assert_ne!(third.id, first.id);
        assert_eq!(
            third.potential_duplicate_id.as_deref(),
            Some(first.id.as_str()),
            "{backend:?}"
        );
    }
}

// ─── rate limits ───────────────────────────────────────────────────────────

/// Moves the server's (manual) clock forward while it lives, at twice the real pace, so the
/// SDK's real `Retry-After` sleeps free the server's rate-limit window as they would in
/// production. (At exactly 1× a one-second tick can land a few milliseconds after the SDK's
/// retry, which then costs one more retry; 2× keeps the test independent of that timing. The
/// exact value of `Retry-After` is checked on a frozen clock in the test without retries.)
struct RealTime(tokio::task::JoinHandle<()>);

impl RealTime {
    fn follow(clock: Arc<ManualClock>) -> RealTime {
        RealTime(tokio::spawn(async move {
            let start = Instant::now();
            let mut moved = 0u128;
            loop {
                tokio::time::sleep(Duration::from_millis(10)).await;
                while moved < start.elapsed().as_millis() / 500 {
                    clock.advance_secs(1);
                    moved += 1;
                }
            }
        }))
    }
}

impl Drop for RealTime {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limited_without_retries_is_an_error_with_retry_after() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        let key = server.account("burst").await;
        let client = sdk(&server, &key, Some(0));
        let leads = client.leads();
        let list = || leads.list(ListOptions::builder().limit(1).build());

        for i in 0..BURST_LIMIT {
            list()
                .await
                .unwrap_or_else(|e| panic!("{backend:?}: call {i}: {e:?}"));
            let state = client.rate_limit_state().expect("rate-limit headers");
            assert_eq!(state.limit, BURST_LIMIT, "{backend:?}");
            assert_eq!(state.remaining, BURST_LIMIT - 1 - i, "{backend:?}");
        }
        let mut waits = Vec::new();
        for _ in 0..3 {
            match list().await {
                Err(Error::RateLimited { retry_after }) => waits.push(retry_after),
                other => panic!("{backend:?}: expected RateLimited, got {other:?}"),
            }
        }
        for w in &waits {
            assert!((1..=5).contains(w), "{backend:?}: retry_after {w}");
        }
        let state = client.rate_limit_state().expect("state after 429");
        assert_eq!(
            (state.limit, state.remaining),
            (BURST_LIMIT, 0),
            "{backend:?}"
        );

        // A write rejected with 429 has no effect.
        let e = client
            .leads()
            .create(LeadInput::builder().name("Nope").source("import").build())
            .await
            .expect_err("create while limited");
        assert!(matches!(e, Error::RateLimited { .. }), "{backend:?}: {e:?}");

        // Retry-After is exact: one second less is not enough, the full wait is.
        server.clock.advance_secs(waits[0] as i64 - 1);
        let e = list().await.expect_err("one second before Retry-After");
        assert!(
            matches!(e, Error::RateLimited { retry_after: 1 }),
            "{backend:?}: {e:?}"
        );
        server.clock.advance_secs(1);
        let page = list().await.expect("after Retry-After");
        assert_eq!(
            page.count, 0,
            "{backend:?}: the rejected create stored nothing"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limited_calls_succeed_with_the_sdks_retries() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        let key = server.account("burst").await;
        let client = sdk(&server, &key, None); // SDK default: 3 retries honouring Retry-After
        let _time = RealTime::follow(server.clock.clone());

        // Six quick calls one after the other: all succeed, the 4th after waiting.
        let started = Instant::now();
        for i in 0..6 {
            let page = client
                .leads()
                .list(ListOptions::builder().limit(1).build())
                .await
                .unwrap_or_else(|e| panic!("{backend:?}: sequential call {i}: {e:?}"));
            assert_eq!(page.count, 0);
        }
        let took = started.elapsed();
        assert!(
            took >= Duration::from_secs(2),
            "{backend:?}: 6 calls on a 3-per-3-s plan took only {took:?}"
        );
        let state = client.rate_limit_state().expect("state");
        assert_eq!(state.limit, BURST_LIMIT, "{backend:?}");
        assert!(state.remaining < BURST_LIMIT, "{backend:?}: {state:?}");

        // Six concurrent creates: all succeed exactly once (429 is decided before any write).
        let results = futures_util::future::join_all((0..6).map(|i| {
            let client = client.clone();
            async move {
                client
                    .leads()
                    .create(
                        LeadInput::builder()
                            .name(format!("Burst {i}"))
                            .source("import")
                            .build(),
                    )
                    .await
            }
        }))
        .await;
        for (i, r) in results.iter().enumerate() {
            assert!(r.is_ok(), "{backend:?}: concurrent create {i}: {r:?}");
        }
        let page = client
            .leads()
            .list(ListOptions::builder().limit(50).build())
            .await
            .expect("list after the burst");
        let mut got: Vec<String> = page.leads.into_iter().map(|l| l.name).collect();
        got.sort();
        let want: Vec<String> = (0..6).map(|i| format!("Burst {i}")).collect();
        assert_eq!(got, want, "{backend:?}: each create stored exactly once");
    }
}
