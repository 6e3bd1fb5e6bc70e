//! After a crash, before the buffer rolls the log it left: the messages this node wrote
//! but had not acknowledged were delivered again to whoever took their shard, so they are
//! dropped here (the rule is `nordiq_core::cluster::keeps_logged`, on the shard's claims).
//! A clean stop leaves no log behind, and needs none of this.

use super::consume::parse_batch_id;
use super::ClusterError;
use crate::state::cluster::ClusterState;
use futures_util::StreamExt;
use nordiq_core::cluster::{keeps_logged, Lease};
use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a crashed node waits for NATS to decide what its log keeps.
const WAIT_FOR_NATS: Duration = Duration::from_secs(60);

/// What was dropped from the log.
#[derive(Debug, Default)]
pub struct Reconciled {
    pub frames: usize,
    pub samples: usize,
    pub shards: usize,
}

/// Drops from the buffer's leftover log at `buffer_root` what other nodes took over.
pub async fn reconcile(
    cluster: &ClusterState,
    buffer_root: &Path,
) -> Result<Reconciled, ClusterError> {
    let io = |e: nordiq_buffer::BufferError| ClusterError::Log(e.to_string());
    let logged: Vec<(u32, u64)> = nordiq_buffer::logged_batch_ids(buffer_root)
        .map_err(io)?
        .iter()
        .filter_map(|id| parse_batch_id(id))
        .collect();
    if logged.is_empty() {
        return Ok(Reconciled::default());
    }
    let shards: BTreeSet<u32> = logged.iter().map(|(s, _)| *s).collect();
    let started = Instant::now();
    let handles = loop {
        match super::setup(cluster).await {
            Ok(h) => break Arc::new(h),
            Err(e) if started.elapsed() < WAIT_FOR_NATS => {
                tracing::warn!(error = %e, "waiting for NATS to reconcile the log of the previous run");
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            Err(e) => return Err(e),
        }
    };
    cluster.handles.store(Some(Arc::clone(&handles)));
    let mut claims: HashMap<u32, Vec<Lease>> = HashMap::new();
    for shard in &shards {
        let key = format!("shard.{shard}");
        let mut history = handles
            .claims
            .history(&key)
            .await
            .map_err(|e| ClusterError::Log(format!("claims of {key}: {e}")))?;
        let mut list = Vec::new();
        while let Some(entry) = history.next().await {
            let entry = entry.map_err(|e| ClusterError::Log(format!("claims of {key}: {e}")))?;
            if let Ok(lease) = serde_json::from_slice::<Lease>(&entry.value) {
                list.push(lease);
            }
        }
        claims.insert(*shard, list);
    }
    let me = cluster.node.clone();
    let drop = move |id: &str| {
        parse_batch_id(id).is_some_and(|(shard, seq)| {
            !keeps_logged(&me, seq, claims.get(&shard).map_or(&[], |c| c.as_slice()))
        })
    };
    let dropped = nordiq_buffer::drop_logged_batches(buffer_root, &drop).map_err(io)?;
    Ok(Reconciled {
        frames: dropped.frames,
        samples: dropped.samples,
        shards: shards.len(),
    })
}
