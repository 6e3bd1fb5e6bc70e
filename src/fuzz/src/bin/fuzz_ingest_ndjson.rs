//! libFuzzer entry for [`nordiq_fuzz::ingest_ndjson`]; build and run with `scripts/fuzz.sh ingest_ndjson`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| nordiq_fuzz::ingest_ndjson(data));
