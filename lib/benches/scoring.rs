//! Scoring benchmarks: parsing a rule, evaluating a 10-node expression on one lead (target
//! < 50 ns, no allocation by design: see `klozeo_core::domain::scoring`), and the CPU of
//! rescoring 100,000 leads with 3 rules.
//!
//! Rescoring is measured as `LeadService::rescore_all` does it: each stored JSON document parsed
//! into a `Lead`, then scored. A second row scores 100,000 leads already held in memory, and a
//! third 1,000 leads that stay in the cache. The wall time of a whole rule change on the
//! embedded store, writes included, is the `rescore_e2e` benchmark.
//!
//! Run with `cargo bench -p klozeo-core --bench scoring`.

use criterion::{Criterion, criterion_group, criterion_main};
use klozeo_core::domain::lead::Lead;
use klozeo_core::domain::scoring::{Expr, score};
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

/// Reads and rescores stored leads as `LeadService::rescore_all` does: each document parsed
/// into a `Lead` and scored; yields how many scores changed.
fn read_and_rescore(stored_docs: &[Vec<u8>], rules: &[(&Expr, f64)]) -> usize {
    let mut changed = 0;
    for d in stored_docs {
        let lead: Lead = serde_json::from_slice(d).expect("valid lead");
        changed += usize::from((score(rules, &lead) - lead.score).abs() >= 1e-9);
    }
    changed
}

/// Rescores `leads` one at a time.
fn one_by_one(rules: &[(&Expr, f64)], leads: &mut [Lead]) {
    for lead in leads.iter_mut() {
        lead.score = score(rules, lead);
    }
    black_box(leads);
}

fn rescoring(c: &mut Criterion) {
    let a = Expr::parse(TEN_NODES).expect("valid");
    let b = Expr::parse("attr_employees > 500 ? 20 : attr_employees / 50").expect("valid");
    let t = Expr::parse("tags == 'vip' && email ? 15 : 0").expect("valid");
    let rules = [(&a, 1.0), (&b, 0.5), (&t, 1.0)];
    let stored_docs: Vec<Vec<u8>> = leads(100_000)
        .iter()
        .map(|l| serde_json::to_vec(l).expect("serializable"))
        .collect();
    let mut group = c.benchmark_group("service");
    // Each iteration reads 100,000 documents, so take fewer samples.
    group.sample_size(10);
    group.bench_function(
        "read and rescore 100k stored leads with 3 rules (rescore_all's CPU)",
        |bench| bench.iter(|| read_and_rescore(&stored_docs, &rules)),
    );
    group.finish();
    // Held in memory as a process that loaded them would hold them: parsed one after another.
    let mut data: Vec<Lead> = stored_docs
        .iter()
        .map(|d| serde_json::from_slice(d).expect("valid lead"))
        .collect();
    c.bench_function("rescore 100k leads with 3 rules, held in memory", |bench| {
        bench.iter(|| one_by_one(&rules, &mut data))
    });
    let mut few = leads(1_000);
    c.bench_function("rescore 1k cache-resident leads with 3 rules", |bench| {
        bench.iter(|| one_by_one(&rules, &mut few))
    });
}

criterion_group!(benches, parsing, evaluation, rescoring);
criterion_main!(benches);
