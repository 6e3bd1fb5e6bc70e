//! libFuzzer entry for [`nordiq_fuzz::text_format`]; build and run with `scripts/fuzz.sh text_format`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| nordiq_fuzz::text_format(data));
