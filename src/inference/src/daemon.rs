//! How the inference daemon lives under the shared lifecycle (`nordiq_runtime::lifecycle`):
//! the HTTP API and the forecast loop run as tracked tasks; the watchdog is pinged while the
//! forecast loop beats; SIGHUP re-reads the config and key and reloads `models/current`;
//! after the drain, live accuracy is saved and the buffer's log is rolled into Parquet.

use crate::handlers;
use crate::services::{forecast_loop, live, notify, reload};
use crate::state::{App, ConfigSource};
use anyhow::Context;
use nordiq_runtime::auth::KeyEnv;
use nordiq_runtime::keyring::Keyring;
use nordiq_runtime::lifecycle::{Lifecycle, Service};
use nordiq_runtime::logging::LogHandle;
use nordiq_runtime::serve::Serving;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// The inference daemon as the lifecycle sees it.
struct Inference {
    app: Arc<App>,
    /// TLS and limits of the listener (the certificate reloads on SIGHUP).
    serving: Serving,
    source: ConfigSource,
    log: LogHandle,
    /// The forecast loop beats every second; silent this long, it is stuck.
    stale_after_ms: i64,
}

impl Service for Inference {
    fn status(&self) -> String {
        self.app.status_line()
    }

    fn alive(&self) -> bool {
        let age = self.app.forecast_loop_age_ms();
        if age > self.stale_after_ms {
            tracing::error!(age_ms = age, "the forecast loop is stuck");
        }
        age <= self.stale_after_ms
    }

    /// RELOADING=1 → re-read config and key → load and validate `models/current` off the
    /// main loop → READY=1. A config that fails to load or validate is refused and the
    /// running one kept; so is a model that fails validation (the old one keeps serving).
    async fn reload(self: Arc<Self>) -> Result<String, String> {
        let outcome = try_reload(&self.app, &self.source, &self.log)
            .and_then(|notes| self.serving.reload_tls(&self.app.config.load(), notes));
        reload::reload_model(&self.app, reload::Candidate::Current).await;
        outcome
    }
}

pub async fn run(
    app: Arc<App>,
    listener: TcpListener,
    serving: Serving,
    receivers: Vec<notify::Receiver>,
    watchdog: Option<Duration>,
    log: LogHandle,
    source: ConfigSource,
) -> anyhow::Result<()> {
    let lifecycle = Lifecycle::new(watchdog).context("installing the signal handlers")?;
    notify::restore(&app);
    let notifications = (!receivers.is_empty()).then(|| {
        lifecycle.spawn(notify::run(
            Arc::clone(&app),
            receivers,
            lifecycle.shutdown_token(),
        ))
    });
    let cluster = app.cluster.get().map(|cluster| {
        lifecycle.spawn(crate::services::cluster::run(
            Arc::clone(&app),
            Arc::clone(cluster),
            lifecycle.shutdown_token(),
        ))
    });
    let forecasts = lifecycle.spawn(forecast_loop::run(
        Arc::clone(&app),
        lifecycle.shutdown_token(),
    ));
    tracing::info!(
        address = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(),
        model = %app.forecasts.load().model_id,
        watchdog_ms = watchdog.map(|w| w.as_millis() as u64),
        "ready"
    );
    let serving = Serving {
        stats: Arc::clone(&app.http),
        ..serving
    };
    lifecycle.serve_http(
        listener,
        handlers::router(Arc::clone(&app)),
        serving.clone(),
    );
    let stale_after_ms = watchdog
        .map(|w| w.as_millis().max(10_000) as i64)
        .unwrap_or(i64::MAX);
    let drain = Duration::from_secs(app.config.load().server.shutdown_timeout_seconds);
    let service = Arc::new(Inference {
        app: Arc::clone(&app),
        serving,
        source,
        log,
        stale_after_ms,
    });
    lifecycle.run(service, drain).await;
    let _ = tokio::time::timeout(Duration::from_secs(2), forecasts).await;
    if let Some(cluster) = cluster {
        // Shards given up (consumers stopped, leases deleted) before the buffer closes.
        let _ = tokio::time::timeout(Duration::from_secs(15), cluster).await;
    }
    if let Some(notifications) = notifications {
        let _ = tokio::time::timeout(Duration::from_secs(5), notifications).await;
    }
    live::save(&app);
    if let Some(buffer) = app.buffer.clone() {
        // Roll the log into Parquet so the next start has nothing to recover.
        let _ = tokio::task::spawn_blocking(move || buffer.close()).await;
    }
    tracing::info!("stopped");
    Ok(())
}

fn try_reload(app: &App, source: &ConfigSource, log: &LogHandle) -> Result<String, String> {
    let new = source.load()?;
    let old = app.config.load_full();
    let restart_only = old.restart_only_differences(&new);
    let merged = old.with_restart_only_from(&new);
    let keys = Keyring::load(
        &KeyEnv::from_process(),
        &merged.auth.api_key_file,
        &merged.auth.keys_file,
    )
    .map_err(|e| e.to_string())?;
    if keys.is_empty() && !merged.auth.allow_anonymous {
        return Err(format!(
            "no API key would be left (none at {} or in {}, and allow_anonymous = false)",
            merged.auth.api_key_file.display(),
            merged.auth.keys_file.display()
        ));
    }
    log.set_level(&merged.log.level)
        .map_err(|e| e.to_string())?;
    let key_origin = keys.origin.clone();
    app.keys.store(Arc::new(keys));
    if let Some(buffer) = &app.buffer {
        buffer.set_settings(merged.buffer.clone());
    }
    app.config.store(Arc::new(merged));
    reload::rebuild_baseline(app);
    app.refresh_requested.notify_one();
    let mut notes = key_origin;
    if !restart_only.is_empty() {
        notes.push_str(&format!(
            "; changes to {} take effect at the next restart",
            restart_only.join(", ")
        ));
    }
    Ok(notes)
}
