//! `POST /feed/data`: read and validate the body (JSON batch or NDJSON), then hand it to
//! the ingest service; also the answer both ingest routes give.

use crate::error::{error, read_encoded_body};
use crate::services::ingest::{self, IngestError};
use crate::state::App;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use nordiq_core::api::IngestResponse;
use nordiq_core::config::{Config, MixedBatchPolicy};
use nordiq_core::ingest::{BodyError, Validated, Validator};
use nordiq_core::timefmt::now_ms;
use serde::Deserialize;
use std::sync::Arc;

/// Bodies above this are validated on the blocking pool, off the async workers.
const INLINE_VALIDATION_BYTES: usize = 64 * 1024;

#[derive(Deserialize)]
pub struct FeedQuery {
    pub on_error: Option<MixedBatchPolicy>,
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
pub async fn feed(
    State(app): State<Arc<App>>,
    Query(query): Query<FeedQuery>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let config = app.config.load_full();
    let body = match read_encoded_body(
        &app,
        &headers,
        body,
        "identity",
        "Content-Encoding is not supported; send the body uncompressed",
    )
    .await
    {
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
    ingest_answer(ingest::apply(&app, &config, validated, policy, batch_id).await)
}

/// The HTTP answer to an ingest outcome: 422 when records came and none was accepted,
/// 503 when nothing could be made durable, 200 otherwise.
pub fn ingest_answer(outcome: Result<IngestResponse, IngestError>) -> Response {
    match outcome {
        Ok(response) => {
            let status = if response.accepted == 0
                && response.records > 0
                && response.rejected_records > 0
            {
                StatusCode::UNPROCESSABLE_ENTITY
            } else {
                StatusCode::OK
            };
            (status, axum::Json(response)).into_response()
        }
        Err(e @ (IngestError::Persist(_) | IngestError::Publish(_))) => {
            error(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
        }
    }
}
