//! Webhook signing cost: both signatures of a delivery (`X-Klozeo-Signature`, hex HMAC-SHA256
//! of the body; `webhook-signature`, Standard Webhooks over `id.timestamp.body`) for bodies of
//! 1 KiB (a typical lead) and 64 KiB (a large lead with attributes). Target: ≤ 1 µs per KiB.
//! Run with `cargo bench -p klozeo-core --bench webhooks`; results in `lib/docs/benchmarks.md`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use klozeo_core::domain::webhook::{delivery_headers, klozeo_signature, standard_signature};
use std::hint::black_box;

fn signing(c: &mut Criterion) {
    let mut g = c.benchmark_group("sign");
    for kib in [1usize, 64] {
        let body: Vec<u8> = (0..kib * 1024).map(|i| b"{\"a\":1}"[i % 7]).collect();
        g.throughput(Throughput::Bytes(body.len() as u64));
        g.bench_function(format!("both signatures, {kib} KiB"), |b| {
            b.iter(|| {
                let h = delivery_headers(
                    Some(black_box("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")),
                    "019a0000-0000-7000-8000-000000000000",
                    1_764_000_000,
                    "lead.created",
                    black_box(&body),
                );
                black_box(h)
            })
        });
        g.bench_function(format!("X-Klozeo-Signature, {kib} KiB"), |b| {
            b.iter(|| black_box(klozeo_signature(black_box("secret"), black_box(&body))))
        });
        g.bench_function(format!("webhook-signature, {kib} KiB"), |b| {
            b.iter(|| {
                black_box(standard_signature(
                    black_box("secret"),
                    "msg",
                    1_764_000_000,
                    black_box(&body),
                ))
            })
        });
    }
    g.finish();
}

criterion_group!(benches, signing);
criterion_main!(benches);
