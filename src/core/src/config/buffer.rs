//! `[buffer]`: the data buffer (write-ahead log and Parquet).

use super::invalid::{require, Invalid};
use serde::{Deserialize, Serialize};

/// The data buffer under `state_dir/buffer/`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BufferConfig {
    /// Keep what ingest accepts (write-ahead log + Parquet). Off: windows only, nothing
    /// survives a restart.
    pub enabled: bool,
    /// A log segment is rolled into Parquet when it is this old …
    pub roll_seconds: u64,
    /// … or this large.
    pub roll_bytes: u64,
    /// Partitions (days) older than this are removed.
    pub retention_days: u32,
    /// Remove the oldest partitions while the buffer is larger; 0 = no cap.
    pub max_disk_bytes: u64,
    /// Days the trainer's export covers by default.
    pub export_days: u32,
    /// Readiness to train: at least this many records …
    pub min_train_records: u64,
    /// … spanning at least this many days.
    pub min_train_days: u32,
}

impl Default for BufferConfig {
    fn default() -> Self {
        BufferConfig {
            enabled: true,
            roll_seconds: 600,
            roll_bytes: 64 * 1024 * 1024,
            retention_days: 60,
            max_disk_bytes: 0,
            export_days: 30,
            min_train_records: 100_000,
            min_train_days: 3,
        }
    }
}

impl BufferConfig {
    pub(crate) fn validate(&self) -> Result<(), Invalid> {
        require(self.roll_seconds >= 1, "buffer.roll_seconds", || {
            "must be ≥ 1".into()
        })?;
        require(self.roll_bytes >= 4096, "buffer.roll_bytes", || {
            "must be ≥ 4096".into()
        })?;
        require(self.retention_days >= 1, "buffer.retention_days", || {
            "must be ≥ 1".into()
        })?;
        require(self.export_days >= 1, "buffer.export_days", || {
            "must be ≥ 1".into()
        })
    }
}
