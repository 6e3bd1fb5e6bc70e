//! `[notify]`: where alerts are sent (Alertmanager, webhooks) and how often.

use super::invalid::Invalid;
use crate::api::AlertKind;
use crate::risk::Level;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifyConfig {
    /// Predicted breaches below this level are not notified at all (`watch` to hear of
    /// them too); an anomaly counts as `warning`.
    pub min_severity: Level,
    /// A new level (or the end of an alert) is notified only once it has held this long:
    /// a server hovering at a threshold pages no one. 0: at once.
    pub min_level_seconds: u64,
    /// A still-firing alert is sent again to webhooks this often; 0: never.
    pub repeat_seconds: u64,
    /// A firing alert of a server that has not been assessed for this long (it stopped
    /// reporting, or was evicted) is resolved; 0: never.
    pub forget_after_seconds: u64,
    /// Links in notifications point here (`{dashboard_url}/server/{name}`); "": none.
    pub dashboard_url: String,
    /// Undelivered notifications wait under `paths.state_dir/notify/` up to this many
    /// bytes per receiver (oldest dropped above it, and logged).
    pub spool_max_bytes: u64,
    /// Longest wait between delivery retries (they back off from 1 s).
    pub retry_max_seconds: u64,
    pub alertmanager: AlertmanagerConfig,
    pub webhook: Vec<WebhookConfig>,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            min_severity: Level::Warning,
            min_level_seconds: 120,
            repeat_seconds: 4 * 3600,
            forget_after_seconds: 3600,
            dashboard_url: String::new(),
            spool_max_bytes: 64 << 20,
            retry_max_seconds: 300,
            alertmanager: AlertmanagerConfig::default(),
            webhook: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertmanagerConfig {
    /// Alertmanager base URLs (`http://am1:9093`); each gets every alert (as Prometheus
    /// does for an HA pair). []: none.
    pub urls: Vec<String>,
    /// Firing alerts are posted again this often; each carries `endsAt` four times this far
    /// ahead, so Alertmanager resolves them by itself if NordIQ goes away.
    pub resend_seconds: u64,
    pub timeout_seconds: u64,
    /// A CA (PEM) trusted for `https://` URLs, beside the system roots.
    pub ca_file: String,
    /// A file holding a bearer token (`Authorization: Bearer …`); "": none.
    pub bearer_token_file: String,
    /// Basic auth: the user, with its password in `password_file` (or the systemd credential
    /// `alertmanager-password`); "": none.
    pub username: String,
    pub password_file: String,
}

impl Default for AlertmanagerConfig {
    fn default() -> Self {
        AlertmanagerConfig {
            urls: Vec::new(),
            resend_seconds: 60,
            timeout_seconds: 10,
            ca_file: String::new(),
            bearer_token_file: String::new(),
            username: String::new(),
            password_file: String::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookConfig {
    /// Names the receiver in logs, metrics and its spool directory.
    pub name: String,
    pub url: String,
    /// The HMAC-SHA256 key signing each body (`X-NordIQ-Signature`): this file, or the
    /// systemd credential `webhook-<name>`; "" and no credential: unsigned.
    pub secret_file: String,
    /// Alerts below this level are not sent (an anomaly counts as `warning`); a change
    /// that ends an alert this webhook was sent is sent too.
    pub min_severity: Level,
    /// `predicted_breach`, `anomaly`; []: both.
    pub kinds: Vec<String>,
    /// Server name globs; []: every server.
    pub servers: Vec<String>,
    pub timeout_seconds: u64,
    /// A CA (PEM) trusted for an `https://` URL, beside the system roots.
    pub ca_file: String,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            name: String::new(),
            url: String::new(),
            secret_file: String::new(),
            min_severity: Level::Watch,
            kinds: Vec::new(),
            servers: Vec::new(),
            timeout_seconds: 10,
            ca_file: String::new(),
        }
    }
}

/// The alert kinds a webhook may filter on.
pub const ALERT_KINDS: [&str; 2] = [
    AlertKind::PredictedBreach.as_str(),
    AlertKind::Anomaly.as_str(),
];

impl NotifyConfig {
    pub(crate) fn validate(&self) -> Result<(), Invalid> {
        let bad = |k: String, m: &str| Err(Invalid::new(format!("notify.{k}"), m));
        let is_http_url = |u: &str| u.starts_with("http://") || u.starts_with("https://");
        if self.spool_max_bytes < 1 << 20 {
            return bad("spool_max_bytes".into(), "must be at least 1 MiB (1048576)");
        }
        if self.min_severity == Level::Healthy {
            return bad("min_severity".into(), "must be watch, warning or critical");
        }
        if self.retry_max_seconds == 0 {
            return bad("retry_max_seconds".into(), "must be at least 1");
        }
        if !self.dashboard_url.is_empty() && !is_http_url(&self.dashboard_url) {
            return bad("dashboard_url".into(), "must be an http:// or https:// URL");
        }
        let am = &self.alertmanager;
        if let Some(url) = am.urls.iter().find(|u| !is_http_url(u)) {
            return bad(
                "alertmanager.urls".into(),
                &format!("`{url}` is not an http:// or https:// URL"),
            );
        }
        if am.resend_seconds == 0 {
            return bad("alertmanager.resend_seconds".into(), "must be at least 1");
        }
        if am.timeout_seconds == 0 {
            return bad("alertmanager.timeout_seconds".into(), "must be at least 1");
        }
        if am.username.is_empty() != am.password_file.is_empty() {
            return bad(
                "alertmanager.password_file".into(),
                "basic auth needs both alertmanager.username and alertmanager.password_file",
            );
        }
        if !am.username.is_empty() && !am.bearer_token_file.is_empty() {
            return bad(
                "alertmanager.bearer_token_file".into(),
                "use a bearer token or basic auth, not both",
            );
        }
        let mut names = std::collections::BTreeSet::new();
        for (i, w) in self.webhook.iter().enumerate() {
            let key = |k: &str| format!("webhook[{i}].{k}");
            let simple = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
            if w.name.is_empty() || !w.name.chars().all(simple) {
                return bad(key("name"), "a name of letters, digits, - and _ is needed");
            }
            if !names.insert(w.name.as_str()) {
                return bad(key("name"), &format!("`{}` is used twice", w.name));
            }
            if !is_http_url(&w.url) {
                return bad(key("url"), "must be an http:// or https:// URL");
            }
            if let Some(kind) = w.kinds.iter().find(|k| !ALERT_KINDS.contains(&k.as_str())) {
                return bad(
                    key("kinds"),
                    &format!("`{kind}`: the kinds are predicted_breach and anomaly"),
                );
            }
            if w.min_severity == Level::Healthy {
                return bad(key("min_severity"), "must be watch, warning or critical");
            }
            if w.timeout_seconds == 0 {
                return bad(key("timeout_seconds"), "must be at least 1");
            }
        }
        Ok(())
    }

    /// Whether anything is configured to receive notifications.
    pub fn any_receiver(&self) -> bool {
        !self.alertmanager.urls.is_empty() || !self.webhook.is_empty()
    }
}
