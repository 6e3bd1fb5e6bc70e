//! Starting the suite's binaries for the dashboard's browser test and benchmark (on top of
//! `nordiq_testkit`).
#![allow(dead_code, unused_imports)]

use nordiq_testkit::{clean_env, Http};
pub use nordiq_testkit::{free_port, wait_port, Proc, TempDir};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

pub const DASHBOARD: &str = env!("CARGO_BIN_EXE_nordiq-dashboard");

pub fn sibling(name: &str) -> PathBuf {
    nordiq_testkit::sibling(DASHBOARD, name)
}

/// Starts `cmd` without the caller's NordIQ/systemd environment, logging to `log`.
pub fn spawn(cmd: &mut Command, log: &Path) -> Proc {
    Proc::start(clean_env(cmd), log)
}

/// The body of `GET path` with the key.
pub fn get(port: u16, path: &str, key: &str) -> String {
    let key = (!key.is_empty()).then_some(key);
    Http::new(port, key).get(path).text()
}

/// nordiq-inference in development mode in `dir` and `nordiqctl demo-feed` feeding it
/// (`feed_args` after `demo-feed`). Returns both processes, the daemon's port and its key.
pub fn start_fed_daemon(dir: &Path, feed_args: &[&str]) -> (Proc, Proc, u16, String) {
    let (inference, port, key) = start_daemon(dir);
    let url = format!("http://127.0.0.1:{port}");
    let feed = spawn(
        Command::new(sibling("nordiqctl"))
            .args(["--dev", "--url", &url, "demo-feed"])
            .args(feed_args)
            .current_dir(dir),
        &dir.join("feed.log"),
    );
    (inference, feed, port, key)
}

/// nordiq-inference in development mode in `dir`: the process, its port and its key.
pub fn start_daemon(dir: &Path) -> (Proc, u16, String) {
    nordiq_testkit::dev_inference(DASHBOARD, dir)
}

/// Waits until the daemon forecasts `servers` servers.
pub fn wait_forecast(port: u16, key: &str, servers: usize, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let status = get(port, "/status", key);
        let v: serde_json::Value = serde_json::from_str(&status).unwrap_or_default();
        if v["forecast_servers"] == servers {
            return;
        }
        assert!(Instant::now() < deadline, "fleet never forecast: {status}");
        std::thread::sleep(Duration::from_millis(300));
    }
}
