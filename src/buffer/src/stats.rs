//! Buffer statistics from Parquet footers (cached per file: files never change), plus the
//! log's size: nothing here reads data pages.

use crate::layout;
use crate::parquet_io::{self, FileStats};
use crate::retention::dir_bytes;
use crate::BufferError;
use nordiq_core::config::BufferConfig;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// Whether there is enough history to train on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Readiness {
    pub ready: bool,
    pub reason: String,
    pub min_records: u64,
    pub min_days: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BufferStats {
    /// Records in Parquet (the log holds at most `roll_seconds` more).
    pub records: u64,
    pub files: usize,
    pub partitions: usize,
    pub first_day: Option<String>,
    pub last_day: Option<String>,
    pub first_timestamp: Option<String>,
    pub last_timestamp: Option<String>,
    pub disk_bytes: u64,
    pub wal_bytes: u64,
    /// Records still only in the log, counted when Parquet alone is not enough to be
    /// ready to train (else not read: 0).
    #[serde(default)]
    pub log_records: u64,
    pub records_per_server: BTreeMap<String, u64>,
    pub readiness: Readiness,
}

pub fn compute(
    root: &Path,
    settings: &BufferConfig,
    cache: &mut HashMap<PathBuf, FileStats>,
) -> Result<BufferStats, BufferError> {
    let partitions = layout::partitions(root)?;
    let mut out = BufferStats {
        records: 0,
        files: 0,
        partitions: partitions.len(),
        first_day: partitions.first().map(|p| layout::day_label(p.day)),
        last_day: partitions.last().map(|p| layout::day_label(p.day)),
        first_timestamp: None,
        last_timestamp: None,
        disk_bytes: 0,
        wal_bytes: dir_bytes(&root.join(layout::WAL_DIR)),
        log_records: 0,
        records_per_server: BTreeMap::new(),
        readiness: Readiness {
            ready: false,
            reason: String::new(),
            min_records: settings.min_train_records,
            min_days: settings.min_train_days,
        },
    };
    let (mut min_ts, mut max_ts) = (i64::MAX, i64::MIN);
    let mut live = std::collections::HashSet::new();
    for p in &partitions {
        out.disk_bytes += dir_bytes(&p.dir);
        for f in &p.files {
            live.insert(f.clone());
            let stats = match cache.get(f) {
                Some(s) => s.clone(),
                None => {
                    let s = parquet_io::read_stats(f)?;
                    cache.insert(f.clone(), s.clone());
                    s
                }
            };
            out.files += 1;
            out.records += stats.rows;
            if stats.rows > 0 {
                min_ts = min_ts.min(stats.min_ts);
                max_ts = max_ts.max(stats.max_ts);
            }
            for (server, n) in stats.per_server {
                *out.records_per_server.entry(server).or_default() += n;
            }
        }
    }
    out.disk_bytes += out.wal_bytes;
    if min_ts <= max_ts {
        out.first_timestamp = Some(nordiq_core::timefmt::format_ms(min_ts));
        out.last_timestamp = Some(nordiq_core::timefmt::format_ms(max_ts));
    }
    let span_days = |min_ts: i64, max_ts: i64| {
        if min_ts <= max_ts {
            (max_ts - min_ts) as f64 / 86_400_000.0
        } else {
            0.0
        }
    };
    let ready = |records: u64, days: f64| {
        records >= settings.min_train_records && days >= settings.min_train_days as f64
    };
    let (mut records, mut days) = (out.records, span_days(min_ts, max_ts));
    if !ready(records, days) && out.wal_bytes > 0 {
        // What is acknowledged but not rolled yet counts too (a trainer reads it).
        let (mut lo, mut hi) = (min_ts, max_ts);
        // A segment is read once per length it has had (closed ones never change).
        for seq in crate::wal::list_segments(&root.join(layout::WAL_DIR))? {
            let path = root
                .join(layout::WAL_DIR)
                .join(crate::wal::segment_name(seq));
            let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            let key = PathBuf::from(format!("{}#{len}", path.display()));
            live.insert(key.clone());
            let stats = match cache.get(&key) {
                Some(s) => s.clone(),
                None => {
                    let (mut rows, mut min, mut max) = (0, i64::MAX, i64::MIN);
                    for sample in crate::wal::read_segment(&path)?.samples {
                        rows += 1;
                        min = min.min(sample.timestamp_ms);
                        max = max.max(sample.timestamp_ms);
                    }
                    let s = FileStats {
                        rows,
                        min_ts: min,
                        max_ts: max,
                        per_server: BTreeMap::new(),
                    };
                    cache.insert(key, s.clone());
                    s
                }
            };
            out.log_records += stats.rows;
            if stats.rows > 0 {
                lo = lo.min(stats.min_ts);
                hi = hi.max(stats.max_ts);
            }
        }
        records += out.log_records;
        days = span_days(lo, hi);
    }
    out.readiness.ready = ready(records, days);
    out.readiness.reason = if out.readiness.ready {
        format!("{records} records over {days:.1} days")
    } else {
        format!(
            "need {} records over {} days, have {records} over {days:.1} days",
            settings.min_train_records, settings.min_train_days
        )
    };
    cache.retain(|k, _| live.contains(k));
    Ok(out)
}
