//! Test data shared by this crate's unit tests.

use crate::assess::Assessed;
use crate::config::Config;
use crate::forecast::ServerForecast;
use crate::risk::Level;

/// A forecast server with distinct forecast values, risk 0.5 and `level`.
pub(crate) fn assessed(server: &str, level: Level, config: &Config) -> Assessed {
    let n = config.metrics.len();
    let mut forecast = ServerForecast::empty("seasonal_naive", n, 3, config.model.horizon_steps);
    for m in 0..n {
        for q in 0..3 {
            for (i, v) in forecast.series_mut(m, q).iter_mut().enumerate() {
                *v = (m * 1000 + q * 100 + i) as f32;
            }
        }
    }
    Assessed {
        server: server.into(),
        profile: "web_api".into(),
        last_sample_ms: 0,
        forecast_start_ms: 0,
        current: vec![0.0; n],
        outlook: crate::outlook::server_outlook(config, &forecast),
        anomaly: crate::anomaly::AnomalyReading::none(n, config.anomaly.threshold),
        forecast,
        metric_risk: vec![0.0; n],
        metric_peak: vec![0.0; n],
        slope_per_hour: vec![0.0; n],
        risk: 0.5,
        level,
        top_metric: None,
    }
}
