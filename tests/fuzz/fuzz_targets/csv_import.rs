//! cargo-fuzz driver of `klozeo_tests::fuzzing::csv_import`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| klozeo_tests::fuzzing::csv_import(data));
