//! `[model]`: the forecast grid (step, encoder, horizon, quantiles) and serving threads.

use super::invalid::{require, Invalid};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    /// Model resolution in seconds.
    pub step_seconds: u32,
    pub encoder_steps: usize,
    pub horizon_steps: usize,
    pub quantiles: Vec<f64>,
    /// Workers serving the trained model, each with its own copy of it on one libtorch
    /// thread, sharing every refresh's batch (on CUDA: one worker with this many threads);
    /// 0 = one per core.
    pub threads: usize,
    /// Serve the trained model on a CUDA device when one is available.
    pub cuda: bool,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            step_seconds: 300,
            encoder_steps: 288,
            horizon_steps: 96,
            quantiles: vec![0.1, 0.5, 0.9],
            threads: 0,
            cuda: false,
        }
    }
}

impl ModelConfig {
    pub(crate) fn validate(&self) -> Result<(), Invalid> {
        require(
            self.step_seconds > 0 && 86_400 % self.step_seconds == 0,
            "model.step_seconds",
            || {
                format!(
                    "{} must be positive and divide a day (86400) evenly",
                    self.step_seconds
                )
            },
        )?;
        require(
            (2..=100_000).contains(&self.encoder_steps),
            "model.encoder_steps",
            || "must be between 2 and 100000".into(),
        )?;
        require(
            (1..=10_000).contains(&self.horizon_steps),
            "model.horizon_steps",
            || "must be between 1 and 10000".into(),
        )?;
        let q = &self.quantiles;
        require(
            !q.is_empty()
                && q.iter().all(|q| *q > 0.0 && *q < 1.0)
                && q.windows(2).all(|w| w[0] < w[1]),
            "model.quantiles",
            || "must be strictly increasing values inside (0, 1)".into(),
        )?;
        require(
            q.iter().any(|q| (q - 0.5).abs() < 1e-9),
            "model.quantiles",
            || "must contain 0.5 (the median drives risk)".into(),
        )
    }

    /// The horizon in whole minutes.
    pub fn horizon_minutes(&self) -> u64 {
        self.horizon_steps as u64 * self.step_seconds as u64 / 60
    }
}
