//! Drift end to end against the real binaries: a model trained on one regime serves; the
//! fleet's CPU then runs 40 points hotter; the daemon's input-shift check trips (after the
//! configured number of checks), says so in /status, /metrics and the log, and — with
//! `[drift] retrain = true` — starts one training job (trigger `drift`) whose promotion the
//! usual rules decide; a second job is not started within the debounce period.

mod common;

use common::{history, Daemon, TempDir};
use std::time::{Duration, Instant};

/// 12 days of hourly history ending now; the last `hot_hours` run `shift` points hotter.
fn regimes(names: &[&str], hours: i64, hot_hours: i64, shift: f64) -> (String, String) {
    let now = nordiq_core::timefmt::now_ms() / 1000 / 3600 * 3600;
    let (mut before, mut after) = (String::new(), String::new());
    for line in history(names, hours).lines() {
        let mut v: serde_json::Value = serde_json::from_str(line).unwrap();
        if v["timestamp"].as_i64().unwrap() > now - hot_hours * 3600 {
            let cpu = v["cpu_user_pct"].as_f64().unwrap();
            v["cpu_user_pct"] = serde_json::json!((cpu + shift).min(100.0));
            after.push_str(&format!("{v}\n"));
        } else {
            before.push_str(&format!("{v}\n"));
        }
    }
    (before, after)
}

fn wait_for(
    daemon: &Daemon,
    what: &str,
    timeout: Duration,
    mut done: impl FnMut() -> Option<serde_json::Value>,
) -> serde_json::Value {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = done() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: timed out\n{}",
            daemon.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn an_input_shift_trips_drift_and_starts_one_training_job() {
    let dir = TempDir::new("drift");
    let port = common::free_port();
    let extra = format!(
        "{}\n[drift]\nretrain = true\ncheck_seconds = 1\nsustain_checks = 2\nmin_retrain_hours = 24\n",
        common::process_training(dir.path())
    );
    let config = common::write_small_config(dir.path(), port, &extra);
    let daemon = Daemon::start(dir.path(), &config, port);
    let names = ["ppweb000", "ppweb001", "ppweb002"];
    let (calm, hot) = regimes(&names, 12 * 24, 24, 40.0);

    // The calm regime: a model trained on it (forced: two epochs need not beat the best
    // baseline) serves, and nothing has drifted.
    let (status, body) = daemon.http("POST", "/feed/data", &calm);
    assert_eq!(status, 200, "{body}");
    let (status, started) = daemon.http("POST", "/admin/trigger-training?epochs=2&force=true", "");
    assert_eq!(status, 202, "{started}");
    let first = wait_for(
        &daemon,
        "first model serves",
        Duration::from_secs(300),
        || {
            let (_, info) = daemon.http("GET", "/admin/model-info", "");
            info["serving"]
                .as_str()
                .filter(|s| s.starts_with("tft_"))
                .map(|s| serde_json::json!(s))
        },
    );
    let (_, status) = daemon.http("GET", "/status", "");
    assert_eq!(status["drift"]["drifting"], false, "{status}");
    let psi = status["drift"]["psi"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        psi.iter().all(|p| p[1].as_f64().unwrap() < 0.25),
        "the training regime is not a shift: {status}"
    );

    // The hot regime: CPU 40 points up for a day. Two checks later the fleet is drifting.
    let (status, body) = daemon.http("POST", "/feed/data", &hot);
    assert_eq!(status, 200, "{body}");
    let drift = wait_for(&daemon, "drift", Duration::from_secs(60), || {
        let (_, status) = daemon.http("GET", "/status", "");
        (status["drift"]["drifting"] == true).then(|| status["drift"].clone())
    });
    let reasons = drift["reasons"].as_array().unwrap();
    assert!(
        reasons
            .iter()
            .any(|r| r["kind"] == "input_shift" && r["metric"] == "cpu_user_pct"),
        "{drift}"
    );
    assert!(drift["consecutive"].as_u64().unwrap() >= 2, "{drift}");
    let (_, text) = common::http(port, "GET", "/metrics", "");
    assert!(text.contains("nordiq_drift 1\n"), "{text}");
    assert!(
        text.contains("nordiq_drift_reason{reason=\"input_shift\"} 1\n"),
        "{text}"
    );
    let cpu_psi: f64 = text
        .lines()
        .find(|l| l.starts_with("nordiq_input_psi{metric=\"cpu_user_pct\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .expect("nordiq_input_psi for cpu_user_pct");
    assert!(cpu_psi >= 0.25, "{cpu_psi}");

    // retrain = true: one job, started by drift, decided by the usual promotion rules.
    let record = wait_for(
        &daemon,
        "drift job finished",
        Duration::from_secs(300),
        || {
            let (code, record) = daemon.http("GET", "/admin/training-status", "");
            (code == 200
                && record["trigger"] == "drift"
                && record["status"] != "queued"
                && record["status"] != "running")
                .then_some(record)
        },
    );
    assert_eq!(
        record["status"],
        "completed",
        "{record}\n{}",
        daemon.log_text()
    );
    assert_eq!(record["params"]["force"], false, "{record}");
    let promotion = &record["promotion"];
    println!("drift job promotion: {promotion}");
    assert_eq!(promotion["current_model"], first, "{record}");
    let beats_current =
        promotion["candidate_loss"].as_f64().unwrap() < promotion["current_loss"].as_f64().unwrap();
    let beats_baseline = promotion["candidate_mase"].as_f64().unwrap()
        < promotion["best_baseline_mase"].as_f64().unwrap();
    assert_eq!(
        promotion["promoted"],
        beats_current && beats_baseline,
        "{promotion}"
    );
    if promotion["promoted"] == true {
        let id = record["model_id"].clone();
        wait_for(
            &daemon,
            "the new model serves",
            Duration::from_secs(30),
            || {
                let (_, info) = daemon.http("GET", "/admin/model-info", "");
                (info["serving"] == id).then_some(info)
            },
        );
    }
    let log = daemon.log_text();
    assert!(
        log.contains("drift: the served model no longer fits"),
        "{log}"
    );
    assert!(log.contains("drift: training job started"), "{log}");
    // Still drifting a few checks later: no second job within min_retrain_hours.
    std::thread::sleep(Duration::from_secs(3));
    let (_, stats) = daemon.http("GET", "/admin/training-stats", "");
    assert_eq!(
        stats["jobs"]["total"], 2,
        "the forced one and the drift one: {stats}"
    );
}
