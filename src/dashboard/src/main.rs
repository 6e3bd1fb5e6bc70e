//! `nordiq-dashboard`: the operator's web UI. One page with its assets embedded; it asks
//! nordiq-inference for everything, server-side, with the API key, so the browser never
//! sees the key. Socket-activated under systemd (nordiq-dashboard.socket, port 8050),
//! `Type=notify` with the watchdog; SIGHUP re-reads config and key.

mod overview;
mod web;

use anyhow::Context;
use clap::Parser;
use nordiq_core::config::Config;
use nordiq_runtime::auth::{resolve_key, ApiKey, KeyEnv};
use nordiq_runtime::exit::{self, Fatal, OrExit};
use nordiq_runtime::lifecycle::{prepare, Lifecycle, Prepared, Service};
use nordiq_runtime::serve::Serving;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

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
    nordiq_runtime::cli::fail("nordiq-dashboard", code, message)
}

/// Config and key as the arguments say; used at start and on SIGHUP.
fn load(args: &Args) -> Result<(Config, Option<ApiKey>), Fatal> {
    let mut config = nordiq_runtime::cli::load_config(args.dev, args.config.as_deref())?;
    if let Some(listen) = &args.listen {
        if listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(Fatal::new(
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
    let key =
        resolve_key(&KeyEnv::from_process(), &config.auth.api_key_file).or_exit(exit::CONFIG)?;
    if key.is_none() && config.dashboard.require_login {
        return Err(Fatal::new(
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
    let args = match nordiq_runtime::cli::parse::<Args>() {
        Ok(a) => a,
        Err(code) => return code,
    };
    let (config, key) = match load(&args) {
        Ok(v) => v,
        Err(f) => return fail(f.code, f),
    };
    // SAFETY: still single-threaded.
    let Prepared {
        activation,
        log,
        runtime,
    } = match unsafe { prepare("nordiq-dashboard", &config.log.level, Some(2)) } {
        Ok(p) => p,
        Err(f) => return fail(f.code, f),
    };
    if key.is_none() {
        tracing::warn!(
            key_file = %config.auth.api_key_file.display(),
            "no API key: nordiq-inference will answer 401 unless it allows anonymous access"
        );
    }
    let serving = match Serving::from_config(&config) {
        Ok(s) => s,
        Err(e) => return fail(exit::CONFIG, format!("cannot set up TLS: {e}")),
    };
    let dash = match web::Dash::new(config, key, serving.https()) {
        Ok(d) => d,
        Err(e) => {
            return fail(
                exit::CONFIG,
                format!("cannot set up TLS to nordiq-inference: {e}"),
            )
        }
    };
    let result = runtime.block_on(async {
        let listener = nordiq_runtime::systemd::listener(
            activation.listeners.into_iter().next(),
            &dash.config.load().dashboard.listen,
            "set dashboard.listen or --listen",
        )
        .await?;
        serve(args, dash, listener, serving, activation.watchdog, log)
            .await
            .or_exit(exit::SOFTWARE)
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => fail(f.code, f),
    }
}

/// The dashboard as the shared lifecycle sees it: SIGHUP re-reads config and key.
struct Dashboard {
    args: Args,
    dash: Arc<web::Dash>,
    serving: Serving,
    log: nordiq_runtime::logging::LogHandle,
}

impl Service for Dashboard {
    fn status(&self) -> String {
        format!(
            "serving; inference at {}",
            web::inference_url(&self.dash.config.load())
        )
    }

    async fn reload(self: Arc<Self>) -> Result<String, String> {
        let (config, key) = load(&self.args).map_err(|f| f.message)?;
        self.log
            .set_level(&config.log.level)
            .map_err(|e| e.to_string())?;
        self.dash.replace(config, key).map_err(|e| e.to_string())?;
        self.serving.reload_tls(
            &self.dash.config.load(),
            "configuration and key re-read".into(),
        )
    }
}

async fn serve(
    args: Args,
    dash: Arc<web::Dash>,
    listener: tokio::net::TcpListener,
    serving: Serving,
    watchdog: Option<Duration>,
    log: nordiq_runtime::logging::LogHandle,
) -> anyhow::Result<()> {
    let lifecycle = Lifecycle::new(watchdog).context("installing the signal handlers")?;
    tracing::info!(
        address = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(),
        inference = %web::inference_url(&dash.config.load()),
        "ready"
    );
    lifecycle.serve_http(listener, web::router(Arc::clone(&dash)), serving.clone());
    let drain = Duration::from_secs(dash.config.load().server.shutdown_timeout_seconds);
    lifecycle
        .run(
            Arc::new(Dashboard {
                args,
                dash,
                serving,
                log,
            }),
            drain,
        )
        .await;
    tracing::info!("stopped");
    Ok(())
}
