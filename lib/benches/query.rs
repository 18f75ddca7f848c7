//! Query-engine benchmarks: filter parsing and in-memory evaluation with a sort.
//!
//! Run with `cargo bench -p klozeo-core --bench query`; results are recorded in
//! `lib/docs/benchmarks.md`.

use criterion::{Criterion, criterion_group, criterion_main};
use klozeo_core::domain::filter::{Filter, FilterSet};
use klozeo_core::domain::lead::Lead;
use klozeo_core::domain::query::{Sort, SortField, SortOrder, select_page};
use std::hint::black_box;

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
                "phone": null, "email": if i % 3 == 0 { serde_json::json!(format!("c{i}@x.com")) } else { serde_json::Value::Null },
                "website": null, "rating": (i % 50) as f64 / 10.0, "review_count": i % 500,
                "category": null, "tags": if i % 5 == 0 { vec!["vip"] } else { vec!["b2b", "cold"] },
                "source_id": null, "logo_url": null, "status": "new", "score": (i % 100) as f64,
                "attributes": [{"id": "a", "name": "employees", "type": "number", "value": i % 1000}],
                "created_at": 1_700_000_000 + i as i64, "updated_at": 1_700_000_000,
                "last_interaction_at": 1_700_000_000
            });
            serde_json::from_value(v).expect("valid lead")
        })
        .collect()
}

fn parsing(c: &mut Criterion) {
    let clauses = [
        "and.eq.city.San Francisco",
        "and.gte.rating.4.0",
        "or.array_contains.tags.vip",
        "and.within_radius.location.52.52,13.405,50",
        "and.gte.attr:employees.100",
        "and.is_not_empty.email",
    ];
    c.bench_function("parse one filter clause (mean of 6 kinds)", |b| {
        b.iter(|| {
            for f in &clauses {
                black_box(Filter::parse(black_box(f)).expect("valid"));
            }
        })
    });
}

fn evaluation(c: &mut Criterion) {
    let data = leads(100_000);
    let filters = FilterSet::parse(&[
        "and.eq.city.paris",
        "and.gte.rating.2.5",
        "and.array_not_contains.tags.vip",
    ])
    .expect("valid");
    let sort = Sort {
        field: SortField::Rating,
        order: SortOrder::Desc,
    };
    c.bench_function("3 filters + sort over 100k leads, page of 50", |b| {
        b.iter(|| black_box(select_page(&data, &filters, &sort, None, 50)))
    });
    let by_name = Sort {
        field: SortField::Name,
        order: SortOrder::Asc,
    };
    c.bench_function("3 filters + text sort over 100k leads, page of 50", |b| {
        b.iter(|| black_box(select_page(&data, &filters, &by_name, None, 50)))
    });
}

criterion_group!(benches, parsing, evaluation);
criterion_main!(benches);
