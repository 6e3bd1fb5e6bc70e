//! Secrets a process sends (passwords, tokens, signing keys): a systemd credential when the
//! unit passes one (`LoadCredential=`), else a file named in the config. Read when needed,
//! so a rotated secret is picked up without a restart.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("{key} is empty and no credential {credential} is passed: set one of them")]
    Missing { key: String, credential: String },
    #[error("{what} {path}: {source}")]
    Read {
        what: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The credential `credential` from `$CREDENTIALS_DIRECTORY`, else the file `file`
/// (trimmed); errors name `key`, the config key of the file.
pub fn read_secret(key: &str, credential: &str, file: &str) -> Result<String, SecretError> {
    let from_systemd = std::env::var_os("CREDENTIALS_DIRECTORY")
        .map(|d| PathBuf::from(d).join(credential))
        .filter(|p| p.is_file());
    match &from_systemd {
        Some(path) => read_trimmed(&format!("the credential {credential}"), path),
        None if file.is_empty() => Err(SecretError::Missing {
            key: key.to_string(),
            credential: credential.to_string(),
        }),
        None => read_trimmed(key, Path::new(file)),
    }
}

/// A secret file's content without surrounding whitespace; errors name `what`.
pub fn read_trimmed(what: &str, path: &Path) -> Result<String, SecretError> {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .map_err(|source| SecretError::Read {
            what: what.to_string(),
            path: path.to_path_buf(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_read_trimmed_and_a_missing_one_names_its_key() {
        let dir = nordiq_testkit::TempDir::new("secret");
        let file = dir.join("token");
        std::fs::write(&file, "  s3cret\n").unwrap();
        let file = file.display().to_string();
        assert_eq!(
            read_secret("x.token_file", "x-token", &file).unwrap(),
            "s3cret"
        );
        let e = read_secret("x.token_file", "x-token", "").unwrap_err();
        assert!(e.to_string().contains("x.token_file"), "{e}");
        let e = read_secret("x.token_file", "x-token", "/nonexistent/token").unwrap_err();
        assert!(e.to_string().contains("/nonexistent/token"), "{e}");
    }
}
