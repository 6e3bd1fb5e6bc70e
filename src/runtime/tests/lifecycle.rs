//! The shared daemon lifecycle as systemd sees it: the messages on a notify socket, the
//! watchdog gated on the daemon's health, reload with RELOADING/READY, and the two-phase
//! stop (the drain waits for tracked tasks; a second signal ends the wait). One test: the
//! signals go to this whole process.

use nordiq_runtime::lifecycle::{Lifecycle, Service, Stop};
use nordiq_testkit::{NotifySocket, TempDir};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

struct Fake {
    alive: AtomicBool,
    refuse: AtomicBool,
    reloads: AtomicUsize,
    status: Mutex<String>,
}

impl Service for Fake {
    fn status(&self) -> String {
        self.status.lock().unwrap().clone()
    }

    fn alive(&self) -> bool {
        self.alive.load(Ordering::SeqCst)
    }

    async fn reload(self: Arc<Self>) -> Result<String, String> {
        self.reloads.fetch_add(1, Ordering::SeqCst);
        if self.refuse.load(Ordering::SeqCst) {
            Err("nordiq.toml:3: model.step_seconds: not a number".into())
        } else {
            Ok("re-read".into())
        }
    }
}

fn raise(signal: i32) {
    // SAFETY: kill(2) on this process; tokio's handlers for these signals are installed.
    unsafe {
        libc::kill(std::process::id() as i32, signal);
    }
}

fn fake() -> Arc<Fake> {
    Arc::new(Fake {
        alive: AtomicBool::new(true),
        refuse: AtomicBool::new(false),
        reloads: AtomicUsize::new(0),
        status: Mutex::new("serving 3 servers".into()),
    })
}

#[test]
fn ready_watchdog_reload_and_two_phase_stop() {
    let dir = TempDir::new("lifecycle");
    let mut notify = NotifySocket::bind(dir.path());
    // Set before the runtime's threads exist.
    std::env::set_var("NOTIFY_SOCKET", &notify.path);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();

    // Phase 1: a drain that waits for a tracked task to finish its work.
    let service = fake();
    let drained = Arc::new(AtomicBool::new(false));
    let lifecycle = runtime.block_on(async { Lifecycle::new(Some(Duration::from_millis(400))) });
    let lifecycle = lifecycle.unwrap();
    {
        let token = lifecycle.shutdown_token();
        let drained = Arc::clone(&drained);
        let _guard = runtime.enter();
        lifecycle.spawn(async move {
            token.cancelled().await;
            tokio::time::sleep(Duration::from_millis(300)).await;
            drained.store(true, Ordering::SeqCst);
        });
    }
    let run = runtime.spawn(lifecycle.run(Arc::clone(&service), Duration::from_secs(10)));

    let ready = notify
        .wait_for(Duration::from_secs(5), |m| m.contains("READY=1"))
        .expect("READY=1");
    assert!(ready.contains("STATUS=serving 3 servers"), "{ready}");
    assert!(
        notify
            .wait_for(Duration::from_secs(2), |m| m.contains("WATCHDOG=1"))
            .is_some(),
        "pings while alive"
    );

    // A stuck daemon loop: no pings (one may already be on its way).
    service.alive.store(false, Ordering::SeqCst);
    let _ = notify.collect(Duration::from_millis(300));
    let seen = notify.collect(Duration::from_millis(1000));
    assert!(
        !seen.iter().any(|m| m.contains("WATCHDOG=1")),
        "pinged while a loop was stuck: {seen:?}"
    );
    service.alive.store(true, Ordering::SeqCst);

    // STATUS= follows the daemon's status when it changes.
    *service.status.lock().unwrap() = "serving 4 servers".into();
    assert!(notify
        .wait_for(Duration::from_secs(2), |m| m
            .contains("STATUS=serving 4 servers"))
        .is_some());

    // SIGHUP: RELOADING=1 with MONOTONIC_USEC, the hook, READY=1.
    raise(libc::SIGHUP);
    let reloading = notify
        .wait_for(Duration::from_secs(5), |m| m.contains("RELOADING=1"))
        .expect("RELOADING=1");
    assert!(reloading.contains("MONOTONIC_USEC="), "{reloading}");
    let ready = notify
        .wait_for(Duration::from_secs(5), |m| m.contains("READY=1"))
        .expect("READY=1 after the reload");
    assert!(!ready.contains("refused"), "{ready}");
    assert_eq!(service.reloads.load(Ordering::SeqCst), 1);

    // A refused reload: READY=1 again, and STATUS= says why.
    service.refuse.store(true, Ordering::SeqCst);
    raise(libc::SIGHUP);
    let ready = notify
        .wait_for(Duration::from_secs(5), |m| m.contains("READY=1"))
        .expect("READY=1 after a refused reload");
    assert!(
        ready.contains("last reload refused: nordiq.toml:3"),
        "{ready}"
    );

    // SIGTERM: STOPPING=1, the token is cancelled, the tracked task finishes its drain.
    raise(libc::SIGTERM);
    assert!(notify
        .wait_for(Duration::from_secs(5), |m| m.contains("STOPPING=1"))
        .is_some());
    let stop = runtime.block_on(run).unwrap();
    assert_eq!(stop, Stop::Term);
    assert!(
        drained.load(Ordering::SeqCst),
        "run returned before its tracked task drained"
    );

    // Phase 2: a drain that would take a minute is cut short by a second signal.
    let lifecycle = runtime.block_on(async { Lifecycle::new(None) }).unwrap();
    {
        let _guard = runtime.enter();
        lifecycle.spawn(tokio::time::sleep(Duration::from_secs(60)));
    }
    let run = runtime.spawn(lifecycle.run(fake(), Duration::from_secs(60)));
    notify
        .wait_for(Duration::from_secs(5), |m| m.contains("READY=1"))
        .expect("READY=1");
    let started = Instant::now();
    raise(libc::SIGINT);
    notify
        .wait_for(Duration::from_secs(5), |m| m.contains("STOPPING=1"))
        .expect("STOPPING=1");
    raise(libc::SIGINT);
    let stop = runtime.block_on(run).unwrap();
    assert_eq!(stop, Stop::Interrupt);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the second signal did not end the drain"
    );
}
