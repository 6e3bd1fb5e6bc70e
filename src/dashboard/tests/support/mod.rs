//! Starting the suite's binaries for the dashboard's browser test and benchmark.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const DASHBOARD: &str = env!("CARGO_BIN_EXE_nordiq-dashboard");

pub fn sibling(name: &str) -> PathBuf {
    let path = Path::new(DASHBOARD).with_file_name(name);
    assert!(
        path.exists(),
        "{} is missing: run the workspace's tests (cargo test --workspace builds it)",
        path.display()
    );
    path
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn spawn(cmd: &mut Command, log: &Path) -> Killed {
    Killed(
        cmd.stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .env_remove("NOTIFY_SOCKET")
            .env_remove("LISTEN_FDS")
            .env_remove("NORDIQ_API_KEY")
            .spawn()
            .unwrap(),
    )
}

pub fn wait_port(port: u16, what: &str, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{what} did not start: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn get(port: u16, path: &str, key: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nX-API-Key: {key}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default()
}

/// nordiq-inference in development mode in `dir` and `nordiqctl demo-feed` feeding it
/// (`feed_args` after `demo-feed`). Returns both processes, the daemon's port and its key.
pub fn start_fed_daemon(dir: &Path, feed_args: &[&str]) -> (Killed, Killed, u16, String) {
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
pub fn start_daemon(dir: &Path) -> (Killed, u16, String) {
    let port = free_port();
    let inference = spawn(
        Command::new(sibling("nordiq-inference"))
            .args(["--dev", "--listen", &format!("127.0.0.1:{port}")])
            .current_dir(dir),
        &dir.join("inference.log"),
    );
    wait_port(port, "nordiq-inference", &dir.join("inference.log"));
    let key = std::fs::read_to_string(dir.join(".nordiq_key"))
        .expect("the daemon writes its development key")
        .trim()
        .to_string();
    (inference, port, key)
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
