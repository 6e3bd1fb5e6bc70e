//! Prometheus pushes into nordiq-inference with remote write 1.0: Debian's real
//! `prometheus` scrapes node_exporter, computes recording rules (`nordiq:cpu_user_pct`,
//! `nordiq:mem_used_pct`, `nordiq:load_average`) and remote-writes them with every scraped
//! series to `POST /api/v1/write`, the API key as a bearer token. (`[remote_write] names`,
//! the other way to map a series, is unit-tested.)

mod support;

use std::time::Duration;
use support::*;

#[test]
fn prometheus_remote_writes_into_the_windows() {
    if nordiq_testkit::slow::skip("a real Prometheus") {
        return;
    }
    let dir = TempDir::new("remote-write");
    let (_node_exporter, ne_port) = node_exporter(&dir);
    let (_inference, api_port, key) = dev_inference(&dir);

    // Bad bodies are refused with a reason, never applied.
    let (code, body) = http(
        api_port,
        "POST",
        "/api/v1/write",
        &key,
        "Content-Encoding: snappy\r\n",
        "not snappy",
    );
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("snappy"), "{body}");
    let (code, _) = http(
        api_port,
        "POST",
        "/api/v1/write",
        "",
        "Content-Encoding: snappy\r\n",
        "x",
    );
    assert_eq!(code, 401);

    std::fs::write(
        dir.join("rules.yml"),
        "groups:\n  - name: nordiq\n    interval: 1s\n    rules:\n      - record: nordiq:cpu_user_pct\n        expr: 100 * sum by (instance) (rate(node_cpu_seconds_total{mode=~\"user|nice\"}[5s])) / sum by (instance) (rate(node_cpu_seconds_total[5s]))\n      - record: nordiq:mem_used_pct\n        expr: 100 * (1 - node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes)\n      - record: nordiq:load_average\n        expr: node_load1\n",
    )
    .unwrap();
    let (prometheus, _prom_port) = prometheus(
        &dir,
        &format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files: ['{rules}']\nscrape_configs:\n  - job_name: node\n    static_configs:\n      - targets: ['127.0.0.1:{ne_port}']\n        labels:\n          instance: pushedhost\nremote_write:\n  - url: http://127.0.0.1:{api_port}/api/v1/write\n    authorization:\n      type: Bearer\n      credentials_file: {key_file}\n    queue_config:\n      batch_send_deadline: 1s\n",
            rules = dir.join("rules.yml").display(),
            key_file = dir.join(".nordiq_key").display()
        ),
    );
    // Scraped series and recording rules carry their own timestamps: each metric arrives
    // in records of its own.
    let latest = |rows: &[serde_json::Value], metric: &str| {
        rows.iter().rev().find_map(|r| r[metric].as_f64())
    };
    let mut rows = Vec::new();
    wait_until(
        "remote-written samples of all three metrics",
        Duration::from_secs(60),
        || {
            let from = nordiq_core::timefmt::format_ms(nordiq_core::timefmt::now_ms() - 600_000);
            let answer = json(
                api_port,
                &format!("/historical?from={from}&format=json&servers=pushedhost"),
                &key,
            );
            rows = answer["records"].as_array().cloned().unwrap_or_default();
            ["cpu_user_pct", "mem_used_pct", "load_average"]
                .iter()
                .all(|m| latest(&rows, m).is_some())
        },
    );
    // Stop the sender before its sink: Prometheus keeps retrying a vanished sink for minutes.
    prometheus.stop();
    let cpu = latest(&rows, "cpu_user_pct").unwrap();
    let mem = latest(&rows, "mem_used_pct").unwrap();
    assert!(
        (0.0..=100.0).contains(&cpu) && mem > 0.0 && mem < 100.0,
        "cpu {cpu}, mem {mem}"
    );
    let status = json(api_port, "/status", &key);
    // One record per server and instant: the three rules share their evaluation time.
    assert_eq!(status["servers"], 1, "{status}");
    assert!(status["samples_total"].as_u64().unwrap() >= 1, "{status}");
    // Series NordIQ does not know (go_*, process_*, node_* …) were counted, not taken.
    let (_, metrics) = http(api_port, "GET", "/metrics", &key, "", "");
    let ignored: f64 = metrics
        .lines()
        .find(|l| l.starts_with("nordiq_remote_write_ignored_series_total "))
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(ignored > 10.0, "{ignored}");
    let _ = std::fs::remove_dir_all(&dir);
}
