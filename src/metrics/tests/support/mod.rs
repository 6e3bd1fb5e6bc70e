//! Starting the suite's binaries for nordiq-metrics' tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const METRICS: &str = env!("CARGO_BIN_EXE_nordiq-metrics");

pub fn sibling(name: &str) -> PathBuf {
    let path = Path::new(METRICS).with_file_name(name);
    assert!(
        path.exists(),
        "{} is missing: run the workspace's tests",
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

pub struct Proc(Child);

impl Proc {
    pub fn start(cmd: &mut Command, log: &Path) -> Proc {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        Proc(
            cmd.stdout(Stdio::null())
                .stderr(log)
                .env_remove("NOTIFY_SOCKET")
                .env_remove("NORDIQ_API_KEY")
                .spawn()
                .unwrap(),
        )
    }

    pub fn stop(mut self) {
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.0.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn wait_port(port: u16, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "no listener on {port}: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// (status, body) of one request.
pub fn http(
    port: u16,
    method: &str,
    path: &str,
    key: &str,
    headers: &str,
    body: &str,
) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let key_header = if key.is_empty() {
        String::new()
    } else {
        format!("X-API-Key: {key}\r\n")
    };
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: x\r\n{key_header}{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (
        status,
        answer
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default(),
    )
}

pub fn json(port: u16, path: &str, key: &str) -> serde_json::Value {
    let (status, body) = http(port, "GET", path, key, "", "");
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap()
}

pub fn wait_until(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// nordiq-inference in development mode in `dir` (key in `dir/.nordiq_key`): the process,
/// its port and the key.
pub fn dev_inference(dir: &Path) -> (Proc, u16, String) {
    let port = free_port();
    let log = dir.join("inference.log");
    let inference = Proc::start(
        Command::new(sibling("nordiq-inference"))
            .args(["--dev", "--listen", &format!("127.0.0.1:{port}")])
            .current_dir(dir),
        &log,
    );
    wait_port(port, &log);
    let key = std::fs::read_to_string(dir.join(".nordiq_key"))
        .expect("the daemon writes its development key")
        .trim()
        .to_string();
    (inference, port, key)
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

/// A fresh temp directory for one test.
pub fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("nordiq-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Debian's prometheus-node-exporter on a free loopback port.
pub fn node_exporter(dir: &Path) -> (Proc, u16) {
    let port = free_port();
    let log = dir.join("node_exporter.log");
    let p = Proc::start(
        Command::new("prometheus-node-exporter")
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--no-collector.systemd"),
        &log,
    );
    wait_port(port, &log);
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
    let p = Proc::start(
        Command::new("prometheus")
            .arg(format!("--config.file={}", file.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}")),
        &log,
    );
    wait_port(port, &log);
    (p, port)
}
