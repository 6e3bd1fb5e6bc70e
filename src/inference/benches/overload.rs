//! Overload: the release daemon under 10,000 idle connections and a slowloris while a
//! normal feeder runs. Reports the feeder's latency (p50, p99) unloaded and loaded, the
//! /health latency under load, what the daemon admitted and shed (its /metrics), and the
//! watchdog pings it sent (a miss is a gap longer than WatchdogSec). Writes the `overload`
//! section of docs/benchmarks.md.
//!
//! Run: `cargo bench -p nordiq-inference --bench overload` (about 90 s; raises the open-file
//! limit to its hard limit, which must allow ~11,000 descriptors).

#[path = "common/mod.rs"]
mod common;

use common::*;
use nordiq_runtime::client::ApiClient;
use nordiq_testkit::{clean_env, NotifySocket, Proc};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const IDLE: usize = 10_000;
/// Idle connections come from this many loopback addresses (127.0.0.2 …), 250 each.
const IDLE_ADDRESSES: u8 = 40;
const SLOWLORIS: usize = 200;
const PHASE: Duration = Duration::from_secs(30);
const FEED_EVERY: Duration = Duration::from_millis(50);
const WATCHDOG: Duration = Duration::from_secs(2);

#[derive(Default)]
struct AttackCounts {
    connects: AtomicU64,
    connect_errors: AtomicU64,
    /// Answered 503 or 429 and closed at once.
    shed: AtomicU64,
    /// Held open, then closed by the daemon's header deadline.
    dropped_idle: AtomicU64,
    slowloris_cut: AtomicU64,
}

async fn connect_from(source: Ipv4Addr, to: SocketAddr) -> std::io::Result<tokio::net::TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(SocketAddr::V4(SocketAddrV4::new(source, 0)))?;
    socket.connect(to).await
}

/// Holds one idle connection from `source` at a time, reconnecting when the daemon closes
/// it, until `stop`.
async fn idle_client(
    source: Ipv4Addr,
    to: SocketAddr,
    stop: Arc<AtomicBool>,
    counts: Arc<AttackCounts>,
) {
    while !stop.load(Ordering::Relaxed) {
        counts.connects.fetch_add(1, Ordering::Relaxed);
        let mut stream = match connect_from(source, to).await {
            Ok(s) => s,
            Err(_) => {
                counts.connect_errors.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let mut first = [0u8; 12];
        let read = tokio::select! {
            r = stream.read(&mut first) => r.unwrap_or(0),
            _ = wait_stop(&stop) => return,
        };
        if read > 0 && (first.starts_with(b"HTTP/1.1 503") || first.starts_with(b"HTTP/1.1 429")) {
            counts.shed.fetch_add(1, Ordering::Relaxed);
            // A shed client backs off as Retry-After says.
            tokio::time::sleep(Duration::from_secs(1)).await;
        } else {
            counts.dropped_idle.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Sends a request's headers one byte a second, reconnecting when cut, until `stop`.
async fn slowloris(
    source: Ipv4Addr,
    to: SocketAddr,
    stop: Arc<AtomicBool>,
    counts: Arc<AttackCounts>,
) {
    let request = b"GET /health HTTP/1.1\r\nhost: nordiq\r\nx-slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    while !stop.load(Ordering::Relaxed) {
        let Ok(mut stream) = connect_from(source, to).await else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        for byte in request.iter().cycle() {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            if stream.write_all(&[*byte]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        counts.slowloris_cut.fetch_add(1, Ordering::Relaxed);
    }
}

async fn wait_stop(stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Feeds 50 servers one record each every [`FEED_EVERY`] for `phase`; the latencies (ms).
async fn feed(client: &ApiClient, phase: Duration, first_server: usize) -> (Vec<f64>, usize) {
    let mut latencies = Vec::new();
    let mut failures = 0;
    let started = Instant::now();
    let mut tick = tokio::time::interval(FEED_EVERY);
    while started.elapsed() < phase {
        tick.tick().await;
        let ts = nordiq_core::timefmt::now_ms();
        let mut body = String::new();
        for s in first_server..first_server + 50 {
            record(&mut body, s, ts, 1);
            body.push('\n');
        }
        let sent = Instant::now();
        match client
            .post("/feed/data", "application/x-ndjson", body)
            .await
        {
            Ok(a) if a.status.is_success() => latencies.push(sent.elapsed().as_secs_f64() * 1000.0),
            _ => failures += 1,
        }
    }
    latencies.sort_by(|a, b| a.total_cmp(b));
    (latencies, failures)
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN)
}

fn main() {
    let open_files = nordiq_runtime::lifecycle::raise_open_file_limit();
    let dir = TempDir::new("bench-overload");
    let port = free_port();
    let config = dir.join("nordiq.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\n[paths]\nstate_dir = \"{}\"\n[auth]\napi_key_file = \"{}\"\n[log]\nlevel = \"warn\"\n",
            dir.join("state").display(),
            dir.join("key").display()
        ),
    )
    .expect("write config");
    let notify = NotifySocket::bind(dir.path());
    let daemon = Proc::start(
        clean_env(Command::new(BIN).arg("--config").arg(&config))
            .env("NORDIQ_API_KEY", KEY)
            .env("NOTIFY_SOCKET", &notify.path)
            .env("WATCHDOG_USEC", WATCHDOG.as_micros().to_string()),
        &dir.join("daemon.log"),
    );
    daemon.wait_port(port);

    // The watchdog pings, timestamped, for the whole run.
    let pings = Arc::new(Mutex::new(Vec::<Instant>::new()));
    let listening = Arc::new(AtomicBool::new(true));
    let watcher = {
        let (pings, listening) = (Arc::clone(&pings), Arc::clone(&listening));
        let mut notify = notify;
        std::thread::spawn(move || {
            while listening.load(Ordering::Relaxed) {
                for m in notify.collect(Duration::from_millis(100)) {
                    if m.contains("WATCHDOG=1") {
                        pings.lock().unwrap().push(Instant::now());
                    }
                }
            }
        })
    };

    // The feeder and the /health probe run on their own thread and runtime, the flood on
    // another (one worker), so the attackers' 10,000 tasks do not delay the feeder's own
    // wake-ups: what is measured is the daemon.
    let feeder_runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let flood_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let base = format!("http://127.0.0.1:{port}");
    let to: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let client = ApiClient::new(&base, Some(KEY.into())).with_timeout(Duration::from_secs(30));
    let run_started = Instant::now();

    eprintln!("unloaded: feeding for {} s", PHASE.as_secs());
    let (unloaded, unloaded_failures) = feeder_runtime.block_on(feed(&client, PHASE, 0));

    eprintln!(
        "loaded: {IDLE} idle connections + {SLOWLORIS} slowloris, feeding for {} s",
        PHASE.as_secs()
    );
    let stop = Arc::new(AtomicBool::new(false));
    let counts = Arc::new(AttackCounts::default());
    let mut attackers = Vec::new();
    for i in 0..IDLE {
        let source = Ipv4Addr::new(127, 0, 0, 2 + (i % IDLE_ADDRESSES as usize) as u8);
        attackers.push(flood_runtime.spawn(idle_client(
            source,
            to,
            Arc::clone(&stop),
            Arc::clone(&counts),
        )));
    }
    for i in 0..SLOWLORIS {
        let source = Ipv4Addr::new(127, 0, 1, 1 + (i % 50) as u8);
        attackers.push(flood_runtime.spawn(slowloris(
            source,
            to,
            Arc::clone(&stop),
            Arc::clone(&counts),
        )));
    }
    let daemon_pid = daemon.id();
    let (loaded, loaded_failures, health, metrics_text, rss_mib) = feeder_runtime.block_on(async {
        // Let the flood build up before measuring.
        tokio::time::sleep(Duration::from_secs(5)).await;
        let health_probe = {
            let client = ApiClient::new(&base, None).with_timeout(Duration::from_secs(30));
            let stop = Arc::clone(&stop);
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let sent = Instant::now();
                    if let Ok(a) = client.get("/health").await {
                        if a.status == 200 {
                            latencies.push(sent.elapsed().as_secs_f64() * 1000.0);
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                latencies.sort_by(|a, b| a.total_cmp(b));
                latencies
            })
        };
        let (loaded, failures) = feed(&client, PHASE, 1000).await;
        let rss_mib = std::fs::read_to_string(format!("/proc/{daemon_pid}/status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmRSS:"))
                    .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
            })
            .map(|kib| kib / 1024.0)
            .unwrap_or(f64::NAN);
        let metrics_text = client
            .get("/metrics")
            .await
            .map(|a| a.text())
            .unwrap_or_default();
        stop.store(true, Ordering::Relaxed);
        let health = health_probe.await.unwrap_or_default();
        (loaded, failures, health, metrics_text, rss_mib)
    });
    for a in attackers {
        a.abort();
    }
    flood_runtime.shutdown_timeout(Duration::from_secs(5));
    let run_time = run_started.elapsed();
    listening.store(false, Ordering::Relaxed);
    let _ = watcher.join();
    let alive = daemon.log_text();
    drop(daemon);

    let pings = pings.lock().unwrap().clone();
    let mut longest_gap = Duration::ZERO;
    for pair in pings.windows(2) {
        longest_gap = longest_gap.max(pair[1] - pair[0]);
    }
    let misses = pings.windows(2).filter(|p| p[1] - p[0] > WATCHDOG).count();
    let p = |v: &[f64], q: f64| {
        if v.is_empty() {
            f64::NAN
        } else {
            percentile(v, q)
        }
    };
    let (u50, u99, l50, l99) = (
        p(&unloaded, 0.5),
        p(&unloaded, 0.99),
        p(&loaded, 0.5),
        p(&loaded, 0.99),
    );
    let c = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let report = format!(
        "## Overload: 10,000 idle connections and a slowloris\n\n\
         `cargo bench -p nordiq-inference --bench overload` on {machine}; defaults\n\
         (`server.max_connections` 16384, `max_connections_per_client` 256,\n\
         `header_read_timeout_seconds` 15), open-file limit {open_files}, WatchdogSec {wd} s.\n\
         The flood comes from 40 loopback addresses (250 connections each, reconnecting when\n\
         closed) and {SLOWLORIS} slowloris connections (a header byte a second) from 50 more; the\n\
         feeder posts 50 records every {every} ms from 127.0.0.1 for {phase} s per phase. The\n\
         flood runs on one thread of the bench process, the feeder on another: both share the\n\
         machine's cores with the daemon.\n\n\
         | | unloaded | under the flood |\n|---|---|---|\n\
         | feeder requests ok / failed | {un} / {unf} | {ln} / {lnf} |\n\
         | feeder p50 (ms) | {u50:.2} | {l50:.2} |\n\
         | feeder p99 (ms) | {u99:.2} | {l99:.2} |\n\
         | feeder p99 loaded ÷ unloaded | | {ratio:.2}× |\n\
         | `/health` p50 / p99 under the flood (ms) | | {h50:.2} / {h99:.2} |\n\n\
         The daemon (its `/metrics` at the end): {open} connections open, {accepted} admitted,\n\
         shed {full} at `max_connections` (503) and {client} at `max_connections_per_client`\n\
         (429), {body} bodies shed; resident memory {rss_mib:.0} MiB. The attackers: {connects} connects, {shed} answered 503/429,\n\
         {dropped} idle ones closed by the header deadline, {cut} slowloris connections cut,\n\
         {errors} connect errors. Watchdog: {pings} pings in {run:.0} s, longest gap {gap:.2} s,\n\
         **{misses} misses** (gaps over {wd} s).\n\n",
        machine = nordiq_testkit::bench_report::machine(),
        wd = WATCHDOG.as_secs(),
        every = FEED_EVERY.as_millis(),
        phase = PHASE.as_secs(),
        un = unloaded.len(),
        unf = unloaded_failures,
        ln = loaded.len(),
        lnf = loaded_failures,
        ratio = l99 / u99,
        h50 = p(&health, 0.5),
        h99 = p(&health, 0.99),
        open = metric(&metrics_text, "nordiq_http_connections_open"),
        accepted = metric(&metrics_text, "nordiq_http_connections_accepted_total"),
        full = metric(&metrics_text, "nordiq_http_shed_total{reason=\"max_connections\"}"),
        client = metric(&metrics_text, "nordiq_http_shed_total{reason=\"max_connections_per_client\"}"),
        body = metric(&metrics_text, "nordiq_http_shed_total{reason=\"max_inflight_body_bytes\"}"),
        connects = c(&counts.connects),
        shed = c(&counts.shed),
        dropped = c(&counts.dropped_idle),
        cut = c(&counts.slowloris_cut),
        errors = c(&counts.connect_errors),
        pings = pings.len(),
        run = run_time.as_secs_f64(),
        gap = longest_gap.as_secs_f64(),
    );
    print!("{report}");
    if !alive.is_empty() {
        eprintln!(
            "daemon log (warnings):\n{}",
            alive.lines().take(20).collect::<Vec<_>>().join("\n")
        );
    }
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/benchmarks.md");
    nordiq_testkit::bench_report::replace_section(&path, "overload", &report)
        .expect("write docs/benchmarks.md");
    eprintln!("wrote the overload section of {}", path.display());
}
