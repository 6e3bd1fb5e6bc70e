//! The daemon's life under systemd: one `select!` over accepted connections, the watchdog
//! tick, SIGHUP (reload) and SIGTERM/SIGINT (two-phase shutdown). Signal streams are created
//! once, before READY=1, so no signal is lost between loop passes.

use crate::app::App;
use crate::{forecast_loop, http};
use anyhow::Context;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use nordiq_core::auth::{resolve_key, KeyEnv};
use nordiq_core::config::Config;
use nordiq_core::logging::LogHandle;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;

/// Slow clients get this long to send their request headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Where a reload reads the config from.
#[derive(Debug, Clone)]
pub enum ConfigSource {
    File(PathBuf),
    /// The embedded development default, rooted in this directory.
    Dev(PathBuf),
}

impl ConfigSource {
    pub fn load(&self) -> Result<Config, String> {
        match self {
            ConfigSource::File(path) => Config::load(path).map_err(|e| e.to_string()),
            ConfigSource::Dev(dir) => Ok(Config::dev(dir)),
        }
    }
}

async fn watchdog_tick(tick: &mut Option<tokio::time::Interval>) {
    match tick {
        Some(t) => {
            t.tick().await;
        }
        None => std::future::pending().await,
    }
}

pub async fn run(
    app: Arc<App>,
    listener: TcpListener,
    watchdog: Option<Duration>,
    log: LogHandle,
    source: ConfigSource,
) -> anyhow::Result<()> {
    let mut sigterm = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut sigint = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut sighup = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;

    let (stop_forecasts, forecasts_stopped) = watch::channel(false);
    let forecast_task = tokio::spawn(forecast_loop::run(Arc::clone(&app), forecasts_stopped));

    let router = http::router(Arc::clone(&app));
    let graceful = GracefulShutdown::new();
    let mut conn_builder = hyper::server::conn::http1::Builder::new();
    conn_builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .keep_alive(true);

    let mut tick = watchdog.map(|interval| {
        let mut t = tokio::time::interval(interval / 2);
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        t
    });
    // The forecast loop beats every second; a loop silent for a whole watchdog interval
    // (or 10 s, whichever is longer) is stuck, and the daemon should be restarted.
    let stale_after_ms = watchdog
        .map(|w| w.as_millis().max(10_000) as i64)
        .unwrap_or(i64::MAX);

    app.notifier.ready(&app.status_line());
    tracing::info!(
        address = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(),
        model = %app.forecasts.load().model_id,
        watchdog_ms = watchdog.map(|w| w.as_millis() as u64),
        "ready"
    );

    let stop_reason = loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    let _ = stream.set_nodelay(true);
                    let service = TowerToHyperService::new(router.clone());
                    let conn = conn_builder.serve_connection(TokioIo::new(stream), service);
                    let conn = graceful.watch(conn);
                    tokio::spawn(async move {
                        if let Err(e) = conn.await {
                            tracing::debug!(error = %e, "connection ended with an error");
                        }
                    });
                }
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            _ = watchdog_tick(&mut tick) => {
                let age = app.forecast_loop_age_ms();
                if age <= stale_after_ms {
                    app.notifier.watchdog();
                } else {
                    tracing::error!(age_ms = age, "forecast loop is stuck; withholding the watchdog ping");
                }
            }
            _ = sighup.recv() => reload(&app, &source, &log),
            _ = sigterm.recv() => break "SIGTERM",
            _ = sigint.recv() => break "SIGINT",
        }
    };

    let timeout = Duration::from_secs(app.config.load().server.shutdown_timeout_seconds);
    app.notifier.stopping("draining connections");
    tracing::info!(
        signal = stop_reason,
        timeout_s = timeout.as_secs(),
        "shutting down"
    );
    drop(listener);
    let _ = stop_forecasts.send(true);
    tokio::select! {
        _ = graceful.shutdown() => tracing::info!("all connections drained"),
        _ = tokio::time::sleep(timeout) => tracing::warn!("drain timed out; closing the remaining connections"),
        _ = sigterm.recv() => tracing::warn!("second signal; exiting now"),
        _ = sigint.recv() => tracing::warn!("second signal; exiting now"),
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), forecast_task).await;
    crate::live::save(&app);
    if let Some(buffer) = app.buffer.clone() {
        // Roll the log into Parquet so the next start has nothing to recover.
        let _ = tokio::task::spawn_blocking(move || buffer.close()).await;
    }
    tracing::info!("stopped");
    Ok(())
}

/// SIGHUP: RELOADING=1 → re-read config and key → load and validate `models/current` off
/// the main loop → READY=1. A config that fails to load or validate is refused and the
/// running one kept; so is a model that fails validation (the old one keeps serving).
pub fn reload(app: &Arc<App>, source: &ConfigSource, log: &LogHandle) {
    app.notifier.reloading();
    let config_outcome = try_reload(app, source, log);
    match &config_outcome {
        Ok(notes) => tracing::info!(notes = %notes, "configuration reloaded"),
        Err(reason) => {
            tracing::error!(reason = %reason, "reload refused; keeping the running configuration")
        }
    }
    let app = Arc::clone(app);
    tokio::spawn(async move {
        crate::reload::reload_model(&app, crate::reload::Candidate::Current).await;
        let status = match config_outcome {
            Ok(_) => app.status_line(),
            Err(reason) => format!(
                "{}; last config reload refused: {reason}",
                app.status_line()
            ),
        };
        app.notifier.ready(&status);
    });
}

fn try_reload(app: &App, source: &ConfigSource, log: &LogHandle) -> Result<String, String> {
    let new = source.load()?;
    let old = app.config.load_full();
    let restart_only = old.restart_only_differences(&new);
    let merged = old.with_restart_only_from(&new);
    let key = resolve_key(&KeyEnv::from_process(), &merged.auth.api_key_file)
        .map_err(|e| e.to_string())?;
    if key.is_none() && !merged.auth.allow_anonymous {
        return Err(format!(
            "no API key would be left (none at {} and allow_anonymous = false)",
            merged.auth.api_key_file.display()
        ));
    }
    log.set_level(&merged.log.level)?;
    let key_source = key
        .as_ref()
        .map(|k| k.source.to_string())
        .unwrap_or_else(|| "none (anonymous)".into());
    app.key.store(Arc::new(key));
    if let Some(buffer) = &app.buffer {
        buffer.set_settings(merged.buffer.clone());
    }
    app.config.store(Arc::new(merged));
    crate::reload::rebuild_baseline(app);
    app.refresh_requested.notify_one();
    let mut notes = format!("key from {key_source}");
    if !restart_only.is_empty() {
        notes.push_str(&format!(
            "; changes to {} take effect at the next restart",
            restart_only.join(", ")
        ));
    }
    Ok(notes)
}
