//! History for people: one server's recent steps from its window (what the forecasts were
//! made from), and any time range from the data buffer as CSV or JSON.

use crate::error::error;
use crate::state::App;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use nordiq_core::timefmt::{format_ms, now_ms, parse_rfc3339_ms};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

/// Rows one export answers at most; a larger range gets 413 and the advice to narrow it.
pub const MAX_EXPORT_ROWS: usize = 500_000;

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/historical", get(export))
        .route("/historical/{server}", get(recent))
}

#[derive(Deserialize)]
struct RecentQuery {
    hours: Option<f64>,
}

/// `GET /historical/{server}?hours=H`: the server's aggregated steps (default: all the
/// window keeps), one array per metric, `null` where a step had no sample.
async fn recent(
    State(app): State<Arc<App>>,
    Path(server): Path<String>,
    Query(q): Query<RecentQuery>,
) -> Response {
    let config = app.config.load_full();
    let step_ms = config.model.step_seconds as i64 * 1000;
    let Some(snapshot) = app.store.snapshot_of(&server, now_ms().div_euclid(step_ms)) else {
        return error(StatusCode::NOT_FOUND, format!("unknown server `{server}`"));
    };
    let want = match q.hours {
        Some(h) if !(h > 0.0 && h.is_finite()) => {
            return error(StatusCode::BAD_REQUEST, "hours must be a positive number")
        }
        Some(h) => ((h * 3600.0) as i64 / config.model.step_seconds as i64).max(1) as usize,
        None => snapshot.len,
    };
    let steps = want.min(snapshot.len);
    let from = snapshot.len - steps;
    let metrics: BTreeMap<&str, Vec<Option<f32>>> = config
        .metrics
        .iter()
        .enumerate()
        .map(|(m, def)| {
            let values = snapshot.series(m)[from..]
                .iter()
                .map(|v| (!v.is_nan()).then_some(*v))
                .collect();
            (def.name.as_str(), values)
        })
        .collect();
    let first_step = snapshot.last_step + 1 - steps as i64;
    Json(serde_json::json!({
        "server": server,
        "profile": snapshot.profile,
        "step_seconds": config.model.step_seconds,
        "start": format_ms(first_step * step_ms),
        "steps": steps,
        "metrics": metrics,
    }))
    .into_response()
}

#[derive(Deserialize)]
struct ExportQuery {
    from: Option<String>,
    to: Option<String>,
    /// Comma-separated server names; absent: every server.
    servers: Option<String>,
    /// `csv` (default) or `json`.
    format: Option<String>,
}

/// `GET /historical?from=&to=&servers=a,b&format=csv|json`: samples from the data buffer
/// (default: the last 24 hours), sorted by time then server.
async fn export(State(app): State<Arc<App>>, Query(q): Query<ExportQuery>) -> Response {
    let Some(buffer) = app.buffer.clone() else {
        return error(
            StatusCode::CONFLICT,
            "the buffer is disabled (buffer.enabled = false): no history is kept",
        );
    };
    let parse = |v: &Option<String>, name: &str, default: i64| match v.as_deref() {
        None | Some("") => Ok(default),
        Some(t) => parse_rfc3339_ms(t).map_err(|e| format!("{name} `{t}`: {e}")),
    };
    let now = now_ms();
    let to = match parse(&q.to, "to", now) {
        Ok(v) => v,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let from = match parse(&q.from, "from", to - 86_400_000) {
        Ok(v) => v,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    if from >= to {
        return error(StatusCode::BAD_REQUEST, "from must be before to");
    }
    let json = match q.format.as_deref() {
        None | Some("csv") => false,
        Some("json") => true,
        Some(other) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("format `{other}`: csv or json"),
            )
        }
    };
    let servers: Option<Vec<String>> = q
        .servers
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(|s| s.split(',').map(|n| n.trim().to_string()).collect());
    let config = app.config.load_full();
    let read = tokio::task::spawn_blocking(move || {
        let mut rows = Vec::new();
        let mut too_many = false;
        buffer.read_range(from, to, &mut |s| {
            if servers
                .as_ref()
                .is_some_and(|list| !list.contains(&s.server))
            {
                return;
            }
            if rows.len() >= MAX_EXPORT_ROWS {
                too_many = true;
                return;
            }
            rows.push(s);
        })?;
        rows.sort_by(|a, b| (a.timestamp_ms, &a.server).cmp(&(b.timestamp_ms, &b.server)));
        Ok::<_, nordiq_buffer::BufferError>((rows, too_many))
    })
    .await;
    let (rows, too_many) = match read {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("reading the buffer: {e}"),
            )
        }
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    if too_many {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("more than {MAX_EXPORT_ROWS} samples in that range: narrow the time range or name servers"),
        );
    }
    let names: Vec<&str> = config.metrics.iter().map(|m| m.name.as_str()).collect();
    if json {
        let records: Vec<serde_json::Value> = rows
            .iter()
            .map(|s| {
                let mut r = serde_json::Map::new();
                r.insert("timestamp".into(), format_ms(s.timestamp_ms).into());
                r.insert("server_name".into(), s.server.clone().into());
                r.insert("profile".into(), s.profile.clone().into());
                for (name, v) in names.iter().zip(&s.values) {
                    let value = if v.is_nan() {
                        serde_json::Value::Null
                    } else {
                        serde_json::json!(v)
                    };
                    r.insert((*name).into(), value);
                }
                serde_json::Value::Object(r)
            })
            .collect();
        return Json(serde_json::json!({ "records": records })).into_response();
    }
    let mut csv = format!("timestamp,server_name,profile,{}\n", names.join(","));
    for s in &rows {
        let _ = write!(
            csv,
            "{},{},{}",
            format_ms(s.timestamp_ms),
            s.server,
            s.profile
        );
        for v in &s.values {
            if v.is_nan() {
                csv.push(',');
            } else {
                let _ = write!(csv, ",{v}");
            }
        }
        csv.push('\n');
    }
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"nordiq-history.csv\"",
            ),
        ],
        Body::from(csv),
    )
        .into_response()
}
