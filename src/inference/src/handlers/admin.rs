//! The model and training administration API: the model store, hot reload, training jobs.

use super::v23;
use crate::error::error;
use crate::services::jobs::{self, JobRequestError};
use crate::services::reload::{self, Candidate};
use crate::state::App;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use nordiq_core::job_record::{JobParams, JobRecord, JobStatus};
use nordiq_model::Forecaster;
use nordiq_runtime::job_store::JobStore;
use nordiq_runtime::model_store::ModelStore;
use serde::Deserialize;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/admin/models", get(models))
        .route("/admin/model-info", get(model_info))
        .route("/admin/reload-model", post(reload_model))
        .route("/admin/trigger-training", post(trigger_training))
        .route("/admin/training-status", get(training_status))
        .route("/admin/cancel-training", post(cancel_training))
        .route("/admin/training-stats", get(training_stats))
}

/// `GET /admin/models`: every model directory, which is current, which serves.
async fn models(State(app): State<Arc<App>>) -> Response {
    let models_dir = app.config.load().paths.state_dir.join("models");
    let store = ModelStore::new(&models_dir);
    let serving = app.forecaster.load().id().to_string();
    match tokio::task::spawn_blocking(move || store.list()).await {
        Ok(Ok(models)) => {
            // v2.3's names beside ours: `name`, `is_current`, `count`, `current_model`.
            let current = models.iter().find(|m| m.current).map(|m| m.path.clone());
            let listed: Vec<serde_json::Value> = models
                .iter()
                .map(|m| v23::merged(m, json!({ "name": m.id, "is_current": m.current })))
                .collect();
            Json(json!({
                "serving": serving,
                "models": listed,
                "count": models.len(),
                "models_dir": models_dir.display().to_string(),
                "current_model": current,
            }))
            .into_response()
        }
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn model_info(State(app): State<Arc<App>>) -> Response {
    let info = reload::model_info(&app);
    let config = app.config.load();
    let loaded = info.path.is_some();
    let name = info.path.as_deref().map(|p| {
        std::path::Path::new(p)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    });
    // What the served model was trained with (its training.json), as v2.3 showed it.
    let training_config = info.path.as_deref().and_then(|p| {
        std::fs::read(std::path::Path::new(p).join("training.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .map(|t| t.get("options").cloned().unwrap_or(t))
    });
    let servers = app.store.server_count();
    let extra = json!({
        "loaded": loaded,
        "mode": if loaded { "tft" } else { "baseline" },
        "model_path": info.path,
        "model_name": name,
        "config": {
            "max_prediction_length": config.model.horizon_steps,
            "max_encoder_length": config.model.encoder_steps,
        },
        "servers": { "total": servers, "known": servers },
        "training_config": training_config,
    });
    Json(v23::merged(info, extra)).into_response()
}

#[derive(Deserialize)]
struct ReloadQuery {
    /// A model id, `models/<id>`, or a directory inside state_dir/models.
    model_path: Option<String>,
}

/// Where `model_path` points, inside `models_dir`: an id, a path relative to the models
/// directory (`models/<id>` as v2.3 wrote it, or `<id>`), or an absolute path. Anything
/// that resolves outside the models directory is refused.
fn resolve_model_path(models_dir: &Path, asked: &str) -> Result<PathBuf, (StatusCode, String)> {
    let relative = asked.strip_prefix("models/").unwrap_or(asked);
    let joined = if Path::new(relative).is_absolute() {
        PathBuf::from(relative)
    } else {
        models_dir.join(relative)
    };
    let not_found = |_| {
        (
            StatusCode::NOT_FOUND,
            format!(
                "no model `{asked}` in {} (GET /admin/models lists them)",
                models_dir.display()
            ),
        )
    };
    let dir = std::fs::canonicalize(&joined).map_err(not_found)?;
    let root = std::fs::canonicalize(models_dir).map_err(not_found)?;
    if !dir.starts_with(&root) || dir == root {
        return Err((
            StatusCode::BAD_REQUEST,
            format!(
                "`{asked}` is outside the models directory {}; models are loaded from there only",
                root.display()
            ),
        ));
    }
    Ok(dir)
}

/// `POST /admin/reload-model[?model_path=]`: 200 with the outcome when the candidate now
/// serves, 422 with the outcome (and why) when it was refused and the old model kept.
/// Without `model_path`, `models/current`: the newest model that won its promotion.
async fn reload_model(State(app): State<Arc<App>>, Query(q): Query<ReloadQuery>) -> Response {
    let models_dir = app.config.load().paths.state_dir.join("models");
    let candidate = match q.model_path.as_deref() {
        None | Some("") => Candidate::Current,
        Some(asked) => match resolve_model_path(&models_dir, asked) {
            Ok(dir) => Candidate::Path(dir),
            Err((code, message)) => return refusal(code, message, "rejected"),
        },
    };
    let before = app.forecaster.load().id().to_string();
    let outcome = reload::reload_model(&app, candidate).await;
    app.notifier.status(&app.status_line());
    let code = if outcome.ok {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let message = match (&outcome.error, before == outcome.serving) {
        (Some(_), _) => "Failed to load the new model; the previous one keeps serving",
        (None, true) => "Model already loaded (same version)",
        (None, false) => "Model reloaded successfully",
    };
    let extra = json!({
        "success": outcome.ok,
        "message": message,
        "previous_model": before,
        "new_model": outcome.serving,
        "model_path": outcome.candidate,
        "current_model": outcome.serving,
        "reload_time_seconds": outcome.duration_ms / 1000.0,
    });
    (code, Json(v23::merged(&outcome, extra))).into_response()
}

#[derive(Deserialize)]
struct TriggerQuery {
    /// Default: `training.default_epochs` (5, as v2.3).
    epochs: Option<usize>,
    /// Default: `training.default_incremental` (true, as v2.3).
    incremental: Option<bool>,
    /// Answer when the job has ended, with its final status (v2.3's `blocking=true`).
    #[serde(default)]
    blocking: bool,
    #[serde(default)]
    force: bool,
}

/// An admin refusal: today's `error`, and v2.3's `success: false` and `status`.
fn refusal(code: StatusCode, message: impl Into<String>, status: &str) -> Response {
    let message = message.into();
    (
        code,
        Json(json!({ "success": false, "error": message, "status": status })),
    )
        .into_response()
}

fn job_error(e: JobRequestError) -> Response {
    let (code, status) = match &e {
        JobRequestError::Busy(..) | JobRequestError::ClusterBusy { .. } => {
            (StatusCode::CONFLICT, "rejected")
        }
        JobRequestError::NothingToCancel => (StatusCode::CONFLICT, "idle"),
        JobRequestError::Unknown(_) => (StatusCode::NOT_FOUND, "unknown"),
        JobRequestError::NotReady(_) => (StatusCode::CONFLICT, "rejected"),
        JobRequestError::Launch(_) | JobRequestError::Store(_) => {
            (StatusCode::INTERNAL_SERVER_ERROR, "failed")
        }
    };
    refusal(code, e.to_string(), status)
}

/// A job's record with v2.3's fields beside it.
fn job_answer(record: &JobRecord, extra: serde_json::Value) -> serde_json::Value {
    v23::merged(v23::merged(record, v23::job_fields(record)), extra)
}

/// `POST /admin/trigger-training?epochs=&incremental=&blocking=&force=`: 202 with the job
/// id (200 with the final record when `blocking=true`), 409 while another job is queued
/// or running or when the buffer is not ready to train.
async fn trigger_training(State(app): State<Arc<App>>, Query(q): Query<TriggerQuery>) -> Response {
    if q.epochs == Some(0) {
        return refusal(
            StatusCode::BAD_REQUEST,
            "epochs must be at least 1",
            "rejected",
        );
    }
    let training = app.config.load().training.clone();
    let params = JobParams {
        epochs: Some(q.epochs.unwrap_or(training.default_epochs)),
        incremental: q.incremental.unwrap_or(training.default_incremental),
        force: q.force,
        ..Default::default()
    };
    let (epochs, incremental) = (params.epochs, params.incremental);
    let started = match jobs::trigger(&app, params).await {
        Ok(t) => t,
        Err(e) => return job_error(e),
    };
    if !q.blocking {
        let extra = json!({
            "success": true,
            "message": "Training started in background",
            "epochs": epochs,
            "incremental": incremental,
        });
        return (StatusCode::ACCEPTED, Json(v23::merged(&started, extra))).into_response();
    }
    // Blocking: poll the record until the job has ended.
    loop {
        match jobs::status(&app, Some(&started.job_id)) {
            Ok(record) if !record.status.is_active() => {
                let done = record.status == JobStatus::Completed;
                let extra = json!({
                    "success": done,
                    "message": format!("Training {}", record.status.name()),
                });
                return Json(job_answer(&record, extra)).into_response();
            }
            Ok(_) => tokio::time::sleep(std::time::Duration::from_millis(500)).await,
            Err(e) => return job_error(e),
        }
    }
}

#[derive(Deserialize)]
struct StatusQuery {
    job_id: Option<String>,
}

/// `GET /admin/training-status[?job_id=]`: the job's record (the latest job by default).
/// Before the first job (and no `job_id` asked for): v2.3's `idle`.
async fn training_status(State(app): State<Arc<App>>, Query(q): Query<StatusQuery>) -> Response {
    match jobs::status(&app, q.job_id.as_deref()) {
        Ok(record) => Json(job_answer(&record, json!({}))).into_response(),
        Err(JobRequestError::Unknown(_)) if q.job_id.is_none() => Json(v23::idle()).into_response(),
        Err(e) => job_error(e),
    }
}

/// `POST /admin/cancel-training`: stops the running job; answers with its final record.
async fn cancel_training(State(app): State<Arc<App>>) -> Response {
    match jobs::cancel(&app).await {
        Ok(record) => {
            let extra = json!({ "success": true, "message": "Training job cancelled" });
            Json(job_answer(&record, extra)).into_response()
        }
        Err(e) => job_error(e),
    }
}

/// `GET /admin/training-stats`: the buffer (records, files, days, bytes, records per
/// server, readiness to train) and the job history's totals, with v2.3's names beside.
async fn training_stats(State(app): State<Arc<App>>) -> Response {
    let config = app.config.load_full();
    let jobs_dir = config.paths.state_dir.join("jobs");
    let buffer = app.buffer.clone();
    let answer = tokio::task::spawn_blocking(move || {
        let (records, unreadable) = JobStore::new(jobs_dir).list();
        let count = |s: JobStatus| records.iter().filter(|r| r.status == s).count();
        let last_completed = records
            .iter()
            .rev()
            .find(|r| r.status == JobStatus::Completed)
            .map(|r| r.job_id.clone());
        let jobs = json!({
            "total": records.len(),
            "completed": count(JobStatus::Completed),
            "failed": count(JobStatus::Failed),
            "cancelled": count(JobStatus::Cancelled),
            "active": records.iter().filter(|r| r.status.is_active()).count(),
            "last_completed": last_completed,
            "unreadable_records": unreadable,
        });
        let stats = match buffer {
            None => None,
            Some(b) => Some(
                b.stats()
                    .map_err(|e| format!("reading buffer stats: {e}"))?,
            ),
        };
        let v23 = v23::stats_fields(&v23::StatsInput {
            records: &records,
            total_records: stats.as_ref().map_or(0, |s| s.records),
            file_count: stats.as_ref().map_or(0, |s| s.files),
            first_day: stats.as_ref().and_then(|s| s.first_day.as_deref()),
            last_day: stats.as_ref().and_then(|s| s.last_day.as_deref()),
            disk_bytes: stats.as_ref().map_or(0, |s| s.disk_bytes),
            completed: count(JobStatus::Completed),
            failed: count(JobStatus::Failed),
            cancelled: count(JobStatus::Cancelled),
            ready: stats.as_ref().is_some_and(|s| s.readiness.ready),
            ready_reason: stats
                .as_ref()
                .map_or("buffer.enabled = false: nothing is kept to train on", |s| {
                    s.readiness.reason.as_str()
                }),
            training_days: config.buffer.export_days,
            min_records: config.buffer.min_train_records,
        });
        Ok::<_, String>(v23::merged(json!({ "buffer": stats, "jobs": jobs }), v23))
    })
    .await;
    match answer {
        Ok(Ok(body)) => Json(body).into_response(),
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}
