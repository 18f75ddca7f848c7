//! Deduplication decision cost: normalising an incoming lead and comparing its name with the
//! phone candidates (tier 3). Run with `cargo bench -p klozeo-core --bench dedup`; results are
//! recorded in `lib/docs/benchmarks.md`.

use criterion::{Criterion, criterion_group, criterion_main};
use klozeo_core::domain::dedup::{
    PhoneCandidate, best_phone_match, normalize_email, normalize_name, normalize_phone,
};
use std::hint::black_box;

fn decision(c: &mut Criterion) {
    let names = [
        "Acme Corporation",
        "Zenith Labs",
        "Globex GmbH",
        "Initech LLC",
        "Umbrella Corp",
        "Hooli",
        "Vandelay Industries",
        "Soylent Green Ltd",
        "Stark Industries",
        "Wayne Enterprises",
        "Cyberdyne Systems",
        "Tyrell Corp",
        "Wonka Chocolate",
        "Oscorp",
        "Aperture Science",
        "Black Mesa",
        "Massive Dynamic",
        "Pied Piper",
        "Dunder Mifflin",
        "Acme Corp Paris",
    ];
    let candidates: Vec<PhoneCandidate> = names
        .iter()
        .enumerate()
        .map(|(i, n)| PhoneCandidate {
            id: format!("cl_{i}"),
            name: normalize_name(n),
        })
        .collect();
    c.bench_function("dedup decision: normalise + 20 phone candidates", |b| {
        b.iter(|| {
            let email = normalize_email(black_box(" Hello@ACME.com "));
            let phone = normalize_phone(black_box("+49 (30) 123-4567"));
            let name = normalize_name(black_box("ACME Corp."));
            black_box((email, phone, best_phone_match(&name, &candidates)))
        })
    });
}

criterion_group!(benches, decision);
criterion_main!(benches);
