//! `nordiq-dashboard`: the operator's web UI. One page with its assets embedded; it asks
//! nordiq-inference for everything, server-side, with the API key, so the browser never
//! sees the key. Socket-activated under systemd (nordiq-dashboard.socket, port 8050),
//! `Type=notify` with the watchdog; SIGHUP re-reads config and key.

mod overview;
mod web;

use anyhow::Context;
use clap::Parser;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use nordiq_core::auth::{resolve_key, ApiKey, KeyEnv};
use nordiq_core::config::Config;
use nordiq_core::exit;
use nordiq_core::systemd::Notifier;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio::signal::unix::{signal, SignalKind};

/// NordIQ dashboard: fleet overview, heatmap, per-server forecasts with their bands and
/// the model's explanation, alerts, models and training, history with CSV export.
///
/// Under systemd it is socket-activated (nordiq-dashboard.socket); otherwise it binds
/// `dashboard.listen` (127.0.0.1:8050). It reads nordiq-inference at
/// `dashboard.inference_url` (default: from `server.listen`) with the API key.
#[derive(Parser, Debug)]
#[command(name = "nordiq-dashboard", version, about, long_about = None)]
struct Args {
    /// Config file [default: $NORDIQ_CONFIG, else /etc/nordiq/nordiq.toml]
    #[arg(long, value_name = "PATH", conflicts_with = "dev")]
    config: Option<PathBuf>,
    /// Development mode: the embedded default config, key in ./.nordiq_key.
    #[arg(long)]
    dev: bool,
    /// Listen address when systemd passes no socket; overrides dashboard.listen.
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// nordiq-inference's URL; overrides dashboard.inference_url.
    #[arg(long, value_name = "URL")]
    inference_url: Option<String>,
    /// The simulator's URL (shows the scenario buttons); overrides dashboard.simulator_url.
    #[arg(long, value_name = "URL")]
    simulator_url: Option<String>,
    /// Log filter (`info`, `debug` …); overrides log.level.
    #[arg(long, value_name = "FILTER")]
    log_level: Option<String>,
}

fn fail(code: i32, message: impl std::fmt::Display) -> ExitCode {
    nordiq_core::cli::fail("nordiq-dashboard", code, message)
}

/// Config and key as the arguments say; used at start and on SIGHUP.
fn load(args: &Args) -> Result<(Config, Option<ApiKey>), (i32, String)> {
    let mut config = nordiq_core::cli::load_config(args.dev, args.config.as_deref())?;
    if let Some(listen) = &args.listen {
        if listen.parse::<std::net::SocketAddr>().is_err() {
            return Err((
                exit::USAGE,
                format!("--listen `{listen}` is not an address like 127.0.0.1:8050"),
            ));
        }
        config.dashboard.listen = listen.clone();
    }
    if let Some(url) = &args.inference_url {
        config.dashboard.inference_url = url.clone();
    }
    if let Some(url) = &args.simulator_url {
        config.dashboard.simulator_url = url.clone();
    }
    if let Some(level) = &args.log_level {
        config.log.level = level.clone();
    }
    let key = resolve_key(&KeyEnv::from_process(), &config.auth.api_key_file)
        .map_err(|e| (exit::CONFIG, e.to_string()))?;
    if key.is_none() && config.dashboard.require_login {
        return Err((
            exit::CONFIG,
            format!(
                "dashboard.require_login = true needs an API key to check logins against (none at {})",
                config.auth.api_key_file.display()
            ),
        ));
    }
    Ok((config, key))
}

fn main() -> ExitCode {
    let args = match nordiq_core::cli::parse::<Args>() {
        Ok(a) => a,
        Err(code) => return code,
    };
    let (config, key) = match load(&args) {
        Ok(v) => v,
        Err((code, e)) => return fail(code, e),
    };
    // SAFETY: still single-threaded.
    let activation = match unsafe { nordiq_core::systemd::take_activation() } {
        Ok(a) => a,
        Err(e) => return fail(exit::SOFTWARE, format!("bad socket activation: {e}")),
    };
    let log = match nordiq_core::logging::init(&config.log.level, "nordiq-dashboard") {
        Ok(l) => l,
        Err(e) => return fail(exit::CONFIG, e),
    };
    if key.is_none() {
        tracing::warn!(
            key_file = %config.auth.api_key_file.display(),
            "no API key: nordiq-inference will answer 401 unless it allows anonymous access"
        );
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return fail(exit::SOFTWARE, format!("cannot start the runtime: {e}")),
    };
    let result = runtime.block_on(async {
        let listener = nordiq_core::systemd::listener(
            activation.listeners.into_iter().next(),
            &config.dashboard.listen,
            "set dashboard.listen or --listen",
        )
        .await
        .map_err(|(code, e)| (code, anyhow::anyhow!(e)))?;
        serve(
            &args,
            web::Dash::new(config, key),
            listener,
            activation.watchdog,
            log,
        )
        .await
        .map_err(|e| (exit::SOFTWARE, e))
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err((code, e)) => fail(code, format!("{e:#}")),
    }
}

/// One `select!`: connections, watchdog, SIGHUP (reload), SIGTERM/SIGINT (drain, exit).
async fn serve(
    args: &Args,
    dash: Arc<web::Dash>,
    listener: tokio::net::TcpListener,
    watchdog: Option<Duration>,
    log: nordiq_core::logging::LogHandle,
) -> anyhow::Result<()> {
    let mut sigterm = signal(SignalKind::terminate()).context("installing SIGTERM")?;
    let mut sigint = signal(SignalKind::interrupt()).context("installing SIGINT")?;
    let mut sighup = signal(SignalKind::hangup()).context("installing SIGHUP")?;
    let router = web::router(Arc::clone(&dash));
    let graceful = GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(30));
    let mut tick =
        tokio::time::interval(watchdog.map(|w| w / 2).unwrap_or(Duration::from_secs(3600)));
    let notifier = Notifier;
    let status = |dash: &web::Dash| {
        format!(
            "serving; inference at {}",
            web::inference_url(&dash.config.load())
        )
    };
    notifier.ready(&status(&dash));
    tracing::info!(
        address = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(),
        inference = %web::inference_url(&dash.config.load()),
        "ready"
    );
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let conn = builder.serve_connection(
                        TokioIo::new(stream),
                        TowerToHyperService::new(router.clone()),
                    );
                    let conn = graceful.watch(conn);
                    tokio::spawn(async move {
                        let _ = conn.await;
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            // Pinged from this loop: a stuck loop stops the pings.
            _ = tick.tick() => if watchdog.is_some() { notifier.watchdog() },
            _ = sighup.recv() => {
                notifier.reloading();
                match load(args) {
                    Ok((config, key)) => {
                        let _ = log.set_level(&config.log.level);
                        dash.replace(config, key);
                        tracing::info!("configuration reloaded");
                        notifier.ready(&status(&dash));
                    }
                    Err((_, e)) => {
                        tracing::error!(reason = %e, "reload refused; keeping the running configuration");
                        notifier.ready(&format!("{}; last reload refused: {e}", status(&dash)));
                    }
                }
            }
            _ = sigterm.recv() => break,
            _ = sigint.recv() => break,
        }
    }
    notifier.stopping("draining connections");
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(Duration::from_secs(5)) => tracing::warn!("drain timed out"),
    }
    tracing::info!("stopped");
    Ok(())
}
