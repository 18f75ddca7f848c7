//! Scoring benchmarks: parsing a rule, evaluating a 10-node expression on one lead (target
//! < 50 ns, no allocation by design: see `klozeo_core::domain::scoring`), and rescoring 100,000
//! leads with 3 rules (target < 10 ms of CPU).
//!
//! Rescoring is measured as the service does it (`LeadService::rescore_all`): leads come from
//! the store in pages of 200 stored JSON documents, each read into `StoredLeads` (only the id,
//! the stored score and what the rules read; the rule set's leaves are computed as each document
//! is read) and scored by the `RuleSet`. The target row is the scoring of 100,000 leads held in
//! memory in that form. The service rows count everything, reading the documents included,
//! against the way before (each document parsed into a whole `Lead`, then scored). Reference
//! rows: 100,000 whole `Lead`s held in memory, scored by the rule set and lead by lead (what the
//! memory system adds when each lead is a struct and a dozen allocations), the memory floor of
//! that walk, and 1,000 leads that fit in the cache.
//!
//! Run with `cargo bench -p klozeo-core --bench scoring`.

use criterion::{Criterion, criterion_group, criterion_main};
use klozeo_core::domain::lead::Lead;
use klozeo_core::domain::scoring::{Expr, LANES, RuleSet, StoredLeads, score};
use std::hint::black_box;

/// Ten nodes: 3 fields, 5 constants, and the `*`, `==`, two ternaries and two `+` above them.
const TEN_NODES: &str = r#"rating * 10 + (website ? 20 : 0) + (city == "Paris" ? 5 : 0)"#;

fn leads(n: usize) -> Vec<Lead> {
    let cities = [
        "Paris", "Berlin", "Lyon", "London", "Madrid", "Rome", "Oslo", "Vienna",
    ];
    let sources = ["website", "google_maps", "api", "import"];
    (0..n)
        .map(|i| {
            let v = serde_json::json!({
                "id": format!("cl_{i:012}"), "name": format!("Company {i}"),
                "source": sources[i % 4], "description": null, "address": null,
                "city": cities[i % 8], "state": null, "country": "FR", "postal_code": null,
                "latitude": 48.0 + (i % 100) as f64 / 100.0, "longitude": 2.0,
                "phone": null,
                "email": if i % 3 == 0 { serde_json::json!(format!("c{i}@x.com")) } else { serde_json::Value::Null },
                "website": if i % 2 == 0 { serde_json::json!(format!("https://c{i}.example")) } else { serde_json::Value::Null },
                "rating": (i % 50) as f64 / 10.0, "review_count": i % 500,
                "category": null, "tags": if i % 5 == 0 { vec!["vip"] } else { vec!["b2b", "cold"] },
                "source_id": null, "logo_url": null, "status": "new", "score": 0.0,
                "attributes": [
                    {"id": "a", "name": "industry", "type": "text", "value": "Software"},
                    {"id": "b", "name": "employees", "type": "number", "value": i % 1000}
                ],
                "created_at": 1_700_000_000 + i as i64, "updated_at": 1_700_000_000,
                "last_interaction_at": 1_700_000_000
            });
            // Parsed from the stored JSON text, as the service reads each lead from the store
            // (`services::from_body`), so each lead's strings are allocated as they would be.
            let text = serde_json::to_vec(&v).expect("serializable");
            serde_json::from_slice(&text).expect("valid lead")
        })
        .collect()
}

fn parsing(c: &mut Criterion) {
    c.bench_function("parse the 10-node rule", |b| {
        b.iter(|| black_box(Expr::parse(black_box(TEN_NODES)).expect("valid")))
    });
}

fn evaluation(c: &mut Criterion) {
    let expr = Expr::parse(TEN_NODES).expect("valid");
    let data = leads(8);
    let paris = &data[0];
    assert_eq!(expr.eval(paris), 25.0);
    c.bench_function("eval 10-node expression on one lead", |b| {
        b.iter(|| black_box(expr.eval(black_box(paris))))
    });
    let berlin = &data[1];
    c.bench_function("eval 10-node expression on one lead (no match)", |b| {
        b.iter(|| black_box(expr.eval(black_box(berlin))))
    });
}

/// Reads and rescores the stored leads as `LeadService::rescore_all` does: pages of 200
/// documents, each read into `stored` (only what the rules read) and scored; yields how many
/// scores changed.
fn read_and_rescore(stored_docs: &[Vec<u8>], stored: &mut StoredLeads<'_>) -> usize {
    let mut changed = 0;
    for page in stored_docs.chunks(200) {
        stored.clear();
        for d in page {
            stored.push(d).expect("valid lead");
        }
        for (i, s) in stored.scores().into_iter().enumerate() {
            changed += usize::from((s - stored.stored_score(i)).abs() >= 1e-9);
        }
    }
    changed
}

/// The way before `StoredLeads`: each page parsed into whole leads, a group of `LANES` at a
/// time, and scored by the rule set.
fn parse_and_rescore(stored_docs: &[Vec<u8>], set: &RuleSet) -> usize {
    let mut changed = 0;
    for page in stored_docs.chunks(200) {
        for group in page.chunks(LANES) {
            let leads: Vec<Lead> = group
                .iter()
                .map(|d| serde_json::from_slice(d).expect("valid lead"))
                .collect();
            for (l, s) in leads.iter().zip(set.scores(&leads)) {
                changed += usize::from((s - l.score).abs() >= 1e-9);
            }
        }
    }
    changed
}

/// Rescores `leads` with the rule set, as `rescore_all` does.
fn with_set(set: &RuleSet, leads: &mut [Lead]) {
    let scores = set.scores(leads);
    for (lead, s) in leads.iter_mut().zip(scores) {
        lead.score = s;
    }
    black_box(leads);
}

/// Rescores `leads` one at a time, as a single write does.
fn one_by_one(rules: &[(&Expr, f64)], leads: &mut [Lead]) {
    for lead in leads.iter_mut() {
        lead.score = score(rules, lead);
    }
    black_box(leads);
}

fn rescoring(c: &mut Criterion) {
    let data = leads(100_000);
    let a = Expr::parse(TEN_NODES).expect("valid");
    let b = Expr::parse("attr_employees > 500 ? 20 : attr_employees / 50").expect("valid");
    let t = Expr::parse("tags == 'vip' && email ? 15 : 0").expect("valid");
    let rules = [(&a, 1.0), (&b, 0.5), (&t, 1.0)];
    let stored_docs: Vec<Vec<u8>> = data
        .iter()
        .map(|l| serde_json::to_vec(l).expect("serializable"))
        .collect();
    // Held in memory as a process that loaded them would hold them: parsed one after another.
    drop(data);
    let mut data: Vec<Lead> = stored_docs
        .iter()
        .map(|d| serde_json::from_slice(d).expect("valid lead"))
        .collect();
    let set = RuleSet::new(rules);
    let mut stored = StoredLeads::new(&set);
    assert_eq!(
        read_and_rescore(&stored_docs, &mut stored),
        parse_and_rescore(&stored_docs, &set)
    );
    let mut group = c.benchmark_group("service");
    // Each iteration reads 100,000 documents, so take fewer samples.
    group.sample_size(10);
    group.bench_function(
        "read and rescore 100k stored leads with 3 rules (rescore_all, all CPU)",
        |bench| bench.iter(|| read_and_rescore(&stored_docs, &mut stored)),
    );
    group.bench_function(
        "parse 100k stored leads whole and rescore them (the way before, all CPU)",
        |bench| bench.iter(|| parse_and_rescore(&stored_docs, &set)),
    );
    group.finish();
    // What rescoring keeps of 100,000 leads, all held in memory at once.
    let mut all = StoredLeads::new(&set);
    for d in &stored_docs {
        all.push(d).expect("valid lead");
    }
    c.bench_function(
        "rescore 100k leads with 3 rules, held in memory as read for rescoring",
        |bench| bench.iter(|| black_box(all.scores())),
    );
    c.bench_function(
        "rescore 100k leads with 3 rules as a rule set, all held in memory",
        |bench| bench.iter(|| with_set(&set, &mut data)),
    );
    c.bench_function(
        "rescore 100k leads with 3 rules lead by lead, all held in memory",
        |bench| bench.iter(|| one_by_one(&rules, &mut data)),
    );
    // For reading the line above: the memory floor (a rule that reads nothing still walks and
    // writes every lead) and the compute cost (the same rules on leads that fit in the cache).
    let zero = Expr::parse("0").expect("valid");
    c.bench_function("rescore 100k leads with a rule reading nothing", |bench| {
        bench.iter(|| one_by_one(&[(&zero, 1.0)], &mut data))
    });
    let mut few = leads(1_000);
    c.bench_function(
        "rescore 1k cache-resident leads with 3 rules as a rule set",
        |bench| bench.iter(|| with_set(&set, &mut few)),
    );
    c.bench_function("rescore 1k cache-resident leads with 3 rules", |bench| {
        bench.iter(|| one_by_one(&rules, &mut few))
    });
}

criterion_group!(benches, parsing, evaluation, rescoring);
criterion_main!(benches);
