//! The real binary over loopback: config errors, auth and key precedence, ingest rules,
//! forecasts, alerts.

mod common;

use common::*;
use std::process::Command;

fn run_to_exit(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let mut cmd = Command::new(BIN);
    clean_env(&mut cmd).args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    nordiq_testkit::run(&mut cmd)
}

#[test]
fn config_errors_exit_78_naming_file_line_and_key() {
    let dir = TempDir::new("badconfig");
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "[server]\nlisten = \"127.0.0.1:1\"\n\n[model]\nhorizon_steps = 0\n",
    )
    .unwrap();
    let (code, text) = run_to_exit(
        &["--config", path.to_str().unwrap()],
        &[("NORDIQ_API_KEY", KEY)],
    );
    assert_eq!(code, 78, "{text}");
    assert!(
        text.contains(&format!("{}:5: model.horizon_steps", path.display())),
        "{text}"
    );

    std::fs::write(&path, "[server]\nlisten = \"127.0.0.1:1\"\nthreads = 4\n").unwrap();
    let (code, text) = run_to_exit(
        &["--check-config", "--config", path.to_str().unwrap()],
        &[("NORDIQ_API_KEY", KEY)],
    );
    assert_eq!(code, 78);
    assert!(text.contains(":3:") && text.contains("threads"), "{text}");

    let (code, text) = run_to_exit(
        &[
            "--config",
            dir.path().join("missing.toml").to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(code, 78);
    assert!(text.contains("missing.toml"), "{text}");

    // NORDIQ_CONFIG is used when --config is absent.
    let (code, text) = run_to_exit(
        &["--check-config"],
        &[
            ("NORDIQ_CONFIG", path.to_str().unwrap()),
            ("NORDIQ_API_KEY", KEY),
        ],
    );
    assert_eq!(code, 78, "{text}");
    assert!(text.contains("bad.toml"), "{text}");

    let (code, _) = run_to_exit(&["--no-such-flag"], &[]);
    assert_eq!(code, 64);
}

#[test]
fn check_config_accepts_the_shipped_config() {
    let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/../../etc/nordiq/nordiq.toml");
    let (code, text) = run_to_exit(
        &["--check-config", "--config", shipped],
        &[("NORDIQ_API_KEY", KEY)],
    );
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("14 metrics"), "{text}");
    assert!(text.contains("API key from $NORDIQ_API_KEY"), "{text}");
    assert!(!text.contains(KEY), "the key itself is never printed");
}

#[test]
fn refuses_to_start_without_a_key_unless_anonymous() {
    let dir = TempDir::new("nokey");
    let port = free_port();
    let config = write_config(dir.path(), port, "");
    let (code, text) = run_to_exit(&["--config", config.to_str().unwrap()], &[]);
    assert_eq!(code, 78, "{text}");
    assert!(text.contains("no API key"), "{text}");

    let config = write_config(dir.path(), port, "");
    std::fs::write(
        &config,
        std::fs::read_to_string(&config)
            .unwrap()
            .replace("[auth]\n", "[auth]\nallow_anonymous = true\n"),
    )
    .unwrap();
    let daemon = Daemon::start(dir.path(), &config, port, &[]);
    assert_eq!(daemon.client(None).get("/status").status, 200);
}

#[test]
fn auth_on_everything_but_health() {
    let dir = TempDir::new("auth");
    let port = free_port();
    let config = write_config(dir.path(), port, "");
    let daemon = Daemon::start(dir.path(), &config, port, &[("NORDIQ_API_KEY", KEY)]);
    let none = daemon.client(None);
    let wrong = daemon.client(Some("wrong-key-0123456789"));
    let right = daemon.client(Some(KEY));
    assert_eq!(none.get("/health").status, 200);
    for path in [
        "/status",
        "/predictions/current",
        "/alerts/active",
        "/predictions/ppweb001",
    ] {
        let a = none.get(path);
        assert_eq!(a.status, 401, "{path}");
        let body: serde_json::Value = a.json().expect("401 body is JSON");
        assert!(body["error"].as_str().unwrap().contains("X-API-Key"));
        assert_eq!(wrong.get(path).status, 401, "{path}");
    }
    assert_eq!(
        none.post("/feed/data", "application/json", "{\"records\":[]}")
            .status,
        401
    );
    assert_eq!(right.get("/status").status, 200);
    assert_eq!(right.get("/predictions/current").status, 200);
    assert!(
        !daemon.log_text().contains(KEY),
        "the key never reaches the log"
    );
}

#[test]
fn key_precedence_env_credential_file_legacy() {
    let dir = TempDir::new("precedence");
    let creds = dir.path().join("creds");
    std::fs::create_dir_all(&creds).unwrap();
    std::fs::write(creds.join("api-key"), "credential-key-0123456789").unwrap();
    std::fs::write(dir.path().join("api-key"), "file-key-0123456789\n").unwrap();
    let cases: [(&[(&str, &str)], &str); 4] = [
        (
            &[
                ("NORDIQ_API_KEY", "env-key-0123456789"),
                ("CREDENTIALS_DIRECTORY", creds.to_str().unwrap()),
                ("TFT_API_KEY", "legacy-key-0123456789"),
            ],
            "env-key-0123456789",
        ),
        (
            &[
                ("CREDENTIALS_DIRECTORY", creds.to_str().unwrap()),
                ("TFT_API_KEY", "legacy-key-0123456789"),
            ],
            "credential-key-0123456789",
        ),
        (
            &[("TFT_API_KEY", "legacy-key-0123456789")],
            "file-key-0123456789",
        ),
        (
            &[("TFT_API_KEY", "legacy-key-0123456789")],
            "legacy-key-0123456789",
        ),
    ];
    for (i, (env, expected)) in cases.iter().enumerate() {
        if i == 3 {
            std::fs::remove_file(dir.path().join("api-key")).unwrap();
        }
        let port = free_port();
        let config = write_config(dir.path(), port, "");
        let daemon = Daemon::start(dir.path(), &config, port, env);
        assert_eq!(
            daemon.client(Some(expected)).get("/status").status,
            200,
            "case {i}"
        );
        for other in [
            "env-key-0123456789",
            "credential-key-0123456789",
            "file-key-0123456789",
            "legacy-key-0123456789",
        ] {
            if other != *expected {
                assert_eq!(
                    daemon.client(Some(other)).get("/status").status,
                    401,
                    "case {i}: {other} must not work"
                );
            }
        }
    }
}

fn feed(client: &Client, body: &str, query: &str) -> (u16, serde_json::Value) {
    let a = client.post(
        &format!("/feed/data{query}"),
        "application/json",
        body.to_string(),
    );
    (
        a.status.as_u16(),
        a.json().unwrap_or(serde_json::Value::Null),
    )
}

#[test]
fn ingest_validation_mixed_batches_and_limits() {
    let dir = TempDir::new("ingest");
    let port = free_port();
    let config = write_config(dir.path(), port, "[window]\nmax_servers = 3\n");
    // Small limits so the caps are testable: 3 servers, 64 KiB bodies.
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "shutdown_timeout_seconds = 5\n",
        "shutdown_timeout_seconds = 5\nmax_body_bytes = 65536\n",
    );
    std::fs::write(&config, text).unwrap();
    let daemon = Daemon::start(dir.path(), &config, port, &[("NORDIQ_API_KEY", KEY)]);
    let c = daemon.client(Some(KEY));
    let now = nordiq_core::timefmt::now_ms() / 1000;

    // Every bad-input class, one record each, plus one good record.
    let body = format!(
        r#"{{"records":[
        {{"timestamp":{now},"server_name":"ppweb001","cpu_user_pct":10}},
        {{"timestamp":{now},"server_name":"ppweb001","cpu_user_pct":NaN}},
        {{"timestamp":{now},"server_name":"ppweb001","cpu_user_pct":1e999}},
        {{"timestamp":{now},"server_name":"ppweb001","mem_used_pct":120}},
        {{"server_name":"ppweb001","cpu_user_pct":1}},
        {{"timestamp":"2019-13-45","server_name":"ppweb001","cpu_user_pct":1}},
        {{"timestamp":{future},"server_name":"ppweb001","cpu_user_pct":1}},
        {{"timestamp":{now},"server_name":"ppweb001","gpu_util":1}}
    ]}}"#,
        future = now + 86_400
    );
    let body = body.replace("1e999", "Infinity");
    let (status, answer) = feed(&c, &body, "");
    assert_eq!(status, 422, "{answer}");
    assert_eq!(answer["accepted"], 0);
    assert_eq!(answer["policy"], "reject_all");
    let fields: Vec<(u64, String)> = answer["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["index"].as_u64().unwrap(),
                e["field"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        fields,
        vec![
            (1, "cpu_user_pct".into()),
            (2, "cpu_user_pct".into()),
            (3, "mem_used_pct".into()),
            (4, "timestamp".into()),
            (5, "timestamp".into()),
            (6, "timestamp".into()),
            (7, "gpu_util".into()),
        ]
    );
    // Nothing was applied under reject_all …
    assert_eq!(c.json("/status")["samples_total"], 0);
    // … and with ?on_error=accept_valid the good record goes in.
    let (status, answer) = feed(&c, &body, "?on_error=accept_valid");
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["accepted"], 1);
    assert_eq!(answer["rejected_records"], 7);
    assert_eq!(c.json("/status")["samples_total"], 1);

    // Malformed body: 400 with the parser's position.
    let (status, answer) = feed(&c, "{\"records\": [", "");
    assert_eq!(status, 400);
    assert!(
        answer["error"].as_str().unwrap().contains("line"),
        "{answer}"
    );

    // Body over server.max_body_bytes: 413.
    let big = format!("{{\"records\":[], \"pad\":\"{}\"}}", "x".repeat(70_000));
    assert_eq!(feed(&c, &big, "").0, 413);

    // Server cap: 3 servers; a batch naming 3 new ones (4 in all) is refused whole.
    let rec = |s: &str| format!(r#"{{"timestamp":{now},"server_name":"{s}","cpu_user_pct":5}}"#);
    let (status, answer) = feed(
        &c,
        &format!("[{},{},{}]", rec("a1"), rec("a2"), rec("a3")),
        "",
    );
    assert_eq!(status, 422, "{answer}");
    assert!(answer["rejected"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("max_servers"));
    let (status, _) = feed(&c, &format!("[{},{}]", rec("a1"), rec("a2")), "");
    assert_eq!(status, 200);
    assert_eq!(c.json("/status")["servers"], 3);

    // NDJSON: per-line errors with their line index.
    let nd = format!("{}\n{{broken\n{}\n", rec("a1"), rec("a2"));
    let a = c.post(
        "/feed/data?on_error=accept_valid",
        "application/x-ndjson",
        nd,
    );
    let answer: serde_json::Value = a.json().unwrap();
    assert_eq!(a.status, 200, "{answer}");
    assert_eq!(answer["accepted"], 2);
    assert_eq!(answer["rejected"][0]["index"], 1);
    assert_eq!(answer["rejected"][0]["field"], "(line)");
}

#[test]
fn forecasts_risk_and_alerts_from_fed_history() {
    let dir = TempDir::new("forecast");
    let port = free_port();
    let config = write_config(dir.path(), port, "");
    let daemon = Daemon::start(dir.path(), &config, port, &[("NORDIQ_API_KEY", KEY)]);
    let c = daemon.client(Some(KEY));
    // 30 steps of 5 min: enough for forecasts (min 12), not warm (encoder 288).
    // ppdb001 is pinned near 99 % CPU: critical. ppweb001 idles at 20 %.
    let body = ndjson_history(&["ppweb001", "ppdb001"], 30, 300, |i, _| {
        if i == 0 {
            20.0
        } else {
            99.0
        }
    });
    let a = c.post("/feed/data", "application/x-ndjson", body);
    assert_eq!(a.status, 200, "{}", a.text());
    let refresh = c.post("/admin/refresh", "application/json", "");
    assert_eq!(refresh.status, 200);
    let refresh: serde_json::Value = refresh.json().unwrap();
    assert_eq!(refresh["servers"], 2);

    let status = c.json("/status");
    assert_eq!(status["servers"], 2);
    assert_eq!(status["forecast_servers"], 2);
    assert_eq!(status["warm_servers"], 0);
    let remaining = status["warmup"][0]["warmup_remaining_steps"]
        .as_u64()
        .unwrap();
    assert!((258..=259).contains(&remaining), "{remaining}");

    let current = c.json("/predictions/current");
    assert_eq!(current["model_id"], "baseline:auto");
    assert_eq!(current["fleet"]["servers"], 2);
    assert_eq!(current["fleet"]["levels"]["critical"], 1);
    assert_eq!(current["fleet"]["top_risks"][0]["server"], "ppdb001");
    let web = &current["servers"]["ppweb001"];
    assert_eq!(web["profile"], "web_api");
    assert_eq!(web["level"], "healthy");
    assert_eq!(
        web["method"], "ets",
        "history shorter than a season falls back to fitted smoothing"
    );
    let p50 = web["metrics"]["cpu_user_pct"]["forecast"]["p50"][0]
        .as_f64()
        .unwrap();
    assert!((p50 - 20.0).abs() < 0.5, "{p50}");

    // The outlook: ppdb001 at 99 % CPU (critical at 95) is likely to cross within 30 min,
    // ppweb001 at 20 % is not, and "within 8 h" is never below "within 30 min".
    let env = &current["environment"];
    assert_eq!(env["horizons_minutes"], serde_json::json!([30, 480]));
    let p = |s: &str, h: usize| env["servers"][s]["probability"][h].as_f64().unwrap();
    assert!(p("ppdb001", 0) > 0.5, "{env}");
    assert!(p("ppweb001", 0) < 0.01, "{env}");
    assert!(p("ppdb001", 1) >= p("ppdb001", 0) && p("ppweb001", 1) >= p("ppweb001", 0));
    assert_eq!(env["servers"]["ppdb001"]["metric"][0], "cpu_user_pct");
    let any = env["fleet"][0]["probability_any"].as_f64().unwrap();
    assert!(any >= p("ppdb001", 0), "{env}");

    let one = c.json("/predictions/ppdb001");
    assert_eq!(one["level"], "critical");
    let cpu = &one["metrics"]["cpu_user_pct"];
    assert_eq!(cpu["quantiles"]["p50"].as_array().unwrap().len(), 96);
    assert!(
        cpu["quantiles"]["p90"][0].as_f64().unwrap() <= 100.0,
        "clamped to the catalog range"
    );

    let alerts = c.json("/alerts/active");
    assert_eq!(alerts["alerts"].as_array().unwrap().len(), 1);
    assert_eq!(alerts["alerts"][0]["server"], "ppdb001");
    assert_eq!(alerts["alerts"][0]["metrics"][0]["metric"], "cpu_user_pct");
    let events = alerts["recent_events"].as_array().unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["kind"], "escalation");
    assert_eq!(events[0]["to"], "critical");

    // The cache is served without recomputation: two reads give the same bytes.
    assert_eq!(
        c.get("/predictions/current").body,
        c.get("/predictions/current").body
    );

    let missing = c.get("/predictions/nobody");
    assert_eq!(missing.status, 404);
    assert!(missing.text().contains("unknown server"));

    // ppdb001 recovers: the next refresh resolves the alert.
    let body = ndjson_history(&["ppdb001"], 1, 300, |_, _| 10.0);
    assert_eq!(
        c.post("/feed/data", "application/x-ndjson", body).status,
        200
    );
    c.post("/admin/refresh", "application/json", "");
    let alerts = c.json("/alerts/active");
    let kinds: Vec<&str> = alerts["recent_events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.len() >= 2 && kinds[1] != "escalation", "{kinds:?}");
}

/// The anomaly score end to end at 2-second steps: steady steps are judged inside the band
/// forecast for them, a jump to 90 % CPU is "anomalous now" (API, alerts, /metrics), and
/// the score falls back once the server is steady again.
#[test]
fn anomaly_scores_judge_each_step_against_the_forecast_made_for_it() {
    let dir = TempDir::new("anomaly");
    let port = free_port();
    let config = write_config(
        dir.path(),
        port,
        "[model]\nstep_seconds = 2\nhorizon_steps = 60\nencoder_steps = 30\n\n\
         [forecast]\nseason_seconds = 60\nmin_history_steps = 12\nsummary_horizons_minutes = [1, 2]\n\n\
         [risk]\nlookahead_minutes = 1\n\n[prometheus]\nhorizons_minutes = [1]\n\n\
         [anomaly]\nsmoothing_steps = 1\nmetrics_needed = 1\nthreshold = 1.0\noutlook_minutes = [1, 2]\n",
    );
    let daemon = Daemon::start(dir.path(), &config, port, &[("NORDIQ_API_KEY", KEY)]);
    let c = daemon.client(Some(KEY));
    let feed = |value: f64| {
        let body = ndjson_history(&["ppweb001"], 1, 2, |_, _| value);
        assert_eq!(
            c.post("/feed/data", "application/x-ndjson", body).status,
            200
        );
    };
    let body = ndjson_history(&["ppweb001"], 60, 2, |_, _| 20.0);
    assert_eq!(
        c.post("/feed/data", "application/x-ndjson", body).status,
        200
    );
    assert_eq!(c.post("/admin/refresh", "application/json", "").status, 200);
    let anomaly = || c.json("/predictions/ppweb001")["anomaly"].clone();
    // Feed a steady 20 % every half second until a few steps have been judged.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let judged = |a: &serde_json::Value| a["judged_steps"].as_u64().unwrap_or(0);
    loop {
        feed(20.0);
        let a = anomaly();
        if judged(&a) >= 3 {
            assert_eq!(
                a["anomalous"], false,
                "a steady server is not anomalous: {a}"
            );
            assert!(a["score"].as_f64().unwrap() < 1.0, "{a}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no step judged: {a}");
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    // A jump: the closed step is far above the band forecast for it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let alerts = loop {
        feed(90.0);
        let alerts = c.json("/alerts/active");
        if !alerts["anomalies"].as_array().unwrap().is_empty() {
            break alerts;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never anomalous: {}",
            anomaly()
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    };
    let a = &alerts["anomalies"][0];
    assert_eq!(a["kind"], "anomaly");
    assert_eq!(a["server"], "ppweb001");
    assert!(a["score"].as_f64().unwrap() >= 1.0, "{a}");
    let metrics: Vec<&str> = a["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["metric"].as_str().unwrap())
        .collect();
    assert!(metrics.contains(&"cpu_user_pct"), "{a}");
    let cpu = a["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["metric"] == "cpu_user_pct")
        .unwrap();
    assert!(cpu["expected_high"].as_f64().unwrap() < 50.0, "{cpu}");
    let one = c.json("/predictions/ppweb001");
    assert_eq!(one["anomaly"]["anomalous"], true);
    assert!(
        one["metrics"]["cpu_user_pct"]["anomaly_score"]
            .as_f64()
            .unwrap()
            >= 1.0
    );
    let text = c.get("/metrics").text();
    let line = text
        .lines()
        .find(|l| l.starts_with("nordiq_anomaly_score{server=\"ppweb001\"}"))
        .expect("nordiq_anomaly_score in /metrics");
    let score: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(score >= 1.0, "{line}");
    assert!(text.contains("nordiq_anomalous_servers 1\n"), "{text}");
    // Back to normal: with smoothing over one step the score falls below the threshold.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        feed(20.0);
        if anomaly()["anomalous"] == false {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still anomalous: {}",
            anomaly()
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}

/// Live accuracy end to end at 1-second steps and a 1-minute horizon: the served forecasts
/// (and the best baseline's) are scored once their horizon has closed, shown in
/// model-info and /metrics, and still there after a restart.
#[test]
fn live_accuracy_scores_served_forecasts_and_survives_a_restart() {
    let dir = TempDir::new("live");
    let port = free_port();
    let config = write_config(
        dir.path(),
        port,
        "[model]\nstep_seconds = 1\nhorizon_steps = 60\nencoder_steps = 30\n\n\
         [forecast]\nseason_seconds = 30\nmin_history_steps = 12\nsummary_horizons_minutes = [1]\n\n\
         [risk]\nlookahead_minutes = 1\n\n[prometheus]\nhorizons_minutes = [1]\n\n\
         [anomaly]\noutlook_minutes = [1]\n\n[live]\norigin_every_steps = 1\nmax_servers = 10\n",
    );
    let mut daemon = Daemon::start(dir.path(), &config, port, &[("NORDIQ_API_KEY", KEY)]);
    let c = daemon.client(Some(KEY));
    // A 30-step wave with a little deterministic noise of period 13: an exactly periodic
    // series makes the seasonal baseline perfect and MASE undefined (its scale is 0), which
    // is what a run whose feeder kept perfect time scored.
    let wave = |t: usize| {
        30.0 + 10.0 * ((t % 30) as f64 / 30.0 * std::f64::consts::TAU).sin()
            + ((t * 7919) % 13) as f64 * 0.1
    };
    let body = ndjson_history(&["ppweb001", "ppdb001"], 90, 1, |_, t| wave(t));
    assert_eq!(
        c.post("/feed/data", "application/x-ndjson", body).status,
        200
    );
    let started = std::time::Instant::now();
    let deadline = started + std::time::Duration::from_secs(120);
    let info = loop {
        let t = 90 + started.elapsed().as_secs() as usize;
        let body = ndjson_history(&["ppweb001", "ppdb001"], 1, 1, |_, _| wave(t));
        assert_eq!(
            c.post("/feed/data", "application/x-ndjson", body).status,
            200
        );
        let info = c.json("/admin/model-info");
        if info["live"]["day"]["served"]["windows"]
            .as_u64()
            .unwrap_or(0)
            >= 2
        {
            break info;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "nothing scored: {}",
            info["live"]
        );
        std::thread::sleep(std::time::Duration::from_millis(300));
    };
    let live = &info["live"];
    assert_eq!(live["served"], info["serving"]);
    assert!(
        live["baseline"].as_str().unwrap().starts_with("baseline:"),
        "{live}"
    );
    for who in ["served", "baseline"] {
        let s = &live["day"][who];
        assert!(
            s["mase"].as_f64().is_some() && s["pinball"].as_f64().is_some(),
            "{live}"
        );
        let coverage = s["coverage"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&coverage), "{live}");
    }
    assert_eq!(
        live["week"]["served"]["windows"],
        live["day"]["served"]["windows"]
    );
    let text = c.get("/metrics").text();
    assert!(
        text.contains("nordiq_live_mase{forecaster=\"served\",window=\"1d\"}"),
        "{text}"
    );
    // A restart keeps the scored bins.
    daemon.signal(libc::SIGTERM);
    assert!(daemon
        .wait_exit(std::time::Duration::from_secs(20))
        .is_some());
    assert!(dir.path().join("state/live-accuracy.json").is_file());
    let daemon = Daemon::start(dir.path(), &config, port, &[("NORDIQ_API_KEY", KEY)]);
    let after = daemon.client(Some(KEY)).json("/admin/model-info");
    assert!(
        after["live"]["week"]["served"]["windows"].as_u64().unwrap() >= 2,
        "{}",
        after["live"]
    );
}

#[test]
fn history_from_the_window_and_from_the_buffer() {
    let dir = TempDir::new("historical");
    let port = free_port();
    let config = write_config(dir.path(), port, "");
    let daemon = Daemon::start(dir.path(), &config, port, &[("NORDIQ_API_KEY", KEY)]);
    let c = daemon.client(Some(KEY));
    // 24 steps of 5 min for two servers, value = step index (+100 for the second).
    let body = ndjson_history(&["ppweb001", "ppdb001"], 24, 300, |i, t| {
        (i * 50 + t) as f64 / 2.0
    });
    assert_eq!(
        c.post("/feed/data", "application/x-ndjson", body).status,
        200
    );

    // From the window: the last hour is 12 steps, oldest first.
    let h = c.json("/historical/ppweb001?hours=1");
    assert_eq!(h["steps"], 12);
    assert_eq!(h["step_seconds"], 300);
    let cpu = h["metrics"]["cpu_user_pct"].as_array().unwrap();
    assert_eq!(cpu.len(), 12);
    let values: Vec<f64> = cpu.iter().filter_map(|v| v.as_f64()).collect();
    assert!(values.len() >= 11, "{h}");
    assert!(values.windows(2).all(|w| w[1] > w[0]), "rising: {values:?}");
    assert!(h["metrics"]["disk_usage_pct"].as_array().unwrap()[0].is_null());
    assert_eq!(c.get("/historical/ppnope").status, 404);
    assert_eq!(c.get("/historical/ppweb001?hours=-1").status, 400);

    // From the buffer: CSV with a header, one row per sample, filtered by server.
    let csv = c.get("/historical?servers=ppdb001");
    assert_eq!(csv.status, 200);
    assert_eq!(csv.content_type.as_deref(), Some("text/csv; charset=utf-8"));
    let text = csv.text();
    let mut lines = text.lines();
    assert!(lines
        .next()
        .unwrap()
        .starts_with("timestamp,server_name,profile,cpu_user_pct,"));
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 24);
    assert!(rows.iter().all(|r| r.split(',').nth(1) == Some("ppdb001")));
    let json = c.json("/historical?format=json");
    assert_eq!(json["records"].as_array().unwrap().len(), 48);
    assert!(json["records"][0]["cpu_user_pct"].is_number());
    assert_eq!(c.get("/historical?from=yesterday").status, 400);
    assert_eq!(c.get("/historical?format=xml").status, 400);
    assert_eq!(
        c.get("/historical?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z")
            .status,
        400
    );
}
