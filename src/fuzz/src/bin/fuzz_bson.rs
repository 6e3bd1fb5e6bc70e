//! libFuzzer entry for [`nordiq_fuzz::bson`]; build and run with `scripts/fuzz.sh bson`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| nordiq_fuzz::bson(data));
