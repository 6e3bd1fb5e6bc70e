//! The daemon's side of training jobs, as state: where a job's config comes from, and the
//! lock that serialises trigger and cancel (`services::jobs` does the work).

use super::config_source::ConfigSource;

/// The daemon's side of training jobs.
pub struct Jobs {
    pub(crate) source: ConfigSource,
    /// Serialises trigger and cancel.
    pub(crate) lock: tokio::sync::Mutex<()>,
}

impl Jobs {
    pub fn new(source: ConfigSource) -> Jobs {
        Jobs {
            source,
            lock: tokio::sync::Mutex::new(()),
        }
    }
}
