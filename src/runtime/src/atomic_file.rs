//! Files that are complete or absent: written under a temp name, fsynced, renamed over
//! the target, and the directory fsynced so the rename itself survives a crash.

use std::io::Write;
use std::path::{Path, PathBuf};

/// fsyncs a directory, so a rename or unlink inside it is durable.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// The temp name [`write_atomic`] uses for `path`: hidden, per process (a daemon and a
/// trainer may write the same file), recognisable by [`is_temp_name`].
pub fn temp_path(path: &Path) -> PathBuf {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

/// Whether a directory entry is a temp file [`write_atomic`] left behind (a crash
/// between write and rename).
pub fn is_temp_name(name: &str) -> bool {
    name.starts_with('.') && name.contains(".tmp-")
}

/// Writes `bytes` to `path` atomically and durably. The error names the file that failed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), (PathBuf, std::io::Error)> {
    let tmp = temp_path(path);
    std::fs::File::create(&tmp)
        .and_then(|mut f| {
            f.write_all(bytes)?;
            f.sync_all()
        })
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            (tmp.clone(), e)
        })?;
    std::fs::rename(&tmp, path).map_err(|e| (path.to_path_buf(), e))?;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    sync_dir(dir.unwrap_or(Path::new("."))).map_err(|e| (path.to_path_buf(), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_replace_whole_files_and_leave_no_temp() {
        let dir = nordiq_testkit::TempDir::new("fsutil");
        let file = dir.join("mark.json");
        write_atomic(&file, b"one").unwrap();
        write_atomic(&file, b"two").unwrap();
        assert_eq!(std::fs::read(&file).unwrap(), b"two");
        let names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["mark.json"]);
        assert!(is_temp_name(
            &temp_path(&file).file_name().unwrap().to_string_lossy()
        ));
        assert!(!is_temp_name("mark.json"));
        let missing = dir.join("no/such/dir/x");
        assert_eq!(
            write_atomic(&missing, b"x").unwrap_err().0,
            temp_path(&missing)
        );
    }
}
