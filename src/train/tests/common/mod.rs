//! Helpers shared by the trainer's integration tests (on top of `nordiq_testkit`): the
//! binaries, a small config, a fast trainer, the daemon.
#![allow(dead_code, unused_imports)]

use nordiq_testkit::{clean_env, Http, Proc};
pub use nordiq_testkit::{free_port, hourly_history as history, TempDir};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

pub const TRAIN: &str = env!("CARGO_BIN_EXE_nordiq-train");
pub const KEY: &str = "train-test-key-0123456789";

pub fn inference_bin() -> PathBuf {
    nordiq_testkit::sibling(TRAIN, "nordiq-inference")
}

/// (status, body) of one request with the test key.
pub fn http(port: u16, method: &str, path: &str, body: &str) -> (u16, String) {
    let answer = Http::new(port, Some(KEY)).request(
        method,
        path,
        &[("content-type", "application/x-ndjson")],
        body.to_string(),
    );
    (answer.status.as_u16(), answer.text())
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

/// A small hourly config (2 metrics, 24-step encoder, 6-step horizon) for the daemon and
/// the trainer, with `extra` appended before the catalog.
pub fn write_small_config(dir: &Path, port: u16, extra: &str) -> PathBuf {
    let config = dir.join("nordiq.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\n[paths]\nstate_dir = \"{}\"\n{}",
            dir.join("state").display(),
            small_sections(extra)
        ),
    )
    .unwrap();
    config
}

/// The sections of the small config after `[server]` and `[paths]`: model, forecast,
/// risk, buffer readiness, `extra`, and the two-metric catalog.
pub fn small_sections(extra: &str) -> String {
    format!(
        r#"[model]
step_seconds = 3600
encoder_steps = 24
horizon_steps = 6
threads = 1
[forecast]
summary_horizons_minutes = [60, 360]
min_history_steps = 3
[risk]
lookahead_minutes = 120
[buffer]
min_train_records = 100
min_train_days = 1
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
"#
    )
}

/// `nordiq-inference --config CONFIG`, logging to `dir/inference.log`; killed on drop.
pub struct Daemon {
    pub proc: Proc,
    pub port: u16,
}

impl Daemon {
    pub fn start(dir: &Path, config: &Path, port: u16) -> Daemon {
        let mut cmd = Command::new(inference_bin());
        clean_env(cmd.arg("--config").arg(config)).env("NORDIQ_API_KEY", KEY);
        let proc = Proc::start(&mut cmd, &dir.join("inference.log"));
        proc.wait_port(port);
        Daemon { proc, port }
    }

    pub fn log_text(&self) -> String {
        self.proc.log_text()
    }

    pub fn signal(&self, signal: i32) {
        self.proc.signal(signal);
    }

    /// Waits (up to a minute) for the daemon to exit.
    pub fn wait_exit(&mut self) {
        let _ = self.proc.wait_exit(Duration::from_secs(60));
    }

    pub fn http(&self, method: &str, path: &str, body: &str) -> (u16, serde_json::Value) {
        let (status, text) = http(self.port, method, path, body);
        let value = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
        (status, value)
    }
}

/// The `[training]` section that runs jobs as a child `nordiq-train` with small sizes
/// (see [`small_trainer`], written into `dir`).
pub fn process_training(dir: &Path) -> String {
    format!(
        "[training]\nlauncher = \"process\"\ntrainer = \"{}\"\ncancel_timeout_seconds = 20\n",
        small_trainer(dir).display()
    )
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
