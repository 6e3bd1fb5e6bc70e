//! How handlers answer failures, and what they take from a request before anything else:
//! the API key and a size-limited body. A leaf: it imports only the state it checks keys
//! against, never a handler or a service.

use crate::state::App;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use nordiq_core::api::ErrorBody;
use nordiq_runtime::keyring::Scope;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// A failed request: its status and what to tell the client (as `{"error": …}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            axum::Json(ErrorBody {
                error: self.message,
            }),
        )
            .into_response()
    }
}

/// An [`ApiError`] as a response, for handlers that answer `Response`.
pub fn error(status: StatusCode, message: impl Into<String>) -> Response {
    ApiError::new(status, message).into_response()
}

/// The body of a request whose `Content-Encoding`, when it names one, must be `encoding`:
/// 415 saying `expected` when it names another, else [`read_body`] within
/// `server.max_body_bytes`.
pub async fn read_encoded_body(
    app: &App,
    headers: &HeaderMap,
    body: Body,
    encoding: &str,
    expected: &str,
) -> Result<Bytes, Response> {
    if let Some(sent) = headers.get(header::CONTENT_ENCODING) {
        if sent.as_bytes() != encoding.as_bytes() {
            return Err(error(StatusCode::UNSUPPORTED_MEDIA_TYPE, expected));
        }
    }
    read_body(app, headers, body).await
}

/// The body: refused with 413 above `server.max_body_bytes`; with 503 and `Retry-After`
/// when the bodies being read at once would pass `server.max_inflight_body_bytes` (what
/// it declares, or the most it may be, is reserved while it is read); with 408 when the
/// client takes longer than `server.body_read_timeout_seconds` to send it.
pub async fn read_body(app: &App, headers: &HeaderMap, body: Body) -> Result<Bytes, Response> {
    let server = &app.config.load().server;
    let limit = server.max_body_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(closing(too_large(limit)));
    }
    let reserve = declared
        .unwrap_or(limit)
        .clamp(1, limit)
        .min(u32::MAX as usize) as u32;
    let Ok(_permit) = Arc::clone(&app.body_budget).try_acquire_many_owned(reserve) else {
        app.bodies_shed.fetch_add(1, Ordering::Relaxed);
        let mut refused = error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the daemon is reading as many request bodies as server.max_inflight_body_bytes allows; retry in a second",
        );
        refused
            .headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
        return Err(closing(refused));
    };
    let deadline = std::time::Duration::from_secs(server.body_read_timeout_seconds);
    match tokio::time::timeout(deadline, Limited::new(body, limit).collect()).await {
        Err(_) => Err(closing(error(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "the body did not arrive within server.body_read_timeout_seconds = {}",
                server.body_read_timeout_seconds
            ),
        ))),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => {
            Err(closing(too_large(limit)))
        }
        Ok(Err(e)) => Err(error(
            StatusCode::BAD_REQUEST,
            format!("cannot read body: {e}"),
        )),
    }
}

/// An answer given before the body was read to its end: the connection cannot carry
/// another request, so the client is told not to reuse it.
fn closing(mut response: Response) -> Response {
    response.headers_mut().insert(
        header::CONNECTION,
        header::HeaderValue::from_static("close"),
    );
    response
}

fn too_large(limit: usize) -> Response {
    error(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("body larger than server.max_body_bytes = {limit}; split the batch"),
    )
}

/// Whether `headers` carry a key with `scope`: `Ok(Some(name))` for the key's name,
/// `Ok(None)` when no key is configured (anonymous access), else the refusal — 401 for a
/// missing or unknown key, 403 for a known key without the scope.
pub fn authorize(app: &App, headers: &HeaderMap, scope: Scope) -> Result<Option<String>, ApiError> {
    let keys = app.keys.load();
    if keys.is_empty() {
        // No key configured: the daemon only starts so when allow_anonymous = true.
        return Ok(None);
    }
    let Some(presented) = presented_key(headers) else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "missing X-API-Key header (the key is in the key file, see `nordiqctl keygen`)",
        ));
    };
    match keys.find(presented) {
        None => Err(ApiError::new(StatusCode::UNAUTHORIZED, "wrong X-API-Key")),
        Some(key) if !key.scopes.contains(scope) => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "key `{}` has scopes [{}]; this needs `{}` (nordiqctl keygen --name NAME --scope {})",
                key.name,
                key.scopes,
                scope.name(),
                scope.name()
            ),
        )),
        Some(key) => Ok(Some(key.name.clone())),
    }
}

/// Middleware: the routes behind it need a key with `scope`. Admin actions (anything but
/// GET) are logged with the key's name, never the key.
pub async fn require_scope(
    State((app, scope)): State<(Arc<App>, Scope)>,
    request: Request,
    next: Next,
) -> Response {
    match authorize(&app, request.headers(), scope) {
        Ok(name) => {
            if scope == Scope::Admin && request.method() != axum::http::Method::GET {
                tracing::info!(
                    key = name.as_deref().unwrap_or("anonymous"),
                    method = %request.method(),
                    path = request.uri().path(),
                    "admin request"
                );
            }
            next.run(request).await
        }
        Err(refused) => refused.into_response(),
    }
}

/// The key a request presents: `X-API-Key`, else `Authorization: Bearer KEY` (what
/// Prometheus and remote-write senders can be configured to send).
pub fn presented_key(headers: &HeaderMap) -> Option<&[u8]> {
    if let Some(k) = headers.get("x-api-key") {
        return Some(k.as_bytes());
    }
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
}
