//! The running service, under the shared lifecycle (`nordiq_runtime::lifecycle`): the read
//! loop reads the source and hands batches to the delivery task; the delivery task sends
//! them (or spools them) and drains the spool; the watchdog is pinged only while the
//! delivery task is alive. On SIGTERM the read loop stops and delivery gets 15 s to send or
//! spool what is queued.

use crate::backfill;
use crate::scenario_api::{self, ScenarioApi};
use anyhow::{anyhow, Context};
use nordiq_core::config::{Config, SourceKind};
use nordiq_core::timefmt::now_ms;
use nordiq_metrics::deliver::{Delivery, DeliveryStats, Target};
use nordiq_metrics::elastic::ElasticPull;
use nordiq_metrics::host::HostReader;
use nordiq_metrics::mongo::MongoPull;
use nordiq_metrics::prometheus_sources::{NodeScraper, QueryRange};
use nordiq_metrics::record::{push_ndjson, Reading};
use nordiq_metrics::scenario::Scenario;
use nordiq_metrics::source::{SimSource, Source};
use nordiq_metrics::spool::{Batch, Spool};
use nordiq_runtime::auth::ApiKey;
use nordiq_runtime::client::base_url_for_listen;
use nordiq_runtime::exit::{self, Fatal, OrExit};
use nordiq_runtime::lifecycle::{Lifecycle, Service};
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

pub struct Options {
    pub backfill: Option<String>,
    pub backfill_step_seconds: u64,
    pub backfill_only: bool,
    pub scenario: Option<String>,
}

pub fn inference_url(config: &Config) -> String {
    if config.sources.inference_url.is_empty() {
        base_url_for_listen(&config.server.listen, config.tls.files_set())
    } else {
        config.sources.inference_url.clone()
    }
}

/// `host --once`: one reading to stdout.
pub fn print_host_once(config: &Config) -> anyhow::Result<()> {
    let mut reader = HostReader::new(Path::new("/proc"), &config.sources.host, now_ms())?;
    std::thread::sleep(Duration::from_secs(1));
    let reading = reader.read(now_ms())?;
    let mut out = String::new();
    push_ndjson(&mut out, &reading, &|m| config.metric_index(m).is_some());
    print!("{out}");
    Ok(())
}

/// Ids unique to this process: a random prefix and a counter.
struct BatchIds {
    prefix: String,
    next: u64,
}

impl BatchIds {
    fn new() -> BatchIds {
        let mut raw = [0u8; 6];
        let prefix = match getrandom::fill(&mut raw) {
            Ok(()) => raw.iter().map(|b| format!("{b:02x}")).collect(),
            Err(_) => format!("{:x}-{}", now_ms(), std::process::id()),
        };
        BatchIds { prefix, next: 0 }
    }

    fn batch(&mut self, records: usize, body: String) -> Batch {
        self.next += 1;
        Batch {
            id: format!("{}-{}", self.prefix, self.next),
            records,
            body: body.into_bytes(),
        }
    }
}

fn batches(config: &Config, ids: &mut BatchIds, readings: &[Reading]) -> Vec<Batch> {
    let keep = |m: &str| config.metric_index(m).is_some();
    readings
        .chunks(config.sources.batch_max_records)
        .map(|chunk| {
            let mut body = String::new();
            for r in chunk {
                push_ndjson(&mut body, r, &keep);
            }
            ids.batch(chunk.len(), body)
        })
        .collect()
}

pub async fn run(
    config: Config,
    key: Option<ApiKey>,
    options: Options,
    watchdog: Option<Duration>,
    _log: nordiq_runtime::logging::LogHandle,
) -> Result<(), Fatal> {
    let url = inference_url(&config);
    let client = nordiq_runtime::client::for_daemon(
        &config,
        Some(&url),
        key.as_ref().map(|k| k.expose().to_string()),
    )
    .or_exit(exit::CONFIG)?
    .with_timeout(Duration::from_secs(10));
    let spool_dir = config.paths.state_dir.join("spool").join("metrics");
    let spool = Spool::open(
        &spool_dir,
        config.sources.spool_max_bytes,
        "raise sources.spool_max_bytes or bring nordiq-inference back",
    )
    .or_exit(exit::IO_ERR)?;
    if !spool.is_empty() {
        tracing::info!(
            batches = spool.len(),
            bytes = spool.bytes(),
            "undelivered batches from the last run will go first"
        );
    }
    let target = if config.sources.publish_to_cluster {
        let node = nordiq_cluster::node_name(&config.cluster);
        let (_client, js) =
            nordiq_cluster::connect(&config.cluster, &format!("nordiq-metrics {node}"))
                .await
                .or_exit(exit::CONFIG)?;
        tracing::info!(urls = %config.cluster.nats_urls.join(","), "publishing straight to the cluster's stream");
        Target::Cluster {
            js,
            config: Arc::new(config.clone()),
            node,
        }
    } else {
        Target::Http(client)
    };
    let mut delivery = Delivery::new(
        target,
        spool,
        Duration::from_secs(config.sources.retry_max_seconds),
    );
    let mut ids = BatchIds::new();
    let now = now_ms();

    let mut source = match config.sources.kind {
        SourceKind::Simulator => {
            let s = &config.sources.simulator;
            let backfill_ms = match &options.backfill {
                Some(text) => backfill::parse_duration_ms(text).or_exit(exit::USAGE)?,
                None => 0,
            };
            let sim = SimSource::new(s.servers, s.seed, s.speed, now - backfill_ms);
            let sim = Arc::new(Mutex::new(sim));
            if let Some(name) = &options.scenario {
                let scenario = Scenario::parse(name).ok_or_else(|| {
                    Fatal::new(
                        exit::USAGE,
                        format!("unknown scenario `{name}`: use healthy, degrading or critical"),
                    )
                })?;
                sim.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .set_scenario(scenario, now - backfill_ms);
            }
            if backfill_ms > 0 {
                let step_ms = options.backfill_step_seconds.max(1) as i64 * 1000;
                tracing::info!(
                    days = backfill_ms as f64 / 86_400_000.0,
                    step_s = step_ms / 1000,
                    "backfilling"
                );
                let config2 = config.clone();
                let sim2 = Arc::clone(&sim);
                // The window's batches come over a short channel and are delivered (or
                // spooled) while the backfill goes on.
                let (live_tx, mut live_rx) = mpsc::channel::<(usize, String)>(4);
                let work = tokio::task::spawn_blocking(move || {
                    let mut sim = sim2.lock().unwrap_or_else(|p| p.into_inner());
                    let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
                    let mut shown = -1.0;
                    backfill::run(
                        &config2,
                        &mut sim,
                        now - backfill_ms,
                        now,
                        step_ms,
                        &mut |done| {
                            // A terminal gets one updating line; a log gets a line per quarter.
                            if terminal {
                                eprint!("\r  backfill: {:>3.0} %", done * 100.0);
                                if done >= 1.0 {
                                    eprintln!();
                                }
                            } else if done - shown >= 0.25 || done >= 1.0 {
                                eprintln!("  backfill: {:>3.0} %", done * 100.0);
                                shown = done;
                            }
                        },
                        &mut |records, body| {
                            live_tx
                                .blocking_send((records, body))
                                .map_err(|_| anyhow!("delivery stopped during the backfill"))
                        },
                    )
                });
                while let Some((records, body)) = live_rx.recv().await {
                    delivery
                        .submit(ids.batch(records, body))
                        .await
                        .or_exit(exit::IO_ERR)?;
                }
                let report = work.await.or_exit(exit::SOFTWARE)?.or_exit(exit::IO_ERR)?;
                tracing::info!(
                    buffered = report.buffered,
                    already_there = report.duplicates,
                    to_inference = report.live,
                    "backfill written"
                );
                let stats = delivery.stats();
                eprintln!(
                    "  backfill: {} samples into the buffer, {} sent to nordiq-inference ({} spooled batches)",
                    report.buffered, stats.accepted_records, stats.spooled_batches
                );
                if options.backfill_only {
                    return Ok(());
                }
            }
            sim.lock()
                .unwrap_or_else(|p| p.into_inner())
                .go_live(now_ms());
            Source::Simulator(sim)
        }
        SourceKind::Host => {
            let reader = HostReader::new(Path::new("/proc"), &config.sources.host, now)
                .or_exit(exit::IO_ERR)?;
            tracing::info!(server = reader.server(), "reading this host");
            Source::Host(Box::new(reader))
        }
        SourceKind::NodeExporter => {
            let scraper = NodeScraper::new(&config.sources.prometheus).or_exit(exit::CONFIG)?;
            tracing::info!(targets = scraper.servers(), "scraping node_exporter");
            Source::NodeExporter(scraper)
        }
        SourceKind::Prometheus => {
            let pull = QueryRange::new(&config, now).or_exit(exit::CONFIG)?;
            tracing::info!(url = %config.sources.prometheus.url, "pulling from Prometheus");
            Source::Prometheus(Box::new(pull))
        }
        SourceKind::Elasticsearch => {
            let pull = ElasticPull::new(&config, now).or_exit(exit::CONFIG)?;
            tracing::info!(url = %config.sources.elasticsearch.url, index = %config.sources.elasticsearch.index, "reading Elasticsearch");
            Source::Elasticsearch(Box::new(pull))
        }
        SourceKind::Mongodb => {
            let pull = MongoPull::new(&config, now).or_exit(exit::CONFIG)?;
            let m = &config.sources.mongodb;
            tracing::info!(hosts = %nordiq_metrics::mongo::hosts(m), database = %m.database, collection = %m.collection, "reading MongoDB");
            Source::Mongodb(Box::new(pull))
        }
    };

    let lifecycle = Lifecycle::new(watchdog)
        .context("installing the signal handlers")
        .or_exit(exit::SOFTWARE)?;
    // The simulator's scenario API.
    if let Source::Simulator(sim) = &source {
        let listen = &config.sources.simulator.listen;
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("binding the scenario API to {listen} (set sources.simulator.listen or --listen)"))
            .or_exit(exit::UNAVAILABLE)?;
        let api = ScenarioApi {
            sim: Arc::clone(sim),
            key: key.clone().map(Arc::new),
        };
        tracing::info!(address = %listen, "scenario API listening");
        // The scenario API: plain HTTP on the simulator's (loopback) address, with the
        // daemons' connection limits.
        let serving = nordiq_runtime::serve::Serving::plain(
            nordiq_runtime::serve::Limits::from_config(&config.server),
        );
        lifecycle.serve_http(listener, scenario_api::router(api), serving);
    }

    // Delivery runs in its own task so a slow daemon never delays a reading.
    // A batch may come with an ack: true once it is delivered or safely spooled.
    let (tx, mut rx) = mpsc::channel::<(Batch, Option<oneshot::Sender<bool>>)>(256);
    let metrics = Arc::new(MetricsService {
        source_name: source_name(&config),
        url: url.clone(),
        started: std::time::Instant::now(),
        progress: Mutex::new(Progress::default()),
        stats: Mutex::new(delivery.stats().clone()),
        heartbeat: AtomicI64::new(now_ms()),
    });
    let shutdown = lifecycle.shutdown_token();
    {
        let metrics = Arc::clone(&metrics);
        let shutdown = shutdown.clone();
        lifecycle.spawn(async move {
            loop {
                metrics.heartbeat.store(now_ms(), Ordering::Relaxed);
                let outcome = tokio::select! {
                    batch = rx.recv() => match batch {
                        Some((b, ack)) => {
                            // Shutting down: what is queued goes to disk first, nothing is lost.
                            let outcome = if shutdown.is_cancelled() {
                                delivery.spool_only(b)
                            } else {
                                delivery.submit(b).await
                            };
                            if let Some(ack) = ack {
                                let _ = ack.send(outcome.is_ok());
                            }
                            outcome
                        }
                        None => break,
                    },
                    _ = tokio::time::sleep(Duration::from_secs(1)) => delivery.drain().await,
                };
                if let Err(e) = outcome {
                    tracing::error!(error = %e, "spool write failed; that batch is lost");
                }
                *lock(&metrics.stats) = delivery.stats().clone();
            }
            // Shutting down: one last try, then whatever is left stays in the spool.
            let _ = delivery.drain().await;
            *lock(&metrics.stats) = delivery.stats().clone();
        });
    }

    let interval = Duration::from_secs(config.sources.interval_seconds);
    tracing::info!(source = source.name(), inference = %url, interval_s = interval.as_secs(), "ready");
    let reading = {
        let metrics = Arc::clone(&metrics);
        let shutdown = shutdown.clone();
        lifecycle.spawn(async move {
            let outcome = read_loop(
                &config,
                &mut source,
                &mut ids,
                interval,
                &tx,
                &metrics,
                &shutdown,
            )
            .await;
            if outcome.is_err() {
                // Nothing to do without delivery: stop the daemon.
                shutdown.cancel();
            }
            outcome
        })
    };
    lifecycle.run(Arc::clone(&metrics), DRAIN_TIMEOUT).await;
    if let Ok(Err(failure)) = reading.await {
        return Err(failure);
    }
    let s = lock(&metrics.stats).clone();
    tracing::info!(
        delivered = s.accepted_records,
        spooled = s.spooled_batches,
        "stopped"
    );
    Ok(())
}

/// Delivery gets this long after SIGTERM to send (or spool) what is queued; what is left
/// stays in the spool for the next start.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(15);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[derive(Default)]
struct Progress {
    readings_total: u64,
    last_read_error: Option<String>,
    servers: usize,
}

/// nordiq-metrics as the shared lifecycle sees it.
struct MetricsService {
    source_name: &'static str,
    url: String,
    started: std::time::Instant,
    progress: Mutex<Progress>,
    stats: Mutex<DeliveryStats>,
    /// The delivery task's last pass; it wakes every second.
    heartbeat: AtomicI64,
}

impl Service for MetricsService {
    fn status(&self) -> String {
        let p = lock(&self.progress);
        let stats = lock(&self.stats);
        let rate = p.readings_total as f64 / self.started.elapsed().as_secs_f64().max(1.0);
        let error = p.last_read_error.as_ref().or(stats.last_error.as_ref());
        format!(
            "{}: {} servers, {rate:.1} samples/s; delivered {} to {}; spool {} batches{}",
            self.source_name,
            p.servers,
            stats.accepted_records,
            self.url,
            stats.spooled_batches,
            error
                .map(|e| format!("; last error: {e}"))
                .unwrap_or_default()
        )
    }

    /// A stale delivery heartbeat means the delivery task hangs.
    fn alive(&self) -> bool {
        now_ms() - self.heartbeat.load(Ordering::Relaxed) < 30_000
    }

    async fn reload(self: Arc<Self>) -> Result<String, String> {
        Ok(
            "nordiq-metrics re-reads nothing on SIGHUP; restart it to apply a changed config"
                .into(),
        )
    }
}

/// Reads the source every `interval` and hands its batches to delivery, until shutdown.
async fn read_loop(
    config: &Config,
    source: &mut Source,
    ids: &mut BatchIds,
    interval: Duration,
    tx: &mpsc::Sender<(Batch, Option<oneshot::Sender<bool>>)>,
    metrics: &MetricsService,
    shutdown: &CancellationToken,
) -> Result<(), Fatal> {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.cancelled() => return Ok(()),
        }
        // A read in flight is dropped at shutdown: it has committed nothing (the mark moves
        // only after delivery), and a source that hangs (a server selection, a slow
        // query) must not hold the stop past TimeoutStopSec.
        let poll = tokio::select! {
            poll = source.poll(now_ms()) => poll,
            _ = shutdown.cancelled() => return Ok(()),
        };
        {
            let mut p = lock(&metrics.progress);
            match &poll.error {
                Some(e) => {
                    let text = e.to_string();
                    // Said once per distinct error: a transient one is read again at the
                    // next interval; a permanent one needs the source or config fixed.
                    if p.last_read_error.as_deref() != Some(text.as_str()) {
                        if e.is_transient() {
                            tracing::warn!(error = %e, source = source.name(), "reading failed; reading again at the next interval");
                        } else {
                            tracing::error!(error = %e, source = source.name(), "reading failed and will until the source or its settings are fixed; the high-water mark stays");
                        }
                    }
                    p.last_read_error = Some(text);
                }
                None => p.last_read_error = None,
            }
            if !poll.readings.is_empty() {
                let names: std::collections::HashSet<&str> =
                    poll.readings.iter().map(|r| r.server.as_str()).collect();
                p.servers = names.len();
            }
            p.readings_total += poll.readings.len() as u64;
        }
        let mut acks = Vec::new();
        for batch in batches(config, ids, &poll.readings) {
            let (ack, acked) = match poll.mark {
                Some(_) => {
                    let (a, b) = oneshot::channel();
                    (Some(a), Some(b))
                }
                None => (None, None),
            };
            if tx.send((batch, ack)).await.is_err() {
                return Err(Fatal::new(exit::SOFTWARE, "the delivery task ended"));
            }
            acks.extend(acked);
        }
        // The mark moves only once everything read up to it is safe.
        if let Some(mark) = &poll.mark {
            let mut safe = true;
            for acked in acks {
                safe &= acked.await.unwrap_or(false);
            }
            if safe {
                if let Err(e) = source.commit(mark) {
                    tracing::error!(error = %e, "cannot save the high-water mark; that range will be read again");
                }
            }
        }
    }
}

fn source_name(config: &Config) -> &'static str {
    config.sources.kind.name()
}
