//! `[prometheus]`: what `GET /metrics` on nordiq-inference exposes about the fleet.

use super::invalid::{in_catalog, require, Invalid};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PrometheusConfig {
    /// Forecast gauges at these horizons (minutes after the last observed step); a horizon
    /// beyond the model's is left out.
    pub horizons_minutes: Vec<u32>,
    /// Server name globs whose per-server series are exposed; empty: every server.
    pub servers: Vec<String>,
    /// Catalog metrics with forecast gauges; empty: the whole catalog.
    pub metrics: Vec<String>,
    /// Per-server series for at most this many servers (the first by name), so a big
    /// fleet cannot blow up Prometheus' series count.
    pub max_servers: usize,
    /// `GET /metrics` needs the API key (`X-API-Key` or `Authorization: Bearer`).
    pub require_key: bool,
}

impl Default for PrometheusConfig {
    fn default() -> Self {
        PrometheusConfig {
            horizons_minutes: vec![30, 60, 480],
            servers: Vec::new(),
            metrics: Vec::new(),
            max_servers: 200,
            require_key: true,
        }
    }
}

impl PrometheusConfig {
    pub(crate) fn validate(&self, known: &dyn Fn(&str) -> bool) -> Result<(), Invalid> {
        in_catalog(
            "prometheus.metrics",
            self.metrics.iter().map(|m| (m.as_str(), m.as_str())),
            known,
        )?;
        require(
            !self.horizons_minutes.contains(&0),
            "prometheus.horizons_minutes",
            || "horizons must be ≥ 1 minute".into(),
        )
    }
}
