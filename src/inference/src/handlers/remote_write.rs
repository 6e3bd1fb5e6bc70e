//! `POST /api/v1/write`: Prometheus remote write 1.0 (snappy + protobuf), so Prometheus,
//! vmagent or Grafana Agent push straight into NordIQ. The series the catalog knows
//! (`[remote_write]`) become records and go the way `/feed/data` records go (validated,
//! buffered, into the windows; bad values refused, the rest applied).

use crate::error::{error, read_encoded_body};
use crate::services::ingest;
use crate::state::App;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use nordiq_core::config::MixedBatchPolicy;
use nordiq_core::ingest::{Validated, Validator};
use nordiq_core::remote_write::{decode, map_series};
use std::sync::atomic::Ordering;
use std::sync::Arc;

pub async fn write(State(app): State<Arc<App>>, headers: HeaderMap, body: Body) -> Response {
    let config = app.config.load_full();
    let body = match read_encoded_body(
        &app,
        &headers,
        body,
        "snappy",
        "remote write bodies are snappy-compressed (Content-Encoding: snappy)",
    )
    .await
    {
        Ok(b) => b,
        Err(response) => return response,
    };
    let series = match decode(&body) {
        Ok(s) => s,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let mapped = map_series(&config, &series);
    app.counters
        .remote_write_ignored_series
        .fetch_add(mapped.ignored_series as u64, Ordering::Relaxed);
    let validator = Validator::new(&config, nordiq_core::timefmt::now_ms());
    let mut validated = Validated::default();
    for ((server, t), values) in mapped.records {
        let mut record = validator.record();
        record.timestamp_ms(t);
        record.server(&server);
        for (metric, value) in values {
            record.metric(&metric, Some(value));
        }
        let index = validated.records;
        record.finish(index, &mut validated);
    }
    if validated.records == 0 {
        // Nothing NordIQ knows in this request: accepted, so the sender does not retry it.
        return StatusCode::NO_CONTENT.into_response();
    }
    let outcome = ingest::apply(
        &app,
        &config,
        validated,
        MixedBatchPolicy::AcceptValid,
        None,
    )
    .await;
    super::feed::ingest_answer(outcome)
}
