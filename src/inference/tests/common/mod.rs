//! Helpers for tests that run the real `nordiq-inference` binary.
#![allow(dead_code)]

use nordiq_core::client::{Answer, ApiClient};
use std::net::TcpListener;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_nordiq-inference");
pub const KEY: &str = "test-key-0123456789abcdef";

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("nordiq-it-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A port free right now on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Writes a config for `port` with state under `dir`, plus `extra` TOML appended.
pub fn write_config(dir: &Path, port: u16, extra: &str) -> PathBuf {
    let path = dir.join("nordiq.toml");
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\nshutdown_timeout_seconds = 5\n\n[paths]\nstate_dir = \"{}\"\n\n[auth]\napi_key_file = \"{}\"\n\n{extra}\n",
        dir.join("state").display(),
        dir.join("api-key").display(),
    );
    std::fs::write(&path, text).expect("write config");
    path
}

/// A running daemon, killed on drop.
pub struct Daemon {
    pub child: Child,
    pub port: u16,
    pub log: PathBuf,
}

impl Daemon {
    /// Starts `nordiq-inference --config CONFIG` with `env` and waits for /health.
    pub fn start(dir: &Path, config: &Path, port: u16, env: &[(&str, &str)]) -> Daemon {
        let log = dir.join(format!("daemon-{port}.log"));
        let mut cmd = Command::new(BIN);
        cmd.arg("--config").arg(config);
        clean_env(&mut cmd);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("spawn nordiq-inference");
        let daemon = Daemon { child, port, log };
        daemon.wait_healthy();
        daemon
    }

    /// Waits until `GET /health` is answered: the daemon has recovered its buffer, refilled
    /// its windows and is serving (a bound port alone says none of that).
    pub fn wait_healthy(&self) {
        use std::io::{Read, Write};
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let mut answer = String::new();
                if stream
                    .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    .and_then(|_| stream.read_to_string(&mut answer))
                    .is_ok()
                    && answer.starts_with("HTTP/1.1 200")
                {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "daemon did not answer /health on {}; log:\n{}",
            self.port,
            self.log_text()
        );
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn client(&self, key: Option<&str>) -> Client {
        Client::new(self.port, key)
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.child.id() as i32, sig);
        }
    }

    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Removes variables from the test's own environment that would change the daemon's
/// behaviour (a developer's shell may have them).
pub fn clean_env(cmd: &mut Command) {
    for var in [
        "NORDIQ_API_KEY",
        "TFT_API_KEY",
        "CREDENTIALS_DIRECTORY",
        "NORDIQ_CONFIG",
        "NOTIFY_SOCKET",
        "WATCHDOG_USEC",
        "WATCHDOG_PID",
        "LISTEN_FDS",
        "LISTEN_PID",
        "LISTEN_FDNAMES",
        "JOURNAL_STREAM",
        "RUST_LOG",
    ] {
        cmd.env_remove(var);
    }
}

/// A blocking wrapper around the API client.
pub struct Client {
    runtime: tokio::runtime::Runtime,
    inner: ApiClient,
}

impl Client {
    pub fn new(port: u16, key: Option<&str>) -> Client {
        Client {
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime"),
            inner: ApiClient::new(&format!("http://127.0.0.1:{port}"), key.map(str::to_string)),
        }
    }

    pub fn get(&self, path: &str) -> Answer {
        self.runtime.block_on(self.inner.get(path)).expect("GET")
    }

    pub fn post(&self, path: &str, content_type: &str, body: impl Into<bytes::Bytes>) -> Answer {
        self.runtime
            .block_on(self.inner.post(path, content_type, body.into()))
            .expect("POST")
    }

    /// A POST that may fail (the daemon may be gone).
    pub fn try_post(
        &self,
        path: &str,
        content_type: &str,
        body: impl Into<bytes::Bytes>,
    ) -> Option<Answer> {
        self.runtime
            .block_on(self.inner.post(path, content_type, body.into()))
            .ok()
    }

    pub fn json(&self, path: &str) -> serde_json::Value {
        let a = self.get(path);
        assert!(
            a.status.is_success(),
            "GET {path}: {} {}",
            a.status,
            a.text()
        );
        a.json().expect("json")
    }
}

/// A notify socket the test listens on, as systemd would.
pub struct NotifySocket {
    pub path: PathBuf,
    socket: UnixDatagram,
    pub seen: Vec<String>,
}

impl NotifySocket {
    pub fn bind(dir: &Path) -> NotifySocket {
        let path = dir.join("notify.sock");
        let socket = UnixDatagram::bind(&path).expect("bind notify socket");
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        NotifySocket {
            path,
            socket,
            seen: Vec::new(),
        }
    }

    /// Reads messages until one satisfies `pred` or `timeout` passes; returns it.
    pub fn wait_for(&mut self, timeout: Duration, pred: impl Fn(&str) -> bool) -> Option<String> {
        let deadline = Instant::now() + timeout;
        let mut buf = vec![0u8; 65536];
        while Instant::now() < deadline {
            if let Ok(n) = self.socket.recv(&mut buf) {
                let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
                self.seen.push(msg.clone());
                if pred(&msg) {
                    return Some(msg);
                }
            }
        }
        None
    }
}

/// NDJSON for `servers` servers × `steps` samples `step_s` apart, ending now.
pub fn ndjson_history(
    servers: &[&str],
    steps: usize,
    step_s: i64,
    value: impl Fn(usize, usize) -> f64,
) -> String {
    let now = nordiq_core::timefmt::now_ms() / 1000;
    let mut out = String::new();
    for t in 0..steps {
        let ts = now - (steps - 1 - t) as i64 * step_s;
        for (i, s) in servers.iter().enumerate() {
            let v = value(i, t);
            out.push_str(&format!(
                "{{\"timestamp\":{ts},\"server_name\":\"{s}\",\"cpu_user_pct\":{v},\"mem_used_pct\":{:.1},\"cpu_idle_pct\":{:.1}}}\n",
                40.0,
                (100.0 - v).max(0.0)
            ));
        }
    }
    out
}
