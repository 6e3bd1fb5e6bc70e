//! Notifications end to end: a fleet fed into a real nordiq-inference degrades and
//! recovers; Debian's real `prometheus-alertmanager` on loopback receives the predicted
//! breach (checked through its own v2 API: labels, annotations), gets it back after an
//! Alertmanager restart, and sees it resolved; a webhook receiver in the test verifies
//! every signature, answers the first two deliveries with 500 and gets them again.

mod common;

use common::*;
use hmac::{Hmac, Mac};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SECRET: &str = "webhook signing key";

fn alertmanager(dir: &Path, port: u16) -> Proc {
    let config = dir.join("alertmanager.yml");
    std::fs::write(
        &config,
        "route:\n  receiver: nobody\n  group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 1h\nreceivers:\n  - name: nobody\n",
    )
    .unwrap();
    let am = Proc::start(
        clean_env(
            Command::new("prometheus-alertmanager")
                .arg(format!("--config.file={}", config.display()))
                .arg(format!("--storage.path={}", dir.join("am-data").display()))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg("--cluster.listen-address="),
        ),
        &dir.join("alertmanager.log"),
    );
    nordiq_testkit::wait_port(port, &dir.join("alertmanager.log"));
    am
}

/// Alertmanager's alerts from NordIQ (none while it is down).
fn am_alerts(port: u16) -> Vec<serde_json::Value> {
    if std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        return Vec::new(); // not running
    }
    let answer = Client::new(port, None).get("/api/v2/alerts");
    if !answer.status.is_success() {
        return Vec::new();
    }
    let all: Vec<serde_json::Value> = answer.json().unwrap_or_default();
    all.into_iter()
        .filter(|a| a["labels"]["source"] == "nordiq")
        .collect()
}

/// One delivery the webhook receiver saw.
#[derive(Debug, Clone)]
struct Delivery {
    id: String,
    signed_ok: bool,
    status: u16,
    body: serde_json::Value,
}

/// A webhook receiver: checks `X-NordIQ-Signature` against the body, answers 500 to the
/// first `fail_first` requests and 200 after.
fn webhook_receiver(fail_first: usize) -> (u16, Arc<Mutex<Vec<Delivery>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                let mut headers = std::collections::HashMap::new();
                loop {
                    let mut h = String::new();
                    reader.read_line(&mut h).unwrap();
                    let h = h.trim_end();
                    if h.is_empty() {
                        break;
                    }
                    if let Some((k, v)) = h.split_once(':') {
                        headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
                    }
                }
                let len: usize = headers
                    .get("content-length")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                let mut body = vec![0u8; len];
                reader.read_exact(&mut body).unwrap();
                let mut mac =
                    <Hmac<sha2::Sha256> as Mac>::new_from_slice(SECRET.as_bytes()).unwrap();
                mac.update(&body);
                let expected: String = mac
                    .finalize()
                    .into_bytes()
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                let signed_ok =
                    headers.get("x-nordiq-signature") == Some(&format!("sha256={expected}"));
                let mut seen = log.lock().unwrap();
                let status = if seen.len() < fail_first { 500 } else { 200 };
                seen.push(Delivery {
                    id: headers
                        .get("x-nordiq-delivery")
                        .cloned()
                        .unwrap_or_default(),
                    signed_ok,
                    status,
                    body: serde_json::from_slice(&body).unwrap_or_default(),
                });
                drop(seen);
                let _ = write!(stream, "HTTP/1.1 {status} X\r\ncontent-length: 0\r\n\r\n");
            }
        }
    });
    (port, seen)
}

fn wait_for<T>(
    what: &str,
    timeout: Duration,
    diagnose: &dyn Fn() -> String,
    mut check: impl FnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}\n{}",
            diagnose()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn alerts_reach_a_real_alertmanager_and_a_signed_webhook_and_are_resolved_there() {
    let dir = TempDir::new("notify");
    let am_port = free_port();
    let (hook_port, deliveries) = webhook_receiver(2);
    let secret_file = dir.join("webhook-secret");
    std::fs::write(&secret_file, format!("{SECRET}\n")).unwrap();
    let port = free_port();
    let config = write_config(
        &dir,
        port,
        &format!(
            "[model]\nstep_seconds = 2\nhorizon_steps = 60\nencoder_steps = 30\n\n\
             [forecast]\nseason_seconds = 60\nmin_history_steps = 12\nsummary_horizons_minutes = [1, 2]\n\n\
             [risk]\nlookahead_minutes = 1\n\n[prometheus]\nhorizons_minutes = [1]\n\n\
             [anomaly]\noutlook_minutes = [1, 2]\n\n\
             [notify]\nmin_level_seconds = 2\nrepeat_seconds = 0\nretry_max_seconds = 2\ndashboard_url = \"https://nordiq.example.com\"\n\n\
             [notify.alertmanager]\nurls = [\"http://127.0.0.1:{am_port}\"]\nresend_seconds = 2\n\n\
             [[notify.webhook]]\nname = \"ops\"\nurl = \"http://127.0.0.1:{hook_port}/hook\"\nsecret_file = \"{}\"\nkinds = [\"predicted_breach\"]\n",
            secret_file.display()
        ),
    );
    let daemon = Daemon::start(&dir, &config, port, &[("NORDIQ_API_KEY", KEY)]);
    let c = daemon.client(Some(KEY));
    let feed = |value: f64, steps: usize| {
        let body = ndjson_history(&["ppdb001"], steps, 2, |_, _| value);
        let a = c.post("/feed/data", "application/x-ndjson", body);
        assert_eq!(a.status, 200, "{}", a.text());
    };
    let level = || c.json("/predictions/ppdb001")["level"].clone();
    let diagnose = || {
        format!(
            "level {}\nalertmanager {:?}\nwebhook {:?}\ndaemon log:\n{}",
            level(),
            am_alerts(am_port),
            deliveries.lock().unwrap(),
            daemon.log_text()
        )
    };

    // A healthy server, then one pinned at 99 % CPU (warning at 85, critical at 95).
    feed(20.0, 60);
    assert_eq!(c.post("/admin/refresh", "application/json", "").status, 200);
    let metric = |name: &str, receiver: &str| -> f64 {
        c.get("/metrics")
            .text()
            .lines()
            .find(|l| l.starts_with(name) && l.contains(&format!("receiver=\"{receiver}\"")))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(-1.0)
    };

    // Alertmanager is down when the alert starts: the notice waits in the spool.
    wait_for(
        "a notice spooled for the absent Alertmanager",
        Duration::from_secs(60),
        &diagnose,
        || {
            feed(99.0, 1);
            (metric("nordiq_notify_pending", "alertmanager") >= 1.0).then_some(())
        },
    );
    assert!(metric("nordiq_notify_failed_attempts_total", "alertmanager") >= 1.0);
    let am = alertmanager(&dir, am_port);
    let firing = wait_for(
        "the alert in Alertmanager",
        Duration::from_secs(60),
        &diagnose,
        || {
            feed(99.0, 1);
            am_alerts(am_port)
                .into_iter()
                .find(|a| a["labels"]["kind"] == "predicted_breach")
        },
    );
    wait_for(
        "the spool drained",
        Duration::from_secs(30),
        &diagnose,
        || {
            (metric("nordiq_notify_pending", "alertmanager") == 0.0
                && metric("nordiq_notify_delivered_total", "alertmanager") >= 1.0)
                .then_some(())
        },
    );
    let labels = &firing["labels"];
    assert_eq!(labels["alertname"], "NordIQPredictedBreach");
    assert_eq!(labels["server"], "ppdb001");
    assert_eq!(labels["profile"], "database");
    assert_eq!(labels["kind"], "predicted_breach");
    assert_eq!(labels["metric"], "cpu_user_pct");
    assert!(
        ["warning", "critical"].contains(&labels["severity"].as_str().unwrap()),
        "{labels}"
    );
    let summary = firing["annotations"]["summary"].as_str().unwrap();
    assert!(summary.contains("cpu_user_pct"), "{summary}");
    assert_eq!(
        firing["annotations"]["dashboard"],
        "https://nordiq.example.com/server/ppdb001"
    );
    assert!(
        firing["annotations"]["forecast_peak"].is_string(),
        "{firing}"
    );

    // Alertmanager keeps alerts in memory only: after a restart it learns them again
    // from NordIQ's resend.
    am.stop();
    feed(99.0, 1);
    let am = alertmanager(&dir, am_port);
    wait_for(
        "the alert again after the restart",
        Duration::from_secs(30),
        &diagnose,
        || {
            feed(99.0, 1);
            am_alerts(am_port).into_iter().find(|a| {
                a["labels"]["server"] == "ppdb001" && a["labels"]["kind"] == "predicted_breach"
            })
        },
    );

    // Recovery: the alert is resolved in Alertmanager and at the webhook.
    wait_for("the recovery", Duration::from_secs(90), &diagnose, || {
        feed(20.0, 1);
        (level() == "healthy"
            && am_alerts(am_port)
                .iter()
                .all(|a| a["labels"]["kind"] != "predicted_breach"))
        .then_some(())
    });
    let seen = wait_for(
        "the resolution at the webhook",
        Duration::from_secs(30),
        &diagnose,
        || {
            let seen = deliveries.lock().unwrap().clone();
            seen.iter()
                .any(|d| d.status == 200 && d.body["event"] == "resolved")
                .then_some(seen)
        },
    );
    assert!(
        seen.iter().all(|d| d.signed_ok),
        "every body is signed: {seen:?}"
    );
    assert_eq!(seen[0].status, 500);
    assert_eq!(
        seen[0].id, seen[2].id,
        "the refused delivery is retried, same id: {seen:?}"
    );
    let accepted: Vec<&Delivery> = seen.iter().filter(|d| d.status == 200).collect();
    let events: Vec<(&str, &str)> = accepted
        .iter()
        .map(|d| {
            (
                d.body["event"].as_str().unwrap(),
                d.body["severity"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(events.first().map(|e| e.0), Some("firing"), "{events:?}");
    assert_eq!(events.last().map(|e| e.0), Some("resolved"), "{events:?}");
    assert!(
        accepted.iter().all(|d| d.body["kind"] == "predicted_breach"
            && d.body["server"] == "ppdb001"
            && d.body["version"] == 1),
        "{accepted:?}"
    );
    let ids: std::collections::BTreeSet<&str> = accepted
        .iter()
        .map(|d| d.body["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), accepted.len(), "each notice delivered once");

    assert!(
        metric("nordiq_notify_delivered_total", "webhook") >= 2.0,
        "{}",
        c.get("/metrics").text()
    );
    assert!(metric("nordiq_notify_failed_attempts_total", "webhook") >= 2.0);
    assert!(metric("nordiq_notify_delivered_total", "alertmanager") >= 2.0);
    assert_eq!(metric("nordiq_notify_pending", "webhook"), 0.0);
    am.stop();
    drop(daemon);
}

#[test]
fn a_receiver_that_cannot_work_stops_the_daemon_at_start_naming_the_key() {
    let dir = TempDir::new("notify-bad");
    let port = free_port();
    let config = write_config(
        &dir,
        port,
        "[[notify.webhook]]\nname = \"ops\"\nurl = \"https://127.0.0.1:9/hook\"\nca_file = \"/nonexistent/ca.pem\"\n",
    );
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .env("NORDIQ_API_KEY", KEY)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78), "exit CONFIG");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("notify.webhook[0].ca_file"), "{stderr}");
}
