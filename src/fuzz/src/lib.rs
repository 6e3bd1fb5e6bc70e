//! The fuzz targets: each takes arbitrary bytes to one parser that faces the network or
//! the disk and checks what must hold whatever the input — no panic, and the invariants
//! noted per target. `src/bin/fuzz_*.rs` wrap them for libFuzzer (`scripts/fuzz.sh`);
//! `tests/regressions.rs` replays the seeds and every crash ever found
//! (`fuzz/regressions/<target>/`).

use nordiq_core::config::Config;
use std::path::Path;

/// A fuzz target: its name (the directory of its seeds and regressions) and its body.
pub struct Target {
    pub name: &'static str,
    pub run: fn(&[u8]),
}

/// Every target.
pub const TARGETS: [Target; 6] = [
    Target {
        name: "ingest_json",
        run: ingest_json,
    },
    Target {
        name: "ingest_ndjson",
        run: ingest_ndjson,
    },
    Target {
        name: "remote_write",
        run: remote_write,
    },
    Target {
        name: "text_format",
        run: text_format,
    },
    Target {
        name: "wal_segment",
        run: wal_segment,
    },
    Target {
        name: "config",
        run: config,
    },
];

fn default_config() -> &'static Config {
    static CONFIG: std::sync::OnceLock<Config> = std::sync::OnceLock::new();
    CONFIG.get_or_init(Config::default)
}

/// A fixed "now" so a run is repeatable (timestamps are judged against it).
const NOW_MS: i64 = 1_795_824_000_000;

/// `POST /feed/data` with a JSON body: valid or refused; every record is either accepted
/// or named in an error.
pub fn ingest_json(data: &[u8]) {
    let validator = nordiq_core::ingest::Validator::new(default_config(), NOW_MS);
    if let Ok(v) = validator.json_batch(data) {
        for error in &v.errors {
            assert!(
                error.index < v.records.max(1),
                "error index beyond the batch"
            );
        }
    }
}

/// `POST /feed/data` with an NDJSON body: an error's index is its line number − 1
/// (blank lines count), so it names a line of the body.
pub fn ingest_ndjson(data: &[u8]) {
    let validator = nordiq_core::ingest::Validator::new(default_config(), NOW_MS);
    if let Ok(v) = validator.ndjson(data) {
        let lines = data.split(|b| *b == b'\n').count();
        for error in &v.errors {
            assert!(error.index < lines, "error index beyond the body's lines");
        }
        assert!(v.samples.len() <= v.records);
    }
}

/// `POST /api/v1/write`: snappy, then protobuf; what decodes maps onto the catalog.
pub fn remote_write(data: &[u8]) {
    if let Ok(series) = nordiq_core::remote_write::decode(data) {
        let _ = nordiq_core::remote_write::map_series(default_config(), &series);
    }
}

/// The Prometheus text format of a node_exporter scrape.
pub fn text_format(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = nordiq_metrics::textformat::parse(text);
    }
}

/// A write-ahead-log segment read at recovery: contents or an error; the samples read
/// all carry the header's metric count.
pub fn wal_segment(data: &[u8]) {
    if let Ok(contents) = nordiq_buffer::wal::parse_segment(data, Path::new("fuzz.wal")) {
        let width = contents.header.metrics.len();
        assert!(contents.samples.iter().all(|s| s.values.len() == width));
        assert!(contents.torn_bytes as usize <= data.len());
    }
}

/// `nordiq.toml`: parsed and validated, or an error naming a key.
pub fn config(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Err(e) = Config::parse(text, Path::new("fuzz.toml")) {
            assert!(e.to_string().starts_with("fuzz.toml"), "{e}");
        }
    }
}
