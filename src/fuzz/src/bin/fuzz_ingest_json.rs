//! libFuzzer entry for [`nordiq_fuzz::ingest_json`]; build and run with `scripts/fuzz.sh ingest_json`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| nordiq_fuzz::ingest_json(data));
