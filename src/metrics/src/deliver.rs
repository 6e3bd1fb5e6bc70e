//! Delivery to nordiq-inference: batches go out in order; one that cannot be delivered
//! now waits in the spool and everything after it queues behind it, retried with backoff
//! (1 s doubling to `sources.retry_max_seconds`). Each batch carries an id
//! (`X-NordIQ-Batch`) so that nordiq-inference drops a repeat whose first answer was lost.
//! In a cluster with `sources.publish_to_cluster`, a batch is validated here as a node
//! would and published straight to the JetStream stream, its id as the message id.

use crate::spool::{Batch, Spool, SpoolError};
use hyper::{Method, StatusCode};
use nordiq_core::api::IngestResponse;
use nordiq_runtime::client::ApiClient;
use serde::Serialize;
use std::time::{Duration, Instant};

/// The header naming a batch.
pub const BATCH_HEADER: &str = "x-nordiq-batch";

/// What became of one attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// 2xx: `accepted` records applied, `rejected` refused for good (bad values).
    Delivered {
        accepted: usize,
        rejected: usize,
        duplicate: bool,
    },
    /// The daemon refused the batch in a way a retry cannot fix (400, 413, 422).
    Refused(String),
    /// Not delivered; try again later (unreachable, timeout, 5xx, 401/403, 429 …).
    Retry(String),
}

/// Sorts an answer into an [`Outcome`].
pub fn classify(status: StatusCode, body: &[u8]) -> Outcome {
    let text = || String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
    if status.is_success() {
        let parsed: Option<IngestResponse> = serde_json::from_slice(body).ok();
        return Outcome::Delivered {
            accepted: parsed.as_ref().map_or(0, |r| r.accepted),
            rejected: parsed.as_ref().map_or(0, |r| r.rejected_records),
            duplicate: parsed.is_some_and(|r| r.duplicate_batch),
        };
    }
    match status {
        StatusCode::BAD_REQUEST
        | StatusCode::PAYLOAD_TOO_LARGE
        | StatusCode::UNPROCESSABLE_ENTITY => Outcome::Refused(format!("{status}: {}", text())),
        _ => Outcome::Retry(format!("{status}: {}", text())),
    }
}

/// Validates `batch` as a node would (records refused for good are counted, the rest
/// published) and publishes it to the cluster's stream.
async fn publish(
    js: &async_nats::jetstream::Context,
    config: &nordiq_core::config::Config,
    node: &str,
    batch: &Batch,
) -> Outcome {
    let validated =
        match nordiq_core::ingest::Validator::new(config, nordiq_core::timefmt::now_ms())
            .ndjson(&batch.body)
        {
            Ok(v) => v,
            Err(e) => return Outcome::Refused(e.to_string()),
        };
    if validated.samples.is_empty() {
        return match validated.errors.first() {
            Some(first) => Outcome::Refused(format!(
                "every record refused; first: record {} {}: {}",
                first.index, first.field, first.reason
            )),
            None => Outcome::Delivered {
                accepted: 0,
                rejected: 0,
                duplicate: false,
            },
        };
    }
    match nordiq_cluster::publish(
        js,
        &config.cluster,
        node,
        validated.samples.iter().map(|(_, s)| s),
        &batch.id,
    )
    .await
    {
        Ok(p) => Outcome::Delivered {
            accepted: validated.samples.len(),
            rejected: validated.rejected_records(),
            duplicate: p.repeats == p.parts,
        },
        Err(e) => Outcome::Retry(e.to_string()),
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct DeliveryStats {
    pub delivered_batches: u64,
    pub accepted_records: u64,
    pub rejected_records: u64,
    pub refused_batches: u64,
    pub duplicate_batches: u64,
    pub spooled_batches: usize,
    pub spool_bytes: u64,
    pub dropped_batches: u64,
    pub dropped_records: u64,
    pub last_error: Option<String>,
}

/// Where batches go.
pub enum Target {
    /// `POST /feed/data` on nordiq-inference.
    Http(ApiClient),
    /// The cluster's JetStream stream (validated here with `config`'s catalog).
    Cluster {
        js: async_nats::jetstream::Context,
        config: std::sync::Arc<nordiq_core::config::Config>,
        node: String,
    },
}

pub struct Delivery {
    target: Target,
    spool: Spool,
    retry_max: Duration,
    backoff: Duration,
    next_try: Instant,
    stats: DeliveryStats,
}

impl Delivery {
    pub fn new(target: Target, spool: Spool, retry_max: Duration) -> Delivery {
        let mut d = Delivery {
            target,
            spool,
            retry_max,
            backoff: Duration::from_secs(1),
            next_try: Instant::now(),
            stats: DeliveryStats::default(),
        };
        d.sync_spool_stats();
        d
    }

    pub fn stats(&self) -> &DeliveryStats {
        &self.stats
    }

    fn sync_spool_stats(&mut self) {
        self.stats.spooled_batches = self.spool.len();
        self.stats.spool_bytes = self.spool.bytes();
        self.stats.dropped_batches = self.spool.dropped_batches;
        self.stats.dropped_records = self.spool.dropped_records;
    }

    /// Delivers `batch` now, or spools it behind the batches already waiting.
    pub async fn submit(&mut self, batch: Batch) -> Result<(), SpoolError> {
        if self.spool.is_empty() && Instant::now() >= self.next_try {
            match self.attempt(&batch).await {
                Outcome::Retry(reason) => {
                    self.failed(reason);
                    self.spool.push(&batch)?;
                }
                outcome => self.settled(outcome, &batch),
            }
        } else {
            // Behind the waiting ones; they go first once the backoff has passed.
            self.spool.push(&batch)?;
            self.drain().await?;
        }
        self.sync_spool_stats();
        Ok(())
    }

    /// Spools `batch` without trying to send it (shutting down).
    pub fn spool_only(&mut self, batch: Batch) -> Result<(), SpoolError> {
        self.spool.push(&batch)?;
        self.sync_spool_stats();
        Ok(())
    }

    /// Sends spooled batches, oldest first, until one fails or the spool is empty. Does
    /// nothing before the backoff has passed.
    pub async fn drain(&mut self) -> Result<(), SpoolError> {
        while Instant::now() >= self.next_try {
            let Some(batch) = self.spool.oldest()? else {
                break;
            };
            match self.attempt(&batch).await {
                Outcome::Retry(reason) => {
                    self.failed(reason);
                    break;
                }
                outcome => {
                    self.settled(outcome, &batch);
                    self.spool.pop()?;
                }
            }
        }
        self.sync_spool_stats();
        Ok(())
    }

    async fn attempt(&self, batch: &Batch) -> Outcome {
        let client = match &self.target {
            Target::Http(client) => client,
            Target::Cluster { js, config, node } => {
                return publish(js, config, node, batch).await;
            }
        };
        match client
            .send_with(
                Method::POST,
                "/feed/data?on_error=accept_valid",
                Some("application/x-ndjson"),
                &[(BATCH_HEADER, &batch.id)],
                batch.body.clone().into(),
            )
            .await
        {
            Ok(answer) => classify(answer.status, &answer.body),
            Err(e) => Outcome::Retry(e.to_string()),
        }
    }

    fn failed(&mut self, reason: String) {
        if self.stats.last_error.as_deref() != Some(reason.as_str()) {
            tracing::warn!(reason = %reason, retry_in = ?self.backoff, spooled = self.spool.len(), "delivery failed; spooling");
        }
        self.stats.last_error = Some(reason);
        self.next_try = Instant::now() + self.backoff;
        self.backoff = (self.backoff * 2).min(self.retry_max);
    }

    fn settled(&mut self, outcome: Outcome, batch: &Batch) {
        if self.stats.last_error.is_some() && !matches!(outcome, Outcome::Refused(_)) {
            tracing::info!(
                spooled = self.spool.len(),
                "nordiq-inference reachable again"
            );
            self.stats.last_error = None;
        }
        self.backoff = Duration::from_secs(1);
        match outcome {
            Outcome::Delivered {
                accepted,
                rejected,
                duplicate,
            } => {
                self.stats.delivered_batches += 1;
                self.stats.accepted_records += accepted as u64;
                self.stats.rejected_records += rejected as u64;
                self.stats.duplicate_batches += u64::from(duplicate);
                if rejected > 0 {
                    tracing::warn!(batch = %batch.id, rejected, accepted, "nordiq-inference refused some records");
                }
            }
            Outcome::Refused(reason) => {
                self.stats.refused_batches += 1;
                self.stats.rejected_records += batch.records as u64;
                tracing::error!(batch = %batch.id, records = batch.records, reason = %reason, "nordiq-inference refused a batch; dropped");
                self.stats.last_error = Some(format!("batch refused: {reason}"));
            }
            Outcome::Retry(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_sort_into_delivered_refused_and_retry() {
        let ok = br#"{"records":3,"accepted":2,"rejected_records":1,"rejected":[],"policy":"accept_valid"}"#;
        assert_eq!(
            classify(StatusCode::OK, ok),
            Outcome::Delivered {
                accepted: 2,
                rejected: 1,
                duplicate: false
            }
        );
        let dup = br#"{"records":3,"accepted":0,"rejected_records":0,"rejected":[],"policy":"accept_valid","duplicate_batch":true}"#;
        assert!(matches!(
            classify(StatusCode::OK, dup),
            Outcome::Delivered {
                duplicate: true,
                ..
            }
        ));
        for refused in [
            StatusCode::BAD_REQUEST,
            StatusCode::PAYLOAD_TOO_LARGE,
            StatusCode::UNPROCESSABLE_ENTITY,
        ] {
            assert!(
                matches!(classify(refused, b"no"), Outcome::Refused(_)),
                "{refused}"
            );
        }
        for retry in [
            StatusCode::UNAUTHORIZED,
            StatusCode::TOO_MANY_REQUESTS,
            StatusCode::SERVICE_UNAVAILABLE,
            StatusCode::INTERNAL_SERVER_ERROR,
            StatusCode::NOT_FOUND,
        ] {
            assert!(matches!(classify(retry, b""), Outcome::Retry(_)), "{retry}");
        }
    }
}
