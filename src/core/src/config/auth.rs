//! `[auth]`: where the API key comes from.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    pub api_key_file: PathBuf,
    pub allow_anonymous: bool,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            api_key_file: PathBuf::from("/etc/nordiq/api-key"),
            allow_anonymous: false,
        }
    }
}
