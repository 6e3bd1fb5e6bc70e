//! `[auth]`: where the API keys come from: the single all-scopes key, and the named keys
//! with scopes (`keys_file`, SHA-256 digests only).

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    pub api_key_file: PathBuf,
    /// Named keys with scopes (TOML, `nordiqctl keygen --name … --scope …`); absent is fine.
    pub keys_file: PathBuf,
    pub allow_anonymous: bool,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            api_key_file: PathBuf::from("/etc/nordiq/api-key"),
            keys_file: PathBuf::from("/etc/nordiq/api-keys.toml"),
            allow_anonymous: false,
        }
    }
}
