//! Cluster mode's shared state: the NATS connection, the stream and buckets once they
//! exist, the shards this node holds, the merged fleet view and the counters. What is done
//! with it lives in `services::cluster`.

use arc_swap::{ArcSwap, ArcSwapOption};
use async_nats::jetstream;
use bytes::Bytes;
use nordiq_core::api::{ClusterShard, ClusterStatus, LevelCounts, ShardAge};
use nordiq_core::config::ClusterConfig;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;
use tokio_util::sync::CancellationToken;

/// The stream and buckets, created (or found) once NATS answered.
pub struct Handles {
    pub stream: jetstream::stream::Stream,
    /// `shard.N` → [`nordiq_core::cluster::Lease`]; entries expire after `lease_seconds`.
    pub leases: jetstream::kv::Store,
    /// `node.NAME` → the node's heartbeat; entries expire after `lease_seconds`.
    pub nodes: jetstream::kv::Store,
    /// `shard.N` → the shard's [`nordiq_core::cluster::ShardView`].
    pub views: jetstream::kv::Store,
    /// `shard.N` → every claim of the shard, kept (history) for the stream's retention: a
    /// node restarting after a crash drops what another node took over.
    pub claims: jetstream::kv::Store,
    /// `request` → the running job's call for history; `done.JOB.NODE` → each answer.
    pub exports: jetstream::kv::Store,
    /// Each node's history export for a job: `JOB.NODE`.
    pub export_files: jetstream::object_store::ObjectStore,
    /// `current` → the model every node serves ([`nordiq_core::cluster::ModelAnnouncement`]).
    pub model: jetstream::kv::Store,
    /// The announced models' files: `ID/FILE`.
    pub model_files: jetstream::object_store::ObjectStore,
}

/// The cluster's training lease while this node runs the job.
pub struct TrainingHeld {
    pub job_id: String,
    pub revision: u64,
}

/// The model the cluster agreed on, and whether this node serves it.
#[derive(Debug, Clone, Default)]
pub struct ModelSync {
    pub agreed: Option<String>,
    /// Why this node does not serve the agreed model (it keeps its old one).
    pub error: Option<String>,
}

/// A shard this node holds.
pub struct Owned {
    /// The lease entry's revision (an update must name it).
    pub revision: u64,
    /// When the lease was last written: past `lease_seconds` it may be someone else's.
    pub renewed: Instant,
    /// Stops the shard's consumer.
    pub stop: CancellationToken,
    /// The consumer task (awaited when the shard is given up).
    pub task: Option<tokio::task::JoinHandle<()>>,
    /// The first stream sequence this node consumed when it took the shard.
    pub from_seq: u64,
}

/// What the lease loop saw last: the live nodes and every shard's owner.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Membership {
    pub nodes: Vec<String>,
    /// The job holding the cluster's training lease, as `JOB on NODE`.
    pub training: Option<String>,
    pub shards: Vec<ClusterShard>,
    pub checked_at: String,
}

/// The fleet view merged from every shard's part, serialised once.
pub struct FleetJson {
    pub current: Bytes,
    pub alerts: Bytes,
    pub servers: usize,
    /// Servers per level across the fleet, and each shard's part (for `/metrics`).
    pub levels: LevelCounts,
    pub shards: Vec<ShardAge>,
}

/// Counters `/status` and `/metrics` show.
#[derive(Default)]
pub struct ClusterCounters {
    /// Messages published to the stream and acknowledged by JetStream.
    pub published: AtomicU64,
    /// Of those, repeats JetStream recognised by message id (stored once).
    pub published_duplicates: AtomicU64,
    /// Publishes JetStream did not acknowledge (the batch was refused with 503).
    pub publish_failures: AtomicU64,
    /// Messages this node's consumers applied and acknowledged.
    pub consumed: AtomicU64,
    /// Shards taken (at start, after a failure, on a rebalance) and given up.
    pub claims: AtomicU64,
    pub releases: AtomicU64,
    /// Samples replayed from the stream into windows of taken shards.
    pub rebuilt_samples: AtomicU64,
}

pub struct ClusterState {
    pub node: String,
    pub config: ClusterConfig,
    /// Metrics per sample (the catalog's width): messages of another width are refused.
    pub width: usize,
    pub client: async_nats::Client,
    pub js: jetstream::Context,
    pub handles: ArcSwapOption<Handles>,
    pub owned: Mutex<BTreeMap<u32, Owned>>,
    pub membership: ArcSwap<Membership>,
    pub fleet: ArcSwapOption<FleetJson>,
    pub counters: ClusterCounters,
    pub training: Mutex<Option<TrainingHeld>>,
    pub model_sync: Mutex<ModelSync>,
}

impl ClusterState {
    pub fn stream_name(&self) -> String {
        format!("{}_INGEST", self.config.prefix.to_ascii_uppercase())
    }

    pub fn subject(&self, shard: u32) -> String {
        nordiq_cluster::subject(&self.config, shard)
    }

    pub fn bucket(&self, name: &str) -> String {
        format!("{}_{name}", self.config.prefix)
    }

    pub fn owned_shards(&self) -> Vec<u32> {
        self.owned
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .copied()
            .collect()
    }

    /// The cluster part of `GET /status`.
    pub fn status(&self) -> ClusterStatus {
        let membership = self.membership.load();
        let c = &self.counters;
        let sync = self
            .model_sync
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        ClusterStatus {
            node: self.node.clone(),
            ready: self.handles.load().is_some(),
            nodes: membership.nodes.clone(),
            checked_at: membership.checked_at.clone(),
            owned_shards: self.owned_shards(),
            shards: membership.shards.clone(),
            fleet_servers: self.fleet.load().as_ref().map_or(0, |f| f.servers),
            published_total: c.published.load(Ordering::Relaxed),
            published_duplicates_total: c.published_duplicates.load(Ordering::Relaxed),
            publish_failures_total: c.publish_failures.load(Ordering::Relaxed),
            consumed_total: c.consumed.load(Ordering::Relaxed),
            claims_total: c.claims.load(Ordering::Relaxed),
            releases_total: c.releases.load(Ordering::Relaxed),
            rebuilt_samples_total: c.rebuilt_samples.load(Ordering::Relaxed),
            training: membership.training.clone(),
            agreed_model: sync.agreed,
            model_error: sync.error,
        }
    }

    pub fn owns(&self, shard: u32) -> bool {
        self.owned
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(&shard)
    }
}
