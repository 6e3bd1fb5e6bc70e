//! Reload benchmark (`cargo bench -p nordiq-inference --bench reload`): the release daemon
//! serving a default-size TFT (hidden 32, 4 heads, 14 metrics, encoder 288, horizon 96)
//! to 1,000 warm servers; readers poll `GET /predictions/current` and a feeder posts fresh
//! samples, first with no reloads, then while the model is reloaded 20 times (alternating
//! two models through `models/current` and `POST /admin/reload-model`). Prints reload
//! time (the daemon's own figure: load + validation + swap) and the readers' latency in
//! both phases, and rewrites its section of docs/benchmarks.md. Asserts nothing about
//! speed.

mod common;

use common::{bodies, free_port, ingest, percentile, start_daemon, KEY};
use nordiq_core::config::Config;
use nordiq_core::timefmt::now_ms;
use nordiq_model::tft::{TftModel, TftShape};
use nordiq_runtime::client::ApiClient;
use nordiq_runtime::model_store::{ModelStore, Staging};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SERVERS: usize = 1000;
const READERS: usize = 3;
const RELOADS: usize = 20;

fn make_model(models: &std::path::Path, config: &Config, id: &str, seed: u64) {
    let model = TftModel::new(
        TftShape::from_config(config, 32, 4, 0.1),
        tch::Device::Cpu,
        seed,
    );
    let staging = Staging::create(models, id).expect("staging");
    model.save(staging.path()).expect("save model");
    staging
        .finish(
            &serde_json::json!({ "note": "untrained, for the reload benchmark" }),
            &serde_json::json!({ "finished": nordiq_core::timefmt::format_ms(now_ms()) }),
        )
        .expect("finish model");
}

/// Reader latencies (ms) and failures while `stop` is false.
async fn read_until(base: String, stop: Arc<AtomicBool>) -> (Vec<f64>, usize) {
    let client = ApiClient::new(&base, Some(KEY.to_string())).with_timeout(Duration::from_secs(30));
    let (mut times, mut failed) = (Vec::new(), 0);
    while !stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        match client.get("/predictions/current").await {
            Ok(a) if a.status.is_success() => times.push(started.elapsed().as_secs_f64() * 1000.0),
            _ => failed += 1,
        }
    }
    (times, failed)
}

/// Posts one fresh sample per server every second while `stop` is false.
async fn feed_until(base: String, stop: Arc<AtomicBool>) -> usize {
    let client = ApiClient::new(&base, Some(KEY.to_string())).with_timeout(Duration::from_secs(30));
    let mut failed = 0;
    while !stop.load(Ordering::Relaxed) {
        let body = bodies(true, SERVERS, 1, now_ms() / 1000, 1, 1)
            .remove(0)
            .remove(0);
        match client
            .post("/feed/data", "application/x-ndjson", body)
            .await
        {
            Ok(a) if a.status.is_success() => {}
            _ => failed += 1,
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    failed
}

struct Phase {
    times: Vec<f64>,
    failed: usize,
}

async fn phase<F, Fut>(base: &str, during: F) -> Phase
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..READERS)
        .map(|_| tokio::spawn(read_until(base.to_string(), Arc::clone(&stop))))
        .collect();
    let feeder = tokio::spawn(feed_until(base.to_string(), Arc::clone(&stop)));
    during().await;
    stop.store(true, Ordering::Relaxed);
    let mut out = Phase {
        times: Vec::new(),
        failed: feeder.await.expect("feeder"),
    };
    for r in readers {
        let (t, f) = r.await.expect("reader");
        out.times.extend(t);
        out.failed += f;
    }
    out.times.sort_by(f64::total_cmp);
    out
}

fn main() {
    let dir = common::TempDir::new("bench-reload");
    let config = Config::default();
    let models = dir.join("state/models");
    make_model(&models, &config, "tft_bench_a", 1);
    make_model(&models, &config, "tft_bench_b", 2);
    let store = ModelStore::new(&models);
    store.promote("tft_bench_a").expect("promote");
    let port = free_port();
    let _daemon = start_daemon(&dir, port, "");
    let base = format!("http://127.0.0.1:{port}");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    // 25 h of 5-minute samples: every server warm (encoder 288 steps).
    let steps = 300;
    let start = now_ms() / 1000 - steps as i64 * 300;
    let fed = runtime.block_on(ingest(
        &base,
        bodies(true, SERVERS, 4, start, steps, 300),
        true,
    ));
    println!("fed {} samples in {:.1} s", fed.samples, fed.seconds);
    let client =
        ApiClient::new(&base, Some(KEY.to_string())).with_timeout(Duration::from_secs(120));
    let refresh: nordiq_core::api::RefreshInfo = runtime
        .block_on(client.post("/admin/refresh", "application/json", ""))
        .expect("refresh")
        .json()
        .expect("refresh info");
    println!(
        "TFT refresh of {} servers: {:.0} ms",
        refresh.servers, refresh.duration_ms
    );

    let quiet = runtime.block_on(phase(&base, || tokio::time::sleep(Duration::from_secs(20))));
    let mut reloads = Vec::new();
    let mut refused = 0;
    let during = runtime.block_on(phase(&base, || async {
        for i in 0..RELOADS {
            let id = if i % 2 == 0 {
                "tft_bench_b"
            } else {
                "tft_bench_a"
            };
            store.promote(id).expect("promote");
            let a = client
                .post("/admin/reload-model", "application/json", "")
                .await
                .expect("reload");
            let o: nordiq_core::api::ReloadOutcome = a.json().expect("reload outcome");
            if !o.ok {
                refused += 1;
            }
            reloads.push(o.duration_ms);
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }));
    reloads.sort_by(f64::total_cmp);
    let row = |name: &str, p: &Phase| {
        format!(
            "| {name} | {} | {} | {:.2} | {:.2} | **{:.2}** | {:.2} |",
            p.times.len(),
            p.failed,
            percentile(&p.times, 0.5),
            percentile(&p.times, 0.95),
            percentile(&p.times, 0.99),
            p.times.last().copied().unwrap_or(f64::NAN)
        )
    };
    println!(
        "reload: median {:.0} ms, max {:.0} ms, {refused} refused",
        percentile(&reloads, 0.5),
        reloads.last().unwrap()
    );
    println!(
        "{}\n{}",
        row("no reloads", &quiet),
        row("20 reloads", &during)
    );
    let mut report = String::new();
    let _ = writeln!(
        report,
        "## Model reload (issue 5)\n\nCommand: `cargo bench -p nordiq-inference --bench reload`. Machine: {}. The release daemon serves a default-size TFT (hidden 32, 4 heads, 14 metrics, encoder 288, horizon 96; untrained weights — the size, not the accuracy, sets the cost) to {SERVERS} warm servers; a TFT refresh of all of them takes {:.0} ms. {READERS} readers poll `GET /predictions/current` on keep-alive connections and a feeder posts one sample per server each second, first for 20 s without reloads, then during {RELOADS} reloads one second apart (alternating two models via `models/current` and `POST /admin/reload-model`; each reload also starts a refresh with the new model). Client and daemon share the 2 cores.\n\nReload (load the directory, smoke-test {} live windows, swap; the daemon's own figure): median **{:.0} ms**, max {:.0} ms, {refused} of {RELOADS} refused. Target: ≤ 1 s.\n\n| phase | requests | failed | p50 ms | p95 ms | p99 ms | max ms |\n|---|---|---|---|---|---|---|\n{}\n{}\n",
        nordiq_testkit::bench_report::machine(),
        refresh.duration_ms,
        16,
        percentile(&reloads, 0.5),
        reloads.last().unwrap(),
        row("no reloads", &quiet),
        row("during 20 reloads", &during)
    );
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/benchmarks.md");
    match nordiq_testkit::bench_report::replace_section(&path, "reload", &report) {
        Ok(()) => println!("wrote {}", path.display()),
        Err(e) => eprintln!("cannot write {}: {e}", path.display()),
    }
}
