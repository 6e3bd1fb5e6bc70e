//! Accuracy measures for quantile forecasts, accumulated over many forecast windows:
//! pinball loss, MASE relative to seasonal naive, sMAPE and central-interval coverage.
//!
//! MASE here is the model's mean absolute error of the median divided by seasonal naive's
//! on exactly the same windows and steps, per metric. Seasonal naive therefore scores 1.0
//! by construction and a model below 1.0 beats it. The overall figure is the mean of the
//! per-metric ratios, so a metric with large values does not drown the others.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Running sums for one metric.
#[derive(Debug, Clone, Default)]
pub struct Accumulator {
    pinball_sum: f64,
    pinball_n: u64,
    abs_err_sum: f64,
    naive_abs_err_sum: f64,
    smape_sum: f64,
    smape_n: u64,
    covered: u64,
    points: u64,
}

/// One metric's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scores {
    /// Mean pinball loss over quantiles and points.
    pub pinball: f64,
    /// MAE of the median ÷ MAE of seasonal naive on the same points.
    pub mase: f64,
    /// Symmetric MAPE of the median, in percent (points where truth and forecast are both 0 skipped).
    pub smape: f64,
    /// Share of points inside [lowest, highest] quantile.
    pub coverage: f64,
    pub points: u64,
}

/// Pinball (quantile) loss of one prediction.
pub fn pinball(q: f64, truth: f64, predicted: f64) -> f64 {
    let diff = truth - predicted;
    if diff >= 0.0 {
        q * diff
    } else {
        (q - 1.0) * diff
    }
}

impl Accumulator {
    /// Adds one window: `truth[h]`, `bands[q][h]` (quantiles ascending, one of them the
    /// median at `median`), and seasonal naive's median for the same steps. Points where
    /// the truth, the forecast or the naive forecast is missing are skipped.
    pub fn add(
        &mut self,
        quantiles: &[f64],
        median: usize,
        truth: &[f32],
        bands: &[&[f32]],
        naive: &[f32],
    ) {
        let (lo, hi) = (0, quantiles.len() - 1);
        for (h, y) in truth.iter().enumerate() {
            let y = *y as f64;
            let p50 = bands[median][h] as f64;
            let n = naive[h] as f64;
            if y.is_nan() || p50.is_nan() || n.is_nan() {
                continue;
            }
            for (qi, q) in quantiles.iter().enumerate() {
                self.pinball_sum += pinball(*q, y, bands[qi][h] as f64);
                self.pinball_n += 1;
            }
            self.abs_err_sum += (y - p50).abs();
            self.naive_abs_err_sum += (y - n).abs();
            let denom = y.abs() + p50.abs();
            if denom > 0.0 {
                self.smape_sum += 200.0 * (y - p50).abs() / denom;
                self.smape_n += 1;
            }
            if bands[lo][h] as f64 <= y && y <= bands[hi][h] as f64 {
                self.covered += 1;
            }
            self.points += 1;
        }
    }

    pub fn scores(&self) -> Scores {
        let ratio = |a: f64, b: u64| if b == 0 { f64::NAN } else { a / b as f64 };
        Scores {
            pinball: ratio(self.pinball_sum, self.pinball_n),
            mase: if self.naive_abs_err_sum > 0.0 {
                self.abs_err_sum / self.naive_abs_err_sum
            } else {
                f64::NAN
            },
            smape: ratio(self.smape_sum, self.smape_n),
            coverage: ratio(self.covered as f64, self.points),
            points: self.points,
        }
    }
}

/// Per-metric and overall figures of one model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub model: String,
    /// Mean over metrics with points.
    pub pinball: f64,
    pub mase: f64,
    pub smape: f64,
    pub coverage: f64,
    pub windows: u64,
    pub metrics: BTreeMap<String, Scores>,
}

impl Report {
    pub fn from_accumulators(
        model: &str,
        windows: u64,
        per_metric: &[(String, Accumulator)],
    ) -> Report {
        let metrics: BTreeMap<String, Scores> = per_metric
            .iter()
            .filter(|(_, a)| a.points > 0)
            .map(|(name, a)| (name.clone(), a.scores()))
            .collect();
        let mean = |f: fn(&Scores) -> f64| {
            let values: Vec<f64> = metrics.values().map(f).filter(|v| v.is_finite()).collect();
            if values.is_empty() {
                f64::NAN
            } else {
                values.iter().sum::<f64>() / values.len() as f64
            }
        };
        Report {
            model: model.to_string(),
            pinball: mean(|s| s.pinball),
            mase: mean(|s| s.mase),
            smape: mean(|s| s.smape),
            coverage: mean(|s| s.coverage),
            windows,
            metrics,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinball_is_asymmetric() {
        assert!((pinball(0.9, 10.0, 8.0) - 1.8).abs() < 1e-12);
        assert!((pinball(0.9, 8.0, 10.0) - 0.2).abs() < 1e-12);
        assert!((pinball(0.5, 8.0, 10.0) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn scores_from_known_windows() {
        let q = [0.1, 0.5, 0.9];
        let mut a = Accumulator::default();
        let truth = [1.0f32, 2.0, 3.0, f32::NAN];
        let p10 = [0.0f32, 1.5, 3.5, 0.0];
        let p50 = [1.0f32, 2.5, 4.0, 0.0];
        let p90 = [2.0f32, 3.0, 5.0, 0.0];
        let naive = [2.0f32, 2.0, 1.0, 0.0];
        a.add(&q, 1, &truth, &[&p10, &p50, &p90], &naive);
        let s = a.scores();
        assert_eq!(s.points, 3, "the NaN truth is skipped");
        // |err| of p50: 0, 0.5, 1 → 1.5; naive: 1, 0, 2 → 3.
        assert!((s.mase - 0.5).abs() < 1e-9);
        // Coverage: 1 in [0,2] yes, 2 in [1.5,3] yes, 3 in [3.5,5] no.
        assert!((s.coverage - 2.0 / 3.0).abs() < 1e-9);
        let smape = (0.0 + 200.0 * 0.5 / 4.5 + 200.0 * 1.0 / 7.0) / 3.0;
        assert!((s.smape - smape).abs() < 1e-9);
        // Naive against itself is exactly 1.
        let mut n = Accumulator::default();
        n.add(&q, 1, &truth, &[&naive, &naive, &naive], &naive);
        assert_eq!(n.scores().mase, 1.0);
        let r = Report::from_accumulators(
            "m",
            1,
            &[
                ("a".into(), a),
                ("b".into(), n),
                ("c".into(), Accumulator::default()),
            ],
        );
        assert_eq!(r.metrics.len(), 2, "metrics without points are left out");
        assert!((r.mase - 0.75).abs() < 1e-9);
    }
}
