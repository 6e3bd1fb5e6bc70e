//! A notify socket the test listens on, as systemd would: what a daemon says with
//! `sd_notify` (READY=1, STATUS=, WATCHDOG=1, RELOADING=1, STOPPING=1).

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub struct NotifySocket {
    /// What to put in the daemon's `NOTIFY_SOCKET`.
    pub path: PathBuf,
    socket: UnixDatagram,
    /// Every message read so far (for failure messages).
    pub seen: Vec<String>,
}

impl NotifySocket {
    /// Binds `dir/notify.sock`.
    pub fn bind(dir: &Path) -> NotifySocket {
        let path = dir.join("notify.sock");
        let socket = UnixDatagram::bind(&path).expect("bind notify socket");
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .expect("timeout");
        NotifySocket {
            path,
            socket,
            seen: Vec::new(),
        }
    }

    /// Reads messages until one satisfies `pred` or `timeout` passes; returns it.
    pub fn wait_for(
        &mut self,
        timeout: Duration,
        mut pred: impl FnMut(&str) -> bool,
    ) -> Option<String> {
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

    /// Every message that arrives within `window`.
    pub fn collect(&mut self, window: Duration) -> Vec<String> {
        let mut got = Vec::new();
        let _ = self.wait_for(window, |m| {
            got.push(m.to_string());
            false
        });
        got
    }
}
