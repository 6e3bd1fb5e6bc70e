//! TLS for NordIQ's servers and clients: rustls (on ring), certificates and keys from PEM
//! files or systemd credentials, client certificates optional on both sides.
//!
//! A server's TLS settings live in a [`ServerTls`] that a reload swaps: connections
//! accepted after a SIGHUP use the new certificate, open ones keep theirs.

use arc_swap::ArcSwap;
use nordiq_core::config::TlsConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

/// The credential names `LoadCredential=` can pass instead of the config's paths.
pub const CERT_CREDENTIAL: &str = "tls-cert";
pub const KEY_CREDENTIAL: &str = "tls-key";

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {what} {path}: {message}")]
    Read {
        what: &'static str,
        path: PathBuf,
        message: String,
    },
    #[error("{what} {path} holds no PEM {expected}")]
    Empty {
        what: &'static str,
        path: PathBuf,
        expected: &'static str,
    },
    #[error("{0}")]
    Rejected(String),
}

/// Where a server's certificate and key are: the credentials systemd passed, else the
/// config's paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: Option<PathBuf>,
}

impl ServerFiles {
    /// The files to serve HTTPS with, or None for plain HTTP. `credentials` is
    /// `$CREDENTIALS_DIRECTORY`.
    pub fn resolve(config: &TlsConfig, credentials: Option<&Path>) -> Option<ServerFiles> {
        let from_credentials = credentials.and_then(|dir| {
            let (cert, key) = (dir.join(CERT_CREDENTIAL), dir.join(KEY_CREDENTIAL));
            (cert.is_file() && key.is_file()).then_some((cert, key))
        });
        let (cert, key) = match from_credentials {
            Some(pair) => pair,
            None if config.files_set() => (config.cert_file.clone(), config.key_file.clone()),
            None => return None,
        };
        Some(ServerFiles {
            cert,
            key,
            client_ca: config.client_ca().map(Path::to_path_buf),
        })
    }

    /// As [`resolve`](Self::resolve), with `$CREDENTIALS_DIRECTORY` from the environment.
    pub fn from_env(config: &TlsConfig) -> Option<ServerFiles> {
        let credentials = std::env::var_os("CREDENTIALS_DIRECTORY").map(PathBuf::from);
        ServerFiles::resolve(config, credentials.as_deref())
    }
}

fn read_certs(what: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let read = |message: String| TlsError::Read {
        what,
        path: path.to_path_buf(),
        message,
    };
    let bytes = std::fs::read(path).map_err(|e| read(e.to_string()))?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| read(e.to_string()))?;
    if certs.is_empty() {
        return Err(TlsError::Empty {
            what,
            path: path.to_path_buf(),
            expected: "CERTIFICATE",
        });
    }
    Ok(certs)
}

fn read_key(what: &'static str, path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = std::fs::read(path).map_err(|e| TlsError::Read {
        what,
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|_| TlsError::Empty {
        what,
        path: path.to_path_buf(),
        expected: "PRIVATE KEY",
    })
}

fn roots_from(what: &'static str, path: &Path) -> Result<rustls::RootCertStore, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in read_certs(what, path)? {
        roots
            .add(cert)
            .map_err(|e| TlsError::Rejected(format!("{what} {}: {e}", path.display())))?;
    }
    Ok(roots)
}

/// A server's rustls config from its files: HTTP/1.1 over TLS 1.2/1.3, client
/// certificates required when `client_ca` is set.
pub fn server_config(files: &ServerFiles) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let certs = read_certs("certificate", &files.cert)?;
    let key = read_key("private key", &files.key)?;
    // ring is the one crypto provider built in, so the builders take it as the default.
    let builder = rustls::ServerConfig::builder();
    let builder = match &files.client_ca {
        Some(ca) => {
            let roots = Arc::new(roots_from("client CA", ca)?);
            let verifier = rustls::server::WebPkiClientVerifier::builder(roots)
                .build()
                .map_err(|e| TlsError::Rejected(format!("client CA {}: {e}", ca.display())))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(certs, key).map_err(|e| {
        TlsError::Rejected(format!(
            "certificate {} and key {} do not go together: {e}",
            files.cert.display(),
            files.key.display()
        ))
    })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A server's TLS config as it stands now; a reload stores a new one.
pub type ServerTls = Arc<ArcSwap<rustls::ServerConfig>>;

/// Loads `files` into a [`ServerTls`].
pub fn load_server(files: &ServerFiles) -> Result<ServerTls, TlsError> {
    Ok(Arc::new(ArcSwap::new(server_config(files)?)))
}

/// Re-reads `files` into `tls` (SIGHUP). On error the running certificate stays.
pub fn reload_server(tls: &ServerTls, files: &ServerFiles) -> Result<(), TlsError> {
    tls.store(server_config(files)?);
    Ok(())
}

/// What an outbound client trusts and presents.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientTls {
    /// A CA (PEM) trusted beside the system roots.
    pub ca_file: Option<PathBuf>,
    /// A client certificate and key (PEM), for servers that require one.
    pub identity: Option<(PathBuf, PathBuf)>,
}

impl ClientTls {
    /// What NordIQ's clients use for the daemon (`[tls]` ca_file, client_cert_file/key).
    pub fn for_daemon(config: &TlsConfig) -> ClientTls {
        ClientTls {
            ca_file: config.ca().map(Path::to_path_buf),
            identity: config
                .client_identity()
                .map(|(c, k)| (c.to_path_buf(), k.to_path_buf())),
        }
    }

    /// Trusting `ca_file` (when not empty) beside the system roots.
    pub fn with_ca(ca_file: &str) -> ClientTls {
        ClientTls {
            ca_file: (!ca_file.is_empty()).then(|| PathBuf::from(ca_file)),
            identity: None,
        }
    }
}

/// The system's trusted roots, read once per process (an unreadable store is empty).
fn system_roots() -> &'static [CertificateDer<'static>] {
    static ROOTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| rustls_native_certs::load_native_certs().certs)
}

fn system_store() -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(system_roots().iter().cloned());
    roots
}

/// A client config trusting the system roots only (nothing to read that could fail).
pub fn system_client_config() -> rustls::ClientConfig {
    // ALPN is left to the connector (hyper-rustls sets http/1.1).
    rustls::ClientConfig::builder()
        .with_root_certificates(system_store())
        .with_no_client_auth()
}

/// A client's rustls config: the system roots plus `ca_file`, and its identity.
pub fn client_config(options: &ClientTls) -> Result<rustls::ClientConfig, TlsError> {
    let mut roots = system_store();
    if let Some(ca) = &options.ca_file {
        for cert in read_certs("CA file", ca)? {
            roots
                .add(cert)
                .map_err(|e| TlsError::Rejected(format!("CA file {}: {e}", ca.display())))?;
        }
    }
    let builder = rustls::ClientConfig::builder().with_root_certificates(roots);
    let config = match &options.identity {
        Some((cert, key)) => builder
            .with_client_auth_cert(
                read_certs("client certificate", cert)?,
                read_key("client key", key)?,
            )
            .map_err(|e| {
                TlsError::Rejected(format!(
                    "client certificate {} and key {} do not go together: {e}",
                    cert.display(),
                    key.display()
                ))
            })?,
        None => builder.with_no_client_auth(),
    };
    Ok(config)
}
