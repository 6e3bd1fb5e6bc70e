//! Ingest in a cluster: a validated batch is published to the stream, one message per
//! shard with `<batch id>:<shard>` as its JetStream message id (`nordiq_cluster::publish`),
//! so a retried batch is stored once. The answer waits for JetStream's acknowledgement of
//! every part: from then on the samples are as durable as the stream (replicated on a
//! majority of its servers).

use crate::services::ingest::{answer, mixed_batch_rule, repeat_answer, IngestError};
use crate::state::cluster::ClusterState;
use nordiq_core::api::IngestResponse;
use nordiq_core::config::MixedBatchPolicy;
use nordiq_core::ingest::Validated;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

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
    let (rejected_records, apply) = mixed_batch_rule(&validated, policy);
    let accepted = if apply { validated.samples.len() } else { 0 };
    if accepted > 0 {
        let id = batch_id.unwrap_or_else(|| fresh_batch_id(&cluster.node));
        let counters = &cluster.counters;
        match nordiq_cluster::publish(
            &cluster.js,
            &cluster.config,
            &cluster.node,
            validated.samples.iter().map(|(_, s)| s),
            &id,
        )
        .await
        {
            Ok(published) => {
                counters
                    .published
                    .fetch_add(published.parts as u64, Ordering::Relaxed);
                counters
                    .published_duplicates
                    .fetch_add(published.repeats as u64, Ordering::Relaxed);
                if published.repeats == published.parts {
                    return Ok(repeat_answer(validated.records, policy));
                }
            }
            Err(e) => {
                counters
                    .publish_failures
                    .fetch_add(e.failed as u64, Ordering::Relaxed);
                tracing::warn!(error = %e, batch = %id, "a batch could not be published to the stream; refused with 503");
                return Err(IngestError::Publish(e.to_string()));
            }
        }
    }
    Ok(answer(validated, accepted, rejected_records, apply, policy))
}
