//! Secrets a source sends (passwords): a systemd credential when the unit passes one
//! (`LoadCredential=`), else a file named in the config. Read when needed, so a rotated
//! secret is picked up without a restart.

use crate::source_error::SourceError;
use std::path::{Path, PathBuf};

/// The credential `credential` from `$CREDENTIALS_DIRECTORY`, else the file `file`
/// (trimmed); errors name `key`, the config key of the file.
pub fn read_secret(key: &str, credential: &str, file: &str) -> Result<String, SourceError> {
    let from_systemd = std::env::var_os("CREDENTIALS_DIRECTORY")
        .map(|d| PathBuf::from(d).join(credential))
        .filter(|p| p.is_file());
    let (what, path) = match &from_systemd {
        Some(path) => (format!("the credential {credential}"), path.as_path()),
        None if file.is_empty() => {
            return Err(SourceError::Setup(format!(
                "{key} is empty and no credential {credential} is passed: set one of them"
            )))
        }
        None => (key.to_string(), Path::new(file)),
    };
    read_trimmed(&what, path)
}

/// A secret file's content without surrounding whitespace; errors name `what`.
pub fn read_trimmed(what: &str, path: &Path) -> Result<String, SourceError> {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .map_err(|e| SourceError::Setup(format!("{what} {}: {e}", path.display())))
}
