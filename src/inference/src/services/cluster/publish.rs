//! Ingest in a cluster: a validated batch is published to the stream, one message per
//! shard with `<batch id>:<shard>` as its JetStream message id (`nordiq_cluster::publish`),
//! so a retried batch is stored once. The answer waits for JetStream's acknowledgement of
//! every part: from then on the samples are as durable as the stream (replicated on a
//! majority of its servers).

use crate::services::ingest::{policy_name, IngestError, MAX_LISTED_ERRORS};
use crate::state::cluster::ClusterState;
use nordiq_core::api::IngestResponse;
use nordiq_core::config::MixedBatchPolicy;
use nordiq_core::ingest::Validated;
use std::collections::HashSet;
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
    let bad: HashSet<usize> = validated.errors.iter().map(|e| e.index).collect();
    let apply = validated.errors.is_empty() || policy == MixedBatchPolicy::AcceptValid;
    let accepted = if apply { validated.samples.len() } else { 0 };
    let mut duplicate = false;
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
                duplicate = published.repeats == published.parts;
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
    rejected.truncate(MAX_LISTED_ERRORS);
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
