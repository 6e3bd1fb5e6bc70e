//! The anomaly score: how far what happened falls outside what was forecast for it.
//!
//! For each closed step `s` of a server and each metric, take the outermost quantile band
//! `[lo, hi]` that the forecast made `anomaly.horizon_steps` (h) steps earlier gave for `s`,
//! and the observed step value `y`:
//!
//! ```text
//! width       = max(hi − lo, min_band_fraction · (max − min of the metric's catalog range))
//! exceedance  = max(0, y − hi, lo − y) / width          (0 inside the band)
//! score       = mean exceedance over the last `smoothing_steps` judged steps
//! ```
//!
//! A server's score is its worst metric's. A score of 1 means "on average one band width
//! outside the band". Steps without a forecast made h steps earlier (after a restart, a
//! gap) or without a value are not judged. Pure: the daemon and `nordiqctl evaluate-alerts`
//! run the same code.

use crate::config::{AnomalyConfig, Config};
use crate::forecast::ServerForecast;
use crate::window::WindowSnapshot;
use std::collections::{HashMap, VecDeque};

/// One server's current anomaly reading.
#[derive(Debug, Clone, PartialEq)]
pub struct AnomalyReading {
    /// The worst metric's score (0 when nothing could be judged yet).
    pub score: f64,
    /// The metric with that score, when it is above 0.
    pub top_metric: Option<usize>,
    /// Per metric, NaN where nothing was judged in the smoothing span.
    pub metrics: Vec<f64>,
    /// The band the newest judged step was held to, per metric (NaN where none).
    pub expected_low: Vec<f32>,
    pub expected_high: Vec<f32>,
    /// Steps judged so far (0: the score is not yet meaningful).
    pub judged_steps: u64,
    /// The score at or above which the server is "anomalous now": `anomaly.threshold`, or
    /// the serving model's own (see `crate::anomaly_threshold`).
    pub threshold: f64,
    /// When the reading is confirmed by a baseline ([`confirm`]): the baseline's own score
    /// (band widths outside its band); the score above is then the lower of the model's
    /// and this one scaled to the model's threshold.
    pub baseline_score: Option<f64>,
}

/// `model`'s reading confirmed by `witness`, the best baseline's reading on the same
/// server and steps: a step is anomalous only where both forecasters see it outside their
/// bands. `scale` is the model's threshold over `anomaly.threshold`, which puts the
/// baseline's score in the model's units:
///
/// ```text
/// score = min(model score, scale · baseline score)     (per metric and for the server)
/// ```
///
/// A metric the baseline could not judge keeps the model's score; a baseline that has
/// judged nothing yet (it starts when the model starts serving the server) confirms
/// nothing, and the model's reading stands alone.
pub fn confirm(model: AnomalyReading, witness: &AnomalyReading, scale: f64) -> AnomalyReading {
    if witness.judged_steps == 0 {
        return model;
    }
    let lower = |own: f64, theirs: f64| {
        if theirs.is_nan() {
            own
        } else {
            own.min(scale * theirs)
        }
    };
    let score = lower(model.score, witness.score);
    let metrics: Vec<f64> = model
        .metrics
        .iter()
        .enumerate()
        .map(|(m, own)| lower(*own, witness.metrics.get(m).copied().unwrap_or(f64::NAN)))
        .collect();
    AnomalyReading {
        score,
        top_metric: model.top_metric.filter(|_| score > 0.0),
        metrics,
        baseline_score: Some(witness.score),
        ..model
    }
}

impl AnomalyReading {
    /// A reading for a server nothing has been judged for.
    pub fn none(n_metrics: usize, threshold: f64) -> Self {
        AnomalyReading {
            threshold,
            score: 0.0,
            top_metric: None,
            metrics: vec![f64::NAN; n_metrics],
            expected_low: vec![f32::NAN; n_metrics],
            expected_high: vec![f32::NAN; n_metrics],
            judged_steps: 0,
            baseline_score: None,
        }
    }
}

/// The outermost quantiles' band for one future step.
#[derive(Debug, Clone)]
struct Band {
    step: i64,
    lo: Vec<f32>,
    hi: Vec<f32>,
}

/// One server's pending bands and recent exceedances.
#[derive(Debug, Clone, Default)]
pub struct AnomalyState {
    /// Bands for steps not yet closed, by step, oldest first.
    pending: VecDeque<Band>,
    /// Exceedances of the last judged steps (`[metric]`, NaN = no value), oldest first.
    recent: VecDeque<Vec<f32>>,
    /// The last band judged against, kept for display.
    last_band: Option<Band>,
    last_observed: Option<i64>,
    judged: u64,
}

/// One metric's exceedance of a band, in band widths; NaN when it cannot be judged.
pub fn exceedance(value: f32, lo: f32, hi: f32, min_width: f32) -> f32 {
    if value.is_nan() || lo.is_nan() || hi.is_nan() {
        return f32::NAN;
    }
    let width = (hi - lo).max(min_width).max(f32::MIN_POSITIVE);
    (value - hi).max(lo - value).max(0.0) / width
}

/// The narrowest band each metric is judged against.
pub fn min_widths(config: &Config) -> Vec<f32> {
    config
        .metrics
        .iter()
        .map(|m| ((m.max - m.min).abs() * config.anomaly.min_band_fraction) as f32)
        .collect()
}

impl AnomalyState {
    /// Judges the closed steps of `snapshot` not judged before against the bands forecast
    /// for them, then keeps the band `forecast` gives for `h` steps after the snapshot's
    /// last step. Returns the reading after both.
    pub fn update(
        &mut self,
        anomaly: &AnomalyConfig,
        min_widths: &[f32],
        snapshot: &WindowSnapshot,
        forecast: &ServerForecast,
    ) -> AnomalyReading {
        self.observe(anomaly, min_widths, snapshot);
        self.expect(anomaly, snapshot.last_step, forecast);
        self.reading(anomaly, min_widths.len())
    }

    fn observe(&mut self, anomaly: &AnomalyConfig, min_widths: &[f32], snapshot: &WindowSnapshot) {
        let width = min_widths
            .len()
            .min(snapshot.history.len() / snapshot.len.max(1));
        let first_step = snapshot.last_step - snapshot.len as i64 + 1;
        while let Some(band) = self.pending.front() {
            if band.step > snapshot.last_step {
                break;
            }
            let band = self.pending.pop_front().expect("front exists");
            if self.last_observed.is_some_and(|s| band.step <= s) || band.step < first_step {
                continue;
            }
            let t = (band.step - first_step) as usize;
            let row: Vec<f32> = (0..width)
                .map(|m| exceedance(snapshot.series(m)[t], band.lo[m], band.hi[m], min_widths[m]))
                .collect();
            self.recent.push_back(row);
            while self.recent.len() > anomaly.smoothing_steps.max(1) {
                self.recent.pop_front();
            }
            self.last_observed = Some(band.step);
            self.judged += 1;
            self.last_band = Some(band);
        }
    }

    fn expect(&mut self, anomaly: &AnomalyConfig, last_step: i64, forecast: &ServerForecast) {
        let h = anomaly.horizon_steps.max(1);
        if forecast.horizon < h || forecast.n_quantiles == 0 {
            return;
        }
        let step = last_step + h as i64;
        // The first forecast made for a step is the one it is held to: later refreshes in
        // the same step saw the same closed history.
        if self.pending.back().is_some_and(|b| b.step >= step) {
            return;
        }
        let (lo_q, hi_q) = (0, forecast.n_quantiles - 1);
        let band = Band {
            step,
            lo: (0..forecast.n_metrics)
                .map(|m| forecast.series(m, lo_q)[h - 1])
                .collect(),
            hi: (0..forecast.n_metrics)
                .map(|m| forecast.series(m, hi_q)[h - 1])
                .collect(),
        };
        self.pending.push_back(band);
        while self.pending.len() > h + 1 {
            self.pending.pop_front();
        }
    }

    /// The current reading (scores smoothed over the recent judged steps; the server's is
    /// the `metrics_needed`-th highest metric score, or the lowest of all `n_metrics` when
    /// the catalog has fewer).
    pub fn reading(&self, anomaly: &AnomalyConfig, n_metrics: usize) -> AnomalyReading {
        let mut reading = AnomalyReading::none(n_metrics, anomaly.threshold);
        reading.judged_steps = self.judged;
        for (m, slot) in reading.metrics.iter_mut().enumerate() {
            let (sum, n) = self
                .recent
                .iter()
                .filter_map(|row| row.get(m).copied().filter(|v| !v.is_nan()))
                .fold((0.0f64, 0usize), |(s, n), v| (s + v as f64, n + 1));
            if n > 0 {
                *slot = sum / n as f64;
            }
        }
        if let Some(band) = &self.last_band {
            for m in 0..n_metrics.min(band.lo.len()) {
                reading.expected_low[m] = band.lo[m];
                reading.expected_high[m] = band.hi[m];
            }
        }
        let mut ranked: Vec<(usize, f64)> = reading
            .metrics
            .iter()
            .copied()
            .enumerate()
            .filter(|(_, s)| !s.is_nan() && *s > 0.0)
            .collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
        if let Some((m, _)) = ranked.first() {
            reading.top_metric = Some(*m);
        }
        // A catalog with fewer metrics than `metrics_needed` would otherwise never alert.
        let k = anomaly.metrics_needed.clamp(1, n_metrics.max(1));
        if let Some((_, s)) = ranked.get(k - 1) {
            reading.score = *s;
        }
        reading
    }
}

/// Every server's anomaly state; servers not forecast in a refresh are forgotten.
#[derive(Debug, Default)]
pub struct AnomalyBook {
    servers: HashMap<String, AnomalyState>,
}

impl AnomalyBook {
    /// Updates every forecast server and returns their readings in the same order.
    pub fn update_all<'a>(
        &mut self,
        config: &Config,
        pairs: impl Iterator<Item = (&'a WindowSnapshot, &'a ServerForecast)>,
    ) -> Vec<AnomalyReading> {
        let widths = min_widths(config);
        let mut seen = std::collections::HashSet::new();
        let readings = pairs
            .map(|(snapshot, forecast)| {
                seen.insert(snapshot.server.clone());
                self.servers
                    .entry(snapshot.server.clone())
                    .or_default()
                    .update(&config.anomaly, &widths, snapshot, forecast)
            })
            .collect();
        self.servers.retain(|s, _| seen.contains(s));
        readings
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(score: f64, metrics: &[f64], judged_steps: u64) -> AnomalyReading {
        AnomalyReading {
            score,
            top_metric: Some(0),
            metrics: metrics.to_vec(),
            judged_steps,
            ..AnomalyReading::none(metrics.len(), 1.5)
        }
    }

    #[test]
    fn a_model_anomaly_stands_only_where_the_baseline_sees_one_too() {
        // The model 3 band widths out; the baseline 1.2 of its own, scaled by 1.5: 1.8.
        let confirmed = confirm(
            reading(3.0, &[3.0, 0.5], 10),
            &reading(1.2, &[1.2, 2.0], 10),
            1.5,
        );
        assert!((confirmed.score - 1.8).abs() < 1e-12, "{confirmed:?}");
        assert!((confirmed.metrics[0] - 1.8).abs() < 1e-12);
        assert_eq!(confirmed.metrics[1], 0.5, "the model's lower score stands");
        assert_eq!(confirmed.baseline_score, Some(1.2));
        assert_eq!(confirmed.threshold, 1.5, "held to the model's threshold");
        assert_eq!(confirmed.top_metric, Some(0));
        // The baseline inside its band: nothing is anomalous, whatever the model says.
        let calm = confirm(
            reading(3.0, &[3.0, 0.5], 10),
            &reading(0.0, &[0.0, 0.0], 10),
            1.5,
        );
        assert_eq!(calm.score, 0.0);
        assert_eq!(calm.top_metric, None);
        // A metric the baseline could not judge keeps the model's score.
        let partial = confirm(
            reading(3.0, &[3.0, 0.5], 10),
            &reading(1.0, &[f64::NAN, 2.0], 10),
            2.0,
        );
        assert_eq!(partial.metrics[0], 3.0);
        assert_eq!(partial.score, 2.0);
        // A baseline that has judged nothing yet confirms nothing.
        let early = confirm(
            reading(3.0, &[3.0, 0.5], 10),
            &reading(0.0, &[f64::NAN, f64::NAN], 0),
            1.5,
        );
        assert_eq!(early.score, 3.0);
        assert_eq!(early.baseline_score, None);
    }

    fn config() -> Config {
        let mut c = Config::default();
        c.metrics.truncate(2);
        c.metrics[0].min = 0.0;
        c.metrics[0].max = 100.0;
        c.model.horizon_steps = 4;
        c.anomaly.horizon_steps = 1;
        c.anomaly.smoothing_steps = 2;
        c.anomaly.metrics_needed = 1;
        c
    }

    /// History of `len` steps ending at `last_step`, metric 0 = `values`, metric 1 = 5.
    fn snapshot(last_step: i64, values: &[f32]) -> WindowSnapshot {
        let len = values.len();
        let mut history = values.to_vec();
        history.extend(std::iter::repeat_n(5.0, len));
        WindowSnapshot {
            server: "s".into(),
            profile: "generic".into(),
            last_step,
            history,
            len,
            current: vec![values[len - 1], 5.0],
            current_ts: 0,
        }
    }

    /// A band 40–60 (metric 0) and 4–6 (metric 1) at every horizon step.
    fn forecast(c: &Config) -> ServerForecast {
        let mut f = ServerForecast::empty("test", 2, 3, c.model.horizon_steps);
        for (q, (a, b)) in [(40.0, 4.0), (50.0, 5.0), (60.0, 6.0)].iter().enumerate() {
            f.series_mut(0, q).fill(*a);
            f.series_mut(1, q).fill(*b);
        }
        f
    }

    #[test]
    fn exceedance_is_in_band_widths() {
        assert_eq!(exceedance(50.0, 40.0, 60.0, 1.0), 0.0);
        assert_eq!(exceedance(70.0, 40.0, 60.0, 1.0), 0.5);
        assert_eq!(exceedance(20.0, 40.0, 60.0, 1.0), 1.0);
        // A collapsed band is widened to the floor.
        assert_eq!(exceedance(52.0, 50.0, 50.0, 1.0), 2.0);
        assert!(exceedance(f32::NAN, 40.0, 60.0, 1.0).is_nan());
    }

    #[test]
    fn steps_are_judged_against_the_band_forecast_earlier_and_smoothed() {
        let c = config();
        let widths = min_widths(&c);
        let f = forecast(&c);
        let mut state = AnomalyState::default();
        // Step 10 closed: nothing forecast for it yet.
        let r = state.update(&c.anomaly, &widths, &snapshot(10, &[50.0]), &f);
        assert_eq!((r.score, r.judged_steps), (0.0, 0));
        // Step 11 = 80: two band widths above the band forecast at step 10 for step 11.
        let r = state.update(&c.anomaly, &widths, &snapshot(11, &[50.0, 80.0]), &f);
        assert_eq!(r.judged_steps, 1);
        assert!((r.metrics[0] - 1.0).abs() < 1e-9, "{:?}", r.metrics);
        assert_eq!(r.metrics[1], 0.0);
        assert_eq!((r.score, r.top_metric), (1.0, Some(0)));
        assert_eq!((r.expected_low[0], r.expected_high[0]), (40.0, 60.0));
        // A second refresh in the same step judges nothing again.
        let again = state.update(&c.anomaly, &widths, &snapshot(11, &[50.0, 80.0]), &f);
        assert_eq!(again, r);
        // Step 12 back in the band: the mean over the last 2 judged steps halves.
        let r = state.update(&c.anomaly, &widths, &snapshot(12, &[50.0, 80.0, 55.0]), &f);
        assert!((r.score - 0.5).abs() < 1e-9);
        // Step 13 in the band: the excursion has left the smoothing span.
        let r = state.update(
            &c.anomaly,
            &widths,
            &snapshot(13, &[50.0, 80.0, 55.0, 45.0]),
            &f,
        );
        assert_eq!((r.score, r.top_metric), (0.0, None));
        assert_eq!(r.judged_steps, 3);
    }

    #[test]
    fn a_gap_leaves_steps_unjudged_and_the_horizon_sets_which_forecast_counts() {
        let mut c = config();
        c.anomaly.horizon_steps = 2;
        let widths = min_widths(&c);
        let f = forecast(&c);
        let mut state = AnomalyState::default();
        state.update(&c.anomaly, &widths, &snapshot(10, &[50.0]), &f);
        // Step 11 had no forecast made 2 steps before it.
        let r = state.update(&c.anomaly, &widths, &snapshot(11, &[50.0, 99.0]), &f);
        assert_eq!(r.judged_steps, 0);
        // Step 12 was forecast at step 10.
        let r = state.update(&c.anomaly, &widths, &snapshot(12, &[50.0, 99.0, 30.0]), &f);
        assert_eq!(r.judged_steps, 1);
        assert!((r.score - 0.5).abs() < 1e-9);
        // No refresh during steps 13–19: 13 and 14 (forecast at 11 and 12) are judged when
        // the next refresh comes, 15–19 had no forecast and are not.
        let history: Vec<f32> = (0..10).map(|_| 90.0).collect();
        let r = state.update(&c.anomaly, &widths, &snapshot(19, &history), &f);
        assert_eq!(r.judged_steps, 3);
        assert!((r.score - 1.5).abs() < 1e-9, "{}", r.score);
    }

    #[test]
    fn the_server_score_is_the_kth_worst_metric() {
        let mut c = config();
        c.anomaly.metrics_needed = 2;
        c.anomaly.smoothing_steps = 1;
        let widths = min_widths(&c);
        let f = forecast(&c);
        let mut state = AnomalyState::default();
        state.update(&c.anomaly, &widths, &snapshot(10, &[50.0]), &f);
        // Only metric 0 leaves its band: one metric is not enough.
        let r = state.update(&c.anomaly, &widths, &snapshot(11, &[50.0, 80.0]), &f);
        assert_eq!((r.score, r.top_metric), (0.0, Some(0)));
        // Both leave it: the score is the second worst (metric 1 at 9: 1.5 widths below).
        let mut s = snapshot(12, &[50.0, 80.0, 100.0]);
        s.history[5] = 1.0;
        let r = state.update(&c.anomaly, &widths, &s, &f);
        assert!((r.metrics[1] - 1.5).abs() < 1e-9, "{:?}", r.metrics);
        assert!((r.score - 1.5).abs() < 1e-9, "{}", r.score);
        // More metrics needed than the catalog has (2): all of them, not never.
        c.anomaly.metrics_needed = 3;
        let r = state.reading(&c.anomaly, 2);
        assert!((r.score - 1.5).abs() < 1e-9, "{}", r.score);
    }

    #[test]
    fn the_book_forgets_servers_no_longer_forecast() {
        let c = config();
        let f = forecast(&c);
        let mut book = AnomalyBook::default();
        let a = snapshot(10, &[50.0]);
        let mut b = snapshot(10, &[50.0]);
        b.server = "t".into();
        assert_eq!(
            book.update_all(&c, [(&a, &f), (&b, &f)].into_iter()).len(),
            2
        );
        book.update_all(&c, [(&a, &f)].into_iter());
        assert_eq!(book.servers.len(), 1);
    }
}
