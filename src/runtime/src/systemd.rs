//! systemd glue: socket activation, sd_notify states, the watchdog interval.
//!
//! Everything that reads or unsets the environment must run while the process is still
//! single-threaded, so binaries call [`take_activation`] first thing in `main`.

use crate::exit::Fatal;
use sd_notify::NotifyState;
use std::io;
use std::net::TcpListener;
use std::os::fd::{FromRawFd, RawFd};
use std::time::Duration;

/// What systemd handed this process.
#[derive(Debug)]
pub struct Activation {
    /// Inherited listening sockets (already non-blocking), with their `FileDescriptorName=`.
    pub listeners: Vec<(TcpListener, String)>,
    /// The watchdog interval, when systemd expects pings from this process.
    pub watchdog: Option<Duration>,
}

/// Takes the socket-activation fds and the watchdog setting, and unsets `LISTEN_*` and
/// `WATCHDOG_*` so that child processes do not inherit them.
///
/// # Safety
/// Modifies the environment: call before any other thread exists (before building the
/// tokio runtime).
pub unsafe fn take_activation() -> io::Result<Activation> {
    let fds: Vec<(RawFd, String)> =
        unsafe { sd_notify::listen_fds_with_names_and_unset_env()? }.collect();
    let watchdog = unsafe { sd_notify::watchdog_enabled_and_unset_env() };
    let mut listeners = Vec::with_capacity(fds.len());
    for (fd, name) in fds {
        if !is_stream_socket(fd) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("inherited fd {fd} ({name}) is not a stream socket"),
            ));
        }
        // SAFETY: systemd passed ownership of this fd to us and nothing else holds it.
        let listener = unsafe { TcpListener::from_raw_fd(fd) };
        listener.set_nonblocking(true)?;
        listeners.push((listener, name));
    }
    Ok(Activation {
        listeners,
        watchdog,
    })
}

fn is_stream_socket(fd: RawFd) -> bool {
    let mut kind: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: plain getsockopt on an fd number with a correctly sized out-parameter.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_TYPE,
            &mut kind as *mut libc::c_int as *mut libc::c_void,
            &mut len,
        )
    };
    rc == 0 && kind == libc::SOCK_STREAM
}

/// Sends sd_notify states; does nothing when `NOTIFY_SOCKET` is unset. Send errors are
/// logged, never fatal: a daemon must keep serving when its manager is unreachable.
#[derive(Debug, Clone, Copy, Default)]
pub struct Notifier;

impl Notifier {
    fn send(&self, states: &[NotifyState]) {
        if let Err(e) = sd_notify::notify(states) {
            tracing::warn!(error = %e, "sd_notify failed");
        }
    }

    pub fn ready(&self, status: &str) {
        self.send(&[NotifyState::Ready, NotifyState::Status(status)]);
    }

    pub fn status(&self, status: &str) {
        self.send(&[NotifyState::Status(status)]);
    }

    /// `RELOADING=1` with `MONOTONIC_USEC` (needed by `Type=notify-reload`, systemd ≥ 253).
    pub fn reloading(&self) {
        match NotifyState::monotonic_usec_now() {
            Ok(now) => self.send(&[NotifyState::Reloading, now]),
            Err(_) => self.send(&[NotifyState::Reloading]),
        }
    }

    pub fn stopping(&self, status: &str) {
        self.send(&[NotifyState::Stopping, NotifyState::Status(status)]);
    }

    pub fn watchdog(&self) {
        self.send(&[NotifyState::Watchdog]);
    }
}

/// The listening socket: the one systemd passed (socket activation), else a bind of
/// `addr`. A failed bind names the address and `what_to_set` (the config key and flag).
pub async fn listener(
    passed: Option<(TcpListener, String)>,
    addr: &str,
    what_to_set: &str,
) -> Result<tokio::net::TcpListener, Fatal> {
    match passed {
        Some((std_listener, name)) => {
            tracing::info!(fd_name = %name, "using the socket passed by systemd");
            tokio::net::TcpListener::from_std(std_listener).map_err(|e| {
                Fatal::new(
                    crate::exit::SOFTWARE,
                    format!("adopting the inherited socket: {e}"),
                )
            })
        }
        None => tokio::net::TcpListener::bind(addr).await.map_err(|e| {
            Fatal::new(
                crate::exit::UNAVAILABLE,
                format!(
                    "cannot listen on {addr} ({what_to_set}, or stop whatever holds the port): {e}"
                ),
            )
        }),
    }
}

/// Whether systemd is the init system of this machine.
pub fn booted() -> bool {
    std::path::Path::new("/run/systemd/system").exists()
}

/// Whether this process runs as a systemd unit (systemd sets `INVOCATION_ID` for it).
pub fn running_as_unit() -> bool {
    std::env::var_os("INVOCATION_ID").is_some() && booted()
}
