//! `[anomaly]`: the anomaly score from forecast residuals (see `crate::anomaly`), and the
//! incident outlook of `GET /predictions/current` (see `crate::outlook`).

use super::invalid::Invalid;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnomalyConfig {
    /// Which forecast an observed step is judged against: the one made this many steps
    /// before it (1 = the forecast for the next step, the sharpest band).
    pub horizon_steps: usize,
    /// The score is the mean exceedance over this many closed steps.
    pub smoothing_steps: usize,
    /// A server is "anomalous now" (an alert of kind `anomaly`) while its score is at or
    /// above this. Tuned on ASD (the first half of its test split): docs/alert-quality.md.
    /// Servers a trained model serves are held to the model's own threshold, matched by
    /// its trainer to the baseline's alert rate at this one (`crate::anomaly_threshold`).
    pub threshold: f64,
    /// The band is never taken narrower than this fraction of the metric's catalog range
    /// (`max − min`), so a flat series does not turn noise into anomalies.
    pub min_band_fraction: f64,
    /// A server's score is its k-th highest metric score (1: the worst metric alone); a
    /// catalog with fewer metrics needs all of them.
    pub metrics_needed: usize,
    /// The incident outlook's horizons (minutes): probability that a metric crosses its
    /// critical threshold within each. A horizon beyond the model's is cut to it.
    pub outlook_minutes: Vec<u32>,
    /// Within a horizon, steps this close together are taken as one (fully dependent),
    /// blocks as independent (see `nordiq_core::outlook`); 0: the whole horizon is one.
    pub outlook_block_minutes: u32,
    /// Servers a trained model serves are "anomalous now" only when the best baseline
    /// beside it sees the same steps outside its own band too (`crate::anomaly::confirm`):
    /// on ASD's held-out half this took the TFT from 1.13 false alert events per
    /// server-day to 0.32 and its NAB score from 60.8 to 62.1 (docs/alert-quality.md).
    pub confirm_with_baseline: bool,
}

impl Default for AnomalyConfig {
    fn default() -> Self {
        AnomalyConfig {
            horizon_steps: 1,
            smoothing_steps: 1,
            threshold: 1.0,
            min_band_fraction: 0.01,
            metrics_needed: 3,
            outlook_minutes: vec![30, 480],
            outlook_block_minutes: 15,
            confirm_with_baseline: true,
        }
    }
}

impl AnomalyConfig {
    /// Checks the values serde cannot: the offending key and why.
    pub(crate) fn validate(&self, horizon_steps: usize) -> Result<(), Invalid> {
        let bad = |key: &str, msg: String| Err(Invalid::new(format!("anomaly.{key}"), msg));
        if self.horizon_steps == 0 || self.horizon_steps > horizon_steps {
            return bad(
                "horizon_steps",
                format!("must be between 1 and model.horizon_steps ({horizon_steps})"),
            );
        }
        if !(1..=288).contains(&self.smoothing_steps) {
            return bad("smoothing_steps", "must be between 1 and 288".into());
        }
        if !(self.threshold.is_finite() && self.threshold > 0.0) {
            return bad("threshold", "must be a number above 0".into());
        }
        if !(0.0..1.0).contains(&self.min_band_fraction) {
            return bad("min_band_fraction", "must be in [0, 1)".into());
        }
        if self.metrics_needed == 0 {
            return bad("metrics_needed", "must be at least 1".into());
        }
        if self.outlook_minutes.is_empty() || self.outlook_minutes.contains(&0) {
            return bad(
                "outlook_minutes",
                "give at least one horizon, each ≥ 1 minute".into(),
            );
        }
        Ok(())
    }
}
