//! From replayed decisions ([`crate::replay`]) and labels to an alert-quality report: the
//! NordIQ detectors (predicted breach by risk level, anomaly score, either), any other
//! detector given as on/off steps, and the outlook's reliability. Pure.

use crate::alert_quality::{EventScore, Reliability};
use crate::backtest::Grid;
use crate::replay::Trace;
use nordiq_core::config::{Aggregate, Config, MetricDef};
use nordiq_core::risk::Level;
use serde::Serialize;
use std::collections::BTreeMap;

/// The config with a label column read as one more metric, so history files carrying labels
/// go through the usual import and step grid (a step is labelled when any sample in it is).
pub fn with_label_metric(config: &Config, column: &str) -> Result<Config, String> {
    if config.metric_index(column).is_some() {
        return Err(format!(
            "`{column}` is a catalog metric, not a label column"
        ));
    }
    let mut c = config.clone();
    c.metrics.push(MetricDef {
        name: column.to_string(),
        unit: String::new(),
        min: 0.0,
        max: 1.0,
        aggregate: Aggregate::Max,
        risk: None,
    });
    Ok(c)
}

/// Takes the label metric added by [`with_label_metric`] (the last one) out of each grid:
/// per grid, whether each step is labelled.
pub fn split_labels(grids: &mut [Grid], catalog_width: usize) -> Vec<Vec<bool>> {
    grids
        .iter_mut()
        .map(|g| {
            let labels = g.series(catalog_width).iter().map(|v| *v > 0.5).collect();
            g.values.truncate(catalog_width * g.len);
            labels
        })
        .collect()
}

/// How alerts are turned into events and matched to labels.
#[derive(Debug, Clone, Copy)]
pub struct EventRules {
    /// Steps before a labelled segment in which an alert still counts as catching it.
    pub lead_steps: usize,
    /// Off-steps an alert may have and still be the same event.
    pub merge_gap_steps: usize,
    pub step_seconds: u32,
}

/// One detector's figures, overall and per server.
#[derive(Debug, Clone, Serialize)]
pub struct DetectorReport {
    pub detector: String,
    pub overall: Figures,
    pub servers: BTreeMap<String, Figures>,
}

/// The figures of [`EventScore`], computed.
#[derive(Debug, Clone, Serialize)]
pub struct Figures {
    /// Steps scored.
    pub steps: usize,
    pub segments: usize,
    pub caught: usize,
    pub recall: f64,
    pub alert_events: usize,
    pub precision: f64,
    pub false_events: usize,
    pub false_per_server_day: f64,
    /// Median lead time in minutes (positive: before the incident began).
    pub median_lead_minutes: Option<f64>,
    /// Caught incidents whose first alert came before they began.
    pub caught_early: usize,
    pub nab_standard: f64,
}

impl Figures {
    pub fn of(score: &EventScore, step_seconds: u32) -> Figures {
        Figures {
            steps: score.steps,
            segments: score.segments,
            caught: score.caught,
            recall: score.recall(),
            alert_events: score.events,
            precision: score.precision(),
            false_events: score.false_events,
            false_per_server_day: score.false_per_day(step_seconds),
            median_lead_minutes: score
                .median_lead()
                .map(|steps| steps * step_seconds as f64 / 60.0),
            caught_early: score.caught_early(),
            nab_standard: score.nab_score(),
        }
    }
}

/// Labels and alert steps of one server over the scored steps.
pub struct Series<'a> {
    pub server: &'a str,
    pub labels: &'a [bool],
    pub alerting: Vec<bool>,
}

/// Scores a detector given as on/off per scored step, per server.
pub fn score_detector(name: &str, series: &[Series], rules: EventRules) -> DetectorReport {
    let mut overall = EventScore::default();
    let mut servers = BTreeMap::new();
    for s in series {
        let score = EventScore::of(
            s.labels,
            &s.alerting,
            rules.lead_steps,
            rules.merge_gap_steps,
        );
        overall.add(&score);
        servers.insert(
            s.server.to_string(),
            Figures::of(&score, rules.step_seconds),
        );
    }
    DetectorReport {
        detector: name.to_string(),
        overall: Figures::of(&overall, rules.step_seconds),
        servers,
    }
}

/// The labels of `grid_labels` over a trace's scored decisions.
pub fn scored_labels<'a>(trace: &Trace, grid_labels: &'a [bool]) -> &'a [bool] {
    let from = (trace.first + trace.scored_from).min(grid_labels.len());
    let to = (trace.first + trace.len()).min(grid_labels.len());
    &grid_labels[from..to]
}

/// NordIQ's own alerts over a trace's scored decisions: `risk` (level at or above
/// `min_level`), `anomaly` (score at or above `threshold`, variant `variant`), or both.
pub fn nordiq_alerting(
    trace: &Trace,
    min_level: Level,
    variant: usize,
    threshold: f64,
) -> [Vec<bool>; 3] {
    let from = trace.scored_from;
    let risk: Vec<bool> = trace.level[from..]
        .iter()
        .map(|l| *l >= min_level)
        .collect();
    let anomaly: Vec<bool> = trace.anomaly[variant][from..]
        .iter()
        .map(|s| *s as f64 >= threshold)
        .collect();
    let either = risk.iter().zip(&anomaly).map(|(a, b)| *a || *b).collect();
    [risk, anomaly, either]
}

/// Names of the three NordIQ detectors, in [`nordiq_alerting`]'s order.
pub const NORDIQ_DETECTORS: [&str; 3] = ["predicted breach", "anomaly", "breach or anomaly"];

/// Reliability of the outlook: for each horizon, the predicted probability of a critical
/// crossing within it against whether any metric with thresholds crossed in the steps
/// after the decision. Decisions whose horizon runs past the data are left out.
pub fn outlook_reliability(config: &Config, traces: &[Trace], grids: &[Grid]) -> Vec<Reliability> {
    let steps = nordiq_core::outlook::horizon_steps(config);
    steps
        .iter()
        .enumerate()
        .map(|(h, &n)| {
            let mut pairs = Vec::new();
            for (trace, grid) in traces.iter().zip(grids) {
                let crossed = crossings(config, grid);
                for i in trace.scored_from..trace.len() {
                    let t = trace.first + i;
                    if t + n >= grid.len {
                        break;
                    }
                    let hit = crossed[t + 1..=t + n].iter().any(|c| *c);
                    pairs.push((trace.outlook[h][i] as f64, hit));
                }
            }
            Reliability::of(pairs.into_iter(), 10)
        })
        .collect()
}

/// Static thresholds on the raw values, for comparison: on at a scored step when some
/// metric's value alone is at `min_level` or above (its warning threshold for `warning`,
/// its critical one for `critical`).
pub fn static_alerting(config: &Config, trace: &Trace, grid: &Grid, min_level: Level) -> Vec<bool> {
    let from = trace.first + trace.scored_from;
    let to = (trace.first + trace.len()).min(grid.len);
    (from..to)
        .map(|t| raw_at_level(config, grid, t, min_level))
        .collect()
}

/// Per grid step: some metric with thresholds is past its critical one.
pub fn crossings(config: &Config, grid: &Grid) -> Vec<bool> {
    (0..grid.len)
        .map(|t| raw_at_level(config, grid, t, Level::Critical))
        .collect()
}

/// Some metric's raw value at grid step `t` is, by itself, at `level` or above.
fn raw_at_level(config: &Config, grid: &Grid, t: usize, level: Level) -> bool {
    config.metrics.iter().enumerate().any(|(m, def)| {
        let v = grid.series(m)[t] as f64;
        Level::from_score(nordiq_core::risk::badness(def, v)) >= level
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trace() -> Trace {
        Trace {
            server: "s".into(),
            first: 10,
            scored_from: 2,
            risk: vec![0.0; 8],
            level: [0, 0, 0, 2, 2, 0, 0, 3]
                .iter()
                .map(|l| Level::ALL[*l])
                .collect(),
            anomaly: vec![vec![0.0, 5.0, 0.0, 0.0, 0.0, 1.5, 0.2, 0.0]],
            outlook: vec![vec![0.0, 0.0, 0.12, 0.92, 0.93, 0.25, 0.14, 0.95]],
        }
    }

    #[test]
    fn nordiq_detectors_skip_the_warm_up_and_combine() {
        let t = trace();
        let [risk, anomaly, either] = nordiq_alerting(&t, Level::Warning, 0, 1.0);
        let b = |v: &[bool]| {
            v.iter()
                .map(|x| if *x { '1' } else { '0' })
                .collect::<String>()
        };
        assert_eq!(b(&risk), "011001");
        assert_eq!(b(&anomaly), "000100", "the warm-up's 5.0 is not scored");
        assert_eq!(b(&either), "011101");
        let labels: Vec<bool> = (0..20).map(|i| i == 14).collect();
        assert_eq!(scored_labels(&t, &labels), &labels[12..18]);
        let series = [Series {
            server: "s",
            labels: scored_labels(&t, &labels),
            alerting: either,
        }];
        let rules = EventRules {
            lead_steps: 1,
            merge_gap_steps: 0,
            step_seconds: 300,
        };
        let r = score_detector("either", &series, rules);
        // Events at scored steps 1 (grid 13: the lead before 14) and 5 (grid 17: false).
        assert_eq!((r.overall.caught, r.overall.alert_events), (1, 2));
        assert_eq!(r.overall.median_lead_minutes, Some(5.0));
        assert_eq!(r.servers["s"].false_events, 1);
    }

    #[test]
    fn labels_ride_along_as_one_more_metric() {
        let c = Config::default();
        assert!(with_label_metric(&c, "cpu_user_pct").is_err());
        let labelled = with_label_metric(&c, "anomaly").unwrap();
        let width = c.metrics.len();
        assert_eq!(labelled.metrics.len(), width + 1);
        let mut values = vec![1.0f32; (width + 1) * 3];
        values[width * 3..].copy_from_slice(&[0.0, 1.0, f32::NAN]);
        let mut grids = [Grid {
            server: "s".into(),
            profile: "generic".into(),
            start_step: 0,
            len: 3,
            values,
        }];
        assert_eq!(
            split_labels(&mut grids, width),
            vec![vec![false, true, false]]
        );
        assert_eq!(grids[0].values.len(), width * 3);
    }

    #[test]
    fn reliability_looks_at_the_steps_after_each_decision() {
        let mut c = Config::default();
        c.metrics.truncate(1); // cpu_user_pct, critical at 95
        c.model.horizon_steps = 4;
        c.anomaly.outlook_minutes = vec![10];
        let mut values = vec![50.0f32; 20];
        values[14] = 99.0;
        let grid = Grid {
            server: "s".into(),
            profile: "generic".into(),
            start_step: 0,
            len: 20,
            values,
        };
        assert!(crossings(&c, &grid)[14]);
        let on = static_alerting(&c, &trace(), &grid, Level::Critical);
        assert_eq!(
            on,
            vec![false, false, true, false, false, false],
            "grid 12..=17"
        );
        let r = outlook_reliability(&c, &[trace()], &[grid]);
        // Decisions at grid 12..=17, 2 steps ahead each: 12 and 13 see step 14 coming.
        assert_eq!(r[0].count, 6);
        assert_eq!(r[0].bins[9].count, 3, "0.92, 0.93, 0.95");
        assert!(
            (r[0].bins[9].observed - 1.0 / 3.0).abs() < 1e-12,
            "only grid 13's came true"
        );
        assert_eq!(r[0].bins[1].count, 2);
        assert_eq!(
            r[0].bins[1].observed, 0.5,
            "0.12 at 12 (hit) and 0.14 at 16 (none)"
        );
    }
}
