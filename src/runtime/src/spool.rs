//! A delivery spool: batches a receiver has not acknowledged (nordiq-inference for
//! nordiq-metrics, Alertmanager or a webhook for nordiq-inference's notifications), one
//! file each, delivered oldest first. A file is complete or absent (written to a temp name, fsynced,
//! renamed). Above `max_bytes` the oldest batches are dropped, and counted: that bound is
//! the one place the spool can lose data, and it is logged.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("spool {path}: {source} (is the state directory writable?)")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SpoolError + '_ {
    move |source| SpoolError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// One batch: an id the receiver may use to drop a repeat, how many records it holds, and
/// its body.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub id: String,
    pub records: usize,
    pub body: Vec<u8>,
}

#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    /// (sequence, file, size), oldest first.
    files: std::collections::VecDeque<(u64, PathBuf, u64)>,
    next_seq: u64,
    bytes: u64,
    /// Said when the bound drops a batch: what to do about it.
    full_hint: String,
    /// Batches dropped because the spool was full, since start.
    pub dropped_batches: u64,
    pub dropped_records: u64,
}

impl Spool {
    /// Opens (creating) `dir`, removing half-written temp files and picking up batches a
    /// previous run left. `full_hint` is logged when the bound drops a batch (which key to
    /// raise, which receiver to bring back).
    pub fn open(dir: &Path, max_bytes: u64, full_hint: &str) -> Result<Spool, SpoolError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(io(dir))? {
            let entry = entry.map_err(io(dir))?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if crate::atomic_file::is_temp_name(&name) {
                let _ = std::fs::remove_file(&path);
                continue;
            }
            let Some(seq) = name
                .strip_suffix(".ndjson")
                .and_then(|stem| stem.split('.').next())
                .and_then(|s| s.parse::<u64>().ok())
            else {
                continue;
            };
            let size = entry.metadata().map_err(io(&path))?.len();
            files.push((seq, path, size));
        }
        files.sort_by_key(|f| f.0);
        let next_seq = files.last().map_or(0, |f| f.0 + 1);
        let bytes = files.iter().map(|f| f.2).sum();
        Ok(Spool {
            dir: dir.to_path_buf(),
            max_bytes,
            files: files.into(),
            next_seq,
            bytes,
            full_hint: full_hint.to_string(),
            dropped_batches: 0,
            dropped_records: 0,
        })
    }

    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Stores `batch` durably behind the others; drops the oldest while over the bound.
    pub fn push(&mut self, batch: &Batch) -> Result<(), SpoolError> {
        let seq = self.next_seq;
        self.next_seq += 1;
        let name = format!("{seq:020}.{}.{}.ndjson", batch.records, batch.id);
        let path = self.dir.join(&name);
        crate::atomic_file::write_atomic(&path, &batch.body)
            .map_err(|(path, source)| SpoolError::Io { path, source })?;
        let size = batch.body.len() as u64;
        self.files.push_back((seq, path, size));
        self.bytes += size;
        while self.bytes > self.max_bytes && self.files.len() > 1 {
            if let Some((_, path, size)) = self.files.pop_front() {
                self.dropped_records += records_in_name(&path);
                self.dropped_batches += 1;
                self.bytes -= size;
                let _ = std::fs::remove_file(&path);
                tracing::error!(file = %path.display(), max_bytes = self.max_bytes,
                    "spool full: dropped its oldest batch ({})", self.full_hint);
            }
        }
        Ok(())
    }

    /// The oldest batch, read back.
    pub fn oldest(&self) -> Result<Option<Batch>, SpoolError> {
        let Some((_, path, _)) = self.files.front() else {
            return Ok(None);
        };
        let body = std::fs::read(path).map_err(io(path))?;
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        // {seq}.{records}.{id}.ndjson
        let mut parts = name.trim_end_matches(".ndjson").splitn(3, '.');
        let _seq = parts.next();
        let records = parts.next().and_then(|r| r.parse().ok()).unwrap_or(0);
        let id = parts.next().unwrap_or_default().to_string();
        Ok(Some(Batch { id, records, body }))
    }

    /// Forgets the oldest batch (it was delivered, or refused for good).
    pub fn pop(&mut self) -> Result<(), SpoolError> {
        if let Some((_, path, size)) = self.files.pop_front() {
            self.bytes -= size;
            std::fs::remove_file(&path).map_err(io(&path))?;
        }
        Ok(())
    }
}

fn records_in_name(path: &Path) -> u64 {
    path.file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.split('.').nth(1))
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(id: &str, size: usize) -> Batch {
        Batch {
            id: id.into(),
            records: 3,
            body: vec![b'x'; size],
        }
    }

    #[test]
    fn batches_come_back_in_order_across_a_reopen() {
        let dir = nordiq_testkit::TempDir::new("spool");
        let mut spool = Spool::open(&dir, 1 << 20, "").unwrap();
        spool.push(&batch("a-1", 10)).unwrap();
        spool.push(&batch("a-2", 20)).unwrap();
        let half = dir.join("00000000000000000009.3.half.ndjson");
        std::fs::write(crate::atomic_file::temp_path(&half), b"partial").unwrap();
        drop(spool);
        let mut spool = Spool::open(&dir, 1 << 20, "").unwrap();
        assert_eq!(spool.len(), 2);
        assert_eq!(spool.bytes(), 30);
        assert_eq!(spool.oldest().unwrap().unwrap(), batch("a-1", 10));
        spool.pop().unwrap();
        spool.push(&batch("b-1", 5)).unwrap();
        assert_eq!(spool.oldest().unwrap().unwrap().id, "a-2");
        spool.pop().unwrap();
        assert_eq!(spool.oldest().unwrap().unwrap().id, "b-1");
        spool.pop().unwrap();
        assert!(spool.oldest().unwrap().is_none());
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            0,
            "temp file left"
        );
    }

    #[test]
    fn a_full_spool_drops_the_oldest_and_counts_them() {
        let dir = nordiq_testkit::TempDir::new("spool-full");
        let mut spool = Spool::open(&dir, 100, "").unwrap();
        for i in 0..5 {
            spool.push(&batch(&format!("x-{i}"), 40)).unwrap();
        }
        assert_eq!(spool.len(), 2);
        assert!(spool.bytes() <= 100);
        assert_eq!((spool.dropped_batches, spool.dropped_records), (3, 9));
        assert_eq!(spool.oldest().unwrap().unwrap().id, "x-3");
    }
}
