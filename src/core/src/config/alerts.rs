//! `[alerts]`: the alert event history.

use super::invalid::{require, Invalid};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsConfig {
    /// Alert events kept (oldest dropped first).
    pub max_events: usize,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig { max_events: 10_000 }
    }
}

impl AlertsConfig {
    pub(crate) fn validate(&self) -> Result<(), Invalid> {
        require(self.max_events > 0, "alerts.max_events", || {
            "must be at least 1".into()
        })
    }
}
