//! libFuzzer entry for [`nordiq_fuzz::wal_segment`]; build and run with `scripts/fuzz.sh wal_segment`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| nordiq_fuzz::wal_segment(data));
