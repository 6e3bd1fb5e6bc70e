//! Helpers for tests that run the real `nordiq-inference` binary.
#![allow(dead_code, unused_imports)]

pub use nordiq_testkit::Proc;
pub use nordiq_testkit::{
    clean_env, free_port, ndjson_history, Http as Client, NotifySocket, TempDir,
};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_nordiq-inference");
pub const KEY: &str = "test-key-0123456789abcdef";

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
    pub proc: Proc,
    pub port: u16,
}

impl Daemon {
    /// Starts `nordiq-inference --config CONFIG` with `env` and waits for /health.
    pub fn start(dir: &Path, config: &Path, port: u16, env: &[(&str, &str)]) -> Daemon {
        let mut cmd = Command::new(BIN);
        clean_env(cmd.arg("--config").arg(config));
        for (k, v) in env {
            cmd.env(k, v);
        }
        let daemon = Daemon {
            proc: Proc::start(&mut cmd, &dir.join(format!("daemon-{port}.log"))),
            port,
        };
        daemon.wait_healthy();
        daemon
    }

    /// Waits until `GET /health` is answered.
    pub fn wait_healthy(&self) {
        self.proc.wait_healthy(self.port);
    }

    pub fn log_text(&self) -> String {
        self.proc.log_text()
    }

    pub fn client(&self, key: Option<&str>) -> Client {
        Client::new(self.port, key)
    }

    pub fn signal(&self, sig: i32) {
        self.proc.signal(sig);
    }

    pub fn id(&self) -> u32 {
        self.proc.id()
    }

    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        self.proc.wait_exit(timeout)
    }
}
