//! Drift: the served model no longer fits what it sees. Checked every
//! `drift.check_seconds` from three signals:
//!
//! - **behind the baseline**: over the last day, the served model's live MASE is worse than
//!   the best baseline's by more than `drift.mase_margin` (only when a trained model serves
//!   and at least `drift.min_windows` forecasts were scored);
//! - **coverage**: the served forecasts' live p10–p90 coverage left
//!   `[drift.coverage_low, drift.coverage_high]`;
//! - **input shift**: a metric's population-stability index between the model's training
//!   data and the last day of the windows is at or above `drift.psi_threshold`
//!   (`PSI = Σ (a − e) · ln(a / e)` over the training data's deciles; 0.1 is usually read as
//!   a small shift, 0.25 as a large one).
//!
//! A server fleet is **drifting** once a check has found a reason `drift.sustain_checks`
//! times in a row, and stops when a check finds none. Pure: the daemon feeds it figures and
//! acts on the decision (log, `STATUS=`, `/status`, `/metrics`, a training job when
//! `drift.retrain = true`, at most once per `drift.min_retrain_hours`).

use crate::config::DriftConfig;
use crate::live_report::LiveReport;
use serde::{Deserialize, Serialize};

/// Why a check found drift.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DriftReason {
    BehindBaseline {
        served_mase: f64,
        baseline_mase: f64,
    },
    Coverage {
        coverage: f64,
    },
    InputShift {
        metric: String,
        psi: f64,
    },
}

impl DriftReason {
    pub fn label(&self) -> &'static str {
        match self {
            DriftReason::BehindBaseline { .. } => "behind_baseline",
            DriftReason::Coverage { .. } => "coverage",
            DriftReason::InputShift { .. } => "input_shift",
        }
    }
}

impl std::fmt::Display for DriftReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DriftReason::BehindBaseline {
                served_mase,
                baseline_mase,
            } => write!(
                f,
                "live MASE {served_mase:.3} behind the baseline's {baseline_mase:.3}"
            ),
            DriftReason::Coverage { coverage } => {
                write!(f, "live coverage {:.1} %", coverage * 100.0)
            }
            DriftReason::InputShift { metric, psi } => write!(f, "{metric} shifted (PSI {psi:.2})"),
        }
    }
}

/// Population-stability index between expected and actual proportions of the same bins
/// (each floored at 1e-4 so an empty bin does not make it infinite).
pub fn psi(expected: &[f64], actual: &[f64]) -> f64 {
    expected
        .iter()
        .zip(actual)
        .map(|(e, a)| {
            let (e, a) = (e.max(1e-4), a.max(1e-4));
            (a - e) * (a / e).ln()
        })
        .sum()
}

/// Proportions of `values` (NaN skipped) in the bins cut at `edges` (ascending inner edges:
/// `edges.len() + 1` bins). None when there is no value.
pub fn proportions(edges: &[f64], values: impl Iterator<Item = f32>) -> Option<Vec<f64>> {
    let mut counts = vec![0u64; edges.len() + 1];
    let mut n = 0u64;
    for v in values.filter(|v| !v.is_nan()) {
        let bin = edges.partition_point(|e| *e <= v as f64);
        counts[bin] += 1;
        n += 1;
    }
    (n > 0).then(|| counts.iter().map(|c| *c as f64 / n as f64).collect())
}

/// A metric's training distribution: decile edges and the share of values between them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputProfile {
    pub edges: Vec<f64>,
    pub proportions: Vec<f64>,
}

impl InputProfile {
    /// The deciles of `values` (NaN skipped; repeated edges merged, so a metric that is
    /// mostly one value gets fewer bins); None without values.
    pub fn of(values: impl Iterator<Item = f32>) -> Option<InputProfile> {
        let mut sorted: Vec<f32> = values.filter(|v| !v.is_nan()).collect();
        if sorted.is_empty() {
            return None;
        }
        sorted.sort_by(f32::total_cmp);
        let mut edges: Vec<f64> = (1..10)
            .map(|d| sorted[(sorted.len() - 1) * d / 10] as f64)
            .collect();
        edges.dedup();
        let proportions = proportions(&edges, sorted.iter().copied())?;
        Some(InputProfile { edges, proportions })
    }

    /// PSI of `recent` values against this profile; None without recent values.
    pub fn psi_of(&self, recent: impl Iterator<Item = f32>) -> Option<f64> {
        proportions(&self.edges, recent).map(|a| psi(&self.proportions, &a))
    }
}

/// One check's reasons. `live`: the served model's live figures (None or a baseline serving:
/// the accuracy signals are skipped); `psis`: per metric, the index against training data.
pub fn check(
    config: &DriftConfig,
    live: Option<&LiveReport>,
    model_serves: bool,
    psis: &[(String, f64)],
) -> Vec<DriftReason> {
    let mut reasons = Vec::new();
    if let Some(day) = live.filter(|_| model_serves).map(|l| &l.day) {
        if day.served.windows >= config.min_windows {
            if let (Some(s), Some(b)) = (day.served.mase, day.baseline.mase) {
                if s > b * (1.0 + config.mase_margin) {
                    reasons.push(DriftReason::BehindBaseline {
                        served_mase: s,
                        baseline_mase: b,
                    });
                }
            }
            if let Some(c) = day.served.coverage {
                if c < config.coverage_low || c > config.coverage_high {
                    reasons.push(DriftReason::Coverage { coverage: c });
                }
            }
        }
    }
    for (metric, value) in psis {
        if *value >= config.psi_threshold {
            reasons.push(DriftReason::InputShift {
                metric: metric.clone(),
                psi: *value,
            });
        }
    }
    reasons
}

/// The state across checks, as `/status` shows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DriftState {
    pub drifting: bool,
    /// Checks in a row that found a reason.
    pub consecutive: u32,
    pub reasons: Vec<DriftReason>,
    /// When the latest check ran and when drift began (unix ms).
    pub checked_at_ms: Option<i64>,
    pub since_ms: Option<i64>,
    /// When drift last started a training job.
    pub retrained_at_ms: Option<i64>,
    /// The latest population-stability index per metric with a training profile.
    pub psi: Vec<(String, f64)>,
}

/// What the daemon should do after a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Drift began or ended with this check (log it).
    pub changed: bool,
    /// Start a training job now.
    pub retrain: bool,
}

impl DriftState {
    pub fn update(
        &mut self,
        config: &DriftConfig,
        reasons: Vec<DriftReason>,
        now_ms: i64,
    ) -> Decision {
        let was = self.drifting;
        self.checked_at_ms = Some(now_ms);
        if reasons.is_empty() {
            self.consecutive = 0;
            self.drifting = false;
            self.since_ms = None;
        } else {
            self.consecutive += 1;
            if self.consecutive >= config.sustain_checks.max(1) && !self.drifting {
                self.drifting = true;
                self.since_ms = Some(now_ms);
            }
        }
        self.reasons = reasons;
        let debounce_ms = config.min_retrain_hours as i64 * 3_600_000;
        let retrain = config.retrain
            && self.drifting
            && self
                .retrained_at_ms
                .is_none_or(|at| now_ms - at >= debounce_ms);
        if retrain {
            self.retrained_at_ms = Some(now_ms);
        }
        Decision {
            changed: was != self.drifting,
            retrain,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live_report::{LiveScores, LiveSpan};

    fn scores(windows: u64, mase: f64, coverage: f64) -> LiveScores {
        LiveScores {
            windows,
            mase: Some(mase),
            pinball: None,
            coverage: Some(coverage),
            horizons: Vec::new(),
        }
    }

    fn live(served: LiveScores, baseline: LiveScores) -> LiveReport {
        let span = LiveSpan {
            hours: 24,
            served,
            baseline,
        };
        LiveReport {
            served: "tft_1".into(),
            baseline: "baseline:seasonal_median".into(),
            pending_windows: 0,
            day: span.clone(),
            week: span,
        }
    }

    #[test]
    fn psi_by_hand() {
        let even = [0.25; 4];
        assert_eq!(psi(&even, &even), 0.0);
        let shifted = [0.1, 0.2, 0.3, 0.4];
        let expected: f64 = shifted
            .iter()
            .map(|a| (a - 0.25) * (a / 0.25f64).ln())
            .sum();
        assert!((psi(&even, &shifted) - expected).abs() < 1e-12);
        assert!(
            psi(&even, &[1.0, 0.0, 0.0, 0.0]) > 1.0,
            "all mass in one bin"
        );
        let p = proportions(&[1.0, 2.0], [0.5, 1.0, 1.5, 3.0, f32::NAN].into_iter()).unwrap();
        assert_eq!(p, vec![0.25, 0.5, 0.25]);
        assert_eq!(proportions(&[1.0], std::iter::empty()), None);
    }

    #[test]
    fn a_profile_finds_a_shift_and_not_the_same_distribution() {
        let train: Vec<f32> = (0..1000).map(|i| (i % 100) as f32).collect();
        let p = InputProfile::of(train.iter().copied()).unwrap();
        assert_eq!(p.edges.len(), 9);
        assert!(
            p.proportions.iter().all(|x| (x - 0.1).abs() < 0.02),
            "{p:?}"
        );
        let same: Vec<f32> = (0..500).map(|i| ((i * 7) % 100) as f32).collect();
        assert!(p.psi_of(same.into_iter()).unwrap() < 0.05);
        let higher: Vec<f32> = (0..500).map(|i| 50.0 + (i % 50) as f32).collect();
        assert!(p.psi_of(higher.into_iter()).unwrap() > 0.25);
        // A constant metric: one edge, and a move off it is a shift.
        let flat = InputProfile::of(std::iter::repeat_n(5.0, 100)).unwrap();
        assert_eq!(flat.edges, vec![5.0]);
        assert!(flat.psi_of(std::iter::repeat_n(4.0, 10)).unwrap() > 1.0);
        assert!(InputProfile::of(std::iter::empty()).is_none());
    }

    #[test]
    fn checks_name_each_signal() {
        let c = DriftConfig::default();
        let fine = live(scores(100, 0.8, 0.8), scores(100, 0.9, 0.8));
        assert!(check(&c, Some(&fine), true, &[]).is_empty());
        let behind = live(scores(100, 1.0, 0.8), scores(100, 0.9, 0.8));
        assert_eq!(
            check(&c, Some(&behind), true, &[])[0].label(),
            "behind_baseline"
        );
        assert!(
            check(&c, Some(&behind), false, &[]).is_empty(),
            "a baseline serving is not behind itself"
        );
        let few = live(scores(3, 1.0, 0.2), scores(3, 0.9, 0.8));
        assert!(
            check(&c, Some(&few), true, &[]).is_empty(),
            "too few windows"
        );
        let narrow = live(scores(100, 0.8, 0.3), scores(100, 0.9, 0.8));
        assert_eq!(check(&c, Some(&narrow), true, &[])[0].label(), "coverage");
        let shift = check(&c, None, false, &[("cpu".into(), 0.4), ("mem".into(), 0.1)]);
        assert_eq!(shift.len(), 1);
        assert_eq!(shift[0].to_string(), "cpu shifted (PSI 0.40)");
    }

    #[test]
    fn drift_must_last_and_retraining_is_debounced() {
        let c = DriftConfig {
            retrain: true,
            sustain_checks: 2,
            min_retrain_hours: 24,
            ..DriftConfig::default()
        };
        let reason = || vec![DriftReason::Coverage { coverage: 0.3 }];
        let hour = 3_600_000;
        let mut s = DriftState::default();
        let d = s.update(&c, reason(), 0);
        assert_eq!((d.changed, d.retrain, s.drifting), (false, false, false));
        let d = s.update(&c, reason(), hour);
        assert_eq!((d.changed, d.retrain, s.drifting), (true, true, true));
        assert_eq!(s.since_ms, Some(hour));
        // Still drifting an hour later: no second job within the day.
        let d = s.update(&c, reason(), 2 * hour);
        assert_eq!((d.changed, d.retrain), (false, false));
        let d = s.update(&c, reason(), 25 * hour);
        assert!(d.retrain, "a day after the last job");
        // A clean check ends it.
        let d = s.update(&c, Vec::new(), 26 * hour);
        assert_eq!((d.changed, s.drifting, s.consecutive), (true, false, 0));
        // retrain = false: drift is reported, never acted on.
        let off = DriftConfig {
            sustain_checks: 1,
            ..DriftConfig::default()
        };
        let mut s = DriftState::default();
        assert!(!s.update(&off, reason(), 0).retrain);
        assert!(s.drifting);
    }
}
