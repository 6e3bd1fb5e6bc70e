//! `GET /metrics`: gathers the daemon's figures and the latest forecast set and renders
//! them with `nordiq_core::exposition`. Needs a `read` key unless `prometheus.require_key =
//! false` (Prometheus sends it as `Authorization: Bearer` or an `X-API-Key` header).

use crate::error::{authorize, error};
use crate::state::App;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use nordiq_core::exposition::{render, ClusterHealth, Health, HttpHealth, ReceiverHealth};
use nordiq_runtime::keyring::Scope;
use std::sync::atomic::Ordering;
use std::sync::Arc;

pub async fn metrics(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let config = app.config.load_full();
    if config.prometheus.require_key {
        if let Err(refused) = authorize(&app, &headers, Scope::Read) {
            if refused.status == StatusCode::FORBIDDEN {
                return refused.into_response();
            }
            return error(
                StatusCode::UNAUTHORIZED,
                "GET /metrics needs a key with the `read` scope (Authorization: Bearer KEY or X-API-Key), or prometheus.require_key = false",
            );
        }
    }
    let set = app.forecasts.load_full();
    let (warmup, late) = app.store.warmup();
    let buffer_bytes = match app.buffer.as_ref().map(|b| b.root().to_path_buf()) {
        Some(root) => {
            tokio::task::spawn_blocking(move || nordiq_buffer::retention::dir_bytes(&root))
                .await
                .ok()
        }
        None => None,
    };
    let (reloads_ok, reloads_refused) = app.model.reload_counts();
    let health = Health {
        uptime_seconds: app.started.elapsed().as_secs_f64(),
        samples_total: app.counters.samples.load(Ordering::Relaxed),
        rejected_records_total: app.counters.rejected_records.load(Ordering::Relaxed),
        duplicate_batches_total: app.counters.duplicate_batches.load(Ordering::Relaxed),
        remote_write_ignored_series_total: app
            .counters
            .remote_write_ignored_series
            .load(Ordering::Relaxed),
        late_samples_total: late,
        servers: warmup.len(),
        warm_servers: nordiq_core::api::warm_count(&warmup),
        forecast_servers: set.assessed.len(),
        refresh_seconds: set.refresh.as_ref().map(|r| r.duration_ms / 1000.0),
        refresh_at_ms: set.refresh.as_ref().map(|_| set.generated_at_ms),
        model_id: set.model_id.clone(),
        reloads_ok,
        reloads_refused,
        buffer_bytes,
        live: crate::services::live::report(&app),
        drift: app.drift.lock().unwrap_or_else(|p| p.into_inner()).clone(),
        http: HttpHealth {
            connections_open: app.http.open.load(Ordering::Relaxed) as u64,
            connections_accepted_total: app.http.accepted.load(Ordering::Relaxed),
            shed_full_total: app.http.shed_full.load(Ordering::Relaxed),
            shed_client_total: app.http.shed_client.load(Ordering::Relaxed),
            shed_body_total: app.bodies_shed.load(Ordering::Relaxed),
            tls_handshake_failures_total: app.http.handshake_failures.load(Ordering::Relaxed),
        },
        notify: app
            .outbox
            .receivers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|r| ReceiverHealth {
                kind: r.kind.to_string(),
                name: r.name.clone(),
                delivered_total: r.delivered.load(Ordering::Relaxed),
                failed_attempts_total: r.failed_attempts.load(Ordering::Relaxed),
                dropped_total: r.dropped.load(Ordering::Relaxed),
                pending: r.pending.load(Ordering::Relaxed),
            })
            .collect(),
        cluster: app.cluster.get().map(|c| {
            let fleet = c.fleet.load_full();
            ClusterHealth {
                status: c.status(),
                fleet_levels: fleet.as_ref().map(|f| f.levels.clone()).unwrap_or_default(),
                shard_ages: fleet.as_ref().map(|f| f.shards.clone()).unwrap_or_default(),
            }
        }),
    };
    let config2 = Arc::clone(&config);
    let body = tokio::task::spawn_blocking(move || render(&config2, &health, &set.assessed))
        .await
        .unwrap_or_default();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}
