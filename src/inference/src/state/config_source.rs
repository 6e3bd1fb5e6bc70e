//! Where the daemon's config comes from, so a reload (and a training job) reads it again
//! from the same place.

use nordiq_core::config::Config;
use std::path::PathBuf;

/// Where a reload reads the config from.
#[derive(Debug, Clone)]
pub enum ConfigSource {
    File(PathBuf),
    /// The embedded development default, rooted in this directory.
    Dev(PathBuf),
}

impl ConfigSource {
    pub fn load(&self) -> Result<Config, String> {
        match self {
            ConfigSource::File(path) => Config::load(path).map_err(|e| e.to_string()),
            ConfigSource::Dev(dir) => Ok(Config::dev(dir)),
        }
    }
}
