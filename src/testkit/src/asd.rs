//! Real server data for tests and benches: a small ASD sample vendored in this crate
//! (`data/asd-sample`, see its README) and the full set beside the repository.

use std::path::{Path, PathBuf};

/// A file of the vendored sample: omi-1 and omi-2 (their first three days), omi-3 and
/// omi-4 (2026-01-23 to the end, with the labelled test split); see its README.
pub fn sample(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data/asd-sample")
        .join(file)
}

/// The full ASD set (`NORDIQ_ASD_DIR`, else `shared/data/asd` beside the repository), for
/// benches; `Err` names where it looked.
pub fn full_dir() -> Result<PathBuf, String> {
    let dir = std::env::var_os("NORDIQ_ASD_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/asd"));
    if dir.join("omi-1.csv").exists() {
        Ok(dir)
    } else {
        Err(format!(
            "the ASD dataset is not at {} (set NORDIQ_ASD_DIR to its folder)",
            dir.display()
        ))
    }
}

/// The full set's twelve files, omi-1 … omi-12 (panics when the set is missing).
pub fn full_files() -> Vec<PathBuf> {
    let dir = full_dir().unwrap_or_else(|e| panic!("{e}"));
    (1..=12).map(|i| dir.join(format!("omi-{i}.csv"))).collect()
}
