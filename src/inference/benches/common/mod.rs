//! What the daemon benchmarks share: a release daemon on loopback, the synthetic fleet's
//! request bodies, concurrent ingest, percentiles.
#![allow(dead_code, unused_imports)]

use nordiq_runtime::client::ApiClient;
use nordiq_testkit::{clean_env, Proc};
pub use nordiq_testkit::{free_port, TempDir};
use std::fmt::Write as _;
use std::process::Command;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_nordiq-inference");
pub const KEY: &str = "bench-key-0123456789abcdef";
/// Timestamps per request: 10 × (1000 servers / 4 connections) = 2,500 records.
pub const TIMESTAMPS_PER_BATCH: usize = 10;

pub fn server_name(i: usize) -> String {
    format!("bench{i:05}")
}

/// One full 14-metric record; values vary with time and server.
pub fn record(out: &mut String, server: usize, ts: i64, spacing_s: i64) {
    let x = ((ts / spacing_s) as usize * 31 + server * 17) % 1000;
    let v = x as f64 / 20.0;
    let _ = write!(
        out,
        "{{\"timestamp\":{ts},\"server_name\":\"{}\",\"cpu_user_pct\":{v:.2},\"cpu_sys_pct\":{:.2},\"cpu_iowait_pct\":1.5,\"cpu_idle_pct\":{:.2},\"java_cpu_pct\":{:.2},\"mem_used_pct\":{:.2},\"swap_used_pct\":0.5,\"disk_usage_pct\":61.2,\"net_in_mb_s\":{:.2},\"net_out_mb_s\":{:.2},\"back_close_wait\":4,\"front_close_wait\":2,\"load_average\":{:.2},\"uptime_days\":12.5}}",
        server_name(server),
        v / 5.0,
        (100.0 - v * 1.2 - 1.5).max(0.0),
        v * 0.6,
        40.0 + v / 4.0,
        v / 2.0,
        v / 3.0,
        v / 12.0
    );
}

/// Request bodies for `servers` servers over `timestamps` instants `spacing_s` apart,
/// split over `connections`, built up front so the client's own work stays out of the
/// timing.
pub fn bodies(
    ndjson: bool,
    servers: usize,
    connections: usize,
    start_ts: i64,
    timestamps: usize,
    spacing_s: i64,
) -> Vec<Vec<String>> {
    let mut per_conn = vec![Vec::new(); connections];
    for (c, conn_bodies) in per_conn.iter_mut().enumerate() {
        let mut t = 0;
        while t < timestamps {
            let mut body = String::with_capacity(2 << 20);
            if !ndjson {
                body.push_str("{\"records\":[");
            }
            let mut first = true;
            for k in t..(t + TIMESTAMPS_PER_BATCH).min(timestamps) {
                let ts = start_ts + k as i64 * spacing_s;
                for s in (c..servers).step_by(connections) {
                    if !ndjson && !first {
                        body.push(',');
                    }
                    first = false;
                    record(&mut body, s, ts, spacing_s);
                    if ndjson {
                        body.push('\n');
                    }
                }
            }
            if !ndjson {
                body.push_str("]}");
            }
            conn_bodies.push(body);
            t += TIMESTAMPS_PER_BATCH;
        }
    }
    per_conn
}

/// The release daemon with state under `dir`, `extra` appended to its config; its log is
/// `dir/daemon.log`, and it is killed when the answer is dropped.
pub fn start_daemon(dir: &std::path::Path, port: u16, extra: &str) -> Proc {
    let config = dir.join("nordiq.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\nmax_body_bytes = 67108864\n[paths]\nstate_dir = \"{}\"\n[auth]\napi_key_file = \"{}\"\n[log]\nlevel = \"warn\"\n{extra}",
            dir.join("state").display(),
            dir.join("key").display()
        ),
    )
    .expect("write bench config");
    let daemon = Proc::start(
        clean_env(Command::new(BIN).arg("--config").arg(&config)).env("NORDIQ_API_KEY", KEY),
        &dir.join("daemon.log"),
    );
    daemon.wait_port(port);
    daemon
}

pub struct IngestResult {
    pub samples: usize,
    pub seconds: f64,
    pub bytes: usize,
}

/// Sends every connection's bodies concurrently; counts accepted samples.
pub async fn ingest(base: &str, per_conn: Vec<Vec<String>>, ndjson: bool) -> IngestResult {
    let content_type = if ndjson {
        "application/x-ndjson"
    } else {
        "application/json"
    };
    let bytes: usize = per_conn.iter().flatten().map(|b| b.len()).sum();
    let started = Instant::now();
    let tasks: Vec<_> = per_conn
        .into_iter()
        .map(|bodies| {
            let client =
                ApiClient::new(base, Some(KEY.to_string())).with_timeout(Duration::from_secs(120));
            tokio::spawn(async move {
                let mut accepted = 0usize;
                for body in bodies {
                    let a = client
                        .post("/feed/data", content_type, body)
                        .await
                        .expect("feed");
                    assert!(a.status.is_success(), "{}", a.text());
                    let r: nordiq_core::api::IngestResponse = a.json().expect("ingest answer");
                    accepted += r.accepted;
                }
                accepted
            })
        })
        .collect();
    let mut samples = 0;
    for t in tasks {
        samples += t.await.expect("ingest task");
    }
    IngestResult {
        samples,
        seconds: started.elapsed().as_secs_f64(),
        bytes,
    }
}

pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}
