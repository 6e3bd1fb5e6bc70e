//! Export for the trainer: the last N days as one Parquet file, reading only the
//! partitions and columns needed, one day in memory at a time.

use crate::layout;
use crate::parquet_io::{self, SampleFileWriter};
use crate::BufferError;
use nordiq_core::ingest::Sample;
use std::path::Path;

#[derive(Debug, Clone, PartialEq)]
pub struct ExportReport {
    pub rows: u64,
    pub days: usize,
    pub servers: usize,
    pub bytes: u64,
    pub first_day: Option<String>,
    pub last_day: Option<String>,
}

/// Writes days `[today − days, today)` (and today when `include_today`) of `metrics` to
/// `out`, sorted by day, then server, then time. The partial current day is left out by
/// default so a model never trains on a day it has only half seen.
pub fn export(
    root: &Path,
    metrics: &[String],
    days: u32,
    include_today: bool,
    now_ms: i64,
    out: &Path,
) -> Result<ExportReport, BufferError> {
    let today = layout::day_of(now_ms);
    let first = today - days as i64;
    let last = if include_today { today } else { today - 1 };
    let mut writer = SampleFileWriter::create(out, metrics)?;
    let mut report = ExportReport {
        rows: 0,
        days: 0,
        servers: 0,
        bytes: 0,
        first_day: None,
        last_day: None,
    };
    for p in layout::partitions(root)? {
        if p.day < first || p.day > last {
            continue;
        }
        let mut day: Vec<Sample> = Vec::new();
        for f in &p.files {
            parquet_io::read_samples(f, metrics, i64::MIN, i64::MAX, &mut |s| day.push(s))?;
        }
        day.sort_by(|a, b| {
            a.server
                .cmp(&b.server)
                .then(a.timestamp_ms.cmp(&b.timestamp_ms))
        });
        writer.write(&day)?;
        report.days += 1;
        report
            .first_day
            .get_or_insert_with(|| layout::day_label(p.day));
        report.last_day = Some(layout::day_label(p.day));
    }
    let stats = writer.finish()?;
    report.rows = stats.rows;
    report.servers = stats.per_server.len();
    report.bytes = std::fs::metadata(out).map(|m| m.len()).unwrap_or(0);
    Ok(report)
}
