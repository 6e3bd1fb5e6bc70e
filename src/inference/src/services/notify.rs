//! Notifications delivered: the notices the forecast loop queues ([`crate::state::Outbox`])
//! go into one fsynced spool per receiver (`state_dir/notify/<receiver>/`) and from there,
//! oldest first, to Alertmanager (`POST /api/v2/alerts`) or a webhook (signed JSON). A
//! receiver that is down is retried with backoff from 1 s to `notify.retry_max_seconds`;
//! nothing is dropped but by the spool's bound (logged) or a receiver's 4xx (logged).
//! Alertmanager is also sent every firing alert again every `resend_seconds`, which is how
//! it learns them back after a restart. The flap-control state is saved on every notice so
//! a restart neither repeats a firing alert nor forgets to resolve one.

use crate::state::{App, ReceiverStats};
use bytes::Bytes;
use hmac::{Hmac, Mac};
use hyper::Method;
use nordiq_core::config::{Config, NotifyConfig, WebhookConfig};
use nordiq_core::notify::{self, Notice, Notifier};
use nordiq_core::timefmt::now_ms;
use nordiq_runtime::client::{basic_authorization, ApiClient, ClientError};
use nordiq_runtime::secret::{read_secret, read_trimmed, SecretError};
use nordiq_runtime::spool::{Batch, Spool, SpoolError};
use nordiq_runtime::tls::ClientTls;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Where the flap-control state is saved, under `paths.state_dir`.
const STATE_FILE: &str = "notify/state.json";
/// The header carrying a webhook body's signature: `sha256=<hex HMAC-SHA256>`.
pub const SIGNATURE_HEADER: &str = "x-nordiq-signature";

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("notify: {0}")]
    Spool(#[from] SpoolError),
    #[error("notify.{key}: {reason}")]
    Receiver { key: String, reason: String },
    #[error("notify: {0}")]
    Secret(#[from] SecretError),
}

/// What a receiver is.
enum Target {
    Alertmanager {
        client: ApiClient,
        /// `Authorization` header, read per request (a rotated token is picked up).
        auth: AlertmanagerAuth,
        resend: Duration,
    },
    Webhook {
        client: ApiClient,
        config: WebhookConfig,
    },
}

#[derive(Clone)]
enum AlertmanagerAuth {
    None,
    Bearer(String),
    Basic {
        username: String,
        password_file: String,
    },
}

/// One receiver: its target, its spool and its counters.
pub struct Receiver {
    target: Target,
    spool: Spool,
    stats: Arc<ReceiverStats>,
}

/// HMAC-SHA256 of `body` under `secret`, as the signature header's value.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(secret)
        .expect("HMAC takes a key of any length");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

/// A receiver's spool directory name: letters, digits and `-` from `name`.
fn dir_name(kind: &str, name: &str) -> String {
    let clean: String = name
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    format!("{kind}-{}", clean.trim_matches('-'))
}

/// The receivers `config` names, with their spools opened (what a previous run left is
/// delivered first). Errors name the key to fix.
pub fn receivers(config: &Config) -> Result<Vec<Receiver>, NotifyError> {
    let n = &config.notify;
    let root = config.paths.state_dir.join("notify");
    let mut out = Vec::new();
    let am = &n.alertmanager;
    // Checked once here (a missing file stops the start); read again per request.
    let auth = if am.urls.is_empty() {
        AlertmanagerAuth::None
    } else if !am.bearer_token_file.is_empty() {
        read_trimmed(
            "notify.alertmanager.bearer_token_file",
            Path::new(&am.bearer_token_file),
        )?;
        AlertmanagerAuth::Bearer(am.bearer_token_file.clone())
    } else if !am.username.is_empty() {
        alertmanager_password(&am.password_file)?;
        AlertmanagerAuth::Basic {
            username: am.username.clone(),
            password_file: am.password_file.clone(),
        }
    } else {
        AlertmanagerAuth::None
    };
    for url in &am.urls {
        let client = ApiClient::with_tls(url, None, &ClientTls::with_ca(&am.ca_file))
            .map_err(|e| NotifyError::Receiver {
                key: "alertmanager.ca_file".into(),
                reason: e.to_string(),
            })?
            .with_timeout(Duration::from_secs(am.timeout_seconds));
        let name = dir_name("alertmanager", url);
        out.push(Receiver {
            target: Target::Alertmanager {
                client,
                auth: auth.clone(),
                resend: Duration::from_secs(am.resend_seconds),
            },
            spool: open_spool(&root, &name, n, "alertmanager")?,
            stats: Arc::new(ReceiverStats {
                kind: "alertmanager",
                name: url.clone(),
                ..ReceiverStats::default()
            }),
        });
    }
    for (i, w) in n.webhook.iter().enumerate() {
        let client = ApiClient::with_tls(&w.url, None, &ClientTls::with_ca(&w.ca_file))
            .map_err(|e| NotifyError::Receiver {
                key: format!("webhook[{i}].ca_file"),
                reason: e.to_string(),
            })?
            .with_timeout(Duration::from_secs(w.timeout_seconds));
        webhook_secret(w)?;
        let name = dir_name("webhook", &w.name);
        out.push(Receiver {
            target: Target::Webhook {
                client,
                config: w.clone(),
            },
            spool: open_spool(&root, &name, n, "webhook")?,
            stats: Arc::new(ReceiverStats {
                kind: "webhook",
                name: w.name.clone(),
                ..ReceiverStats::default()
            }),
        });
    }
    Ok(out)
}

fn open_spool(root: &Path, name: &str, n: &NotifyConfig, kind: &str) -> Result<Spool, NotifyError> {
    let hint = format!("raise notify.spool_max_bytes or bring the {kind} back");
    Ok(Spool::open(&root.join(name), n.spool_max_bytes, &hint)?)
}

fn alertmanager_password(file: &str) -> Result<String, SecretError> {
    read_secret(
        "notify.alertmanager.password_file",
        "alertmanager-password",
        file,
    )
}

/// A webhook's signing key: the credential `webhook-<name>` or `secret_file`; None when
/// neither is set (unsigned).
fn webhook_secret(w: &WebhookConfig) -> Result<Option<String>, SecretError> {
    let credential = format!("webhook-{}", w.name);
    match read_secret("notify.webhook.secret_file", &credential, &w.secret_file) {
        Ok(secret) => Ok(Some(secret)),
        Err(SecretError::Missing { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Restores the saved flap-control state (before the forecast loop starts). A state that
/// cannot be read is logged and started afresh: at worst a firing alert is notified again.
pub fn restore(app: &App) {
    let config = app.config.load();
    let path = config.paths.state_dir.join(STATE_FILE);
    let Ok(bytes) = std::fs::read(&path) else {
        return;
    };
    match serde_json::from_slice::<Notifier>(&bytes) {
        Ok(saved) => {
            *app.outbox.flap.lock().unwrap_or_else(|p| p.into_inner()) = saved.restarted(now_ms());
        }
        Err(e) => {
            tracing::warn!(file = %path.display(), error = %e, "notification state unreadable; starting afresh")
        }
    }
}

fn save_state(app: &App, path: &Path) {
    let state = {
        let flap = app.outbox.flap.lock().unwrap_or_else(|p| p.into_inner());
        serde_json::to_vec(&*flap).unwrap_or_default()
    };
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    if let Err((file, e)) = nordiq_runtime::atomic_file::write_atomic(path, &state) {
        tracing::warn!(file = %file.display(), error = %e, "cannot save the notification state");
    }
}

/// Runs until `shutdown`: hands each queued notice to every receiver's task. At shutdown
/// the receivers spool what they hold, so nothing queued is lost.
pub async fn run(app: Arc<App>, receivers: Vec<Receiver>, shutdown: CancellationToken) {
    let state_path: PathBuf = app.config.load().paths.state_dir.join(STATE_FILE);
    *app.outbox
        .receivers
        .lock()
        .unwrap_or_else(|p| p.into_inner()) =
        receivers.iter().map(|r| Arc::clone(&r.stats)).collect();
    let mut senders = Vec::new();
    let mut tasks = Vec::new();
    for receiver in receivers {
        let (tx, rx) = mpsc::unbounded_channel();
        senders.push(tx);
        tasks.push(tokio::spawn(receiver_loop(
            Arc::clone(&app),
            receiver,
            rx,
            shutdown.clone(),
        )));
    }
    loop {
        let stopping = tokio::select! {
            _ = app.outbox.wake.notified() => false,
            _ = shutdown.cancelled() => true,
        };
        let notices = app.outbox.take();
        if !notices.is_empty() {
            save_state(&app, &state_path);
            for n in &notices {
                tracing::info!(event = ?n.event, kind = ?n.observation.kind, server = %n.observation.server,
                    severity = n.severity.as_str(), "notifying");
            }
            for tx in &senders {
                for n in &notices {
                    let _ = tx.send(n.clone());
                }
            }
        }
        if stopping {
            break;
        }
    }
    drop(senders);
    for task in tasks {
        let _ = task.await;
    }
}

async fn receiver_loop(
    app: Arc<App>,
    mut r: Receiver,
    mut rx: mpsc::UnboundedReceiver<Notice>,
    shutdown: CancellationToken,
) {
    let settings = app.config.load().notify.clone();
    let retry_max = Duration::from_secs(settings.retry_max_seconds);
    let resend = match &r.target {
        Target::Alertmanager { resend, .. } => Some(*resend),
        Target::Webhook { .. } => None,
    };
    let mut backoff = Duration::from_secs(1);
    // Set while the spool holds a notice that could not be delivered.
    let mut retry_at: Option<Instant> = None;
    let mut next_resend = Instant::now();
    r.stats
        .pending
        .store(r.spool.len() as u64, Ordering::Relaxed);
    loop {
        while let Ok(n) = rx.try_recv() {
            r.accept(&n);
        }
        if retry_at.is_none_or(|t| Instant::now() >= t) && !r.spool.is_empty() {
            let delivered = tokio::select! {
                ok = r.deliver(&settings) => ok,
                _ = shutdown.cancelled() => false,
            };
            if delivered {
                backoff = Duration::from_secs(1);
                retry_at = None;
            } else {
                retry_at = Some(Instant::now() + backoff);
                backoff = (backoff * 2).min(retry_max);
            }
        }
        // Alertmanager's resend waits while older notices wait in the spool.
        if let Some(resend) = resend.filter(|_| r.spool.is_empty()) {
            if Instant::now() >= next_resend {
                r.resend_firing(&app, &settings, &shutdown).await;
                next_resend = Instant::now() + resend;
            }
        }
        let wake_at = next_wake(r.spool.is_empty(), retry_at, resend.map(|_| next_resend));
        let due = async {
            match wake_at {
                Some(t) => tokio::time::sleep_until(t).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            n = rx.recv() => match n {
                Some(n) => r.accept(&n),
                None => break,
            },
            _ = due => {}
            _ = shutdown.cancelled() => {}
        }
        if shutdown.is_cancelled() {
            // Keep what is queued for the next start; the channel closes when the
            // dispatcher has handed over its last notices.
            while let Some(n) = rx.recv().await {
                r.accept(&n);
            }
            break;
        }
    }
}

/// When a receiver's task has something due without a new notice: a retry while its
/// spool holds something, else Alertmanager's next resend; None: nothing (a webhook with
/// an empty spool sleeps until a notice comes).
fn next_wake(
    spool_empty: bool,
    retry_at: Option<Instant>,
    next_resend: Option<Instant>,
) -> Option<Instant> {
    if spool_empty {
        next_resend
    } else {
        retry_at
    }
}

impl Receiver {
    /// Spools a notice this receiver wants.
    fn accept(&mut self, n: &Notice) {
        let wanted = match &self.target {
            // Alertmanager has the whole set anyway; a repeat is its resend's job.
            Target::Alertmanager { .. } => n.event != notify::NoticeEvent::Repeat,
            Target::Webhook { config, .. } => {
                notify::webhook_wants(config.min_severity, &config.kinds, &config.servers, n)
            }
        };
        if !wanted {
            return;
        }
        let batch = Batch {
            id: n.id.clone(),
            records: 1,
            body: serde_json::to_vec(n).unwrap_or_default(),
        };
        let dropped_before = self.spool.dropped_batches;
        if let Err(e) = self.spool.push(&batch) {
            tracing::error!(receiver = %self.stats.name, error = %e, "cannot spool a notification; it is lost");
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
        }
        self.stats.dropped.fetch_add(
            self.spool.dropped_batches - dropped_before,
            Ordering::Relaxed,
        );
        self.stats
            .pending
            .store(self.spool.len() as u64, Ordering::Relaxed);
    }

    /// Sends the spooled notices oldest first; false at the first that must be retried.
    async fn deliver(&mut self, settings: &NotifyConfig) -> bool {
        loop {
            let batch = match self.spool.oldest() {
                Ok(Some(batch)) => batch,
                Ok(None) => return true,
                Err(e) => {
                    tracing::error!(receiver = %self.stats.name, error = %e, "cannot read the notification spool");
                    return false;
                }
            };
            let outcome = match serde_json::from_slice::<Notice>(&batch.body) {
                Ok(notice) => self.send(settings, &notice).await,
                Err(e) => Outcome::Refused(format!("a spooled notice that does not parse: {e}")),
            };
            match outcome {
                Outcome::Delivered => {
                    self.stats.delivered.fetch_add(1, Ordering::Relaxed);
                }
                Outcome::Refused(reason) => {
                    tracing::error!(receiver = %self.stats.name, id = %batch.id, reason = %reason,
                        "notification refused for good; dropped");
                    self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                }
                Outcome::Retry(reason) => {
                    self.stats.failed_attempts.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(receiver = %self.stats.name, reason = %reason, pending = self.spool.len(),
                        "notification not delivered; retrying with backoff");
                    return false;
                }
            }
            if let Err(e) = self.spool.pop() {
                tracing::error!(receiver = %self.stats.name, error = %e, "cannot remove a delivered notification from the spool");
                return false;
            }
            self.stats
                .pending
                .store(self.spool.len() as u64, Ordering::Relaxed);
        }
    }

    async fn send(&self, settings: &NotifyConfig, n: &Notice) -> Outcome {
        match &self.target {
            Target::Alertmanager { .. } => {
                self.send_to_alertmanager(settings, std::slice::from_ref(n))
                    .await
            }
            Target::Webhook { client, config } => {
                let body = Bytes::from(
                    serde_json::to_vec(&notify::webhook_payload(settings, n)).unwrap_or_default(),
                );
                let secret = match webhook_secret(config) {
                    Ok(secret) => secret,
                    Err(e) => return Outcome::Retry(e.to_string()),
                };
                let signed = secret.map(|s| signature(s.as_bytes(), &body));
                let mut headers = vec![
                    ("x-nordiq-delivery", n.id.as_str()),
                    ("x-nordiq-event", n.event.as_str()),
                ];
                if let Some(signed) = &signed {
                    headers.push((SIGNATURE_HEADER, signed.as_str()));
                }
                outcome(
                    client
                        .send_with(Method::POST, "", Some("application/json"), &headers, body)
                        .await,
                )
            }
        }
    }

    /// Posts `notices` to Alertmanager as one array; firing ones end four resends ahead.
    async fn send_to_alertmanager(&self, settings: &NotifyConfig, notices: &[Notice]) -> Outcome {
        let Target::Alertmanager {
            client,
            auth,
            resend,
        } = &self.target
        else {
            return Outcome::Refused("not an Alertmanager".into());
        };
        let now = now_ms();
        let ends_in = 4 * resend.as_millis() as i64;
        let alerts: Vec<serde_json::Value> = notices
            .iter()
            .flat_map(|n| notify::alertmanager_alerts(settings, n, now, ends_in))
            .collect();
        let body = Bytes::from(serde_json::to_vec(&alerts).unwrap_or_default());
        let header = match auth {
            AlertmanagerAuth::None => None,
            AlertmanagerAuth::Bearer(file) => {
                match read_trimmed("notify.alertmanager.bearer_token_file", Path::new(file)) {
                    Ok(token) => Some(format!("Bearer {token}")),
                    Err(e) => return Outcome::Retry(e.to_string()),
                }
            }
            AlertmanagerAuth::Basic {
                username,
                password_file,
            } => match alertmanager_password(password_file) {
                Ok(password) => Some(basic_authorization(username, &password)),
                Err(e) => return Outcome::Retry(e.to_string()),
            },
        };
        let headers: Vec<(&str, &str)> = header
            .as_deref()
            .map(|h| vec![("authorization", h)])
            .unwrap_or_default();
        outcome(
            client
                .send_with(
                    Method::POST,
                    "/api/v2/alerts",
                    Some("application/json"),
                    &headers,
                    body,
                )
                .await,
        )
    }

    /// Posts every alert firing now again (not spooled: a failed resend is simply made
    /// again at the next one).
    async fn resend_firing(
        &self,
        app: &App,
        settings: &NotifyConfig,
        shutdown: &CancellationToken,
    ) {
        let firing = app
            .outbox
            .flap
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .firing(now_ms());
        if firing.is_empty() {
            return;
        }
        let outcome = tokio::select! {
            outcome = self.send_to_alertmanager(settings, &firing) => outcome,
            _ = shutdown.cancelled() => return,
        };
        if let Outcome::Retry(reason) = outcome {
            self.stats.failed_attempts.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(receiver = %self.stats.name, reason = %reason, "resend failed; the next resend tries again");
        }
    }
}

/// How one delivery went.
enum Outcome {
    Delivered,
    /// A 4xx other than 408/429: the receiver will not take it, retrying cannot help.
    Refused(String),
    /// Unreachable, timed out, 5xx, 408 or 429.
    Retry(String),
}

fn outcome(result: Result<nordiq_runtime::client::Answer, ClientError>) -> Outcome {
    match result {
        Ok(answer) if answer.status.is_success() => Outcome::Delivered,
        Ok(answer) => {
            let status = answer.status;
            let text = answer.text();
            let reason = format!("{status}: {}", text.trim());
            if status.is_client_error()
                && status != hyper::StatusCode::REQUEST_TIMEOUT
                && status != hyper::StatusCode::TOO_MANY_REQUESTS
            {
                Outcome::Refused(reason)
            } else {
                Outcome::Retry(reason)
            }
        }
        Err(e) => Outcome::Retry(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_hmac_sha256_in_hex() {
        // RFC 4231, test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn an_idle_receiver_waits_for_what_is_due_and_no_earlier() {
        let now = Instant::now();
        let later = now + Duration::from_secs(8);
        // A webhook with nothing spooled: nothing due, whatever a past retry said.
        assert_eq!(next_wake(true, None, None), None);
        assert_eq!(next_wake(true, Some(now), None), None);
        // Alertmanager with nothing spooled: its resend.
        assert_eq!(next_wake(true, None, Some(later)), Some(later));
        // Something spooled: the retry, not a resend that waits behind it.
        assert_eq!(next_wake(false, Some(later), Some(now)), Some(later));
    }

    #[test]
    fn spool_directories_are_plain_names() {
        assert_eq!(
            dir_name("alertmanager", "http://am1.example.com:9093/"),
            "alertmanager-am1-example-com-9093"
        );
        assert_eq!(dir_name("webhook", "ops_pager"), "webhook-ops-pager");
    }
}
