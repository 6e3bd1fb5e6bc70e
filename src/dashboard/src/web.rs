//! The dashboard's HTTP side: the embedded page, a whitelisted proxy to nordiq-inference
//! (the API key stays on the server), the Overview's computed numbers, and the optional
//! login (the key once, then an HttpOnly session cookie).

use crate::overview;
use arc_swap::ArcSwap;
use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use nordiq_core::api::PredictionsCurrent;
use nordiq_core::config::Config;
use nordiq_runtime::auth::ApiKey;
use nordiq_runtime::client::{query_escape, ApiClient};
use nordiq_runtime::tls::TlsError;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const INDEX_HTML: &str = include_str!("../assets/index.html");
const APP_JS: &str = include_str!("../assets/app.js");
const APP_CSS: &str = include_str!("../assets/app.css");
const SESSION_COOKIE: &str = "nordiq_session";

/// Daemon paths the page may read through `/api/…` (GET), by prefix.
const READABLE: [&str; 10] = [
    "status",
    "predictions/",
    "alerts/active",
    "explain/",
    "historical",
    "admin/model-info",
    "admin/models",
    "admin/training-status",
    "admin/training-stats",
    "health",
];
/// Daemon paths the page may call (POST).
const CALLABLE: [&str; 2] = ["admin/trigger-training", "admin/cancel-training"];

pub struct Dash {
    /// Served over HTTPS (the session cookie is then `Secure`).
    pub https: bool,
    pub config: ArcSwap<Config>,
    pub key: ArcSwap<Option<ApiKey>>,
    pub client: ArcSwap<ApiClient>,
    sessions: Mutex<HashMap<String, Instant>>,
}

impl Dash {
    /// Fails when the `[tls]` client files (CA, client certificate) cannot be used.
    /// `https`: the dashboard is served over TLS (its session cookie is then `Secure`).
    pub fn new(config: Config, key: Option<ApiKey>, https: bool) -> Result<Arc<Dash>, TlsError> {
        let client = client_for(&config, key.as_ref())?;
        Ok(Arc::new(Dash {
            https,
            config: ArcSwap::from_pointee(config),
            key: ArcSwap::from_pointee(key),
            client: ArcSwap::from_pointee(client),
            sessions: Mutex::new(HashMap::new()),
        }))
    }

    /// After a reload: new config and key, a client that uses them (refused, the running
    /// ones kept, when the `[tls]` client files cannot be used).
    pub fn replace(&self, config: Config, key: Option<ApiKey>) -> Result<(), TlsError> {
        let client = client_for(&config, key.as_ref())?;
        self.client.store(Arc::new(client));
        self.config.store(Arc::new(config));
        self.key.store(Arc::new(key));
        Ok(())
    }
}

/// Where the daemon answers: `dashboard.inference_url`, else from `server.listen`.
pub fn inference_url(config: &Config) -> String {
    if config.dashboard.inference_url.is_empty() {
        nordiq_runtime::client::base_url_for_listen(&config.server.listen, config.tls.files_set())
    } else {
        config.dashboard.inference_url.clone()
    }
}

/// The client to the daemon, with the `[tls]` CA and client certificate.
fn client_for(config: &Config, key: Option<&ApiKey>) -> Result<ApiClient, TlsError> {
    let key = key.map(|k| k.expose().to_string());
    let url = inference_url(config);
    Ok(nordiq_runtime::client::for_daemon(config, Some(&url), key)?
        .with_timeout(Duration::from_secs(60)))
}

pub fn router(dash: Arc<Dash>) -> Router {
    let guarded = Router::new()
        .route("/", get(index))
        .route(
            "/app.js",
            get(|| asset("text/javascript; charset=utf-8", APP_JS)),
        )
        .route(
            "/app.css",
            get(|| asset("text/css; charset=utf-8", APP_CSS)),
        )
        .route("/api/config", get(page_config))
        .route("/api/overview", get(overview_handler))
        .route("/api/{*path}", get(proxy).post(proxy))
        .route_layer(middleware::from_fn_with_state(
            Arc::clone(&dash),
            require_session,
        ));
    Router::new()
        .route(
            "/health",
            get(|| async { Json(serde_json::json!({"status": "ok"})) }),
        )
        .route("/login", get(login_page).post(login))
        .merge(guarded)
        .with_state(dash)
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(serde_json::json!({ "error": message.into() }))).into_response()
}

async fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

async fn index() -> Response {
    asset("text/html; charset=utf-8", INDEX_HTML).await
}

fn session_of(headers: &HeaderMap) -> Option<String> {
    let cookies = headers.get(header::COOKIE)?.to_str().ok()?;
    cookies.split(';').find_map(|c| {
        let (name, value) = c.trim().split_once('=')?;
        (name == SESSION_COOKIE).then(|| value.to_string())
    })
}

async fn require_session(State(dash): State<Arc<Dash>>, request: Request, next: Next) -> Response {
    let config = dash.config.load();
    if !config.dashboard.require_login {
        return next.run(request).await;
    }
    let valid = session_of(request.headers()).is_some_and(|token| {
        let mut sessions = dash.sessions.lock().unwrap_or_else(|p| p.into_inner());
        sessions.retain(|_, expires| *expires > Instant::now());
        sessions.contains_key(&token)
    });
    if valid {
        return next.run(request).await;
    }
    if request.uri().path().starts_with("/api/") {
        error(StatusCode::UNAUTHORIZED, "log in first (GET /login)")
    } else {
        (StatusCode::SEE_OTHER, [(header::LOCATION, "/login")]).into_response()
    }
}

async fn login_page() -> Response {
    asset(
        "text/html; charset=utf-8",
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>NordIQ — log in</title><link rel="stylesheet" href="/app.css"></head>
<body class="login"><form method="post" action="/login"><h1>NordIQ</h1>
<label>API key <input type="password" name="key" autocomplete="current-password" autofocus></label>
<button type="submit">Log in</button><p>The key is in /etc/nordiq/api-key (readable by root and the nordiq group).</p></form></body></html>"#,
    )
    .await
}

/// `POST /login` with `key=…` (a form): a session cookie when the key matches.
async fn login(State(dash): State<Arc<Dash>>, body: String) -> Response {
    let presented = body
        .split('&')
        .find_map(|kv| kv.strip_prefix("key="))
        .map(percent_decode)
        .unwrap_or_default();
    let key = dash.key.load();
    let Some(key) = key.as_ref() else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the dashboard has no API key configured, so it cannot check one",
        );
    };
    if !key.matches(presented.as_bytes()) {
        return (StatusCode::UNAUTHORIZED, "wrong key").into_response();
    }
    let mut raw = [0u8; 32];
    if getrandom::fill(&mut raw).is_err() {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "no randomness for a session",
        );
    }
    let token: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    let hours = dash.config.load().dashboard.session_hours;
    dash.sessions
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(
            token.clone(),
            Instant::now() + Duration::from_secs(hours * 3600),
        );
    (
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, "/".to_string()),
            (
                header::SET_COOKIE,
                format!(
                    "{SESSION_COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{}",
                    hours * 3600,
                    // Over HTTPS the browser must never send the session in clear text.
                    if dash.https { "; Secure" } else { "" }
                ),
            ),
        ],
    )
        .into_response()
}

fn percent_decode(s: &str) -> String {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What the page needs to know besides the daemon's answers: the catalog, the refresh
/// default, whether scenario buttons apply.
async fn page_config(State(dash): State<Arc<Dash>>) -> Response {
    let config = dash.config.load();
    Json(serde_json::json!({
        "catalog": config.metrics,
        "refresh_seconds": config.dashboard.refresh_seconds,
        "simulator": !config.dashboard.simulator_url.is_empty(),
        "inference_url": inference_url(&config),
    }))
    .into_response()
}

async fn overview_handler(State(dash): State<Arc<Dash>>) -> Response {
    let client = dash.client.load_full();
    let answer = match client.get("/predictions/current").await {
        Ok(a) if a.status.is_success() => a,
        Ok(a) => return relay(a),
        Err(e) => return error(StatusCode::BAD_GATEWAY, e.to_string()),
    };
    let current: PredictionsCurrent = match answer.json() {
        Ok(p) => p,
        Err(e) => {
            return error(
                StatusCode::BAD_GATEWAY,
                format!("nordiq-inference answered something unexpected: {e}"),
            )
        }
    };
    Json(overview::compute(&current)).into_response()
}

fn relay(answer: nordiq_runtime::client::Answer) -> Response {
    let mut response = Response::new(Body::from(answer.body));
    *response.status_mut() = answer.status;
    if let Some(ct) = answer.content_type {
        if let Ok(v) = ct.parse() {
            response.headers_mut().insert(header::CONTENT_TYPE, v);
        }
    }
    response
}

/// Whether `/api/<path>` may be forwarded with `method`.
pub fn allowed(method: &Method, path: &str) -> bool {
    if path.contains("..") {
        return false;
    }
    match *method {
        Method::GET => READABLE.iter().any(|p| path.starts_with(p)),
        Method::POST => CALLABLE.contains(&path),
        _ => false,
    }
}

async fn proxy(
    State(dash): State<Arc<Dash>>,
    method: Method,
    Path(path): Path<String>,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    if path.starts_with("scenario/") {
        return scenario(&dash, &method, &path, &query).await;
    }
    if !allowed(&method, &path) {
        return error(
            StatusCode::NOT_FOUND,
            format!("/api/{path} is not something the dashboard forwards"),
        );
    }
    forward(
        &dash.client.load_full(),
        &method,
        &with_query(&path, &query),
    )
    .await
}

/// Sends the request on and relays the answer (502 when nothing answers).
async fn forward(client: &ApiClient, method: &Method, target: &str) -> Response {
    let answer = if *method == Method::POST {
        client.post(target, "application/json", "").await
    } else {
        client.get(target).await
    };
    match answer {
        Ok(a) => relay(a),
        Err(e) => error(StatusCode::BAD_GATEWAY, e.to_string()),
    }
}

/// `/api/scenario/set` (POST) and `/api/scenario/status` (GET) go to the simulator when
/// `dashboard.simulator_url` names one.
async fn scenario(
    dash: &Dash,
    method: &Method,
    path: &str,
    query: &[(String, String)],
) -> Response {
    let config = dash.config.load();
    if config.dashboard.simulator_url.is_empty() {
        return error(
            StatusCode::NOT_FOUND,
            "no simulator is configured (dashboard.simulator_url)",
        );
    }
    let ok = matches!(
        (method, path),
        (&Method::POST, "scenario/set") | (&Method::GET, "scenario/status")
    );
    if !ok {
        return error(StatusCode::NOT_FOUND, format!("/api/{path}: not forwarded"));
    }
    let key = dash.key.load();
    let client = ApiClient::new(
        &config.dashboard.simulator_url,
        key.as_ref().as_ref().map(|k| k.expose().to_string()),
    );
    forward(&client, method, &with_query(path, query)).await
}

/// `/path?k=v&…` with the values percent-encoded again.
fn with_query(path: &str, query: &[(String, String)]) -> String {
    let pairs: Vec<String> = query
        .iter()
        .map(|(k, v)| format!("{}={}", query_escape(k), query_escape(v)))
        .collect();
    if pairs.is_empty() {
        format!("/{path}")
    } else {
        format!("/{path}?{}", pairs.join("&"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_whitelisted_paths_are_forwarded() {
        assert!(allowed(&Method::GET, "predictions/current"));
        assert!(allowed(&Method::GET, "historical/ppweb001"));
        assert!(allowed(&Method::POST, "admin/trigger-training"));
        assert!(
            !allowed(&Method::POST, "feed/data"),
            "no ingest from the page"
        );
        assert!(!allowed(&Method::POST, "admin/reload-model"));
        assert!(!allowed(&Method::GET, "predictions/../admin/x"));
        assert!(!allowed(&Method::DELETE, "status"));
    }

    #[test]
    fn cookies_and_forms_are_read() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            "a=1; nordiq_session=abc; b=2".parse().unwrap(),
        );
        assert_eq!(session_of(&h).as_deref(), Some("abc"));
        assert_eq!(percent_decode("a%2Bb+c%3d"), "a+b c=");
        assert_eq!(percent_decode("100%"), "100%");
    }
}
