//! End-to-end rescoring on the embedded store: the wall time of a rule change on an account of
//! 100,000 stored leads, from the call that saves the rule until every changed score is stored
//! (each with its `leads.scored` event, and the grouped events written).
//!
//! Each run opens a fresh SQLite store in a temporary directory (WAL, `synchronous=FULL`, as
//! `klozeo serve` runs it), creates an account, and writes the leads straight into the store in
//! transactions of 1,000, each lead item exactly as the service stores it (`schema::lead_key`,
//! the JSON document, version 1, `schema::lead_index_keys`). Going through
//! `IngestService::push` would measure deduplication instead, and take far longer. The
//! rescoring job's inline budget is set to a day, so `create_rule` and `update_rule` run the
//! whole job inside the call and their wall time is the figure wanted (in service the job hands
//! over to the worker after its inline budget; the work done is the same).
//!
//! Timed per run:
//! - `create rule`: `rating * 10 + (city == "Paris" ? 5 : 0)` on leads whose stored score is 0;
//!   every lead with a rating or in Paris changes.
//! - `weight change`: the same rule's weight from 1 to 2; every lead with a non-zero score
//!   changes.
//! - `nothing to change`: `rescore_all` once more; it reads and scores every lead and writes
//!   nothing, so it shows the reading and scoring alone.
//!
//! Run with `cargo bench -p klozeo-core --bench rescore_e2e`. `RESCORE_LEADS` (default 100000)
//! and `RESCORE_RUNS` (default 3) change the size and the number of runs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use klozeo_core::adapters::sqlite::SqliteStore;
use klozeo_core::app::App;
use klozeo_core::config::{Config, DEFAULT_MAX_BODY_BYTES, StoreConfig};
use klozeo_core::domain::account::{Plans, Tenant};
use klozeo_core::domain::ids::{LeadId, RuleId};
use klozeo_core::domain::lead::{AttrType, Attribute, Lead, Status};
use klozeo_core::ports::{Cond, IdSource, Item, Table, UuidIds, WriteOp};
use klozeo_core::schema;
use klozeo_core::services::scoring::RuleChanges;
use serde_json::json;

/// Leads written per store transaction while loading.
const LOAD_BATCH: usize = 1000;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Lead `i` of the account: every lead differs from its neighbours in name, city, rating,
/// review count, tags and attributes, and about one in twelve has no rating.
fn lead(i: usize, id: String, now: i64) -> Lead {
    const CITIES: [&str; 12] = [
        "Paris",
        "Lyon",
        "Marseille",
        "paris",
        "Berlin",
        "London",
        "Madrid",
        "Toulouse",
        "Nantes",
        "PARIS",
        "Lille",
        "Bordeaux",
    ];
    const SOURCES: [&str; 4] = ["google_maps", "website", "import", "api"];
    const CATEGORIES: [&str; 5] = ["restaurant", "software", "retail", "dentist", "plumber"];
    const TAGS: [&str; 7] = [
        "vip",
        "b2b",
        "cold",
        "warm",
        "newsletter",
        "partner",
        "churned",
    ];
    const INDUSTRIES: [&str; 4] = ["Software", "Food", "Health", "Construction"];
    let h = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 17;
    let pick = |n: u64, salt: u64| ((h ^ salt.wrapping_mul(0x2545_F491)) % n) as usize;
    let city = CITIES[pick(CITIES.len() as u64, 1)];
    let mut tags: Vec<String> = (0..1 + pick(3, 2))
        .map(|k| TAGS[(pick(TAGS.len() as u64, 3) + 2 * k) % TAGS.len()].to_string())
        .collect();
    tags.dedup();
    let mut attributes = vec![
        Attribute {
            id: format!("a{i}_1"),
            name: "industry".into(),
            ty: AttrType::Text,
            value: json!(INDUSTRIES[pick(4, 4)]),
        },
        Attribute {
            id: format!("a{i}_2"),
            name: "employees".into(),
            ty: AttrType::Number,
            value: json!(pick(5000, 5)),
        },
    ];
    if i.is_multiple_of(2) {
        attributes.push(Attribute {
            id: format!("a{i}_3"),
            name: "verified".into(),
            ty: AttrType::Bool,
            value: json!(i.is_multiple_of(4)),
        });
    }
    if i.is_multiple_of(3) {
        attributes.push(Attribute {
            id: format!("a{i}_4"),
            name: "languages".into(),
            ty: AttrType::List,
            value: json!(["fr", "en"]),
        });
    }
    let created = now - (i as i64 % 86_400) * 60;
    Lead {
        name: format!(
            "{} {} {i}",
            ["Le Petit", "Acme", "Chez", "Studio"][i % 4],
            city
        ),
        source: SOURCES[pick(4, 6)].into(),
        description: (i.is_multiple_of(3))
            .then(|| format!("Family business number {i}, est. 19{}", i % 100)),
        address: Some(format!("{} rue de la Paix", 1 + i % 200)),
        city: Some(city.into()),
        country: Some(
            if city.eq_ignore_ascii_case("paris") {
                "FR"
            } else {
                "EU"
            }
            .into(),
        ),
        postal_code: Some(format!("{:05}", 10_000 + i % 90_000)),
        latitude: Some(43.0 + (i % 700) as f64 / 100.0),
        longitude: Some(-1.0 + (i % 900) as f64 / 100.0),
        phone: (!i.is_multiple_of(4)).then(|| {
            format!(
                "+33 1 {:02} {:02} {:02} {:02}",
                i % 97,
                i % 89,
                i % 83,
                i % 79
            )
        }),
        email: (i % 3 != 1).then(|| format!("contact{i}@example.com")),
        website: (i.is_multiple_of(2)).then(|| format!("https://www.company{i}.example")),
        rating: (i % 12 != 5).then(|| pick(51, 7) as f64 / 10.0),
        review_count: Some(pick(2000, 8) as u32),
        category: Some(CATEGORIES[pick(5, 9)].into()),
        tags,
        source_id: Some(format!("place_{i:08}")),
        status: [Status::New, Status::Contacted, Status::Qualified][i % 3],
        score: 0.0,
        attributes,
        created_at: created,
        updated_at: created,
        last_interaction_at: created,
        id,
        ..Lead::default()
    }
}

/// The score the rule gives lead `l` at weight `w`, computed without the engine.
fn expected(l: &Lead, w: f64) -> f64 {
    let paris = l
        .city
        .as_deref()
        .is_some_and(|c| c.eq_ignore_ascii_case("paris"));
    let v = l.rating.unwrap_or(0.0) * 10.0 + if paris { 5.0 } else { 0.0 };
    (v * w).clamp(0.0, 100.0)
}

/// Writes `n` leads into the account's partition as the service stores them; returns a sample
/// of them (every 997th) to check scores against.
async fn load(app: &App, t: &Tenant, n: usize) -> Vec<Lead> {
    let ids = UuidIds;
    let now = 1_767_225_600; // 2026-01-01, seconds.
    let mut sample = Vec::new();
    let mut i = 0;
    while i < n {
        let end = (i + LOAD_BATCH).min(n);
        let mut ops = Vec::with_capacity(end - i);
        for k in i..end {
            let id = format!("cl_{}", ids.time_ordered(now * 1000 + k as i64));
            let l = lead(k, id, now);
            let mut item = Item::new(
                schema::lead_key(&t.account_id, &l.id),
                serde_json::to_vec(&l).expect("a lead serializes"),
            );
            item.version = 1;
            item.index_keys = schema::lead_index_keys(&t.account_id, &l);
            ops.push(WriteOp::Put {
                table: Table::Leads,
                item,
                cond: Cond::NotExists,
            });
            if k.is_multiple_of(997) {
                sample.push(l);
            }
        }
        app.deps.store.transact(ops).await.expect("load a batch");
        i = end;
    }
    sample
}

async fn check(app: &App, t: &Tenant, sample: &[Lead], w: f64) {
    for l in sample {
        let got = app
            .leads
            .get(t, &LeadId::from_trusted(l.id.clone()))
            .await
            .expect("stored lead")
            .score;
        assert_eq!(got, expected(l, w), "lead {} at weight {w}", l.id);
    }
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

async fn run(n: usize) -> [f64; 3] {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = Config {
        store: StoreConfig::Embedded {
            data_dir: dir.path().to_path_buf(),
        },
        signing_key: b"rescore-e2e-signing-key-0123456789".to_vec(),
        max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        plans: Plans::builtin(),
        // The whole rescoring runs inside the call that changes the rule, so the call's wall
        // time is the time until every score is stored.
        jobs: klozeo_core::config::JobsConfig {
            inline_budget: Duration::from_secs(24 * 3600),
            step_budget: Duration::from_secs(20),
        },
        webhooks: Default::default(),
        jobs_queue_url: None,
        jobs_dlq_url: None,
        accounts: Default::default(),
        exports: Default::default(),
    };
    let store = SqliteStore::open(dir.path()).expect("open store");
    let app = App::with_store(Arc::new(store), &config).expect("app");
    let (_, key) = app
        .accounts
        .create_account("bench@example.com", "unlimited")
        .await
        .expect("account");
    let t = app.accounts.authenticate(&key.raw).await.expect("tenant");

    let start = Instant::now();
    let sample = load(&app, &t, n).await;
    eprintln!("  loaded {n} leads in {:.1} s", secs(start.elapsed()));

    let start = Instant::now();
    let (rule, _) = app
        .scoring
        .create_rule(
            &t,
            RuleChanges {
                name: Some("fit".into()),
                expression: Some(r#"rating * 10 + (city == "Paris" ? 5 : 0)"#.into()),
                ..RuleChanges::default()
            },
        )
        .await
        .expect("create rule");
    let create = secs(start.elapsed());
    check(&app, &t, &sample, 1.0).await;

    let start = Instant::now();
    app.scoring
        .update_rule(
            &t,
            &RuleId::from_trusted(rule.id.clone()),
            RuleChanges {
                weight: Some(2.0),
                ..RuleChanges::default()
            },
        )
        .await
        .expect("update rule");
    let reweight = secs(start.elapsed());
    check(&app, &t, &sample, 2.0).await;

    let start = Instant::now();
    let job = app.scoring.rescore_all(&t).await.expect("rescore");
    let idle = secs(start.elapsed());
    assert_eq!((job.processed, job.changed), (n as u64, 0));
    [create, reweight, idle]
}

fn main() {
    let n = env_usize("RESCORE_LEADS", 100_000);
    let runs = env_usize("RESCORE_RUNS", 3);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    println!("rescore_e2e: {n} leads, {runs} runs (seconds of wall time)");
    println!("run | create rule | weight change | nothing to change");
    for r in 1..=runs {
        let [a, b, c] = rt.block_on(run(n));
        println!("{r} | {a:.2} | {b:.2} | {c:.2}");
    }
}
