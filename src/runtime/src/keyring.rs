//! Named API keys with scopes: what the daemon checks a presented key against.
//!
//! A keyring holds the single key of `[auth]` (named `default`, every scope, so existing
//! setups keep working) and the named keys of `auth.keys_file`. The keys file stores each
//! key's SHA-256, never the key: reading it does not give anyone access. A presented key is
//! hashed once and compared with every entry in constant time.

use crate::auth::{self, ApiKey, KeyEnv, KeyError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;
use std::path::Path;

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Predictions, alerts, explanations, historical data, status, `/metrics`.
    Read,
    /// `POST /feed/data`, remote write.
    Ingest,
    /// Everything under `/admin/`: training, models, reload, refresh.
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 3] = [Scope::Read, Scope::Ingest, Scope::Admin];

    pub fn name(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Ingest => "ingest",
            Scope::Admin => "admin",
        }
    }

    fn bit(self) -> u8 {
        match self {
            Scope::Read => 1,
            Scope::Ingest => 2,
            Scope::Admin => 4,
        }
    }
}

/// A set of scopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Scopes(u8);

impl Scopes {
    pub fn all() -> Scopes {
        Scopes(7)
    }

    pub fn contains(self, scope: Scope) -> bool {
        self.0 & scope.bit() != 0
    }

    /// Parses `read,ingest` (or a list of names). Empty or unknown names are errors.
    pub fn parse<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Scopes, String> {
        let mut bits = 0;
        for name in names {
            let name = name.trim();
            let scope = Scope::ALL
                .into_iter()
                .find(|s| s.name() == name)
                .ok_or_else(|| {
                    format!("unknown scope `{name}` (expected read, ingest or admin)")
                })?;
            bits |= scope.bit();
        }
        if bits == 0 {
            return Err("no scope given (expected one or more of read, ingest, admin)".into());
        }
        Ok(Scopes(bits))
    }

    pub fn names(self) -> Vec<&'static str> {
        Scope::ALL
            .into_iter()
            .filter(|s| self.contains(*s))
            .map(Scope::name)
            .collect()
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.names().join(","))
    }
}

/// One key the daemon accepts: its name, scopes and the SHA-256 of the secret.
#[derive(Clone)]
pub struct NamedKey {
    pub name: String,
    pub scopes: Scopes,
    digest: [u8; 32],
}

impl fmt::Debug for NamedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NamedKey({} [{}])", self.name, self.scopes)
    }
}

/// The name the single key of `[auth]` carries in the journal.
pub const DEFAULT_KEY_NAME: &str = "default";

/// Every key the daemon accepts. Empty means anonymous access (only with
/// `auth.allow_anonymous = true`).
#[derive(Debug, Clone, Default)]
pub struct Keyring {
    keys: Vec<NamedKey>,
    /// Where the keys came from, for the journal (`key from …; 2 named keys from …`).
    pub origin: String,
}

fn digest(secret: &[u8]) -> [u8; 32] {
    Sha256::digest(secret).into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Keyring {
    /// The single key (all scopes) and the keys file's named keys.
    pub fn new(single: Option<&ApiKey>, named: Vec<NamedKey>, keys_file: &Path) -> Keyring {
        let mut origin = Vec::new();
        let mut keys = Vec::new();
        if let Some(k) = single {
            origin.push(format!("API key from {}", k.source));
            keys.push(NamedKey {
                name: DEFAULT_KEY_NAME.into(),
                scopes: Scopes::all(),
                digest: digest(k.expose().as_bytes()),
            });
        }
        if !named.is_empty() {
            origin.push(format!(
                "{} named keys from {}",
                named.len(),
                keys_file.display()
            ));
        }
        keys.extend(named);
        if keys.is_empty() {
            origin.push("no key (anonymous)".into());
        }
        Keyring {
            keys,
            origin: origin.join("; "),
        }
    }

    /// Loads the single key by its precedence (see [`auth::resolve_key`]) and the keys file.
    pub fn load(env: &KeyEnv, key_file: &Path, keys_file: &Path) -> Result<Keyring, KeyError> {
        let single = auth::resolve_key(env, key_file)?;
        let named = read_keys_file(keys_file)?;
        Ok(Keyring::new(single.as_ref(), named, keys_file))
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The key `presented` is, if any. Every entry is compared, in time independent of
    /// where the bytes differ and of which entry matches.
    pub fn find(&self, presented: &[u8]) -> Option<&NamedKey> {
        let presented = digest(presented);
        let mut found = None;
        for key in &self.keys {
            let equal = auth::constant_time_eq(&key.digest, &presented);
            found = if equal && found.is_none() {
                Some(key)
            } else {
                found
            };
        }
        found
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeysFile {
    #[serde(default)]
    key: Vec<KeyEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyEntry {
    name: String,
    scopes: Vec<String>,
    sha256: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    created: Option<String>,
}

/// A named key as `nordiqctl keys` lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeyListing {
    pub name: String,
    pub scopes: Vec<String>,
    pub created: Option<String>,
}

fn bad(path: &Path, message: impl Into<String>) -> KeyError {
    KeyError::BadKeysFile {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn read_entries(path: &Path) -> Result<Vec<KeyEntry>, KeyError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => {
            return Err(KeyError::Unreadable {
                source_name: format!("keys file {}", path.display()),
                error,
            })
        }
    };
    let file: KeysFile = toml::from_str(&text).map_err(|e| bad(path, e.to_string()))?;
    Ok(file.key)
}

/// The named keys of `path` (none when it does not exist). Every entry is checked: a
/// valid unique name (letters, digits, `-_.`), known scopes, a 64-digit hex SHA-256.
pub fn read_keys_file(path: &Path) -> Result<Vec<NamedKey>, KeyError> {
    let mut out: Vec<NamedKey> = Vec::new();
    for entry in read_entries(path)? {
        let at = |m: String| bad(path, format!("key `{}`: {m}", entry.name));
        if !valid_name(&entry.name) || entry.name == DEFAULT_KEY_NAME {
            return Err(at(format!(
                "not a usable name (letters, digits, `-_.`, at most 64, not `{DEFAULT_KEY_NAME}`)"
            )));
        }
        if out.iter().any(|k| k.name == entry.name) {
            return Err(at("named twice".into()));
        }
        let scopes = Scopes::parse(entry.scopes.iter().map(String::as_str)).map_err(at)?;
        let digest =
            parse_digest(&entry.sha256).ok_or_else(|| at("sha256 is not 64 hex digits".into()))?;
        out.push(NamedKey {
            name: entry.name,
            scopes,
            digest,
        });
    }
    Ok(out)
}

fn parse_digest(text: &str) -> Option<[u8; 32]> {
    let text = text.trim();
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// The named keys of `path`, for listing (no digests).
pub fn list_keys(path: &Path) -> Result<Vec<KeyListing>, KeyError> {
    read_keys_file(path)?;
    Ok(read_entries(path)?
        .into_iter()
        .map(|e| KeyListing {
            name: e.name,
            scopes: e.scopes,
            created: e.created,
        })
        .collect())
}

const KEYS_FILE_HEADER: &str = "\
# NordIQ API keys: one [[key]] per client, with the scopes it may use (read, ingest,
# admin). Only each key's SHA-256 is stored here. Add one with
# `nordiqctl keygen --name NAME --scope read`, remove one with `nordiqctl keys revoke NAME`,
# then `systemctl reload nordiq-inference`.
";

fn write_entries(path: &Path, entries: &[KeyEntry], group: Option<&str>) -> Result<(), KeyError> {
    let body = toml::to_string(&KeysFile {
        key: entries.to_vec(),
    })
    .map_err(|e| bad(path, e.to_string()))?;
    auth::write_private_file(
        path,
        format!("{KEYS_FILE_HEADER}\n{body}").as_bytes(),
        group,
    )
}

/// Makes a new key named `name` with `scopes`, adds its SHA-256 to the keys file at `path`
/// (created 0600, or 0640 owned by `group`), and returns the key: it is shown once and
/// stored nowhere else. Refuses a name that exists unless `force` (which replaces it).
pub fn add_key(
    path: &Path,
    name: &str,
    scopes: Scopes,
    group: Option<&str>,
    force: bool,
    now: &str,
) -> Result<String, KeyError> {
    if !valid_name(name) || name == DEFAULT_KEY_NAME {
        return Err(KeyError::BadName(name.to_string()));
    }
    read_keys_file(path)?;
    let mut entries = read_entries(path)?;
    if entries.iter().any(|e| e.name == name) {
        if !force {
            return Err(KeyError::NameTaken {
                name: name.to_string(),
                path: path.to_path_buf(),
            });
        }
        entries.retain(|e| e.name != name);
    }
    let secret = auth::generate_key()?;
    entries.push(KeyEntry {
        name: name.to_string(),
        scopes: scopes.names().into_iter().map(str::to_string).collect(),
        sha256: hex(&digest(secret.as_bytes())),
        created: Some(now.to_string()),
    });
    write_entries(path, &entries, group)?;
    Ok(secret)
}

/// Removes the key named `name`; false when there was none. The file keeps its mode
/// and group.
pub fn revoke_key(path: &Path, name: &str) -> Result<bool, KeyError> {
    let mut entries = read_entries(path)?;
    let before = entries.len();
    entries.retain(|e| e.name != name);
    if entries.len() == before {
        return Ok(false);
    }
    let group = group_of(path);
    write_entries(path, &entries, group.as_deref())?;
    Ok(true)
}

/// The group name owning `path` when the file is group-readable (to keep it on rewrite).
fn group_of(path: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).ok()?;
    if meta.mode() & 0o040 == 0 {
        return None;
    }
    let gid = meta.gid();
    let groups = std::fs::read_to_string("/etc/group").ok()?;
    groups.lines().find_map(|l| {
        let mut parts = l.split(':');
        let name = parts.next()?;
        (parts.nth(1)?.parse::<u32>().ok()? == gid).then(|| name.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn scopes_parse_and_print() {
        let s = Scopes::parse(["read", " ingest"]).unwrap();
        assert!(s.contains(Scope::Read) && s.contains(Scope::Ingest) && !s.contains(Scope::Admin));
        assert_eq!(s.to_string(), "read,ingest");
        assert!(Scopes::parse(["write"])
            .unwrap_err()
            .contains("unknown scope `write`"));
        assert!(Scopes::parse(Vec::<&str>::new()).is_err());
        assert_eq!(Scopes::all().names(), ["read", "ingest", "admin"]);
    }

    #[test]
    fn keys_are_found_by_secret_with_their_scopes() {
        let dir = nordiq_testkit::TempDir::new("keyring");
        let file = dir.join("api-keys.toml");
        let now = "2026-12-02T00:00:00Z";
        let grafana = add_key(
            &file,
            "grafana",
            Scopes::parse(["read"]).unwrap(),
            None,
            false,
            now,
        )
        .unwrap();
        let feeder = add_key(
            &file,
            "feeder",
            Scopes::parse(["ingest"]).unwrap(),
            None,
            false,
            now,
        )
        .unwrap();
        assert_ne!(grafana, feeder);
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(
            !text.contains(&grafana) && !text.contains(&feeder),
            "secrets stored"
        );
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // The single key of [auth] is `default`, with every scope.
        std::fs::write(dir.join("api-key"), "single-key-0123456789\n").unwrap();
        let ring = Keyring::load(&KeyEnv::default(), &dir.join("api-key"), &file).unwrap();
        assert!(ring.origin.contains("2 named keys"), "{}", ring.origin);
        let k = ring.find(grafana.as_bytes()).unwrap();
        assert_eq!(
            (k.name.as_str(), k.scopes.names()),
            ("grafana", vec!["read"])
        );
        let k = ring.find(feeder.as_bytes()).unwrap();
        assert_eq!(
            (k.name.as_str(), k.scopes.names()),
            ("feeder", vec!["ingest"])
        );
        let k = ring.find(b"single-key-0123456789").unwrap();
        assert_eq!((k.name.as_str(), k.scopes), ("default", Scopes::all()));
        assert!(ring.find(b"nope").is_none());
        assert!(ring.find(&grafana.as_bytes()[1..]).is_none());
        // A name exists: refused without --force; replaced (a new secret) with it.
        assert!(add_key(&file, "grafana", Scopes::all(), None, false, now)
            .unwrap_err()
            .to_string()
            .contains("exists"));
        let replaced = add_key(&file, "grafana", Scopes::all(), None, true, now).unwrap();
        let ring = Keyring::load(&KeyEnv::default(), &dir.join("none"), &file).unwrap();
        assert!(ring.find(grafana.as_bytes()).is_none());
        assert_eq!(
            ring.find(replaced.as_bytes()).unwrap().scopes,
            Scopes::all()
        );
        // Revoked keys stop working.
        assert!(revoke_key(&file, "feeder").unwrap());
        assert!(!revoke_key(&file, "feeder").unwrap());
        let ring = Keyring::load(&KeyEnv::default(), &dir.join("none"), &file).unwrap();
        assert!(ring.find(feeder.as_bytes()).is_none());
        assert_eq!(
            list_keys(&file)
                .unwrap()
                .iter()
                .map(|k| k.name.as_str())
                .collect::<Vec<_>>(),
            ["grafana"]
        );
        // No key anywhere: an empty ring (anonymous).
        let empty = Keyring::load(
            &KeyEnv::default(),
            &dir.join("none"),
            &dir.join("none.toml"),
        )
        .unwrap();
        assert!(empty.is_empty());
    }

    #[test]
    fn bad_keys_files_say_which_entry_and_why() {
        let dir = nordiq_testkit::TempDir::new("keyring-bad");
        let file = dir.join("k.toml");
        let digest = "ab".repeat(32);
        for (body, expect) in [
            (format!("[[key]]\nname = \"a b\"\nscopes = [\"read\"]\nsha256 = \"{digest}\"\n"), "not a usable name"),
            (format!("[[key]]\nname = \"a\"\nscopes = [\"root\"]\nsha256 = \"{digest}\"\n"), "unknown scope `root`"),
            (format!("[[key]]\nname = \"a\"\nscopes = []\nsha256 = \"{digest}\"\n"), "no scope"),
            ("[[key]]\nname = \"a\"\nscopes = [\"read\"]\nsha256 = \"xyz\"\n".into(), "64 hex"),
            (format!("[[key]]\nname = \"a\"\nscopes = [\"read\"]\nsha256 = \"{digest}\"\n[[key]]\nname = \"a\"\nscopes = [\"read\"]\nsha256 = \"{digest}\"\n"), "named twice"),
            ("[[key]]\nname = \"a\"\nscope = [\"read\"]\n".into(), "unknown field"),
        ] {
            std::fs::write(&file, body).unwrap();
            let err = read_keys_file(&file).unwrap_err().to_string();
            assert!(err.contains(expect) && err.contains("k.toml"), "{err}");
        }
    }
}
