//! `nordiq-metrics`: reads a metric source and delivers it to nordiq-inference.
//! `Type=notify` with the watchdog under systemd (nordiq-metrics.service).

mod backfill;
mod scenario_api;
mod service;

use clap::{Parser, Subcommand};
use nordiq_core::config::{Config, SourceKind};
use nordiq_runtime::auth::{resolve_key, ApiKey, KeyEnv};
use nordiq_runtime::exit::{self, Fatal, OrExit};
use nordiq_runtime::lifecycle::{prepare, Prepared};
use std::path::PathBuf;
use std::process::ExitCode;

/// NordIQ metric sources: reads servers' metrics and delivers them to nordiq-inference
/// (batched, with the API key; spooled on disk and retried while it is down).
///
/// Sources:
///   simulate   a simulated fleet (the demo's default): profiles, daily and weekly rhythm,
///              operating states, scenarios set over HTTP; --backfill writes history
///   host       this machine, from /proc
///   node-exporter  node_exporter endpoints, scraped (text exposition)
///   prometheus     a Prometheus server, pulled with query_range from a saved mark
///   elasticsearch  Metricbeat-style documents, read in @timestamp order from a saved mark
///   mongodb        documents of a collection, read in timestamp order from a saved mark
///   run        the source `sources.kind` names (what nordiq-metrics.service runs)
#[derive(Parser, Debug)]
#[command(
    name = "nordiq-metrics",
    version,
    about,
    long_about,
    verbatim_doc_comment
)]
struct Args {
    /// Config file [default: $NORDIQ_CONFIG, else /etc/nordiq/nordiq.toml]
    #[arg(long, value_name = "PATH", global = true, conflicts_with = "dev")]
    config: Option<PathBuf>,
    /// Development mode: the embedded default config, state in ./.nordiq, key in ./.nordiq_key.
    #[arg(long, global = true)]
    dev: bool,
    /// nordiq-inference's URL; overrides sources.inference_url.
    #[arg(long, value_name = "URL", global = true)]
    inference_url: Option<String>,
    /// Seconds between samples; overrides sources.interval_seconds.
    #[arg(long, value_name = "SECONDS", global = true)]
    interval: Option<u64>,
    /// Log filter (`info`, `debug` …); overrides log.level.
    #[arg(long, value_name = "FILTER", global = true)]
    log_level: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// The source `sources.kind` names, with its config settings.
    Run,
    /// A simulated fleet; its scenario API answers on sources.simulator.listen.
    Simulate(SimulateArgs),
    /// This machine, read from /proc.
    Host(HostArgs),
    /// node_exporter endpoints, scraped each interval.
    NodeExporter(NodeExporterArgs),
    /// A Prometheus server's HTTP API, pulled with query_range.
    Prometheus(PrometheusArgs),
    /// Metricbeat-style documents in Elasticsearch (fields mapped by sources.elasticsearch.fields).
    Elasticsearch(ElasticsearchArgs),
    /// Documents in a MongoDB collection (fields mapped by sources.mongodb.fields).
    Mongodb(MongodbArgs),
}

#[derive(clap::Args, Debug, Default)]
struct ElasticsearchArgs {
    /// The Elasticsearch URL [default: sources.elasticsearch.url]
    #[arg(long, value_name = "URL")]
    url: Option<String>,
    /// Index or pattern [default: sources.elasticsearch.index]
    #[arg(long, value_name = "INDEX")]
    index: Option<String>,
}

#[derive(clap::Args, Debug, Default)]
struct MongodbArgs {
    /// A connection string, e.g. mongodb://db1:27017,db2:27017/?replicaSet=rs0
    /// [default: sources.mongodb.uri]
    #[arg(long, value_name = "URI")]
    uri: Option<String>,
    /// [default: sources.mongodb.database]
    #[arg(long)]
    database: Option<String>,
    /// [default: sources.mongodb.collection]
    #[arg(long)]
    collection: Option<String>,
}

#[derive(clap::Args, Debug, Default)]
struct NodeExporterArgs {
    /// An endpoint: http://host:9100 (the server is the host) or NAME=http://host:9100/metrics;
    /// repeatable [default: sources.prometheus.targets]
    #[arg(long = "target", value_name = "URL")]
    targets: Vec<String>,
}

#[derive(clap::Args, Debug, Default)]
struct PrometheusArgs {
    /// The Prometheus server [default: sources.prometheus.url]
    #[arg(long, value_name = "URL")]
    url: Option<String>,
    /// First run only: start this many hours back [default: sources.prometheus.start_hours]
    #[arg(long, value_name = "HOURS")]
    start_hours: Option<u64>,
}

#[derive(clap::Args, Debug, Default)]
struct SimulateArgs {
    /// Servers in the fleet [default: sources.simulator.servers]
    #[arg(long, value_name = "N")]
    servers: Option<usize>,
    /// Seed: the same seed gives the same fleet and the same values [default: sources.simulator.seed]
    #[arg(long)]
    seed: Option<u64>,
    /// Simulated time runs K times faster (patterns, states, scenario ramps); timestamps
    /// stay the wall clock's [default: sources.simulator.speed]
    #[arg(long, value_name = "K")]
    speed: Option<f64>,
    /// The scenario API's address [default: sources.simulator.listen]
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// Before going live, simulate this much history (`30d`, `12h`): all but its last
    /// window is written straight into the buffer (for training at once), the last
    /// window is sent to nordiq-inference (so forecasts are warm at once).
    #[arg(long, value_name = "DURATION")]
    backfill: Option<String>,
    /// Seconds between backfilled samples.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    backfill_step: u64,
    /// Write the backfill, then exit without going live.
    #[arg(long)]
    backfill_only: bool,
    /// Start in this scenario (healthy, degrading, critical).
    #[arg(long, value_name = "NAME")]
    scenario: Option<String>,
}

#[derive(clap::Args, Debug, Default)]
struct HostArgs {
    /// The name samples carry [default: sources.host.server_name, else the hostname]
    #[arg(long, value_name = "NAME")]
    server_name: Option<String>,
    /// Print one reading (NDJSON, a second apart from the first counters) and exit; sends nothing.
    #[arg(long)]
    once: bool,
}

fn fail(code: i32, message: impl std::fmt::Display) -> ExitCode {
    nordiq_runtime::cli::fail("nordiq-metrics", code, message)
}

fn load(args: &Args) -> Result<(Config, Option<ApiKey>), Fatal> {
    let mut config = nordiq_runtime::cli::load_config(args.dev, args.config.as_deref())?;
    if let Some(url) = &args.inference_url {
        config.sources.inference_url = url.clone();
    }
    if let Some(i) = args.interval {
        config.sources.interval_seconds = i;
    }
    if let Some(level) = &args.log_level {
        config.log.level = level.clone();
    }
    let s = &mut config.sources;
    match &args.command {
        Command::Run => {}
        Command::Simulate(sim) => {
            s.kind = SourceKind::Simulator;
            if let Some(n) = sim.servers {
                s.simulator.servers = n;
            }
            if let Some(seed) = sim.seed {
                s.simulator.seed = seed;
            }
            if let Some(speed) = sim.speed {
                s.simulator.speed = speed;
            }
            if let Some(listen) = &sim.listen {
                s.simulator.listen = listen.clone();
            }
        }
        Command::Host(host) => {
            s.kind = SourceKind::Host;
            if let Some(name) = &host.server_name {
                s.host.server_name = name.clone();
            }
        }
        Command::NodeExporter(n) => {
            s.kind = SourceKind::NodeExporter;
            if !n.targets.is_empty() {
                s.prometheus.targets = n.targets.clone();
            }
        }
        Command::Elasticsearch(e) => {
            s.kind = SourceKind::Elasticsearch;
            if let Some(url) = &e.url {
                s.elasticsearch.url = url.clone();
            }
            if let Some(index) = &e.index {
                s.elasticsearch.index = index.clone();
            }
        }
        Command::Mongodb(m) => {
            s.kind = SourceKind::Mongodb;
            if let Some(uri) = &m.uri {
                s.mongodb.uri = uri.clone();
                s.mongodb.address.clear();
            }
            if let Some(d) = &m.database {
                s.mongodb.database = d.clone();
            }
            if let Some(c) = &m.collection {
                s.mongodb.collection = c.clone();
            }
        }
        Command::Prometheus(p) => {
            s.kind = SourceKind::Prometheus;
            if let Some(url) = &p.url {
                s.prometheus.url = url.clone();
            }
            if let Some(h) = p.start_hours {
                s.prometheus.start_hours = h;
            }
        }
    }
    // The command line may have changed `sources`: check the whole again.
    config.validate().or_exit(exit::USAGE)?;
    let key =
        resolve_key(&KeyEnv::from_process(), &config.auth.api_key_file).or_exit(exit::CONFIG)?;
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
    if let Command::Host(HostArgs { once: true, .. }) = &args.command {
        return match service::print_host_once(&config) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(exit::IO_ERR, format!("{e:#}")),
        };
    }
    // SAFETY: still single-threaded.
    let Prepared {
        activation,
        log,
        runtime,
    } = match unsafe { prepare("nordiq-metrics", &config.log.level, Some(2)) } {
        Ok(p) => p,
        Err(f) => return fail(f.code, f),
    };
    if key.is_none() {
        tracing::warn!(
            key_file = %config.auth.api_key_file.display(),
            "no API key: nordiq-inference will answer 401 unless it allows anonymous access"
        );
    }
    let simulate = match &args.command {
        Command::Simulate(sim) => Some(sim),
        _ => None,
    };
    let options = service::Options {
        backfill: simulate.and_then(|s| s.backfill.clone()),
        backfill_step_seconds: simulate.map_or(60, |s| s.backfill_step),
        backfill_only: simulate.is_some_and(|s| s.backfill_only),
        scenario: simulate.and_then(|s| s.scenario.clone()),
    };
    match runtime.block_on(service::run(config, key, options, activation.watchdog, log)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => fail(f.code, f),
    }
}
