//! One daemon lifecycle for every NordIQ service under systemd.
//!
//! The signal streams are created once, in [`Lifecycle::new`], before READY=1, so no signal
//! is lost between loop passes. Then one loop: READY=1 with the service's status; the
//! watchdog pinged at half its interval, and only while the service says its loops are
//! alive; STATUS= refreshed when it changes; SIGHUP → RELOADING=1 + MONOTONIC_USEC → the
//! service's reload → READY=1 (a refused reload keeps the running state and says why in
//! STATUS=); SIGTERM/SIGINT → STOPPING=1, the shutdown token is cancelled, and the tracked
//! tasks (HTTP connections, the service's loops) get the drain timeout to finish — a second
//! signal stops the wait at once.

use crate::exit::{self, Fatal};
use crate::systemd::Notifier;
use axum::Router;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// What a daemon has before its async part starts.
pub struct Prepared {
    /// The sockets and watchdog interval systemd passed.
    pub activation: crate::systemd::Activation,
    pub log: crate::logging::LogHandle,
    pub runtime: tokio::runtime::Runtime,
}

/// What every daemon does first, in this order: take what systemd passed (and unset it),
/// start logging (journald under systemd, else stderr) at `log_level`, build the runtime
/// (`worker_threads`, or one per core).
///
/// # Safety
/// Reads and unsets the environment: call while the process is still single-threaded.
pub unsafe fn prepare(
    program: &'static str,
    log_level: &str,
    worker_threads: Option<usize>,
) -> Result<Prepared, Fatal> {
    // SAFETY: the caller guarantees a single thread.
    let activation = unsafe { crate::systemd::take_activation() }.map_err(|e| {
        Fatal::new(
            exit::SOFTWARE,
            format!("bad socket activation or watchdog environment: {e}"),
        )
    })?;
    let log = crate::logging::init(log_level, program).map_err(|e| Fatal::new(exit::CONFIG, e))?;
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = worker_threads {
        builder.worker_threads(n);
    }
    let runtime = builder
        .enable_all()
        .build()
        .map_err(|e| Fatal::new(exit::SOFTWARE, format!("cannot start the runtime: {e}")))?;
    Ok(Prepared {
        activation,
        log,
        runtime,
    })
}

/// Raises the soft open-file limit to the hard one (systemd's default soft limit, 1024, is
/// too few for `server.max_connections`); returns the limit in force.
pub fn raise_open_file_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid, owned struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 0;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
    }
    limit.rlim_cur
}

/// Without a watchdog, STATUS= is still refreshed this often.
const STATUS_EVERY: Duration = Duration::from_secs(5);

/// What a daemon tells the lifecycle about itself.
pub trait Service: Send + Sync + 'static {
    /// The one-line STATUS= systemd shows (`systemctl status`).
    fn status(&self) -> String;

    /// Whether the daemon's own loops are alive; the watchdog is pinged only while they
    /// are, so a stuck loop gets the daemon restarted.
    fn alive(&self) -> bool {
        true
    }

    /// SIGHUP: re-read what can change without a restart. `Ok` carries notes for the
    /// journal; `Err` the reason it was refused (the running state is kept).
    fn reload(self: Arc<Self>) -> impl Future<Output = Result<String, String>> + Send;
}

/// Why the daemon stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// SIGTERM (`systemctl stop`).
    Term,
    /// SIGINT (Ctrl-C).
    Interrupt,
    /// The daemon cancelled its own shutdown token (a loop it cannot run without ended).
    Requested,
}

impl Stop {
    pub fn name(self) -> &'static str {
        match self {
            Stop::Term => "SIGTERM",
            Stop::Interrupt => "SIGINT",
            Stop::Requested => "the daemon itself",
        }
    }
}

/// The signal streams, the shutdown token and the task tracker of one daemon.
pub struct Lifecycle {
    sigterm: Signal,
    sigint: Signal,
    sighup: Signal,
    notifier: Notifier,
    watchdog: Option<Duration>,
    shutdown: CancellationToken,
    tasks: TaskTracker,
}

impl Lifecycle {
    /// Installs the signal handlers (inside the tokio runtime, before READY=1).
    pub fn new(watchdog: Option<Duration>) -> std::io::Result<Lifecycle> {
        Ok(Lifecycle {
            sigterm: signal(SignalKind::terminate())?,
            sigint: signal(SignalKind::interrupt())?,
            sighup: signal(SignalKind::hangup())?,
            notifier: Notifier,
            watchdog,
            shutdown: CancellationToken::new(),
            tasks: TaskTracker::new(),
        })
    }

    /// Cancelled when the daemon starts to stop; the daemon's loops end on it. A daemon
    /// may cancel it itself to stop (then [`Lifecycle::run`] returns [`Stop::Requested`]).
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Tasks spawned here are waited for (up to the drain timeout) when the daemon stops.
    pub fn spawn<F>(&self, task: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.tasks.spawn(task)
    }

    /// Serves `router` on `listener` until shutdown (TLS and limits as `serving` says):
    /// then the listener is closed (new connections are refused) and open connections
    /// finish their requests.
    pub fn serve_http(
        &self,
        listener: TcpListener,
        router: Router,
        serving: crate::serve::Serving,
    ) {
        let shutdown = self.shutdown.clone();
        self.tasks
            .spawn(crate::serve::serve(listener, router, shutdown, serving));
    }

    /// Runs the daemon until SIGTERM or SIGINT, then drains for at most `drain_timeout`.
    pub async fn run<S: Service>(mut self, service: Arc<S>, drain_timeout: Duration) -> Stop {
        let mut last_status = service.status();
        self.notifier.ready(&last_status);
        let mut tick = tokio::time::interval(self.watchdog.map(|w| w / 2).unwrap_or(STATUS_EVERY));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut reloading: Option<JoinHandle<Result<String, String>>> = None;
        let mut reload_again = false;
        let stop = loop {
            tokio::select! {
                _ = tick.tick() => {
                    let status = service.status();
                    if status != last_status {
                        self.notifier.status(&status);
                        last_status = status;
                    }
                    if self.watchdog.is_some() {
                        if service.alive() {
                            self.notifier.watchdog();
                        } else {
                            tracing::error!("a daemon loop is stuck; withholding the watchdog ping");
                        }
                    }
                }
                _ = self.sighup.recv() => {
                    if reloading.is_some() {
                        reload_again = true;
                    } else {
                        reloading = Some(self.start_reload(&service));
                    }
                }
                finished = wait_reload(&mut reloading) => {
                    reloading = None;
                    last_status = service.status();
                    match finished {
                        Ok(notes) => {
                            tracing::info!(notes = %notes, "reloaded");
                            self.notifier.ready(&last_status);
                        }
                        Err(reason) => {
                            tracing::error!(reason = %reason, "reload refused; keeping the running configuration");
                            self.notifier.ready(&format!("{last_status}; last reload refused: {reason}"));
                        }
                    }
                    if std::mem::take(&mut reload_again) {
                        reloading = Some(self.start_reload(&service));
                    }
                }
                _ = self.sigterm.recv() => break Stop::Term,
                _ = self.sigint.recv() => break Stop::Interrupt,
                _ = self.shutdown.cancelled() => break Stop::Requested,
            }
        };
        self.notifier.stopping("draining");
        tracing::info!(
            signal = stop.name(),
            timeout_s = drain_timeout.as_secs_f64(),
            "shutting down"
        );
        self.shutdown.cancel();
        self.tasks.close();
        tokio::select! {
            _ = self.tasks.wait() => tracing::info!("drained"),
            _ = tokio::time::sleep(drain_timeout) => tracing::warn!("drain timed out; stopping what is left"),
            _ = self.sigterm.recv() => tracing::warn!("second signal; exiting now"),
            _ = self.sigint.recv() => tracing::warn!("second signal; exiting now"),
        }
        stop
    }

    /// RELOADING=1 (with MONOTONIC_USEC), and the service's reload on its own task.
    fn start_reload<S: Service>(&self, service: &Arc<S>) -> JoinHandle<Result<String, String>> {
        self.notifier.reloading();
        tokio::spawn(Arc::clone(service).reload())
    }
}

async fn wait_reload(
    reloading: &mut Option<JoinHandle<Result<String, String>>>,
) -> Result<String, String> {
    match reloading {
        Some(handle) => match handle.await {
            Ok(outcome) => outcome,
            Err(e) => Err(format!("the reload task failed: {e}")),
        },
        None => std::future::pending().await,
    }
}
