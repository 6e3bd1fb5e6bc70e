//! The shape every forecaster answers in: per server, per metric, per quantile, one value
//! per horizon step. Plain data, so risk scoring never depends on which model made it.

/// One server's forecast, stored flat as `[metric][quantile][step]`.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerForecast {
    /// What produced it: `seasonal_naive`, `seasonal_median`, `ets`, `last_value`, `tft`, …
    pub method: &'static str,
    pub n_metrics: usize,
    pub n_quantiles: usize,
    pub horizon: usize,
    pub values: Vec<f32>,
}

/// Index of the median (0.5) among `quantiles`; 0 when it is missing (the config requires it).
pub fn median_index(quantiles: &[f64]) -> usize {
    quantiles
        .iter()
        .position(|q| (q - 0.5).abs() < 1e-9)
        .unwrap_or(0)
}

impl ServerForecast {
    /// An all-NaN forecast to be filled in.
    pub fn empty(
        method: &'static str,
        n_metrics: usize,
        n_quantiles: usize,
        horizon: usize,
    ) -> Self {
        ServerForecast {
            method,
            n_metrics,
            n_quantiles,
            horizon,
            values: vec![f32::NAN; n_metrics * n_quantiles * horizon],
        }
    }

    fn offset(&self, metric: usize, quantile: usize) -> usize {
        (metric * self.n_quantiles + quantile) * self.horizon
    }

    /// Metric `metric`'s quantile `quantile` over the horizon.
    pub fn series(&self, metric: usize, quantile: usize) -> &[f32] {
        let o = self.offset(metric, quantile);
        &self.values[o..o + self.horizon]
    }

    pub fn series_mut(&mut self, metric: usize, quantile: usize) -> &mut [f32] {
        let o = self.offset(metric, quantile);
        &mut self.values[o..o + self.horizon]
    }
}
