//! Export and import benchmark on the embedded store (lib/docs/benchmarks.md): CPU time and
//! peak memory growth of exporting N leads as CSV, JSON and XLSX, and the rate of importing N
//! CSV rows through the importer, driven the way `klozeo import` drives it.
//!
//! `cargo run --release -p klozeo-tests --bin export_bench -- [N] [--no-import] [--data-dir DIR] [--format F]`
//! (default 100,000; `--no-import` skips the import, which at 1,000,000 rows would dominate;
//! `--data-dir` keeps the seeded store in DIR and reuses it on the next run with the same N,
//! so repeated measurements skip the seeding; `--format F`, repeatable, exports only the
//! formats named, e.g. to profile one). Linux only:
//! CPU time comes from /proc/self/stat, peak memory from VmHWM in /proc/self/status, reset
//! between runs through /proc/self/clear_refs. VmHWM counts pages of the database file the
//! store's readers have memory-mapped; the private figure (RssAnon, sampled after every chunk)
//! is the memory the process itself holds, which is what grows if an export buffers leads.

use std::sync::Arc;
use std::time::Instant;

use klozeo_core::app::App;
use klozeo_core::domain::filter::FilterSet;
use klozeo_core::domain::lead::{AttrType, Attribute, Lead};
use klozeo_core::domain::query::Sort;
use klozeo_core::edges::import::CsvRows;
use klozeo_core::ports::{Cond, Item, Table, UuidIds, WriteOp};
use klozeo_core::services::export::{ExportRequest, Format};
use klozeo_core::services::import::Import;

fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    // utime and stime are fields 14 and 15 (1-based), 11 and 12 after the command name.
    let ticks: f64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
}

fn status_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let import = !std::env::args().any(|a| a == "--no-import");
    let args: Vec<String> = std::env::args().collect();
    let kept = args
        .iter()
        .position(|a| a == "--data-dir")
        .and_then(|i| args.get(i + 1))
        .map(std::path::PathBuf::from);
    let temp = tempfile::tempdir()?;
    let data_dir = kept.clone().unwrap_or_else(|| temp.path().to_path_buf());
    let marker = data_dir.join(format!("export_bench-seeded-{n}"));
    let reuse = kept.is_some() && marker.exists();
    let mut config = klozeo_tests::test_config();
    config.store = klozeo_core::config::StoreConfig::Embedded {
        data_dir: data_dir.clone(),
    };
    let store = Arc::new(klozeo_core::adapters::sqlite::SqliteStore::open(&data_dir)?);
    let app = App::with_store(store, &config)?;
    if !reuse {
        app.accounts
            .create_account("bench@example.com", "unlimited")
            .await?;
    }
    let t = app.accounts.tenant_for_email("bench@example.com").await?;
    let now_ms = 1_795_000_000_000i64;
    let ids = UuidIds;
    use klozeo_core::ports::IdSource as _;
    let seeded = Instant::now();
    let seed_from = if reuse { n } else { 0 };
    for chunk_start in (seed_from..n).step_by(100) {
        let ops = (chunk_start..(chunk_start + 100).min(n))
            .map(|i| {
                let lead = Lead {
                    id: format!("cl_{}", ids.time_ordered(now_ms + i as i64)),
                    name: format!("Lead {i} GmbH"),
                    source: "bench".into(),
                    email: Some(format!("lead{i}@example.com")),
                    phone: Some(format!("+49 30 {i:07}")),
                    city: Some(["Berlin", "Paris", "Athens"][i % 3].into()),
                    country: Some("DE".into()),
                    rating: Some((i % 50) as f64 / 10.0),
                    tags: vec!["vip".into(), "b2b".into()],
                    attributes: vec![
                        Attribute {
                            id: format!("a{i}"),
                            name: "employees".into(),
                            ty: AttrType::Number,
                            value: serde_json::json!(i % 1000),
                        },
                        Attribute {
                            id: format!("b{i}"),
                            name: "industry".into(),
                            ty: AttrType::Text,
                            value: serde_json::json!("Software"),
                        },
                    ],
                    created_at: now_ms / 1000,
                    updated_at: now_ms / 1000,
                    last_interaction_at: now_ms / 1000,
                    ..Default::default()
                };
                let key = klozeo_core::schema::lead_key(&t.account_id, &lead.id);
                let mut item = Item::new(key, serde_json::to_vec(&lead).expect("json"));
                item.index_keys = klozeo_core::schema::lead_index_keys(&t.account_id, &lead);
                WriteOp::Put {
                    table: Table::Leads,
                    item,
                    cond: Cond::NotExists,
                }
            })
            .collect();
        app.deps
            .store
            .transact(ops)
            .await
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    }
    if reuse {
        println!("reusing {n} seeded leads in {}", data_dir.display());
    } else {
        println!(
            "seeded {n} leads in {:.1} s",
            seeded.elapsed().as_secs_f64()
        );
        if kept.is_some() {
            std::fs::write(&marker, b"")?;
        }
    }

    let csv_path = temp.path().join("export.csv");
    let mut csv_file = std::io::BufWriter::new(std::fs::File::create(&csv_path)?);
    // `--format csv` (repeatable) exports only the named formats, e.g. to profile one.
    let only: Vec<Format> = args
        .windows(2)
        .filter(|w| w[0] == "--format")
        .filter_map(|w| Format::parse(&w[1]).ok())
        .collect();
    for format in [Format::Csv, Format::Json, Format::Xlsx] {
        if !only.is_empty() && !only.contains(&format) {
            continue;
        }
        reset_peak();
        let rss0 = status_kb("VmRSS:");
        let anon0 = status_kb("RssAnon:");
        let mut anon_peak = anon0;
        let (cpu0, wall0) = (cpu_secs(), Instant::now());
        let req = ExportRequest {
            format,
            sort: Sort::default(),
            filters: FilterSet::default(),
        };
        let mut e = app.exports.open(&t, &req).await?;
        // Opening reads the attribute names (CSV, XLSX) or the first page (JSON).
        let open_cpu = cpu_secs() - cpu0;
        let mut bytes = 0u64;
        while let Some(c) = e.next_chunk().await? {
            bytes += c.len() as u64;
            anon_peak = anon_peak.max(status_kb("RssAnon:"));
            // The CSV goes to a file, for the import below.
            if format == Format::Csv && import {
                std::io::Write::write_all(&mut csv_file, &c)?;
            }
        }
        let (cpu, wall) = (cpu_secs() - cpu0, wall0.elapsed().as_secs_f64());
        let growth = status_kb("VmHWM:").saturating_sub(rss0);
        let private = anon_peak.saturating_sub(anon0);
        println!(
            "export {:>4}: {} rows, {:.1} MB, CPU {cpu:.2} s (open {open_cpu:.2} s), wall {wall:.2} s, peak memory growth {:.1} MB (private {:.1} MB)",
            format.as_str(),
            e.rows(),
            bytes as f64 / 1e6,
            growth as f64 / 1024.0,
            private as f64 / 1024.0
        );
    }

    if !import {
        return Ok(());
    }
    let (b, _) = app
        .accounts
        .create_account(
            &format!("bench-import-{}@example.com", std::process::id()),
            "unlimited",
        )
        .await?;
    let t2 = app.accounts.tenant_for_email(&b.email).await?;
    let mut imp = Import::new(app.ingest.clone(), t2, false);
    std::io::Write::flush(&mut csv_file)?;
    drop(csv_file);
    let mut rows = CsvRows::new(
        std::io::BufReader::new(std::fs::File::open(&csv_path)?),
        None,
    )?;
    let (cpu0, wall0) = (cpu_secs(), Instant::now());
    // As `klozeo import` runs it (cli/src/bulk.rs): chunks of the importer's size, the next
    // one decided while the one before commits.
    let chunk = imp.chunk_size();
    let mut done = 0usize;
    loop {
        let batch: Vec<_> = rows.by_ref().take(chunk).collect();
        if batch.is_empty() {
            break;
        }
        done += imp.push(batch).await?.len();
    }
    done += imp.finish().await?.len();
    let (cpu, wall) = (cpu_secs() - cpu0, wall0.elapsed().as_secs_f64());
    println!(
        "import  csv: {done} rows in {wall:.1} s ({:.0} leads/s), CPU {cpu:.1} s",
        done as f64 / wall
    );
    Ok(())
}
