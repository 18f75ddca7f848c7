//! Export: every lead that a list request with the same filters and sort would return, in the
//! same order, encoded as CSV, JSON or XLSX while the pages are read, so memory stays flat
//! however many leads there are. Delivered inline (the default, what the SDKs expect) or
//! written to object storage behind an expiring link (`delivery=url`).
//!
//! Leads are read page after page ([`LeadPages`]) with exactly the list's semantics and none
//! of its page limits: on DynamoDB through [`LeadService::list`] and its cursors; on a store
//! with its own lead index through the same index scan and the same filter evaluator the list
//! uses, without signing a cursor between pages.
//!
//! CSV and XLSX need every attribute name before the first row (one `attr:<name>` column per
//! name present in the export). Without filters on a store with a lead index, the store lists
//! the tenant's names from its per-attribute index ([`crate::ports::LeadIndex::attribute_names`]),
//! without reading a lead. Otherwise a first pass over the same pages keeps only the set of
//! names: memory grows with the number of distinct names (at most 100 per lead, and in practice
//! a few dozen per account), never with the number of leads; it costs one extra read of the
//! result set, measured in `lib/docs/benchmarks.md`.

use std::collections::BTreeSet;
use std::io::{Seek, SeekFrom};
use std::sync::Arc;

use bytes::Bytes;
use tokio::io::AsyncReadExt;

use crate::domain::account::Tenant;
use crate::domain::filter::FilterSet;
use crate::domain::lead::Lead;
use crate::domain::query::{Sort, SortValue};
use crate::domain::table::{Cell, Columns, neutralise, push_rfc3339, rfc3339};
use crate::error::{Error, Result};
use crate::ports::{LeadScan, ObjectStore};
use crate::services::leads::{LeadService, ListRequest, MAX_LIMIT};
use crate::services::{Deps, from_body};

/// Default lifetime of a `delivery=url` link (15 minutes).
pub const DEFAULT_LINK_TTL_SECS: u64 = 15 * 60;

/// Rows per XLSX worksheet, header included (Excel's limit); larger exports continue on
/// another sheet with the same header.
const XLSX_MAX_ROWS: u32 = 1_048_576;

/// Deflate level of the XLSX container. Compressing the worksheet XML was the largest part of an
/// XLSX export's CPU at rust_xlsxwriter's default (6); level 1 costs a fraction of it for a
/// somewhat larger file (figures in lib/docs/benchmarks.md).
const XLSX_ZIP_LEVEL: u8 = 1;

/// Size of the chunks an XLSX file is streamed in.
const FILE_CHUNK: usize = 256 * 1024;

/// An export file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// UTF-8 CSV with a header row.
    Csv,
    /// A JSON array of full lead objects.
    Json,
    /// An Excel workbook.
    Xlsx,
}

impl Format {
    /// Parses `csv`, `json` or `xlsx` (any case).
    pub fn parse(s: &str) -> Result<Format> {
        match s.trim().to_ascii_lowercase().as_str() {
            "csv" => Ok(Format::Csv),
            "json" => Ok(Format::Json),
            "xlsx" => Ok(Format::Xlsx),
            _ => Err(Error::invalid(format!(
                "format: '{s}' is not one of csv, json, xlsx"
            ))),
        }
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Json => "json",
            Format::Xlsx => "xlsx",
        }
    }

    /// The documented `Content-Type`.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Csv => "text/csv; charset=utf-8",
            Format::Json => "application/json",
            Format::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        }
    }

    /// The format of a file name's extension.
    pub fn of_file_name(name: &str) -> Option<Format> {
        Format::parse(name.rsplit_once('.')?.1).ok()
    }
}

/// An export request after validation.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportRequest {
    /// The file format.
    pub format: Format,
    /// The order, as in the list.
    pub sort: Sort,
    /// The filters, as in the list.
    pub filters: FilterSet,
}

/// The tenant's leads matching a list request, page by page, to the end.
pub struct LeadPages {
    deps: Deps,
    leads: LeadService,
    tenant: Tenant,
    req: ListRequest,
    /// On a store with its own lead index: the (sort value, id) of the last lead read.
    after: Option<(SortValue, String)>,
    done: bool,
}

/// Leads one read of the store's lead index hands to an export: larger than a list page, as
/// nothing is returned to a client in between, still a few megabytes of decoded leads.
const INDEX_CHUNK: u32 = 2_000;

impl LeadPages {
    /// The next non-empty page; `None` after the last lead.
    pub async fn next(&mut self) -> Result<Option<Vec<Lead>>> {
        if self.deps.store.lead_index().is_some() {
            return self.next_indexed().await;
        }
        while !self.done {
            let page = self.leads.list(&self.tenant, &self.req).await?;
            match page.next_cursor {
                Some(c) => self.req.cursor = Some(c),
                None => self.done = true,
            }
            // A list page may be empty when its read budget ran out between matches.
            if !page.leads.is_empty() {
                return Ok(Some(page.leads));
            }
        }
        Ok(None)
    }

    /// The walk `LeadService::list` makes on a store with a lead index (the same scan in list
    /// order, the same filter evaluator deciding every candidate), minus what only a client
    /// needs between pages: signing and checking a cursor, re-reading the lead after the page.
    async fn next_indexed(&mut self) -> Result<Option<Vec<Lead>>> {
        let Some(index) = self.deps.store.lead_index() else {
            return Ok(None);
        };
        let partition = crate::schema::tenant_pk(&self.tenant.account_id);
        let (filters, sort) = (&self.req.filters, &self.req.sort);
        while !self.done {
            let bodies = index
                .scan_leads(LeadScan {
                    partition: &partition,
                    filters,
                    sort,
                    after: self.after.as_ref().map(|(v, id)| (v, id.as_str())),
                    limit: INDEX_CHUNK,
                })
                .await?;
            self.done = (bodies.len() as u32) < INDEX_CHUNK;
            let mut page = Vec::with_capacity(bodies.len());
            for (i, body) in bodies.iter().enumerate() {
                let lead: Lead = from_body(body)?;
                // The walk resumes after the last lead read, matching or not.
                if i + 1 == bodies.len() {
                    self.after = Some((sort.field.value(&lead), lead.id.clone()));
                }
                if filters.matches(&lead) {
                    page.push(lead);
                }
            }
            if !page.is_empty() {
                return Ok(Some(page));
            }
        }
        Ok(None)
    }
}

/// What `delivery=url` hands back.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivered {
    /// The link; it works without credentials until `expires_at`. A link starting with `/` is
    /// relative to the server that answered.
    pub url: String,
    /// Unix seconds after which the link stops working.
    pub expires_at: i64,
    /// The file format.
    pub format: Format,
    /// Leads exported.
    pub rows: u64,
    /// File size in bytes.
    pub bytes: u64,
    /// The file on this machine's disk, when the store keeps files locally.
    pub local_path: Option<std::path::PathBuf>,
}

/// A file reached through a signed link.
pub struct DownloadFile {
    /// The bytes.
    pub download: crate::ports::Download,
    /// The format (from the file name).
    pub format: Format,
    /// The file name to save as.
    pub file_name: String,
}

/// Exports of leads.
#[derive(Clone)]
pub struct ExportService {
    deps: Deps,
    leads: LeadService,
    objects: Option<Arc<dyn ObjectStore>>,
    link_ttl_secs: u64,
}

impl ExportService {
    /// Builds the service; without object storage `delivery=url` is refused.
    pub fn new(
        deps: Deps,
        leads: LeadService,
        objects: Option<Arc<dyn ObjectStore>>,
        link_ttl_secs: u64,
    ) -> Self {
        ExportService {
            deps,
            leads,
            objects,
            link_ttl_secs,
        }
    }

    /// The same service writing `delivery=url` files to `objects`.
    pub fn with_objects(mut self, objects: Arc<dyn ObjectStore>) -> Self {
        self.objects = Some(objects);
        self
    }

    /// Every lead of the tenant matching `filters`, in `sort` order, page by page.
    pub fn pages(&self, t: &Tenant, sort: &Sort, filters: &FilterSet) -> LeadPages {
        LeadPages {
            deps: self.deps.clone(),
            leads: self.leads.clone(),
            tenant: t.clone(),
            req: ListRequest {
                limit: MAX_LIMIT,
                cursor: None,
                sort: sort.clone(),
                filters: filters.clone(),
            },
            after: None,
            done: false,
        }
    }

    /// Starts an export. Everything that can be refused (a sort over too many candidates, a
    /// store failure) is refused here, before the caller commits to a response; the rest is
    /// produced by [`Export::next_chunk`].
    pub async fn open(&self, t: &Tenant, req: &ExportRequest) -> Result<Export> {
        let mut pages = self.pages(t, &req.sort, &req.filters);
        let state = match req.format {
            Format::Json => {
                let first = pages.next().await?;
                State::Json {
                    pages,
                    pending: first,
                    started: false,
                }
            }
            Format::Csv | Format::Xlsx => {
                let names = self.attribute_names(t, req).await?;
                let columns = Columns::new(names);
                if req.format == Format::Csv {
                    State::Csv {
                        pages,
                        columns,
                        started: false,
                    }
                } else {
                    State::Xlsx {
                        pages: Some(pages),
                        columns,
                        file: None,
                    }
                }
            }
        };
        let now = self.deps.clock.now_secs();
        let stamp: String = rfc3339(now)
            .chars()
            .filter(|c| *c != '-' && *c != ':')
            .collect();
        Ok(Export {
            format: req.format,
            file_name: format!("leads-{stamp}.{}", req.format.as_str()),
            rows: 0,
            bytes: 0,
            created_at: now,
            state,
        })
    }

    /// Every attribute name of the leads an export holds (the `attr:<name>` columns of CSV and
    /// XLSX). Without filters on a store with its own lead index, every lead of the tenant is in
    /// the export, so the store answers from its per-attribute index without reading a lead;
    /// otherwise this walks the export's own list pages.
    async fn attribute_names(&self, t: &Tenant, req: &ExportRequest) -> Result<BTreeSet<String>> {
        let mut names = BTreeSet::new();
        match self.deps.store.lead_index() {
            Some(index) if req.filters.is_empty() => {
                let partition = crate::schema::tenant_pk(&t.account_id);
                names.extend(index.attribute_names(&partition).await?);
            }
            _ => {
                let mut scan = self.pages(t, &req.sort, &req.filters);
                while let Some(page) = scan.next().await? {
                    for lead in &page {
                        add_names(&mut names, lead.attributes.iter().map(|a| &a.name));
                    }
                }
            }
        }
        Ok(names)
    }

    /// Writes the export to object storage and returns a link to it (`delivery=url`).
    pub async fn deliver(&self, t: &Tenant, req: &ExportRequest) -> Result<Delivered> {
        let objects = self.objects.as_ref().ok_or_else(|| {
            Error::invalid("delivery: this deployment has no export storage configured")
        })?;
        let mut export = self.open(t, req).await?;
        let now_ms = self.deps.clock.now_ms();
        let key = format!(
            "exports/{}/{}/{}",
            t.account_id,
            self.deps.ids.time_ordered(now_ms).simple(),
            export.file_name
        );
        let mut upload = objects.upload(&key, req.format.content_type()).await?;
        loop {
            let step = match export.next_chunk().await {
                Ok(Some(chunk)) => upload.write(chunk).await.map(|_| true),
                Ok(None) => Ok(false),
                Err(e) => Err(e),
            };
            match step {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => {
                    upload.abort().await;
                    return Err(e);
                }
            }
        }
        upload.finish().await?;
        let now = self.deps.clock.now_secs();
        let expires_at = now + self.link_ttl_secs as i64;
        let url = objects
            .link(&key, &export.file_name, now, expires_at)
            .await?;
        Ok(Delivered {
            url,
            expires_at,
            format: req.format,
            rows: export.rows,
            bytes: export.bytes,
            local_path: objects.local_path(&key),
        })
    }

    /// Opens the file behind a signed link served by this process; refused when the link was
    /// changed or has expired.
    pub async fn download(&self, key: &str, expires: i64, sig: &str) -> Result<DownloadFile> {
        let objects = self
            .objects
            .as_ref()
            .ok_or_else(|| Error::NotFound("No such download".into()))?;
        let file_name = key.rsplit('/').next().unwrap_or_default().to_string();
        let format = Format::of_file_name(&file_name)
            .ok_or_else(|| Error::NotFound("No such download".into()))?;
        let now = self.deps.clock.now_secs();
        let download = objects.open_signed(key, expires, sig, now).await?;
        Ok(DownloadFile {
            download,
            format,
            file_name,
        })
    }
}

/// Adds the names not seen yet (allocating only for those).
fn add_names<'a>(names: &mut BTreeSet<String>, attrs: impl Iterator<Item = &'a String>) {
    for name in attrs {
        if !names.contains(name) {
            names.insert(name.clone());
        }
    }
}

enum State {
    Csv {
        pages: LeadPages,
        columns: Columns,
        started: bool,
    },
    Json {
        pages: LeadPages,
        pending: Option<Vec<Lead>>,
        started: bool,
    },
    Xlsx {
        pages: Option<LeadPages>,
        columns: Columns,
        file: Option<tokio::fs::File>,
    },
    Done,
}

/// An export in progress: the file, chunk by chunk.
pub struct Export {
    /// The format.
    pub format: Format,
    /// The file name to offer (`leads-<UTC time>.<ext>`).
    pub file_name: String,
    rows: u64,
    bytes: u64,
    /// When the export was opened (Unix seconds, the service clock): the workbook's creation
    /// time, so the same export at the same moment is the same file however it is delivered.
    created_at: i64,
    state: State,
}

impl Export {
    /// Leads encoded so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Bytes produced so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The next chunk of the file; `None` at its end.
    pub async fn next_chunk(&mut self) -> Result<Option<Bytes>> {
        let out = match &mut self.state {
            State::Done => None,
            State::Csv {
                pages,
                columns,
                started,
            } => {
                let mut buf = Vec::with_capacity(256 * 1024);
                if !*started {
                    *started = true;
                    let headers = columns.headers();
                    push_csv_record(&mut buf, headers.iter().map(|h| h.as_bytes()));
                }
                match pages.next().await? {
                    Some(page) => {
                        self.rows += page.len() as u64;
                        write_csv_rows(&mut buf, columns, &page);
                    }
                    None => self.state = State::Done,
                }
                // The header of an empty export still comes out before the end.
                if buf.is_empty() {
                    None
                } else {
                    Some(Bytes::from(buf))
                }
            }
            State::Json {
                pages,
                pending,
                started,
            } => {
                let mut buf = Vec::with_capacity(256 * 1024);
                let page = match pending.take() {
                    Some(p) => Some(p),
                    None if *started => pages.next().await?,
                    None => None,
                };
                if !*started {
                    buf.push(b'[');
                }
                match page {
                    Some(page) => {
                        for (i, lead) in page.iter().enumerate() {
                            if *started || i > 0 {
                                buf.push(b',');
                            }
                            serde_json::to_writer(&mut buf, lead).map_err(Error::internal)?;
                        }
                        self.rows += page.len() as u64;
                        *started = true;
                    }
                    None => {
                        buf.push(b']');
                        self.state = State::Done;
                    }
                }
                Some(Bytes::from(buf))
            }
            State::Xlsx {
                pages,
                columns,
                file,
            } => {
                if let Some(pages) = pages.take() {
                    let (f, rows) = build_xlsx(pages, columns.clone(), self.created_at).await?;
                    self.rows = rows;
                    *file = Some(f);
                }
                let f = file
                    .as_mut()
                    .ok_or_else(|| Error::internal("xlsx file missing"))?;
                let mut buf = vec![0u8; FILE_CHUNK];
                let n = f.read(&mut buf).await.map_err(Error::internal)?;
                if n == 0 {
                    self.state = State::Done;
                    None
                } else {
                    buf.truncate(n);
                    Some(Bytes::from(buf))
                }
            }
        };
        if let Some(b) = &out {
            self.bytes += b.len() as u64;
        }
        Ok(out)
    }
}

/// Appends one CSV field: quoted (quotes doubled) when it holds a delimiter, a quote or a line
/// break, as is, otherwise. The same bytes as the `csv` crate's writer with its defaults
/// (`QuoteStyle::Necessary`, `\n` terminator), which the import reads back.
fn push_csv_field(buf: &mut Vec<u8>, field: &[u8]) {
    if field
        .iter()
        .any(|b| matches!(b, b',' | b'"' | b'\r' | b'\n'))
    {
        buf.push(b'"');
        for part in field.split_inclusive(|b| *b == b'"') {
            buf.extend_from_slice(part);
            if part.last() == Some(&b'"') {
                buf.push(b'"');
            }
        }
        buf.push(b'"');
    } else {
        buf.extend_from_slice(field);
    }
}

/// Appends a record of several fields (a lone empty field would need quoting to stay a record;
/// exported records always have more than one).
fn push_csv_record<'a>(buf: &mut Vec<u8>, fields: impl Iterator<Item = &'a [u8]>) {
    for (i, f) in fields.enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        push_csv_field(buf, f);
    }
    buf.push(b'\n');
}

/// Appends `x` as `f64`'s `Display` writes it; whole numbers, most of what leads hold (counts,
/// ratings, scores), skip the float formatter.
fn push_number(buf: &mut Vec<u8>, x: f64) {
    if x.fract() == 0.0 && x.abs() < 1e15 && !(x == 0.0 && x.is_sign_negative()) {
        let mut n = x as i64;
        if n < 0 {
            buf.push(b'-');
            n = -n;
        }
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        buf.extend_from_slice(&digits[i..]);
    } else {
        use std::io::Write as _;
        let _ = write!(buf, "{x}");
    }
}

/// Appends the rows of `page`, one CSV record per lead.
fn write_csv_rows(buf: &mut Vec<u8>, columns: &Columns, page: &[Lead]) {
    let mut cells = Vec::new();
    let mut text = String::new();
    for lead in page {
        columns.row(lead, &mut cells);
        for (i, cell) in cells.iter().enumerate() {
            if i > 0 {
                buf.push(b',');
            }
            match cell {
                Cell::Empty => {}
                Cell::Text(s) => match neutralise(s) {
                    std::borrow::Cow::Borrowed(s) => push_csv_field(buf, s.as_bytes()),
                    std::borrow::Cow::Owned(o) => push_csv_field(buf, o.as_bytes()),
                },
                Cell::Number(x) => push_number(buf, *x),
                Cell::Bool(true) => buf.extend_from_slice(b"true"),
                Cell::Bool(false) => buf.extend_from_slice(b"false"),
                Cell::Time(t) => {
                    // RFC 3339 text never needs quoting.
                    text.clear();
                    push_rfc3339(*t, &mut text);
                    buf.extend_from_slice(text.as_bytes());
                }
            }
        }
        buf.push(b'\n');
    }
}

/// Writes the workbook in rust_xlsxwriter's constant-memory mode (each row goes to a temporary
/// file as it is written) on a blocking thread fed page by page, then hands back the finished
/// file, rewound. The zip container needs the whole sheet before its directory is written, so
/// the XLSX bytes start once the last page is read; memory stays flat all the same.
async fn build_xlsx(
    mut pages: LeadPages,
    columns: Columns,
    created_at: i64,
) -> Result<(tokio::fs::File, u64)> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Vec<Lead>>(2);
    let writer = tokio::task::spawn_blocking(move || write_xlsx(&columns, created_at, rx));
    let mut fed: Result<()> = Ok(());
    loop {
        match pages.next().await {
            Ok(Some(page)) => {
                if tx.send(page).await.is_err() {
                    break;
                }
            }
            Ok(None) => break,
            Err(e) => {
                fed = Err(e);
                break;
            }
        }
    }
    drop(tx);
    let written = writer.await.map_err(Error::internal)?;
    fed?;
    let (file, rows) = written?;
    Ok((tokio::fs::File::from_std(file), rows))
}

fn xlsx_err(e: rust_xlsxwriter::XlsxError) -> Error {
    Error::internal(format!("xlsx: {e}"))
}

fn write_xlsx(
    columns: &Columns,
    created_at: i64,
    mut rx: tokio::sync::mpsc::Receiver<Vec<Lead>>,
) -> Result<(std::fs::File, u64)> {
    use rust_xlsxwriter::{DocProperties, ExcelDateTime, Format as XFormat, Workbook};
    let mut wb = Workbook::new();
    wb.set_zip_compression_level(XLSX_ZIP_LEVEL);
    let created = ExcelDateTime::from_timestamp(created_at).map_err(xlsx_err)?;
    wb.set_properties(&DocProperties::new().set_creation_datetime(&created));
    let bold = XFormat::new().set_bold();
    let date = XFormat::new().set_num_format("yyyy-mm-dd hh:mm:ss");
    let headers = columns.headers();
    let new_sheet = |wb: &mut Workbook| -> Result<()> {
        let ws = wb.add_worksheet_with_constant_memory().map_err(xlsx_err)?;
        for (c, h) in headers.iter().enumerate() {
            ws.write_string_with_format(0, c as u16, h, &bold)
                .map_err(xlsx_err)?;
        }
        Ok(())
    };
    new_sheet(&mut wb)?;
    let mut sheet = 0usize;
    let mut row: u32 = 1;
    let mut rows: u64 = 0;
    while let Some(page) = rx.blocking_recv() {
        let mut cells = Vec::new();
        for lead in &page {
            if row == XLSX_MAX_ROWS {
                new_sheet(&mut wb)?;
                sheet += 1;
                row = 1;
            }
            let ws = wb.worksheet_from_index(sheet).map_err(xlsx_err)?;
            columns.row(lead, &mut cells);
            for (c, cell) in cells.iter().enumerate() {
                let c = c as u16;
                match cell {
                    Cell::Empty => {}
                    Cell::Text(s) => {
                        ws.write_string(row, c, s.as_ref()).map_err(xlsx_err)?;
                    }
                    Cell::Number(x) => {
                        ws.write_number(row, c, *x).map_err(xlsx_err)?;
                    }
                    Cell::Bool(b) => {
                        ws.write_boolean(row, c, *b).map_err(xlsx_err)?;
                    }
                    Cell::Time(t) => {
                        let dt = ExcelDateTime::from_timestamp(*t).map_err(xlsx_err)?;
                        ws.write_datetime_with_format(row, c, &dt, &date)
                            .map_err(xlsx_err)?;
                    }
                }
            }
            row += 1;
            rows += 1;
        }
    }
    let mut file = tempfile::tempfile().map_err(Error::internal)?;
    wb.save_to_writer(&mut file).map_err(xlsx_err)?;
    file.seek(SeekFrom::Start(0)).map_err(Error::internal)?;
    Ok((file, rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hand-written CSV encoder must produce the bytes of the `csv` crate's writer, which the
    /// importer (and every spreadsheet) reads.
    #[test]
    fn csv_records_match_the_csv_crate() {
        let fields: [&[u8]; 12] = [
            b"",
            b"plain",
            b"a,b",
            b"say \"hi\"",
            b"\"",
            b"\"\"x\"",
            b"line\nbreak",
            b"cr\rhere",
            b"'=1+1",
            "Zürich, CH".as_bytes(),
            b"  spaced  ",
            b"#hash",
        ];
        let mut ours = Vec::new();
        let mut theirs = csv::WriterBuilder::new().from_writer(Vec::new());
        for window in fields.windows(3) {
            push_csv_record(&mut ours, window.iter().copied());
            theirs.write_record(window).unwrap();
        }
        assert_eq!(
            String::from_utf8(ours).unwrap(),
            String::from_utf8(theirs.into_inner().unwrap()).unwrap()
        );
    }

    #[test]
    fn numbers_are_written_as_display_writes_them() {
        for x in [
            0.0,
            -0.0,
            1.0,
            -1.0,
            4.5,
            -2.25,
            1e15,
            999_999_999_999_999.0,
            -1e14,
            0.1,
            1e-7,
            1e300,
            12345.0,
            -987654321.0,
        ] {
            let mut buf = Vec::new();
            push_number(&mut buf, x);
            assert_eq!(String::from_utf8(buf).unwrap(), format!("{x}"), "{x}");
        }
    }
}
