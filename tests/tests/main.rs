//! Every cross-crate test in one binary: one link instead of one per file, and the tests of
//! all files share the test threads, so a test waiting on the DynamoDB emulator no longer holds
//! up the files after it (tests/run.sh runs this binary with more threads than cores).
//! Run one file's tests with `cargo test -p klozeo-tests --test integration <file>::`.

mod accounts;
mod analytics;
mod architecture;
mod bulk_writes;
mod common;
mod cross_tenant;
mod embedded_filtered_reads;
mod enrichment;
mod export;
mod export_lambda;
mod faults;
mod filters;
mod fuzz_short;
mod group_commit;
mod http_leads;
mod import;
mod ingestion;
mod isolation;
mod lambda_events;
mod mcp;
mod oauth;
mod planner;
mod sdk_rust;
mod sdk_rust_enrichment;
mod sdk_rust_export;
mod sdk_rust_filters;
mod sort_scale;
mod store_contract;
mod template;
mod webhooks;
