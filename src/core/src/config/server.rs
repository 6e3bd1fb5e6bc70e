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
    /// Open connections at most (both daemons); above it a new one gets 503 and is closed.
    pub max_connections: usize,
    /// Open connections from one client address at most; above it 429, closed.
    pub max_connections_per_client: usize,
    /// A client gets this long for each request's headers (and its TLS handshake); an idle
    /// keep-alive connection is closed after it.
    pub header_read_timeout_seconds: u64,
    /// A client gets this long to send a request's body (408 after it).
    pub body_read_timeout_seconds: u64,
    /// Request bodies being read at once, in bytes, at most; above it 503 with Retry-After.
    pub max_inflight_body_bytes: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:8000".into(),
            shutdown_timeout_seconds: 10,
            max_body_bytes: 32 * 1024 * 1024,
            max_connections: 16384,
            max_connections_per_client: 256,
            header_read_timeout_seconds: 15,
            body_read_timeout_seconds: 60,
            max_inflight_body_bytes: 256 * 1024 * 1024,
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
        })?;
        require(self.max_connections >= 1, "server.max_connections", || {
            "must be at least 1".into()
        })?;
        require(
            (1..=self.max_connections).contains(&self.max_connections_per_client),
            "server.max_connections_per_client",
            || "must be between 1 and server.max_connections".into(),
        )?;
        for (key, v) in [
            (
                "server.header_read_timeout_seconds",
                self.header_read_timeout_seconds,
            ),
            (
                "server.body_read_timeout_seconds",
                self.body_read_timeout_seconds,
            ),
        ] {
            require((1..=3600).contains(&v), key, || {
                "must be 1 to 3600 seconds".into()
            })?;
        }
        require(
            self.max_inflight_body_bytes >= self.max_body_bytes,
            "server.max_inflight_body_bytes",
            || "must be at least server.max_body_bytes (one largest body must fit)".into(),
        )
    }
}
