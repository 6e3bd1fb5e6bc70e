//! `nordiqctl`: the operator's command line for NordIQ.

mod backtest_cmd;
mod buffer_cmd;
mod demo_feed;
mod evaluate_cmd;
mod model_cmd;
mod scenario_cmd;
mod status_cmd;

use anyhow::{anyhow, Context};
use clap::{Parser, Subcommand};
use nordiq_core::api::{ActiveAlerts, PredictionsCurrent};
use nordiq_core::config::Config;
use nordiq_runtime::auth::{self, resolve_key, KeyEnv};
use nordiq_runtime::client::{ApiClient, ClientError};
use nordiq_runtime::exit::{self, Fatal};
use nordiq_runtime::keyring;
use std::path::PathBuf;
use std::process::ExitCode;

/// Manage and query a NordIQ installation.
#[derive(Parser, Debug)]
#[command(name = "nordiqctl", version, about, long_about = None)]
struct Cli {
    /// Config file [default: $NORDIQ_CONFIG, else /etc/nordiq/nordiq.toml]
    #[arg(long, global = true, value_name = "PATH", conflicts_with = "dev")]
    config: Option<PathBuf>,
    /// Use the development default (as `nordiq-inference --dev`): key in ./.nordiq_key.
    #[arg(long, global = true)]
    dev: bool,
    /// Daemon URL [default: from the config's server.listen]
    #[arg(long, global = true, value_name = "URL")]
    url: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum KeysAction {
    /// Remove the named key NAME (it stops working at the daemon's next reload).
    Revoke { name: String },
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Write a new random 256-bit API key to the key file (0600, or 0640 with --group).
    ///
    /// With --name and --scope: a named key with only those scopes instead. Its SHA-256 is
    /// added to auth.keys_file and the key is printed once (give it to the client that
    /// needs it; it is stored nowhere else). `systemctl reload nordiq-inference` to use it.
    Keygen {
        /// Key file [default: auth.api_key_file, or auth.keys_file with --name]
        #[arg(long, value_name = "PATH")]
        path: Option<PathBuf>,
        /// Make the file 0640 and owned by this group (e.g. nordiq).
        #[arg(long)]
        group: Option<String>,
        /// Replace an existing key file (or, with --name, the key of that name).
        #[arg(long)]
        force: bool,
        /// A named key (letters, digits, `-_.`): shown in the journal for its admin actions.
        #[arg(long, requires = "scope")]
        name: Option<String>,
        /// What the named key may do: read (predictions, alerts, explain, historical,
        /// metrics), ingest (feed, remote write), admin (training, models, reload); comma
        /// separated.
        #[arg(long, value_delimiter = ',', requires = "name")]
        scope: Vec<String>,
    },
    /// The named keys of auth.keys_file (names, scopes, when made; never the keys).
    Keys {
        #[command(subcommand)]
        action: Option<KeysAction>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// The NordIQ units (active state, PID, port, memory, CPU, uptime) and the daemon's
    /// health: model, servers, warm-up, last forecast refresh. Exit 0 when the daemon
    /// answers and no unit has failed, 1 when a unit has failed, 69 when the daemon does
    /// not answer.
    Status {
        /// Print the daemon's JSON answer.
        #[arg(long)]
        json: bool,
    },
    /// Fleet forecast summary (or one server's with SERVER).
    Predictions {
        server: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Active alerts and recent level changes.
    Alerts {
        #[arg(long)]
        json: bool,
    },
    /// Recompute forecasts now and wait for the result.
    Refresh,
    /// The data buffer: stats, export.
    #[command(subcommand)]
    Buffer(buffer_cmd::BufferCommand),
    /// Load CSV or Parquet history into the buffer (validated like ingest, idempotent).
    Import(buffer_cmd::ImportArgs),
    /// Score forecasters on your own history (rolling origin); MASE is relative to
    /// seasonal naive on the same windows.
    Backtest(backtest_cmd::BacktestArgs),
    /// Replay labelled history through the daemon's forecasts, risk and anomaly code step
    /// by step and score the alerts against the labelled incidents: event recall,
    /// precision, false alerts per server-day, lead time, NAB score, and the reliability
    /// of the incident probabilities.
    EvaluateAlerts(evaluate_cmd::EvaluateArgs),
    /// Feed a small scripted fleet (deterministic synthetic metrics, with history so the
    /// forecasts start at once), for tests and benchmarks. The realistic fleet is
    /// `nordiq-metrics simulate`.
    DemoFeed(demo_feed::DemoFeedArgs),
    /// The simulator's scenario: `status` (default) or `set healthy|degrading|critical`.
    Scenario(scenario_cmd::ScenarioArgs),
    /// Model directories under state_dir/models, with their held-out figures.
    Models {
        #[arg(long)]
        json: bool,
    },
    /// Make model ID current and have the daemon load it (undone if the daemon refuses it).
    Promote {
        /// A model id as `nordiqctl models` lists it.
        id: String,
    },
    /// Make the previous model current again and have the daemon load it.
    Rollback,
    /// Have the daemon load models/current (or --model) now; the old model keeps serving
    /// if the new one fails its checks.
    Reload {
        /// A model id or a model directory's path, instead of models/current.
        #[arg(long, value_name = "ID|DIR")]
        model: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// What the daemon serves: model, its figures, reload history.
    ModelInfo {
        #[arg(long)]
        json: bool,
    },
    /// Start a training job and follow it (`train status`, `train cancel`).
    Train(model_cmd::TrainArgs),
}

fn main() -> ExitCode {
    let cli = match nordiq_runtime::cli::parse::<Cli>() {
        Ok(a) => a,
        Err(code) => return code,
    };
    match run(cli) {
        Ok(code) => ExitCode::from(code as u8),
        Err(e) => {
            eprintln!("nordiqctl: {e:#}");
            let code = match e.downcast_ref::<Fatal>() {
                Some(f) => f.code,
                None => exit::SOFTWARE,
            };
            ExitCode::from(code as u8)
        }
    }
}

/// A key-file error with its exit code: usage for what the operator can fix by the
/// command line, config for a bad keys file, I/O otherwise.
fn key_failure(e: auth::KeyError) -> anyhow::Error {
    let code = match e {
        auth::KeyError::Exists { .. }
        | auth::KeyError::NoSuchGroup(_)
        | auth::KeyError::NameTaken { .. }
        | auth::KeyError::BadName(_) => exit::USAGE,
        auth::KeyError::BadKeysFile { .. } => exit::CONFIG,
        _ => exit::IO_ERR,
    };
    failure(code, e.to_string())
}

/// An error that ends the command with `code` (the rest end with 70).
fn failure(code: i32, message: impl Into<String>) -> anyhow::Error {
    anyhow!(Fatal::new(code, message.into()))
}

fn load_config(cli: &Cli) -> anyhow::Result<Config> {
    Ok(nordiq_runtime::cli::load_config(
        cli.dev,
        cli.config.as_deref(),
    )?)
}

fn client(cli: &Cli, config: &Config) -> anyhow::Result<ApiClient> {
    let key = resolve_key(&KeyEnv::from_process(), &config.auth.api_key_file)
        .map_err(|e| failure(exit::CONFIG, e.to_string()))?;
    nordiq_runtime::client::for_daemon(
        config,
        cli.url.as_deref(),
        key.map(|k| k.expose().to_string()),
    )
    .map_err(|e| failure(exit::CONFIG, e.to_string()))
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn unreachable(e: ClientError) -> anyhow::Error {
    failure(exit::UNAVAILABLE, e.to_string())
}

/// GETs `path` and returns the body of a 2xx answer, or an error naming the status.
async fn get_ok(client: &ApiClient, path: &str) -> anyhow::Result<nordiq_runtime::client::Answer> {
    let answer = client.get(path).await.map_err(unreachable)?;
    check(answer, path)
}

fn check(
    answer: nordiq_runtime::client::Answer,
    path: &str,
) -> anyhow::Result<nordiq_runtime::client::Answer> {
    if answer.status.is_success() {
        return Ok(answer);
    }
    let message = answer
        .json::<nordiq_core::api::ErrorBody>()
        .map(|e| e.error)
        .unwrap_or_else(|_| answer.text());
    let code = match answer.status.as_u16() {
        401 | 403 => exit::CONFIG,
        404 => exit::DATA_ERR,
        503 => exit::TEMP_FAIL,
        _ => exit::UNAVAILABLE,
    };
    Err(failure(
        code,
        format!("{path}: {} {message}", answer.status),
    ))
}

fn run(cli: Cli) -> anyhow::Result<i32> {
    let config = load_config(&cli)?;
    match &cli.command {
        Command::Keygen {
            path,
            group,
            force,
            name: Some(name),
            scope,
        } => {
            let path = path
                .clone()
                .unwrap_or_else(|| config.auth.keys_file.clone());
            let scopes = keyring::Scopes::parse(scope.iter().map(String::as_str))
                .map_err(|e| failure(exit::USAGE, e))?;
            let now = nordiq_core::timefmt::format_ms(nordiq_core::timefmt::now_ms());
            let key = keyring::add_key(&path, name, scopes, group.as_deref(), *force, &now)
                .map_err(key_failure)?;
            eprintln!(
                "added key `{name}` (scopes {scopes}) to {}; the key, shown once:",
                path.display()
            );
            println!("{key}");
            eprintln!("reload nordiq-inference to use it: systemctl reload nordiq-inference");
            Ok(exit::OK)
        }
        Command::Keys { action, json } => {
            let path = &config.auth.keys_file;
            match action {
                Some(KeysAction::Revoke { name }) => {
                    if !keyring::revoke_key(path, name).map_err(key_failure)? {
                        return Err(failure(
                            exit::DATA_ERR,
                            format!("no key named `{name}` in {}", path.display()),
                        ));
                    }
                    println!("revoked `{name}`; systemctl reload nordiq-inference to apply it");
                }
                None => {
                    let keys = keyring::list_keys(path).map_err(key_failure)?;
                    if *json {
                        println!("{}", serde_json::to_string_pretty(&keys)?);
                    } else if keys.is_empty() {
                        println!("no named keys in {}", path.display());
                    } else {
                        println!("{:<24} {:<20} CREATED", "NAME", "SCOPES");
                        for k in keys {
                            println!(
                                "{:<24} {:<20} {}",
                                k.name,
                                k.scopes.join(","),
                                k.created.unwrap_or_default()
                            );
                        }
                    }
                }
            }
            Ok(exit::OK)
        }
        Command::Keygen {
            path, group, force, ..
        } => {
            let path = path
                .clone()
                .unwrap_or_else(|| config.auth.api_key_file.clone());
            let key = auth::generate_key().map_err(|e| failure(exit::SOFTWARE, e.to_string()))?;
            auth::write_key_file(&path, &key, group.as_deref(), *force).map_err(key_failure)?;
            let mode = if group.is_some() { "0640" } else { "0600" };
            println!(
                "wrote a new 256-bit API key to {} (mode {mode})",
                path.display()
            );
            println!(
                "restart or reload nordiq-inference to use it: systemctl reload nordiq-inference"
            );
            Ok(exit::OK)
        }
        Command::Status { json } => status_cmd::run(&client(&cli, &config)?, *json),
        Command::Scenario(args) => {
            let key = resolve_key(&KeyEnv::from_process(), &config.auth.api_key_file)
                .map_err(|e| failure(exit::CONFIG, e.to_string()))?;
            scenario_cmd::run(args, &config, key.map(|k| k.expose().to_string()))
        }
        Command::Predictions { server, json } => {
            let client = client(&cli, &config)?;
            let path = match server {
                Some(s) => format!("/predictions/{s}"),
                None => "/predictions/current".into(),
            };
            let answer = runtime()?.block_on(get_ok(&client, &path))?;
            if *json || server.is_some() {
                println!("{}", answer.text());
                return Ok(exit::OK);
            }
            let p: PredictionsCurrent = answer.json().context("reading /predictions/current")?;
            println!(
                "{} servers · model {} · generated {}",
                p.fleet.servers, p.model_id, p.generated_at
            );
            println!(
                "{:<24} {:<16} {:>6}  {:<9} METHOD",
                "SERVER", "PROFILE", "RISK", "LEVEL"
            );
            let mut servers: Vec<_> = p.servers.iter().collect();
            servers.sort_by(|a, b| b.1.risk.total_cmp(&a.1.risk));
            for (name, s) in servers {
                println!(
                    "{:<24} {:<16} {:>6.1}  {:<9} {}",
                    name,
                    s.profile,
                    s.risk,
                    s.level.as_str(),
                    s.method
                );
            }
            Ok(exit::OK)
        }
        Command::Alerts { json } => {
            let client = client(&cli, &config)?;
            let answer = runtime()?.block_on(get_ok(&client, "/alerts/active"))?;
            if *json {
                println!("{}", answer.text());
                return Ok(exit::OK);
            }
            let a: ActiveAlerts = answer.json().context("reading /alerts/active")?;
            if a.alerts.is_empty() {
                println!("no active alerts ({} servers healthy)", a.levels.healthy);
            }
            for s in &a.alerts {
                let metrics: Vec<String> = s
                    .metrics
                    .iter()
                    .map(|m| format!("{} {:.0}", m.metric, m.risk))
                    .collect();
                println!(
                    "{:<9} {:>5.1} {:<24} {}",
                    s.level.as_str(),
                    s.risk,
                    s.server,
                    metrics.join(", ")
                );
            }
            Ok(exit::OK)
        }
        Command::Refresh => {
            let client = client(&cli, &config)?;
            let answer = runtime()?.block_on(async {
                let a = client
                    .post("/admin/refresh", "application/json", "")
                    .await
                    .map_err(unreachable)?;
                check(a, "/admin/refresh")
            })?;
            println!("{}", answer.text());
            Ok(exit::OK)
        }
        Command::Buffer(command) => buffer_cmd::run_buffer(&config, command),
        Command::Import(args) => buffer_cmd::run_import(&config, args),
        Command::Backtest(args) => backtest_cmd::run(&config, args),
        Command::EvaluateAlerts(args) => evaluate_cmd::run(&config, args),
        Command::Models { json } => model_cmd::run_models(&config, *json),
        Command::Promote { id } => {
            model_cmd::run_promote(&config, &client(&cli, &config)?, Some(id))
        }
        Command::Rollback => model_cmd::run_promote(&config, &client(&cli, &config)?, None),
        Command::Reload { model, json } => {
            model_cmd::run_reload(&client(&cli, &config)?, model.as_deref(), *json)
        }
        Command::ModelInfo { json } => model_cmd::run_model_info(&client(&cli, &config)?, *json),
        Command::Train(args) => model_cmd::run_train(&client(&cli, &config)?, args),
        Command::DemoFeed(args) => {
            let client = client(&cli, &config)?;
            runtime()?.block_on(demo_feed::run(&client, &config, args))?;
            Ok(exit::OK)
        }
    }
}
