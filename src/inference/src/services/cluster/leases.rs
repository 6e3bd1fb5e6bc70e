//! Shard leases. Every `lease_seconds / 3` a node writes its heartbeat, reads who is alive,
//! computes which shards it should hold (`nordiq_core::cluster::assign`, the same answer
//! on every node), renews the leases it holds, gives up those now meant for another node
//! (a rebalance when a node joins) and takes free ones meant for it. A lease is a key in a
//! bucket whose entries expire after `lease_seconds`: a node that dies stops renewing, its
//! heartbeat and leases expire, and the others take its shards.

use super::consume;
use crate::state::cluster::{ClusterState, Handles, Membership, Owned};
use crate::state::App;
use async_nats::jetstream::kv::{self, Operation};
use futures_util::future::join_all;
use futures_util::StreamExt;
use nordiq_core::api::ClusterShard;
use nordiq_core::cluster::{assign, shard_of, Lease, TrainingLease};
use nordiq_core::timefmt::{format_ms, now_ms};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// The key of the cluster's training lease (one job at a time cluster-wide).
pub fn lease_key_training() -> &'static str {
    "training"
}

fn lease_key(shard: u32) -> String {
    format!("shard.{shard}")
}

fn node_key(node: &str) -> String {
    format!("node.{node}")
}

fn encode(lease: &Lease) -> bytes::Bytes {
    serde_json::to_vec(lease).unwrap_or_default().into()
}

/// Keeps the leases until `shutdown`.
pub async fn run(
    app: &Arc<App>,
    cluster: &Arc<ClusterState>,
    handles: &Arc<Handles>,
    shutdown: &CancellationToken,
) {
    let every = Duration::from_millis((cluster.config.lease_seconds * 1000 / 3).max(1000));
    // A round never outlasts half a lease: a call NATS leaves unanswered (a server gone
    // mid-request, a stream electing its leader) must not stop the renewals that follow.
    let bound = Duration::from_millis((cluster.config.lease_seconds * 1000 / 2).max(1500));
    loop {
        match tokio::time::timeout(bound, round(app, cluster, handles)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "cluster lease round failed; retrying"),
            Err(_) => tracing::warn!(
                seconds = bound.as_secs_f64(),
                "cluster lease round did not finish in time; starting the next"
            ),
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}

/// The live nodes: those whose heartbeat has not expired.
pub(super) async fn live_nodes(handles: &Handles) -> Result<Vec<String>, String> {
    let listing = async {
        let mut keys = handles.nodes.keys().await.map_err(|e| e.to_string())?;
        let mut nodes = Vec::new();
        while let Some(key) = keys.next().await {
            let key = key.map_err(|e| e.to_string())?;
            if let Some(node) = key.strip_prefix("node.") {
                nodes.push(node.to_string());
            }
        }
        // A heartbeat written while the listing runs shows its key twice.
        nodes.sort();
        nodes.dedup();
        Ok(nodes)
    };
    tokio::time::timeout(Duration::from_secs(3), listing)
        .await
        .unwrap_or_else(|_| Err("listing the live nodes timed out".into()))
}

async fn round(
    app: &Arc<App>,
    cluster: &Arc<ClusterState>,
    handles: &Arc<Handles>,
) -> Result<(), String> {
    // Renewals first, all at once: a slow round (NATS electing a leader) must not let
    // the leases this node holds expire.
    let held = cluster.owned_shards();
    join_all(held.iter().map(|&shard| renew(cluster, handles, shard))).await;
    // Past the lease without a renewal: another node may hold it now. Stop acting on it.
    let lease = Duration::from_secs(cluster.config.lease_seconds);
    for shard in cluster.owned_shards() {
        let stale = cluster
            .owned
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&shard)
            .is_some_and(|o| o.renewed.elapsed() >= lease);
        if stale {
            tracing::warn!(
                shard,
                "a shard lease could not be renewed in time; giving the shard up"
            );
            give_up_later(app, cluster, handles, shard, false);
        }
    }
    handles
        .nodes
        .put(node_key(&cluster.node), now_ms().to_string().into())
        .await
        .map_err(|e| format!("heartbeat: {e}"))?;
    let nodes = live_nodes(handles).await?;
    let wanted = assign(cluster.config.shards, &nodes);
    let all: Vec<u32> = (0..cluster.config.shards).collect();
    let holders: Vec<Option<Lease>> =
        join_all(all.iter().map(|&shard| holder(handles, shard))).await;
    for (&shard, (wanted, holder)) in all.iter().zip(wanted.iter().zip(&holders)) {
        let for_me = wanted.as_deref() == Some(cluster.node.as_str());
        if cluster.owns(shard) {
            if !for_me {
                tracing::info!(shard, to = ?wanted, "giving the shard to another node (rebalance)");
                give_up_later(app, cluster, handles, shard, true);
            } else if holder.as_ref().is_some_and(|h| h.node != cluster.node) {
                tracing::warn!(shard, holder = ?holder, "another node holds a shard this node thought its own; giving it up");
                give_up_later(app, cluster, handles, shard, false);
            }
        } else if for_me && holder.is_none() {
            claim(app, cluster, handles, shard).await;
        }
    }
    let pending: Vec<Option<u64>> = join_all(all.iter().map(|&shard| async move {
        let info = handles
            .stream
            .consumer_info(format!("shard-{shard}"))
            .await
            .ok()?;
        Some(info.num_pending + info.num_ack_pending as u64)
    }))
    .await;
    let shards = all
        .iter()
        .zip(holders)
        .zip(pending)
        .map(|((&shard, holder), pending)| ClusterShard {
            shard,
            owner: if cluster.owns(shard) {
                Some(cluster.node.clone())
            } else {
                holder.map(|l| l.node).filter(|n| n != &cluster.node)
            },
            pending,
        })
        .collect();
    let training = training_round(cluster, handles).await;
    cluster.membership.store(Arc::new(Membership {
        nodes,
        training,
        shards,
        checked_at: format_ms(now_ms()),
    }));
    Ok(())
}

/// Renews the training lease while this node's job lives; says who holds it.
async fn training_round(cluster: &ClusterState, handles: &Handles) -> Option<String> {
    let held = cluster
        .training
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .as_ref()
        .map(|h| (h.job_id.clone(), h.revision));
    if let Some((job_id, revision)) = held {
        let lease = TrainingLease {
            node: cluster.node.clone(),
            job_id,
        };
        let value: bytes::Bytes = serde_json::to_vec(&lease).unwrap_or_default().into();
        let renewed = renew_key(
            &handles.leases,
            lease_key_training(),
            value,
            revision,
            |current: &TrainingLease| *current == lease,
        )
        .await;
        match renewed {
            Ok(r) => {
                if let Some(h) = cluster
                    .training
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .as_mut()
                {
                    h.revision = r;
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not renew the cluster's training lease"),
        }
    }
    live_value::<TrainingLease>(&handles.leases, lease_key_training())
        .await
        .ok()
        .flatten()
        .map(|(l, _)| format!("{} on {}", l.job_id, l.node))
}

/// The value `key` holds now and its revision (None: absent, deleted, expired, or not a
/// `T`).
pub(super) async fn live_value<T: serde::de::DeserializeOwned>(
    store: &kv::Store,
    key: &str,
) -> Result<Option<(T, u64)>, String> {
    match store.entry(key).await.map_err(|e| e.to_string())? {
        Some(e) if e.operation == Operation::Put => Ok(serde_json::from_slice::<T>(&e.value)
            .ok()
            .map(|v| (v, e.revision))),
        _ => Ok(None),
    }
}

/// Who holds `shard` now (None: free, or unreadable this round).
async fn holder(handles: &Handles, shard: u32) -> Option<Lease> {
    live_value::<Lease>(&handles.leases, &lease_key(shard))
        .await
        .ok()
        .flatten()
        .map(|(lease, _)| lease)
}

/// Writes lease `key` anew over `revision`; its new revision. When that update is
/// refused: the key still `ours` at another revision (an update went through but its
/// answer was lost) is carried on from there; expired and free (NATS was away longer than
/// the lease), it is taken again; someone else's, the error stands.
async fn renew_key<T: serde::de::DeserializeOwned>(
    store: &kv::Store,
    key: &str,
    value: bytes::Bytes,
    revision: u64,
    ours: impl Fn(&T) -> bool,
) -> Result<u64, String> {
    let refused = match store.update(key, value.clone(), revision).await {
        Ok(revision) => return Ok(revision),
        Err(e) => e.to_string(),
    };
    match live_value::<T>(store, key).await {
        Ok(Some((current, revision))) if ours(&current) => store
            .update(key, value, revision)
            .await
            .map_err(|e| e.to_string()),
        Ok(None) => store.create(key, value).await.map_err(|e| e.to_string()),
        _ => Err(refused),
    }
}

async fn renew(cluster: &ClusterState, handles: &Handles, shard: u32) {
    let (revision, from_seq) = {
        let owned = cluster.owned.lock().unwrap_or_else(|p| p.into_inner());
        match owned.get(&shard) {
            Some(o) => (o.revision, o.from_seq),
            None => return,
        }
    };
    let lease = Lease {
        node: cluster.node.clone(),
        from_seq,
    };
    let written = Instant::now();
    let renewed = renew_key(
        &handles.leases,
        &lease_key(shard),
        encode(&lease),
        revision,
        |current: &Lease| current.node == cluster.node,
    )
    .await;
    match renewed {
        Ok(revision) => {
            if let Some(o) = cluster
                .owned
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get_mut(&shard)
            {
                o.revision = revision;
                o.renewed = written;
            }
        }
        // Someone else's, or NATS unreachable: the round gives the shard up once the
        // lease is stale.
        Err(e) => tracing::warn!(shard, error = %e, "could not renew a shard lease"),
    }
}

/// Takes `shard` if its lease is free: records from which stream sequence this node
/// consumes (the consumer's acknowledged floor + 1), then starts its consumer.
async fn claim(app: &Arc<App>, cluster: &Arc<ClusterState>, handles: &Arc<Handles>, shard: u32) {
    let key = lease_key(shard);
    let mut lease = Lease {
        node: cluster.node.clone(),
        from_seq: 0,
    };
    let taken_at = Instant::now();
    let Ok(revision) = handles.leases.create(&key, encode(&lease)).await else {
        return; // another node was faster
    };
    let mut consumer = match consume::durable(cluster, handles, shard).await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(shard, error = %e, "cannot open the shard's consumer; leaving the lease to expire");
            return;
        }
    };
    let floor = match consumer.info().await {
        Ok(info) => info.ack_floor.stream_sequence,
        Err(e) => {
            tracing::warn!(shard, error = %e, "cannot read the shard's consumer; leaving the lease to expire");
            return;
        }
    };
    lease.from_seq = floor + 1;
    if let Err(e) = handles.claims.put(&key, encode(&lease)).await {
        tracing::warn!(shard, error = %e, "cannot record the claim; leaving the lease to expire");
        return;
    }
    let revision = match handles.leases.update(&key, encode(&lease), revision).await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(shard, error = %e, "lost the lease while taking it");
            return;
        }
    };
    let stop = CancellationToken::new();
    let task = tokio::spawn(consume::run(
        Arc::clone(app),
        Arc::clone(cluster),
        Arc::clone(handles),
        shard,
        floor,
        consumer,
        stop.clone(),
    ));
    cluster
        .owned
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(
            shard,
            Owned {
                revision,
                renewed: taken_at,
                stop,
                task: Some(task),
                from_seq: floor + 1,
            },
        );
    cluster.counters.claims.fetch_add(1, Ordering::Relaxed);
    tracing::info!(shard, from_seq = floor + 1, "took a shard");
}

/// Takes `shard` out of the held set and tells its consumer to stop (it finishes the
/// message in hand); None when this node does not hold it.
fn stop_holding(cluster: &ClusterState, shard: u32) -> Option<Owned> {
    let owned = cluster
        .owned
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&shard)?;
    owned.stop.cancel();
    Some(owned)
}

/// Ends a shard [`stop_holding`] took out: waits for its consumer, drops the shard's
/// servers from this node's windows (when `drop_windows`), then deletes the lease (when
/// `delete_lease`) so the next holder need not wait for it to expire.
async fn finish_giving_up(
    app: &App,
    cluster: &ClusterState,
    handles: &Handles,
    shard: u32,
    mut owned: Owned,
    drop_windows: bool,
    delete_lease: bool,
) {
    if let Some(task) = owned.task.take() {
        let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
    }
    if drop_windows {
        let shards = cluster.config.shards;
        let dropped = app.store.remove_where(|s| shard_of(s, shards) == shard);
        tracing::debug!(shard, servers = dropped, "dropped the shard's windows");
    }
    if delete_lease {
        if let Err(e) = handles
            .leases
            .delete_expect_revision(lease_key(shard), Some(owned.revision))
            .await
        {
            tracing::warn!(shard, error = %e, "could not delete the lease; it expires by itself");
        }
    }
    cluster.counters.releases.fetch_add(1, Ordering::Relaxed);
}

/// Gives `shard` up in a task of its own, so that a lease round cut short (it is bounded)
/// never leaves a shard half given up: out of `owned` at once, its windows dropped once
/// its consumer has stopped.
fn give_up_later(
    app: &Arc<App>,
    cluster: &Arc<ClusterState>,
    handles: &Arc<Handles>,
    shard: u32,
    delete_lease: bool,
) {
    let Some(owned) = stop_holding(cluster, shard) else {
        return;
    };
    let (app, cluster, handles) = (Arc::clone(app), Arc::clone(cluster), Arc::clone(handles));
    tokio::spawn(async move {
        finish_giving_up(&app, &cluster, &handles, shard, owned, true, delete_lease).await;
    });
}

/// At shutdown: every shard given up and the heartbeat removed, so the other nodes take
/// the shards at their next round.
pub async fn release_all(app: &App, cluster: &ClusterState, handles: &Handles) {
    for shard in cluster.owned_shards() {
        if let Some(owned) = stop_holding(cluster, shard) {
            finish_giving_up(app, cluster, handles, shard, owned, false, true).await;
        }
    }
    let _ = handles.nodes.delete(node_key(&cluster.node)).await;
}
