//! `[drift]`: when the served model no longer fits what it sees, and whether to retrain
//! (see `crate::drift`).

use super::invalid::Invalid;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DriftConfig {
    /// Start a training job when drift is found (the usual promotion rules decide).
    pub retrain: bool,
    /// How often to check.
    pub check_seconds: u64,
    /// Checks in a row that must find a reason before the fleet counts as drifting.
    pub sustain_checks: u32,
    /// Scored forecasts (last day) needed before live accuracy can signal drift.
    pub min_windows: u64,
    /// Drift when the served model's live MASE is worse than the baseline's by this much.
    pub mase_margin: f64,
    /// Drift when live p10–p90 coverage leaves this band.
    pub coverage_low: f64,
    pub coverage_high: f64,
    /// Drift when a metric's population-stability index against the training data is at
    /// or above this.
    pub psi_threshold: f64,
    /// The input distribution compared: the last this many hours of the windows.
    pub psi_hours: u32,
    /// At most one drift-triggered training job per this many hours.
    pub min_retrain_hours: u32,
}

impl Default for DriftConfig {
    fn default() -> Self {
        DriftConfig {
            retrain: false,
            check_seconds: 3600,
            sustain_checks: 3,
            min_windows: 20,
            mase_margin: 0.05,
            coverage_low: 0.6,
            coverage_high: 0.95,
            psi_threshold: 0.25,
            psi_hours: 24,
            min_retrain_hours: 24,
        }
    }
}

impl DriftConfig {
    pub(crate) fn validate(&self) -> Result<(), Invalid> {
        let bad = |key: &str, msg: &str| Err(Invalid::new(format!("drift.{key}"), msg));
        if self.check_seconds == 0 {
            return bad("check_seconds", "must be at least 1");
        }
        if self.sustain_checks == 0 {
            return bad("sustain_checks", "must be at least 1");
        }
        if !(self.mase_margin.is_finite() && self.mase_margin >= 0.0) {
            return bad("mase_margin", "must be a number ≥ 0");
        }
        if !(0.0..=1.0).contains(&self.coverage_low)
            || !(0.0..=1.0).contains(&self.coverage_high)
            || self.coverage_low >= self.coverage_high
        {
            // Name the bound that is out of [0, 1]; when both are inside, the order is wrong.
            let key = if (0.0..=1.0).contains(&self.coverage_low) {
                "coverage_high"
            } else {
                "coverage_low"
            };
            return bad(
                key,
                "coverage_low and coverage_high must be in [0, 1], low below high",
            );
        }
        if !(self.psi_threshold.is_finite() && self.psi_threshold > 0.0) {
            return bad("psi_threshold", "must be a number above 0");
        }
        if self.psi_hours == 0 {
            return bad("psi_hours", "must be at least 1");
        }
        Ok(())
    }
}
