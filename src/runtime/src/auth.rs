//! The API key: where it comes from, how it is compared, how a new one is made.
//!
//! Precedence: `NORDIQ_API_KEY` > `$CREDENTIALS_DIRECTORY/api-key` (systemd
//! `LoadCredential=`) > `auth.api_key_file` > legacy `TFT_API_KEY`. The key itself never
//! appears in logs, errors or responses; only where it came from does.

use std::fmt;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

pub const KEY_ENV: &str = "NORDIQ_API_KEY";
pub const LEGACY_KEY_ENV: &str = "TFT_API_KEY";
pub const CREDENTIAL_NAME: &str = "api-key";
/// Shortest key accepted from any source.
pub const MIN_KEY_LEN: usize = 16;

/// Where the key in use came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    Env,
    Credential(PathBuf),
    File(PathBuf),
    LegacyEnv,
}

impl fmt::Display for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::Env => write!(f, "${KEY_ENV}"),
            KeySource::Credential(p) => write!(f, "systemd credential {}", p.display()),
            KeySource::File(p) => write!(f, "key file {}", p.display()),
            KeySource::LegacyEnv => write!(f, "${LEGACY_KEY_ENV} (legacy)"),
        }
    }
}

/// A loaded key. Debug and Display never show it.
#[derive(Clone)]
pub struct ApiKey {
    secret: String,
    pub source: KeySource,
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKey(from {})", self.source)
    }
}

impl ApiKey {
    /// Whether `presented` is this key, in time independent of where they differ.
    pub fn matches(&self, presented: &[u8]) -> bool {
        constant_time_eq(self.secret.as_bytes(), presented)
    }

    /// The key, for clients that must send it.
    pub fn expose(&self) -> &str {
        &self.secret
    }
}

/// Why no usable key was found.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read API key from {source_name}: {error}")]
    Unreadable {
        source_name: String,
        error: std::io::Error,
    },
    #[error("API key from {0} is shorter than {MIN_KEY_LEN} characters; generate one with `nordiqctl keygen`")]
    TooShort(KeySource),
    #[error("no API key: set {KEY_ENV}, pass a systemd credential `{CREDENTIAL_NAME}`, or create {0} with `nordiqctl keygen` (or set auth.allow_anonymous = true)")]
    Missing(PathBuf),
    #[error("key file {path} exists already; pass --force to replace it")]
    Exists { path: PathBuf },
    #[error("cannot write key file {path}: {error}")]
    Write {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("no group named `{0}`")]
    NoSuchGroup(String),
    #[error("keys file {path}: {message}")]
    BadKeysFile { path: PathBuf, message: String },
    #[error(
        "a key named `{name}` exists in {path}; pass --force to replace it, or pick another name"
    )]
    NameTaken { name: String, path: PathBuf },
    #[error("`{0}` is not a usable key name (letters, digits, `-_.`, at most 64 characters, not `default`)")]
    BadName(String),
    #[error("cannot read random bytes from the OS: {0}")]
    Random(String),
}

/// Where the environment says to look; split out so tests need not touch the process env.
#[derive(Debug, Clone, Default)]
pub struct KeyEnv {
    pub key: Option<String>,
    pub credentials_directory: Option<PathBuf>,
    pub legacy_key: Option<String>,
}

impl KeyEnv {
    pub fn from_process() -> KeyEnv {
        let non_empty = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        KeyEnv {
            key: non_empty(KEY_ENV),
            credentials_directory: non_empty("CREDENTIALS_DIRECTORY").map(PathBuf::from),
            legacy_key: non_empty(LEGACY_KEY_ENV),
        }
    }
}

/// Finds the key by precedence. `Ok(None)` when no source has one.
pub fn resolve_key(env: &KeyEnv, key_file: &Path) -> Result<Option<ApiKey>, KeyError> {
    let checked = |secret: String, source: KeySource| {
        let secret = secret.trim().to_string();
        if secret.len() < MIN_KEY_LEN {
            Err(KeyError::TooShort(source))
        } else {
            Ok(Some(ApiKey { secret, source }))
        }
    };
    if let Some(k) = &env.key {
        return checked(k.clone(), KeySource::Env);
    }
    if let Some(dir) = &env.credentials_directory {
        let path = dir.join(CREDENTIAL_NAME);
        if let Some(secret) = read_optional(&path, || format!("credential {}", path.display()))? {
            return checked(secret, KeySource::Credential(path));
        }
    }
    if let Some(secret) = read_optional(key_file, || format!("key file {}", key_file.display()))? {
        return checked(secret, KeySource::File(key_file.to_path_buf()));
    }
    if let Some(k) = &env.legacy_key {
        return checked(k.clone(), KeySource::LegacyEnv);
    }
    Ok(None)
}

fn read_optional(path: &Path, name: impl Fn() -> String) -> Result<Option<String>, KeyError> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(KeyError::Unreadable {
            source_name: name(),
            error,
        }),
    }
}

/// Compares two byte strings in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let len = a.len().max(b.len());
    let mut diff = (a.len() ^ b.len()) as u64;
    for i in 0..len {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= (x ^ y) as u64;
    }
    // Keep the optimiser from turning the loop into an early exit.
    std::hint::black_box(diff) == 0
}

/// A new 256-bit key, hex-encoded (64 characters).
pub fn generate_key() -> Result<String, KeyError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| KeyError::Random(e.to_string()))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Writes `key` to `path` atomically: mode 0600, or 0640 owned by `group` when given.
/// Refuses to replace an existing file unless `force`. Touches nothing else.
pub fn write_key_file(
    path: &Path,
    key: &str,
    group: Option<&str>,
    force: bool,
) -> Result<(), KeyError> {
    if path.exists() && !force {
        return Err(KeyError::Exists {
            path: path.to_path_buf(),
        });
    }
    write_private_file(path, format!("{key}\n").as_bytes(), group)
}

/// Writes `contents` to `path` atomically (temp file, fsync, rename, fsync of the
/// directory): mode 0600, or 0640 owned by `group` when given.
pub fn write_private_file(
    path: &Path,
    contents: &[u8],
    group: Option<&str>,
) -> Result<(), KeyError> {
    let werr = |error| KeyError::Write {
        path: path.to_path_buf(),
        error,
    };
    let gid = match group {
        Some(name) => Some(group_id(name)?),
        None => None,
    };
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(werr)?;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{file_name}.tmp"));
    let _ = std::fs::remove_file(&tmp);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(werr)?;
    let result = (|| {
        file.write_all(contents)?;
        if let Some(gid) = gid {
            std::os::unix::fs::fchown(&file, None, Some(gid))?;
            file.set_permissions(std::fs::Permissions::from_mode(0o640))?;
        }
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(werr)
}

fn group_id(name: &str) -> Result<u32, KeyError> {
    let groups = std::fs::read_to_string("/etc/group").map_err(|error| KeyError::Unreadable {
        source_name: "/etc/group".into(),
        error,
    })?;
    groups
        .lines()
        .filter_map(|l| {
            let mut parts = l.split(':');
            let n = parts.next()?;
            let gid = parts.nth(1)?.parse().ok()?;
            (n == name).then_some(gid)
        })
        .next()
        .ok_or_else(|| KeyError::NoSuchGroup(name.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpdir(name: &str) -> nordiq_testkit::TempDir {
        let dir = nordiq_testkit::TempDir::new(&format!("auth-{name}"));
        dir
    }

    #[test]
    fn constant_time_eq_is_equality() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(!constant_time_eq(b"", b"a"));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn precedence_env_credential_file_legacy() {
        let dir = tmpdir("precedence");
        let key_file = dir.join("api-key");
        let creds = dir.join("creds");
        std::fs::create_dir_all(&creds).unwrap();
        let mut env = KeyEnv {
            key: Some("env-key-0123456789".into()),
            credentials_directory: Some(creds.clone()),
            legacy_key: Some("legacy-key-0123456789".into()),
        };
        std::fs::write(&key_file, "file-key-0123456789\n").unwrap();
        std::fs::write(creds.join("api-key"), "cred-key-0123456789").unwrap();
        let k = resolve_key(&env, &key_file).unwrap().unwrap();
        assert_eq!(
            (k.expose(), &k.source),
            ("env-key-0123456789", &KeySource::Env)
        );
        env.key = None;
        let k = resolve_key(&env, &key_file).unwrap().unwrap();
        assert_eq!(k.expose(), "cred-key-0123456789");
        std::fs::remove_file(creds.join("api-key")).unwrap();
        let k = resolve_key(&env, &key_file).unwrap().unwrap();
        assert_eq!(
            k.expose(),
            "file-key-0123456789",
            "trailing newline trimmed"
        );
        std::fs::remove_file(&key_file).unwrap();
        let k = resolve_key(&env, &key_file).unwrap().unwrap();
        assert_eq!(k.source, KeySource::LegacyEnv);
        env.legacy_key = None;
        assert!(resolve_key(&env, &key_file).unwrap().is_none());
        env.key = Some("short".into());
        assert!(matches!(
            resolve_key(&env, &key_file),
            Err(KeyError::TooShort(_))
        ));
        assert!(!format!("{:?}", KeyError::TooShort(KeySource::Env)).contains("short"));
    }

    #[test]
    fn keygen_writes_0600_and_refuses_to_overwrite() {
        let dir = tmpdir("keygen");
        let path = dir.join("sub").join("api-key");
        let key = generate_key().unwrap();
        assert_eq!(key.len(), 64);
        assert!(key.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(key, generate_key().unwrap());
        write_key_file(&path, &key, None, false).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(matches!(
            write_key_file(&path, "x", None, false),
            Err(KeyError::Exists { .. })
        ));
        assert_eq!(std::fs::read_to_string(&path).unwrap().trim(), key);
        write_key_file(&path, "replaced-0123456789", None, true).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap().trim(),
            "replaced-0123456789"
        );
        let group = std::fs::read_to_string("/etc/group").unwrap();
        let root_group = group
            .lines()
            .next()
            .unwrap()
            .split(':')
            .next()
            .unwrap()
            .to_string();
        write_key_file(&path, &key, Some(&root_group), true).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
        assert!(matches!(
            write_key_file(&dir.join("k2"), &key, Some("no-such-group-xyz"), false),
            Err(KeyError::NoSuchGroup(_))
        ));
    }
}
