//! The one interface for every forecaster, and parallel batching for per-series models.

use nordiq_core::config::{AnomalyConfig, Config};
use nordiq_core::forecast::ServerForecast;
use nordiq_core::window::WindowSnapshot;

/// What every forecaster is asked for; fixed by the config.
#[derive(Debug, Clone, PartialEq)]
pub struct ForecastSpec {
    pub horizon: usize,
    pub quantiles: Vec<f64>,
    pub season_steps: usize,
    /// Seasons the seasonal median looks back.
    pub median_seasons: usize,
    /// History the smoothing baseline reads (the encoder length): its state forgets older
    /// steps anyway (weight (1−α)^n), so reading more only costs time.
    pub smoothing_steps: usize,
    /// Each metric's valid range: forecasts are clamped into it.
    pub bounds: Vec<(f64, f64)>,
    /// Worker threads for a batch (≥ 1).
    pub threads: usize,
}

impl ForecastSpec {
    pub fn from_config(config: &Config) -> Self {
        let threads = nordiq_core::config::threads_or_cores(config.forecast.threads);
        ForecastSpec {
            horizon: config.model.horizon_steps,
            quantiles: config.model.quantiles.clone(),
            season_steps: config.season_steps(),
            median_seasons: config.forecast.median_seasons,
            smoothing_steps: config.model.encoder_steps,
            bounds: config.metrics.iter().map(|m| (m.min, m.max)).collect(),
            threads,
        }
    }
}

/// A model that forecasts every metric of a batch of servers.
pub trait Forecaster: Send + Sync {
    /// The id answers carry: `baseline:seasonal_naive`, `tft_20261127_101500`, …
    fn id(&self) -> &str;

    /// Forecasts every snapshot; the answer has one entry per snapshot, in order.
    fn forecast_batch(&self, snapshots: &[&WindowSnapshot]) -> Vec<ServerForecast>;

    /// The anomaly score at which a server this forecaster serves is "anomalous now":
    /// `anomaly.threshold` (tuned on the baselines' bands) unless the model carries its
    /// own (`nordiq_core::anomaly_threshold`).
    fn anomaly_threshold(&self, anomaly: &AnomalyConfig) -> f64 {
        anomaly.threshold
    }
}

/// `0..len` cut into at most `parts` contiguous ranges, in order, whose lengths differ by
/// at most one: fewer when there are fewer items, and one empty range when there are none.
pub(crate) fn even_parts(len: usize, parts: usize) -> Vec<std::ops::Range<usize>> {
    let parts = parts.clamp(1, len.max(1));
    let (base, extra) = (len / parts, len % parts);
    let mut start = 0;
    (0..parts)
        .map(|i| {
            let end = start + base + usize::from(i < extra);
            let range = start..end;
            start = end;
            range
        })
        .collect()
}

/// Maps `items` over `threads` scoped threads, keeping order. Per-server work (baseline
/// forecasts, risk assessment) is independent, so it splits evenly.
pub fn parallel_map<T, R, F>(items: Vec<T>, threads: usize, f: F) -> Vec<R>
where
    T: Send,
    R: Send,
    F: Fn(T) -> R + Sync,
{
    let parts = even_parts(items.len(), threads);
    if parts.len() == 1 {
        return items.into_iter().map(f).collect();
    }
    let mut rest = items.into_iter();
    let chunks: Vec<Vec<T>> = parts
        .iter()
        .map(|part| rest.by_ref().take(part.len()).collect())
        .collect();
    std::thread::scope(|scope| {
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|part| {
                let f = &f;
                scope.spawn(move || part.into_iter().map(f).collect::<Vec<_>>())
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| match h.join() {
                Ok(v) => v,
                Err(panic) => std::panic::resume_unwind(panic),
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::{even_parts, parallel_map};

    #[test]
    fn work_is_cut_into_near_equal_parts_in_order() {
        assert_eq!(even_parts(10, 3), vec![0..4, 4..7, 7..10]);
        assert_eq!(even_parts(2, 4), vec![0..1, 1..2]);
        assert_eq!(even_parts(10, 1), vec![0..10]);
        assert_eq!(even_parts(0, 2), vec![0..0]);
        assert_eq!(even_parts(5, 0), vec![0..5]);
        let squares = parallel_map((0..10u64).collect(), 3, |x| x * x);
        assert_eq!(squares, (0..10u64).map(|x| x * x).collect::<Vec<_>>());
        assert!(parallel_map(Vec::<u64>::new(), 3, |x| x).is_empty());
    }
}
