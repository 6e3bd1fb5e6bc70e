//! What can go wrong reading a metric source, sorted by what to do about it: a transient
//! failure (unreachable, timed out, 5xx/429) is simply read again at the next interval; a
//! permanent one (an answer this reader cannot use, settings that cannot work, a high-water
//! mark that cannot be read or saved) will not go away by itself — the mark stays where it
//! is (nothing is skipped, nothing lost) and the error says what to fix.

use hyper::StatusCode;
use nordiq_runtime::client::ClientError;

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// Could not reach the source, or it answered 5xx/429: transient.
    #[error("{0}")]
    Unreachable(String),
    /// The source answered something unusable (4xx, or not the protocol's shape).
    #[error("{0}")]
    BadAnswer(String),
    /// The source's settings cannot work (found when the source is opened).
    #[error("{0}")]
    Setup(String),
    /// The saved high-water mark cannot be read or saved.
    #[error("{0}")]
    Mark(String),
}

impl SourceError {
    /// Whether reading again later may succeed without anyone fixing anything.
    pub fn is_transient(&self) -> bool {
        matches!(self, SourceError::Unreachable(_))
    }

    /// A non-success HTTP answer from `what`: 5xx and 429 are transient.
    pub fn from_status(what: &str, status: StatusCode, body: &str) -> SourceError {
        let message = match body.trim() {
            "" => format!("{what}: {status}"),
            body => format!("{what}: {status}: {body}"),
        };
        if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
            SourceError::Unreachable(message)
        } else {
            SourceError::BadAnswer(message)
        }
    }
}

impl From<nordiq_runtime::secret::SecretError> for SourceError {
    /// A password or key that cannot be read is a setting to fix.
    fn from(e: nordiq_runtime::secret::SecretError) -> SourceError {
        SourceError::Setup(e.to_string())
    }
}

impl From<ClientError> for SourceError {
    fn from(e: ClientError) -> SourceError {
        match e {
            ClientError::Url { .. } => SourceError::Setup(e.to_string()),
            // The client's own message guesses at nordiq-inference; a source is not it.
            ClientError::Unreachable { url, reason } => {
                SourceError::Unreachable(format!("cannot reach {url}: {reason}"))
            }
            ClientError::Timeout { .. } => SourceError::Unreachable(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_errors_are_transient_client_errors_are_not() {
        for (status, transient) in [
            (StatusCode::SERVICE_UNAVAILABLE, true),
            (StatusCode::BAD_GATEWAY, true),
            (StatusCode::TOO_MANY_REQUESTS, true),
            (StatusCode::BAD_REQUEST, false),
            (StatusCode::UNAUTHORIZED, false),
            (StatusCode::NOT_FOUND, false),
        ] {
            let e = SourceError::from_status("http://x/q", status, "why");
            assert_eq!(e.is_transient(), transient, "{status}");
            assert!(e.to_string().contains("why"));
        }
        let unreachable = SourceError::from(ClientError::Timeout {
            url: "http://x".into(),
            timeout: std::time::Duration::from_secs(1),
        });
        assert!(unreachable.is_transient());
        let refused = SourceError::from(ClientError::Unreachable {
            url: "http://prometheus:9090".into(),
            reason: "connection refused".into(),
        });
        assert!(refused.is_transient());
        assert!(
            !refused.to_string().contains("nordiq-inference"),
            "{refused}"
        );
        assert!(!SourceError::Mark("m".into()).is_transient());
    }
}
