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
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
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

    /// Adds another accumulator's sums.
    pub fn merge(&mut self, other: &Accumulator) {
        self.pinball_sum += other.pinball_sum;
        self.pinball_n += other.pinball_n;
        self.abs_err_sum += other.abs_err_sum;
        self.naive_abs_err_sum += other.naive_abs_err_sum;
        self.smape_sum += other.smape_sum;
        self.smape_n += other.smape_n;
        self.covered += other.covered;
        self.points += other.points;
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

/// A span of forecast steps reported on its own: the first hour is where alerts are
/// decided, the last hours where the seasonal pattern matters most.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HorizonBucket {
    /// `0-1h`, `1-4h`, `4-8h`, `8h+`.
    pub label: String,
    /// Forecast steps `from..to` (0 = the first step ahead).
    pub from: usize,
    pub to: usize,
}

/// The buckets 0–1 h, 1–4 h, 4–8 h and beyond 8 h that a horizon of `horizon` steps of
/// `step_seconds` reaches (empty ones left out; a step counts in the bucket where it ends).
pub fn horizon_buckets(step_seconds: u32, horizon: usize) -> Vec<HorizonBucket> {
    let step = step_seconds.max(1) as usize;
    let steps_in = |hours: usize| (hours * 3600).div_ceil(step);
    let edges = [(0, 1, "0-1h"), (1, 4, "1-4h"), (4, 8, "4-8h")];
    let mut out: Vec<HorizonBucket> = edges
        .iter()
        .map(|&(a, b, label)| HorizonBucket {
            label: label.into(),
            from: steps_in(a).min(horizon),
            to: steps_in(b).min(horizon),
        })
        .collect();
    out.push(HorizonBucket {
        label: "8h+".into(),
        from: steps_in(8).min(horizon),
        to: horizon,
    });
    out.retain(|b| b.to > b.from);
    out
}

/// Adds metric `m` of one forecast window to `per_bucket[b][m]` for each horizon bucket:
/// `truth`, `bands[q]` and `naive` cover the whole horizon.
#[allow(clippy::too_many_arguments)]
pub fn add_by_bucket(
    per_bucket: &mut [Vec<Accumulator>],
    buckets: &[HorizonBucket],
    m: usize,
    quantiles: &[f64],
    median: usize,
    truth: &[f32],
    bands: &[&[f32]],
    naive: &[f32],
) {
    for (bucket, accs) in buckets.iter().zip(per_bucket.iter_mut()) {
        let span = bucket.from..bucket.to.min(truth.len());
        let part: Vec<&[f32]> = bands.iter().map(|b| &b[span.clone()]).collect();
        accs[m].add(quantiles, median, &truth[span.clone()], &part, &naive[span]);
    }
}

/// The figures of one horizon bucket, means over metrics like the overall ones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BucketScores {
    pub bucket: HorizonBucket,
    pub pinball: f64,
    pub mase: f64,
    pub smape: f64,
    pub coverage: f64,
}

/// Per-metric, per-horizon and overall figures of one model.
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
    /// The same figures per horizon bucket (see [`horizon_buckets`]).
    #[serde(default)]
    pub horizons: Vec<BucketScores>,
}

/// Mean of a figure over metrics, skipping those without a finite value.
fn mean_over<'a>(scores: impl Iterator<Item = &'a Scores>, f: fn(&Scores) -> f64) -> f64 {
    let values: Vec<f64> = scores.map(f).filter(|v| v.is_finite()).collect();
    if values.is_empty() {
        f64::NAN
    } else {
        values.iter().sum::<f64>() / values.len() as f64
    }
}

/// The baseline with the lowest MASE among `reports` (ids `baseline:…`): what every
/// report and the promotion policy compare a model against.
pub fn best_baseline(reports: &[Report]) -> Option<&Report> {
    reports
        .iter()
        .filter(|r| r.model.starts_with("baseline:") && r.mase.is_finite())
        .min_by(|a, b| a.mase.total_cmp(&b.mase))
}

/// The baseline with the lowest MASE in each horizon bucket, by bucket label.
pub fn best_baseline_per_bucket(reports: &[Report]) -> BTreeMap<String, (String, f64)> {
    let mut best: BTreeMap<String, (String, f64)> = BTreeMap::new();
    for r in reports.iter().filter(|r| r.model.starts_with("baseline:")) {
        for b in r.horizons.iter().filter(|b| b.mase.is_finite()) {
            let entry = best
                .entry(b.bucket.label.clone())
                .or_insert_with(|| (r.model.clone(), b.mase));
            if b.mase < entry.1 {
                *entry = (r.model.clone(), b.mase);
            }
        }
    }
    best
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
        let mean = |f: fn(&Scores) -> f64| mean_over(metrics.values(), f);
        Report {
            model: model.to_string(),
            pinball: mean(|s| s.pinball),
            mase: mean(|s| s.mase),
            smape: mean(|s| s.smape),
            coverage: mean(|s| s.coverage),
            windows,
            metrics,
            horizons: Vec::new(),
        }
    }

    /// Adds the per-bucket figures: `per_bucket[b]` holds each metric's accumulator for
    /// `buckets[b]`.
    pub fn with_horizons(
        mut self,
        buckets: &[HorizonBucket],
        per_bucket: &[Vec<Accumulator>],
    ) -> Report {
        self.horizons = buckets
            .iter()
            .zip(per_bucket)
            .map(|(bucket, accs)| {
                let scores: Vec<Scores> = accs
                    .iter()
                    .filter(|a| a.points > 0)
                    .map(|a| a.scores())
                    .collect();
                BucketScores {
                    bucket: bucket.clone(),
                    pinball: mean_over(scores.iter(), |s| s.pinball),
                    mase: mean_over(scores.iter(), |s| s.mase),
                    smape: mean_over(scores.iter(), |s| s.smape),
                    coverage: mean_over(scores.iter(), |s| s.coverage),
                }
            })
            .collect();
        self
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

    #[test]
    fn buckets_follow_the_step_and_the_horizon() {
        let b = horizon_buckets(300, 96);
        let spans: Vec<(&str, usize, usize)> =
            b.iter().map(|b| (b.label.as_str(), b.from, b.to)).collect();
        assert_eq!(
            spans,
            vec![("0-1h", 0, 12), ("1-4h", 12, 48), ("4-8h", 48, 96)]
        );
        let b = horizon_buckets(3600, 12);
        let spans: Vec<(&str, usize, usize)> =
            b.iter().map(|b| (b.label.as_str(), b.from, b.to)).collect();
        assert_eq!(
            spans,
            vec![
                ("0-1h", 0, 1),
                ("1-4h", 1, 4),
                ("4-8h", 4, 8),
                ("8h+", 8, 12)
            ]
        );
        assert_eq!(horizon_buckets(300, 6).len(), 1, "half an hour: one bucket");
    }

    #[test]
    fn the_best_baseline_has_the_lowest_mase() {
        let report = |model: &str, mase: f64| Report {
            model: model.into(),
            pinball: 0.0,
            mase,
            smape: 0.0,
            coverage: 0.8,
            windows: 1,
            metrics: BTreeMap::new(),
            horizons: Vec::new(),
        };
        let reports = vec![
            report("tft_1", 0.5),
            report("baseline:seasonal_naive", 1.0),
            report("baseline:seasonal_median", 0.76),
            report("baseline:ets", f64::NAN),
            report("baseline:last_value", 3.1),
        ];
        assert_eq!(
            best_baseline(&reports).unwrap().model,
            "baseline:seasonal_median"
        );
        assert!(
            best_baseline(&reports[..1]).is_none(),
            "a model is no baseline"
        );
    }
}
