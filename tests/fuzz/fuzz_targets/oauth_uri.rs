//! cargo-fuzz driver of `klozeo_tests::fuzzing::oauth_uri`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| klozeo_tests::fuzzing::oauth_uri(data));
