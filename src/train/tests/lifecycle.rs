//! The model lifecycle against the real binaries: hot reload under load (good models
//! swap in, a broken one never serves, no request fails), training jobs through the API
//! (trigger, 409, progress, promotion, cancel, records surviving a restart), nordiqctl's
//! model commands, and the timer's skip when the buffer is not ready.

mod common;

use common::{history, Daemon, TempDir, KEY, TRAIN};
use nordiq_core::config::Config;
use nordiq_model::tft::{TftModel, TftShape};
use nordiq_runtime::model_store::{ModelStore, Staging};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const GOOD_A: &str = "tft_good_a";
const GOOD_B: &str = "tft_good_b";
const BROKEN: &str = "tft_broken";

fn ctl_bin() -> PathBuf {
    Path::new(TRAIN).with_file_name("nordiqctl")
}

/// A model directory written through the library: an untrained network (it forecasts
/// like seasonal naive, and finitely), or one whose weights are all NaN (it loads, fits
/// the catalog, and forecasts NaN: only the smoke test can catch it).
fn make_model(models: &Path, config: &Config, id: &str, seed: u64, nan_weights: bool) {
    let model = TftModel::new(
        TftShape::from_config(config, 8, 2, 0.0),
        tch::Device::Cpu,
        seed,
    );
    if nan_weights {
        tch::no_grad(|| {
            for (_, mut v) in model.vs.variables() {
                let _ = v.fill_(f64::NAN);
            }
        });
    }
    let staging = Staging::create(models, id).unwrap();
    model.save(staging.path()).unwrap();
    staging
        .finish(
            &serde_json::json!({ "mase": 1.0, "validation_pinball": 0.1, "tft": { "coverage": 0.8 } }),
            &serde_json::json!({ "finished": "2026-11-28T00:00:00Z" }),
        )
        .unwrap();
}

fn servers(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("ppweb{i:03}")).collect()
}

fn feed_warm(daemon: &Daemon, names: &[String], hours: i64) {
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let (status, body) = daemon.http("POST", "/feed/data", &history(&refs, hours));
    assert_eq!(status, 200, "{body}");
}

/// Waits until `/admin/model-info` counts `n` reloads in all.
fn wait_reloads(daemon: &Daemon, n: u64) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, info) = daemon.http("GET", "/admin/model-info", "");
        let done =
            info["reloads_ok"].as_u64().unwrap_or(0) + info["reloads_failed"].as_u64().unwrap_or(0);
        if done >= n {
            return info;
        }
        assert!(
            Instant::now() < deadline,
            "reload {n} never finished: {info}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn reloads_under_load_never_fail_a_request_or_serve_a_broken_model() {
    let dir = TempDir::new("reload-load");
    let port = common::free_port();
    let config_path = common::write_small_config(dir.path(), port, "");
    let config = Config::load(&config_path).unwrap();
    let models = dir.path().join("state/models");
    make_model(&models, &config, GOOD_A, 1, false);
    make_model(&models, &config, GOOD_B, 2, false);
    make_model(&models, &config, BROKEN, 3, true);
    let store = ModelStore::new(&models);
    store.promote(GOOD_A).unwrap();

    let daemon = Arc::new(Daemon::start(dir.path(), &config_path, port));
    let names = servers(8); // history() offsets each server by 5 %: 8 stay in range
    feed_warm(&daemon, &names, 30);
    let (status, _) = daemon.http("POST", "/admin/refresh", "");
    assert_eq!(status, 200);
    let (_, current) = daemon.http("GET", "/predictions/current", "");
    assert_eq!(current["model_id"], GOOD_A);
    assert_eq!(current["servers"]["ppweb000"]["method"], "tft");

    // Load: readers of the forecast answers and a writer feeding fresh samples.
    let stop = Arc::new(AtomicBool::new(false));
    let requests = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = Arc::new(Mutex::new(HashSet::<String>::new()));
    let mut workers = Vec::new();
    for reader in 0..3 {
        let (stop, requests, failures, seen) = (
            Arc::clone(&stop),
            Arc::clone(&requests),
            Arc::clone(&failures),
            Arc::clone(&seen),
        );
        workers.push(std::thread::spawn(move || {
            let paths = [
                "/predictions/current",
                "/predictions/ppweb005",
                "/alerts/active",
            ];
            let mut i = reader;
            while !stop.load(Ordering::Relaxed) {
                let path = paths[i % paths.len()];
                i += 1;
                let (status, body) = common::http(port, "GET", path, "");
                requests.fetch_add(1, Ordering::Relaxed);
                let model = serde_json::from_str::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v["model_id"].as_str().map(str::to_string));
                match (status, model) {
                    (200, Some(m)) if m == GOOD_A || m == GOOD_B => {
                        seen.lock().unwrap().insert(m);
                    }
                    (status, m) => failures
                        .lock()
                        .unwrap()
                        .push(format!("GET {path}: {status}, model {m:?}")),
                }
            }
        }));
    }
    {
        let (stop, requests, failures) = (
            Arc::clone(&stop),
            Arc::clone(&requests),
            Arc::clone(&failures),
        );
        let names = names.clone();
        workers.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let now = nordiq_core::timefmt::now_ms() / 1000;
                let body: String = names
                    .iter()
                    .map(|s| {
                        format!("{{\"timestamp\":{now},\"server_name\":\"{s}\",\"cpu_user_pct\":42.5,\"mem_used_pct\":55}}\n")
                    })
                    .collect();
                let (status, answer) = common::http(port, "POST", "/feed/data", &body);
                requests.fetch_add(1, Ordering::Relaxed);
                if status != 200 {
                    failures
                        .lock()
                        .unwrap()
                        .push(format!("POST /feed/data: {status} {answer}"));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }));
    }

    // 20 reloads through A → B → broken, alternating the API and SIGHUP.
    let rotation = [GOOD_B, BROKEN, GOOD_A];
    let mut serving = GOOD_A;
    let mut durations = Vec::new();
    for i in 0..20 {
        let target = rotation[i % rotation.len()];
        store.promote(target).unwrap();
        let outcome = if i % 2 == 0 {
            let (status, outcome) = daemon.http("POST", "/admin/reload-model", "");
            let expected = if target == BROKEN { 422 } else { 200 };
            assert_eq!(status, expected, "reload {i} of {target}: {outcome}");
            outcome
        } else {
            daemon.signal(libc::SIGHUP);
            wait_reloads(&daemon, i as u64 + 1)["last_reload"].clone()
        };
        if target == BROKEN {
            assert_eq!(outcome["ok"], false, "{outcome}");
            let error = outcome["error"].as_str().unwrap();
            assert!(error.contains("not finite"), "{error}");
            assert_eq!(outcome["serving"], serving, "the old model keeps serving");
        } else {
            assert_eq!(outcome["ok"], true, "{outcome}");
            assert_eq!(outcome["serving"], target);
            assert_eq!(outcome["smoke_real"], true, "smoke-tested on live windows");
            serving = target;
        }
        durations.push(outcome["duration_ms"].as_f64().unwrap());
        std::thread::sleep(Duration::from_millis(150));
    }
    // Model ids in answers change with the refresh after a reload; give it a moment.
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    let failures = failures.lock().unwrap();
    assert!(
        failures.is_empty(),
        "{} of {} requests failed, e.g. {:?}",
        failures.len(),
        requests.load(Ordering::Relaxed),
        &failures[..failures.len().min(5)]
    );
    assert!(requests.load(Ordering::Relaxed) > 100);
    let seen = seen.lock().unwrap();
    assert!(
        seen.contains(GOOD_A) && seen.contains(GOOD_B),
        "both good models served: {seen:?}"
    );
    durations.sort_by(f64::total_cmp);
    eprintln!(
        "20 reloads: median {:.1} ms, max {:.1} ms",
        durations[10], durations[19]
    );

    // An incomplete directory and an unknown id are refused too; nothing changes.
    std::fs::create_dir_all(models.join("tft_half")).unwrap();
    std::fs::write(models.join("tft_half/config.json"), "{}").unwrap();
    let (status, outcome) = daemon.http("POST", "/admin/reload-model?model_path=tft_half", "");
    assert_eq!(status, 422, "{outcome}");
    assert!(outcome["error"]
        .as_str()
        .unwrap()
        .contains("weights.safetensors"));
    let (status, _) = daemon.http("POST", "/admin/reload-model?model_path=tft_nope", "");
    assert_eq!(status, 404);
    let (_, info) = daemon.http("GET", "/admin/model-info", "");
    assert_eq!(info["serving"], serving, "{info}");
    assert_eq!(info["reloads_failed"], 8, "7 broken + tft_half: {info}");
    assert_eq!(info["shape"]["hidden"], 8);
    let (_, listed) = daemon.http("GET", "/admin/models", "");
    assert_eq!(listed["models"].as_array().unwrap().len(), 4, "{listed}");
}

fn wait_job(
    daemon: &Daemon,
    job: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let (status, record) =
            daemon.http("GET", &format!("/admin/training-status?job_id={job}"), "");
        assert_eq!(status, 200, "{record}");
        if done(&record) {
            return record;
        }
        assert!(
            Instant::now() < deadline,
            "job {job} stuck: {record}\n{}",
            daemon.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn ctl(config: &Path, args: &[&str]) -> (i32, String) {
    nordiq_testkit::run(
        Command::new(ctl_bin())
            .arg("--config")
            .arg(config)
            .args(args)
            .env("NORDIQ_API_KEY", KEY),
    )
}

#[test]
fn training_jobs_through_the_api_and_nordiqctl() {
    let dir = TempDir::new("jobs-api");
    let port = common::free_port();
    let extra = common::process_training(dir.path());
    let config = common::write_small_config(dir.path(), port, &extra);
    let mut daemon = Daemon::start(dir.path(), &config, port);
    let names = servers(3);
    feed_warm(&daemon, &names, 12 * 24);
    let (_, stats) = daemon.http("GET", "/admin/training-stats", "");
    assert_eq!(stats["jobs"]["total"], 0, "{stats}");
    // Before the first job, v2.3's answer: idle.
    let (status, idle) = daemon.http("GET", "/admin/training-status", "");
    assert_eq!(
        (status, idle["status"].as_str()),
        (200, Some("idle")),
        "{idle}"
    );
    let (status, _) = daemon.http("GET", "/admin/training-status?job_id=job_nope", "");
    assert_eq!(status, 404, "an unknown job");

    // A job: 202, a second trigger meanwhile is 409; it trains, is promoted (forced: two
    // epochs need not beat the best baseline; that rule has its own test in
    // train_and_serve.rs) and the daemon reloads to it.
    let (status, started) = daemon.http("POST", "/admin/trigger-training?epochs=2&force=true", "");
    assert_eq!(status, 202, "{started}");
    let job = started["job_id"].as_str().unwrap().to_string();
    assert_eq!(started["launcher"], "process");
    let (status, busy) = daemon.http("POST", "/admin/trigger-training", "");
    assert_eq!(status, 409, "{busy}");
    let record = wait_job(&daemon, &job, |r| {
        r["status"] != "queued" && r["status"] != "running"
    });
    assert_eq!(
        record["status"],
        "completed",
        "{record}\n{}",
        daemon.log_text()
    );
    assert_eq!(record["progress"], 100.0);
    assert_eq!(record["epochs"], 2);
    assert!(record["validation_loss"].as_f64().unwrap().is_finite());
    assert_eq!(record["promotion"]["promoted"], true, "{record}");
    let first = record["model_id"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, info) = daemon.http("GET", "/admin/model-info", "");
        if info["serving"] == first.as_str() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "never reloaded to {first}: {info}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // nordiqctl: models, model-info, a job that must compare with the current model.
    let (code, text) = ctl(&config, &["models"]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains(&format!("* {first}")), "{text}");
    let (code, text) = ctl(&config, &["model-info"]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains(&format!("serving      {first}")), "{text}");
    // Model ids have a one-second resolution.
    std::thread::sleep(Duration::from_millis(1100));
    let (code, text) = ctl(&config, &["train", "--epochs", "1"]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("promotion"), "{text}");
    let (_, second) = daemon.http("GET", "/admin/training-status", "");
    assert_eq!(second["status"], "completed", "{second}");
    let promotion = &second["promotion"];
    assert_eq!(promotion["current_model"], first.as_str(), "{second}");
    let (candidate, current) = (
        promotion["candidate_loss"].as_f64().unwrap(),
        promotion["current_loss"].as_f64().unwrap(),
    );
    // Promoted only if it beats the current model and the best baseline.
    let beats_baseline = promotion["candidate_mase"].as_f64().unwrap()
        < promotion["best_baseline_mase"].as_f64().unwrap();
    assert_eq!(
        promotion["promoted"],
        candidate < current && beats_baseline,
        "{second}"
    );
    let second_id = second["model_id"].as_str().unwrap().to_string();
    let store = ModelStore::new(dir.path().join("state/models"));
    let expect_current = if candidate < current && beats_baseline {
        &second_id
    } else {
        &first
    };
    assert_eq!(store.current().as_deref(), Some(expect_current.as_str()));

    // Promote and roll back by hand through nordiqctl; the daemon follows each time.
    let other = if expect_current == &first {
        &second_id
    } else {
        &first
    };
    let (code, text) = ctl(&config, &["promote", other]);
    assert_eq!(code, 0, "{text}");
    let (_, info) = daemon.http("GET", "/admin/model-info", "");
    assert_eq!(info["serving"], other.as_str(), "{info}");
    let (code, text) = ctl(&config, &["rollback"]);
    assert_eq!(code, 0, "{text}");
    let (_, info) = daemon.http("GET", "/admin/model-info", "");
    assert_eq!(info["serving"], expect_current.as_str(), "{info}");
    assert_eq!(info["previous"], other.as_str(), "{info}");

    // Cancel: a long job stops after its first epoch, leaves no model directory.
    let (code, text) = ctl(&config, &["train", "--epochs", "500", "--no-wait"]);
    assert_eq!(code, 0, "{text}");
    let (_, running) = daemon.http("GET", "/admin/training-status", "");
    let long = running["job_id"].as_str().unwrap().to_string();
    wait_job(&daemon, &long, |r| r["epoch"].as_u64().unwrap_or(0) >= 1);
    let (code, text) = ctl(&config, &["train", "cancel"]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("Cancelled"), "{text}");
    let (_, record) = daemon.http("GET", &format!("/admin/training-status?job_id={long}"), "");
    assert_eq!(record["status"], "cancelled", "{record}");
    assert!(
        record["error"].is_null(),
        "stopped by SIGTERM, not killed: {record}"
    );
    let dirs: Vec<String> = std::fs::read_dir(store.dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(dirs.len(), 4, "two models, current, previous: {dirs:?}");
    let (status, _) = daemon.http("POST", "/admin/cancel-training", "");
    assert_eq!(status, 409, "nothing left to cancel");

    // Job records survive a restart of the daemon.
    daemon.signal(libc::SIGTERM);
    daemon.wait_exit();
    let daemon = Daemon::start(dir.path(), &config, port);
    let (_, record) = daemon.http("GET", &format!("/admin/training-status?job_id={long}"), "");
    assert_eq!(record["status"], "cancelled", "{record}");
    let (_, stats) = daemon.http("GET", "/admin/training-stats", "");
    assert_eq!(stats["jobs"]["total"], 3, "{stats}");
    assert_eq!(stats["jobs"]["completed"], 2, "{stats}");
    assert_eq!(stats["jobs"]["cancelled"], 1, "{stats}");
    let (_, info) = daemon.http("GET", "/admin/model-info", "");
    assert_eq!(info["serving"], expect_current.as_str(), "{info}");
    let (code, text) = ctl(&config, &["reload"]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains(&format!("serving {expect_current}")),
        "{text}"
    );
    let (code, text) = ctl(&config, &["reload", "--model", "tft_nope"]);
    assert_ne!(code, 0, "{text}");
    assert!(text.contains("no model `tft_nope`"), "{text}");
    let (code, text) = ctl(&config, &["train", "status", "--job", &long]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("Cancelled"), "{text}");
}

#[test]
fn the_timer_run_skips_when_the_buffer_is_not_ready() {
    let dir = TempDir::new("timer-skip");
    let config = common::write_small_config(dir.path(), common::free_port(), "");
    let out = Command::new(TRAIN)
        .arg("--config")
        .arg(&config)
        .args(["--job", "next", "--trigger", "timer", "--skip-unready"])
        .env_remove("NOTIFY_SOCKET")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("skipped: the buffer is not ready"),
        "{stderr}"
    );
    let jobs = nordiq_runtime::job_store::JobStore::new(dir.path().join("state/jobs"));
    let record = jobs.latest().unwrap();
    assert_eq!(record.trigger, "timer");
    assert_eq!(record.status, nordiq_core::job_record::JobStatus::Completed);
    assert!(record.stage.starts_with("skipped:"), "{}", record.stage);
    assert!(record.model_id.is_none());
    assert!(!dir.path().join("state/models/current").exists());
}
