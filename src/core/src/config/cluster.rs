//! `[cluster]`: several nordiq-inference nodes sharing one fleet through NATS JetStream.
//! Off by default: a single node behaves exactly as without this section.

use super::invalid::{require, Invalid};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    /// Cluster mode: ingest goes through JetStream, shards are leased, the fleet view is
    /// shared. Needs a NATS server with JetStream (see docs/cluster.md).
    pub enabled: bool,
    /// The NATS servers to connect to (any of them; the client fails over between them).
    pub nats_urls: Vec<String>,
    /// This node's name, unique in the cluster; empty = the host name.
    pub node_name: String,
    /// Shards the fleet is split into (a server's shard is a stable hash of its name). The
    /// same on every node, and fixed once the stream exists.
    pub shards: u32,
    /// Copies JetStream keeps of the stream and the buckets (1, 3 or 5 servers).
    pub replicas: usize,
    /// A shard lease not renewed for this long expires and another node takes the shard;
    /// the takeover bound is about this plus `lease_seconds / 3`.
    pub lease_seconds: u64,
    /// How long the stream keeps samples: windows of a taken-over shard are rebuilt from
    /// it, so it must cover the model's encoder.
    pub retention_hours: u64,
    /// The stream's deduplication window: a batch re-sent with the same id within it is
    /// stored once.
    pub duplicate_window_seconds: u64,
    /// A NATS credentials file (`.creds`: JWT + NKey seed); empty = none.
    pub credentials_file: PathBuf,
    /// A CA (PEM) to trust for `tls://` NATS URLs, beside the system roots.
    pub ca_file: PathBuf,
    /// A client certificate and key (PEM) for NATS servers that verify clients.
    pub client_cert_file: PathBuf,
    pub client_key_file: PathBuf,
    /// Prefix of the stream, bucket and subject names, so clusters can share NATS.
    pub prefix: String,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            enabled: false,
            nats_urls: vec!["nats://127.0.0.1:4222".into()],
            node_name: String::new(),
            shards: 16,
            replicas: 3,
            lease_seconds: 15,
            retention_hours: 48,
            duplicate_window_seconds: 600,
            credentials_file: PathBuf::new(),
            ca_file: PathBuf::new(),
            client_cert_file: PathBuf::new(),
            client_key_file: PathBuf::new(),
            prefix: "nordiq".into(),
        }
    }
}

impl ClusterConfig {
    pub(crate) fn validate(&self, encoder_seconds: u64) -> Result<(), Invalid> {
        if !self.enabled {
            return Ok(());
        }
        require(!self.nats_urls.is_empty(), "cluster.nats_urls", || {
            "name at least one NATS server (nats://host:4222)".into()
        })?;
        if let Some(bad) = self.nats_urls.iter().find(|u| {
            let scheme = u.split_once("://").map(|(s, _)| s);
            !matches!(scheme, Some("nats" | "tls")) || u.ends_with("://")
        }) {
            return Err(Invalid::new(
                "cluster.nats_urls",
                format!("`{bad}` is not a nats:// or tls:// URL"),
            ));
        }
        require(
            self.node_name.len() <= 64
                && self
                    .node_name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
            "cluster.node_name",
            || "letters, digits, - and _ only (at most 64)".into(),
        )?;
        require((1..=1024).contains(&self.shards), "cluster.shards", || {
            "must be between 1 and 1024".into()
        })?;
        require(
            matches!(self.replicas, 1 | 3 | 5),
            "cluster.replicas",
            || "must be 1, 3 or 5".into(),
        )?;
        require(
            (3..=3600).contains(&self.lease_seconds),
            "cluster.lease_seconds",
            || "must be between 3 and 3600".into(),
        )?;
        require(
            self.retention_hours * 3600 >= encoder_seconds,
            "cluster.retention_hours",
            || {
                format!(
                    "must cover the model's encoder ({} h): a taken-over shard's windows are rebuilt from the stream",
                    encoder_seconds.div_ceil(3600)
                )
            },
        )?;
        require(
            self.duplicate_window_seconds >= 1
                && self.duplicate_window_seconds <= self.retention_hours * 3600,
            "cluster.duplicate_window_seconds",
            || "must be ≥ 1 and within retention_hours".into(),
        )?;
        require(
            !self.prefix.is_empty()
                && self.prefix.len() <= 32
                && self
                    .prefix
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "cluster.prefix",
            || "letters, digits and _ only (1 to 32)".into(),
        )?;
        let cert = !self.client_cert_file.as_os_str().is_empty();
        let key = !self.client_key_file.as_os_str().is_empty();
        require(cert == key, "cluster.client_key_file", || {
            "set client_cert_file and client_key_file together".into()
        })
    }
}
