//! Step-by-step replay of history through the daemon's own decision code: at every step,
//! the window as it was (only the past), one forecast, `assess` (risk, level, outlook) and
//! the anomaly state, exactly as the forecast loop runs them. `nordiqctl evaluate-alerts`
//! scores the resulting decisions against labelled incidents (see [`crate::alert_quality`]).

use crate::backtest::{snapshot, Grid};
use crate::Forecaster;
use nordiq_core::anomaly::{min_widths, AnomalyState};
use nordiq_core::assess;
use nordiq_core::config::{AnomalyConfig, Config};
use nordiq_core::risk::Level;
use nordiq_core::window::WindowSnapshot;

/// Decisions per step for one server. Index `i` is the decision made once grid step
/// `first + i` had closed, from the steps up to and including it.
#[derive(Debug, Clone)]
pub struct Trace {
    pub server: String,
    /// Grid index of the newest step seen by decision 0.
    pub first: usize,
    /// Decisions before this index only warm the anomaly state up (before `from_ms`).
    pub scored_from: usize,
    pub risk: Vec<f32>,
    pub level: Vec<Level>,
    /// `[variant][i]`: the server's anomaly score under each anomaly configuration.
    pub anomaly: Vec<Vec<f32>>,
    /// `[horizon][i]`: probability of a critical crossing within each outlook horizon.
    pub outlook: Vec<Vec<f32>>,
}

impl Trace {
    pub fn len(&self) -> usize {
        self.risk.len()
    }

    pub fn is_empty(&self) -> bool {
        self.risk.is_empty()
    }
}

/// Which steps to decide at.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// First decision at this time (the step holding it is the first one scored); None:
    /// as early as one season plus one step of history allows.
    pub from_ms: Option<i64>,
    /// Per-server first decisions, overriding `from_ms` (datasets whose held-out part
    /// starts at a different time per server).
    pub server_from_ms: std::collections::HashMap<String, i64>,
    /// At most this many scored decisions per server (None: to the end of the data).
    pub max_steps: Option<usize>,
    /// Steps the anomaly state runs before `from_ms`, so the first scored steps have a
    /// smoothed score (the daemon's state is warm too).
    pub warmup_steps: usize,
    /// Steps forecast together (memory: snapshots of this many steps of every server).
    pub chunk_steps: usize,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        ReplayOptions {
            from_ms: None,
            server_from_ms: Default::default(),
            max_steps: None,
            warmup_steps: 12,
            chunk_steps: 16,
        }
    }
}

/// The grid index of `grid`'s first scored decision under `options`.
pub(crate) fn first_scored(
    grid: &Grid,
    options: &ReplayOptions,
    step_ms: i64,
    season: usize,
) -> usize {
    match options
        .server_from_ms
        .get(&grid.server)
        .copied()
        .or(options.from_ms)
    {
        Some(ms) => ((ms.div_euclid(step_ms) - grid.start_step).max(0) as usize).max(season),
        None => season,
    }
}

/// Replays every grid. `variants` are anomaly configurations run side by side on the same
/// forecasts (the first is usually `config.anomaly`). `progress(done, total)` is called
/// after each chunk.
pub fn replay(
    config: &Config,
    model: &dyn Forecaster,
    grids: &[Grid],
    variants: &[AnomalyConfig],
    options: &ReplayOptions,
    progress: &mut dyn FnMut(usize, usize),
) -> Vec<Trace> {
    let step_ms = config.model.step_seconds as i64 * 1000;
    let history = config.history_steps();
    let season = config.season_steps();
    let widths = min_widths(config);
    let n_horizons = config.anomaly.outlook_minutes.len();
    // Decision at grid index t (newest closed step) forecasts from history [.., t].
    let scored: Vec<usize> = grids
        .iter()
        .map(|g| first_scored(g, options, step_ms, season))
        .collect();
    let starts: Vec<usize> = scored
        .iter()
        .map(|s| s.saturating_sub(options.warmup_steps).max(season))
        .collect();
    let mut traces: Vec<Trace> = grids
        .iter()
        .zip(starts.iter().zip(&scored))
        .map(|(g, (&first, &scored))| Trace {
            server: g.server.clone(),
            first,
            scored_from: scored - first,
            risk: Vec::new(),
            level: Vec::new(),
            anomaly: vec![Vec::new(); variants.len()],
            outlook: vec![Vec::new(); n_horizons],
        })
        .collect();
    let mut states: Vec<Vec<AnomalyState>> = grids
        .iter()
        .map(|_| vec![AnomalyState::default(); variants.len()])
        .collect();
    // One past the last decision of each grid.
    let ends: Vec<usize> = grids
        .iter()
        .zip(&scored)
        .map(|(g, s)| match options.max_steps {
            Some(n) => (s + n).min(g.len),
            None => g.len,
        })
        .collect();
    let total: usize = ends
        .iter()
        .zip(&starts)
        .map(|(e, s)| e.saturating_sub(*s))
        .sum();
    let longest = ends.iter().copied().max().unwrap_or(0);
    let first = starts.iter().copied().min().unwrap_or(0);
    let chunk = options.chunk_steps.max(1);
    let mut done = 0;
    let mut t0 = first;
    while t0 < longest {
        let t1 = (t0 + chunk).min(longest);
        // (grid, t) in step order within each grid, so anomaly states advance in time.
        let mut jobs: Vec<(usize, usize)> = Vec::new();
        for g in 0..grids.len() {
            for t in t0.max(starts[g])..t1.min(ends[g]) {
                jobs.push((g, t));
            }
        }
        let snapshots: Vec<WindowSnapshot> = jobs
            .iter()
            .map(|&(g, t)| snapshot(&grids[g], t + 1, history))
            .collect();
        let refs: Vec<&WindowSnapshot> = snapshots.iter().collect();
        let forecasts = model.forecast_batch(&refs);
        for ((&(g, _), snap), forecast) in jobs.iter().zip(&snapshots).zip(forecasts) {
            let trace = &mut traces[g];
            for (v, variant) in variants.iter().enumerate() {
                let reading = states[g][v].update(variant, &widths, snap, &forecast);
                trace.anomaly[v].push(reading.score as f32);
            }
            let assessed = assess::assess(config, snap, forecast);
            trace.risk.push(assessed.risk as f32);
            trace.level.push(assessed.level);
            for (h, p) in assessed.outlook.probability.iter().enumerate() {
                trace.outlook[h].push(*p as f32);
            }
        }
        done += jobs.len();
        progress(done, total);
        t0 = t1;
    }
    traces
}

/// The model's anomaly scores confirmed by a baseline replayed over the same steps, as the
/// daemon does with `anomaly.confirm_with_baseline` (`nordiq_core::anomaly::confirm` on
/// each server's score): min(model score, `scale` · baseline score), `scale` being the
/// model's threshold over `anomaly.threshold`. Both replays must cover the same servers
/// and steps with the same anomaly variants.
pub fn confirm_traces(model: &mut [Trace], baseline: &[Trace], scale: f64) {
    assert_eq!(
        model.len(),
        baseline.len(),
        "both replays cover the same servers"
    );
    for (mine, theirs) in model.iter_mut().zip(baseline) {
        assert_eq!(
            (&mine.server, mine.first, mine.len(), mine.anomaly.len()),
            (
                &theirs.server,
                theirs.first,
                theirs.len(),
                theirs.anomaly.len()
            ),
            "both replays cover the same steps"
        );
        for (own, seen) in mine.anomaly.iter_mut().zip(&theirs.anomaly) {
            for (x, y) in own.iter_mut().zip(seen) {
                *x = x.min(scale as f32 * y);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::baseline::Baseline;
    use nordiq_core::config::BaselineKind;

    fn config() -> Config {
        let mut c = crate::backtest::hourly_test_config();
        c.forecast.baseline = BaselineKind::SeasonalNaive;
        c.anomaly.outlook_minutes = vec![60, 600];
        c.anomaly.smoothing_steps = 1;
        c.anomaly.metrics_needed = 1;
        c
    }

    /// A daily wave on cpu_user_pct; from step 200 on, server "b" runs hot (99 %).
    fn grids() -> Vec<Grid> {
        let len = 240;
        ["a", "b"]
            .iter()
            .map(|name| {
                let mut values = vec![0.0f32; 2 * len];
                for t in 0..len {
                    let wave = 40.0 + 10.0 * ((t % 24) as f32 / 24.0 * std::f32::consts::TAU).sin();
                    values[t] = if *name == "b" && t >= 200 { 99.0 } else { wave };
                    values[len + t] = 5.0;
                }
                Grid {
                    server: name.to_string(),
                    profile: "generic".into(),
                    start_step: 1000,
                    len,
                    values,
                }
            })
            .collect()
    }

    #[test]
    fn decisions_use_only_the_past_and_follow_the_daemon_code() {
        let c = config();
        let model = Baseline::from_config(&c);
        let grids = grids();
        let mut calls = 0;
        let traces = replay(
            &c,
            &model,
            &grids,
            std::slice::from_ref(&c.anomaly),
            &ReplayOptions {
                from_ms: Some((1000 + 180) * 3_600_000),
                server_from_ms: [("b".to_string(), (1000 + 170) * 3_600_000)].into(),
                max_steps: None,
                warmup_steps: 4,
                chunk_steps: 7,
            },
            &mut |done, total| {
                calls += 1;
                assert!(done <= total);
            },
        );
        assert!(calls >= 3);
        assert_eq!(traces.len(), 2);
        let (a, b) = (&traces[0], &traces[1]);
        assert_eq!((a.first, a.len(), a.scored_from), (176, 64, 4));
        assert_eq!((b.first, b.len(), b.scored_from), (166, 74, 4));
        let short = replay(
            &c,
            &model,
            &grids,
            std::slice::from_ref(&c.anomaly),
            &ReplayOptions {
                from_ms: Some((1000 + 180) * 3_600_000),
                max_steps: Some(10),
                warmup_steps: 4,
                ..ReplayOptions::default()
            },
            &mut |_, _| {},
        );
        assert_eq!((short[0].len(), short[0].scored_from), (14, 4));
        assert_eq!(
            short[0].risk,
            a.risk[..14],
            "the same decisions, fewer of them"
        );
        assert_eq!(b.outlook.len(), 2);
        // Seasonal naive repeats yesterday: "a" is never anomalous and never at risk.
        assert!(a.anomaly[0].iter().all(|s| *s == 0.0), "{:?}", a.anomaly[0]);
        assert!(a.level.iter().all(|l| *l == Level::Healthy));
        // "b" jumps at grid step 200: the decision after it (index 200 − 176) sees it, the
        // one before does not.
        let i = 200 - b.first;
        assert_eq!(b.anomaly[0][i - 1], 0.0);
        assert!(b.anomaly[0][i] > 1.0, "{}", b.anomaly[0][i]);
        assert_eq!(b.level[i - 1], Level::Healthy);
        assert!(b.level[i] >= Level::Warning, "99 % now: {:?}", b.level[i]);
        // A day later seasonal naive forecasts 99 % too: a crossing is likely, and never
        // less likely within the longer horizon.
        let last = b.len() - 1;
        assert!(b.outlook[0][last] > 0.5, "{}", b.outlook[0][last]);
        assert!(b.outlook[1][last] >= b.outlook[0][last]);
        assert!(a.outlook[1].iter().all(|p| *p < 0.01));
    }

    #[test]
    fn confirmed_scores_are_the_lower_of_the_model_and_the_scaled_baseline() {
        let config = config();
        let grids = grids();
        let replay_with = |kind: BaselineKind| {
            replay(
                &config,
                &Baseline::of_kind(&config, kind),
                &grids,
                std::slice::from_ref(&config.anomaly),
                &ReplayOptions::default(),
                &mut |_, _| {},
            )
        };
        let own = replay_with(BaselineKind::SeasonalNaive);
        let theirs = replay_with(BaselineKind::LastValue);
        let mut confirmed = own.clone();
        confirm_traces(&mut confirmed, &theirs, 2.0);
        let mut lowered = 0;
        for ((c, o), t) in confirmed.iter().zip(&own).zip(&theirs) {
            for ((c, o), t) in c.anomaly[0].iter().zip(&o.anomaly[0]).zip(&t.anomaly[0]) {
                assert_eq!(*c, o.min(2.0 * t));
                lowered += usize::from(c < o);
            }
        }
        assert!(lowered > 0, "the baseline never disagreed");
    }
}
