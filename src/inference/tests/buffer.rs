//! The buffer through the real daemon: acknowledged samples survive SIGKILL exactly once
//! (and a batch retried across the crash is applied once), a restarted daemon is warm at
//! once, stats are served.

mod common;

use common::*;
use nordiq_core::ingest::Sample;
use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

/// Everything the buffer holds, keyed by (server, timestamp) → how many times.
fn stored(state: &Path, metrics: &[String]) -> HashMap<(String, i64), usize> {
    let mut out = HashMap::new();
    nordiq_buffer::read_range(
        &state.join("buffer"),
        metrics,
        i64::MIN,
        i64::MAX,
        &mut |s: Sample| {
            *out.entry((s.server, s.timestamp_ms)).or_insert(0) += 1;
        },
    )
    .expect("every buffer file readable");
    out
}

fn every_parquet_file_readable(state: &Path) -> usize {
    let parts = nordiq_buffer::layout::partitions(&state.join("buffer")).unwrap();
    let mut files = 0;
    for p in parts {
        for f in p.files {
            nordiq_buffer::parquet_io::read_stats(&f)
                .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            files += 1;
        }
    }
    files
}

/// A batch whose answer the feeder never saw: its id, its body, the samples it holds.
type Unanswered = (String, String, Vec<(String, i64)>);

#[test]
fn acknowledged_samples_survive_sigkill_exactly_once() {
    let dir = TempDir::new("sigkill");
    let port = free_port();
    // Small segments and quick rolls, so kills land in every phase: appending, rotating,
    // rolling into Parquet, recovering.
    let config = write_config(
        dir.path(),
        port,
        "[buffer]\nroll_seconds = 1\nroll_bytes = 65536\n",
    );
    let metrics: Vec<String> = nordiq_core::config::default_catalog()
        .into_iter()
        .map(|m| m.name)
        .collect();
    let state = dir.path().join("state");
    let base = nordiq_core::timefmt::now_ms() - 86_400_000;
    let mut next_ts = 0i64;
    let mut acked: Vec<(String, i64)> = Vec::new();
    let mut rng = nordiq_testkit::Rng::new(0x2545_F491_4F6C_DD1D);
    let rounds = 50;
    // A feeder retries with the same X-NordIQ-Batch: the batch in flight at each kill (its
    // answer lost or not), and one acknowledged long ago (rolled into Parquet since).
    let mut in_flight: Option<Unanswered> = None;
    let mut sent: Vec<(String, String)> = Vec::new();
    let (mut retries, mut repeats_recognised) = (0usize, 0usize);
    let post = |client: &Client, id: &str, body: &str| {
        client.try_request(
            "POST",
            "/feed/data",
            &[
                ("content-type", "application/x-ndjson"),
                ("x-nordiq-batch", id),
            ],
            body.to_string(),
        )
    };
    for round in 0..rounds {
        let mut daemon = Daemon::start(dir.path(), &config, port, &[("NORDIQ_API_KEY", KEY)]);
        let client = daemon.client(Some(KEY));
        if let Some((id, body, batch)) = in_flight.take() {
            let a = post(&client, &id, &body).expect("the restarted daemon answers");
            assert_eq!(a.status, 200, "retry of {id}: {}", a.text());
            let answer: serde_json::Value = a.json().unwrap();
            retries += 1;
            if answer["duplicate_batch"] == true {
                repeats_recognised += 1;
            }
            acked.extend(batch);
        }
        if round > 0 && round % 5 == 0 {
            let (id, body) = &sent[rng.below(sent.len())];
            let a = post(&client, id, body).expect("the daemon answers");
            assert_eq!(a.status, 200, "{}", a.text());
            let answer: serde_json::Value = a.json().unwrap();
            assert_eq!(
                answer["duplicate_batch"], true,
                "round {round}: batch {id}, acknowledged in an earlier run, applied again: {answer}"
            );
            retries += 1;
            repeats_recognised += 1;
        }
        // After each restart: files readable, every acknowledged sample there exactly once,
        // nothing duplicated.
        let files = every_parquet_file_readable(&state);
        let have = stored(&state, &metrics);
        for key in &acked {
            assert_eq!(
                have.get(key),
                Some(&1),
                "round {round}: acknowledged sample {key:?} (files: {files})"
            );
        }
        if let Some((key, n)) = have.iter().find(|(_, n)| **n > 1) {
            panic!("round {round}: {key:?} stored {n} times");
        }
        // Feed steadily until killed at a random moment.
        let kill_after = Duration::from_millis(30 + rng.below(400) as u64);
        let started = Instant::now();
        let mut killed = false;
        while !killed {
            let mut body = String::new();
            let mut batch = Vec::new();
            for i in 0..40 {
                let server = format!("k{}", (next_ts + i) % 7);
                let ts = base + next_ts + i;
                body.push_str(&format!(
                    "{{\"timestamp\":{ts},\"server_name\":\"{server}\",\"cpu_user_pct\":{}}}\n",
                    (ts % 100) as f64
                ));
                batch.push((server, ts));
            }
            next_ts += 40;
            let id = format!("feeder-{round}-{next_ts}");
            if started.elapsed() >= kill_after {
                // Kill while a request is in flight about half the time; the feeder does
                // not know whether it landed and retries it after the restart.
                let pid = daemon.id() as i32;
                let killer = std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_micros(300));
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                });
                let _ = post(&client, &id, &body);
                killer.join().unwrap();
                in_flight = Some((id, body, batch));
                killed = true;
            } else if let Some(a) = post(&client, &id, &body) {
                assert_eq!(a.status, 200, "{}", a.text());
                acked.extend(batch);
                sent.push((id, body));
            }
        }
        assert!(
            daemon.wait_exit(Duration::from_secs(5)).is_some(),
            "SIGKILL"
        );
    }
    // Final check after one more recovery (and the last in-flight batch retried).
    let daemon = Daemon::start(dir.path(), &config, port, &[("NORDIQ_API_KEY", KEY)]);
    if let Some((id, body, batch)) = in_flight.take() {
        let a = post(&daemon.client(Some(KEY)), &id, &body).expect("an answer");
        assert_eq!(a.status, 200, "{}", a.text());
        acked.extend(batch);
    }
    let have = stored(&state, &metrics);
    for key in &acked {
        assert_eq!(have.get(key), Some(&1), "final: {key:?}");
    }
    if let Some((key, n)) = have.iter().find(|(_, n)| **n > 1) {
        panic!("final: {key:?} stored {n} times");
    }
    assert!(
        repeats_recognised > rounds / 5,
        "too few repeats recognised to mean anything: {repeats_recognised} of {retries} retries"
    );
    assert!(
        acked.len() > 1000,
        "the test fed too little to mean anything: {}",
        acked.len()
    );
    eprintln!(
        "{} acknowledged samples across {rounds} SIGKILLs, all present once; {retries} batches retried, {repeats_recognised} recognised as repeats",
        acked.len()
    );
}

#[test]
fn restart_is_warm_and_stats_are_served() {
    let dir = TempDir::new("warm");
    let port = free_port();
    let config = write_config(dir.path(), port, "");
    let servers = ["ppweb001", "ppdb001", "ppml0001"];
    {
        let mut daemon = Daemon::start(dir.path(), &config, port, &[("NORDIQ_API_KEY", KEY)]);
        let c = daemon.client(Some(KEY));
        let body = ndjson_history(&servers, 30, 300, |i, t| 20.0 + (i * 5 + t % 7) as f64);
        assert_eq!(
            c.post("/feed/data", "application/x-ndjson", body).status,
            200
        );
        let stats = c.json("/admin/training-stats");
        assert_eq!(
            stats["buffer"]["records"], 0,
            "still only in the log: {stats}"
        );
        assert!(
            stats["buffer"]["wal_bytes"].as_u64().unwrap() > 0,
            "{stats}"
        );
        daemon.signal(libc::SIGTERM);
        assert!(daemon
            .wait_exit(Duration::from_secs(10))
            .expect("stops")
            .success());
    }
    let wal = dir.path().join("state/buffer/wal");
    assert_eq!(
        std::fs::read_dir(&wal).unwrap().count(),
        0,
        "a clean stop leaves the log empty"
    );

    let daemon = Daemon::start(dir.path(), &config, port, &[("NORDIQ_API_KEY", KEY)]);
    let c = daemon.client(Some(KEY));
    let status = c.json("/status");
    assert_eq!(status["servers"], 3, "{status}");
    for w in status["warmup"].as_array().unwrap() {
        assert!(w["history_steps"].as_u64().unwrap() >= 29, "{w}");
    }
    assert_eq!(c.post("/admin/refresh", "application/json", "").status, 200);
    assert_eq!(c.json("/status")["forecast_servers"], 3);
    let stats = c.json("/admin/training-stats");
    assert_eq!(stats["buffer"]["records"], 90, "{stats}");
    assert_eq!(stats["buffer"]["records_per_server"]["ppdb001"], 30);
    assert!(daemon
        .log_text()
        .contains("windows refilled from the buffer"));
}
