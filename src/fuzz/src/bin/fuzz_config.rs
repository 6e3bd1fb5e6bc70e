//! libFuzzer entry for [`nordiq_fuzz::config`]; build and run with `scripts/fuzz.sh config`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| nordiq_fuzz::config(data));
