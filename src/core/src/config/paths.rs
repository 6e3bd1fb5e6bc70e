//! `[paths]`: where state lives.

use super::invalid::{require, Invalid};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PathsConfig {
    pub state_dir: PathBuf,
}

impl Default for PathsConfig {
    fn default() -> Self {
        PathsConfig {
            state_dir: PathBuf::from("/var/lib/nordiq"),
        }
    }
}

impl PathsConfig {
    pub(crate) fn validate(&self) -> Result<(), Invalid> {
        require(
            !self.state_dir.as_os_str().is_empty(),
            "paths.state_dir",
            || "must not be empty".into(),
        )
    }
}
