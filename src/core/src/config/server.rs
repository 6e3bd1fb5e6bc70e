//! `[server]`: the HTTP listener of nordiq-inference and its limits.

use super::invalid::{require, Invalid};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Bound only when systemd passes no socket.
    pub listen: String,
    /// How long SIGTERM waits for in-flight requests before exiting anyway.
    pub shutdown_timeout_seconds: u64,
    /// Largest accepted request body (413 above it).
    pub max_body_bytes: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:8000".into(),
            shutdown_timeout_seconds: 10,
            max_body_bytes: 32 * 1024 * 1024,
        }
    }
}

impl ServerConfig {
    pub(crate) fn validate(&self) -> Result<(), Invalid> {
        require(
            self.listen.parse::<SocketAddr>().is_ok(),
            "server.listen",
            || format!("`{}` is not an address like 127.0.0.1:8000", self.listen),
        )?;
        require(self.max_body_bytes >= 1024, "server.max_body_bytes", || {
            "must be at least 1024".into()
        })
    }
}
