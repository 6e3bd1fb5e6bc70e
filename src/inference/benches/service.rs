//! Service benchmark (`cargo bench -p nordiq-inference --bench service`): runs the real
//! release daemon on loopback and measures ingest throughput (JSON and NDJSON), the latency
//! of the cached all-fleet predictions, and forecast refresh time with the baselines
//! (in-process on full windows, and the daemon's own figure). Prints the numbers and
//! rewrites its section of docs/benchmarks.md. Not a test: nothing here asserts speed.

mod common;

use common::{
    bodies, ingest, percentile, server_name, start_daemon, BIN, KEY, TIMESTAMPS_PER_BATCH,
};
use nordiq_core::assess;
use nordiq_core::config::{BaselineKind, Config};
use nordiq_core::timefmt::now_ms;
use nordiq_core::window::WindowSnapshot;
use nordiq_model::baseline::Baseline;
use nordiq_model::{parallel_map, ForecastSpec, Forecaster};
use nordiq_runtime::client::ApiClient;
use std::fmt::Write as _;
use std::process::Command;
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;

const SERVERS: usize = 1000;
const CONNECTIONS: usize = 4;
const SAMPLE_SPACING_S: i64 = 5;

/// Full windows for `SERVERS` servers (two days at 5 min), as the refresh sees them.
fn synthetic_snapshots(config: &Config) -> Vec<WindowSnapshot> {
    let len = config.history_steps();
    let width = config.metrics.len();
    (0..SERVERS)
        .map(|s| {
            let mut history = vec![0.0f32; width * len];
            for m in 0..width {
                for t in 0..len {
                    let day = (t % 288) as f32 / 288.0 * std::f32::consts::TAU;
                    history[m * len + t] =
                        30.0 + 10.0 * day.sin() + ((s * 7 + m * 3 + t * 13) % 17) as f32 * 0.3;
                }
            }
            WindowSnapshot {
                server: server_name(s),
                profile: "generic".into(),
                last_step: 1_000_000,
                history,
                len,
                current: vec![35.0; width],
                current_ts: now_ms(),
            }
        })
        .collect()
}

/// Median time of a full refresh (forecast, assess, serialise) over `runs`.
fn time_refresh(
    config: &Config,
    kind: BaselineKind,
    snapshots: &[WindowSnapshot],
    runs: usize,
) -> (f64, f64, &'static str) {
    let mut c = config.clone();
    c.forecast.baseline = kind;
    let model = Baseline::from_config(&c);
    let refs: Vec<&WindowSnapshot> = snapshots.iter().collect();
    let mut times = Vec::new();
    let mut method = "";
    for _ in 0..runs {
        let started = Instant::now();
        let forecasts = model.forecast_batch(&refs);
        method = forecasts[0].method;
        let pairs: Vec<_> = snapshots.iter().zip(forecasts).collect();
        let threads = ForecastSpec::from_config(&c).threads;
        let assessed = parallel_map(pairs, threads, |(s, f)| assess::assess(&c, s, f));
        let current = assess::predictions_current(&c, model.id(), now_ms(), &assessed);
        let bytes = serde_json::to_vec(&current).expect("serialise");
        std::hint::black_box(bytes);
        times.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    (percentile(&times, 0.5), times[times.len() - 1], method)
}

fn main() {
    // `cargo bench` passes --bench; a filter argument is not supported.
    let quick = std::env::args().any(|a| a == "--quick");
    let history_timestamps = if quick { 120 } else { 1440 }; // 10 min or 2 h at 5 s
    let dir = common::TempDir::new("bench-service");
    let port = common::free_port();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let base = format!("http://127.0.0.1:{port}");
    let mut report = String::new();
    let _ = writeln!(
        report,
        "## Service (issue 2): ingest, predictions, refresh\n"
    );
    let _ = writeln!(
        report,
        "Command: `cargo bench -p nordiq-inference --bench service`. Machine: {}. Client and daemon share the machine's cores over loopback, so these are lower bounds for a daemon with the machine to itself. Daemon built with `--release`.\n",
        nordiq_testkit::bench_report::machine()
    );

    // Ingest: the daemon fresh each time so both formats see the same empty store.
    let mut rows = Vec::new();
    for ndjson in [false, true] {
        // A fresh state directory per format, so neither run recovers the other's log.
        let run_dir = dir.join(if ndjson { "ndjson" } else { "json" });
        std::fs::create_dir_all(&run_dir).expect("bench dir");
        let daemon = start_daemon(&run_dir, port, "");
        let start_ts = now_ms() / 1000 - history_timestamps as i64 * SAMPLE_SPACING_S;
        let per_conn = bodies(
            ndjson,
            SERVERS,
            CONNECTIONS,
            start_ts,
            history_timestamps,
            SAMPLE_SPACING_S,
        );
        let r = runtime.block_on(ingest(&base, per_conn, ndjson));
        let rate = r.samples as f64 / r.seconds;
        let name = if ndjson { "NDJSON" } else { "JSON" };
        println!(
            "ingest {name}: {} samples in {:.2} s = {:.0} samples/s ({:.1} MB/s of body)",
            r.samples,
            r.seconds,
            rate,
            r.bytes as f64 / r.seconds / 1e6
        );
        rows.push(format!(
            "| {name} | {} | {:.2} | **{:.0}** | {:.1} |",
            r.samples,
            r.seconds,
            rate,
            r.bytes as f64 / r.seconds / 1e6
        ));
        if ndjson {
            // Keep this daemon: it now holds 1,000 servers with history.
            measure_reads(&runtime, &base, &mut report, rows.clone());
        }
        drop(daemon);
    }

    let config = Config::default();
    let snapshots = synthetic_snapshots(&config);
    let runs = if quick { 3 } else { 10 };
    let _ = writeln!(
        report,
        "\n### Forecast refresh, in-process, full windows\n\n{SERVERS} servers × {} metrics × {} history steps, horizon {} steps, quantiles {:?}; forecast + risk + serialising `/predictions/current`; {} threads; {runs} runs.\n\n| baseline | method used | median ms | max ms | target |\n|---|---|---|---|---|",
        config.metrics.len(),
        config.history_steps(),
        config.model.horizon_steps,
        config.model.quantiles,
        ForecastSpec::from_config(&config).threads
    );
    for kind in std::iter::once(BaselineKind::Auto).chain(BaselineKind::ALL) {
        let (median, max, method) = time_refresh(&config, kind, &snapshots, runs);
        println!("refresh {kind:?}: median {median:.1} ms, max {max:.1} ms ({method})");
        let _ = writeln!(
            report,
            "| {kind:?} | {method} | **{median:.1}** | {max:.1} | ≤ 100 ms |"
        );
    }
    let _ = writeln!(report);
    measure_refill(&dir, &mut report, quick);
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/benchmarks.md");
    match nordiq_testkit::bench_report::replace_section(&path, "service", &report) {
        Ok(()) => println!("wrote {}", path.display()),
        Err(e) => eprintln!("cannot write {}: {e}", path.display()),
    }
}

fn measure_reads(
    runtime: &tokio::runtime::Runtime,
    base: &str,
    report: &mut String,
    ingest_rows: Vec<String>,
) {
    let _ = writeln!(
        report,
        "### Ingest over loopback\n\n{SERVERS} servers × 14 metrics, {CONNECTIONS} connections, {} records per request, durability on: a request is answered only after its samples' log frame is fsynced. Target: ≥ 200,000 samples/s with NDJSON.\n\n| format | samples | seconds | samples/s | body MB/s |\n|---|---|---|---|---|",
        TIMESTAMPS_PER_BATCH * SERVERS / CONNECTIONS
    );
    for row in ingest_rows {
        let _ = writeln!(report, "{row}");
    }
    runtime.block_on(async {
        let client = ApiClient::new(base, Some(KEY.to_string()));
        let refresh = client.post("/admin/refresh", "application/json", "").await.expect("refresh");
        let info: nordiq_core::api::RefreshInfo = refresh.json().expect("refresh info");
        println!("daemon refresh: {} servers in {:.1} ms", info.servers, info.duration_ms);
        // Warm up the connection and the allocator.
        let first = client.get("/predictions/current").await.expect("predictions");
        let size = first.body.len();
        let mut times = Vec::new();
        for _ in 0..2000 {
            let started = Instant::now();
            let a = client.get("/predictions/current").await.expect("predictions");
            assert!(a.status.is_success());
            times.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        times.sort_by(f64::total_cmp);
        let (p50, p95, p99) = (percentile(&times, 0.5), percentile(&times, 0.95), percentile(&times, 0.99));
        println!(
            "GET /predictions/current ({} servers, {:.2} MB): p50 {p50:.2} ms, p95 {p95:.2} ms, p99 {p99:.2} ms",
            info.servers,
            size as f64 / 1e6
        );
        let _ = writeln!(
            report,
            "\n### `GET /predictions/current` latency\n\nCached answer for {} servers × 14 metrics ({:.2} MB of JSON), 2,000 sequential requests on one keep-alive connection. Target: p99 ≤ 5 ms.\n\n| p50 ms | p95 ms | p99 ms |\n|---|---|---|\n| {p50:.2} | {p95:.2} | **{p99:.2}** |\n\nThe daemon's own refresh of these {} servers (history of 2 h, so the fitted-smoothing fallback): {:.1} ms, including the window snapshot.",
            info.servers,
            size as f64 / 1e6,
            info.servers,
            info.duration_ms
        );
    });
}

/// Warm restart: a buffer holding 1,000 servers × 24 h of 5-second samples (17.28 M), and
/// the daemon's own report of how long refilling the windows took.
fn measure_refill(dir: &std::path::Path, report: &mut String, quick: bool) {
    let hours = if quick { 2 } else { 24 };
    let state = dir.join("refill");
    let _ = std::fs::remove_dir_all(&state);
    let root = state.join("buffer");
    let metrics: Vec<String> = nordiq_core::config::default_catalog()
        .into_iter()
        .map(|m| m.name)
        .collect();
    let now = now_ms() / 5000 * 5000;
    let start = now - hours * 3_600_000;
    let mut total = 0usize;
    for h in 0..hours {
        let seq = h as u64 + 1;
        let hour_start = start + h * 3_600_000;
        let mut samples: Vec<nordiq_core::ingest::Sample> = (0..720)
            .flat_map(|t| (0..SERVERS).map(move |s| (s, t)))
            .map(|(s, t)| {
                let ts = hour_start + t as i64 * 5000;
                let v = ((ts / 5000) as usize * 31 + s * 17) % 1000;
                nordiq_core::ingest::Sample {
                    timestamp_ms: ts,
                    server: server_name(s),
                    profile: "generic".into(),
                    values: (0..metrics.len())
                        .map(|m| ((v + m * 7) % 100) as f32)
                        .collect(),
                }
            })
            .collect();
        total += samples.len();
        // Split at midnight like the roll does.
        let day = nordiq_buffer::layout::day_of(hour_start);
        let path = nordiq_buffer::layout::partition_dir(&root, day)
            .join(nordiq_buffer::layout::part_name(seq));
        nordiq_buffer::parquet_io::write_samples(&path, &metrics, &mut samples)
            .expect("write refill data");
    }
    let port = common::free_port();
    let config = dir.join("refill.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\n[paths]\nstate_dir = \"{}\"\n[auth]\napi_key_file = \"{}\"\n[log]\nlevel = \"info\"\n",
            state.display(),
            dir.join("key").display()
        ),
    )
    .unwrap();
    let log = dir.join("refill.log");
    let started = Instant::now();
    let daemon = nordiq_testkit::Proc::start(
        nordiq_testkit::clean_env(Command::new(BIN).arg("--config").arg(&config))
            .env("NORDIQ_API_KEY", KEY),
        &log,
    );
    let line = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(l) = text.lines().find(|l| l.contains("windows refilled")) {
            break l.to_string();
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "no refill line: {text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let to_ready = started.elapsed().as_secs_f64();
    let field = |name: &str| {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{name}=")))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    let (samples, seconds) = (field("samples"), field("seconds"));
    let base = format!("http://127.0.0.1:{port}");
    let warm = Runtime::new().unwrap().block_on(async {
        let client = ApiClient::new(&base, Some(KEY.to_string()));
        let s: nordiq_core::api::StatusResponse =
            client.get("/status").await.unwrap().json().unwrap();
        (s.servers, s.warm_servers)
    });
    drop(daemon);
    let _ = std::fs::remove_dir_all(&state);
    println!("refill: {samples} samples ({total} stored) in {seconds:.2} s; start to refilled {to_ready:.2} s; {} servers, {} warm", warm.0, warm.1);
    let _ = writeln!(
        report,
        "### Warm restart\n\nA buffer holding {SERVERS} servers × {hours} h of 5-second samples ({total} samples × 14 metrics) in Parquet; the daemon refills every window at start (the last two days are read; the refill is logged).\n\n| samples read | refill seconds | start to refilled, s | servers | warm |\n|---|---|---|---|---|\n| {samples} | **{seconds:.2}** | {to_ready:.2} | {} | {} |\n",
        warm.0,
        warm.1
    );
}
