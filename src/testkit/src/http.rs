//! One blocking HTTP client for tests and benches: the runtime's own client
//! (`nordiq_runtime::client::ApiClient`, hyper: chunked bodies, keep-alive, timeouts) on a
//! small current-thread runtime.

use bytes::Bytes;
use nordiq_runtime::client::ApiClient;
use std::time::Duration;

/// An answer: status, body, content type (the runtime client's own type).
pub use nordiq_runtime::client::Answer;

/// A client for `http://127.0.0.1:PORT`, sending `X-API-Key` when it has a key.
pub struct Http {
    runtime: tokio::runtime::Runtime,
    client: ApiClient,
}

impl Http {
    pub fn new(port: u16, key: Option<&str>) -> Http {
        Http::for_url(&format!("http://127.0.0.1:{port}"), key)
    }

    pub fn for_url(base: &str, key: Option<&str>) -> Http {
        Http {
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a test runtime"),
            client: ApiClient::new(base, key.map(str::to_string))
                .with_timeout(Duration::from_secs(120)),
        }
    }

    /// A client built elsewhere (TLS settings, extra headers).
    pub fn from_client(client: ApiClient) -> Http {
        Http {
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a test runtime"),
            client: client.with_timeout(Duration::from_secs(120)),
        }
    }

    /// `GET path`, or why no answer came (refused handshake, unreachable).
    pub fn try_get(&self, path: &str) -> Result<Answer, String> {
        self.runtime
            .block_on(self.client.get(path))
            .map_err(|e| e.to_string())
    }

    pub fn with_timeout(mut self, timeout: Duration) -> Http {
        self.client = self.client.with_timeout(timeout);
        self
    }

    /// The underlying async client (for benches that run their own runtime).
    pub fn client(&self) -> &ApiClient {
        &self.client
    }

    /// Any method, with extra headers; None when the server could not be reached.
    pub fn try_request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Option<Answer> {
        let method = hyper::Method::from_bytes(method.as_bytes()).expect("an HTTP method");
        let content_type = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-type"))
            .map(|(_, v)| *v);
        let rest: Vec<(&str, &str)> = headers
            .iter()
            .filter(|(n, _)| !n.eq_ignore_ascii_case("content-type"))
            .copied()
            .collect();
        self.runtime
            .block_on(
                self.client
                    .send_with(method, path, content_type, &rest, body.into()),
            )
            .ok()
    }

    /// Any method, with extra headers (panics when the server cannot be reached).
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Answer {
        self.try_request(method, path, headers, body)
            .unwrap_or_else(|| panic!("{method} {path}: no answer from {}", self.client.base()))
    }

    pub fn get(&self, path: &str) -> Answer {
        self.request("GET", path, &[], Bytes::new())
    }

    pub fn post(&self, path: &str, content_type: &str, body: impl Into<Bytes>) -> Answer {
        self.request("POST", path, &[("content-type", content_type)], body)
    }

    /// A POST that may find no server (the daemon may be gone).
    pub fn try_post(
        &self,
        path: &str,
        content_type: &str,
        body: impl Into<Bytes>,
    ) -> Option<Answer> {
        self.try_request("POST", path, &[("content-type", content_type)], body)
    }

    /// `GET path` that must answer 2xx with JSON.
    pub fn json(&self, path: &str) -> serde_json::Value {
        let a = self.get(path);
        assert!(
            a.status.is_success(),
            "GET {path}: {} {}",
            a.status,
            a.text()
        );
        a.json()
            .unwrap_or_else(|e| panic!("GET {path}: not JSON ({e}): {}", a.text()))
    }
}
