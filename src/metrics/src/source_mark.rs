//! High-water marks: how far a polling source has read, kept on disk (written to a temp
//! file, fsynced, renamed) so that across restarts nothing is read twice or skipped. A
//! mark is saved only after what was read up to it is delivered or spooled.

use crate::source_error::SourceError;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
#[error("high-water mark {path}: {source}")]
pub struct MarkError {
    path: PathBuf,
    #[source]
    source: std::io::Error,
}

/// One source's mark: any JSON value (a timestamp, a sort key, an id).
pub struct MarkFile {
    path: PathBuf,
}

impl MarkFile {
    /// The mark of source `name` under `state_dir/sources/`.
    pub fn new(state_dir: &Path, name: &str) -> MarkFile {
        MarkFile {
            path: state_dir.join("sources").join(format!("{name}.hwm.json")),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The saved mark, or None before the first save. A mark that does not parse is an
    /// error: guessing could skip or repeat data.
    pub fn load(&self) -> Result<Option<serde_json::Value>, MarkError> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| MarkError {
                    path: self.path.clone(),
                    source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
                }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(MarkError {
                path: self.path.clone(),
                source,
            }),
        }
    }

    pub fn save(&self, value: &serde_json::Value) -> Result<(), MarkError> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|source| MarkError {
            path: dir.to_path_buf(),
            source,
        })?;
        nordiq_runtime::atomic_file::write_atomic(&self.path, value.to_string().as_bytes())
            .map_err(|(path, source)| MarkError { path, source })
    }
}

#[cfg(test)]
mod tests {
    use super::MarkFile;

    #[test]
    fn marks_survive_and_garbage_is_refused() {
        let dir = nordiq_testkit::TempDir::new("hwm");
        let hwm = MarkFile::new(&dir, "es");
        assert!(hwm.load().unwrap().is_none());
        hwm.save(&serde_json::json!([1700000000000i64, "id-9"]))
            .unwrap();
        assert_eq!(
            MarkFile::new(&dir, "es").load().unwrap().unwrap(),
            serde_json::json!([1700000000000i64, "id-9"])
        );
        std::fs::write(hwm.path(), b"{not json").unwrap();
        assert!(hwm.load().is_err());
    }
}

/// A time-ordered read position that copes with ties: the newest timestamp read and the
/// ids of the documents read at exactly that timestamp. A source asks for `timestamp >=
/// ts` and drops what [`Boundary::admit`] refuses, so a document is read once even when
/// many share a timestamp or a page ends in the middle of them.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Boundary {
    pub ts: i64,
    pub ids: Vec<String>,
}

impl Boundary {
    pub fn starting_at(ts: i64) -> Boundary {
        Boundary {
            ts,
            ids: Vec::new(),
        }
    }

    /// True for a document not read before; moves the boundary. Documents must come in
    /// timestamp order.
    pub fn admit(&mut self, ts: i64, id: &str) -> bool {
        if ts < self.ts || (ts == self.ts && self.ids.iter().any(|i| i == id)) {
            return false;
        }
        if ts > self.ts {
            self.ts = ts;
            self.ids.clear();
        }
        self.ids.push(id.to_string());
        true
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }

    pub fn from_json(v: &serde_json::Value) -> Option<Boundary> {
        serde_json::from_value(v.clone()).ok()
    }
}

/// A source's [`Boundary`] and the file it is kept in.
pub struct SavedBoundary {
    pub current: Boundary,
    hwm: MarkFile,
}

impl SavedBoundary {
    /// The saved boundary of source `name`, or one at `start_ms` before the first save.
    pub fn open(state_dir: &Path, name: &str, start_ms: i64) -> Result<SavedBoundary, SourceError> {
        let hwm = MarkFile::new(state_dir, name);
        let current = match hwm.load().map_err(|e| SourceError::Mark(e.to_string()))? {
            Some(v) => Boundary::from_json(&v).ok_or_else(|| {
                SourceError::Mark(format!(
                    "{}: not a boundary mark (move it away to read from sources.*.start_hours)",
                    hwm.path().display()
                ))
            })?,
            None => Boundary::starting_at(start_ms),
        };
        Ok(SavedBoundary { current, hwm })
    }

    /// Saves `mark` (a boundary a poll reached) and moves to it.
    pub fn commit(&mut self, mark: &serde_json::Value) -> Result<(), SourceError> {
        let b = Boundary::from_json(mark)
            .ok_or_else(|| SourceError::Mark(format!("not a boundary mark: {mark}")))?;
        self.hwm
            .save(mark)
            .map_err(|e| SourceError::Mark(e.to_string()))?;
        self.current = b;
        Ok(())
    }
}

#[cfg(test)]
mod boundary_tests {
    use super::Boundary;

    #[test]
    fn ties_are_read_once_across_pages_and_restarts() {
        let mut b = Boundary::starting_at(100);
        // Page 1 ends in the middle of the documents at 200.
        assert!(b.admit(150, "a") && b.admit(200, "b") && b.admit(200, "c"));
        let saved = b.to_json();
        // Page 2 asks for ts >= 200 again: b and c come back and are dropped, d is new.
        let mut b = Boundary::from_json(&saved).unwrap();
        assert!(!b.admit(200, "b") && !b.admit(200, "c"));
        assert!(b.admit(200, "d"));
        assert!(b.admit(300, "e"));
        assert_eq!(
            b,
            Boundary {
                ts: 300,
                ids: vec!["e".into()]
            }
        );
        assert!(!b.admit(250, "late"), "older than the boundary");
    }
}
