//! The dashboard in a real browser: nordiq-inference (development mode) fed by the
//! simulator (`nordiq-metrics simulate`, 30 servers, 4 days backfilled), nordiq-dashboard
//! in front of both, and tests/browser/dashboard.mjs driving Debian's Chromium through
//! playwright-core over every view. Screenshots land in target/dashboard-screenshots/.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;
use support::{free_port, get, spawn, wait_port, DASHBOARD};

#[test]
fn every_view_shows_real_content_in_chromium() {
    if nordiq_testkit::slow::skip("a real headless Chromium") {
        return;
    }
    let dir = support::TempDir::new("dashboard");
    let dash_port = free_port();

    // A trained-model directory (untrained weights: the shape, not the accuracy, matters
    // here), promoted, so the server view has the model's own explanation to show.
    let config = nordiq_core::config::Config::dev(&dir);
    let models = config.paths.state_dir.join("models");
    let model = nordiq_model::tft::TftModel::new(
        nordiq_model::tft::TftShape::from_config(&config, 8, 2, 0.0),
        tch::Device::Cpu,
        7,
    );
    let staging =
        nordiq_runtime::model_store::Staging::create(&models, "tft_dashboard_test").unwrap();
    model.save(staging.path()).unwrap();
    staging
        .finish(
            &serde_json::json!({ "mase": 0.9, "tft": { "coverage": 0.8 } }),
            &serde_json::json!({ "finished": "2026-11-28T00:00:00Z" }),
        )
        .unwrap();
    nordiq_runtime::model_store::ModelStore::new(&models)
        .promote("tft_dashboard_test")
        .unwrap();

    let (_inference, api_port, key) = support::start_daemon(&dir);
    let api_url = format!("http://127.0.0.1:{api_port}");
    let sim_port = free_port();
    let _simulator = spawn(
        Command::new(support::sibling("nordiq-metrics"))
            .args(["--dev", "--inference-url", &api_url])
            .args([
                "simulate",
                "--servers",
                "30",
                "--seed",
                "7",
                "--backfill",
                "4d",
            ])
            .args(["--listen", &format!("127.0.0.1:{sim_port}")])
            .current_dir(&dir),
        &dir.join("simulator.log"),
    );
    support::wait_forecast(api_port, &key, 30, Duration::from_secs(120));
    let simulator_url = format!("http://127.0.0.1:{sim_port}");
    let _dashboard = spawn(
        Command::new(DASHBOARD)
            .args(["--dev", "--listen", &format!("127.0.0.1:{dash_port}")])
            .args(["--inference-url", &api_url])
            .args(["--simulator-url", &simulator_url])
            .current_dir(&dir),
        &dir.join("dashboard.log"),
    );
    wait_port(dash_port, &dir.join("dashboard.log"));
    // The key is used server-side; the browser-facing API needs none.
    assert!(get(dash_port, "/api/status", "").contains("\"forecast_servers\":30"));

    let out_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/dashboard-screenshots");
    std::fs::create_dir_all(&out_dir).unwrap();
    let modules = std::env::var("NORDIQ_NODE_MODULES").unwrap_or_else(|_| {
        format!(
            "{}/.cache/nordiq/node/node_modules",
            std::env::var("HOME").unwrap_or_default()
        )
    });
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/dashboard.mjs");
    let out = Command::new("node")
        .arg(&script)
        .env("DASH_URL", format!("http://127.0.0.1:{dash_port}"))
        .env("API_URL", &api_url)
        .env("API_KEY", &key)
        .env("OUT_DIR", &out_dir)
        .env("NORDIQ_NODE_MODULES", &modules)
        .output()
        .expect("node (Debian's nodejs; scripts/ensure-deps.sh test installs it)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "{text}\ndashboard log:\n{}",
        std::fs::read_to_string(dir.join("dashboard.log")).unwrap_or_default()
    );
    eprintln!("{text}");
    // The scenario button reached the simulator from the server side, with the key (the
    // simulator refuses a scenario change without it).
    let status = get(sim_port, "/scenario/status", "");
    assert!(status.contains("\"scenario\":\"degrading\""), "{status}");
    let _ = std::fs::remove_dir_all(&dir);
}
