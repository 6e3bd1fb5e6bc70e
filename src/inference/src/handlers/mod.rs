//! The HTTP API: routes, the API-key check, and the handlers. Handlers never compute
//! forecasts: they read the published [`ForecastSet`](crate::state::ForecastSet).

mod admin;
mod feed;
mod historical;
mod metrics;
mod remote_write;
mod v23;

use crate::error::{error, require_scope};
use crate::state::App;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use bytes::Bytes;
use nordiq_core::api::StatusResponse;
use nordiq_core::timefmt::now_ms;
use nordiq_model::Forecaster;
use nordiq_runtime::keyring::Scope;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// How long `POST /admin/refresh` waits for the refresh it asked for.
const REFRESH_WAIT: Duration = Duration::from_secs(60);

/// Every route and the scope its key needs (docs/security.md lists the same).
pub fn router(app: Arc<App>) -> Router {
    let scoped =
        |scope: Scope| middleware::from_fn_with_state((Arc::clone(&app), scope), require_scope);
    let read = Router::new()
        .route("/status", get(status))
        .route("/predictions/current", get(predictions_current))
        .route("/predictions/{server}", get(prediction_for_server))
        .route("/alerts/active", get(alerts_active))
        .route("/explain/{server}", get(explain))
        .merge(historical::routes())
        .route_layer(scoped(Scope::Read));
    let ingest = Router::new()
        .route("/feed/data", post(feed::feed))
        .route("/api/v1/write", post(remote_write::write))
        .route_layer(scoped(Scope::Ingest));
    let admin = Router::new()
        .route("/admin/refresh", post(admin_refresh))
        .merge(admin::routes())
        .route_layer(scoped(Scope::Admin));
    Router::new()
        .route("/health", get(health))
        // Checks the `read` scope itself: `prometheus.require_key` can turn that off.
        .route("/metrics", get(metrics::metrics))
        .merge(read)
        .merge(ingest)
        .merge(admin)
        .fallback(not_found)
        .with_state(app)
}

fn json_bytes(bytes: Bytes) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], bytes).into_response()
}

async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "no such endpoint")
}

async fn health(State(app): State<Arc<App>>) -> Response {
    axum::Json(serde_json::json!({
        "status": "ok",
        "service": "nordiq-inference",
        "version": env!("CARGO_PKG_VERSION"),
        "model_id": app.forecasts.load().model_id,
    }))
    .into_response()
}

async fn status(State(app): State<Arc<App>>) -> Response {
    let config = app.config.load();
    let set = app.forecasts.load();
    let (warmup, late) = app.store.warmup();
    let mut levels = nordiq_core::api::LevelCounts::default();
    for a in &set.assessed {
        levels.add(a.level);
    }
    let body = StatusResponse {
        service: "nordiq-inference".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        model_id: set.model_id.clone(),
        uptime_seconds: app.started.elapsed().as_secs(),
        servers: warmup.len(),
        warm_servers: nordiq_core::api::warm_count(&warmup),
        forecast_servers: set.assessed.len(),
        samples_total: app.counters.samples.load(Ordering::Relaxed),
        late_samples_total: late,
        rejected_records_total: app.counters.rejected_records.load(Ordering::Relaxed),
        step_seconds: config.model.step_seconds,
        encoder_steps: config.model.encoder_steps,
        horizon_steps: config.model.horizon_steps,
        levels,
        last_refresh: set.refresh.clone(),
        warmup,
        drift: app.drift.lock().unwrap_or_else(|p| p.into_inner()).clone(),
        cluster: app.cluster.get().map(|c| c.status()),
    };
    axum::Json(body).into_response()
}

/// The merged fleet view in cluster mode (once one is merged), else this node's.
fn fleet_view(app: &App) -> Option<Arc<crate::state::cluster::FleetJson>> {
    app.cluster.get().and_then(|c| c.fleet.load_full())
}

async fn predictions_current(State(app): State<Arc<App>>) -> Response {
    match fleet_view(&app) {
        Some(fleet) => json_bytes(fleet.current.clone()),
        None => json_bytes(app.forecasts.load().current_json.clone()),
    }
}

async fn alerts_active(State(app): State<Arc<App>>) -> Response {
    match fleet_view(&app) {
        Some(fleet) => json_bytes(fleet.alerts.clone()),
        None => json_bytes(app.forecasts.load().alerts_json.clone()),
    }
}

async fn prediction_for_server(
    State(app): State<Arc<App>>,
    Path(server): Path<String>,
) -> Response {
    let set = app.forecasts.load_full();
    let config = app.config.load_full();
    if let Some(&i) = set.index.get(&server) {
        let body = nordiq_core::assess::server_prediction(
            &config,
            &set.model_id,
            set.generated_at_ms,
            &set.assessed[i],
        );
        return axum::Json(body).into_response();
    }
    let (warmup, _) = app.store.warmup();
    match warmup.iter().find(|w| w.server == server) {
        Some(w) => error(
            StatusCode::NOT_FOUND,
            format!(
                "no forecast for `{server}` yet: {} of {} steps of history (forecast.min_history_steps); the next refresh picks it up",
                w.history_steps, config.forecast.min_history_steps
            ),
        ),
        None => error(StatusCode::NOT_FOUND, format!("unknown server `{server}`")),
    }
}

/// `POST /admin/refresh`: recompute now and answer when that refresh is published.
async fn admin_refresh(State(app): State<Arc<App>>) -> Response {
    let mut done = app.refresh_done.subscribe();
    let target = app.refresh_started.load(Ordering::Acquire) + 1;
    app.refresh_requested.notify_one();
    let waited = tokio::time::timeout(REFRESH_WAIT, done.wait_for(|seq| *seq >= target))
        .await
        .map(|r| r.map(|_| ()));
    match waited {
        Ok(Ok(())) => axum::Json(app.forecasts.load().refresh.clone()).into_response(),
        Ok(Err(_)) => error(StatusCode::SERVICE_UNAVAILABLE, "shutting down"),
        Err(_) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the refresh did not finish in time; see the log",
        ),
    }
}

/// `GET /explain/{server}`: the trained model's own explanation for the server's current
/// window: variable-selection weights (encoder and decoder) and attention over past steps.
async fn explain(State(app): State<Arc<App>>, Path(server): Path<String>) -> Response {
    let serving = app.forecaster.load_full();
    if serving.model.is_none() {
        return error(
            StatusCode::CONFLICT,
            "no trained model is serving: explanations are the model's own (train one with nordiq-train); the baselines have none",
        );
    }
    let config = app.config.load_full();
    let now_step = now_ms().div_euclid(config.model.step_seconds as i64 * 1000);
    let Some(snapshot) = app.store.snapshot_of(&server, now_step) else {
        return error(StatusCode::NOT_FOUND, format!("unknown server `{server}`"));
    };
    if snapshot.len < config.model.encoder_steps {
        return error(
            StatusCode::CONFLICT,
            format!(
                "`{server}` is not warm ({} of {} steps): the model serves warm servers, the baselines the rest",
                snapshot.len, config.model.encoder_steps
            ),
        );
    }
    let model_id = serving.id().to_string();
    let answer = tokio::task::spawn_blocking(move || {
        serving.model.as_ref().and_then(|m| m.explain(&snapshot))
    })
    .await;
    match answer {
        Ok(Some(explanation)) => axum::Json(serde_json::json!({
            "server": server,
            "model_id": model_id,
            "explanation": explanation,
        }))
        .into_response(),
        _ => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the model worker did not answer; see the log",
        ),
    }
}
