//! The model and training administration API: the model store, hot reload, training jobs.

use crate::error::error;
use crate::services::jobs::{self, JobRequestError};
use crate::services::reload::{self, Candidate};
use crate::state::App;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use nordiq_core::job_record::{JobParams, JobStatus};
use nordiq_runtime::job_store::JobStore;
use nordiq_runtime::model_store::ModelStore;
use serde::Deserialize;
use std::path::PathBuf;
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
    let store = ModelStore::new(app.config.load().paths.state_dir.join("models"));
    let serving = reload::model_info(&app).serving;
    match tokio::task::spawn_blocking(move || store.list()).await {
        Ok(Ok(models)) => {
            Json(serde_json::json!({ "serving": serving, "models": models })).into_response()
        }
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn model_info(State(app): State<Arc<App>>) -> Response {
    Json(reload::model_info(&app)).into_response()
}

#[derive(Deserialize)]
struct ReloadQuery {
    /// A model id under state_dir/models, or a model directory's path.
    model_path: Option<String>,
}

/// `POST /admin/reload-model[?model_path=]`: 200 with the outcome when the candidate now
/// serves, 422 with the outcome (and why) when it was refused and the old model kept.
async fn reload_model(State(app): State<Arc<App>>, Query(q): Query<ReloadQuery>) -> Response {
    let candidate = match q.model_path.as_deref() {
        None | Some("") => Candidate::Current,
        Some(p) if p.contains('/') => Candidate::Path(PathBuf::from(p)),
        Some(id) => {
            let store = ModelStore::new(app.config.load().paths.state_dir.join("models"));
            match store.path_of(id) {
                Ok(dir) => Candidate::Path(dir),
                Err(e) => return error(StatusCode::NOT_FOUND, e.to_string()),
            }
        }
    };
    let outcome = reload::reload_model(&app, candidate).await;
    app.notifier.status(&app.status_line());
    let code = if outcome.ok {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    (code, Json(outcome)).into_response()
}

#[derive(Deserialize)]
struct TriggerQuery {
    epochs: Option<usize>,
    #[serde(default)]
    incremental: bool,
    #[serde(default)]
    force: bool,
}

fn job_error(e: JobRequestError) -> Response {
    let code = match &e {
        JobRequestError::Busy(..) => StatusCode::CONFLICT,
        JobRequestError::NothingToCancel => StatusCode::CONFLICT,
        JobRequestError::Unknown(_) => StatusCode::NOT_FOUND,
        JobRequestError::Launch(_) | JobRequestError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    error(code, e.to_string())
}

/// `POST /admin/trigger-training?epochs=&incremental=&force=`: 202 with the job id, 409
/// while another job is queued or running.
async fn trigger_training(State(app): State<Arc<App>>, Query(q): Query<TriggerQuery>) -> Response {
    if q.epochs == Some(0) {
        return error(StatusCode::BAD_REQUEST, "epochs must be at least 1");
    }
    let params = JobParams {
        epochs: q.epochs,
        incremental: q.incremental,
        force: q.force,
    };
    match jobs::trigger(&app, params).await {
        Ok(t) => (StatusCode::ACCEPTED, Json(t)).into_response(),
        Err(e) => job_error(e),
    }
}

#[derive(Deserialize)]
struct StatusQuery {
    job_id: Option<String>,
}

/// `GET /admin/training-status[?job_id=]`: the job's record (the latest job by default).
async fn training_status(State(app): State<Arc<App>>, Query(q): Query<StatusQuery>) -> Response {
    match jobs::status(&app, q.job_id.as_deref()) {
        Ok(record) => Json(record).into_response(),
        Err(e) => job_error(e),
    }
}

/// `POST /admin/cancel-training`: stops the running job; answers with its final record.
async fn cancel_training(State(app): State<Arc<App>>) -> Response {
    match jobs::cancel(&app).await {
        Ok(record) => Json(record).into_response(),
        Err(e) => job_error(e),
    }
}

/// `GET /admin/training-stats`: the buffer (records, files, days, bytes, records per
/// server, readiness to train) and the job history's totals.
async fn training_stats(State(app): State<Arc<App>>) -> Response {
    let jobs_dir = app.config.load().paths.state_dir.join("jobs");
    let buffer = app.buffer.clone();
    let answer = tokio::task::spawn_blocking(move || {
        let (records, unreadable) = JobStore::new(jobs_dir).list();
        let count = |s: JobStatus| records.iter().filter(|r| r.status == s).count();
        let last_completed = records
            .iter()
            .rev()
            .find(|r| r.status == JobStatus::Completed)
            .map(|r| r.job_id.clone());
        let jobs = serde_json::json!({
            "total": records.len(),
            "completed": count(JobStatus::Completed),
            "failed": count(JobStatus::Failed),
            "cancelled": count(JobStatus::Cancelled),
            "active": records.iter().filter(|r| r.status.is_active()).count(),
            "last_completed": last_completed,
            "unreadable_records": unreadable,
        });
        let buffer = match buffer {
            None => Ok(serde_json::Value::Null),
            Some(b) => b
                .stats()
                .map(|s| serde_json::to_value(s).unwrap_or_default())
                .map_err(|e| format!("reading buffer stats: {e}")),
        };
        buffer.map(|b| serde_json::json!({ "buffer": b, "jobs": jobs }))
    })
    .await;
    match answer {
        Ok(Ok(body)) => Json(body).into_response(),
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}
