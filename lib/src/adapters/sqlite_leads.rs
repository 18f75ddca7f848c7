//! The embedded store's own lead table: every lead item of the `leads` table is mirrored, in the
//! same SQLite transaction, into `lead_rows` (one row per lead, one typed column per sortable
//! field, with real indexes) and `lead_attrs` (one row per custom attribute, for `attr:<name>`
//! sorts). List requests then read leads in list order from an index, with the indexable part of
//! their filters pushed into SQL, instead of imitating DynamoDB's key ranges.
//!
//! Columns hold exactly what the domain compares ([`SortField::value`]): text case-folded by Rust
//! (so SQLite's byte-wise BINARY order is the domain's `String` order), numbers as the integer
//! image of `f64::total_cmp` (so SQLite's integer order is the domain's number order, `-0.0`
//! included), a missing value as NULL. The SQL filter is only ever a superset of the real filter:
//! the service decides every returned lead with the one Rust evaluator.
//!
//! Rows name their partition by a number (`lead_parts`), not by the partition key: every index
//! entry starts with the partition, and a key of forty-odd bytes in each of twenty indexes
//! made the indexes twice as large, and every comparison in them start with a forty-byte
//! `memcmp` that always found the keys equal.

use std::sync::OnceLock;

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, params, params_from_iter};

use crate::domain::filter::{ArrOp, NumOp, NumRef, Pred, TextOp, TextRef};
use crate::domain::lead::{Lead, TextField};
use crate::domain::query::{SortField, SortOrder, SortValue};
use crate::ports::LeadScan;

/// The physical name of the leads table in `items.tbl`.
fn leads_tbl() -> &'static str {
    crate::schema::table_def(crate::ports::Table::Leads).suffix
}

/// Whether an item of the leads table is a lead (and so mirrored here).
pub(super) fn is_lead_key(tbl: &str, sk: &str) -> bool {
    tbl == leads_tbl() && sk.starts_with(crate::schema::LEAD_PREFIX)
}

/// A typed column of `lead_rows`.
struct Col {
    /// SQL column name.
    name: String,
    /// The sort field whose value the column holds.
    field: SortField,
    /// Whether the column has its own `(pk, column, sk)` index.
    indexed: bool,
    /// Whether a lead may have no value in the column. Such a column's index holds only the
    /// leads that have one (see [`schema_sql`]).
    sparse: bool,
}

fn columns() -> &'static [Col] {
    static COLS: OnceLock<Vec<Col>> = OnceLock::new();
    COLS.get_or_init(|| {
        let col = |name: &str, field: SortField, indexed: bool| Col {
            name: format!("c_{name}"),
            sparse: !matches!(
                field,
                SortField::CreatedAt
                    | SortField::UpdatedAt
                    | SortField::LastInteractionAt
                    | SortField::Score
                    | SortField::Name
                    | SortField::Source
                    | SortField::Status
            ),
            field,
            indexed,
        };
        let mut v = vec![
            // The `created_at` order is the lead's key order (see `created_order_sql`): the
            // primary key of `lead_rows` serves it, and an index of its own would only cost
            // every write.
            col("created_at", SortField::CreatedAt, false),
            col("updated_at", SortField::UpdatedAt, true),
            col("last_interaction_at", SortField::LastInteractionAt, true),
            col("score", SortField::Score, true),
            col("rating", SortField::Rating, true),
            col("review_count", SortField::ReviewCount, true),
            col("latitude", SortField::Latitude, false),
            col("longitude", SortField::Longitude, false),
            col("name", SortField::Name, true),
            col("source", SortField::Source, true),
            col("status", SortField::Status, true),
        ];
        for f in TextField::ALL {
            // Free text and ids nobody sorts a large account by get no index of their own: a
            // sort on them is a scan with a top-N sort, still correct at any size.
            let indexed = !matches!(
                f,
                TextField::Description
                    | TextField::Address
                    | TextField::PostalCode
                    | TextField::SourceId
                    | TextField::LogoUrl
            );
            v.push(col(f.as_str(), SortField::Text(f), indexed));
        }
        v
    })
}

fn col_of(field: &SortField) -> Option<&'static Col> {
    columns().iter().find(|c| &c.field == field)
}

/// Composite indexes for the common equality + sort pairs. An equality paired with the
/// `created_at` sort needs none: the column's own `(pid, column, sk)` index is in `created_at`
/// order within one value (see [`created_hint`]).
const COMPOSITES: &[(&str, &str)] = &[("c_city", "c_rating"), ("c_category", "c_rating")];

/// Equality columns whose own index serves a `created_at` sort, most selective first (the
/// order DynamoDB's planner prefers too, lib/docs/query-cost.md).
const CREATED_EQ: &[&str] = &["c_city", "c_category", "c_source", "c_status"];

/// The schema of the lead tables and their indexes.
///
/// The index of a column leads may leave empty (rating, phone, category...) is partial: it
/// holds the leads with a value only, like a sparse DynamoDB index. Leads from forms and
/// scrapes miss several such fields each, and every index a write touches costs it about two
/// pages of the write-ahead log per group commit even when the entry is a NULL (SQLite
/// rebalances three sibling leaves whenever one fills; benchmarks.md): the missing ones then
/// cost nothing. The leads without a value are listed in key order instead (see
/// [`missing_index`]). A composite index is partial on its equality column, which an equality
/// filter always sets.
fn schema_sql() -> String {
    // Typed columns are declared without a type: no affinity, so a phone "0123" stays text and
    // a number key stays an integer, exactly as written.
    let cols: Vec<String> = columns().iter().map(|c| c.name.clone()).collect();
    let mut sql = format!(
        "CREATE TABLE IF NOT EXISTS lead_parts(
             pid INTEGER PRIMARY KEY, pk TEXT NOT NULL UNIQUE);
         CREATE TABLE IF NOT EXISTS lead_rows(
             pid INTEGER NOT NULL, sk TEXT NOT NULL, {}, tags TEXT NOT NULL,
             PRIMARY KEY(pid, sk)) WITHOUT ROWID;
         CREATE TABLE IF NOT EXISTS lead_attrs(
             pid INTEGER NOT NULL, sk TEXT NOT NULL, name TEXT NOT NULL, num INTEGER, txt TEXT,
             PRIMARY KEY(pid, sk, name)) WITHOUT ROWID;
         CREATE INDEX IF NOT EXISTS la_num ON lead_attrs(pid, name, num, sk);
         CREATE INDEX IF NOT EXISTS la_txt ON lead_attrs(pid, name, txt, sk);\n",
        cols.join(", ")
    );
    for c in columns().iter().filter(|c| c.indexed) {
        let only = if c.sparse {
            format!(" WHERE {} IS NOT NULL", c.name)
        } else {
            String::new()
        };
        sql.push_str(&format!(
            "CREATE INDEX IF NOT EXISTS lr_{0} ON lead_rows(pid, {0}, sk){only};\n",
            c.name
        ));
    }
    for (eq, sort) in COMPOSITES {
        sql.push_str(&format!(
            "CREATE INDEX IF NOT EXISTS lr_{eq}_{sort} ON lead_rows(pid, {eq}, {sort}, sk)
                 WHERE {eq} IS NOT NULL;\n"
        ));
    }
    sql
}

/// The indexes that layout 5 made partial, as layout 4 and older had them whole: dropped on
/// opening such a database, and built again by [`schema_sql`].
fn whole_sparse_indexes() -> String {
    let singles = columns()
        .iter()
        .filter(|c| c.indexed && c.sparse)
        .map(|c| format!("DROP INDEX IF EXISTS lr_{};\n", c.name));
    let composites = COMPOSITES
        .iter()
        .map(|(eq, sort)| format!("DROP INDEX IF EXISTS lr_{eq}_{sort};\n"));
    singles.chain(composites).collect()
}

/// The integer whose signed order is `f64::total_cmp`'s order.
pub(super) fn num_key(x: f64) -> i64 {
    let b = x.to_bits() as i64;
    if b < 0 { b ^ i64::MAX } else { b }
}

fn sql_value(v: SortValue) -> SqlValue {
    match v {
        SortValue::Num(x) => SqlValue::Integer(num_key(x)),
        SortValue::Text(s) => SqlValue::Text(s),
        SortValue::Missing => SqlValue::Null,
    }
}

/// Tags, case-folded, each followed by a separator and the whole preceded by one, so "has tag
/// t" is "contains `\x1f` t `\x1f`".
fn tags_text(lead: &Lead) -> String {
    let mut s = String::from("\u{1f}");
    for t in &lead.tags {
        s.push_str(&t.to_lowercase());
        s.push('\u{1f}');
    }
    s
}

/// The number of a partition that has lead rows, if it has any.
fn part_id(conn: &Connection, pk: &str) -> rusqlite::Result<Option<i64>> {
    use rusqlite::OptionalExtension;
    conn.prepare_cached("SELECT pid FROM lead_parts WHERE pk = ?1")?
        .query_row(params![pk], |r| r.get(0))
        .optional()
}

/// The number of a partition, numbered now if it has none yet. In the writer's transaction:
/// a number taken by a transaction that rolls back is given again.
fn part_id_or_new(tx: &Connection, pk: &str) -> rusqlite::Result<i64> {
    if let Some(pid) = part_id(tx, pk)? {
        return Ok(pid);
    }
    tx.prepare_cached("INSERT INTO lead_parts(pk) VALUES (?1)")?
        .execute(params![pk])?;
    Ok(tx.last_insert_rowid())
}

/// Removes the rows of a lead item (before it is replaced or deleted).
pub(super) fn remove(tx: &Connection, pk: &str, sk: &str) -> rusqlite::Result<()> {
    let Some(pid) = part_id(tx, pk)? else {
        return Ok(());
    };
    tx.prepare_cached("DELETE FROM lead_rows WHERE pid=?1 AND sk=?2")?
        .execute(params![pid, sk])?;
    tx.prepare_cached("DELETE FROM lead_attrs WHERE pid=?1 AND sk=?2")?
        .execute(params![pid, sk])?;
    Ok(())
}

/// Writes the rows of a lead item whose old rows are already removed; whether it did. A body
/// that is not a lead (only hand-made test items) gets no rows: it is not listed, as it could
/// not be shown.
pub(super) fn insert(tx: &Connection, pk: &str, sk: &str, body: &[u8]) -> rusqlite::Result<bool> {
    let Ok(lead) = serde_json::from_slice::<Lead>(body) else {
        return Ok(false);
    };
    static INSERT: OnceLock<String> = OnceLock::new();
    let sql = INSERT.get_or_init(|| {
        let names: Vec<&str> = columns().iter().map(|c| c.name.as_str()).collect();
        let marks: Vec<String> = (0..names.len() + 3)
            .map(|i| format!("?{}", i + 1))
            .collect();
        format!(
            "INSERT INTO lead_rows(pid, sk, {}, tags) VALUES ({})",
            names.join(", "),
            marks.join(", ")
        )
    });
    let pid = part_id_or_new(tx, pk)?;
    let mut args: Vec<SqlValue> = Vec::with_capacity(columns().len() + 3);
    args.push(SqlValue::Integer(pid));
    args.push(SqlValue::Text(sk.to_string()));
    for c in columns() {
        args.push(sql_value(c.field.value(&lead)));
    }
    args.push(SqlValue::Text(tags_text(&lead)));
    tx.prepare_cached(sql)?.execute(params_from_iter(args))?;
    if !lead.attributes.is_empty() {
        let mut stmt = tx.prepare_cached(
            "INSERT OR IGNORE INTO lead_attrs(pid, sk, name, num, txt) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for a in &lead.attributes {
            let (num, txt) = match SortField::Attr(a.name.clone()).value(&lead) {
                SortValue::Num(x) => (Some(num_key(x)), None),
                SortValue::Text(s) => (None, Some(s)),
                SortValue::Missing => continue,
            };
            stmt.execute(params![pid, sk, a.name, num, txt])?;
        }
    }
    Ok(true)
}

/// Every distinct attribute name of the partition's leads, sorted.
///
/// `lead_attrs` holds a row per lead and attribute whose value is not null, and validation
/// refuses null attribute values (`AttrType::check`), so its names are the leads' names. The
/// query skips from name to name on the `(pk, name, ...)` index (one seek per distinct name),
/// so its cost follows the number of names, not the number of leads.
pub(super) fn attribute_names(conn: &Connection, pk: &str) -> rusqlite::Result<Vec<String>> {
    let Some(pid) = part_id(conn, pk)? else {
        return Ok(Vec::new());
    };
    let mut stmt = conn.prepare_cached(
        "WITH RECURSIVE n(name) AS (
             SELECT (SELECT min(name) FROM lead_attrs WHERE pid = ?1)
             UNION ALL
             SELECT (SELECT min(name) FROM lead_attrs WHERE pid = ?1 AND name > n.name)
             FROM n WHERE n.name IS NOT NULL)
         SELECT name FROM n WHERE name IS NOT NULL",
    )?;
    stmt.query_map(params![pid], |r| r.get::<_, String>(0))?
        .collect()
}

/// Up to `limit` ids of the partition's leads whose name and city fold to `name_fold` and
/// `city_fold` ([`crate::domain::dedup::fold`]), smallest id first.
///
/// The name index gives the leads whose name column (the name's sort value: folded, cut to
/// [`crate::domain::query::SORT_TEXT_BYTES`]) and city column agree, in id order; names and
/// cities are stored trimmed, so those are the candidates. Each is confirmed on its stored
/// name and city, since two long names may agree on their cut columns only.
pub(super) fn by_name_city(
    conn: &Connection,
    pk: &str,
    name_fold: &str,
    city_fold: &str,
    limit: u32,
) -> rusqlite::Result<Vec<String>> {
    let column = |s: &str| match SortValue::text(s) {
        SortValue::Text(t) => t,
        _ => String::new(),
    };
    let Some(pid) = part_id(conn, pk)? else {
        return Ok(Vec::new());
    };
    let mut stmt = conn.prepare_cached(
        "SELECT r.sk, i.body FROM lead_rows AS r INDEXED BY lr_c_name
         JOIN items AS i ON i.tbl = ?4 AND i.pk = ?5 AND i.sk = r.sk
         WHERE r.pid = ?1 AND r.c_name = ?2 AND r.c_city = ?3 ORDER BY r.sk",
    )?;
    let mut rows = stmt.query(params![
        pid,
        column(name_fold),
        column(city_fold),
        leads_tbl(),
        pk
    ])?;
    let mut out = Vec::new();
    while out.len() < limit as usize {
        let Some(row) = rows.next()? else { break };
        let sk: String = row.get(0)?;
        let body: Vec<u8> = row.get(1)?;
        let same = crate::domain::dedup::name_city_of(&body)
            .is_some_and(|(name, city)| name == name_fold && city == city_fold);
        if let (true, Some(id)) = (same, crate::schema::lead_id_of(&sk)) {
            out.push(id.to_string());
        }
    }
    Ok(out)
}

/// The layout of the lead tables this code reads and writes, as `PRAGMA user_version`:
/// 1 added the lead tables, 2 dropped the name + city items, 3 numbered the partitions, 4
/// dropped the indexes that served the `created_at` order, 5 made the indexes of columns a lead
/// may leave empty partial.
const LAYOUT: i64 = 5;

/// Indexes of layout 3 that layout 4 no longer has (see [`created_filtered_sql`]).
const DROPPED_IN_4: &str = "DROP INDEX IF EXISTS lr_c_created_at;
     DROP INDEX IF EXISTS lr_c_status_c_created_at;
     DROP INDEX IF EXISTS lr_c_source_c_created_at;";

/// Creates the lead tables, or rebuilds them from the items once for a database written
/// with an older layout (or before they existed).
pub(super) fn prepare(conn: &mut Connection) -> rusqlite::Result<()> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version >= LAYOUT {
        return conn.execute_batch(&schema_sql());
    }
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    // Another process may have finished it while this one waited for the write lock.
    let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version == 3 || version == 4 {
        // Only indexes changed: no rebuild of the tables.
        if version == 3 {
            tx.execute_batch(DROPPED_IN_4)?;
        }
        let stored: i64 = tx.query_row("SELECT count(*) FROM lead_rows", [], |r| r.get(0))?;
        if stored > 0 {
            tracing::warn!(
                leads = stored,
                "upgrading the embedded store: building its sparse indexes, once"
            );
        }
        tx.execute_batch(&whole_sparse_indexes())?;
        tx.execute_batch(&schema_sql())?;
        tx.execute_batch(&format!("PRAGMA user_version = {LAYOUT}"))?;
    } else if version < LAYOUT {
        tx.execute_batch(
            "DROP TABLE IF EXISTS lead_rows; DROP TABLE IF EXISTS lead_attrs;
             DROP TABLE IF EXISTS lead_parts;",
        )?;
        tx.execute_batch(&schema_sql())?;
        let upper = crate::schema::LEAD_PREFIX.replace('#', "$");
        let stored: i64 = tx.query_row(
            "SELECT count(*) FROM items WHERE tbl=?1 AND sk >= ?2 AND sk < ?3",
            params![leads_tbl(), crate::schema::LEAD_PREFIX, upper],
            |r| r.get(0),
        )?;
        if stored > 0 {
            // Logged at the default level: at a million leads the rebuild takes minutes, and
            // whoever started the server should know why it is not answering yet.
            tracing::warn!(
                leads = stored,
                "upgrading the embedded store: rebuilding the lead tables from the leads, once"
            );
        }
        let mut rebuilt = 0u64;
        {
            let mut stmt =
                tx.prepare("SELECT pk, sk, body FROM items WHERE tbl=?1 AND sk >= ?2 AND sk < ?3")?;
            let mut rows = stmt.query(params![leads_tbl(), crate::schema::LEAD_PREFIX, upper])?;
            while let Some(row) = rows.next()? {
                let (pk, sk): (String, String) = (row.get(0)?, row.get(1)?);
                if sk.starts_with(crate::schema::LEAD_PREFIX) {
                    let body = row.get_ref(2)?.as_blob()?;
                    rebuilt += u64::from(insert(&tx, &pk, &sk, body)?);
                }
            }
        }
        if version < 2 {
            // The name + city lookup items of a database written before the store found
            // leads by name and city itself: nothing reads them any more, and nothing would
            // delete them with their leads.
            tx.execute(
                "DELETE FROM items WHERE tbl = ?1 AND sk >= 'NC#' AND sk < 'NC$'",
                params![leads_tbl()],
            )?;
        }
        tx.execute_batch(&format!("PRAGMA user_version = {LAYOUT}"))?;
        if stored > 0 {
            tracing::warn!(
                leads = rebuilt,
                "the lead tables are rebuilt (layout {LAYOUT})"
            );
        }
    }
    tx.commit()
}

/// One stretch of the list order that one index range serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Segment {
    /// Leads with a value in the column, by (value, sk).
    Present,
    /// Leads without a value, by sk.
    Missing,
    /// Leads whose attribute is a number, by (number, sk).
    AttrNum,
    /// Leads whose attribute is text, by (text, sk).
    AttrText,
}

/// The segments of a sort, in list order: present values (numbers before text, reversed by
/// `desc`), then missing values, as [`crate::domain::query::compare`] orders them.
fn segments(field: &SortField, order: SortOrder) -> &'static [Segment] {
    match (field, order) {
        (SortField::Attr(_), SortOrder::Asc) => {
            &[Segment::AttrNum, Segment::AttrText, Segment::Missing]
        }
        (SortField::Attr(_), SortOrder::Desc) => {
            &[Segment::AttrText, Segment::AttrNum, Segment::Missing]
        }
        // Every lead has a `created_at`; with no index on the column a query for the missing
        // ones would read the whole partition to find none.
        (SortField::CreatedAt, _) => &[Segment::Present],
        _ => &[Segment::Present, Segment::Missing],
    }
}

/// The segment a sort value belongs to.
fn segment_of(field: &SortField, v: &SortValue) -> Segment {
    match (field, v) {
        (_, SortValue::Missing) => Segment::Missing,
        (SortField::Attr(_), SortValue::Num(_)) => Segment::AttrNum,
        (SortField::Attr(_), SortValue::Text(_)) => Segment::AttrText,
        _ => Segment::Present,
    }
}

fn text_col(f: TextRef) -> &'static str {
    let field = match f {
        TextRef::Name => SortField::Name,
        TextRef::Source => SortField::Source,
        TextRef::Status => SortField::Status,
        TextRef::Opt(t) => SortField::Text(t),
    };
    &col_of(&field).expect("every text field has a column").name
}

fn num_col(f: NumRef) -> &'static str {
    let field = match f {
        NumRef::Rating => SortField::Rating,
        NumRef::ReviewCount => SortField::ReviewCount,
        NumRef::Score => SortField::Score,
        NumRef::Latitude => SortField::Latitude,
        NumRef::Longitude => SortField::Longitude,
        NumRef::CreatedAt => SortField::CreatedAt,
        NumRef::UpdatedAt => SortField::UpdatedAt,
        NumRef::LastInteractionAt => SortField::LastInteractionAt,
    };
    &col_of(&field)
        .expect("every number field has a column")
        .name
}

/// The composite index for an `and` equality filter paired with the sort column, if any.
///
/// SQLite has no statistics about a fresh account, and given `city = ? AND rating >= ?` ordered
/// by rating it prefers the rating index (a range plus the order) over `(city, rating)`, which
/// serves the same order reading only the city's leads. The pair is certain to be better, so it
/// is named.
fn composite_for(scan: &LeadScan<'_>, sort_col: &str) -> Option<String> {
    COMPOSITES.iter().find_map(|(eq, sort)| {
        (*sort == sort_col && has_and_eq(scan, eq)).then(|| format!("lr_{eq}_{sort}"))
    })
}

/// Most `in` values pushed into SQL; a longer list is left to the Rust evaluator alone.
const MAX_IN: usize = 100;

/// Byte length above which a text column may hold a cut value: [`SortValue::text`] cuts at
/// the last character boundary at or below `SORT_TEXT_BYTES`, and a character is at most four
/// bytes.
const MAYBE_CUT: usize = crate::domain::query::SORT_TEXT_BYTES - 4;

/// A filter's text as the columns hold it (case-folded, cut like every sort value).
fn column_text(needle: &str) -> String {
    match SortValue::text(needle) {
        SortValue::Text(s) => s,
        _ => unreachable!("a text's sort value is a text"),
    }
}

/// SQL conditions on `r` that every lead matching the `and` filters satisfies (a superset:
/// whatever is not certain to be exact is widened or left to the Rust evaluator).
fn pushdown(scan: &LeadScan<'_>, args: &mut Vec<SqlValue>) -> String {
    fn push(args: &mut Vec<SqlValue>, v: SqlValue) -> String {
        args.push(v);
        format!("?{}", args.len())
    }
    let mut sql = String::new();
    for pred in scan.filters.and_preds() {
        match pred {
            Pred::Text {
                field,
                op,
                needle,
                list,
            } => {
                let c = text_col(*field);
                // Columns hold texts cut to `SORT_TEXT_BYTES`, so a condition compares the
                // needle cut the same way (equal texts have equal cuts, and a text starting
                // with the needle starts with its cut), and `contains` lets every text that
                // may have been cut through: its match may lie past the cut.
                match op {
                    TextOp::Eq => {
                        let a = push(args, SqlValue::Text(column_text(needle)));
                        sql.push_str(&format!(" AND r.{c} = {a}"));
                    }
                    TextOp::In if !list.is_empty() && list.len() <= MAX_IN => {
                        let marks: Vec<String> = list
                            .iter()
                            .map(|v| push(args, SqlValue::Text(column_text(v))))
                            .collect();
                        sql.push_str(&format!(" AND r.{c} IN ({})", marks.join(", ")));
                    }
                    // A key range on the case-folded column, never `substr`.
                    TextOp::StartsWith if !needle.is_empty() => {
                        let cut = column_text(needle);
                        if let Some(upper) = super::sqlite::prefix_upper_bound(&cut) {
                            let b = push(args, SqlValue::Text(upper));
                            sql.push_str(&format!(" AND r.{c} < {b}"));
                        }
                        let a = push(args, SqlValue::Text(cut));
                        sql.push_str(&format!(" AND r.{c} >= {a}"));
                    }
                    TextOp::Contains => {
                        let a = push(args, SqlValue::Text(needle.clone()));
                        sql.push_str(&format!(
                            " AND (instr(r.{c}, {a}) > 0 OR length(CAST(r.{c} AS BLOB)) > {MAYBE_CUT})"
                        ));
                    }
                    TextOp::IsNotEmpty => sql.push_str(&format!(" AND r.{c} <> ''")),
                    TextOp::IsEmpty => sql.push_str(&format!(" AND (r.{c} IS NULL OR r.{c} = '')")),
                    _ => {}
                }
            }
            Pred::Num { field, op, x } => {
                let c = num_col(*field);
                // Bounds are inclusive and zero covers both signed zeros: IEEE `>` and `==`
                // treat -0.0 and 0.0 as equal where total order does not.
                let lo = if *x == 0.0 {
                    num_key(-0.0)
                } else {
                    num_key(*x)
                };
                let hi = if *x == 0.0 { num_key(0.0) } else { num_key(*x) };
                match op {
                    NumOp::Eq => {
                        let a = push(args, SqlValue::Integer(lo));
                        let b = push(args, SqlValue::Integer(hi));
                        sql.push_str(&format!(" AND r.{c} >= {a} AND r.{c} <= {b}"));
                    }
                    NumOp::Gt | NumOp::Gte => {
                        let a = push(args, SqlValue::Integer(lo));
                        sql.push_str(&format!(" AND r.{c} >= {a}"));
                    }
                    NumOp::Lt | NumOp::Lte => {
                        let b = push(args, SqlValue::Integer(hi));
                        sql.push_str(&format!(" AND r.{c} <= {b}"));
                    }
                    NumOp::Neq => {}
                }
            }
            Pred::Tags { op, needle } => match op {
                ArrOp::Contains => {
                    let a = push(args, SqlValue::Text(format!("\u{1f}{needle}\u{1f}")));
                    sql.push_str(&format!(" AND instr(r.tags, {a}) > 0"));
                }
                ArrOp::Empty => sql.push_str(" AND r.tags = char(31)"),
                ArrOp::NotEmpty => sql.push_str(" AND r.tags <> char(31)"),
                ArrOp::NotContains => {}
            },
            Pred::LocationSet(true) => {
                sql.push_str(" AND r.c_latitude IS NOT NULL AND r.c_longitude IS NOT NULL")
            }
            // Free-text search spans several columns: the Rust evaluator decides it.
            Pred::LocationSet(false)
            | Pred::WithinRadius { .. }
            | Pred::Attr { .. }
            | Pred::Search(_) => {}
        }
    }
    sql
}

/// Reads up to `scan.limit` lead bodies in list order (see [`crate::ports::LeadIndex`]).
pub(super) fn scan(conn: &Connection, scan: &LeadScan<'_>) -> rusqlite::Result<Vec<Vec<u8>>> {
    let Some(pid) = part_id(conn, scan.partition)? else {
        return Ok(Vec::new());
    };
    let field = &scan.sort.field;
    let order = scan.sort.order;
    let segs = segments(field, order);
    let first = match scan.after {
        None => 0,
        Some((v, _)) => {
            let s = segment_of(field, v);
            segs.iter().position(|x| *x == s).unwrap_or(segs.len())
        }
    };
    let col = match field {
        SortField::Attr(_) => None,
        f => Some(col_of(f).expect("every non-attribute sort field has a column")),
    };
    let mut out: Vec<Vec<u8>> = Vec::new();
    for (i, seg) in segs.iter().enumerate().skip(first) {
        let want = scan.limit as usize - out.len();
        if want == 0 {
            break;
        }
        let after = if i == first { scan.after } else { None };
        let (sql, args) = segment_sql(scan, pid, *seg, col.map(|c| c.name.as_str()), after, want);
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(params_from_iter(args), |r| r.get::<_, Vec<u8>>(0))?;
        for row in rows {
            out.push(row?);
        }
    }
    Ok(out)
}

/// The SQL of one segment of a scan of the partition numbered `pid`, and its arguments: `?1`
/// is the partition's number, `?2` the leads table, `?3` the partition key.
pub(super) fn segment_sql(
    scan: &LeadScan<'_>,
    pid: i64,
    seg: Segment,
    col: Option<&str>,
    after: Option<(&SortValue, &str)>,
    limit: usize,
) -> (String, Vec<SqlValue>) {
    let (dir, cmp) = direction(scan.sort.order);
    let mut args = vec![
        SqlValue::Integer(pid),
        SqlValue::Text(leads_tbl().to_string()),
        SqlValue::Text(scan.partition.to_string()),
    ];
    let after_sk = after.map(|(_, id)| format!("{}{id}", crate::schema::LEAD_PREFIX));
    if seg == Segment::Present && scan.sort.field == SortField::CreatedAt {
        if pushdown(scan, &mut Vec::new()).is_empty() {
            return created_order_sql(scan, args, after_sk, limit);
        }
        return created_filtered_sql(scan, args, after_sk, limit);
    }
    let after_v = after.map(|(v, _)| sql_value(v.clone()));
    // CROSS JOIN keeps the driving table first: the index that yields the order leads.
    let mut sql = match (seg, col, &scan.sort.field) {
        (Segment::Present, Some(c), _) => {
            let hint = composite_for(scan, c).map_or(String::new(), |i| format!(" INDEXED BY {i}"));
            let mut s = format!(
                "SELECT i.body FROM lead_rows r{hint} CROSS JOIN items i
                 WHERE r.pid = ?1 AND i.tbl = ?2 AND i.pk = ?3 AND i.sk = r.sk
                   AND r.{c} IS NOT NULL"
            );
            if let (Some(v), Some(sk)) = (after_v, after_sk) {
                args.push(v);
                args.push(SqlValue::Text(sk));
                let n = args.len();
                s.push_str(&format!(" AND (r.{c}, r.sk) {cmp} (?{}, ?{n})", n - 1));
            }
            s.push_str(&pushdown(scan, &mut args));
            s.push_str(&format!(" ORDER BY r.{c} {dir}, r.sk {dir}"));
            s
        }
        (Segment::Missing, Some(c), _) => {
            let hint = missing_index(scan, c).map_or(String::new(), |i| format!(" INDEXED BY {i}"));
            let mut s = format!(
                "SELECT i.body FROM lead_rows r{hint} CROSS JOIN items i
                 WHERE r.pid = ?1 AND i.tbl = ?2 AND i.pk = ?3 AND i.sk = r.sk
                   AND r.{c} IS NULL"
            );
            if let Some(sk) = after_sk {
                args.push(SqlValue::Text(sk));
                s.push_str(&format!(" AND r.sk {cmp} ?{}", args.len()));
            }
            s.push_str(&pushdown(scan, &mut args));
            s.push_str(&format!(" ORDER BY r.sk {dir}"));
            s
        }
        (Segment::Missing, None, SortField::Attr(name)) => {
            args.push(SqlValue::Text(name.clone()));
            let mut s = String::from(
                "SELECT i.body FROM lead_rows r CROSS JOIN items i
                 WHERE r.pid = ?1 AND i.tbl = ?2 AND i.pk = ?3 AND i.sk = r.sk
                   AND NOT EXISTS (SELECT 1 FROM lead_attrs a
                                   WHERE a.pid = r.pid AND a.sk = r.sk AND a.name = ?4)",
            );
            if let Some(sk) = after_sk {
                args.push(SqlValue::Text(sk));
                s.push_str(&format!(" AND r.sk {cmp} ?{}", args.len()));
            }
            s.push_str(&pushdown(scan, &mut args));
            s.push_str(&format!(" ORDER BY r.sk {dir}"));
            s
        }
        (Segment::AttrNum | Segment::AttrText, None, SortField::Attr(name)) => {
            let c = if seg == Segment::AttrNum {
                "num"
            } else {
                "txt"
            };
            args.push(SqlValue::Text(name.clone()));
            let mut s = format!(
                "SELECT i.body FROM lead_attrs a CROSS JOIN lead_rows r CROSS JOIN items i
                 WHERE a.pid = ?1 AND a.name = ?4 AND a.{c} IS NOT NULL
                   AND r.pid = a.pid AND r.sk = a.sk
                   AND i.tbl = ?2 AND i.pk = ?3 AND i.sk = a.sk"
            );
            if let (Some(v), Some(sk)) = (after_v, after_sk) {
                args.push(v);
                args.push(SqlValue::Text(sk));
                let n = args.len();
                s.push_str(&format!(" AND (a.{c}, a.sk) {cmp} (?{}, ?{n})", n - 1));
            }
            s.push_str(&pushdown(scan, &mut args));
            s.push_str(&format!(" ORDER BY a.{c} {dir}, a.sk {dir}"));
            s
        }
        _ => unreachable!("segments() pairs attribute sorts with attribute segments"),
    };
    // Written into the SQL, not bound: a bound LIMIT makes SQLite re-prepare the cached
    // statement on every run (see `query_sql` in adapters/sqlite.rs). Pages ask for a handful
    // of distinct limits, so the statement cache holds one statement per shape and limit.
    sql.push_str(&format!(" LIMIT {limit}"));
    (sql, args)
}

/// The index to name for the leads without a value in the sort column `col`, by key, if any.
///
/// A whole column index holds them under NULL in key order, and SQLite finds that itself; a
/// composite one holds them so within the equality's value. A partial index holds none: the
/// walk is the key order of `lead_rows`, or of an equality's own index as for `created_at`
/// ([`created_hint`]). That walk steps over the rows of the leads with a value (their bodies
/// are not read): a page of missing ones costs the rows between it and the page before, and
/// the pages of a whole listing together walk the account once, where a whole index made each a
/// seek. That is the price of not indexing what is not there.
fn missing_index(scan: &LeadScan<'_>, col: &str) -> Option<String> {
    let sparse = columns().iter().any(|c| c.name == col && c.sparse);
    composite_for(scan, col).or_else(|| {
        sparse
            .then(|| created_hint(scan).map(|eq| format!("lr_{eq}")))
            .flatten()
    })
}

/// The SQL of a sort order: its `ORDER BY` direction, and the comparison that selects what
/// comes after a cursor.
fn direction(order: SortOrder) -> (&'static str, &'static str) {
    match order {
        SortOrder::Asc => ("ASC", ">"),
        SortOrder::Desc => ("DESC", "<"),
    }
}

/// An equality filter whose column's own index serves the `created_at` order, if any.
///
/// SQLite knows nothing about a fresh account, and given `city = ? AND rating >= ?` ordered by
/// `sk` it may walk the partition in key order and check both; the city's index holds the
/// city's leads in key order, so it reads only those.
fn created_hint(scan: &LeadScan<'_>) -> Option<&'static str> {
    CREATED_EQ.iter().copied().find(|c| has_and_eq(scan, c))
}

/// Whether an `and` filter asks the text column `col` to equal a value.
fn has_and_eq(scan: &LeadScan<'_>, col: &str) -> bool {
    scan.filters
        .and_preds()
        .any(|p| matches!(p, Pred::Text { field, op: TextOp::Eq, .. } if text_col(*field) == col))
}

/// The `created_at` order with conditions SQL can check: `lead_rows` in key order (its
/// primary key, or an equality's index), for the reason given at [`created_order_sql`].
/// `created_at` ties break by id, so after the cursor's lead is after its key.
fn created_filtered_sql(
    scan: &LeadScan<'_>,
    mut args: Vec<SqlValue>,
    after_sk: Option<String>,
    limit: usize,
) -> (String, Vec<SqlValue>) {
    let (dir, cmp) = direction(scan.sort.order);
    let hint = created_hint(scan).map_or(String::new(), |c| format!(" INDEXED BY lr_{c}"));
    let mut sql = format!(
        "SELECT i.body FROM lead_rows r{hint} CROSS JOIN items i
         WHERE r.pid = ?1 AND i.tbl = ?2 AND i.pk = ?3 AND i.sk = r.sk"
    );
    if let Some(sk) = after_sk {
        args.push(SqlValue::Text(sk));
        sql.push_str(&format!(" AND r.sk {cmp} ?{}", args.len()));
    }
    sql.push_str(&pushdown(scan, &mut args));
    sql.push_str(&format!(" ORDER BY r.sk {dir} LIMIT {limit}"));
    (sql, args)
}

/// The `created_at` order without a condition SQL could check: the lead items themselves, in
/// key order.
///
/// Lead ids are UUIDv7 minted from the same clock reading as `created_at`, so the items' key
/// order is `created_at` order with ties broken by id, the order DynamoDB's base table serves
/// too (lib/docs/query-cost.md). Walking `items` reads each lead once, where a walk of
/// `lead_rows` needs a lookup in `items` per lead: an export of 100,000 leads read its bodies
/// 2.3x faster this way (benchmarks.md, against a `created_at` index layout 4 dropped). With a
/// condition on other columns `lead_rows` is walked instead ([`created_filtered_sql`]), as it
/// can check the condition before reading a body.
fn created_order_sql(
    scan: &LeadScan<'_>,
    mut args: Vec<SqlValue>,
    after_sk: Option<String>,
    limit: usize,
) -> (String, Vec<SqlValue>) {
    let prefix = crate::schema::LEAD_PREFIX;
    let upper = super::sqlite::prefix_upper_bound(prefix).expect("the lead prefix has a bound");
    // One bound on each side: with the cursor as a second bound on the same side, SQLite may
    // seek by the other one and step over every lead before the cursor, on every page.
    let (dir, low, high) = match (scan.sort.order, after_sk) {
        (SortOrder::Asc, Some(sk)) => ("ASC", (">", sk), ("<", upper)),
        (SortOrder::Asc, None) => ("ASC", (">=", prefix.to_string()), ("<", upper)),
        (SortOrder::Desc, Some(sk)) => ("DESC", (">=", prefix.to_string()), ("<", sk)),
        (SortOrder::Desc, None) => ("DESC", (">=", prefix.to_string()), ("<", upper)),
    };
    args.push(SqlValue::Text(low.1));
    args.push(SqlValue::Text(high.1));
    let sql = format!(
        "SELECT i.body FROM items i
         WHERE i.tbl = ?2 AND i.pk = ?3 AND i.sk {} ?4 AND i.sk {} ?5
         ORDER BY i.sk {dir} LIMIT {limit}",
        low.0, high.0
    );
    (sql, args)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_keys_order_like_total_cmp() {
        let xs = [
            f64::NEG_INFINITY,
            -1e300,
            -2.0,
            -1.0,
            -1e-300,
            -0.0,
            0.0,
            1e-300,
            1.0,
            4.5,
            1e300,
            f64::INFINITY,
        ];
        for a in xs {
            for b in xs {
                assert_eq!(num_key(a).cmp(&num_key(b)), a.total_cmp(&b), "{a} vs {b}");
            }
        }
    }
}
