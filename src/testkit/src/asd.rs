//! Real server data for tests and benches: a small ASD sample vendored in this crate
//! (`data/asd-sample`, see its README) and the full set beside the repository.

use std::path::{Path, PathBuf};

/// The vendored sample: omi-1 and omi-2, their first three days (864 rows each).
pub fn sample(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data/asd-sample")
        .join(file)
}

/// The full ASD set (`NORDIQ_ASD_DIR`, else `shared/data/asd` beside the repository), for
/// benches; panics with where it looked when it is not there.
pub fn full_dir() -> PathBuf {
    let dir = std::env::var_os("NORDIQ_ASD_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/asd")
        });
    assert!(
        dir.join("omi-1.csv").exists(),
        "the ASD dataset is not at {} (set NORDIQ_ASD_DIR to its folder)",
        dir.display()
    );
    dir
}
