//! Cluster mode on NATS JetStream (docs/cluster.md): ingest published to a replicated
//! stream ([`publish`]), shards held through leases in a key-value bucket ([`leases`]),
//! each held shard consumed into this node's windows and buffer ([`consume`]), and the
//! fleet view shared through another bucket ([`view`]).

pub mod consume;
pub mod leases;
pub mod publish;
pub mod reconcile;
pub mod training;
pub mod view;

use crate::state::cluster::{ClusterState, Handles};
use crate::state::App;
use async_nats::jetstream::{self, stream};
use nordiq_core::config::Config;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Why cluster mode could not start.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error(transparent)]
    Connect(#[from] nordiq_cluster::ConnectError),
    #[error("cannot create or open {what} in JetStream: {message}; is JetStream enabled on the NATS servers, with enough of them up for {replicas} replicas?")]
    Setup {
        what: String,
        message: String,
        replicas: usize,
    },
    #[error("cannot reconcile the log a crash left with the cluster: {0}")]
    Log(String),
}

/// Connects to NATS (the client keeps reconnecting on its own). The stream and buckets
/// are made later, by [`run`], so a node starts while NATS is down.
pub async fn connect(config: &Config) -> Result<ClusterState, ClusterError> {
    let c = &config.cluster;
    let node = nordiq_cluster::node_name(c);
    let (client, js) = nordiq_cluster::connect(c, &format!("nordiq-inference {node}")).await?;
    Ok(ClusterState {
        node,
        config: c.clone(),
        width: config.metrics.len(),
        client,
        js,
        handles: Default::default(),
        owned: Default::default(),
        membership: Default::default(),
        fleet: Default::default(),
        counters: Default::default(),
        training: Default::default(),
        model_sync: Default::default(),
    })
}

/// Creates (or opens, when another node made them) the stream and the buckets.
pub async fn setup(cluster: &ClusterState) -> Result<Handles, ClusterError> {
    let c = &cluster.config;
    let setup_error = |what: String| {
        move |e: &dyn std::fmt::Display| ClusterError::Setup {
            what,
            message: e.to_string(),
            replicas: c.replicas,
        }
    };
    let name = cluster.stream_name();
    let stream = cluster
        .js
        .get_or_create_stream(stream::Config {
            name: name.clone(),
            subjects: vec![format!("{}.ingest.*", c.prefix)],
            num_replicas: c.replicas,
            max_age: Duration::from_secs(c.retention_hours * 3600),
            duplicate_window: Duration::from_secs(c.duplicate_window_seconds),
            storage: stream::StorageType::File,
            ..Default::default()
        })
        .await
        .map_err(|e| setup_error(format!("stream {name}"))(&e))?;
    let lease = Duration::from_secs(c.lease_seconds);
    let retention = Duration::from_secs(c.retention_hours * 3600);
    let mut stores = Vec::new();
    let day = Duration::from_secs(86_400);
    for (name, max_age, history) in [
        ("leases", lease, 1),
        ("nodes", lease, 1),
        ("views", Duration::ZERO, 1),
        ("claims", retention, 64),
        ("exports", day, 1),
        ("model", Duration::ZERO, 1),
    ] {
        let bucket = cluster.bucket(name);
        // The bucket's stream made here, as the key-value convention lays it out: the
        // client's own create asks the account for limits a 2.9 server does not describe.
        cluster
            .js
            .get_or_create_stream(stream::Config {
                name: format!("KV_{bucket}"),
                subjects: vec![format!("$KV.{bucket}.>")],
                max_messages_per_subject: history,
                max_age,
                num_replicas: c.replicas,
                storage: stream::StorageType::File,
                allow_rollup: true,
                deny_delete: true,
                allow_direct: true,
                discard: stream::DiscardPolicy::New,
                ..Default::default()
            })
            .await
            .map_err(|e| setup_error(format!("bucket {bucket}"))(&e))?;
        let store = cluster
            .js
            .get_key_value(&bucket)
            .await
            .map_err(|e| setup_error(format!("bucket {bucket}"))(&e))?;
        stores.push(store);
    }
    let mut objects = Vec::new();
    for (name, max_age) in [("exports", day), ("models", Duration::ZERO)] {
        let bucket = cluster.bucket(name);
        let store = match cluster.js.get_object_store(&bucket).await {
            Ok(store) => store,
            Err(_) => cluster
                .js
                .create_object_store(jetstream::object_store::Config {
                    bucket: bucket.clone(),
                    max_age,
                    num_replicas: c.replicas,
                    storage: stream::StorageType::File,
                    ..Default::default()
                })
                .await
                .map_err(|e| setup_error(format!("object store {bucket}"))(&e))?,
        };
        objects.push(store);
    }
    let mut stores = stores.into_iter();
    let mut next = || stores.next().expect("six buckets were made");
    let mut objects = objects.into_iter();
    let mut next_object = || objects.next().expect("two object stores were made");
    Ok(Handles {
        stream,
        leases: next(),
        nodes: next(),
        views: next(),
        claims: next(),
        exports: next(),
        model: next(),
        export_files: next_object(),
        model_files: next_object(),
    })
}

/// Runs cluster mode until `shutdown`: makes the stream and buckets (retrying while NATS
/// is away), then keeps the leases and the fleet view; at shutdown gives every shard up,
/// so the others take them at once instead of after the lease expires.
pub async fn run(app: Arc<App>, cluster: Arc<ClusterState>, shutdown: CancellationToken) {
    let mut delay = Duration::from_millis(500);
    let handles = loop {
        if let Some(h) = cluster.handles.load_full() {
            break h; // made at start, reconciling a crash's log
        }
        match setup(&cluster).await {
            Ok(h) => break Arc::new(h),
            Err(e) => {
                tracing::warn!(error = %e, "cluster not set up yet; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = shutdown.cancelled() => return,
                }
                delay = (delay * 2).min(Duration::from_secs(10));
            }
        }
    };
    cluster.handles.store(Some(Arc::clone(&handles)));
    tracing::info!(
        node = %cluster.node,
        shards = cluster.config.shards,
        replicas = cluster.config.replicas,
        "cluster mode: stream and buckets ready"
    );
    let views = tokio::spawn(view::merge_loop(
        Arc::clone(&app),
        Arc::clone(&cluster),
        shutdown.clone(),
    ));
    tokio::spawn(training::serve_exports(
        Arc::clone(&app),
        Arc::clone(&cluster),
        shutdown.clone(),
    ));
    tokio::spawn(training::follow_models(
        Arc::clone(&app),
        Arc::clone(&cluster),
        shutdown.clone(),
    ));
    leases::run(&app, &cluster, &handles, &shutdown).await;
    leases::release_all(&app, &cluster, &handles).await;
    let _ = views.await;
}
