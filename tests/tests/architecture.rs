//! The layering rules of DESIGN.md that a grep can check, so they stay true as the code grows:
//! protocol edges translate and call services, they never orchestrate.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable source dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn lib_src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../lib/src")
}

/// What each forbidden name would mean an edge is doing.
const EDGE_FORBIDDEN: &[(&str, &str)] = &[
    ("WriteOp", "writing to the store"),
    ("Txn", "writing to the store"),
    (".transact(", "writing to the store"),
    ("event_op", "recording an event"),
    ("OutboxEvent", "recording an event"),
    ("fold_group", "folding a batch's events"),
    ("new_group", "running a batch"),
    ("EventMode", "running a batch"),
    ("find_duplicate", "deciding a duplicate"),
    ("best_phone_match", "deciding a duplicate"),
    ("normalize_email", "deciding a duplicate"),
    ("normalize_phone", "deciding a duplicate"),
    ("schema::", "addressing stored items"),
];

#[test]
fn edges_build_no_batch_no_dedup_decision_and_no_event() {
    let mut files = Vec::new();
    rust_files(&lib_src().join("edges"), &mut files);
    assert!(files.len() >= 5, "edges not found under {:?}", lib_src());
    let mut found = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).expect("readable file");
        for (line_no, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for (name, meaning) in EDGE_FORBIDDEN {
                if code.contains(name) {
                    found.push(format!(
                        "{}:{}: `{name}` ({meaning}) belongs in a service",
                        f.display(),
                        line_no + 1
                    ));
                }
            }
        }
    }
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn no_aws_types_outside_the_adapters_and_the_composition_root() {
    let mut files = Vec::new();
    rust_files(&lib_src(), &mut files);
    let allowed = |p: &Path| {
        let s = p.to_string_lossy();
        s.contains("/adapters/") || s.ends_with("/app.rs")
    };
    let mut found = Vec::new();
    for f in files.iter().filter(|f| !allowed(f)) {
        let text = std::fs::read_to_string(f).expect("readable file");
        for (line_no, line) in text.lines().enumerate() {
            if line.contains("aws_sdk_") || line.contains("AttributeValue") {
                found.push(format!("{}:{}", f.display(), line_no + 1));
            }
        }
    }
    assert!(found.is_empty(), "AWS types above the adapters: {found:?}");
}
