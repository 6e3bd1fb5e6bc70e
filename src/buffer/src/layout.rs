//! Where things live under `state_dir/buffer/`, and the fsync helpers every durable write
//! goes through.
//!
//! ```text
//! buffer/wal/<seq>.wal                      write-ahead log segments
//! buffer/date=YYYY-MM-DD/part-<seq>.parquet rolled from segment <seq>
//! buffer/date=YYYY-MM-DD/import-<id>.parquet written by `nordiqctl import`
//! ```

use crate::BufferError;
use std::path::{Path, PathBuf};
use time::{Date, OffsetDateTime};

pub const WAL_DIR: &str = "wal";
const DAY_MS: i64 = 86_400_000;

/// fsyncs a directory, so a rename or unlink inside it is durable.
pub fn sync_dir(dir: &Path) -> Result<(), BufferError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| BufferError::io(dir, e))
}

/// The UTC day number (days since the epoch) of a timestamp.
pub fn day_of(ts_ms: i64) -> i64 {
    ts_ms.div_euclid(DAY_MS)
}

/// `YYYY-MM-DD` of a day number.
pub fn day_label(day: i64) -> String {
    OffsetDateTime::from_unix_timestamp(day * 86_400)
        .map(|dt| {
            let d = dt.date();
            format!("{:04}-{:02}-{:02}", d.year(), d.month() as u8, d.day())
        })
        .unwrap_or_else(|_| format!("day{day}"))
}

/// The day number of a `date=YYYY-MM-DD` directory name.
pub fn parse_partition(name: &str) -> Option<i64> {
    let label = name.strip_prefix("date=")?;
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let date = Date::parse(label, &format).ok()?;
    Some(
        date.midnight()
            .assume_utc()
            .unix_timestamp()
            .div_euclid(86_400),
    )
}

pub fn partition_dir(root: &Path, day: i64) -> PathBuf {
    root.join(format!("date={}", day_label(day)))
}

pub fn part_name(seq: u64) -> String {
    format!("part-{seq:020}.parquet")
}

/// One date partition and its Parquet files (sorted by name: rolled parts in log order,
/// then imports).
#[derive(Debug, Clone)]
pub struct Partition {
    pub day: i64,
    pub dir: PathBuf,
    pub files: Vec<PathBuf>,
}

/// Every partition under `root`, oldest first. Leftover temp files are ignored.
pub fn partitions(root: &Path) -> Result<Vec<Partition>, BufferError> {
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(root) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(BufferError::io(root, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| BufferError::io(root, e))?;
        let name = entry.file_name();
        let Some(day) = parse_partition(&name.to_string_lossy()) else {
            continue;
        };
        let dir = entry.path();
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map_err(|e| BufferError::io(&dir, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                let n = p
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                n.ends_with(".parquet") && !n.starts_with('.')
            })
            .collect();
        files.sort();
        out.push(Partition { day, dir, files });
    }
    out.sort_by_key(|p| p.day);
    Ok(out)
}

/// Removes temp files a crash left behind (`.*.tmp` in partitions).
pub fn remove_stale_temp_files(root: &Path) -> Result<usize, BufferError> {
    let mut removed = 0;
    for p in partitions(root)? {
        for entry in std::fs::read_dir(&p.dir)
            .map_err(|e| BufferError::io(&p.dir, e))?
            .flatten()
        {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') && name.ends_with(".tmp") {
                let _ = std::fs::remove_file(entry.path());
                removed += 1;
            }
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_labels_round_trip() {
        let ts = 1_795_000_000_000; // 2026-11-18T11:06:40Z
        let day = day_of(ts);
        assert_eq!(day_label(day), "2026-11-18");
        assert_eq!(parse_partition("date=2026-11-18"), Some(day));
        assert_eq!(parse_partition("date=2026-13-01"), None);
        assert_eq!(parse_partition("other"), None);
        assert_eq!(day_of(-1), -1);
    }
}
