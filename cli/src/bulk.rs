//! `klozeo export` and `klozeo import`: bulk data out of and into one account, with a progress
//! bar (rate and ETA) on a terminal and plain progress lines otherwise. Both only translate:
//! the export service encodes, the import service runs the ingest dedup (or its dry run).

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use klozeo_core::app::App;
use klozeo_core::domain::filter::FilterSet;
use klozeo_core::domain::query::{Sort, SortField, SortOrder};
use klozeo_core::edges::import::{CsvRows, json_rows};
use klozeo_core::services::export::{ExportRequest, Format};
use klozeo_core::services::import::{Import, RowOutcome};

/// Progress of a long command: a bar on a terminal, a line every few seconds otherwise.
struct Progress {
    bar: Option<ProgressBar>,
    what: &'static str,
    total: Option<u64>,
    done: u64,
    started: Instant,
    last_line: Instant,
}

impl Progress {
    fn new(what: &'static str, total: Option<u64>) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = match total {
                Some(n) => ProgressBar::new(n),
                None => ProgressBar::new_spinner(),
            };
            let template = if total.is_some() {
                "{bar:40} {pos}/{len} {msg} ({per_sec}, ETA {eta})"
            } else {
                "{spinner} {pos} {msg} ({per_sec})"
            };
            if let Ok(style) = ProgressStyle::with_template(template) {
                bar.set_style(style);
            }
            bar.set_message(what);
            bar
        });
        Progress {
            bar,
            what,
            total,
            done: 0,
            started: Instant::now(),
            last_line: Instant::now(),
        }
    }

    fn inc(&mut self, n: u64) {
        self.done += n;
        match &self.bar {
            Some(b) => b.inc(n),
            None if self.last_line.elapsed() >= Duration::from_secs(2) => {
                self.last_line = Instant::now();
                let rate = self.done as f64 / self.started.elapsed().as_secs_f64().max(1e-3);
                match self.total {
                    Some(t) => {
                        let left = t.saturating_sub(self.done) as f64 / rate.max(1e-3);
                        eprintln!(
                            "{} {}/{t} ({rate:.0}/s, ETA {left:.0} s)",
                            self.what, self.done
                        )
                    }
                    None => eprintln!("{} {} ({rate:.0}/s)", self.what, self.done),
                }
            }
            None => {}
        }
    }

    fn finish(self) -> (u64, Duration) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
        (self.done, self.started.elapsed())
    }
}

/// `klozeo export`.
pub async fn export(
    app: &App,
    email: &str,
    format: &str,
    filters: &[String],
    sort_by: Option<&str>,
    sort_order: Option<&str>,
    output: &Path,
) -> Result<()> {
    let t = app.accounts.tenant_for_email(email).await?;
    let req = ExportRequest {
        format: Format::parse(format)?,
        sort: Sort {
            field: SortField::parse(sort_by.unwrap_or(""))?,
            order: SortOrder::parse(sort_order.unwrap_or(""))?,
        },
        filters: FilterSet::parse(filters)?,
    };
    let mut export = app.exports.open(&t, &req).await?;
    // Written next to the target and renamed at the end, so a failed export leaves no
    // half-written file under the requested name.
    let tmp = output.with_extension("partial");
    let mut file = std::io::BufWriter::new(
        std::fs::File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?,
    );
    let mut progress = Progress::new("leads", None);
    let mut rows = 0;
    while let Some(chunk) = export.next_chunk().await? {
        file.write_all(&chunk)?;
        progress.inc(export.rows() - rows);
        rows = export.rows();
    }
    file.flush()?;
    drop(file);
    std::fs::rename(&tmp, output)?;
    let (_, took) = progress.finish();
    println!(
        "exported {} leads ({} bytes) to {} in {:.1} s",
        export.rows(),
        export.bytes(),
        output.display(),
        took.as_secs_f64()
    );
    Ok(())
}

/// `klozeo import`.
pub async fn import(
    app: &App,
    email: &str,
    path: &Path,
    dry_run: bool,
    source: Option<String>,
) -> Result<()> {
    let t = app.accounts.tenant_for_email(email).await?;
    let mut import = Import::new(app.ingest.clone(), t, dry_run);
    let chunk = import.chunk_size();
    let is_json = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    let is_csv = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    if !is_json && !is_csv {
        bail!("{}: import reads .csv or .json files", path.display());
    }
    let open =
        || std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()));
    let (mut rows, total): (Box<dyn Iterator<Item = _>>, u64) = if is_json {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let rows = json_rows(&bytes, source.as_deref())?;
        let n = rows.len() as u64;
        (Box::new(rows.into_iter()), n)
    } else {
        // Counting first gives the bar its length (and the ETA) at the cost of one fast read.
        let n = csv::ReaderBuilder::new()
            .flexible(true)
            .from_reader(std::io::BufReader::new(open()?))
            .into_byte_records()
            .count() as u64;
        let rows = CsvRows::new(std::io::BufReader::new(open()?), source)?;
        (Box::new(rows), n)
    };
    let mut progress = Progress::new(
        if dry_run {
            "rows checked"
        } else {
            "rows imported"
        },
        Some(total),
    );
    let (mut created, mut merged, mut hinted, mut rejected) = (0u64, 0u64, 0u64, 0u64);
    let verb = |s: &'static str, dry: &'static str| if dry_run { dry } else { s };
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut row_no = 0u64;
    let mut report = |outcomes: Vec<RowOutcome>, out: &mut dyn Write| -> Result<()> {
        progress.inc(outcomes.len() as u64);
        for o in outcomes {
            row_no += 1;
            let line = match o {
                RowOutcome::Created { id } => {
                    created += 1;
                    format!(
                        "{} {}",
                        verb("created", "would create"),
                        id.unwrap_or_default()
                    )
                }
                RowOutcome::Hinted { id, similar_to } => {
                    hinted += 1;
                    format!(
                        "{} {} (similar to {similar_to}: same name and city)",
                        verb("created", "would create"),
                        id.unwrap_or_default()
                    )
                }
                RowOutcome::Merged { into, tier } => {
                    merged += 1;
                    format!(
                        "{} {into} ({tier})",
                        verb("merged into", "would merge into")
                    )
                }
                RowOutcome::Rejected { reason } => {
                    rejected += 1;
                    format!("rejected: {reason}")
                }
            };
            writeln!(out, "row {row_no}: {}", line.trim_end())?;
        }
        Ok(())
    };
    // The next chunk is read and decided while the one before commits ([`Import::push`]).
    loop {
        let batch: Vec<_> = rows.by_ref().take(chunk).collect();
        if batch.is_empty() {
            break;
        }
        report(import.push(batch).await?, &mut out)?;
    }
    report(import.finish().await?, &mut out)?;
    out.flush()?;
    let (done, took) = progress.finish();
    println!(
        "{}{done} rows in {:.1} s ({:.0} rows/s): {created} created, {hinted} created with a \
         similar lead, {merged} merged, {rejected} rejected",
        if dry_run {
            "dry run, nothing written: "
        } else {
            ""
        },
        took.as_secs_f64(),
        done as f64 / took.as_secs_f64().max(1e-3)
    );
    Ok(())
}
