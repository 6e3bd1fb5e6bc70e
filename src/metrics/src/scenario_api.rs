//! The simulator's HTTP API: `POST /scenario/set?scenario=NAME` (or a JSON body
//! `{"scenario": NAME}`), `GET /scenario/status`, `GET /health`. Setting a scenario needs
//! the API key when one is configured (`X-API-Key`), like nordiq-inference's admin API.

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use nordiq_core::timefmt::now_ms;
use nordiq_metrics::scenario::Scenario;
use nordiq_metrics::source::SimSource;
use nordiq_runtime::auth::ApiKey;
use std::sync::{Arc, Mutex};

#[derive(Clone)]
pub struct ScenarioApi {
    pub sim: Arc<Mutex<SimSource>>,
    pub key: Option<Arc<ApiKey>>,
}

pub fn router(api: ScenarioApi) -> Router {
    Router::new()
        .route(
            "/health",
            get(|| async { Json(serde_json::json!({"status": "ok"})) }),
        )
        .route("/scenario/status", get(status))
        .route("/scenario/set", post(set))
        .with_state(api)
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(serde_json::json!({ "error": message.into() }))).into_response()
}

async fn status(State(api): State<ScenarioApi>) -> Response {
    let sim = api.sim.lock().unwrap_or_else(|p| p.into_inner());
    Json(sim.status(now_ms())).into_response()
}

#[derive(serde::Deserialize)]
struct SetQuery {
    scenario: Option<String>,
}

async fn set(
    State(api): State<ScenarioApi>,
    Query(query): Query<SetQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(key) = &api.key {
        let presented = headers
            .get("x-api-key")
            .map(|v| v.as_bytes())
            .unwrap_or_default();
        if !key.matches(presented) {
            return error(StatusCode::UNAUTHORIZED, "missing or wrong X-API-Key");
        }
    }
    let from_body = || {
        serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| {
                v.get("scenario")
                    .and_then(|s| s.as_str())
                    .map(str::to_string)
            })
    };
    let Some(name) = query.scenario.or_else(from_body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "name a scenario: ?scenario=healthy|degrading|critical or {\"scenario\": …}",
        );
    };
    let Some(scenario) = Scenario::parse(&name) else {
        return error(
            StatusCode::BAD_REQUEST,
            format!("unknown scenario `{name}`: use healthy, degrading or critical"),
        );
    };
    let mut sim = api.sim.lock().unwrap_or_else(|p| p.into_inner());
    let now = now_ms();
    sim.set_scenario(scenario, now);
    let status = sim.status(now);
    tracing::info!(
        scenario = scenario.name(),
        affected = status.affected_servers.len(),
        "scenario set"
    );
    Json(status).into_response()
}
