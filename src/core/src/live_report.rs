//! Live accuracy as the API reports it (`live` in `GET /admin/model-info`, the drift
//! check's input): its own module so that `drift` and `api` both use it without importing
//! each other.

use serde::{Deserialize, Serialize};

/// Live accuracy of one forecaster over a span (see `nordiq_model::live`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LiveScores {
    /// Forecast windows scored.
    pub windows: u64,
    /// Means over metrics of the per-metric figures, as in the backtests: MASE against
    /// seasonal naive on the same steps, pinball loss, lowest-to-highest quantile coverage.
    pub mase: Option<f64>,
    pub pinball: Option<f64>,
    pub coverage: Option<f64>,
    pub horizons: Vec<LiveBucket>,
}

/// One horizon bucket of [`LiveScores`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LiveBucket {
    pub label: String,
    pub mase: Option<f64>,
    pub coverage: Option<f64>,
}

/// The served forecaster and the best baseline over one span.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LiveSpan {
    pub hours: usize,
    pub served: LiveScores,
    pub baseline: LiveScores,
}

/// `live` in `GET /admin/model-info`: the forecasts served, scored against what happened.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LiveReport {
    /// What served the scored forecasts, and the baseline scored beside it.
    pub served: String,
    pub baseline: String,
    /// Forecasts kept whose horizon has not closed yet.
    pub pending_windows: usize,
    pub day: LiveSpan,
    pub week: LiveSpan,
}
