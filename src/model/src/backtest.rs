//! Rolling-origin backtests: any [`Forecaster`] against history a user brings.
//!
//! History is first put on the model's step grid per server (mean / max / last per catalog
//! entry, gaps NaN). Origins start at the test start (a timestamp, else the last third of
//! each series) and advance by `stride` steps while a whole horizon of truth remains. At
//! each origin every model forecasts from the history before it (at most
//! `window.history_steps` steps) and is scored on the horizon after it; seasonal naive on
//! the same origins is the MASE scale. Origins with less than one season plus one step of
//! history are skipped for every model alike.

use crate::accuracy::{add_by_bucket, horizon_buckets, Accumulator, Report};
use crate::baseline::seasonal_series;
use crate::Forecaster;
use nordiq_core::config::{Aggregate, Config};
use nordiq_core::ingest::Sample;
use nordiq_core::window::WindowSnapshot;
use std::collections::{BTreeMap, HashMap};

/// One server's history on the step grid.
#[derive(Debug, Clone, PartialEq)]
pub struct Grid {
    pub server: String,
    pub profile: String,
    pub start_step: i64,
    pub len: usize,
    /// `values[m * len + t]`, NaN where a step had no value.
    pub values: Vec<f32>,
}

impl Grid {
    pub fn series(&self, m: usize) -> &[f32] {
        &self.values[m * self.len..(m + 1) * self.len]
    }
}

#[derive(Clone, Copy)]
struct Cell {
    sum: f64,
    count: u32,
    max: f32,
    last: f32,
    last_ts: i64,
}

/// Aggregates samples to the step grid, per server (sorted by server name).
pub fn to_grids(
    samples: impl IntoIterator<Item = Sample>,
    step_ms: i64,
    aggregates: &[Aggregate],
) -> Vec<Grid> {
    let width = aggregates.len();
    let empty = Cell {
        sum: 0.0,
        count: 0,
        max: f32::NEG_INFINITY,
        last: f32::NAN,
        last_ts: i64::MIN,
    };
    let mut servers: HashMap<String, (String, BTreeMap<i64, Vec<Cell>>)> = HashMap::new();
    for s in samples {
        let (_, steps) = servers
            .entry(s.server.clone())
            .or_insert_with(|| (s.profile.clone(), BTreeMap::new()));
        let cells = steps
            .entry(s.timestamp_ms.div_euclid(step_ms))
            .or_insert_with(|| vec![empty; width]);
        for (cell, v) in cells.iter_mut().zip(&s.values) {
            if v.is_nan() {
                continue;
            }
            cell.sum += *v as f64;
            cell.count += 1;
            cell.max = cell.max.max(*v);
            if s.timestamp_ms >= cell.last_ts {
                cell.last = *v;
                cell.last_ts = s.timestamp_ms;
            }
        }
    }
    let mut grids: Vec<Grid> = servers
        .into_iter()
        .filter_map(|(server, (profile, steps))| {
            let first = *steps.keys().next()?;
            let last = *steps.keys().next_back()?;
            let len = (last - first + 1) as usize;
            let mut values = vec![f32::NAN; width * len];
            for (step, cells) in steps {
                let t = (step - first) as usize;
                for (m, (cell, agg)) in cells.iter().zip(aggregates).enumerate() {
                    if cell.count == 0 {
                        continue;
                    }
                    values[m * len + t] = match agg {
                        Aggregate::Mean => (cell.sum / cell.count as f64) as f32,
                        Aggregate::Max => cell.max,
                        Aggregate::Last => cell.last,
                    };
                }
            }
            Some(Grid {
                server,
                profile,
                start_step: first,
                len,
                values,
            })
        })
        .collect();
    grids.sort_by(|a, b| a.server.cmp(&b.server));
    grids
}

#[derive(Debug, Clone)]
pub struct Options {
    /// First origin; None: the start of the last third of each series.
    pub test_start_ms: Option<i64>,
    /// Steps between origins; 0 = the horizon (windows that do not overlap).
    pub stride: usize,
}

struct Origin {
    grid: usize,
    t: usize,
}

/// The window as it was before grid step `t`: at most `history` closed steps.
pub(crate) fn snapshot(grid: &Grid, t: usize, history: usize) -> WindowSnapshot {
    let from = t.saturating_sub(history);
    let len = t - from;
    let width = grid.values.len() / grid.len.max(1);
    let mut values = Vec::with_capacity(width * len);
    let mut current = Vec::with_capacity(width);
    for m in 0..width {
        let series = &grid.series(m)[from..t];
        values.extend_from_slice(series);
        current.push(
            series
                .iter()
                .rev()
                .copied()
                .find(|v| !v.is_nan())
                .unwrap_or(f32::NAN),
        );
    }
    WindowSnapshot {
        server: grid.server.clone(),
        profile: grid.profile.clone(),
        last_step: grid.start_step + t as i64 - 1,
        history: values,
        len,
        current,
        current_ts: (grid.start_step + t as i64) * 1000,
    }
}

/// Seasonal naive's median for the `horizon` steps after `snapshot`, `[metric][h]` for its
/// first `width` metrics (NaN where a series is shorter than a season): the MASE scale.
pub(crate) fn naive_medians(
    snapshot: &WindowSnapshot,
    width: usize,
    season: usize,
    horizon: usize,
) -> Vec<Vec<f32>> {
    (0..width.min(snapshot.history.len() / snapshot.len.max(1)))
        .map(|m| {
            let mut bands = vec![vec![f32::NAN; horizon]; 1];
            if !seasonal_series(snapshot.series(m), season, 1, horizon, &[0.5], &mut bands) {
                bands[0].fill(f32::NAN);
            }
            bands.pop().unwrap_or_default()
        })
        .collect()
}

/// Scores every model on the same rolling origins. Reports come in the order of `models`.
pub fn backtest(
    config: &Config,
    models: &[&dyn Forecaster],
    grids: &[Grid],
    options: &Options,
) -> Vec<Report> {
    let horizon = config.model.horizon_steps;
    let season = config.season_steps();
    let history = config.history_steps();
    let step_ms = config.model.step_seconds as i64 * 1000;
    let stride = if options.stride == 0 {
        horizon
    } else {
        options.stride
    };
    let quantiles = &config.model.quantiles;
    let median = nordiq_core::forecast::median_index(quantiles);
    let mut origins = Vec::new();
    for (g, grid) in grids.iter().enumerate() {
        let first = match options.test_start_ms {
            Some(ms) => (ms.div_euclid(step_ms) - grid.start_step).max(0) as usize,
            None => grid.len - grid.len / 3,
        };
        let mut t = first.max(season + 1);
        while t + horizon <= grid.len {
            origins.push(Origin { grid: g, t });
            t += stride;
        }
    }
    let snapshots: Vec<WindowSnapshot> = origins
        .iter()
        .map(|o| snapshot(&grids[o.grid], o.t, history))
        .collect();
    let refs: Vec<&WindowSnapshot> = snapshots.iter().collect();
    let width = config.metrics.len();
    // Seasonal naive medians: the MASE scale for every model.
    let naive: Vec<Vec<Vec<f32>>> = snapshots
        .iter()
        .map(|s| naive_medians(s, width, season, horizon))
        .collect();
    let buckets = horizon_buckets(config.model.step_seconds, horizon);
    models
        .iter()
        .map(|model| {
            let forecasts = model.forecast_batch(&refs);
            let mut acc: Vec<(String, Accumulator)> = config
                .metrics
                .iter()
                .map(|m| (m.name.clone(), Accumulator::default()))
                .collect();
            let mut per_bucket = vec![vec![Accumulator::default(); width]; buckets.len()];
            for ((origin, forecast), naive) in origins.iter().zip(&forecasts).zip(&naive) {
                let grid = &grids[origin.grid];
                for (m, (_, a)) in acc.iter_mut().enumerate().take(forecast.n_metrics) {
                    let truth = &grid.series(m)[origin.t..origin.t + horizon];
                    let bands: Vec<&[f32]> = (0..quantiles.len())
                        .map(|q| forecast.series(m, q))
                        .collect();
                    a.add(quantiles, median, truth, &bands, &naive[m]);
                    add_by_bucket(
                        &mut per_bucket,
                        &buckets,
                        m,
                        quantiles,
                        median,
                        truth,
                        &bands,
                        &naive[m],
                    );
                }
            }
            Report::from_accumulators(model.id(), origins.len() as u64, &acc)
                .with_horizons(&buckets, &per_bucket)
        })
        .collect()
}

/// Two metrics, hourly steps, a 12-hour horizon: small enough for unit tests.
#[cfg(test)]
pub(crate) fn hourly_test_config() -> Config {
    let mut c = Config::default();
    c.metrics.truncate(2);
    c.model.step_seconds = 3600;
    c.model.encoder_steps = 48;
    c.model.horizon_steps = 12;
    c.forecast.summary_horizons_minutes = vec![60];
    c.risk.lookahead_minutes = 60;
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::baseline::Baseline;
    use nordiq_core::config::BaselineKind;

    fn config() -> Config {
        hourly_test_config()
    }

    #[test]
    fn grids_aggregate_per_step_with_gaps() {
        let aggs = [Aggregate::Mean, Aggregate::Max];
        let s = |ts: i64, a: f32, b: f32| Sample {
            timestamp_ms: ts,
            server: "x".into(),
            profile: "generic".into(),
            values: vec![a, b],
        };
        let grids = to_grids(
            vec![s(0, 1.0, 1.0), s(500, 3.0, 5.0), s(2500, 7.0, f32::NAN)],
            1000,
            &aggs,
        );
        assert_eq!(grids.len(), 1);
        let g = &grids[0];
        assert_eq!((g.start_step, g.len), (0, 3));
        assert_eq!(g.series(0)[0], 2.0);
        assert_eq!(g.series(1)[0], 5.0);
        assert!(g.series(0)[1].is_nan());
        assert_eq!(g.series(0)[2], 7.0);
        assert!(g.series(1)[2].is_nan());
    }

    #[test]
    fn seasonal_naive_scores_one_and_a_perfect_season_is_covered() {
        let c = config();
        // Three servers, 10 days hourly: a daily wave plus a per-server level, plus noise.
        let mut samples = Vec::new();
        let mut x = 1u64;
        for server in 0..3 {
            for t in 0..240i64 {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let noise = ((x >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 4.0;
                let wave = 50.0 + 20.0 * ((t % 24) as f32 / 24.0 * std::f32::consts::TAU).sin();
                samples.push(Sample {
                    timestamp_ms: t * 3_600_000,
                    server: format!("s{server}"),
                    profile: "generic".into(),
                    values: vec![wave + server as f32 + noise, 30.0 + noise],
                });
            }
        }
        let grids = to_grids(samples, 3_600_000, &[Aggregate::Mean, Aggregate::Mean]);
        let mut c2 = c.clone();
        c2.forecast.baseline = BaselineKind::SeasonalNaive;
        let naive = Baseline::from_config(&c2);
        c2.forecast.baseline = BaselineKind::Ets;
        let holt = Baseline::from_config(&c2);
        let reports = backtest(
            &c,
            &[&naive, &holt],
            &grids,
            &Options {
                test_start_ms: None,
                stride: 0,
            },
        );
        assert_eq!(reports[0].model, "baseline:seasonal_naive");
        assert!((reports[0].mase - 1.0).abs() < 1e-9, "{:?}", reports[0]);
        assert!(reports[0].windows >= 3 * 6, "{}", reports[0].windows);
        // On a strongly daily series the damped trend loses to seasonal naive on the wave
        // metric, and wins on the flat noisy one (it averages the noise out).
        assert!(
            reports[1].metrics["cpu_user_pct"].mase > 1.0,
            "{:?}",
            reports[1]
        );
        assert!(
            reports[1].metrics["cpu_sys_pct"].mase < 1.0,
            "{:?}",
            reports[1]
        );
        assert!((0.5..=1.0).contains(&reports[0].coverage));
        // Hourly steps, 12 ahead: four buckets, naive exactly 1 in each.
        let labels: Vec<&str> = reports[0]
            .horizons
            .iter()
            .map(|b| b.bucket.label.as_str())
            .collect();
        assert_eq!(labels, ["0-1h", "1-4h", "4-8h", "8h+"]);
        assert!(reports[0]
            .horizons
            .iter()
            .all(|b| (b.mase - 1.0).abs() < 1e-9));
        assert!(reports[1]
            .horizons
            .iter()
            .any(|b| (b.mase - 1.0).abs() > 1e-3));
    }
}
