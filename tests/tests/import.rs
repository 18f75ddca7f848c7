//! Import, on every backend of the run, through the same pieces `klozeo import` and
//! `klozeo export` use: an export of one account imported into a fresh account gives the same
//! leads (CSV and JSON), rows are deduplicated like `POST /leads/batch` and each row's outcome
//! is reported, and a dry run reports the same outcomes while writing nothing.

use klozeo_core::domain::account::Tenant;
use klozeo_core::domain::filter::FilterSet;
use klozeo_core::domain::query::Sort;
use klozeo_core::edges::import::{CsvRows, json_rows};
use klozeo_core::services::export::{ExportRequest, Format};
use klozeo_core::services::import::{Import, RowOutcome};
use klozeo_tests::{Api, TestServer, backends};
use serde_json::{Value, json};

async fn export_bytes(server: &TestServer, t: &Tenant, format: Format) -> Vec<u8> {
    let req = ExportRequest {
        format,
        sort: Sort::default(),
        filters: FilterSet::default(),
    };
    let mut e = server.app.exports.open(t, &req).await.expect("export");
    let mut out = Vec::new();
    while let Some(c) = e.next_chunk().await.expect("chunk") {
        out.extend_from_slice(&c);
    }
    out
}

/// A lead as the user sees it, without what a new account necessarily changes (ids,
/// timestamps, attribute ids).
fn comparable(l: &Value) -> Value {
    let mut l = l.clone();
    let o = l.as_object_mut().expect("object");
    for k in ["id", "created_at", "updated_at", "last_interaction_at"] {
        o.remove(k);
    }
    if let Some(attrs) = o.get_mut("attributes").and_then(Value::as_array_mut) {
        for a in attrs.iter_mut() {
            a.as_object_mut().expect("attr").remove("id");
        }
        attrs.sort_by_key(|a| a["name"].as_str().unwrap_or_default().to_string());
    }
    l
}

async fn account(server: &TestServer) -> (Api, Tenant) {
    let key = server.account("unlimited").await;
    let t = server
        .app
        .accounts
        .authenticate(&key)
        .await
        .expect("tenant");
    (Api::new(server, &key), t)
}

async fn leads_of(server: &TestServer, t: &Tenant) -> Vec<Value> {
    let v: Value =
        serde_json::from_slice(&export_bytes(server, t, Format::Json).await).expect("JSON");
    v.as_array()
        .expect("array")
        .iter()
        .map(comparable)
        .collect()
}

type Rows = Vec<klozeo_core::Result<klozeo_core::domain::lead::LeadChanges>>;

/// Imports `rows` in chunks of `size`: as `klozeo import` does when `pipelined` (the next chunk
/// is pushed while the one before commits), otherwise each chunk waited for before the next.
async fn run_chunked(
    server: &TestServer,
    t: &Tenant,
    rows: Rows,
    dry: bool,
    size: usize,
    pipelined: bool,
) -> Vec<RowOutcome> {
    let mut imp = Import::new(server.app.ingest.clone(), t.clone(), dry);
    let mut out = Vec::new();
    let mut rows = rows.into_iter();
    loop {
        let chunk: Vec<_> = rows.by_ref().take(size).collect();
        if chunk.is_empty() {
            out.extend(imp.finish().await.expect("import"));
            return out;
        }
        let done = if pipelined {
            imp.push(chunk).await
        } else {
            imp.chunk(chunk).await
        };
        out.extend(done.expect("import"));
    }
}

async fn run(server: &TestServer, t: &Tenant, rows: Rows, dry: bool) -> Vec<RowOutcome> {
    run_chunked(server, t, rows, dry, 7, true).await
}

/// Two chunks in flight give what one chunk after the other gives, when later rows merge into
/// leads earlier rows created or changed, through the same key or a different one.
#[tokio::test]
async fn chunks_in_flight_together_import_like_one_after_the_other() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        let rows = json!([
            // Chunk 1 changes the existing lead through its e-mail ...
            {"name": "Acme Corp", "source": "imp", "email": "x@example.com", "category": "one"},
            {"name": "Filler 1", "source": "imp", "email": "f1@example.com"},
            // ... and chunk 2, with no key in common, through its phone: "two" must win.
            {"name": "Acme Corp.", "source": "imp", "phone": "+33 1 00 00 00 01", "category": "two"},
            {"name": "Filler 2", "source": "imp", "email": "f2@example.com"},
            // Chunk 3 creates a lead that chunk 4 finds by phone and chunk 5 by e-mail.
            {"name": "New Co", "source": "imp", "email": "n@example.com", "phone": "+33 1 00 00 00 02"},
            {"name": "Filler 3", "source": "imp", "city": "Oslo"},
            {"name": "New Co", "source": "imp", "phone": "+33 1 00 00 00 02", "category": "four"},
            {"name": "Filler 3", "source": "imp", "city": "oslo", "category": "hinted"},
            {"name": "Other", "source": "imp", "email": "N@example.com", "category": "five"},
        ]);
        let bytes = serde_json::to_vec(&rows).unwrap();
        let mut results = Vec::new();
        for pipelined in [true, false] {
            let (api, t) = account(&server).await;
            api.create_lead(json!({
                "name": "Acme Corp", "source": "seed", "email": "x@example.com",
                "phone": "+33 1 00 00 00 01", "category": "zero"
            }))
            .await;
            let rows = json_rows(&bytes, None).unwrap();
            let outcomes = run_chunked(&server, &t, rows, false, 2, pipelined).await;
            let kinds: Vec<String> = outcomes
                .iter()
                .map(|o| match o {
                    RowOutcome::Created { .. } => "created".to_string(),
                    RowOutcome::Hinted { .. } => "hinted".to_string(),
                    RowOutcome::Merged { tier, .. } => format!("merged {tier}"),
                    RowOutcome::Rejected { reason } => format!("rejected {reason}"),
                })
                .collect();
            let mut leads = leads_of(&server, &t).await;
            leads.sort_by_key(|l| l["name"].as_str().unwrap().to_string());
            results.push((kinds, leads));
        }
        let (kinds, leads) = &results[0];
        assert_eq!(
            kinds,
            &[
                "merged email",
                "created",
                "merged phone_name",
                "created",
                "created",
                "created",
                "merged phone_name",
                "hinted",
                "merged email"
            ],
            "{backend:?}"
        );
        let category = |name: &str| {
            leads
                .iter()
                .find(|l| l["name"] == name)
                .map(|l| l["category"].clone())
        };
        assert_eq!(category("Acme Corp."), Some(json!("two")), "{leads:?}");
        assert_eq!(category("Other"), Some(json!("five")), "{leads:?}");
        assert_eq!(leads.len(), 6, "{backend:?}: {leads:?}");
        assert_eq!(results[0], results[1], "{backend:?}");
    }
}

#[tokio::test]
async fn export_then_import_into_a_fresh_account_gives_the_same_leads() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        let (api, a) = account(&server).await;
        for i in 0..20 {
            let mut l = json!({
                "name": format!("=Lead {i}"), "source": "seed", "city": (["Oslo", "Rome"][i % 2]),
                "email": format!("l{i}@example.com"), "phone": format!("+47 {i:04}"),
                "rating": (i as f64) / 4.0, "latitude": -33.5, "status": "qualified",
                "tags": ["vip", "b2b"], "description": "line one\nline \"two\", three",
            });
            if i % 3 == 0 {
                l["attributes"] = json!([
                    {"name": "employees", "type": "number", "value": i * 10},
                    {"name": "verified", "type": "bool", "value": i % 2 == 0},
                    {"name": "products", "type": "list", "value": ["CRM", "ERP"]},
                    {"name": "memo", "type": "text", "value": "@note"}
                ]);
            }
            api.create_lead(l).await;
        }
        let original = leads_of(&server, &a).await;
        assert_eq!(original.len(), 20);

        let csv = export_bytes(&server, &a, Format::Csv).await;
        let (_, b) = account(&server).await;
        let rows: Vec<_> = CsvRows::new(csv.as_slice(), None)
            .expect("header")
            .collect();
        let outcomes = run(&server, &b, rows, false).await;
        assert!(
            outcomes
                .iter()
                .all(|o| matches!(o, RowOutcome::Created { id: Some(_) })),
            "{outcomes:?}"
        );
        assert_eq!(
            leads_of(&server, &b).await,
            original,
            "{backend:?}: CSV round trip"
        );

        let json = export_bytes(&server, &a, Format::Json).await;
        let (_, c) = account(&server).await;
        run(&server, &c, json_rows(&json, None).expect("rows"), false).await;
        assert_eq!(
            leads_of(&server, &c).await,
            original,
            "{backend:?}: JSON round trip"
        );

        // Importing the same file again merges every row by e-mail and changes nothing.
        let again = run(
            &server,
            &b,
            CsvRows::new(csv.as_slice(), None).expect("h").collect(),
            false,
        )
        .await;
        assert!(
            again
                .iter()
                .all(|o| matches!(o, RowOutcome::Merged { tier: "email", .. })),
            "{again:?}"
        );
        assert_eq!(leads_of(&server, &b).await, original);
    }
}

#[tokio::test]
async fn dry_run_reports_each_row_and_writes_nothing() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        let (api, t) = account(&server).await;
        let existing = api
            .create_lead(
                json!({"name": "Known", "source": "crm", "email": "known@example.com",
                                "city": "Lyon"}),
            )
            .await;
        let csv = "name,source,email,city,rating\n\
                   New One,web,new@example.com,Oslo,4\n\
                   Known,web,KNOWN@example.com,,\n\
                   Known,web,,Lyon,\n\
                   Twice,web,new@example.com,,\n\
                   ,web,x@example.com,,\n\
                   Bad Rating,web,,,high\n";
        let rows = || {
            CsvRows::new(csv.as_bytes(), None)
                .expect("header")
                .collect::<Vec<_>>()
        };
        let before = leads_of(&server, &t).await;
        let dry = run(&server, &t, rows(), true).await;
        assert_eq!(
            leads_of(&server, &t).await,
            before,
            "{backend:?}: a dry run writes nothing"
        );
        assert_eq!(dry[0], RowOutcome::Created { id: None });
        assert_eq!(
            dry[1],
            RowOutcome::Merged {
                into: existing.clone(),
                tier: "email"
            }
        );
        assert_eq!(
            dry[2],
            RowOutcome::Hinted {
                id: None,
                similar_to: existing.clone()
            }
        );
        assert_eq!(
            dry[3],
            RowOutcome::Merged {
                into: "row 1".into(),
                tier: "email"
            }
        );
        assert!(matches!(&dry[4], RowOutcome::Rejected { reason } if reason.contains("name")));
        assert!(matches!(&dry[5], RowOutcome::Rejected { reason } if reason.contains("rating")));

        // The real import does what the dry run said.
        let real = run(&server, &t, rows(), false).await;
        assert!(matches!(&real[0], RowOutcome::Created { id: Some(_) }));
        assert_eq!(
            real[1],
            RowOutcome::Merged {
                into: existing.clone(),
                tier: "email"
            }
        );
        assert!(
            matches!(&real[2], RowOutcome::Hinted { similar_to, .. } if *similar_to == existing)
        );
        let RowOutcome::Created { id: Some(new_id) } = &real[0] else {
            unreachable!()
        };
        assert_eq!(
            real[3],
            RowOutcome::Merged {
                into: new_id.clone(),
                tier: "email"
            }
        );
        assert!(matches!(&real[4], RowOutcome::Rejected { .. }));
        assert!(matches!(&real[5], RowOutcome::Rejected { .. }));
        assert_eq!(leads_of(&server, &t).await.len(), 3);
    }
}

/// A dry run reports, row for row, what the import then does, when later rows repeat earlier
/// rows through any dedup key: an e-mail, a phone with a similar name, a name and city, a key
/// an earlier row merged into a lead, a name a merge changed.
#[tokio::test]
async fn a_dry_run_predicts_every_outcome_of_the_import() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        let (api, t) = account(&server).await;
        let existing = api
            .create_lead(json!({"name": "Known", "source": "crm", "email": "known@example.com"}))
            .await;
        let csv = "name,source,email,phone,city\n\
                   Acme,web,a@example.com,+33 1 11 11 11 11,Paris\n\
                   ACME.,web,,+33 1 11 11 11 11,\n\
                   Acme,web,,,Paris\n\
                   Known,web,KNOWN@example.com,+47 22 22 22 22,\n\
                   Known,web,,+47 22 22 22 22,\n\
                   Zed,web,,+33 1 11 11 11 11,\n\
                   Beta,web,b@example.com,,Oslo\n\
                   Beta,web,B@example.com,,\n\
                   Beta,web,,,oslo\n";
        let rows = || {
            CsvRows::new(csv.as_bytes(), None)
                .expect("header")
                .collect::<Vec<_>>()
        };
        let dry = run(&server, &t, rows(), true).await;
        let real = run(&server, &t, rows(), false).await;
        // The id each row's lead got in the real import, for the dry run's `row N`.
        let id_of_row = |n: usize| match &real[n - 1] {
            RowOutcome::Created { id: Some(id) } | RowOutcome::Hinted { id: Some(id), .. } => {
                id.clone()
            }
            other => panic!("row {n} created nothing: {other:?}"),
        };
        let resolve = |to: &str| match to.strip_prefix("row ") {
            Some(n) => id_of_row(n.parse().unwrap()),
            None => to.to_string(),
        };
        assert_eq!(dry.len(), real.len());
        for (i, (d, r)) in dry.iter().zip(&real).enumerate() {
            match (d, r) {
                (RowOutcome::Created { .. }, RowOutcome::Created { .. }) => {}
                (
                    RowOutcome::Hinted { similar_to: a, .. },
                    RowOutcome::Hinted { similar_to: b, .. },
                ) => assert_eq!(&resolve(a), b, "row {}", i + 1),
                (
                    RowOutcome::Merged { into: a, tier: x },
                    RowOutcome::Merged { into: b, tier: y },
                ) => assert_eq!((resolve(a), x), (b.clone(), y), "row {}", i + 1),
                _ => panic!("{backend:?} row {}: dry run {d:?}, import {r:?}", i + 1),
            }
        }
        let kinds: Vec<&str> = real
            .iter()
            .map(|o| match o {
                RowOutcome::Created { .. } => "created",
                RowOutcome::Hinted { .. } => "hinted",
                RowOutcome::Merged { .. } => "merged",
                RowOutcome::Rejected { .. } => "rejected",
            })
            .collect();
        assert_eq!(
            kinds,
            [
                // Row 3 is no hint: row 2 renamed row 1's lead "ACME." (last touch wins).
                "created", "merged", "created", "merged", "merged", "created", "created", "merged",
                "hinted"
            ],
            "{backend:?}: {real:?}"
        );
        assert!(
            matches!(&real[4], RowOutcome::Merged { into, tier: "phone_name" } if *into == existing),
            "{real:?}"
        );
    }
}
