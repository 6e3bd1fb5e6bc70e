//! Child processes for tests: the suite's binaries and real servers, started with a clean
//! environment, logging to a file, killed on drop.

use crate::http::Http;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Variables of a developer's shell (or of systemd) that would change a daemon's behaviour.
const INHERITED: [&str; 13] = [
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
    "INVOCATION_ID",
    "RUST_LOG",
];

/// Removes [`INHERITED`] variables from `cmd`'s environment (set them again after, if the
/// test means to).
pub fn clean_env(cmd: &mut Command) -> &mut Command {
    for var in INHERITED {
        cmd.env_remove(var);
    }
    cmd
}

/// The suite binary `name` beside `built` (an `env!("CARGO_BIN_EXE_…")` of the test's own
/// crate): `cargo test --workspace` builds them all into the same folder.
pub fn sibling(built: &str, name: &str) -> PathBuf {
    let path = Path::new(built).with_file_name(name);
    assert!(
        path.exists(),
        "{} is missing: run the workspace's tests (cargo test --workspace builds it)",
        path.display()
    );
    path
}

/// A running child process with its stderr in a log file; killed on drop.
pub struct Proc {
    pub child: Child,
    pub log: PathBuf,
}

impl Proc {
    /// Starts `cmd` as it is (call [`clean_env`] on it first, then set what the test
    /// means to), stdout discarded, stderr appended to `log`.
    pub fn start(cmd: &mut Command, log: &Path) -> Proc {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("opening the process log");
        let child = cmd
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {cmd:?}: {e}"));
        Proc {
            child,
            log: log.to_path_buf(),
        }
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.child.id() as i32, signal);
        }
    }

    /// The exit status, once the process has exited within `timeout`.
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

    /// SIGTERM, and the exit status (panics when it does not stop within 30 s).
    pub fn stop(mut self) -> ExitStatus {
        self.signal(libc::SIGTERM);
        self.wait_exit(Duration::from_secs(30))
            .unwrap_or_else(|| panic!("did not stop on SIGTERM; log:\n{}", self.log_text()))
    }

    /// Waits until the log holds `line` (true), the process exits or `timeout` passes
    /// (false).
    pub fn wait_log(&mut self, line: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.log_text().contains(line) {
                return true;
            }
            if let Ok(Some(_)) = self.child.try_wait() {
                return self.log_text().contains(line);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Waits until something listens on `port` (panics with the log after 60 s).
    pub fn wait_port(&self, port: u16) {
        wait_port(port, &self.log);
    }

    /// Waits until `GET /health` on `port` answers 200: a NordIQ daemon has recovered its
    /// buffer, refilled its windows and serves (a bound port alone says none of that).
    pub fn wait_healthy(&self, port: u16) {
        self.wait_healthy_via(&Http::new(port, None).with_timeout(Duration::from_secs(5)));
    }

    /// Waits until `GET /health` through `http` (an HTTPS client, say) answers 200.
    pub fn wait_healthy_via(&self, http: &Http) {
        let port = http.client().base().to_string();
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if http
                .try_request("GET", "/health", &[], "")
                .is_some_and(|a| a.status == 200u16)
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("no answer to /health on {port}; log:\n{}", self.log_text());
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `cmd` to its end: the exit code (-1 when killed by a signal) and what it wrote to
/// stdout and stderr, in that order.
pub fn run(cmd: &mut Command) -> (i32, String) {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// `nordiq-inference --dev` (the sibling of `built`, an `env!("CARGO_BIN_EXE_…")`) in
/// `dir` on a free port, logging to `dir/inference.log`: the process, its port and the
/// development key it wrote.
pub fn dev_inference(built: &str, dir: &Path) -> (Proc, u16, String) {
    // `free_port` finds a port free a moment before the daemon binds it. Its ports lie
    // outside the range other sockets are handed, but another process's server can still
    // bind the same one in between: then something answers on the port that is not this
    // daemon, which fails to bind and exits. The daemon logs the address it serves on;
    // until that line is in its log it is not known to be ours, and a daemon that exits
    // without it is started again on another port.
    let mut last_log = String::new();
    for _ in 0..3 {
        let port = crate::free_port();
        let address = format!("127.0.0.1:{port}");
        let mut inference = Proc::start(
            clean_env(
                Command::new(sibling(built, "nordiq-inference"))
                    .args(["--dev", "--listen", &address])
                    .current_dir(dir),
            ),
            &dir.join("inference.log"),
        );
        let serving = format!("address={address}");
        if inference.wait_log(&serving, Duration::from_secs(60)) {
            let key = std::fs::read_to_string(dir.join(".nordiq_key"))
                .expect("the daemon writes its development key before it serves")
                .trim()
                .to_string();
            return (inference, port, key);
        }
        last_log = inference.log_text();
    }
    panic!(
        "nordiq-inference --dev did not serve on a port of its own in 3 tries; log:\n{last_log}"
    );
}

/// Waits until something listens on 127.0.0.1:`port`; after 60 s panics with the text of
/// `log` (the log of whatever should be listening).
pub fn wait_port(port: u16, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !listening(port) {
        assert!(
            Instant::now() < deadline,
            "nothing listens on {port}; log:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether something listens on 127.0.0.1:`port`. A connection whose own port is `port`
/// does not count: with nothing listening, Linux can pick the target port as the source
/// port and connect the socket to itself (TCP simultaneous open), which would look like a
/// listener.
fn listening(port: u16) -> bool {
    match std::net::TcpStream::connect(("127.0.0.1", port)) {
        Ok(stream) => stream
            .local_addr()
            .map(|a| a.port() != port)
            .unwrap_or(false),
        Err(_) => false,
    }
}

/// Polls `ok` every 200 ms until it holds; panics naming `what` after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, ok: impl FnMut() -> bool) {
    wait_until_or_explain(what, timeout, ok, String::new);
}

/// [`wait_until`], with `explain()` (what was seen, a log) in the panic message.
pub fn wait_until_or_explain(
    what: &str,
    timeout: Duration,
    mut ok: impl FnMut() -> bool,
    explain: impl Fn() -> String,
) {
    let deadline = Instant::now() + timeout;
    while !ok() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}{}",
            explain()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
