//! `nordiq-inference`: the ingest API, rolling windows, forecasts, risk and alerts.
//! Thin: parse arguments, load config, take what systemd passed, wire the parts, run.

use anyhow::Context;
use clap::Parser;
use nordiq_core::config::Config;
use nordiq_inference::daemon;
use nordiq_inference::services::{cluster, live, model_loading, refill};
use nordiq_inference::state::{App, ConfigSource};
use nordiq_runtime::auth::{self, KeyEnv};
use nordiq_runtime::exit::{self, Fatal, OrExit};
use nordiq_runtime::keyring::Keyring;
use nordiq_runtime::lifecycle::{prepare, Prepared};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// NordIQ inference daemon: takes in server metrics, forecasts every metric hours ahead
/// with quantile bands, and scores risk and alerts.
///
/// Under systemd it is socket-activated (nordiq-inference.socket), reports READY/STATUS,
/// pings the watchdog and reloads on SIGHUP (`systemctl reload nordiq-inference`).
/// Without systemd it binds `server.listen` itself.
#[derive(Parser, Debug)]
#[command(name = "nordiq-inference", version, about, long_about = None)]
struct Args {
    /// Config file [default: $NORDIQ_CONFIG, else /etc/nordiq/nordiq.toml]
    #[arg(long, value_name = "PATH", conflicts_with = "dev")]
    config: Option<PathBuf>,
    /// Development mode: the embedded default config with state in ./.nordiq and the key
    /// in ./.nordiq_key (created when missing). No root, no systemd.
    #[arg(long)]
    dev: bool,
    /// Check the config (and that an API key is found), print a summary, and exit.
    #[arg(long)]
    check_config: bool,
    /// Log filter (`info`, `debug`, `nordiq_inference=debug` …); overrides log.level.
    #[arg(long, value_name = "FILTER")]
    log_level: Option<String>,
    /// Listen address when systemd passes no socket; overrides server.listen.
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
}

fn fail(code: i32, message: impl std::fmt::Display) -> ExitCode {
    nordiq_runtime::cli::fail("nordiq-inference", code, message)
}

fn main() -> ExitCode {
    let args = match nordiq_runtime::cli::parse::<Args>() {
        Ok(a) => a,
        Err(code) => return code,
    };
    let source = if args.dev {
        match std::env::current_dir() {
            Ok(dir) => ConfigSource::Dev(dir),
            Err(e) => {
                return fail(
                    exit::IO_ERR,
                    format!("cannot read the current directory: {e}"),
                )
            }
        }
    } else {
        ConfigSource::File(Config::resolve_path(args.config.as_deref()))
    };
    let mut config = match source.load() {
        Ok(c) => c,
        Err(e) => return fail(exit::CONFIG, e),
    };
    if let Some(listen) = &args.listen {
        if listen.parse::<std::net::SocketAddr>().is_err() {
            return fail(
                exit::USAGE,
                format!("--listen `{listen}` is not an address like 127.0.0.1:8000"),
            );
        }
        config.server.listen = listen.clone();
    }
    if let Some(level) = &args.log_level {
        config.log.level = level.clone();
    }
    if args.check_config {
        return check_config(&config, &source);
    }

    // SAFETY: still single-threaded; nothing has spawned a thread yet.
    let Prepared {
        activation,
        log,
        runtime,
    } = match unsafe { prepare("nordiq-inference", &config.log.level, None) } {
        Ok(p) => p,
        Err(f) => return fail(f.code, f),
    };

    let key = match load_keys(&config, &source) {
        Ok(k) => k,
        Err(e) => {
            tracing::error!(error = %e, "no usable API key");
            return fail(exit::CONFIG, e);
        }
    };
    if let Err(e) = std::fs::create_dir_all(&config.paths.state_dir) {
        return fail(
            exit::IO_ERR,
            format!(
                "cannot create state dir {}: {e}",
                config.paths.state_dir.display()
            ),
        );
    }

    let serving = match nordiq_runtime::serve::Serving::from_config(&config) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot set up TLS");
            return fail(exit::CONFIG, format!("cannot set up TLS: {e}"));
        }
    };
    if serving.https() {
        tracing::info!(
            client_certificates = config.tls.client_ca().is_some(),
            "serving HTTPS"
        );
    }
    let receivers = match nordiq_inference::services::notify::receivers(&config) {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "cannot set up notifications");
            return fail(exit::CONFIG, e);
        }
    };
    let result: Result<(), Fatal> = runtime.block_on(async {
        let listener = nordiq_runtime::systemd::listener(
            activation.listeners.into_iter().next(),
            &config.server.listen,
            "set server.listen or --listen",
        )
        .await
        ?;
        let cluster = if config.cluster.enabled {
            let cluster = cluster::connect(&config)
                .await
                .map_err(|e| Fatal::new(exit::CONFIG, e.to_string()))?;
            tracing::info!(node = %cluster.node, urls = %config.cluster.nats_urls.join(","), "cluster mode");
            if config.buffer.enabled {
                let root = config.paths.state_dir.join("buffer");
                let r = cluster::reconcile::reconcile(&cluster, &root)
                    .await
                    .map_err(|e| Fatal::new(exit::UNAVAILABLE, e.to_string()))?;
                if r.frames > 0 {
                    tracing::warn!(
                        messages = r.frames,
                        samples = r.samples,
                        "dropped from the log of the previous run what other nodes took over after it stopped"
                    );
                }
            }
            Some(Arc::new(cluster))
        } else {
            None
        };
        let buffer = if config.buffer.enabled {
            let root = config.paths.state_dir.join("buffer");
            let metrics: Vec<String> = config.metrics.iter().map(|m| m.name.clone()).collect();
            let (buffer, report) = nordiq_buffer::Buffer::open(&root, &metrics, config.buffer.clone())
                .with_context(|| format!("opening the data buffer at {}", root.display()))
                .or_exit(exit::IO_ERR)?;
            if report.segments_recovered > 0 {
                tracing::info!(
                    segments = report.segments_recovered,
                    samples = report.samples_recovered,
                    torn_bytes = report.torn_bytes,
                    "recovered the write-ahead log of the previous run"
                );
            }
            Some((buffer, report.batch_ids))
        } else {
            tracing::warn!("buffer.enabled = false: nothing ingested survives a restart");
            None
        };
        let (buffer, batch_ids) = buffer.map_or((None, Vec::new()), |(b, ids)| (Some(b), ids));
        let (initial, live_bins) = (model_loading::initial(&config), live::load(&config));
        let app = App::new(config, key, buffer, source.clone(), initial, live_bins);
        if !batch_ids.is_empty() {
            let mut recent = app.batch_ids.lock().unwrap_or_else(|p| p.into_inner());
            for id in &batch_ids {
                recent.claim(id);
            }
            tracing::info!(batch_ids = batch_ids.len(), "remembered the batch ids of the previous run");
        }
        if let Some(cluster) = cluster {
            let _ = app.cluster.set(cluster);
        }
        // In a cluster the windows of each shard taken are rebuilt from the stream instead.
        if let (Some(buffer), None) = (&app.buffer, app.cluster.get()) {
            let config = app.config.load_full();
            match refill::refill(&app.store, buffer, &config, nordiq_core::timefmt::now_ms()) {
                Ok(r) => tracing::info!(samples = r.samples, servers = r.servers, seconds = r.seconds, "windows refilled from the buffer"),
                Err(e) => tracing::error!(error = %e, "refilling windows from the buffer failed; starting cold"),
            }
        }
        daemon::run(app, listener, serving, receivers, activation.watchdog, log, source)
            .await
            .or_exit(exit::SOFTWARE)
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            tracing::error!(error = %f, "exiting");
            fail(f.code, f)
        }
    }
}

/// The keys: the single key by precedence (in dev mode one is created when none exists)
/// and the named keys of `auth.keys_file`.
fn load_keys(config: &Config, source: &ConfigSource) -> Result<Keyring, String> {
    let env = KeyEnv::from_process();
    let (file, keys_file) = (&config.auth.api_key_file, &config.auth.keys_file);
    let mut keys = Keyring::load(&env, file, keys_file).map_err(|e| e.to_string())?;
    if keys.is_empty() && matches!(source, ConfigSource::Dev(_)) {
        let secret = auth::generate_key().map_err(|e| e.to_string())?;
        auth::write_key_file(file, &secret, None, false).map_err(|e| e.to_string())?;
        tracing::info!(path = %file.display(), "generated a development API key");
        keys = Keyring::load(&env, file, keys_file).map_err(|e| e.to_string())?;
    }
    if keys.is_empty() {
        if !config.auth.allow_anonymous {
            return Err(auth::KeyError::Missing(file.clone()).to_string());
        }
        tracing::warn!("no API key: serving anonymously (auth.allow_anonymous = true)");
    } else {
        tracing::info!(keys = %keys.origin, "API keys loaded");
    }
    Ok(keys)
}

fn check_config(config: &Config, source: &ConfigSource) -> ExitCode {
    let origin = match source {
        ConfigSource::File(p) => p.display().to_string(),
        ConfigSource::Dev(_) => "embedded development default".into(),
    };
    println!("config OK: {origin}");
    println!(
        "  listen {} · state {} · step {} s · encoder {} · horizon {} · quantiles {:?}",
        config.server.listen,
        config.paths.state_dir.display(),
        config.model.step_seconds,
        config.model.encoder_steps,
        config.model.horizon_steps,
        config.model.quantiles
    );
    println!(
        "  {} metrics: {}",
        config.metrics.len(),
        config
            .metrics
            .iter()
            .map(|m| m.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "  {} profiles: {}",
        config.profiles.len(),
        config
            .profiles
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let keys = Keyring::load(
        &KeyEnv::from_process(),
        &config.auth.api_key_file,
        &config.auth.keys_file,
    );
    match keys.map(|k| (!k.is_empty()).then_some(k)) {
        Ok(Some(k)) => println!("  {}", k.origin),
        Ok(None) if config.auth.allow_anonymous => {
            println!("  no API key; anonymous access allowed")
        }
        Ok(None) if matches!(source, ConfigSource::Dev(_)) => {
            println!(
                "  no API key yet; --dev creates {}",
                config.auth.api_key_file.display()
            )
        }
        Ok(None) => {
            return fail(
                exit::CONFIG,
                auth::KeyError::Missing(config.auth.api_key_file.clone()),
            )
        }
        Err(e) => return fail(exit::CONFIG, e),
    }
    ExitCode::SUCCESS
}
