//! `[training]`: training jobs and promotion.

use super::invalid::{require, Invalid};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// How `POST /admin/trigger-training` runs `nordiq-train`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Launcher {
    /// `systemd` when the daemon runs under systemd, `process` otherwise.
    Auto,
    /// `systemctl start` the retrain unit (it picks up the queued job).
    Systemd,
    /// A `nordiq-train` child process of the daemon.
    Process,
}

/// Training jobs and promotion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainingConfig {
    pub launcher: Launcher,
    /// The unit the systemd launcher starts.
    pub unit: String,
    /// The unit `nordiq-train` reloads after promoting a model under systemd.
    pub inference_unit: String,
    /// `nordiq-train` for the process launcher; empty: next to nordiq-inference, else $PATH.
    pub trainer: PathBuf,
    /// A new model is promoted only if its validation loss is at least this fraction
    /// below the current model's on the same windows (0.02 = 2 % better).
    pub promote_margin: f64,
    /// `POST /admin/cancel-training` waits this long after SIGTERM, then kills.
    pub cancel_timeout_seconds: u64,
    /// `POST /admin/trigger-training` without `epochs=`: this many (v2.3's default, 5).
    pub default_epochs: usize,
    /// … without `incremental=`: continue from the current model (v2.3's default); a job
    /// with no current model to continue from trains a new one.
    pub default_incremental: bool,
}

impl Default for TrainingConfig {
    fn default() -> Self {
        TrainingConfig {
            launcher: Launcher::Auto,
            unit: "nordiq-retrain.service".into(),
            inference_unit: "nordiq-inference.service".into(),
            trainer: PathBuf::new(),
            promote_margin: 0.0,
            cancel_timeout_seconds: 30,
            default_epochs: 5,
            default_incremental: true,
        }
    }
}

impl TrainingConfig {
    pub(crate) fn validate(&self) -> Result<(), Invalid> {
        require(
            (0.0..1.0).contains(&self.promote_margin),
            "training.promote_margin",
            || format!("{} is not a fraction in [0, 1)", self.promote_margin),
        )?;
        require(!self.unit.is_empty(), "training.unit", || {
            "must name a unit".into()
        })?;
        require(
            !self.inference_unit.is_empty(),
            "training.inference_unit",
            || "must name a unit".into(),
        )
    }
}
