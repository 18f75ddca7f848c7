//! The short fuzz run of every `cargo test`: each target of `klozeo_tests::fuzzing` gets the
//! checked-in corpus (`tests/fuzz/corpus/<target>/`, seeds plus what long cargo-fuzz runs kept)
//! and then seeded mutations of it. A failure prints the target, the seed and the input, which
//! replays with `KLOZEO_FUZZ_SEED` or by saving the bytes into the corpus directory.

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::path::PathBuf;

use klozeo_tests::fuzzing;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Byte strings that reach the parsers' edge cases when spliced in.
const TOKENS: &[&[u8]] = &[
    b"\"",
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b":",
    b"null",
    b"true",
    b"1e309",
    b"-0",
    b"NaN",
    b"9223372036854775808",
    b"\\u0000",
    b"\xf0\x9f\x92\xa5",
    b"and.",
    b"or.",
    b".eq.",
    b"(",
    b")",
    b"&&",
    b"||",
    b"attr:",
    b"tags",
    b"%",
    b"&",
    b"=",
    b"://",
    b"@",
    b"[::1]",
    b"0x7f000001",
    b"\r\n",
    b"\n",
    b"\"\"",
    b"email,name,source\n",
    b"=cmd|",
    b"'=",
];

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus {}: {e}", dir.display()))
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    let out: Vec<Vec<u8>> = files
        .iter()
        .map(|f| std::fs::read(f).expect("corpus file"))
        .collect();
    assert!(!out.is_empty(), "the {target} corpus is empty");
    out
}

fn mutate(rng: &mut StdRng, corpus: &[Vec<u8>]) -> Vec<u8> {
    let mut v = corpus[rng.random_range(0..corpus.len())].clone();
    for _ in 0..rng.random_range(1..=4) {
        match rng.random_range(0..6) {
            0 if !v.is_empty() => {
                let i = rng.random_range(0..v.len());
                v[i] ^= 1 << rng.random_range(0..8);
            }
            1 if !v.is_empty() => {
                let i = rng.random_range(0..v.len());
                let n = rng.random_range(1..=8.min(v.len() - i));
                v.drain(i..i + n);
            }
            2 => {
                let i = rng.random_range(0..=v.len());
                let t = TOKENS[rng.random_range(0..TOKENS.len())];
                v.splice(i..i, t.iter().copied());
            }
            3 => {
                let other = &corpus[rng.random_range(0..corpus.len())];
                if !other.is_empty() {
                    let a = rng.random_range(0..other.len());
                    let b = rng.random_range(a..=other.len());
                    let i = rng.random_range(0..=v.len());
                    v.splice(i..i, other[a..b].iter().copied());
                }
            }
            4 => {
                let i = rng.random_range(0..=v.len());
                v.insert(i, rng.random());
            }
            _ if !v.is_empty() => {
                // Repeat a slice: deep nesting and long values.
                let a = rng.random_range(0..v.len());
                let b = rng.random_range(a..=v.len().min(a + 16));
                let piece = v[a..b].repeat(rng.random_range(2..64));
                v.splice(a..a, piece);
            }
            _ => {}
        }
    }
    v.truncate(16 * 1024);
    v
}

fn run_target(target: &str, mutations: usize) {
    let seed: u64 = std::env::var("KLOZEO_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x6b6c_6f7a_656f);
    let corpus = corpus(target);
    let mut rng = StdRng::seed_from_u64(seed);
    let inputs = corpus
        .iter()
        .cloned()
        .chain((0..mutations).map(|_| mutate(&mut rng, &corpus)));
    for (n, input) in inputs.enumerate() {
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| fuzzing::run(target, &input))) {
            eprintln!(
                "fuzz target {target}, seed {seed}, input #{n} failed: {:?}\nhex: {}",
                String::from_utf8_lossy(&input),
                hex::encode(&input)
            );
            resume_unwind(panic);
        }
    }
}

#[test]
fn filter_parser() {
    run_target("filter", 20_000);
}

#[test]
fn scoring_expressions() {
    run_target("scoring", 20_000);
}

#[test]
fn cursor_decoder() {
    run_target("cursor", 20_000);
}

#[test]
fn webhook_url_validator() {
    run_target("webhook_url", 20_000);
}

#[test]
fn oauth_redirect_and_client_id_validators() {
    run_target("oauth_uri", 20_000);
}

#[test]
fn csv_import_parser() {
    run_target("csv_import", 20_000);
}

#[test]
fn api_bodies_never_answer_5xx() {
    run_target("api_body", 3_000);
}

/// The API target is only worth its time if its inputs reach the handlers: the seeds must
/// create, update and list (2xx) as well as be refused (4xx), not all stop at authentication.
#[test]
fn api_seeds_reach_the_handlers() {
    let statuses: Vec<u16> = corpus("api_body")
        .iter()
        .filter_map(|c| fuzzing::api_status(c))
        .collect();
    for want in [200, 201, 400] {
        assert!(statuses.contains(&want), "no {want} among {statuses:?}");
    }
    assert!(!statuses.contains(&401), "{statuses:?}");
}

#[test]
fn every_target_has_a_corpus_and_a_cargo_fuzz_binary() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).expect("fuzz manifest");
    for t in fuzzing::TARGETS {
        assert!(!corpus(t).is_empty());
        assert!(
            root.join("fuzz_targets").join(format!("{t}.rs")).exists(),
            "no cargo-fuzz target for {t}"
        );
        assert!(manifest.contains(&format!("name = \"{t}\"")), "{t}");
    }
}
