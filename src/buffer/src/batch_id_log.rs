//! The batch ids of segments already rolled into Parquet: `buffer/wal/batch-ids`, one id a
//! line, oldest first, at most [`REMEMBERED`]. A segment's ids are added here (durably)
//! before the segment is deleted, so the ids of every acknowledged batch survive a restart
//! either in the log or in this file.

use crate::{layout, BufferError};
use std::io::Write;
use std::path::Path;

pub use nordiq_core::batch_ids::REMEMBERED;

const FILE: &str = "batch-ids";

/// The remembered ids, oldest first (none when the file does not exist yet).
pub fn read(wal_dir: &Path) -> Result<Vec<String>, BufferError> {
    let path = wal_dir.join(FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(text
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(BufferError::io(&path, e)),
    }
}

/// Adds `ids` after the remembered ones, keeps the newest [`REMEMBERED`], and replaces
/// the file atomically (temp file, fsync, rename, fsync of the directory).
pub fn remember(wal_dir: &Path, ids: &[String]) -> Result<(), BufferError> {
    if ids.is_empty() {
        return Ok(());
    }
    let mut all = read(wal_dir)?;
    all.extend(ids.iter().filter(|id| !id.contains('\n')).cloned());
    let keep_from = all.len().saturating_sub(REMEMBERED);
    let mut text = String::with_capacity((all.len() - keep_from) * 40);
    for id in &all[keep_from..] {
        text.push_str(id);
        text.push('\n');
    }
    let tmp = wal_dir.join(format!(".{FILE}.tmp"));
    let path = wal_dir.join(FILE);
    std::fs::File::create(&tmp)
        .and_then(|mut f| {
            f.write_all(text.as_bytes())?;
            f.sync_all()
        })
        .map_err(|e| BufferError::io(&tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| BufferError::io(&path, e))?;
    layout::sync_dir(wal_dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_ids_in_order() {
        let dir = nordiq_testkit::TempDir::new("batch-id-log");
        assert!(read(&dir).unwrap().is_empty());
        remember(&dir, &["a".into(), "b".into()]).unwrap();
        remember(&dir, &[]).unwrap();
        remember(&dir, &["c".into()]).unwrap();
        assert_eq!(read(&dir).unwrap(), ["a", "b", "c"]);
        let many: Vec<String> = (0..REMEMBERED + 5).map(|i| format!("id-{i}")).collect();
        remember(&dir, &many).unwrap();
        let kept = read(&dir).unwrap();
        assert_eq!(kept.len(), REMEMBERED);
        assert_eq!(kept[0], "id-5");
        assert_eq!(kept.last().unwrap(), &format!("id-{}", REMEMBERED + 4));
    }
}
