//! A held shard's consumer: first the shard's windows are rebuilt from the stream (what
//! earlier owners had acknowledged), then its durable pull consumer is read — each message
//! applied to this node's buffer and windows like a local batch, and acknowledged only
//! once the buffer's log holding it is fsynced.

use crate::services::ingest;
use crate::state::cluster::{ClusterState, Handles};
use crate::state::App;
use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy, PullConsumer};
use async_nats::jetstream::AckKind;
use futures_util::StreamExt;
use nordiq_core::config::MixedBatchPolicy;
use nordiq_core::ingest::Validated;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Messages fetched per pull.
const FETCH: usize = 64;

/// A message not acknowledged within this is delivered again, to whoever holds the shard
/// then. Two thirds of the lease: by the time a dead node's lease has expired, what it had
/// fetched is due again, so the next owner receives it before anything newer and the
/// shard's messages are applied and acknowledged in stream order.
fn ack_wait(cluster: &ClusterState) -> Duration {
    Duration::from_millis((cluster.config.lease_seconds * 1000 * 2 / 3).clamp(2_000, 30_000))
}

/// The shard's durable consumer (shared by every node: its position is the cluster's).
pub async fn durable(
    cluster: &ClusterState,
    handles: &Handles,
    shard: u32,
) -> Result<PullConsumer, String> {
    let name = format!("shard-{shard}");
    handles
        .stream
        .get_or_create_consumer(
            &name,
            pull::Config {
                durable_name: Some(name.clone()),
                filter_subject: cluster.subject(shard),
                ack_policy: AckPolicy::Explicit,
                ack_wait: ack_wait(cluster),
                max_ack_pending: 4 * FETCH as i64,
                deliver_policy: DeliverPolicy::All,
                ..Default::default()
            },
        )
        .await
        .map_err(|e| format!("consumer {name}: {e}"))
}

/// The local batch id of stream message `seq` of `shard`: the same at every delivery, so
/// a redelivery to this node is recognised (the buffer's batch-id log remembers it across
/// restarts) and a crashed node can tell which of its messages another node took over.
pub fn batch_id(shard: u32, seq: u64) -> String {
    format!("nats:{shard}:{seq}")
}

/// Parses [`batch_id`].
pub fn parse_batch_id(id: &str) -> Option<(u32, u64)> {
    let rest = id.strip_prefix("nats:")?;
    let (shard, seq) = rest.split_once(':')?;
    Some((shard.parse().ok()?, seq.parse().ok()?))
}

/// Whether this node's lease on `shard` is fresh enough to act on: past two thirds of
/// `lease_seconds` without a renewal, another node may take it any moment.
fn lease_fresh(cluster: &ClusterState, shard: u32) -> bool {
    let limit = Duration::from_millis(cluster.config.lease_seconds * 1000 * 2 / 3);
    cluster
        .owned
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&shard)
        .is_some_and(|o| o.renewed.elapsed() < limit)
}

/// Consumes `shard` through its durable `consumer` until `stop`: rebuilds its windows
/// from the stream up to `floor` (the consumer's acknowledged floor when the shard was
/// taken), then applies new messages.
pub async fn run(
    app: Arc<App>,
    cluster: Arc<ClusterState>,
    handles: Arc<Handles>,
    shard: u32,
    floor: u64,
    mut consumer: PullConsumer,
    stop: CancellationToken,
) {
    rebuild(&app, &cluster, &handles, shard, floor, &stop).await;
    // Messages a dead owner had fetched must come first: wait until they are due again.
    if consumer.info().await.is_ok_and(|i| i.num_ack_pending > 0) {
        pause(&stop, ack_wait(&cluster)).await;
    }
    while !stop.is_cancelled() {
        if !lease_fresh(&cluster, shard) {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(200)) => continue,
                _ = stop.cancelled() => break,
            }
        }
        let batch = consumer
            .fetch()
            .max_messages(FETCH)
            .expires(Duration::from_secs(1))
            .messages()
            .await;
        let mut batch = match batch {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(shard, error = %e, "fetching from the stream failed; retrying");
                pause(&stop, Duration::from_secs(1)).await;
                continue;
            }
        };
        // Strictly in stream order: once one message cannot be applied (or the shard is
        // no longer ours), it and every later one of the batch go back, in order, so
        // acknowledgements never overtake each other (what a crash recovery relies on).
        let mut give_back = false;
        while let Some(message) = batch.next().await {
            let Ok(message) = message else { break };
            give_back = give_back || stop.is_cancelled() || !lease_fresh(&cluster, shard);
            if give_back || !apply(&app, &cluster, shard, &message, &stop).await {
                give_back = true;
                let _ = message.ack_with(AckKind::Nak(None)).await;
            }
        }
        if give_back {
            pause(&stop, Duration::from_secs(1)).await;
        }
    }
}

async fn pause(stop: &CancellationToken, d: Duration) {
    tokio::select! {
        _ = tokio::time::sleep(d) => {}
        _ = stop.cancelled() => {}
    }
}

/// Applies one message to the buffer and windows and acknowledges it; false when the
/// buffer could not take it (it will come again).
async fn apply(
    app: &Arc<App>,
    cluster: &ClusterState,
    shard: u32,
    message: &async_nats::jetstream::Message,
    stop: &CancellationToken,
) -> bool {
    let seq = match message.info() {
        Ok(info) => info.stream_sequence,
        Err(e) => {
            tracing::warn!(shard, error = %e, "a stream message without its metadata; skipped");
            return true;
        }
    };
    let Some((_, samples)) = nordiq_buffer::wal::decode_message(&message.payload, cluster.width)
    else {
        tracing::error!(
            shard,
            seq,
            bytes = message.payload.len(),
            "a stream message does not decode (another catalog or version?); dropped"
        );
        let _ = message.ack_with(AckKind::Term).await;
        return true;
    };
    let config = app.config.load_full();
    let validated = Validated {
        records: samples.len(),
        samples: samples.into_iter().enumerate().collect(),
        errors: Vec::new(),
    };
    match ingest::apply_local(
        app,
        &config,
        validated,
        MixedBatchPolicy::AcceptValid,
        Some(batch_id(shard, seq)),
    )
    .await
    {
        Ok(outcome) => {
            if !outcome.rejected.is_empty() {
                tracing::warn!(shard, seq, first = ?outcome.rejected.first(), "records of a stream message refused here");
            }
            // Written: the acknowledgement must reach JetStream before anything later.
            let mut tries = 0u32;
            while let Err(e) = message.double_ack().await {
                tries += 1;
                if !lease_fresh(cluster, shard) || stop.is_cancelled() {
                    tracing::error!(
                        shard,
                        seq,
                        error = %e,
                        "a message written here could not be acknowledged before the lease ran out: the next owner applies it too (see docs/cluster.md)"
                    );
                    break;
                }
                if tries == 1 {
                    tracing::warn!(shard, seq, error = %e, "acknowledging a message failed; retrying");
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            cluster.counters.consumed.fetch_add(1, Ordering::Relaxed);
            true
        }
        Err(e) => {
            tracing::warn!(shard, seq, error = %e, "cannot apply a stream message; it will come again");
            false
        }
    }
}

/// Replays the shard's messages up to `floor` (acknowledged by earlier owners, so in
/// their buffers, not ours) into the windows only, from as far back as the windows reach.
async fn rebuild(
    app: &Arc<App>,
    cluster: &ClusterState,
    handles: &Handles,
    shard: u32,
    floor: u64,
    stop: &CancellationToken,
) {
    if floor == 0 {
        return;
    }
    let config = app.config.load_full();
    let reach = (config.history_steps() as u64 * config.model.step_seconds as u64)
        .min(cluster.config.retention_hours * 3600);
    let start = time::OffsetDateTime::now_utc() - Duration::from_secs(reach);
    // The stream may be electing a leader (a NATS server just died): ask again for a while
    // rather than start the shard's windows cold.
    let mut tries = 0;
    let mut messages = loop {
        let ordered = handles
            .stream
            .create_consumer(pull::OrderedConfig {
                filter_subject: cluster.subject(shard),
                deliver_policy: DeliverPolicy::ByStartTime { start_time: start },
                ..Default::default()
            })
            .await;
        let outcome = match ordered {
            Ok(c) => c.messages().await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match outcome {
            Ok(m) => break m,
            Err(e) if tries < 10 && !stop.is_cancelled() => {
                tries += 1;
                tracing::debug!(shard, error = %e, "replaying the shard failed; retrying");
                pause(stop, Duration::from_secs(2)).await;
            }
            Err(e) => {
                tracing::warn!(shard, error = %e, "cannot replay the shard; its windows start cold");
                return;
            }
        }
    };
    let started = std::time::Instant::now();
    let mut samples_total = 0u64;
    loop {
        let next = tokio::select! {
            n = tokio::time::timeout(Duration::from_secs(3), messages.next()) => n,
            _ = stop.cancelled() => return,
        };
        let Ok(Some(Ok(message))) = next else { break };
        let Ok(info) = message.info() else { continue };
        if info.stream_sequence > floor {
            break;
        }
        let pending = info.pending;
        if let Some((_, samples)) =
            nordiq_buffer::wal::decode_message(&message.payload, cluster.width)
        {
            let (reservation, refused) =
                app.store.reserve(samples.iter().map(|s| s.server.as_str()));
            let kept = samples.iter().filter(|s| !refused.contains(&s.server));
            app.store.apply(kept, reservation);
            samples_total += samples.len() as u64;
        }
        if pending == 0 {
            break;
        }
    }
    cluster
        .counters
        .rebuilt_samples
        .fetch_add(samples_total, Ordering::Relaxed);
    tracing::info!(
        shard,
        samples = samples_total,
        up_to_seq = floor,
        seconds = started.elapsed().as_secs_f64(),
        "shard windows rebuilt from the stream"
    );
}
