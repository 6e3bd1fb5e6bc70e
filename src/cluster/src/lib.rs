//! The NATS side of cluster mode that more than one binary needs: connecting to NATS
//! JetStream from `[cluster]`, and publishing validated samples, one message per shard,
//! with the batch id as JetStream's message id (nordiq-inference's ingest, and
//! nordiq-metrics when it publishes directly). Leases, consumers and the fleet view are
//! nordiq-inference's own (`services::cluster`); docs/cluster.md has the design.

use async_nats::jetstream::{self, message::PublishMessage};
use nordiq_core::cluster::shard_of;
use nordiq_core::config::ClusterConfig;
use nordiq_core::ingest::Sample;
use std::collections::BTreeMap;
use std::time::Duration;

/// Header naming the node that published a message (for operators reading the stream).
pub const NODE_HEADER: &str = "Nordiq-Node";

/// Why NATS could not be reached.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error(
        "cluster.credentials_file {path}: {source}; check the path and that nordiq can read it"
    )]
    Credentials {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot connect to NATS at {urls}: {message}")]
    Connect { urls: String, message: String },
}

/// Some parts of a batch were not stored (the batch as a whole must be sent again, with
/// the same id: the parts that were stored are not stored twice).
#[derive(Debug, thiserror::Error)]
#[error("{failed} of {parts} parts not acknowledged by JetStream: {first}")]
pub struct PublishError {
    pub parts: usize,
    pub failed: usize,
    pub first: String,
}

/// This node's name: the configured one, else the host name.
pub fn node_name(config: &ClusterConfig) -> String {
    if !config.node_name.is_empty() {
        return config.node_name.clone();
    }
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| {
            h.trim()
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect::<String>()
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "nordiq".into())
}

/// Connects to NATS as `client_name` (the client keeps reconnecting, to any of the URLs,
/// on its own; the first URL is preferred) and returns the client and a JetStream context
/// with short request deadlines.
pub async fn connect(
    config: &ClusterConfig,
    client_name: &str,
) -> Result<(async_nats::Client, jetstream::Context), ConnectError> {
    let c = config;
    let mut options = async_nats::ConnectOptions::new()
        .name(client_name)
        .retry_on_initial_connect()
        // The node's own NATS server first (list it first): fewer hops, and a dead remote
        // server does not take this node's connection with it.
        .retain_servers_order()
        .max_reconnects(None)
        .connection_timeout(Duration::from_secs(5));
    if !c.credentials_file.as_os_str().is_empty() {
        options = options
            .credentials_file(&c.credentials_file)
            .await
            .map_err(|source| ConnectError::Credentials {
                path: c.credentials_file.display().to_string(),
                source,
            })?;
    }
    if !c.ca_file.as_os_str().is_empty() {
        options = options.add_root_certificates(c.ca_file.clone());
    }
    if !c.client_cert_file.as_os_str().is_empty() {
        options =
            options.add_client_certificate(c.client_cert_file.clone(), c.client_key_file.clone());
    }
    if c.nats_urls.iter().any(|u| u.starts_with("tls://")) {
        options = options.require_tls(true);
    }
    let urls = || c.nats_urls.join(",");
    let addrs: Vec<async_nats::ServerAddr> = c
        .nats_urls
        .iter()
        .map(|u| u.parse())
        .collect::<Result<_, _>>()
        .map_err(|e: std::io::Error| ConnectError::Connect {
            urls: urls(),
            message: e.to_string(),
        })?;
    let client = options
        .connect(addrs)
        .await
        .map_err(|e| ConnectError::Connect {
            urls: urls(),
            message: e.to_string(),
        })?;
    // Short request deadlines: a caller asks again rather than wait out a leader election.
    let js = jetstream::context::ContextBuilder::new()
        .timeout(Duration::from_secs(3))
        .build(client.clone());
    Ok((client, js))
}

/// The subject of `shard`'s samples.
pub fn subject(config: &ClusterConfig, shard: u32) -> String {
    format!("{}.ingest.{shard}", config.prefix)
}

/// What JetStream said about a published batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Published {
    /// Messages (one per shard the batch touched).
    pub parts: usize,
    /// Of those, repeats of a message id JetStream had already stored (kept once).
    pub repeats: usize,
}

/// Publishes `samples` split by shard, each part with `<batch_id>:<shard>` as its message
/// id; returns once JetStream has acknowledged every part.
pub async fn publish<'a>(
    js: &jetstream::Context,
    config: &ClusterConfig,
    node: &str,
    samples: impl Iterator<Item = &'a Sample>,
    batch_id: &str,
) -> Result<Published, PublishError> {
    let mut parts: BTreeMap<u32, Vec<&Sample>> = BTreeMap::new();
    for s in samples {
        parts
            .entry(shard_of(&s.server, config.shards))
            .or_default()
            .push(s);
    }
    let mut acks = Vec::with_capacity(parts.len());
    for (shard, samples) in &parts {
        let id = format!("{batch_id}:{shard}");
        let payload = nordiq_buffer::wal::encode_message(samples.iter().copied(), Some(&id));
        let message = PublishMessage::build()
            .payload(payload.into())
            .message_id(&id)
            .header(NODE_HEADER, node);
        acks.push(js.send_publish(subject(config, *shard), message).await);
    }
    let mut published = Published {
        parts: parts.len(),
        repeats: 0,
    };
    let (mut failed, mut first) = (0, None);
    for sent in acks {
        let outcome = match sent {
            Ok(ack) => ack.await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match outcome {
            Ok(ack) => published.repeats += usize::from(ack.duplicate),
            Err(e) => {
                failed += 1;
                first.get_or_insert(e);
            }
        }
    }
    match first {
        None => Ok(published),
        Some(first) => Err(PublishError {
            parts: published.parts,
            failed,
            first,
        }),
    }
}
