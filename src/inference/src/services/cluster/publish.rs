//! Ingest in a cluster: a validated batch is split by shard and each part published to
//! the shard's subject with `<batch id>:<shard>` as its JetStream message id, so a retried
//! batch is stored once. The answer waits for JetStream's acknowledgement of every part:
//! from then on the samples are as durable as the stream (replicated on a majority of its
//! servers).

use crate::services::ingest::{policy_name, IngestError};
use crate::state::cluster::ClusterState;
use async_nats::jetstream::message::PublishMessage as Publish;
use nordiq_core::api::IngestResponse;
use nordiq_core::cluster::shard_of;
use nordiq_core::config::MixedBatchPolicy;
use nordiq_core::ingest::{Sample, Validated};
use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Header naming the node that published a message (for operators reading the stream).
pub const NODE_HEADER: &str = "Nordiq-Node";

/// A batch id for a batch that came without one: unique across nodes and restarts.
fn fresh_batch_id(node: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "{node}-{}-{}",
        nordiq_core::timefmt::now_ms(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Publishes `validated` by the mixed-batch `policy`; the answer is the one a single node
/// gives, once JetStream has every part.
pub async fn publish(
    cluster: &Arc<ClusterState>,
    validated: Validated,
    policy: MixedBatchPolicy,
    batch_id: Option<String>,
) -> Result<IngestResponse, IngestError> {
    let bad: HashSet<usize> = validated.errors.iter().map(|e| e.index).collect();
    let apply = validated.errors.is_empty() || policy == MixedBatchPolicy::AcceptValid;
    let accepted = if apply { validated.samples.len() } else { 0 };
    let mut duplicate = false;
    if accepted > 0 {
        let id = batch_id.unwrap_or_else(|| fresh_batch_id(&cluster.node));
        let mut parts: BTreeMap<u32, Vec<&Sample>> = BTreeMap::new();
        for (_, s) in &validated.samples {
            parts
                .entry(shard_of(&s.server, cluster.config.shards))
                .or_default()
                .push(s);
        }
        let mut acks = Vec::with_capacity(parts.len());
        for (shard, samples) in &parts {
            let payload = nordiq_buffer::wal::encode_message(
                samples.iter().copied(),
                Some(&format!("{id}:{shard}")),
            );
            let message = Publish::build()
                .payload(payload.into())
                .message_id(format!("{id}:{shard}"))
                .header(NODE_HEADER, cluster.node.as_str());
            let sent = cluster
                .js
                .send_publish(cluster.subject(*shard), message)
                .await;
            acks.push(sent);
        }
        let mut failure = None;
        let mut repeats = 0;
        for sent in acks {
            let outcome = match sent {
                Ok(ack) => ack.await.map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            match outcome {
                Ok(ack) => {
                    cluster.counters.published.fetch_add(1, Ordering::Relaxed);
                    if ack.duplicate {
                        repeats += 1;
                        cluster
                            .counters
                            .published_duplicates
                            .fetch_add(1, Ordering::Relaxed);
                    }
                }
                Err(e) => {
                    cluster
                        .counters
                        .publish_failures
                        .fetch_add(1, Ordering::Relaxed);
                    failure.get_or_insert(e);
                }
            }
        }
        if let Some(e) = failure {
            tracing::warn!(error = %e, batch = %id, "a batch could not be published to the stream; refused with 503");
            return Err(IngestError::Publish(e));
        }
        duplicate = repeats == parts.len();
    }
    let rejected_records = bad.len();
    let summary = (rejected_records > 0).then(|| {
        let action = if apply {
            "the other records were applied"
        } else {
            "nothing was applied (mixed_batch = reject_all; fix or drop them and resend, or use ?on_error=accept_valid)"
        };
        format!(
            "{rejected_records} of {} records rejected; {action}",
            validated.records
        )
    });
    let mut rejected = validated.errors;
    rejected.truncate(1000);
    Ok(IngestResponse {
        records: validated.records,
        accepted: if duplicate { 0 } else { accepted },
        rejected_records,
        rejected,
        policy: policy_name(policy).into(),
        error: summary,
        duplicate_batch: duplicate,
    })
}
