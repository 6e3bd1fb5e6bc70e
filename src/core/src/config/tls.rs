//! `[tls]`: HTTPS for nordiq-inference and nordiq-dashboard, and what NordIQ's own clients
//! (nordiqctl, the dashboard, nordiq-metrics) trust and present when they call the daemon.
//! Empty paths mean "not set"; plain HTTP stays the default.

use super::invalid::{require, Invalid};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// The servers' certificate chain (PEM). With `key_file`, both daemons serve HTTPS.
    /// `$CREDENTIALS_DIRECTORY/tls-cert` (systemd `LoadCredential=`) takes precedence.
    pub cert_file: PathBuf,
    /// The private key (PEM: PKCS#8, PKCS#1 or SEC1); `$CREDENTIALS_DIRECTORY/tls-key` first.
    pub key_file: PathBuf,
    /// Require client certificates signed by this CA (PEM), mutual TLS.
    pub client_ca_file: PathBuf,
    /// The CA (PEM) NordIQ's clients trust for the daemon, beside the system roots.
    pub ca_file: PathBuf,
    /// The certificate NordIQ's clients present when the daemon requires one.
    pub client_cert_file: PathBuf,
    pub client_key_file: PathBuf,
}

fn set(p: &Path) -> bool {
    !p.as_os_str().is_empty()
}

impl TlsConfig {
    /// Whether the servers are configured for HTTPS by file paths (credentials may turn it
    /// on too: see `nordiq_runtime::tls`).
    pub fn files_set(&self) -> bool {
        set(&self.cert_file)
    }

    /// The client certificate and key, when both are set.
    pub fn client_identity(&self) -> Option<(&Path, &Path)> {
        (set(&self.client_cert_file) && set(&self.client_key_file)).then_some((
            self.client_cert_file.as_path(),
            self.client_key_file.as_path(),
        ))
    }

    /// The CA file clients trust, when set.
    pub fn ca(&self) -> Option<&Path> {
        set(&self.ca_file).then_some(self.ca_file.as_path())
    }

    /// The CA that signs client certificates, when mutual TLS is on.
    pub fn client_ca(&self) -> Option<&Path> {
        set(&self.client_ca_file).then_some(self.client_ca_file.as_path())
    }

    pub(crate) fn validate(&self) -> Result<(), Invalid> {
        require(
            set(&self.cert_file) == set(&self.key_file),
            "tls.key_file",
            || "tls.cert_file and tls.key_file are set together (both, or neither)".into(),
        )?;
        require(
            !set(&self.client_ca_file) || set(&self.cert_file),
            "tls.client_ca_file",
            || {
                "client certificates need the server's own: set tls.cert_file and tls.key_file"
                    .into()
            },
        )?;
        require(
            set(&self.client_cert_file) == set(&self.client_key_file),
            "tls.client_key_file",
            || "tls.client_cert_file and tls.client_key_file are set together".into(),
        )
    }
}
