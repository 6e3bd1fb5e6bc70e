//! A small async HTTP/1.1 client for NordIQ's own API and the sources it reads
//! (nordiqctl, the dashboard, nordiq-metrics, tests, benches): keep-alive, the `X-API-Key`
//! header, `http://` and `https://` (rustls; the system roots plus a CA file, and a client
//! certificate when the server requires one).

use crate::tls::{ClientTls, TlsError};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::time::Duration;

/// Why a request got no answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("bad URL {url}: {reason}")]
    Url { url: String, reason: String },
    #[error("cannot reach {url}: {reason} (is nordiq-inference running?)")]
    Unreachable { url: String, reason: String },
    #[error("{url} did not answer within {0:?}", .timeout)]
    Timeout { url: String, timeout: Duration },
}

/// An answer: status and body.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: StatusCode,
    pub body: Bytes,
    pub content_type: Option<String>,
    pub headers: hyper::HeaderMap,
}

impl Answer {
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A client bound to one base URL (`http://127.0.0.1:8000`).
#[derive(Clone)]
pub struct ApiClient {
    base: String,
    key: Option<String>,
    timeout: Duration,
    inner: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl ApiClient {
    /// A client trusting the system roots for `https://` URLs.
    pub fn new(base: &str, key: Option<String>) -> Self {
        ApiClient::build(base, key, crate::tls::system_client_config())
    }

    /// A client trusting the system roots and `tls.ca_file`, presenting `tls.identity`.
    pub fn with_tls(base: &str, key: Option<String>, tls: &ClientTls) -> Result<Self, TlsError> {
        Ok(ApiClient::build(base, key, crate::tls::client_config(tls)?))
    }

    fn build(base: &str, key: Option<String>, tls: rustls::ClientConfig) -> Self {
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        http.enforce_http(false);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        ApiClient {
            base: base.trim_end_matches('/').to_string(),
            key,
            timeout: Duration::from_secs(30),
            inner: Client::builder(TokioExecutor::new()).build(connector),
        }
    }

    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub async fn get(&self, path: &str) -> Result<Answer, ClientError> {
        self.send(Method::GET, path, None, Bytes::new()).await
    }

    pub async fn post(
        &self,
        path: &str,
        content_type: &str,
        body: impl Into<Bytes>,
    ) -> Result<Answer, ClientError> {
        self.send(Method::POST, path, Some(content_type), body.into())
            .await
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: Bytes,
    ) -> Result<Answer, ClientError> {
        self.send_with(method, path, content_type, &[], body).await
    }

    /// [`send`](Self::send) with extra request headers.
    pub async fn send_with(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Result<Answer, ClientError> {
        let url = format!("{}{}", self.base, path);
        let mut builder = Request::builder().method(method).uri(&url);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        if let Some(key) = &self.key {
            builder = builder.header("x-api-key", key);
        }
        if let Some(ct) = content_type {
            builder = builder.header("content-type", ct);
        }
        let request = builder
            .body(Full::new(body))
            .map_err(|e| ClientError::Url {
                url: url.clone(),
                reason: e.to_string(),
            })?;
        let unreachable = |e: &dyn std::fmt::Display| ClientError::Unreachable {
            url: url.clone(),
            reason: e.to_string(),
        };
        let work = async {
            let response = self.inner.request(request).await.map_err(|e| {
                // The useful part of a connect error is its source chain.
                let mut reason = e.to_string();
                let mut source = std::error::Error::source(&e);
                while let Some(s) = source {
                    reason = format!("{reason}: {s}");
                    source = s.source();
                }
                unreachable(&reason)
            })?;
            let status = response.status();
            let content_type = response
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let headers = response.headers().clone();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| unreachable(&e))?
                .to_bytes();
            Ok(Answer {
                status,
                body,
                content_type,
                headers,
            })
        };
        tokio::time::timeout(self.timeout, work)
            .await
            .map_err(|_| ClientError::Timeout {
                url: url.clone(),
                timeout: self.timeout,
            })?
    }
}

/// An `Authorization` header value for HTTP basic auth.
pub fn basic_authorization(username: &str, password: &str) -> String {
    use base64::Engine as _;
    let pair = format!("{username}:{password}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

/// A client for nordiq-inference as `config` describes it: `url` when given, else from
/// `server.listen` (`https` when `tls.cert_file` is set), trusting the system roots and
/// `tls.ca_file`, presenting `tls.client_cert_file` when set.
pub fn for_daemon(
    config: &nordiq_core::config::Config,
    url: Option<&str>,
    key: Option<String>,
) -> Result<ApiClient, TlsError> {
    let base = match url.filter(|u| !u.is_empty()) {
        Some(u) => u.to_string(),
        None => base_url_for_listen(&config.server.listen, config.tls.files_set()),
    };
    ApiClient::with_tls(&base, key, &ClientTls::for_daemon(&config.tls))
}

/// The base URL for a listen address: `0.0.0.0:8000` is reached on 127.0.0.1; `https`
/// when the daemon serves TLS.
pub fn base_url_for_listen(listen: &str, https: bool) -> String {
    let addr = listen
        .replace("0.0.0.0", "127.0.0.1")
        .replace("[::]", "[::1]");
    let scheme = if https { "https" } else { "http" };
    format!("{scheme}://{addr}")
}

/// Percent-encodes a query value: everything but unreserved characters and `/ : ,` (which
/// a query may carry as they are: paths, timestamps, lists).
pub fn query_escape(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z'
            | b'a'..=b'z'
            | b'0'..=b'9'
            | b'-'
            | b'_'
            | b'.'
            | b'~'
            | b'/'
            | b':'
            | b',' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{basic_authorization, query_escape};

    #[test]
    fn escapes_query_values() {
        assert_eq!(query_escape("tft_2026"), "tft_2026");
        assert_eq!(query_escape("/var/x y&z"), "/var/x%20y%26z");
        assert_eq!(query_escape("2026-11-28T00:00:00Z"), "2026-11-28T00:00:00Z");
        assert_eq!(query_escape("a b&c"), "a%20b%26c");
    }

    #[test]
    fn basic_auth_is_base64_of_user_colon_password() {
        // RFC 7617's example.
        assert_eq!(
            basic_authorization("Aladdin", "open sesame"),
            "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
    }
}
