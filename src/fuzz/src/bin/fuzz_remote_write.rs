//! libFuzzer entry for [`nordiq_fuzz::remote_write`]; build and run with `scripts/fuzz.sh remote_write`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| nordiq_fuzz::remote_write(data));
