//! The official Rust SDK's `leads().export` (`klozeo = "=0.1.5"`) against the server on every
//! backend of the run: each format comes back as the bytes of the file, holding the leads of the
//! list with the same filter and sort, in the same order.

use crate::common;

use common::sdk;
use futures_util::StreamExt;
use klozeo_sdk::filters as f;
use klozeo_sdk::{
    Attribute, Error, ExportFormat, ExportOptions, LeadInput, ListOptions, SortField, SortOrder,
};
use klozeo_tests::{TestServer, backends};

#[tokio::test]
async fn sdk_export_returns_each_format_with_the_list_s_leads() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        let key = server.account("unlimited").await;
        let client = sdk(&server, &key);
        for (i, city) in ["Oslo", "Rome", "Oslo", "Oslo", "Rome"].iter().enumerate() {
            let input = LeadInput::builder()
                .name(format!("Lead {}", 5 - i))
                .source("sdk")
                .city(*city)
                .rating(i as f64)
                .attributes(vec![Attribute::number("employees", (i * 10) as f64)])
                .build();
            client.leads().create(input).await.expect("create");
        }
        let opts = || {
            ExportOptions::builder()
                .filter(f::city().eq("Oslo"))
                .sort(SortField::Name, SortOrder::Asc)
                .build()
        };
        let listed: Vec<String> = client
            .leads()
            .stream(
                ListOptions::builder()
                    .filter(f::city().eq("Oslo"))
                    .sort(SortField::Name, SortOrder::Asc)
                    .build(),
            )
            .map(|l| l.expect("lead").id)
            .collect()
            .await;
        assert_eq!(listed.len(), 3);

        let json = client
            .leads()
            .export(ExportFormat::Json, Some(opts()))
            .await
            .expect("json export");
        let v: serde_json::Value = serde_json::from_slice(&json).expect("JSON array");
        let ids: Vec<&str> = v
            .as_array()
            .expect("array")
            .iter()
            .map(|l| l["id"].as_str().expect("id"))
            .collect();
        assert_eq!(ids, listed, "{backend:?}");

        let csv = client
            .leads()
            .export(ExportFormat::Csv, Some(opts()))
            .await
            .expect("csv export");
        let text = std::str::from_utf8(&csv).expect("UTF-8");
        let mut lines = text.lines();
        let header = lines.next().expect("header");
        assert!(
            header.starts_with("id,name,source,status,score,"),
            "{header}"
        );
        assert!(header.ends_with(",attr:employees"), "{header}");
        let csv_ids: Vec<&str> = lines.map(|l| l.split(',').next().unwrap_or("")).collect();
        assert_eq!(csv_ids, listed, "{backend:?}");

        let xlsx = client
            .leads()
            .export(ExportFormat::Xlsx, None)
            .await
            .expect("xlsx export");
        assert_eq!(&xlsx[..2], b"PK", "an XLSX (zip) file");

        // Without any option the whole account comes back.
        let all = client
            .leads()
            .export(ExportFormat::Json, None)
            .await
            .expect("export");
        let v: serde_json::Value = serde_json::from_slice(&all).expect("JSON");
        assert_eq!(v.as_array().map(Vec::len), Some(5));
        // A key of nobody is the SDK's Unauthorized.
        let stranger = sdk(&server, "sk_live_00000000000000000000000000000000");
        let err = stranger
            .leads()
            .export(ExportFormat::Csv, None)
            .await
            .expect_err("no account");
        assert!(matches!(err, Error::Unauthorized), "{err:?}");
    }
}
