//! `[window]`: the rolling windows kept per server.

use super::invalid::{require, Invalid};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WindowConfig {
    /// Raw samples kept per server (at the feed's own rate).
    pub raw_capacity: usize,
    /// Servers tracked at most; records for further new servers are rejected.
    pub max_servers: usize,
    /// Aggregated steps kept per server; 0 = the largest of the encoder,
    /// `forecast.median_seasons` seasons (at least two: seasonal baselines need a season of
    /// history plus a season of residuals) and eight seasons (the weekly seasonal naive).
    pub history_steps: usize,
}

impl Default for WindowConfig {
    fn default() -> Self {
        WindowConfig {
            raw_capacity: 720,
            max_servers: 10_000,
            history_steps: 0,
        }
    }
}

impl WindowConfig {
    pub(crate) fn validate(&self) -> Result<(), Invalid> {
        require(
            (1..=1_000_000).contains(&self.raw_capacity),
            "window.raw_capacity",
            || "must be between 1 and 1000000".into(),
        )?;
        require(
            self.history_steps <= 1_000_000,
            "window.history_steps",
            || "must be at most 1000000".into(),
        )?;
        require(self.max_servers >= 1, "window.max_servers", || {
            "must be at least 1".into()
        })
    }
}
