//! The HTTP API: routes, the API-key check, and the handlers. Handlers never compute
//! forecasts: they read the published [`ForecastSet`](crate::app::ForecastSet).

use crate::app::App;
use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use nordiq_core::api::{ErrorBody, IngestResponse, StatusResponse};
use nordiq_core::config::{Config, MixedBatchPolicy};
use nordiq_core::ingest::{BodyError, RecordError, Validated, Validator};
use nordiq_core::timefmt::now_ms;
use nordiq_model::Forecaster;
use serde::Deserialize;
use std::collections::{BTreeSet, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// Bodies above this are validated on the blocking pool, off the async workers.
const INLINE_VALIDATION_BYTES: usize = 64 * 1024;
/// Bad fields listed in one answer at most.
const MAX_LISTED_ERRORS: usize = 1000;
/// How long `POST /admin/refresh` waits for the refresh it asked for.
const REFRESH_WAIT: Duration = Duration::from_secs(60);

pub fn router(app: Arc<App>) -> Router {
    let protected = Router::new()
        .route("/status", get(status))
        .route("/feed/data", post(feed))
        .route("/api/v1/write", post(crate::remote_write::write))
        .route("/predictions/current", get(predictions_current))
        .route("/predictions/{server}", get(prediction_for_server))
        .route("/alerts/active", get(alerts_active))
        .route("/admin/refresh", post(admin_refresh))
        .route("/explain/{server}", get(explain))
        .merge(crate::admin::routes())
        .merge(crate::historical::routes())
        .route_layer(middleware::from_fn_with_state(
            Arc::clone(&app),
            require_key,
        ));
    Router::new()
        .route("/health", get(health))
        // Checks the key itself: `prometheus.require_key` can turn that off.
        .route("/metrics", get(crate::exposition::metrics))
        .merge(protected)
        .fallback(not_found)
        .with_state(app)
}

pub(crate) fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (
        status,
        axum::Json(ErrorBody {
            error: message.into(),
        }),
    )
        .into_response()
}

fn json_bytes(bytes: Bytes) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], bytes).into_response()
}

async fn require_key(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let key = app.key.load();
    let Some(key) = key.as_ref() else {
        // No key configured: the daemon only starts so when allow_anonymous = true.
        return next.run(request).await;
    };
    match presented_key(request.headers()) {
        Some(presented) if key.matches(presented) => next.run(request).await,
        Some(_) => error(StatusCode::UNAUTHORIZED, "wrong X-API-Key"),
        None => error(
            StatusCode::UNAUTHORIZED,
            "missing X-API-Key header (the key is in the key file, see `nordiqctl keygen`)",
        ),
    }
}

/// The key a request presents: `X-API-Key`, else `Authorization: Bearer KEY` (what
/// Prometheus and remote-write senders can be configured to send).
pub(crate) fn presented_key(headers: &HeaderMap) -> Option<&[u8]> {
    if let Some(k) = headers.get("x-api-key") {
        return Some(k.as_bytes());
    }
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
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
        warm_servers: warmup
            .iter()
            .filter(|w| w.warmup_remaining_steps == 0)
            .count(),
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
    };
    axum::Json(body).into_response()
}

#[derive(Deserialize)]
struct FeedQuery {
    on_error: Option<MixedBatchPolicy>,
}

fn is_ndjson(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|ct| {
            let ct = ct
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            matches!(
                ct.as_str(),
                "application/x-ndjson"
                    | "application/ndjson"
                    | "application/jsonl"
                    | "application/x-jsonlines"
            )
        })
        .unwrap_or(false)
}

pub(crate) async fn read_body(body: Body, limit: usize) -> Result<Bytes, Response> {
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("body larger than server.max_body_bytes = {limit}; split the batch"),
        )),
        Err(e) => Err(error(
            StatusCode::BAD_REQUEST,
            format!("cannot read body: {e}"),
        )),
    }
}

fn validate(config: &Config, body: &[u8], ndjson: bool) -> Result<Validated, BodyError> {
    let validator = Validator::new(config, now_ms());
    if ndjson {
        validator.ndjson(body)
    } else {
        validator.json_batch(body)
    }
}

/// `POST /feed/data`. Rule for mixed batches (`ingest.mixed_batch`, or `?on_error=`):
/// `reject_all` applies nothing and answers 422 listing every bad record; `accept_valid`
/// applies the good records and lists the bad ones (422 only when none was good).
async fn feed(
    State(app): State<Arc<App>>,
    Query(query): Query<FeedQuery>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let config = app.config.load_full();
    if let Some(enc) = headers.get(header::CONTENT_ENCODING) {
        if enc.as_bytes() != b"identity" {
            return error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Content-Encoding is not supported; send the body uncompressed",
            );
        }
    }
    let body = match read_body(body, config.server.max_body_bytes).await {
        Ok(b) => b,
        Err(response) => return response,
    };
    let ndjson = is_ndjson(&headers);
    let validated = if body.len() > INLINE_VALIDATION_BYTES {
        let config = Arc::clone(&config);
        match tokio::task::spawn_blocking(move || validate(&config, &body, ndjson)).await {
            Ok(v) => v,
            Err(e) => {
                return error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("validation failed: {e}"),
                )
            }
        }
    } else {
        validate(&config, &body, ndjson)
    };
    let validated = match validated {
        Ok(v) => v,
        Err(e @ BodyError::TooManyRecords { .. }) => {
            return error(StatusCode::PAYLOAD_TOO_LARGE, e.to_string())
        }
        Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let policy = query.on_error.unwrap_or(config.ingest.mixed_batch);
    // A batch id seen before: the feeder is retrying a batch whose answer it lost.
    let batch_id = headers
        .get("x-nordiq-batch")
        .and_then(|v| v.to_str().ok())
        .filter(|id| !id.is_empty() && id.len() <= 200)
        .map(str::to_string);
    apply_batch(&app, &config, validated, policy, batch_id).await
}

/// Applies a validated batch by the mixed-batch `policy`: durable in the buffer first,
/// then into the windows; answers with what was accepted and what was refused.
pub(crate) async fn apply_batch(
    app: &Arc<App>,
    config: &Config,
    mut validated: Validated,
    policy: MixedBatchPolicy,
    batch_id: Option<String>,
) -> Response {
    let policy_name = match policy {
        MixedBatchPolicy::RejectAll => "reject_all",
        MixedBatchPolicy::AcceptValid => "accept_valid",
    };
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
            return (
                StatusCode::OK,
                axum::Json(IngestResponse {
                    records: validated.records,
                    accepted: 0,
                    rejected_records: 0,
                    rejected: Vec::new(),
                    policy: policy_name.into(),
                    error: None,
                    duplicate_batch: true,
                }),
            )
                .into_response();
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
    let bad: HashSet<usize> = validated.errors.iter().map(|e| e.index).collect();
    let rejected_records = bad.len();
    let apply = validated.errors.is_empty() || policy == MixedBatchPolicy::AcceptValid;
    let accepted = if apply { validated.samples.len() } else { 0 };
    if apply && accepted > 0 {
        // Durable first: a sample is acknowledged only once the log holding it is fsynced.
        if let Some(buffer) = &app.buffer {
            if let Err(e) = buffer
                .append(validated.samples.iter().map(|(_, s)| s))
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
                return error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("cannot persist the batch ({e}); nothing was applied, retry later"),
                );
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
    let listed = validated.errors.len().min(MAX_LISTED_ERRORS);
    let more = validated.errors.len() - listed;
    validated.errors.truncate(listed);
    let status = if accepted == 0 && validated.records > 0 && rejected_records > 0 {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let summary = (rejected_records > 0).then(|| {
        let action = if apply { "the other records were applied" } else { "nothing was applied (mixed_batch = reject_all; fix or drop them and resend, or use ?on_error=accept_valid)" };
        let more = if more > 0 { format!(", {more} more errors not listed") } else { String::new() };
        format!("{rejected_records} of {} records rejected{more}; {action}", validated.records)
    });
    (
        status,
        axum::Json(IngestResponse {
            records: validated.records,
            accepted,
            rejected_records,
            rejected: validated.errors,
            policy: policy_name.into(),
            error: summary,
            duplicate_batch: false,
        }),
    )
        .into_response()
}

async fn predictions_current(State(app): State<Arc<App>>) -> Response {
    json_bytes(app.forecasts.load().current_json.clone())
}

async fn alerts_active(State(app): State<Arc<App>>) -> Response {
    json_bytes(app.forecasts.load().alerts_json.clone())
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
