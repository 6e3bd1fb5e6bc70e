//! Retention: whole date partitions older than `retention_days` go, then (with a disk cap)
//! the oldest partitions until the buffer fits. Today's partition is never removed.

use crate::layout::{self, Partition};
use crate::BufferError;
use nordiq_core::config::BufferConfig;
use std::path::Path;

/// What a retention pass removed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RetentionReport {
    pub removed_days: Vec<String>,
    pub freed_bytes: u64,
}

pub fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

fn remove(root: &Path, p: &Partition, report: &mut RetentionReport) -> Result<(), BufferError> {
    let bytes = dir_bytes(&p.dir);
    std::fs::remove_dir_all(&p.dir).map_err(|e| BufferError::io(&p.dir, e))?;
    layout::sync_dir(root)?;
    report.removed_days.push(layout::day_label(p.day));
    report.freed_bytes += bytes;
    Ok(())
}

pub fn apply(
    root: &Path,
    settings: &BufferConfig,
    now_ms: i64,
) -> Result<RetentionReport, BufferError> {
    let today = layout::day_of(now_ms);
    let oldest_kept = today - settings.retention_days as i64 + 1;
    let mut report = RetentionReport::default();
    let mut kept = Vec::new();
    for p in layout::partitions(root)? {
        if p.day < oldest_kept {
            remove(root, &p, &mut report)?;
        } else {
            kept.push(p);
        }
    }
    if settings.max_disk_bytes > 0 {
        let mut total: u64 = kept.iter().map(|p| dir_bytes(&p.dir)).sum();
        for p in &kept {
            if total <= settings.max_disk_bytes || p.day >= today {
                break;
            }
            let bytes = dir_bytes(&p.dir);
            remove(root, p, &mut report)?;
            total = total.saturating_sub(bytes);
        }
    }
    if !report.removed_days.is_empty() {
        tracing::info!(
            days = ?report.removed_days,
            freed_bytes = report.freed_bytes,
            retention_days = settings.retention_days,
            max_disk_bytes = settings.max_disk_bytes,
            "buffer retention removed partitions"
        );
    }
    Ok(report)
}
