//! Honest baselines behind the [`Forecaster`] trait. They serve before any model is
//! trained and are what every accuracy figure and every promotion is measured against:
//! seasonal naive (a day, a week), the seasonal median over several seasons, exponential
//! smoothing fitted per series, the last value, and `auto`, which picks per server the one
//! that forecast its own recent past best.

mod ets;
mod seasonal;

pub use ets::{ets_series, fit_ets, last_value_series, EtsParams};
pub use seasonal::{seasonal_median_at, seasonal_median_smoothed_at, seasonal_series};

use crate::{parallel_map, ForecastSpec, Forecaster};
use nordiq_core::config::{BaselineKind, Config};
use nordiq_core::forecast::ServerForecast;
use nordiq_core::window::WindowSnapshot;
use std::collections::HashMap;
use std::sync::Mutex;

/// Seasons in the weekly seasonal naive's season.
const WEEK_SEASONS: usize = 7;
/// Servers whose `auto` choice is remembered before the memory is cleared (four times
/// the default `window.max_servers`).
const MAX_REMEMBERED: usize = 40_000;

/// A baseline forecaster of one [`BaselineKind`].
pub struct Baseline {
    kind: BaselineKind,
    id: String,
    spec: ForecastSpec,
    /// `auto`'s choice per server and the step it was made at: it is judged on closed
    /// steps, so it is made again only when a new step closes, not at every refresh.
    choices: Mutex<HashMap<String, (i64, BaselineKind)>>,
}

impl Baseline {
    pub fn new(kind: BaselineKind, spec: ForecastSpec) -> Self {
        Baseline {
            kind,
            id: kind.id().to_string(),
            spec,
            choices: Mutex::new(HashMap::new()),
        }
    }

    /// The baseline `forecast.baseline` names.
    pub fn from_config(config: &Config) -> Self {
        Baseline::new(config.forecast.baseline, ForecastSpec::from_config(config))
    }

    /// One baseline of `kind` with `config`'s settings.
    pub fn of_kind(config: &Config, kind: BaselineKind) -> Self {
        Baseline::new(kind, ForecastSpec::from_config(config))
    }

    /// Every concrete baseline ([`BaselineKind::ALL`]) with `config`'s settings: what
    /// accuracy reports and promotion score a model against.
    pub fn all(config: &Config) -> Vec<Baseline> {
        BaselineKind::ALL
            .into_iter()
            .map(|kind| Baseline::of_kind(config, kind))
            .collect()
    }

    /// Forecasts one server.
    pub fn forecast_one(&self, snapshot: &WindowSnapshot) -> ServerForecast {
        let kind = match self.kind {
            BaselineKind::Auto => self.choose_cached(snapshot),
            k => k,
        };
        forecast_with(kind, &self.spec, snapshot, snapshot.len)
    }

    /// [`Baseline::choose`], remembered per server until its newest step changes.
    fn choose_cached(&self, snapshot: &WindowSnapshot) -> BaselineKind {
        let known = self
            .choices
            .lock()
            .ok()
            .and_then(|c| c.get(&snapshot.server).copied());
        if let Some((step, kind)) = known {
            if step == snapshot.last_step {
                return kind;
            }
        }
        let kind = self.choose(snapshot);
        if let Ok(mut c) = self.choices.lock() {
            // Bounded: servers that went away are forgotten wholesale now and then.
            if c.len() >= MAX_REMEMBERED {
                c.clear();
            }
            c.insert(snapshot.server.clone(), (snapshot.last_step, kind));
        }
        kind
    }

    /// `auto`: the concrete baseline whose forecast from one horizon ago best matches what
    /// then happened on this server (sum over metrics of the mean absolute error divided by
    /// the series' mean absolute one-step change, so every metric counts alike). With less
    /// history than a season plus a horizon, the seasonal median (which falls back to
    /// smoothing while it has no season).
    pub fn choose(&self, snapshot: &WindowSnapshot) -> BaselineKind {
        let spec = &self.spec;
        let h = spec.horizon;
        if snapshot.len < spec.season_steps + h + 1 || h == 0 {
            return BaselineKind::SeasonalMedian;
        }
        let end = snapshot.len - h;
        let n_metrics = spec
            .bounds
            .len()
            .min(snapshot.history.len() / snapshot.len.max(1));
        let median = nordiq_core::forecast::median_index(&spec.quantiles);
        let scales: Vec<f64> = (0..n_metrics)
            .map(|m| {
                let s = &snapshot.series(m)[..end];
                let (sum, n) = s
                    .windows(2)
                    .filter(|w| !w[0].is_nan() && !w[1].is_nan())
                    .fold((0.0f64, 0usize), |(a, n), w| {
                        (a + (w[1] - w[0]).abs() as f64, n + 1)
                    });
                if n == 0 {
                    0.0
                } else {
                    sum / n as f64
                }
            })
            .collect();
        let mut best = (f64::INFINITY, BaselineKind::SeasonalMedian);
        for kind in BaselineKind::ALL {
            let f = forecast_with(kind, spec, snapshot, end);
            let mut score = 0.0;
            for (m, scale) in scales.iter().enumerate() {
                let truth = &snapshot.series(m)[end..];
                let (sum, n) = truth
                    .iter()
                    .zip(f.series(m, median))
                    .filter(|(y, p)| !y.is_nan() && !p.is_nan())
                    .fold((0.0f64, 0usize), |(a, n), (y, p)| {
                        (a + (y - p).abs() as f64, n + 1)
                    });
                if n > 0 && *scale > 0.0 {
                    score += sum / n as f64 / scale;
                }
            }
            if score < best.0 {
                best = (score, kind);
            }
        }
        best.1
    }
}

/// Forecasts `snapshot` as if its history ended after `len` steps, with a concrete kind.
fn forecast_with(
    kind: BaselineKind,
    spec: &ForecastSpec,
    snapshot: &WindowSnapshot,
    len: usize,
) -> ServerForecast {
    let n_metrics = spec.bounds.len();
    let season = spec.season_steps;
    let week = season * WEEK_SEASONS;
    // (season, seasons) of the seasonal rule, or None for smoothing and last value.
    let seasonal = match kind {
        BaselineKind::SeasonalMedian => Some((season, spec.median_seasons)),
        BaselineKind::SeasonalNaive | BaselineKind::Auto => Some((season, 1)),
        BaselineKind::SeasonalNaiveWeek if week > 0 && len > week => Some((week, 1)),
        BaselineKind::SeasonalNaiveWeek => Some((season, 1)),
        BaselineKind::Ets | BaselineKind::LastValue => None,
    }
    .filter(|(s, _)| *s > 0 && len > *s);
    let method = match (seasonal, kind) {
        (Some((s, _)), BaselineKind::SeasonalNaiveWeek) if s == week => "seasonal_naive_week",
        (Some(_), BaselineKind::SeasonalMedian) => "seasonal_median",
        (Some(_), _) => "seasonal_naive",
        (None, BaselineKind::LastValue) => "last_value",
        (None, _) => "ets",
    };
    let mut out = ServerForecast::empty(method, n_metrics, spec.quantiles.len(), spec.horizon);
    let mut bands = vec![vec![0.0f32; spec.horizon]; spec.quantiles.len()];
    for m in 0..n_metrics.min(snapshot.history.len() / snapshot.len.max(1)) {
        let series = &snapshot.series(m)[..len];
        let ok = match (seasonal, kind) {
            (Some((s, k)), _) => {
                seasonal_series(series, s, k, spec.horizon, &spec.quantiles, &mut bands)
            }
            (None, BaselineKind::LastValue) => {
                let recent = &series[series.len().saturating_sub(spec.smoothing_steps)..];
                last_value_series(recent, spec.horizon, &spec.quantiles, &mut bands)
            }
            (None, _) => {
                let recent = &series[series.len().saturating_sub(spec.smoothing_steps)..];
                ets_series(recent, spec.horizon, &spec.quantiles, &mut bands)
            }
        };
        if !ok {
            continue;
        }
        let (lo, hi) = spec.bounds[m];
        for (q, band) in bands.iter().enumerate() {
            for (dst, v) in out.series_mut(m, q).iter_mut().zip(band) {
                *dst = (*v as f64).clamp(lo, hi) as f32;
            }
        }
    }
    out
}

impl Forecaster for Baseline {
    fn id(&self) -> &str {
        &self.id
    }

    fn forecast_batch(&self, snapshots: &[&WindowSnapshot]) -> Vec<ServerForecast> {
        parallel_map(snapshots.to_vec(), self.spec.threads, |s| {
            self.forecast_one(s)
        })
    }
}

#[cfg(test)]
mod tests;
