//! nordiq-metrics' test helpers on top of `nordiq_testkit`: the suite's binaries, real
//! Prometheus and node_exporter, requests with raw header lines.
#![allow(dead_code, unused_imports)]

use nordiq_testkit::{clean_env, Http};
pub use nordiq_testkit::{free_port, wait_port, wait_until, wait_until_or_explain, Proc, TempDir};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

pub const METRICS: &str = env!("CARGO_BIN_EXE_nordiq-metrics");

pub fn sibling(name: &str) -> PathBuf {
    nordiq_testkit::sibling(METRICS, name)
}

/// Starts `cmd` without the caller's NordIQ/systemd environment, logging to `log`.
pub fn start(cmd: &mut Command, log: &Path) -> Proc {
    Proc::start(clean_env(cmd), log)
}

/// (status, body) of one request; `headers` are raw `Name: value\r\n` lines.
pub fn http(
    port: u16,
    method: &str,
    path: &str,
    key: &str,
    headers: &str,
    body: &str,
) -> (u16, String) {
    let pairs: Vec<(&str, &str)> = headers
        .split("\r\n")
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim(), v.trim()))
        .collect();
    let key = (!key.is_empty()).then_some(key);
    let answer = Http::new(port, key).request(method, path, &pairs, body.to_string());
    (answer.status.as_u16(), answer.text())
}

pub fn json(port: u16, path: &str, key: &str) -> serde_json::Value {
    let (status, body) = http(port, "GET", path, key, "", "");
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap()
}

/// nordiq-inference in development mode in `dir` (key in `dir/.nordiq_key`): the process,
/// its port and the key.
pub fn dev_inference(dir: &Path) -> (Proc, u16, String) {
    nordiq_testkit::dev_inference(METRICS, dir)
}

/// A server's samples of the last hour in the buffer, as `/historical` gives them.
pub fn history(port: u16, key: &str, server: &str) -> Vec<serde_json::Value> {
    let from = nordiq_core::timefmt::format_ms(nordiq_core::timefmt::now_ms() - 3_600_000);
    json(
        port,
        &format!("/historical?from={from}&format=json&servers={server}"),
        key,
    )["records"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// The timestamps of [`history`].
pub fn stamps(port: u16, key: &str, server: &str) -> Vec<i64> {
    history(port, key, server)
        .iter()
        .map(|r| nordiq_core::timefmt::parse_rfc3339_ms(r["timestamp"].as_str().unwrap()).unwrap())
        .collect()
}

/// Debian's prometheus-node-exporter on a free loopback port.
pub fn node_exporter(dir: &Path) -> (Proc, u16) {
    let port = free_port();
    let log = dir.join("node_exporter.log");
    let p = start(
        Command::new("prometheus-node-exporter")
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--no-collector.systemd"),
        &log,
    );
    p.wait_port(port);
    // The port opens before the TSDB is up; queries answer 503 until /-/ready says 200
    // (slow on a loaded machine).
    wait_until("Prometheus to be ready", Duration::from_secs(60), || {
        http(port, "GET", "/-/ready", "", "", "").0 == 200
    });
    (p, port)
}

/// Debian's prometheus with `config` (YAML) as its configuration, on a free loopback port.
pub fn prometheus(dir: &Path, config: &str) -> (Proc, u16) {
    let port = free_port();
    let file = dir.join("prometheus.yml");
    std::fs::write(&file, config).unwrap();
    let log = dir.join("prometheus.log");
    let p = start(
        Command::new("prometheus")
            .arg(format!("--config.file={}", file.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}")),
        &log,
    );
    p.wait_port(port);
    (p, port)
}
