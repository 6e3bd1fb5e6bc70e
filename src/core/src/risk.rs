//! Risk scoring: from current and predicted values to a 0–100 score per metric and server,
//! and one set of levels for everything (healthy < 20 ≤ watch < 40 ≤ warning < 70 ≤ critical).
//!
//! A metric's *badness* `b(v)` is piecewise linear in the value through the catalog
//! thresholds: `ok` → 0, `warn` → 40, `crit` → 70, the worst end of the range → 100
//! (mirrored for metrics where low is bad). So a metric that sits exactly at its warning
//! threshold is, by itself, at the `warning` level, and at its critical threshold `critical`.
//!
//! `metric risk = weight · (w · b(current) + (1 − w) · b(predicted peak))`, with `w` =
//! `risk.current_weight` (0.7, as in the original) and the predicted peak being the worst
//! p50 over `risk.lookahead_minutes`. The server's risk is the highest metric risk: one
//! metric in trouble is trouble, and unlike the original's sum of banded points the score
//! can neither exceed 100 nor rise because a catalog has more metrics.

use crate::config::{Direction, MetricDef};
use serde::{Deserialize, Serialize};

/// The one set of alert levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Healthy,
    Watch,
    Warning,
    Critical,
}

impl Level {
    pub const ALL: [Level; 4] = [
        Level::Healthy,
        Level::Watch,
        Level::Warning,
        Level::Critical,
    ];

    /// The level a 0–100 score falls in.
    pub fn from_score(score: f64) -> Level {
        if score >= 70.0 {
            Level::Critical
        } else if score >= 40.0 {
            Level::Warning
        } else if score >= 20.0 {
            Level::Watch
        } else {
            Level::Healthy
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Healthy => "healthy",
            Level::Watch => "watch",
            Level::Warning => "warning",
            Level::Critical => "critical",
        }
    }
}

/// Badness of one value of one metric, 0–100 (0 for metrics without thresholds or NaN).
pub fn badness(def: &MetricDef, value: f64) -> f64 {
    let Some(r) = &def.risk else { return 0.0 };
    if value.is_nan() {
        return 0.0;
    }
    // Flip low-is-bad metrics so that bigger is always worse.
    let (v, ok, warn, crit, worst) = match r.direction {
        Direction::High => (value, r.ok, r.warn, r.crit, def.max),
        Direction::Low => (-value, -r.ok, -r.warn, -r.crit, -def.min),
    };
    let points = [
        (ok, 0.0),
        (warn, 40.0),
        (crit, 70.0),
        (worst.max(crit), 100.0),
    ];
    if v <= ok {
        return 0.0;
    }
    for pair in points.windows(2) {
        let ((x0, y0), (x1, y1)) = (pair[0], pair[1]);
        if v <= x1 {
            return if x1 > x0 {
                y0 + (y1 - y0) * (v - x0) / (x1 - x0)
            } else {
                y1
            };
        }
    }
    100.0
}

/// The worst of a series of predicted values for this metric (max, or min where low is bad).
pub fn worst_of(def: &MetricDef, values: impl Iterator<Item = f64>) -> f64 {
    let low_is_bad = matches!(def.risk.as_ref().map(|r| r.direction), Some(Direction::Low));
    values.filter(|v| !v.is_nan()).fold(f64::NAN, |acc, v| {
        if acc.is_nan() || (low_is_bad && v < acc) || (!low_is_bad && v > acc) {
            v
        } else {
            acc
        }
    })
}

/// One metric's risk from its current value and predicted peak.
pub fn metric_risk(def: &MetricDef, current: f64, predicted_peak: f64, current_weight: f64) -> f64 {
    let Some(r) = &def.risk else { return 0.0 };
    let now = badness(def, current);
    let ahead = if predicted_peak.is_nan() {
        now
    } else {
        badness(def, predicted_peak)
    };
    (r.weight * (current_weight * now + (1.0 - current_weight) * ahead)).clamp(0.0, 100.0)
}

/// A server's risk: its worst metric's.
pub fn server_risk(metric_risks: impl Iterator<Item = f64>) -> f64 {
    metric_risks.fold(0.0, f64::max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::default_catalog;

    fn def(name: &str) -> MetricDef {
        default_catalog()
            .into_iter()
            .find(|m| m.name == name)
            .unwrap()
    }

    #[test]
    fn levels_have_the_documented_edges() {
        assert_eq!(Level::from_score(0.0), Level::Healthy);
        assert_eq!(Level::from_score(19.99), Level::Healthy);
        assert_eq!(Level::from_score(20.0), Level::Watch);
        assert_eq!(Level::from_score(40.0), Level::Warning);
        assert_eq!(Level::from_score(69.9), Level::Warning);
        assert_eq!(Level::from_score(70.0), Level::Critical);
        assert!(Level::Critical > Level::Warning && Level::Watch > Level::Healthy);
    }

    #[test]
    fn badness_passes_through_the_thresholds() {
        let cpu = def("cpu_user_pct"); // ok 60, warn 85, crit 95, max 100
        assert_eq!(badness(&cpu, 10.0), 0.0);
        assert_eq!(badness(&cpu, 60.0), 0.0);
        assert!((badness(&cpu, 85.0) - 40.0).abs() < 1e-9);
        assert!((badness(&cpu, 95.0) - 70.0).abs() < 1e-9);
        assert!((badness(&cpu, 100.0) - 100.0).abs() < 1e-9);
        assert!((badness(&cpu, 72.5) - 20.0).abs() < 1e-9);
        assert_eq!(badness(&cpu, f64::NAN), 0.0);
        assert_eq!(badness(&def("uptime_days"), 1e4), 0.0);
    }

    #[test]
    fn low_is_bad_metrics_are_mirrored() {
        let idle = def("cpu_idle_pct"); // ok 30, warn 10, crit 3, min 0
        assert_eq!(badness(&idle, 80.0), 0.0);
        assert!((badness(&idle, 10.0) - 40.0).abs() < 1e-9);
        assert!((badness(&idle, 3.0) - 70.0).abs() < 1e-9);
        assert!((badness(&idle, 0.0) - 100.0).abs() < 1e-9);
        assert_eq!(worst_of(&idle, [50.0, 5.0, 20.0].into_iter()), 5.0);
        assert_eq!(
            worst_of(&def("cpu_user_pct"), [50.0, 5.0, 20.0].into_iter()),
            50.0
        );
    }

    #[test]
    fn metric_risk_blends_current_and_predicted() {
        let cpu = def("cpu_user_pct");
        // Healthy now, critical ahead: 0.7·0 + 0.3·70 = 21 → watch: an early warning.
        let r = metric_risk(&cpu, 50.0, 95.0, 0.7);
        assert!((r - 21.0).abs() < 1e-9);
        assert_eq!(Level::from_score(r), Level::Watch);
        // Critical now and ahead.
        assert!((metric_risk(&cpu, 95.0, 95.0, 0.7) - 70.0).abs() < 1e-9);
        // No prediction: current alone.
        assert!((metric_risk(&cpu, 85.0, f64::NAN, 0.7) - 40.0).abs() < 1e-9);
        assert_eq!(server_risk([3.0, 55.0, 12.0].into_iter()), 55.0);
        assert_eq!(server_risk(std::iter::empty()), 0.0);
    }
}
