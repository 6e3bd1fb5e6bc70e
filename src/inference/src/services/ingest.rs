//! Ingest: a validated batch applied by the mixed-batch policy — a repeated batch id is
//! dropped, servers beyond `window.max_servers` become record errors, the samples are made
//! durable in the buffer first and then go into the windows. No HTTP here: the outcome is
//! an [`IngestResponse`] (the handler picks the status code) or an [`IngestError`].

use crate::state::App;
use nordiq_core::api::IngestResponse;
use nordiq_core::config::{Config, MixedBatchPolicy};
use nordiq_core::ingest::{RecordError, Validated};
use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Bad fields listed in one answer at most.
const MAX_LISTED_ERRORS: usize = 1000;

/// Why a batch was not applied at all.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("cannot persist the batch ({0}); nothing was applied, retry later")]
    Persist(String),
    #[error("cannot publish the batch to the cluster's stream ({0}); retry later with the same X-NordIQ-Batch id (parts already stored are not stored twice)")]
    Publish(String),
}

/// Takes a validated batch by the mixed-batch `policy`: alone, applies it here; in a
/// cluster, publishes it to JetStream for the shards' owners (`services::cluster`).
pub async fn apply(
    app: &Arc<App>,
    config: &Config,
    validated: Validated,
    policy: MixedBatchPolicy,
    batch_id: Option<String>,
) -> Result<IngestResponse, IngestError> {
    match app.cluster.get() {
        Some(cluster) => {
            super::cluster::publish::publish(cluster, validated, policy, batch_id).await
        }
        None => apply_local(app, config, validated, policy, batch_id).await,
    }
}

fn policy_name(policy: MixedBatchPolicy) -> &'static str {
    match policy {
        MixedBatchPolicy::RejectAll => "reject_all",
        MixedBatchPolicy::AcceptValid => "accept_valid",
    }
}

/// The mixed-batch rule: how many records are refused, and whether the good ones are
/// applied (every record good, or `accept_valid`).
pub(crate) fn mixed_batch_rule(validated: &Validated, policy: MixedBatchPolicy) -> (usize, bool) {
    let apply = validated.errors.is_empty() || policy == MixedBatchPolicy::AcceptValid;
    (validated.rejected_records(), apply)
}

/// The answer to a batch whose id was taken before: nothing applied again.
pub(crate) fn repeat_answer(records: usize, policy: MixedBatchPolicy) -> IngestResponse {
    IngestResponse {
        records,
        accepted: 0,
        rejected_records: 0,
        rejected: Vec::new(),
        policy: policy_name(policy).into(),
        error: None,
        duplicate_batch: true,
    }
}

/// The answer to a batch taken by the mixed-batch rule: what was accepted, the bad
/// fields (the first [`MAX_LISTED_ERRORS`]) and a summary saying what became of the rest.
pub(crate) fn answer(
    mut validated: Validated,
    accepted: usize,
    rejected_records: usize,
    apply: bool,
    policy: MixedBatchPolicy,
) -> IngestResponse {
    let listed = validated.errors.len().min(MAX_LISTED_ERRORS);
    let more = validated.errors.len() - listed;
    validated.errors.truncate(listed);
    let summary = (rejected_records > 0).then(|| {
        let action = if apply { "the other records were applied" } else { "nothing was applied (mixed_batch = reject_all; fix or drop them and resend, or use ?on_error=accept_valid)" };
        let more = if more > 0 { format!(", {more} more errors not listed") } else { String::new() };
        format!("{rejected_records} of {} records rejected{more}; {action}", validated.records)
    });
    IngestResponse {
        records: validated.records,
        accepted,
        rejected_records,
        rejected: validated.errors,
        policy: policy_name(policy).into(),
        error: summary,
        duplicate_batch: false,
    }
}

/// Applies a validated batch on this node by the mixed-batch `policy`: durable in the
/// buffer first, then into the windows; answers with what was accepted and refused.
pub async fn apply_local(
    app: &Arc<App>,
    config: &Config,
    mut validated: Validated,
    policy: MixedBatchPolicy,
    batch_id: Option<String>,
) -> Result<IngestResponse, IngestError> {
    if let Some(id) = &batch_id {
        if !app
            .batch_ids
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .claim(id)
        {
            app.counters
                .duplicate_batches
                .fetch_add(1, Ordering::Relaxed);
            return Ok(repeat_answer(validated.records, policy));
        }
    }

    // Servers beyond window.max_servers are per-record errors too.
    let (reservation, refused) = app
        .store
        .reserve(validated.samples.iter().map(|(_, s)| s.server.as_str()));
    if !refused.is_empty() {
        let max = config.window.max_servers;
        validated.samples.retain(|(index, s)| {
            let keep = !refused.contains(&s.server);
            if !keep {
                validated.errors.push(RecordError {
                    index: *index,
                    field: "server_name".into(),
                    reason: format!(
                        "server limit reached (window.max_servers = {max}); not tracking `{}`",
                        s.server
                    ),
                });
            }
            keep
        });
        validated.errors.sort_by_key(|e| e.index);
    }
    let (rejected_records, apply) = mixed_batch_rule(&validated, policy);
    let accepted = if apply { validated.samples.len() } else { 0 };
    if apply && accepted > 0 {
        // Durable first: a sample is acknowledged only once the log holding it is fsynced.
        if let Some(buffer) = &app.buffer {
            if let Err(e) = buffer
                .append_batch(
                    validated.samples.iter().map(|(_, s)| s),
                    batch_id.as_deref(),
                )
                .await
            {
                app.store.release(reservation);
                if let Some(id) = &batch_id {
                    app.batch_ids
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .release(id);
                }
                tracing::error!(error = %e, "cannot persist an ingest batch; refusing it");
                return Err(IngestError::Persist(e.to_string()));
            }
        }
        app.store
            .apply(validated.samples.iter().map(|(_, s)| s), reservation);
        app.counters
            .samples
            .fetch_add(accepted as u64, Ordering::Relaxed);
    } else {
        app.store.release(reservation);
    }
    app.counters
        .rejected_records
        .fetch_add((validated.records - accepted) as u64, Ordering::Relaxed);
    if rejected_records > 0 {
        let servers: BTreeSet<&str> = validated
            .samples
            .iter()
            .map(|(_, s)| s.server.as_str())
            .collect();
        tracing::info!(
            records = validated.records,
            accepted,
            rejected = rejected_records,
            first_error = ?validated.errors.first(),
            servers = servers.len(),
            "ingest batch had bad records"
        );
    }
    Ok(answer(validated, accepted, rejected_records, apply, policy))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::{live, model_loading};
    use crate::state::ConfigSource;
    use nordiq_core::ingest::Validator;
    use nordiq_core::timefmt::now_ms;
    use nordiq_testkit::TempDir;

    /// The daemon's state on the development config (no buffer, baselines serving).
    fn app(dir: &TempDir, max_servers: usize) -> Arc<App> {
        let mut config = Config::dev(dir.path());
        config.window.max_servers = max_servers;
        let initial = model_loading::initial(&config);
        let bins = live::load(&config);
        App::new(
            config,
            nordiq_runtime::keyring::Keyring::default(),
            None,
            ConfigSource::Dev(dir.path().to_path_buf()),
            initial,
            bins,
        )
    }

    fn batch(app: &App, lines: &[(&str, &str)]) -> Validated {
        let now_s = now_ms() / 1000;
        let body: String = lines
            .iter()
            .enumerate()
            .map(|(i, (server, cpu))| {
                format!(
                    "{{\"timestamp\":{},\"server_name\":\"{server}\",\"cpu_user_pct\":{cpu}}}\n",
                    now_s - 60 + i as i64
                )
            })
            .collect();
        let config = app.config.load();
        Validator::new(&config, now_ms())
            .ndjson(body.as_bytes())
            .expect("a well-formed body")
    }

    async fn apply_to(
        app: &Arc<App>,
        validated: Validated,
        policy: MixedBatchPolicy,
        batch_id: Option<&str>,
    ) -> IngestResponse {
        let config = app.config.load_full();
        apply(
            app,
            &config,
            validated,
            policy,
            batch_id.map(str::to_string),
        )
        .await
        .expect("no buffer, nothing to persist")
    }

    #[tokio::test]
    async fn a_good_batch_goes_into_the_windows() {
        let dir = TempDir::new("ingest-good");
        let app = app(&dir, 100);
        let v = batch(&app, &[("web1", "10"), ("web2", "20"), ("web1", "11")]);
        let r = apply_to(&app, v, MixedBatchPolicy::RejectAll, None).await;
        assert_eq!((r.records, r.accepted, r.rejected_records), (3, 3, 0));
        assert!(r.error.is_none() && !r.duplicate_batch);
        assert_eq!(app.store.server_count(), 2);
        assert_eq!(app.counters.samples.load(Ordering::Relaxed), 3);
    }

    #[tokio::test]
    async fn a_mixed_batch_follows_the_policy() {
        let dir = TempDir::new("ingest-mixed");
        let app = app(&dir, 100);
        let rows = [("web1", "10"), ("web1", "150"), ("web2", "30")];
        let r = apply_to(&app, batch(&app, &rows), MixedBatchPolicy::RejectAll, None).await;
        assert_eq!((r.accepted, r.rejected_records), (0, 1), "{r:?}");
        assert_eq!(r.rejected[0].index, 1);
        assert!(r
            .error
            .as_deref()
            .unwrap_or("")
            .contains("nothing was applied"));
        assert_eq!(app.store.server_count(), 0, "reject_all applies nothing");
        let r = apply_to(
            &app,
            batch(&app, &rows),
            MixedBatchPolicy::AcceptValid,
            None,
        )
        .await;
        assert_eq!((r.accepted, r.rejected_records), (2, 1), "{r:?}");
        assert_eq!(app.store.server_count(), 2);
        assert_eq!(app.counters.rejected_records.load(Ordering::Relaxed), 4);
    }

    #[tokio::test]
    async fn a_repeated_batch_id_is_applied_once() {
        let dir = TempDir::new("ingest-dup");
        let app = app(&dir, 100);
        let first = apply_to(
            &app,
            batch(&app, &[("web1", "10")]),
            MixedBatchPolicy::RejectAll,
            Some("b-1"),
        )
        .await;
        assert_eq!(first.accepted, 1);
        let again = apply_to(
            &app,
            batch(&app, &[("web1", "10")]),
            MixedBatchPolicy::RejectAll,
            Some("b-1"),
        )
        .await;
        assert!(again.duplicate_batch);
        assert_eq!(again.accepted, 0);
        assert_eq!(app.counters.samples.load(Ordering::Relaxed), 1);
        assert_eq!(app.counters.duplicate_batches.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn servers_beyond_the_limit_are_record_errors() {
        let dir = TempDir::new("ingest-limit");
        let app = app(&dir, 1);
        let v = batch(&app, &[("web1", "10"), ("web2", "20")]);
        let r = apply_to(&app, v, MixedBatchPolicy::AcceptValid, None).await;
        assert_eq!((r.accepted, r.rejected_records), (1, 1), "{r:?}");
        assert_eq!(r.rejected[0].field, "server_name");
        assert!(r.rejected[0].reason.contains("window.max_servers = 1"));
        assert_eq!(app.store.server_count(), 1);
    }
}
