//! The daemon under `systemd-socket-activate` with a notify socket the test listens on:
//! socket activation, READY/STATUS, watchdog pings, RELOADING on SIGHUP, STOPPING on SIGTERM.

mod common;

use common::*;
use std::process::{Command, Stdio};
use std::time::Duration;

fn socket_activate_available() -> bool {
    Command::new("systemd-socket-activate")
        .arg("--help")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Starts the daemon behind `systemd-socket-activate`; nothing runs until the first
/// connection.
fn activate(
    dir: &std::path::Path,
    config: &std::path::Path,
    port: u16,
    notify: &NotifySocket,
    extra_env: &[(&str, &str)],
) -> Daemon {
    assert!(
        socket_activate_available(),
        "systemd-socket-activate is missing: install the `systemd` package (the test command does)"
    );
    let log = dir.join("activate.log");
    let mut cmd = Command::new("systemd-socket-activate");
    clean_env(&mut cmd);
    cmd.arg("-l")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--fdname=nordiq-inference")
        .arg("-E")
        .arg(format!("NOTIFY_SOCKET={}", notify.path.display()))
        .arg("-E")
        .arg(format!("NORDIQ_API_KEY={KEY}"));
    for (k, v) in extra_env {
        cmd.arg("-E").arg(format!("{k}={v}"));
    }
    cmd.arg(BIN).arg("--config").arg(config);
    let daemon = Daemon {
        proc: Proc::start(&mut cmd, &log),
        port,
    };
    daemon.wait_healthy();
    daemon
}

#[test]
fn socket_activation_ready_watchdog_reload_stop() {
    let dir = TempDir::new("systemd");
    let port = free_port();
    // The config's own listen address is a different port: serving on `port` proves the
    // inherited socket is used.
    let config = write_config(dir.path(), free_port(), "");
    let mut notify = NotifySocket::bind(dir.path());
    let mut daemon = activate(
        dir.path(),
        &config,
        port,
        &notify,
        &[("WATCHDOG_USEC", "2000000")],
    );

    // The first connection starts the service; it answers on the inherited socket.
    let client = daemon.client(Some(KEY));
    let health = client.get("/health");
    assert_eq!(health.status, 200, "{}", daemon.log_text());

    let ready = notify
        .wait_for(Duration::from_secs(10), |m| m.contains("READY=1"))
        .unwrap_or_else(|| panic!("no READY=1; saw {:?}\n{}", notify.seen, daemon.log_text()));
    assert!(ready.contains("STATUS=model baseline:auto"), "{ready}");
    assert!(daemon
        .log_text()
        .contains("using the socket passed by systemd"));

    // Watchdog at half of WATCHDOG_USEC: at least two pings in 2.5 s.
    let mut pings = 0;
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_millis(2500) {
        if notify
            .wait_for(Duration::from_millis(100), |m| m.contains("WATCHDOG=1"))
            .is_some()
        {
            pings += 1;
        }
    }
    assert!(pings >= 2, "expected ≥ 2 watchdog pings, got {pings}");

    // Data makes STATUS count servers.
    let body = ndjson_history(&["ppweb001", "ppdb001"], 20, 300, |i, t| {
        20.0 + (i * 10 + t) as f64
    });
    assert_eq!(
        client
            .post("/feed/data", "application/x-ndjson", body)
            .status,
        200
    );
    assert_eq!(
        client.post("/admin/refresh", "application/json", "").status,
        200
    );
    notify
        .wait_for(Duration::from_secs(5), |m| {
            m.contains("STATUS=") && m.contains("2 servers")
        })
        .unwrap_or_else(|| panic!("no STATUS with 2 servers; saw {:?}", notify.seen));

    // SIGHUP: RELOADING=1 with MONOTONIC_USEC, then READY=1 again.
    daemon.signal(libc::SIGHUP);
    let reloading = notify
        .wait_for(Duration::from_secs(5), |m| m.contains("RELOADING=1"))
        .unwrap_or_else(|| panic!("no RELOADING=1; saw {:?}", notify.seen));
    assert!(reloading.contains("MONOTONIC_USEC="), "{reloading}");
    notify
        .wait_for(Duration::from_secs(5), |m| m.contains("READY=1"))
        .expect("READY=1 after reload");

    // A model that cannot serve (its weights are missing) is refused on reload: the
    // reason is in STATUS=, the baseline keeps serving, the watchdog keeps pinging.
    let models = dir.path().join("state/models");
    std::fs::create_dir_all(models.join("tft_half")).unwrap();
    std::fs::write(models.join("tft_half/config.json"), "{}").unwrap();
    std::os::unix::fs::symlink("tft_half", models.join("current")).unwrap();
    daemon.signal(libc::SIGHUP);
    let refused = notify
        .wait_for(Duration::from_secs(10), |m| m.contains("READY=1"))
        .expect("READY=1 after a refused model");
    assert!(
        refused.contains("last model reload refused") && refused.contains("weights.safetensors"),
        "{refused}"
    );
    assert!(
        notify
            .wait_for(Duration::from_secs(3), |m| m.contains("WATCHDOG=1"))
            .is_some(),
        "watchdog pings go on"
    );
    assert_eq!(client.json("/admin/model-info")["serving"], "baseline:auto");
    std::fs::remove_file(models.join("current")).unwrap();

    // A broken config on reload is refused; the daemon keeps serving with the old one.
    std::fs::write(&config, "[model]\nstep_seconds = \"soon\"\n").unwrap();
    daemon.signal(libc::SIGHUP);
    let after = notify
        .wait_for(Duration::from_secs(5), |m| m.contains("READY=1"))
        .expect("READY=1 after refused reload");
    assert!(after.contains("reload refused"), "{after}");
    assert!(
        after.contains("nordiq.toml:2"),
        "names file and line: {after}"
    );
    assert_eq!(client.get("/status").status, 200);
    assert_eq!(client.json("/status")["step_seconds"], 300);

    // SIGTERM: STOPPING=1, exit 0.
    daemon.signal(libc::SIGTERM);
    notify
        .wait_for(Duration::from_secs(5), |m| m.contains("STOPPING=1"))
        .unwrap_or_else(|| panic!("no STOPPING=1; saw {:?}", notify.seen));
    let status = daemon
        .wait_exit(Duration::from_secs(10))
        .expect("daemon exits after SIGTERM");
    assert!(
        status.success(),
        "exit status {status:?}\n{}",
        daemon.log_text()
    );
}

#[test]
fn no_watchdog_pings_unless_asked() {
    let dir = TempDir::new("nowatchdog");
    let port = free_port();
    let config = write_config(dir.path(), free_port(), "");
    let mut notify = NotifySocket::bind(dir.path());
    let daemon = activate(dir.path(), &config, port, &notify, &[]);
    assert_eq!(daemon.client(None).get("/health").status, 200);
    notify
        .wait_for(Duration::from_secs(10), |m| m.contains("READY=1"))
        .expect("READY");
    let ping = notify.wait_for(Duration::from_millis(1500), |m| m.contains("WATCHDOG=1"));
    assert!(ping.is_none(), "pinged without WATCHDOG_USEC: {ping:?}");
}

#[test]
fn in_flight_requests_finish_during_shutdown() {
    let dir = TempDir::new("drain");
    let port = free_port();
    let config = write_config(dir.path(), port, "");
    let mut daemon = Daemon::start(dir.path(), &config, port, &[("NORDIQ_API_KEY", KEY)]);
    // A request whose body is still arriving when SIGTERM lands must still be answered.
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let body = ndjson_history(&["ppweb001"], 3, 300, |_, t| 10.0 + t as f64);
    let head = format!(
        "POST /feed/data HTTP/1.1\r\nHost: x\r\nX-API-Key: {KEY}\r\nContent-Type: application/x-ndjson\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(&body.as_bytes()[..10]).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    daemon.signal(libc::SIGTERM);
    std::thread::sleep(Duration::from_millis(300));
    stream.write_all(&body.as_bytes()[10..]).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\"accepted\":3"), "{answer}");
    let status = daemon.wait_exit(Duration::from_secs(10)).expect("exits");
    assert!(status.success());
    // New connections are refused once draining started.
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
}
