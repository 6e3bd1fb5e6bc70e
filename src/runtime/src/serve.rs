//! The HTTP(S) accept loop every NordIQ daemon serves with: TLS when configured, and
//! admission that sheds instead of failing — a cap on open connections and one per client
//! address (fair between clients), a deadline for the TLS handshake and for request
//! headers (slowloris). A refused connection gets `503` (daemon full) or `429` (this
//! client has too many) with `Retry-After` on plain HTTP, and is closed.

use crate::tls::ServerTls;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use hyper_util::service::TowerToHyperService;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// How many connections a daemon keeps and how long it waits for slow clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_connections: usize,
    pub max_connections_per_client: usize,
    /// For the request line and headers of each request (and between keep-alive requests).
    pub header_read_timeout: Duration,
    pub handshake_timeout: Duration,
}

impl Limits {
    pub fn from_config(server: &nordiq_core::config::ServerConfig) -> Limits {
        Limits {
            max_connections: server.max_connections,
            max_connections_per_client: server.max_connections_per_client,
            header_read_timeout: Duration::from_secs(server.header_read_timeout_seconds),
            handshake_timeout: Duration::from_secs(server.header_read_timeout_seconds),
        }
    }
}

/// What the accept loop has done, for `/metrics` and the overload bench.
#[derive(Debug, Default)]
pub struct ConnectionStats {
    pub open: AtomicUsize,
    pub accepted: AtomicU64,
    /// Refused because the daemon had `max_connections` open.
    pub shed_full: AtomicU64,
    /// Refused because the client address had `max_connections_per_client` open.
    pub shed_client: AtomicU64,
    /// TLS handshakes that failed or timed out.
    pub handshake_failures: AtomicU64,
}

/// How a daemon serves: TLS (None: plain HTTP), limits, and where it counts.
#[derive(Clone)]
pub struct Serving {
    pub tls: Option<ServerTls>,
    pub limits: Limits,
    pub stats: Arc<ConnectionStats>,
}

impl Serving {
    /// Plain HTTP with `limits`.
    pub fn plain(limits: Limits) -> Serving {
        Serving {
            tls: None,
            limits,
            stats: Arc::default(),
        }
    }

    /// HTTPS when `[tls]` or the systemd credentials give a certificate, else plain HTTP;
    /// limits from `[server]`.
    pub fn from_config(
        config: &nordiq_core::config::Config,
    ) -> Result<Serving, crate::tls::TlsError> {
        let tls = match crate::tls::ServerFiles::from_env(&config.tls) {
            Some(files) => Some(crate::tls::load_server(&files)?),
            None => None,
        };
        Ok(Serving {
            tls,
            limits: Limits::from_config(&config.server),
            stats: Arc::default(),
        })
    }

    /// SIGHUP, after the rest of a daemon's reload said `notes`: re-reads the certificate
    /// and key (when serving HTTPS) and adds what happened to the notes. A certificate that
    /// cannot be used refuses the reload with the notes and why; the running one stays.
    pub fn reload_tls(
        &self,
        config: &nordiq_core::config::Config,
        notes: String,
    ) -> Result<String, String> {
        let (Some(tls), Some(files)) = (&self.tls, crate::tls::ServerFiles::from_env(&config.tls))
        else {
            return Ok(notes);
        };
        match crate::tls::reload_server(tls, &files) {
            Ok(()) => Ok(format!(
                "{notes}; TLS certificate {} reloaded",
                files.cert.display()
            )),
            Err(e) => Err(format!(
                "{notes}; but the new TLS certificate was refused: {e} (the running certificate stays)"
            )),
        }
    }

    pub fn https(&self) -> bool {
        self.tls.is_some()
    }
}

/// Open connections per client address.
#[derive(Default)]
struct PerClient(Mutex<HashMap<IpAddr, usize>>);

/// One admitted connection: released (counts decremented) when dropped.
struct Slot {
    ip: IpAddr,
    per_client: Arc<PerClient>,
    stats: Arc<ConnectionStats>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.stats.open.fetch_sub(1, Ordering::Relaxed);
        let mut map = self.per_client.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = map.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

enum Admission {
    Admit(Slot),
    Full,
    ClientFull,
}

fn admit(
    ip: IpAddr,
    limits: &Limits,
    per_client: &Arc<PerClient>,
    stats: &Arc<ConnectionStats>,
) -> Admission {
    let mut map = per_client.0.lock().unwrap_or_else(|p| p.into_inner());
    if stats.open.load(Ordering::Relaxed) >= limits.max_connections {
        return Admission::Full;
    }
    let n = map.entry(ip).or_insert(0);
    if *n >= limits.max_connections_per_client {
        return Admission::ClientFull;
    }
    *n += 1;
    stats.open.fetch_add(1, Ordering::Relaxed);
    Admission::Admit(Slot {
        ip,
        per_client: Arc::clone(per_client),
        stats: Arc::clone(stats),
    })
}

/// The answer a shed plain-HTTP connection gets before it is closed.
fn refusal(status: &str, message: &str) -> Vec<u8> {
    let body = format!("{{\"error\":\"{message}\"}}");
    format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

async fn shed(mut stream: TcpStream, status: &'static str, message: &'static str) {
    // A fresh socket's send buffer takes this at once; a deadline in case it does not.
    let write = async {
        let _ = stream.write_all(&refusal(status, message)).await;
        let _ = stream.shutdown().await;
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), write).await;
}

/// Serves `router` on `listener` until `shutdown`: then the listener is closed (new
/// connections are refused) and open connections finish their requests.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: CancellationToken,
    serving: Serving,
) {
    let open_files = crate::lifecycle::raise_open_file_limit();
    if (serving.limits.max_connections as u64).saturating_add(256) > open_files {
        tracing::warn!(
            max_connections = serving.limits.max_connections,
            open_files,
            "the open-file limit is below server.max_connections + 256: accept will fail before the cap sheds (raise LimitNOFILE=)"
        );
    }
    let graceful = GracefulShutdown::new();
    let per_client = Arc::new(PerClient::default());
    let mut accepted_in_a_row = 0u32;
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(serving.limits.header_read_timeout)
        .keep_alive(true);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    // A burst of new connections (a reconnect storm) must not starve the
                    // requests already being served: give way to them every few accepts.
                    accepted_in_a_row += 1;
                    if accepted_in_a_row.is_multiple_of(16) {
                        tokio::task::yield_now().await;
                    }
                    let _ = stream.set_nodelay(true);
                    let slot = match admit(peer.ip(), &serving.limits, &per_client, &serving.stats) {
                        Admission::Admit(slot) => slot,
                        Admission::Full => {
                            serving.stats.shed_full.fetch_add(1, Ordering::Relaxed);
                            if serving.tls.is_none() {
                                tokio::spawn(shed(stream, "503 Service Unavailable", "too many connections; retry later"));
                            }
                            continue;
                        }
                        Admission::ClientFull => {
                            serving.stats.shed_client.fetch_add(1, Ordering::Relaxed);
                            if serving.tls.is_none() {
                                tokio::spawn(shed(stream, "429 Too Many Requests", "too many connections from this address; retry later"));
                            }
                            continue;
                        }
                    };
                    serving.stats.accepted.fetch_add(1, Ordering::Relaxed);
                    let connection = Connection {
                        router: router.clone(),
                        builder: builder.clone(),
                        watcher: graceful.watcher(),
                        slot,
                    };
                    match &serving.tls {
                        None => {
                            tokio::spawn(connection.serve(stream));
                        }
                        Some(tls) => {
                            let acceptor = tokio_rustls::TlsAcceptor::from(tls.load_full());
                            let deadline = serving.limits.handshake_timeout;
                            let stats = Arc::clone(&serving.stats);
                            tokio::spawn(async move {
                                match tokio::time::timeout(deadline, acceptor.accept(stream)).await {
                                    Ok(Ok(tls_stream)) => connection.serve(tls_stream).await,
                                    Ok(Err(e)) => {
                                        stats.handshake_failures.fetch_add(1, Ordering::Relaxed);
                                        tracing::debug!(peer = %peer, error = %e, "TLS handshake failed");
                                    }
                                    Err(_) => {
                                        stats.handshake_failures.fetch_add(1, Ordering::Relaxed);
                                        tracing::debug!(peer = %peer, "TLS handshake timed out");
                                    }
                                }
                            });
                        }
                    }
                }
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            _ = shutdown.cancelled() => break,
        }
    }
    drop(listener);
    graceful.shutdown().await;
}

/// An admitted connection on its way to being served.
struct Connection {
    router: Router,
    builder: hyper::server::conn::http1::Builder,
    watcher: Watcher,
    slot: Slot,
}

impl Connection {
    async fn serve<I>(self, io: I)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let service = TowerToHyperService::new(self.router);
        let conn = self
            .watcher
            .watch(self.builder.serve_connection(TokioIo::new(io), service));
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "connection ended with an error");
        }
        drop(self.slot);
    }
}
