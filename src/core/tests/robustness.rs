//! Hostile input must never panic the parsers: deterministic mutation of valid inputs
//! (byte flips, insertions, truncations, splices of JSON tokens), many thousands of times.

use nordiq_core::config::Config;
use nordiq_core::ingest::Validator;
use nordiq_core::rng::Rng;
use std::collections::HashSet;
use std::path::Path;

const TOKENS: [&[u8]; 14] = [
    b"NaN",
    b"-Infinity",
    b"null",
    b"\"",
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b":",
    b"1e999",
    b"\\u0000",
    b"\xff\xfe",
    b"\"timestamp\":",
];

fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(out.len() + 1);
        match rng.below(4) {
            0 if !out.is_empty() => {
                let i = at.min(out.len() - 1);
                out[i] ^= 1 << rng.below(8);
            }
            1 => {
                let token = TOKENS[rng.below(TOKENS.len())];
                out.splice(at..at, token.iter().copied());
            }
            2 => out.truncate(at),
            _ => {
                let end = (at + rng.below(16)).min(out.len());
                out.drain(at..end);
            }
        }
    }
    out
}

#[test]
fn mutated_ingest_bodies_never_panic_and_account_for_every_record() {
    let config = Config::default();
    let now = 1_795_000_000_000i64;
    let validator = Validator::new(&config, now);
    let record = format!(
        r#"{{"timestamp":{},"server_name":"ppweb001","profile":"web_api","cpu_user_pct":12.5,"mem_used_pct":40,"disk_usage_pct":null}}"#,
        now / 1000
    );
    let json = format!(r#"{{"records":[{record},{record},{record}]}}"#);
    let ndjson = format!("{record}\n{record}\n{record}\n");
    let mut rng = Rng::new(0x9E37_79B9_7F4A_7C15);
    for _ in 0..20_000 {
        let body = mutate(&mut rng, json.as_bytes());
        if let Ok(v) = validator.json_batch(&body) {
            let bad: HashSet<usize> = v.errors.iter().map(|e| e.index).collect();
            assert!(v.samples.len() + bad.len() <= v.records.max(1));
            for (_, s) in &v.samples {
                assert!(s.values.iter().all(|x| x.is_nan() || x.is_finite()));
            }
        }
        let body = mutate(&mut rng, ndjson.as_bytes());
        let v = validator
            .ndjson(&body)
            .expect("ndjson never fails as a whole under the record limit");
        let bad: HashSet<usize> = v.errors.iter().map(|e| e.index).collect();
        assert_eq!(
            v.samples.len() + bad.len(),
            v.records,
            "every non-blank line is a sample or an error"
        );
    }
}

#[test]
fn mutated_configs_never_panic() {
    let text = include_str!("../../../etc/nordiq/nordiq.toml");
    let mut rng = Rng::new(42);
    for _ in 0..3_000 {
        let body = mutate(&mut rng, text.as_bytes());
        let body = String::from_utf8_lossy(&body);
        let _ = Config::parse(&body, Path::new("fuzz.toml"));
    }
}
