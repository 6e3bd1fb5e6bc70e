//! NordIQ forecasting: the [`Forecaster`] trait every model answers through, the honest
//! baselines (seasonal naive, damped-trend smoothing), and batched, parallel refresh.
//!
//! No I/O here: a forecaster maps window snapshots to quantile forecasts.

pub mod accuracy;
pub mod alert_quality;
pub mod anomaly_calibration;
pub mod backtest;
pub mod baseline;
pub mod evaluation;
mod forecaster;
pub mod live;
pub mod replay;
pub mod serving;
pub mod stats;
pub mod tft;

pub use forecaster::{parallel_map, ForecastSpec, Forecaster};
