//! A model's own anomaly threshold, matched to the baseline's rate of alert events.
//!
//! `anomaly.threshold` is in band widths, and it was tuned on a baseline's bands. A model
//! whose p10–p90 bands are narrower at the same coverage (the TFT's are) sees the same
//! excursion as more band widths out, so at the same threshold it alerts more often (on
//! ASD: 1.8 false alert events per server-day against the baseline's 1.0). Its trainer
//! therefore replays held-out time through both and sets the model's threshold as low as
//! it can go, coming down from the model's highest score, before the model starts more
//! alert events than the baseline does at `anomaly.threshold`
//! (`nordiq_model::anomaly_calibration`).
//!
//! The result is kept in the model's `metrics.json` with the settings it was made under;
//! it applies only while `[anomaly]` still has those settings (`threshold_for`). This
//! module holds what the daemon needs of it: the record, when it applies, and why.

use crate::config::AnomalyConfig;
use serde::{Deserialize, Serialize};

/// Fewer baseline alert events than this on held-out time say too little about the rate.
pub const MIN_BASELINE_EVENTS: usize = 10;

/// What the trainer found, as kept in `metrics.json` → `anomaly_calibration`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnomalyCalibration {
    /// The model's threshold (in its own band widths).
    pub threshold: f64,
    /// The baseline whose rate it matches.
    pub baseline: String,
    /// `[anomaly]` when it was made: it applies while these are unchanged.
    pub configured_threshold: f64,
    pub horizon_steps: usize,
    pub smoothing_steps: usize,
    pub metrics_needed: usize,
    /// Held-out decisions replayed (servers × steps).
    pub decisions: usize,
    /// Alerts off for at most this many steps are one event.
    pub merge_gap_steps: usize,
    /// Alert events the baseline started at `configured_threshold`.
    pub baseline_events: usize,
    /// Alert events the model started at `threshold`, and at `configured_threshold`.
    pub model_events: usize,
    pub model_events_at_configured: usize,
}

impl AnomalyCalibration {
    /// The threshold for a model-served server under `anomaly`, when the calibration was
    /// made under the same settings.
    pub fn threshold_for(&self, anomaly: &AnomalyConfig) -> Option<f64> {
        let same = self.horizon_steps == anomaly.horizon_steps
            && self.smoothing_steps == anomaly.smoothing_steps
            && self.metrics_needed == anomaly.metrics_needed
            && self.configured_threshold == anomaly.threshold;
        same.then_some(self.threshold)
    }
}

/// The threshold for servers a model serves, and why, in words (`model-info`).
pub fn explain(calibration: Option<&AnomalyCalibration>, anomaly: &AnomalyConfig) -> (f64, String) {
    match calibration {
        None => (
            anomaly.threshold,
            "anomaly.threshold: the model carries no calibrated threshold".into(),
        ),
        Some(c) => match c.threshold_for(anomaly) {
            Some(t) => (
                t,
                format!(
                    "calibrated by the trainer: over {} held-out decisions {} started {} alert events at anomaly.threshold = {}, the model {} at {t:.3} ({} at {})",
                    c.decisions,
                    c.baseline,
                    c.baseline_events,
                    c.configured_threshold,
                    c.model_events,
                    c.model_events_at_configured,
                    c.configured_threshold
                ),
            ),
            None => (
                anomaly.threshold,
                format!(
                    "anomaly.threshold: the model's calibration was made under other [anomaly] settings (threshold {}, horizon_steps {}, smoothing_steps {}, metrics_needed {}); retrain to calibrate for these",
                    c.configured_threshold, c.horizon_steps, c.smoothing_steps, c.metrics_needed
                ),
            ),
        },
    }
}

/// Why no calibration was made (the configured threshold then applies).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CalibrationError {
    #[error("the model and the baseline were replayed over different decisions ({model} and {baseline})")]
    Mismatch { model: usize, baseline: usize },
    #[error("the baseline started {events} alert events in {decisions} held-out decisions, fewer than {MIN_BASELINE_EVENTS}: too few to match a rate; anomaly.threshold applies unchanged (hold out more time with --holdout-days)")]
    TooFewEvents { events: usize, decisions: usize },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn calibration() -> AnomalyCalibration {
        AnomalyCalibration {
            threshold: 1.4,
            baseline: "baseline:auto".into(),
            configured_threshold: 1.0,
            horizon_steps: 1,
            smoothing_steps: 1,
            metrics_needed: 3,
            decisions: 1000,
            merge_gap_steps: 12,
            baseline_events: 20,
            model_events: 19,
            model_events_at_configured: 31,
        }
    }

    #[test]
    fn a_calibration_applies_only_under_its_own_settings() {
        let c = calibration();
        let shipped = AnomalyConfig::default();
        assert_eq!(c.threshold_for(&shipped), Some(1.4));
        let (t, why) = explain(Some(&c), &shipped);
        assert_eq!(t, 1.4);
        assert!(why.starts_with("calibrated by the trainer"), "{why}");
        for changed in [
            AnomalyConfig {
                threshold: 1.5,
                ..shipped.clone()
            },
            AnomalyConfig {
                horizon_steps: 3,
                ..shipped.clone()
            },
            AnomalyConfig {
                smoothing_steps: 2,
                ..shipped.clone()
            },
            AnomalyConfig {
                metrics_needed: 2,
                ..shipped.clone()
            },
        ] {
            assert_eq!(c.threshold_for(&changed), None, "{changed:?}");
            let (t, why) = explain(Some(&c), &changed);
            assert_eq!(t, changed.threshold);
            assert!(why.contains("retrain"), "{why}");
        }
        assert_eq!(explain(None, &shipped).0, shipped.threshold);
    }

    #[test]
    fn the_record_reads_back_as_written() {
        let c = calibration();
        let text = serde_json::to_string(&c).expect("serialises");
        assert_eq!(
            serde_json::from_str::<AnomalyCalibration>(&text).ok(),
            Some(c)
        );
    }
}
