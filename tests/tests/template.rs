//! `template.yaml` agrees with the code it deploys:
//!
//! - it declares exactly the DynamoDB tables of [`klozeo_core::schema::TABLES`] (by logical id),
//!   each with exactly the key schema, GSIs (names, key attributes, projection ALL) and TTL that
//!   `schema.rs` gives it, so the SAM stack, `klozeo dynamodb create-tables` and the LocalStack
//!   init hook can never build different tables;
//! - every Lambda crate under `functions/` is an `AWS::Serverless::Function` built by
//!   cargo-lambda from its own binary, and no function in the template lacks a crate.
//!
//! The template is parsed with serde_yaml; CloudFormation's short-form tags (`!Sub`, `!Ref`,
//! `!GetAtt`...) arrive as tagged values and are rewritten into their long JSON form
//! (`{"Fn::Sub": ...}`) before anything is compared. Linting the template itself is
//! `tests/validate_template.sh` (cfn-lint and aws-sam-translator).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use klozeo_core::schema::{PK_ATTR, SK_ATTR, TABLES, TTL_ATTR, TableDef};
use serde_json::{Map, Value, json};

fn workspace_root() -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .canonicalize()
        .expect("workspace root exists")
}

/// A YAML value with CloudFormation short-form tags turned into their long JSON form.
fn cfn_json(v: serde_yaml::Value) -> Value {
    use serde_yaml::Value as Y;
    match v {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => serde_json::to_value(&n).expect("YAML number is JSON"),
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => Value::Array(items.into_iter().map(cfn_json).collect()),
        Y::Mapping(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| {
                    let k = match k {
                        Y::String(s) => s,
                        other => panic!("template.yaml: non-string mapping key {other:?}"),
                    };
                    (k, cfn_json(v))
                })
                .collect(),
        ),
        Y::Tagged(t) => {
            let tag = t.tag.to_string();
            let name = tag.trim_start_matches('!');
            let value = match (name, t.value) {
                // `!GetAtt Res.Attr` is the short form of `[Res, Attr]`.
                ("GetAtt", Y::String(s)) => {
                    let (res, attr) = s
                        .split_once('.')
                        .unwrap_or_else(|| panic!("template.yaml: malformed !GetAtt {s}"));
                    json!([res, attr])
                }
                (_, v) => cfn_json(v),
            };
            let key = match name {
                "Ref" | "Condition" => name.to_string(),
                _ => format!("Fn::{name}"),
            };
            json!({ key: value })
        }
    }
}

fn template() -> Value {
    let path = workspace_root().join("template.yaml");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let yaml: serde_yaml::Value = serde_yaml::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not valid YAML: {e}", path.display()));
    cfn_json(yaml)
}

/// Logical id → resource, for the resources of one type.
fn resources_of_type<'a>(t: &'a Value, ty: &str) -> BTreeMap<&'a str, &'a Value> {
    t["Resources"]
        .as_object()
        .expect("template.yaml has Resources")
        .iter()
        .filter(|(_, r)| r["Type"] == ty)
        .map(|(id, r)| (id.as_str(), r))
        .collect()
}

fn key_schema(hash: &str, range: &str) -> Value {
    json!([
        { "AttributeName": hash, "KeyType": "HASH" },
        { "AttributeName": range, "KeyType": "RANGE" },
    ])
}

/// A list of objects keyed by one of their fields, so order does not matter.
fn by_field<'a>(list: &'a Value, field: &str, what: &str) -> BTreeMap<&'a str, &'a Value> {
    let items = list
        .as_array()
        .unwrap_or_else(|| panic!("{what} is not a list"));
    let map: BTreeMap<_, _> = items
        .iter()
        .map(|item| {
            let name = item[field]
                .as_str()
                .unwrap_or_else(|| panic!("{what}: an entry lacks {field}"));
            (name, item)
        })
        .collect();
    assert_eq!(map.len(), items.len(), "{what}: duplicate {field}");
    map
}

fn check_table(def: &TableDef, resource: &Value) {
    let id = def.resource;
    let p = &resource["Properties"];

    assert_eq!(
        p["TableName"],
        json!({ "Fn::Sub": format!("${{AWS::StackName}}-{}", def.suffix) }),
        "{id}: TableName must be the stack prefix + suffix {:?}, as KLOZEO_TABLE_PREFIX expects",
        def.suffix
    );
    assert_eq!(p["BillingMode"], "PAY_PER_REQUEST", "{id}: on-demand");
    assert_eq!(
        p["KeySchema"],
        key_schema(PK_ATTR, SK_ATTR),
        "{id}: key schema"
    );

    // Every key attribute is a string, and nothing else is declared (CloudFormation rejects
    // attribute definitions that no key uses, so "exactly" is also what deploys).
    let mut expected_attrs: BTreeSet<String> = [PK_ATTR.to_string(), SK_ATTR.to_string()].into();
    for idx in def.indexes {
        expected_attrs.insert(idx.pk_attr());
        expected_attrs.insert(idx.sk_attr());
    }
    let attrs = by_field(
        &p["AttributeDefinitions"],
        "AttributeName",
        &format!("{id}.AttributeDefinitions"),
    );
    for (name, a) in &attrs {
        assert_eq!(a["AttributeType"], "S", "{id}: attribute {name} must be S");
    }
    let declared_attrs: BTreeSet<String> = attrs.keys().map(|s| s.to_string()).collect();
    assert_eq!(declared_attrs, expected_attrs, "{id}: AttributeDefinitions");

    // GSIs: exactly the declared names, each keyed by `<name>_pk`/`<name>_sk`, projecting ALL.
    let gsis = if def.indexes.is_empty() {
        assert!(
            p.get("GlobalSecondaryIndexes").is_none() || p["GlobalSecondaryIndexes"] == json!([]),
            "{id}: schema.rs declares no index"
        );
        BTreeMap::new()
    } else {
        by_field(
            &p["GlobalSecondaryIndexes"],
            "IndexName",
            &format!("{id}.GlobalSecondaryIndexes"),
        )
    };
    let expected_names: BTreeSet<&str> = def.indexes.iter().map(|i| i.name).collect();
    let declared_names: BTreeSet<&str> = gsis.keys().copied().collect();
    assert_eq!(declared_names, expected_names, "{id}: GSI names");
    for idx in def.indexes {
        let gsi = gsis[idx.name];
        assert_eq!(
            gsi["KeySchema"],
            key_schema(&idx.pk_attr(), &idx.sk_attr()),
            "{id}: key schema of GSI {}",
            idx.name
        );
        assert_eq!(
            gsi["Projection"],
            json!({ "ProjectionType": "ALL" }),
            "{id}: GSI {} must project ALL",
            idx.name
        );
    }
    assert!(
        p.get("LocalSecondaryIndexes").is_none(),
        "{id}: schema.rs has no local indexes"
    );

    let ttl = p.get("TimeToLiveSpecification");
    if def.ttl {
        assert_eq!(
            ttl,
            Some(&json!({ "AttributeName": TTL_ATTR, "Enabled": true })),
            "{id}: schema.rs says items expire through {TTL_ATTR}"
        );
    } else {
        assert!(
            ttl.is_none_or(|t| t["Enabled"] == false),
            "{id}: schema.rs declares no TTL, the template enables one"
        );
    }

    // Every table of the product, whatever schema.rs says: recoverable and encrypted with KMS.
    assert_eq!(
        p["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"], true,
        "{id}: point-in-time recovery"
    );
    assert_eq!(p["SSESpecification"]["SSEEnabled"], true, "{id}: SSE");
}

#[test]
fn tables_are_exactly_schema_rs() {
    let t = template();
    let tables = resources_of_type(&t, "AWS::DynamoDB::Table");

    let expected: BTreeSet<&str> = TABLES.iter().map(|d| d.resource).collect();
    let declared: BTreeSet<&str> = tables.keys().copied().collect();
    assert_eq!(
        declared, expected,
        "template.yaml's DynamoDB tables differ from klozeo_core::schema::TABLES"
    );
    for def in &TABLES {
        check_table(def, tables[def.resource]);
    }
}

/// A Lambda crate under `functions/`.
struct FunctionCrate {
    /// Package name.
    package: String,
    /// Names of its binary targets.
    bins: Vec<String>,
}

/// Every crate under `functions/`, from `cargo metadata`, by directory name.
fn function_crates(root: &Path) -> BTreeMap<String, FunctionCrate> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(root)
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: Value = serde_json::from_slice(&out.stdout).expect("cargo metadata prints JSON");
    let functions_dir = root.join("functions");

    let mut crates = BTreeMap::new();
    for pkg in meta["packages"].as_array().expect("packages") {
        let manifest = Path::new(pkg["manifest_path"].as_str().expect("manifest_path"));
        let Some(dir) = manifest.parent() else {
            continue;
        };
        if dir.parent() != Some(functions_dir.as_path()) {
            continue;
        }
        let bins: Vec<String> = pkg["targets"]
            .as_array()
            .expect("targets")
            .iter()
            .filter(|t| {
                t["kind"]
                    .as_array()
                    .is_some_and(|k| k.contains(&json!("bin")))
            })
            .map(|t| t["name"].as_str().expect("target name").to_string())
            .collect();
        let dir_name = dir
            .file_name()
            .expect("crate directory name")
            .to_string_lossy()
            .into_owned();
        let package = pkg["name"].as_str().expect("package name").to_string();
        crates.insert(dir_name, FunctionCrate { package, bins });
    }

    // Every directory with a Cargo.toml is a workspace member that cargo metadata saw.
    for entry in std::fs::read_dir(&functions_dir).expect("functions/ exists") {
        let entry = entry.expect("functions/ entry");
        if entry.path().join("Cargo.toml").is_file() {
            let name = entry.file_name().to_string_lossy().into_owned();
            assert!(
                crates.contains_key(&name),
                "functions/{name} has a Cargo.toml but is not a workspace member"
            );
        }
    }
    crates
}

#[test]
fn every_function_crate_is_deployed_and_nothing_else() {
    let root = workspace_root();
    let t = template();
    let crates = function_crates(&root);
    assert!(!crates.is_empty(), "no crate under functions/");

    // Each Lambda crate builds exactly one binary, named like its package: that name is what
    // the template's BuildProperties.Binary refers to (cargo lambda build --bin NAME).
    let mut binaries = BTreeSet::new();
    for (dir, c) in &crates {
        assert_eq!(
            c.bins,
            vec![c.package.clone()],
            "functions/{dir} (package {}) must build exactly one binary, named like the package",
            c.package
        );
        binaries.insert(c.package.as_str());
    }

    let globals = &t["Globals"]["Function"];
    let functions = resources_of_type(&t, "AWS::Serverless::Function");
    let mut deployed: BTreeMap<&str, &str> = BTreeMap::new();
    for (id, f) in &functions {
        assert_eq!(
            f["Metadata"]["BuildMethod"], "rust-cargolambda",
            "{id}: built by sam build with cargo-lambda"
        );
        let binary = f["Metadata"]["BuildProperties"]["Binary"]
            .as_str()
            .unwrap_or_else(|| panic!("{id}: Metadata.BuildProperties.Binary names its binary"));
        let code_uri = f["Properties"]
            .get("CodeUri")
            .unwrap_or(&globals["CodeUri"]);
        assert_eq!(
            code_uri, ".",
            "{id}: CodeUri is the workspace root, where cargo-lambda builds --bin {binary}"
        );
        let runtime = f["Properties"]
            .get("Runtime")
            .unwrap_or(&globals["Runtime"]);
        assert_eq!(runtime, "provided.al2023", "{id}: custom runtime");
        if let Some(other) = deployed.insert(binary, id) {
            panic!("{other} and {id} both deploy binary {binary}");
        }
    }

    let in_template: BTreeSet<&str> = deployed.keys().copied().collect();
    let missing: Vec<_> = binaries.difference(&in_template).collect();
    let orphans: Vec<_> = in_template.difference(&binaries).collect();
    assert!(
        missing.is_empty(),
        "crates under functions/ with no AWS::Serverless::Function in template.yaml: {missing:?}"
    );
    assert!(
        orphans.is_empty(),
        "functions in template.yaml whose binary has no crate under functions/: {orphans:?}"
    );
}

#[test]
fn short_form_tags_become_long_form() {
    let yaml = "a: !Sub '${AWS::StackName}-x'\nb: !Ref Stage\nc: !GetAtt T.Arn\nd: !If [C, 1, 2]\n";
    let v = cfn_json(serde_yaml::from_str(yaml).expect("yaml"));
    let expected: Map<String, Value> = serde_json::from_value(json!({
        "a": { "Fn::Sub": "${AWS::StackName}-x" },
        "b": { "Ref": "Stage" },
        "c": { "Fn::GetAtt": ["T", "Arn"] },
        "d": { "Fn::If": ["C", 1, 2] },
    }))
    .expect("object");
    assert_eq!(v, Value::Object(expected));
}
