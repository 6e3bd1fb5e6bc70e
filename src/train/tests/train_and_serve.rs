//! nordiq-train on generated history, then nordiq-inference serving that model: warm
//! servers get TFT forecasts, cold ones the baseline, /explain answers from the model.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::{history, http, write_history_csv, TRAIN};

#[test]
fn train_then_serve_warm_servers_with_the_model() {
    let dir = common::TempDir::new("train-serve");
    let port = common::free_port();
    // Anomaly settings under which the baseline alerts often enough on the 4 held-out days
    // for the trainer to calibrate the model's own threshold.
    let config = common::write_small_config(
        &dir,
        port,
        "[anomaly]\nmetrics_needed = 1\nthreshold = 0.8\n",
    );
    // Train on a CSV export of 12 days of three servers.
    let csv = dir.join("history.csv");
    write_history_csv(&csv, &["ppweb001", "ppdb001", "ppml0001"], 12 * 24);
    let run_train = |extra: &[&str]| {
        Command::new(TRAIN)
            .args([
                "--config",
                config.to_str().unwrap(),
                "--data",
                csv.to_str().unwrap(),
            ])
            .args([
                "--epochs",
                "2",
                "--max-windows",
                "64",
                "--hidden",
                "8",
                "--heads",
                "2",
                "--batch-size",
                "32",
                "--stride",
                "3",
                "--threads",
                "1",
                "--holdout-days",
                "4",
                "--reload",
                "none",
            ])
            .args(extra)
            .env_remove("NOTIFY_SOCKET")
            .output()
            .unwrap()
    };
    let models = dir.join("state/models");

    // A model that loses to the best baseline (a learning rate that wrecks it) is written
    // but not promoted, and the daemon serves the baseline, saying why.
    let out = run_train(&["--learning-rate", "5"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "nordiq-train failed: {stderr}");
    let loser: Vec<PathBuf> = std::fs::read_dir(&models)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(loser.len(), 1, "written: {loser:?}");
    assert!(!models.join("current").exists(), "not promoted: {stderr}");
    let training: serde_json::Value =
        serde_json::from_slice(&std::fs::read(loser[0].join("training.json")).unwrap()).unwrap();
    let promotion = &training["promotion"];
    assert_eq!(promotion["promoted"], false, "{training}");
    assert!(
        promotion["reason"]
            .as_str()
            .unwrap()
            .contains("does not beat the best baseline"),
        "{promotion}"
    );
    assert!(
        promotion["candidate_mase"].as_f64().unwrap()
            >= promotion["best_baseline_mase"].as_f64().unwrap(),
        "{promotion}"
    );
    let daemon = common::Daemon::start(&dir, &config, port);
    let (_, body) = http(port, "GET", "/admin/model-info", "");
    let info: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(info["serving"], "baseline:auto", "{info}");
    let reason = info["serving_reason"].as_str().unwrap();
    assert!(
        reason.contains("was not promoted") && reason.contains("best baseline"),
        "{info}"
    );
    drop(daemon);
    std::fs::remove_dir_all(&loser[0]).unwrap();
    // Model ids have a one-second resolution.
    std::thread::sleep(Duration::from_millis(1100));

    // The same run with --force is promoted whatever it scores (what an operator asks).
    let out = run_train(&["--force"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "nordiq-train failed: {stderr}");
    let epochs: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(epochs.len(), 2, "one JSON line per epoch");
    assert!(epochs[1]["validation_loss"].as_f64().unwrap().is_finite());
    let model_dirs: Vec<PathBuf> = std::fs::read_dir(&models)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap() != "current")
        .collect();
    assert_eq!(model_dirs.len(), 1, "{model_dirs:?}");
    let model = &model_dirs[0];
    for f in [
        "config.json",
        "weights.safetensors",
        "metrics.json",
        "training.json",
    ] {
        assert!(model.join(f).exists(), "{f} missing in {}", model.display());
    }
    let metrics: serde_json::Value =
        serde_json::from_slice(&std::fs::read(model.join("metrics.json")).unwrap()).unwrap();
    assert!(metrics["mase"].as_f64().unwrap().is_finite(), "{metrics}");
    assert_eq!(metrics["baselines"][0]["model"], "baseline:seasonal_naive");
    assert_eq!(metrics["baselines"][0]["mase"], 1.0);
    assert!(
        metrics["best_baseline"]
            .as_str()
            .unwrap()
            .starts_with("baseline:"),
        "{metrics}"
    );
    assert!(
        metrics["tft"]["horizons"].as_array().unwrap().len() >= 2,
        "{metrics}"
    );
    // The model's anomaly threshold, matched on the held-out time (4 days × 3 servers,
    // hourly) to the rate at which the baseline that would serve starts alert events at 0.8.
    let calibration = &metrics["anomaly_calibration"];
    assert_eq!(calibration["decisions"], 3 * 97, "{metrics}");
    assert_eq!(calibration["baseline"], "baseline:auto", "{calibration}");
    assert_eq!(calibration["configured_threshold"], 0.8, "{calibration}");
    let calibrated = calibration["threshold"].as_f64().unwrap();
    assert!(calibrated > 0.0, "{calibration}");
    assert!(
        calibration["baseline_events"].as_u64().unwrap() >= 10,
        "{calibration}"
    );
    let id = model.file_name().unwrap().to_str().unwrap().to_string();
    assert!(id.starts_with("tft_"));
    // Forced: promoted.
    assert_eq!(
        std::fs::read_link(models.join("current")).unwrap(),
        PathBuf::from(&id)
    );
    let training: serde_json::Value =
        serde_json::from_slice(&std::fs::read(model.join("training.json")).unwrap()).unwrap();
    assert_eq!(training["promotion"]["promoted"], true, "{training}");
    // The run has a job record of its own.
    let job_id = training["job"].as_str().unwrap();
    let job: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.join(format!("state/jobs/{job_id}.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!(job["model_id"], id.as_str());
    assert_eq!(job["trigger"], "cli");

    // Serve it.
    let daemon = common::Daemon::start(&dir, &config, port);
    // Two warm servers (30 h of history) and one cold (4 h).
    let (status, body) = http(
        port,
        "POST",
        "/feed/data",
        &history(&["ppweb001", "ppdb001"], 30),
    );
    assert_eq!(status, 200, "{body}");
    let (status, _) = http(port, "POST", "/feed/data", &history(&["ppcold01"], 4));
    assert_eq!(status, 200);
    let (status, body) = http(port, "POST", "/admin/refresh", "");
    assert_eq!(status, 200, "{body}");
    let (_, body) = http(port, "GET", "/predictions/current", "");
    let current: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(current["model_id"], id.as_str(), "{body}");
    // Warm servers are held to the model's anomaly threshold, cold ones to the configured.
    let threshold_of = |server: &str| {
        current["servers"][server]["anomaly"]["threshold"]
            .as_f64()
            .unwrap()
    };
    let rounded = (calibrated * 1000.0).round() / 1000.0;
    assert_eq!(threshold_of("ppweb001"), rounded, "{body}");
    assert_eq!(threshold_of("ppcold01"), 0.8, "{body}");
    let (_, body) = http(port, "GET", "/admin/model-info", "");
    let info: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        info["anomaly_threshold"].as_f64(),
        Some(calibrated),
        "{info}"
    );
    assert!(
        info["anomaly_threshold_reason"]
            .as_str()
            .unwrap()
            .starts_with("calibrated by the trainer"),
        "{info}"
    );
    assert_eq!(current["servers"]["ppweb001"]["method"], "tft");
    assert_ne!(
        current["servers"]["ppcold01"]["method"], "tft",
        "cold servers get the baseline"
    );
    let p50 = current["servers"]["ppweb001"]["metrics"]["cpu_user_pct"]["forecast"]["p50"][0]
        .as_f64()
        .unwrap();
    assert!((0.0..=100.0).contains(&p50));

    let (status, body) = http(port, "GET", "/explain/ppweb001", "");
    assert_eq!(status, 200, "{body}");
    let explain: serde_json::Value = serde_json::from_str(&body).unwrap();
    let vars = explain["explanation"]["encoder_variables"]
        .as_array()
        .unwrap();
    assert_eq!(vars.len(), 2 + 5, "2 metrics + 5 time features");
    let total: f64 = vars.iter().map(|v| v[1].as_f64().unwrap()).sum();
    assert!(
        (total - 1.0).abs() < 1e-3,
        "selection weights sum to 1: {total}"
    );
    assert_eq!(
        explain["explanation"]["attention_over_past_steps"]
            .as_array()
            .unwrap()
            .len(),
        24
    );
    let (status, _) = http(port, "GET", "/explain/ppcold01", "");
    assert_eq!(status, 409, "a cold server has no model explanation");

    drop(daemon);
}

#[test]
fn sigterm_stops_training_without_a_model_directory() {
    let dir = common::TempDir::new("train-sigterm");
    let config = common::write_small_config(&dir, common::free_port(), "");
    let csv = dir.join("history.csv");
    write_history_csv(&csv, &["ppweb001", "ppdb001"], 20 * 24);
    let mut child = Command::new(TRAIN)
        .args([
            "--config",
            config.to_str().unwrap(),
            "--data",
            csv.to_str().unwrap(),
        ])
        .args([
            "--epochs",
            "1000",
            "--patience",
            "1000",
            "--max-windows",
            "64",
            "--hidden",
            "8",
            "--batch-size",
            "16",
            "--threads",
            "1",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait for the first epoch line, then stop it.
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
    assert!(line.contains("\"epoch\":1"), "{line}");
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "nordiq-train ignored SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(
        status.code(),
        Some(75),
        "stopped by a signal: temporary failure"
    );
    let jobs: Vec<_> = std::fs::read_dir(dir.join("state/jobs"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    assert_eq!(jobs.len(), 1);
    assert!(jobs[0].contains("\"status\": \"cancelled\""), "{}", jobs[0]);
    let models = dir.join("state/models");
    let left: Vec<_> = std::fs::read_dir(&models)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(
        left.is_empty(),
        "no model directory, no temp directory: {left:?}"
    );
}
