//! Helpers shared by the trainer's integration tests: the binaries, a raw HTTP client,
//! generated history.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const TRAIN: &str = env!("CARGO_BIN_EXE_nordiq-train");
pub const KEY: &str = "train-test-key-0123456789";

pub fn inference_bin() -> PathBuf {
    let path = Path::new(TRAIN).with_file_name("nordiq-inference");
    assert!(
        path.exists(),
        "{} is missing: run the workspace's tests (cargo test --workspace builds it)",
        path.display()
    );
    path
}

pub fn http(port: u16, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nX-API-Key: {KEY}\r\nContent-Type: application/x-ndjson\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    let status = answer[9..12].parse().unwrap();
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// Hourly history ending now: a daily wave per server, with deterministic noise (a
/// noiseless wave would make seasonal naive perfect and MASE undefined).
pub fn history(servers: &[&str], hours: i64) -> String {
    let now = nordiq_core::timefmt::now_ms() / 1000 / 3600 * 3600;
    let mut out = String::new();
    for h in 0..hours {
        let ts = now - (hours - 1 - h) * 3600;
        for (i, s) in servers.iter().enumerate() {
            let noise = ((ts / 3600 * 7919 + i as i64 * 104729) % 1000) as f64 / 250.0 - 2.0;
            let v = 40.0
                + 20.0 * ((ts / 3600 % 24) as f64 / 24.0 * std::f64::consts::TAU).sin()
                + i as f64 * 5.0
                + noise;
            out.push_str(&format!(
                "{{\"timestamp\":{ts},\"server_name\":\"{s}\",\"cpu_user_pct\":{v:.2},\"mem_used_pct\":{:.2}}}\n",
                50.0 + i as f64 + noise
            ));
        }
    }
    out
}

/// The same history as a CSV file, as `nordiq-train --data` reads it.
pub fn write_history_csv(path: &Path, servers: &[&str], hours: i64) {
    let mut text = String::from("timestamp,server_name,cpu_user_pct,mem_used_pct\n");
    for line in history(servers, hours).lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        text.push_str(&format!(
            "{},{},{},{}\n",
            v["timestamp"],
            v["server_name"].as_str().unwrap(),
            v["cpu_user_pct"],
            v["mem_used_pct"]
        ));
    }
    std::fs::write(path, text).unwrap();
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("nordiq-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A small hourly config (2 metrics, 24-step encoder, 6-step horizon) for the daemon and
/// the trainer, with `extra` appended before the catalog.
pub fn write_small_config(dir: &Path, port: u16, extra: &str) -> PathBuf {
    let config = dir.join("nordiq.toml");
    std::fs::write(
        &config,
        format!(
            r#"[server]
listen = "127.0.0.1:{port}"
[paths]
state_dir = "{state}"
[model]
step_seconds = 3600
encoder_steps = 24
horizon_steps = 6
threads = 1
[forecast]
summary_horizons_minutes = [60, 360]
min_history_steps = 3
[risk]
lookahead_minutes = 120
{extra}

[[metrics]]
name = "cpu_user_pct"
min = 0
max = 100
risk = {{ ok = 60, warn = 85, crit = 95 }}
[[metrics]]
name = "mem_used_pct"
min = 0
max = 100
"#,
            state = dir.join("state").display()
        ),
    )
    .unwrap();
    config
}

/// `nordiq-inference --config CONFIG`, logging to `dir/inference.log`; killed on drop.
pub struct Daemon {
    pub child: Child,
    pub port: u16,
    pub log: PathBuf,
}

impl Daemon {
    pub fn start(dir: &Path, config: &Path, port: u16) -> Daemon {
        let log = dir.join("inference.log");
        let child = Command::new(inference_bin())
            .args(["--config", config.to_str().unwrap()])
            .env("NORDIQ_API_KEY", KEY)
            .env_remove("NOTIFY_SOCKET")
            .env_remove("LISTEN_FDS")
            .env_remove("INVOCATION_ID")
            .stdout(Stdio::null())
            .stderr(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&log)
                    .unwrap(),
            )
            .spawn()
            .unwrap();
        let daemon = Daemon { child, port, log };
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "daemon did not start: {}",
                daemon.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        daemon
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(self.child.id() as i32, signal) };
    }

    pub fn http(&self, method: &str, path: &str, body: &str) -> (u16, serde_json::Value) {
        let (status, text) = http(self.port, method, path, body);
        let value = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
        (status, value)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A trainer wrapper with small sizes, so jobs started through the API train in seconds.
pub fn small_trainer(dir: &Path) -> PathBuf {
    let path = dir.join("nordiq-train-small");
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\nexec {TRAIN} --hidden 8 --heads 2 --max-windows 64 --batch-size 32 --stride 3 --threads 1 --holdout-days 2 \"$@\"\n"
        ),
    )
    .unwrap();
    let mut perms = std::fs::metadata(&path).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&path, perms).unwrap();
    path
}
