//! Temporary directories (removed on drop) and free loopback ports.

use std::ops::Deref;
use std::path::Path;

/// A fresh directory under the system temp dir, named after the test, removed on drop.
/// Derefs to its path, so `dir.join("x")` and `&dir` work where a `&Path` is wanted.
pub struct TempDir(tempfile::TempDir);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let dir = tempfile::Builder::new()
            .prefix(&format!("nordiq-{name}-"))
            .tempdir()
            .expect("creating a temp dir");
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Deref for TempDir {
    type Target = Path;

    fn deref(&self) -> &Path {
        self.0.path()
    }
}

impl AsRef<Path> for TempDir {
    fn as_ref(&self) -> &Path {
        self.0.path()
    }
}

/// A port free right now on 127.0.0.1, for a server a test starts next.
///
/// Taken below the kernel's ephemeral range (`ip_local_port_range`), which is where port 0
/// binds and every outgoing connection's local port come from: a port from there can be
/// handed to another socket between this check and the server's bind (a flake seen in CI).
/// Below it only servers bind on purpose; each process starts at its own place in the
/// range and never hands out a port twice in a row.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let (low, high) = (10_000u32, ephemeral_low().clamp(10_001, 65_536));
    let span = high - low;
    let start = std::process::id().wrapping_mul(7_919) % span;
    let candidates =
        (0..span).map(|_| (low + (start + NEXT.fetch_add(1, Ordering::Relaxed)) % span) as u16);
    first_bindable(candidates).unwrap_or_else(|| {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free loopback port")
    })
}

/// The first of `ports` that 127.0.0.1 can bind now.
fn first_bindable(ports: impl IntoIterator<Item = u16>) -> Option<u16> {
    ports
        .into_iter()
        .find(|&port| std::net::TcpListener::bind(("127.0.0.1", port)).is_ok())
}

/// The lowest port of the kernel's ephemeral range (Linux's default when it cannot be read).
fn ephemeral_low() -> u32 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(32_768)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_lie_below_the_ephemeral_range_and_do_not_repeat() {
        let ports: Vec<u16> = (0..50).map(|_| free_port()).collect();
        let low = ephemeral_low();
        assert!(
            ports.iter().all(|&p| (10_000..low).contains(&(p as u32))),
            "{ports:?} (ephemeral from {low})"
        );
        let mut unique = ports.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), ports.len(), "{ports:?}");
        // A port a server holds is passed over.
        let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let held_port = held.local_addr().unwrap().port();
        let other = free_port();
        assert_eq!(first_bindable([held_port, other]), Some(other));
        assert_eq!(first_bindable([held_port]), None);
    }
}
