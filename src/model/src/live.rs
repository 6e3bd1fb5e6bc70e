//! Live accuracy: how the forecasts the daemon actually served did against what then
//! happened, beside the best baseline's forecasts for the same windows.
//!
//! Every `live.origin_every_steps` steps, up to `live.max_servers` forecast servers (a
//! different slice of the fleet each time) keep the forecast that was served, the best
//! baseline's forecast for the same window, and seasonal naive's median (the MASE scale).
//! Once the whole horizon has closed, each is scored with the same measures as the
//! backtests (`crate::accuracy`), per horizon bucket, into the bin of the hour it was
//! scored in. Bins cover the last week; the report gives the last day and the last week.
//! Bins are kept per served model: when another model starts serving they start anew.
//! Pure: the daemon feeds it snapshots and forecasts, and saves it as JSON.

use crate::accuracy::{add_by_bucket, horizon_buckets, Accumulator, HorizonBucket, Scores};
use crate::backtest::naive_medians;
pub use nordiq_core::api::{LiveBucket, LiveReport, LiveScores, LiveSpan};
use nordiq_core::config::Config;
use nordiq_core::forecast::ServerForecast;
use nordiq_core::window::WindowSnapshot;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// Hours of bins kept (a week).
pub const HOURS_KEPT: usize = 168;

/// One forecast waiting for its horizon to close.
#[derive(Debug, Clone)]
struct Pending {
    server: String,
    /// The last closed step when it was made; the forecast covers the steps after it.
    origin: i64,
    served: ServerForecast,
    baseline: ServerForecast,
    /// `[metric][h]`, seasonal naive's median.
    naive: Vec<Vec<f32>>,
}

/// Sums of one hour: `[bucket][metric]` for the served model and the baseline.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HourBin {
    pub hour: i64,
    pub served: Vec<Vec<Accumulator>>,
    pub baseline: Vec<Vec<Accumulator>>,
    pub windows: u64,
}

/// What is saved across restarts.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LiveState {
    pub served_id: String,
    pub baseline_id: String,
    pub bins: VecDeque<HourBin>,
}

/// The tracker.
#[derive(Debug, Default)]
pub struct LiveAccuracy {
    state: LiveState,
    pending: Vec<Pending>,
    last_origin: Option<i64>,
}

fn finite(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}

fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, n) = values
        .filter(|v| v.is_finite())
        .fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / n as f64)
}

/// The figures of `[bucket][metric]` sums.
fn scores_of(sums: &[Vec<Accumulator>], buckets: &[HorizonBucket], windows: u64) -> LiveScores {
    let width = sums.first().map(|b| b.len()).unwrap_or(0);
    let per_metric: Vec<Scores> = (0..width)
        .map(|m| {
            let mut all = Accumulator::default();
            for bucket in sums {
                all.merge(&bucket[m]);
            }
            all.scores()
        })
        .collect();
    LiveScores {
        windows,
        mase: mean(per_metric.iter().map(|s| s.mase)),
        pinball: mean(per_metric.iter().map(|s| s.pinball)),
        coverage: mean(per_metric.iter().map(|s| s.coverage)),
        horizons: buckets
            .iter()
            .zip(sums)
            .map(|(b, accs)| {
                let scores: Vec<Scores> = accs.iter().map(|a| a.scores()).collect();
                LiveBucket {
                    label: b.label.clone(),
                    mase: mean(scores.iter().map(|s| s.mase)),
                    coverage: mean(scores.iter().map(|s| s.coverage)),
                }
            })
            .collect(),
    }
    .rounded()
}

trait Rounded {
    fn rounded(self) -> Self;
}

impl Rounded for LiveScores {
    fn rounded(mut self) -> Self {
        let r = |v: Option<f64>| v.and_then(finite).map(|x| (x * 1e4).round() / 1e4);
        self.mase = r(self.mase);
        self.pinball = self
            .pinball
            .and_then(finite)
            .map(|x| (x * 1e6).round() / 1e6);
        self.coverage = r(self.coverage);
        for b in &mut self.horizons {
            b.mase = r(b.mase);
            b.coverage = r(b.coverage);
        }
        self
    }
}

impl LiveAccuracy {
    pub fn from_state(state: LiveState) -> LiveAccuracy {
        LiveAccuracy {
            state,
            ..LiveAccuracy::default()
        }
    }

    pub fn state(&self) -> &LiveState {
        &self.state
    }

    /// Whether a refresh whose newest closed step is `last_step` should keep forecasts.
    pub fn due(&self, config: &Config, last_step: i64) -> bool {
        let every = config.live.origin_every_steps.max(1) as i64;
        config.live.max_servers > 0
            && last_step.rem_euclid(every) == 0
            && self.last_origin != Some(last_step)
    }

    /// Which of `n` servers (sorted by name) to keep at origin `last_step`: a different
    /// slice each time, so the whole fleet is covered over a few origins.
    pub fn sample(config: &Config, last_step: i64, n: usize) -> Vec<usize> {
        let max = config.live.max_servers;
        if n <= max {
            return (0..n).collect();
        }
        let slices = n.div_ceil(max);
        let every = config.live.origin_every_steps.max(1) as i64;
        let slice = (last_step / every).rem_euclid(slices as i64) as usize;
        (slice..n).step_by(slices).take(max).collect()
    }

    /// Keeps one served forecast and the baseline's for the same window. `served_id`
    /// changing starts the bins anew.
    pub fn keep(
        &mut self,
        config: &Config,
        served_id: &str,
        baseline_id: &str,
        snapshot: &WindowSnapshot,
        served: ServerForecast,
        baseline: ServerForecast,
    ) {
        if self.state.served_id != served_id || self.state.baseline_id != baseline_id {
            self.state = LiveState {
                served_id: served_id.to_string(),
                baseline_id: baseline_id.to_string(),
                bins: VecDeque::new(),
            };
            self.pending.clear();
        }
        let horizon = served.horizon;
        let season = config.season_steps();
        let naive = naive_medians(snapshot, served.n_metrics, season, horizon);
        self.last_origin = Some(snapshot.last_step);
        self.pending.push(Pending {
            server: snapshot.server.clone(),
            origin: snapshot.last_step,
            served,
            baseline,
            naive,
        });
    }

    /// Scores every kept forecast whose horizon has closed in `snapshots`, into the bin of
    /// `now_hour`; forgets forecasts of servers no longer seen or far too old.
    pub fn score(&mut self, config: &Config, snapshots: &[WindowSnapshot], now_hour: i64) {
        if self.pending.is_empty() {
            return;
        }
        let quantiles = &config.model.quantiles;
        let median = nordiq_core::forecast::median_index(quantiles);
        let horizon = config.model.horizon_steps;
        let buckets = horizon_buckets(config.model.step_seconds, horizon);
        let width = config.metrics.len();
        let newest = snapshots.iter().map(|s| s.last_step).max();
        let by_server: std::collections::HashMap<&str, &WindowSnapshot> =
            snapshots.iter().map(|s| (s.server.as_str(), s)).collect();
        let pending = std::mem::take(&mut self.pending);
        for p in pending {
            let Some(snap) = by_server.get(p.server.as_str()) else {
                // Not forecast this refresh (gone quiet): keep it while it could still close.
                if newest.is_some_and(|n| n <= p.origin + 2 * horizon as i64) {
                    self.pending.push(p);
                }
                continue;
            };
            if snap.last_step < p.origin + p.served.horizon as i64 {
                self.pending.push(p);
                continue;
            }
            let first = snap.last_step - snap.len as i64 + 1;
            let from = p.origin + 1 - first;
            if from < 0 {
                continue; // the window no longer holds the start
            }
            let bin = self.bin(now_hour, buckets.len(), width);
            bin.windows += 1;
            for (sums, forecast) in [
                (&mut bin.served, &p.served),
                (&mut bin.baseline, &p.baseline),
            ] {
                let metrics = width.min(forecast.n_metrics);
                for (m, naive) in p.naive.iter().enumerate().take(metrics) {
                    let truth = &snap.series(m)[from as usize..from as usize + forecast.horizon];
                    let bands: Vec<&[f32]> = (0..forecast.n_quantiles)
                        .map(|q| forecast.series(m, q))
                        .collect();
                    add_by_bucket(sums, &buckets, m, quantiles, median, truth, &bands, naive);
                }
            }
        }
    }

    fn bin(&mut self, hour: i64, buckets: usize, width: usize) -> &mut HourBin {
        let bins = &mut self.state.bins;
        if bins.back().is_none_or(|b| b.hour != hour) {
            bins.push_back(HourBin {
                hour,
                served: vec![vec![Accumulator::default(); width]; buckets],
                baseline: vec![vec![Accumulator::default(); width]; buckets],
                windows: 0,
            });
        }
        while bins
            .front()
            .is_some_and(|b| b.hour <= hour - HOURS_KEPT as i64)
        {
            bins.pop_front();
        }
        bins.back_mut().expect("just pushed")
    }

    /// The last day and week as of `now_hour`.
    pub fn report(&self, config: &Config, now_hour: i64) -> LiveReport {
        let buckets = horizon_buckets(config.model.step_seconds, config.model.horizon_steps);
        let width = config.metrics.len();
        let span = |hours: usize| {
            let mut served = vec![vec![Accumulator::default(); width]; buckets.len()];
            let mut baseline = served.clone();
            let mut windows = 0;
            for bin in self
                .state
                .bins
                .iter()
                .filter(|b| b.hour > now_hour - hours as i64)
            {
                windows += bin.windows;
                for (into, from) in [(&mut served, &bin.served), (&mut baseline, &bin.baseline)] {
                    for (a, b) in into.iter_mut().zip(from) {
                        for (x, y) in a.iter_mut().zip(b) {
                            x.merge(y);
                        }
                    }
                }
            }
            LiveSpan {
                hours,
                served: scores_of(&served, &buckets, windows),
                baseline: scores_of(&baseline, &buckets, windows),
            }
        };
        LiveReport {
            served: self.state.served_id.clone(),
            baseline: self.state.baseline_id.clone(),
            pending_windows: self.pending.len(),
            day: span(24),
            week: span(HOURS_KEPT),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        let mut c = Config::default();
        c.metrics.truncate(1);
        c.model.step_seconds = 3600;
        c.model.horizon_steps = 4;
        c.forecast.season_seconds = 4 * 3600;
        c.live.origin_every_steps = 2;
        c.live.max_servers = 2;
        c
    }

    /// A window of `len` steps ending at `last_step`, values `f(step)`.
    fn snapshot(
        server: &str,
        last_step: i64,
        len: usize,
        f: impl Fn(i64) -> f32,
    ) -> WindowSnapshot {
        let first = last_step - len as i64 + 1;
        let history: Vec<f32> = (first..=last_step).map(f).collect();
        WindowSnapshot {
            server: server.into(),
            profile: "generic".into(),
            last_step,
            current: vec![*history.last().unwrap()],
            history,
            len,
            current_ts: 0,
        }
    }

    /// A flat forecast at `v` with band ±1.
    fn flat(c: &Config, v: f32) -> ServerForecast {
        let mut f = ServerForecast::empty("test", 1, 3, c.model.horizon_steps);
        for q in 0..3 {
            f.series_mut(0, q).fill(v + q as f32 - 1.0);
        }
        f
    }

    #[test]
    fn served_and_baseline_forecasts_are_scored_once_their_horizon_closed() {
        let c = config();
        // A 4-step season: 10, 20, 30, 40, repeating.
        let wave = |s: i64| 10.0 * (s.rem_euclid(4) + 1) as f32;
        let mut live = LiveAccuracy::default();
        assert!(live.due(&c, 10) && !live.due(&c, 11));
        let origin = snapshot("a", 10, 12, wave);
        // Served: perfect (the wave); baseline: flat 25 (off by 5 or 15).
        let mut served = flat(&c, 0.0);
        for q in 0..3 {
            for (h, v) in served.series_mut(0, q).iter_mut().enumerate() {
                *v = wave(11 + h as i64) + q as f32 - 1.0;
            }
        }
        live.keep(&c, "tft_1", "baseline:ets", &origin, served, flat(&c, 25.0));
        assert!(!live.due(&c, 10), "one origin once");
        // Two steps later the horizon is still open: nothing scored.
        live.score(&c, &[snapshot("a", 12, 14, wave)], 100);
        assert_eq!(live.report(&c, 100).week.served.windows, 0);
        assert_eq!(live.report(&c, 100).pending_windows, 1);
        live.score(&c, &[snapshot("a", 14, 16, wave)], 100);
        let r = live.report(&c, 100);
        assert_eq!(r.pending_windows, 0);
        assert_eq!(r.day.served.windows, 1);
        // The served forecast is the truth: MASE 0, full coverage; seasonal naive is also
        // exact on a pure wave, so the baseline's MASE has no scale: None, not infinity.
        assert_eq!(r.day.served.coverage, Some(1.0));
        assert_eq!(r.day.baseline.coverage, Some(0.0));
        assert!(r.day.baseline.pinball.unwrap() > r.day.served.pinball.unwrap());
        assert_eq!(r.served, "tft_1");
        // A week later the bin has aged out of the day, and out of the week after that.
        assert_eq!(live.report(&c, 100 + 24).day.served.windows, 0);
        assert_eq!(live.report(&c, 100 + 24).week.served.windows, 1);
        assert_eq!(live.report(&c, 100 + 168).week.served.windows, 0);
        // State round-trips through JSON (the daemon saves it).
        let saved = serde_json::to_string(live.state()).unwrap();
        let back = LiveAccuracy::from_state(serde_json::from_str(&saved).unwrap());
        assert_eq!(back.report(&c, 100), live.report(&c, 100));
        // Another model starts serving: the bins start anew.
        let origin = snapshot("a", 16, 18, wave);
        live.keep(
            &c,
            "tft_2",
            "baseline:ets",
            &origin,
            flat(&c, 25.0),
            flat(&c, 25.0),
        );
        assert_eq!(live.report(&c, 100).week.served.windows, 0);
    }

    #[test]
    fn mase_is_against_seasonal_naive_on_the_same_steps() {
        let c = config();
        // A wave plus a step: seasonal naive is off by 8 after the jump.
        let value = |s: i64| 10.0 * (s.rem_euclid(4) + 1) as f32 + if s > 10 { 8.0 } else { 0.0 };
        let mut live = LiveAccuracy::default();
        let origin = snapshot("a", 10, 12, value);
        // Served: off by 4 everywhere; baseline: off by 8 (= naive).
        let mut served = flat(&c, 0.0);
        let mut baseline = flat(&c, 0.0);
        for q in 0..3 {
            for h in 0..4 {
                served.series_mut(0, q)[h] = value(11 + h as i64) - 4.0 + q as f32 - 1.0;
                baseline.series_mut(0, q)[h] = value(11 + h as i64) - 8.0 + q as f32 - 1.0;
            }
        }
        live.keep(&c, "m", "b", &origin, served, baseline);
        live.score(&c, &[snapshot("a", 14, 16, value)], 7);
        let r = live.report(&c, 7);
        assert_eq!(r.day.served.mase, Some(0.5));
        assert_eq!(r.day.baseline.mase, Some(1.0));
        assert_eq!(
            r.day.served.horizons.len(),
            2,
            "0-1h and 1-4h at hourly steps"
        );
    }

    #[test]
    fn the_sample_rotates_over_the_fleet() {
        let mut c = config();
        c.live.max_servers = 2;
        c.live.origin_every_steps = 12;
        let a = LiveAccuracy::sample(&c, 0, 5);
        let b = LiveAccuracy::sample(&c, 12, 5);
        let d = LiveAccuracy::sample(&c, 24, 5);
        assert_eq!(a, vec![0, 3]);
        assert_eq!(b, vec![1, 4]);
        assert_eq!(d, vec![2]);
        assert_eq!(LiveAccuracy::sample(&c, 0, 2), vec![0, 1]);
    }
}
