//! Honest baselines behind the [`Forecaster`] trait. They serve before any model is
//! trained and are what every accuracy figure is measured against.

mod holt;
mod seasonal;

pub use holt::{holt_series, HoltParams};
pub use seasonal::{seasonal_median_at, seasonal_series};

use crate::{parallel_map, ForecastSpec, Forecaster};
use nordiq_core::config::{BaselineKind, Config};
use nordiq_core::forecast::ServerForecast;
use nordiq_core::window::WindowSnapshot;

/// A baseline forecaster: seasonal median or seasonal naive (damped trend while history is
/// shorter than a season), or damped trend alone.
pub struct Baseline {
    kind: BaselineKind,
    id: String,
    spec: ForecastSpec,
    holt: HoltParams,
}

impl Baseline {
    pub fn new(kind: BaselineKind, spec: ForecastSpec, holt: HoltParams) -> Self {
        let id = match kind {
            BaselineKind::SeasonalMedian => "baseline:seasonal_median",
            BaselineKind::SeasonalNaive => "baseline:seasonal_naive",
            BaselineKind::Holt => "baseline:holt",
        }
        .to_string();
        Baseline {
            kind,
            id,
            spec,
            holt,
        }
    }

    pub fn from_config(config: &Config) -> Self {
        let f = &config.forecast;
        Baseline::new(
            f.baseline,
            ForecastSpec::from_config(config),
            HoltParams {
                alpha: f.holt_alpha,
                beta: f.holt_beta,
                phi: f.holt_phi,
            },
        )
    }

    /// Every baseline (seasonal naive, seasonal median, damped trend) with `config`'s
    /// settings: what accuracy reports score a model against.
    pub fn all(config: &Config) -> Vec<Baseline> {
        [
            BaselineKind::SeasonalNaive,
            BaselineKind::SeasonalMedian,
            BaselineKind::Holt,
        ]
        .into_iter()
        .map(|kind| {
            let mut c = config.clone();
            c.forecast.baseline = kind;
            Baseline::from_config(&c)
        })
        .collect()
    }

    /// Forecasts one server.
    pub fn forecast_one(&self, snapshot: &WindowSnapshot) -> ServerForecast {
        let spec = &self.spec;
        let n_metrics = spec.bounds.len();
        let seasons = match self.kind {
            BaselineKind::SeasonalMedian => spec.median_seasons,
            BaselineKind::SeasonalNaive => 1,
            BaselineKind::Holt => 0,
        };
        let seasonal = seasons > 0 && snapshot.len > spec.season_steps && spec.season_steps > 0;
        let method = match (seasonal, self.kind) {
            (false, _) => "holt",
            (true, BaselineKind::SeasonalMedian) => "seasonal_median",
            (true, _) => "seasonal_naive",
        };
        let mut out = ServerForecast::empty(method, n_metrics, spec.quantiles.len(), spec.horizon);
        let mut bands = vec![vec![0.0f32; spec.horizon]; spec.quantiles.len()];
        for m in 0..n_metrics.min(snapshot.history.len() / snapshot.len.max(1)) {
            let series = snapshot.series(m);
            let ok = if seasonal {
                seasonal_series(
                    series,
                    spec.season_steps,
                    seasons,
                    spec.horizon,
                    &spec.quantiles,
                    &mut bands,
                )
            } else {
                let recent = &series[series.len().saturating_sub(spec.smoothing_steps)..];
                holt_series(recent, self.holt, spec.horizon, &spec.quantiles, &mut bands)
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
