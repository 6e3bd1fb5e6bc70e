//! nordiq-metrics against a real nordiq-inference: the simulator backfills (buffer and
//! warm windows), delivers live samples, answers the scenario API with the key, and
//! across an outage of the daemon and a restart of itself spools and then delivers every
//! sample exactly once.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;
use support::{free_port, http, json, sibling, start, wait_port, wait_until, TempDir, METRICS};

fn spool_files(dir: &Path) -> usize {
    std::fs::read_dir(dir.join(".nordiq/spool/metrics"))
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().ends_with(".ndjson"))
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn simulator_backfills_delivers_takes_scenarios_and_loses_nothing_across_outages() {
    let dir = TempDir::new("metrics-sim");
    let (api_port, sim_port) = (free_port(), free_port());
    let inference_log = dir.join("inference.log");
    let start_inference = || {
        let p = start(
            Command::new(sibling("nordiq-inference"))
                .args(["--dev", "--listen", &format!("127.0.0.1:{api_port}")])
                .current_dir(&dir),
            &inference_log,
        );
        wait_port(api_port, &inference_log);
        p
    };
    let inference = start_inference();
    let key = std::fs::read_to_string(dir.join(".nordiq_key"))
        .unwrap()
        .trim()
        .to_string();
    let metrics_log = dir.join("metrics.log");
    let start_metrics = |backfill: &[&str]| {
        start(
            Command::new(METRICS)
                .args([
                    "--dev",
                    "--inference-url",
                    &format!("http://127.0.0.1:{api_port}"),
                    "--interval",
                    "1",
                ])
                .args([
                    "simulate",
                    "--servers",
                    "12",
                    "--seed",
                    "7",
                    "--listen",
                    &format!("127.0.0.1:{sim_port}"),
                ])
                .args(backfill)
                .current_dir(&dir),
            &metrics_log,
        )
    };

    // 1. Backfill: 10 days, all but the daemon's window (8 days by default) into the
    // buffer, the rest to the daemon.
    let metrics = start_metrics(&["--backfill", "10d"]);
    wait_port(sim_port, &metrics_log);
    let status = json(api_port, "/status", &key);
    assert_eq!(status["servers"], 12, "{status}");
    assert_eq!(
        status["warm_servers"], 12,
        "backfill did not warm the windows: {status}"
    );
    let stats = json(api_port, "/admin/training-stats", &key);
    // The Parquet part is the history before the daemon's window (10 d − 8 d); the window
    // itself went through ingest (its log, then Parquet at the next roll).
    let buffered = stats["buffer"]["records"].as_u64().unwrap_or(0);
    assert!(
        buffered >= 12 * 2 * 1440 * 9 / 10,
        "buffer holds {buffered} records: {stats}"
    );
    let first = stats["buffer"]["first_timestamp"].as_str().unwrap();
    let first = nordiq_core::timefmt::parse_rfc3339_ms(first).unwrap();
    let age_days = (nordiq_core::timefmt::now_ms() - first) as f64 / 86_400_000.0;
    assert!(
        (9.9..10.1).contains(&age_days),
        "history starts {age_days} days back"
    );
    let log = std::fs::read_to_string(&metrics_log).unwrap();
    assert!(log.contains("into the buffer"), "{log}");
    // Live samples keep coming, with the profile the fleet gave them.
    let before = json(api_port, "/status", &key)["samples_total"]
        .as_u64()
        .unwrap();
    wait_until("live samples", Duration::from_secs(20), || {
        json(api_port, "/status", &key)["samples_total"]
            .as_u64()
            .unwrap()
            >= before + 24
    });

    // 2. Scenario API: the key is needed to set one; the status names who is affected.
    let (code, _) = http(
        sim_port,
        "POST",
        "/scenario/set?scenario=critical",
        "",
        "",
        "",
    );
    assert_eq!(code, 401);
    let (code, body) = http(
        sim_port,
        "POST",
        "/scenario/set?scenario=meltdown",
        &key,
        "",
        "",
    );
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("healthy, degrading or critical"), "{body}");
    let (code, body) = http(
        sim_port,
        "POST",
        "/scenario/set",
        &key,
        "Content-Type: application/json\r\n",
        r#"{"scenario":"critical"}"#,
    );
    assert_eq!(code, 200, "{body}");
    let status = json(sim_port, "/scenario/status", "");
    assert_eq!(status["scenario"], "critical");
    assert_eq!(
        status["affected_servers"].as_array().unwrap().len(),
        5,
        "{status}"
    );
    assert_eq!(status["servers"], 12);
    // nordiqctl scenario reads and sets it too.
    let ctl = |args: &[&str]| {
        Command::new(sibling("nordiqctl"))
            .args(["--dev", "scenario"])
            .args(args)
            .args(["--simulator-url", &format!("http://127.0.0.1:{sim_port}")])
            .current_dir(&dir)
            .output()
            .unwrap()
    };
    let out = ctl(&["status"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("scenario critical") && text.contains("5 of 12"),
        "{text}"
    );
    let out = ctl(&["set", "meltdown"]);
    assert_eq!(
        out.status.code(),
        Some(64),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(ctl(&["set", "critical"]).status.success());

    // 3. The daemon goes away: batches are spooled, in order, on disk.
    let outage_from = nordiq_core::timefmt::now_ms();
    inference.stop();
    wait_until("batches in the spool", Duration::from_secs(20), || {
        spool_files(&dir) >= 3
    });
    // 4. nordiq-metrics itself restarts while the daemon is down: the spool survives.
    metrics.stop();
    let spooled = spool_files(&dir);
    assert!(spooled >= 3, "{spooled}");
    let metrics = start_metrics(&[]);
    std::thread::sleep(Duration::from_secs(2));
    let _inference = start_inference();
    wait_until("the spool to drain", Duration::from_secs(60), || {
        spool_files(&dir) == 0
    });
    std::thread::sleep(Duration::from_secs(2));
    let outage_to = nordiq_core::timefmt::now_ms();
    metrics.stop();

    // Every sample of the outage arrived once: per server, strictly increasing timestamps
    // about a second apart, except for the seconds nordiq-metrics itself was down.
    let from = nordiq_core::timefmt::format_ms(outage_from);
    let to = nordiq_core::timefmt::format_ms(outage_to);
    let rows = json(
        api_port,
        &format!("/historical?from={from}&to={to}&format=json&servers=ppweb001"),
        &key,
    );
    let stamps: Vec<i64> = rows["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| nordiq_core::timefmt::parse_rfc3339_ms(r["timestamp"].as_str().unwrap()).unwrap())
        .collect();
    assert!(
        stamps.len() >= 8,
        "{} samples over the outage",
        stamps.len()
    );
    let mut long_gaps = 0;
    for pair in stamps.windows(2) {
        assert!(pair[1] > pair[0], "duplicate or out of order: {pair:?}");
        if pair[1] - pair[0] > 2_500 {
            long_gaps += 1;
        }
    }
    assert!(
        long_gaps <= 1,
        "samples lost: {long_gaps} gaps in {stamps:?}"
    );
    let log = std::fs::read_to_string(&metrics_log).unwrap();
    assert!(
        log.contains("undelivered batches from the last run"),
        "{log}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A batch sent twice with the same id is applied once.
#[test]
fn a_repeated_batch_id_is_applied_once() {
    let dir = TempDir::new("metrics-dup");
    let port = free_port();
    let log = dir.join("inference.log");
    let _inference = start(
        Command::new(sibling("nordiq-inference"))
            .args(["--dev", "--listen", &format!("127.0.0.1:{port}")])
            .current_dir(&dir),
        &log,
    );
    wait_port(port, &log);
    let key = std::fs::read_to_string(dir.join(".nordiq_key"))
        .unwrap()
        .trim()
        .to_string();
    let now = nordiq_core::timefmt::now_ms();
    let body =
        format!("{{\"timestamp\":{now},\"server_name\":\"ppweb001\",\"cpu_user_pct\":10}}\n");
    let headers = "Content-Type: application/x-ndjson\r\nX-NordIQ-Batch: abc-1\r\n";
    let (code, first) = http(port, "POST", "/feed/data", &key, headers, &body);
    assert_eq!(code, 200, "{first}");
    let (code, second) = http(port, "POST", "/feed/data", &key, headers, &body);
    assert_eq!(code, 200, "{second}");
    let second: serde_json::Value = serde_json::from_str(&second).unwrap();
    assert_eq!(second["duplicate_batch"], true);
    assert_eq!(second["accepted"], 0);
    assert_eq!(json(port, "/status", &key)["samples_total"], 1);
    let other = "Content-Type: application/x-ndjson\r\nX-NordIQ-Batch: abc-2\r\n";
    let body = format!(
        "{{\"timestamp\":{},\"server_name\":\"ppweb001\",\"cpu_user_pct\":11}}\n",
        now + 1000
    );
    assert_eq!(http(port, "POST", "/feed/data", &key, other, &body).0, 200);
    assert_eq!(json(port, "/status", &key)["samples_total"], 2);
    let _ = std::fs::remove_dir_all(&dir);
}
