//! `[dashboard]`: nordiq-dashboard.

use super::invalid::{require, Invalid};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

/// `nordiq-dashboard`, the web UI.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DashboardConfig {
    /// Used only when systemd passes no socket. Loopback by default: the page can trigger
    /// training, so it is not for the open network without `require_login`.
    pub listen: String,
    /// Where nordiq-inference answers; empty: derived from `server.listen`.
    pub inference_url: String,
    /// Ask for the API key once (a login form) and keep an HttpOnly session cookie.
    pub require_login: bool,
    pub session_hours: u64,
    /// The page's default refresh interval (it offers 5 s – 5 min).
    pub refresh_seconds: u64,
    /// Where `nordiq-metrics simulate` answers (`/scenario/…`); empty: no scenario buttons.
    pub simulator_url: String,
}

impl Default for DashboardConfig {
    fn default() -> Self {
        DashboardConfig {
            listen: "127.0.0.1:8050".into(),
            inference_url: String::new(),
            require_login: false,
            session_hours: 12,
            refresh_seconds: 30,
            simulator_url: String::new(),
        }
    }
}

impl DashboardConfig {
    pub(crate) fn validate(&self) -> Result<(), Invalid> {
        require(
            self.listen.parse::<SocketAddr>().is_ok(),
            "dashboard.listen",
            || format!("`{}` is not an address like 127.0.0.1:8050", self.listen),
        )?;
        require(
            (5..=300).contains(&self.refresh_seconds),
            "dashboard.refresh_seconds",
            || "must be between 5 and 300".into(),
        )
    }
}
