//! Prometheus as a source, against the real thing (Debian's `prometheus` and
//! `prometheus-node-exporter` on loopback): node_exporter scraped straight, and a
//! Prometheus server pulled with query_range from a high-water mark that survives a
//! restart without reading anything twice or skipping anything.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;
use support::*;

fn config(dir: &Path, api_port: u16, prom_port: u16) -> std::path::PathBuf {
    let path = dir.join("nordiq.toml");
    std::fs::write(
        &path,
        format!(
            "[server]\nlisten = \"127.0.0.1:{api_port}\"\n[paths]\nstate_dir = \"{state}\"\n[auth]\napi_key_file = \"{key}\"\n\
             [sources]\ninterval_seconds = 1\n[sources.prometheus]\nurl = \"http://127.0.0.1:{prom_port}\"\nstep_seconds = 1\nlag_seconds = 2\nstart_hours = 1\n",
            state = dir.join(".nordiq").display(),
            key = dir.join(".nordiq_key").display(),
        ),
    )
    .unwrap();
    path
}

#[test]
fn node_exporter_is_scraped_and_prometheus_is_pulled_exactly_once() {
    if nordiq_testkit::slow::skip("a real Prometheus and node_exporter") {
        return;
    }
    for tool in ["prometheus", "prometheus-node-exporter"] {
        assert!(
            Command::new(tool).arg("--version").output().is_ok(),
            "{tool} is not installed: scripts/ensure-deps.sh test installs Debian's package"
        );
    }
    let dir = TempDir::new("prom-src");
    let (_node_exporter, ne_port) = node_exporter(&dir);
    let (_inference, api_port, key) = dev_inference(&dir);

    // 1. node_exporter, scraped every second: the gauges at once, rates from the second scrape.
    let scraper = start(
        Command::new(METRICS)
            .args([
                "--dev",
                "--inference-url",
                &format!("http://127.0.0.1:{api_port}"),
                "--interval",
                "1",
            ])
            .args([
                "node-exporter",
                "--target",
                &format!("nodehost=http://127.0.0.1:{ne_port}/metrics"),
            ])
            .current_dir(&dir),
        &dir.join("scraper.log"),
    );
    wait_until("scraped samples", Duration::from_secs(30), || {
        history(api_port, &key, "nodehost").len() >= 3
    });
    scraper.stop();
    let rows = history(api_port, &key, "nodehost");
    let last = rows.last().unwrap();
    for metric in [
        "cpu_user_pct",
        "cpu_idle_pct",
        "mem_used_pct",
        "disk_usage_pct",
        "load_average",
        "uptime_days",
        "net_in_mb_s",
    ] {
        let v = last[metric].as_f64().unwrap_or(f64::NAN);
        assert!(v.is_finite() && v >= 0.0, "{metric} = {v} in {last}");
    }
    assert!(last["mem_used_pct"].as_f64().unwrap() < 100.0);
    let uptime: f64 = std::fs::read_to_string("/proc/uptime")
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (last["uptime_days"].as_f64().unwrap() - uptime / 86_400.0).abs() < 0.01,
        "{last}"
    );
    assert!(
        last["back_close_wait"].is_null(),
        "node_exporter has no close_wait by port: {last}"
    );

    // 2. Prometheus scrapes node_exporter; nordiq-metrics pulls it with query_range.
    let (prometheus, prom_port) = prometheus(
        &dir,
        &format!("global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: node\n    static_configs:\n      - targets: ['127.0.0.1:{ne_port}']\n        labels:\n          instance: promnode\n"),
    );
    std::thread::sleep(Duration::from_secs(4));
    let config = config(&dir, api_port, prom_port);
    let pull = || {
        start(
            Command::new(METRICS).args(["--config", config.to_str().unwrap(), "prometheus"]),
            &dir.join("pull.log"),
        )
    };
    let puller = pull();
    wait_until("pulled samples", Duration::from_secs(30), || {
        history(api_port, &key, "promnode").len() >= 4
    });
    puller.stop();
    let mark = std::fs::read_to_string(dir.join(".nordiq/sources/prometheus.hwm.json"))
        .expect("a saved mark");
    let mark: i64 = mark.trim().parse().unwrap();
    // Restart: it goes on from the mark.
    std::thread::sleep(Duration::from_secs(3));
    let puller = pull();
    wait_until("samples after the restart", Duration::from_secs(30), || {
        history(api_port, &key, "promnode").iter().any(|r| {
            nordiq_core::timefmt::parse_rfc3339_ms(r["timestamp"].as_str().unwrap()).unwrap()
                > mark + 3000
        })
    });
    puller.stop();
    prometheus.stop();
    let stamps: Vec<i64> = history(api_port, &key, "promnode")
        .iter()
        .map(|r| nordiq_core::timefmt::parse_rfc3339_ms(r["timestamp"].as_str().unwrap()).unwrap())
        .collect();
    // One sample per step (1 s), none twice, none skipped — across the restart too. (The
    // very first steps may lack a rate: Prometheus needs two scrapes for `rate`.)
    for pair in stamps.windows(2) {
        assert_eq!(pair[1] - pair[0], 1000, "gap or repeat in {stamps:?}");
    }
    assert!(stamps.iter().any(|t| *t <= mark) && stamps.iter().any(|t| *t > mark + 3000));
    let rows = history(api_port, &key, "promnode");
    let last = rows.last().unwrap();
    assert!(
        last["mem_used_pct"]
            .as_f64()
            .is_some_and(|v| v > 0.0 && v < 100.0),
        "{last}"
    );
    assert!(last["load_average"].as_f64().is_some(), "{last}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn node_exporter_over_https_with_a_ca_file() {
    if nordiq_testkit::slow::skip("a real node_exporter") {
        return;
    }
    let dir = TempDir::new("prom-tls");
    let ca = nordiq_testkit::pki::Authority::new(&dir, "node");
    let cert = ca.server(&dir, "node-server");
    // node_exporter's own TLS (exporter-toolkit's web config).
    let web = dir.join("web.yml");
    std::fs::write(
        &web,
        format!(
            "tls_server_config:\n  cert_file: {}\n  key_file: {}\n",
            cert.cert_file.display(),
            cert.key_file.display()
        ),
    )
    .unwrap();
    let ne_port = free_port();
    let _node_exporter = start(
        Command::new("prometheus-node-exporter")
            .arg(format!("--web.listen-address=127.0.0.1:{ne_port}"))
            .arg(format!("--web.config.file={}", web.display()))
            .arg("--no-collector.systemd"),
        &dir.join("node_exporter.log"),
    );
    let (_inference, api_port, key) = dev_inference(&dir);
    let scrape = |ca_file: &str, log: &str| {
        let config = dir.join(format!("{log}.toml"));
        std::fs::write(
            &config,
            format!(
                "[paths]\nstate_dir = \"{state}\"\n[auth]\napi_key_file = \"{key}\"\n\
                 [sources]\nkind = \"node_exporter\"\ninference_url = \"http://127.0.0.1:{api_port}\"\ninterval_seconds = 1\n\
                 [sources.prometheus]\ntargets = [\"tlshost=https://localhost:{ne_port}/metrics\"]\nca_file = \"{ca_file}\"\n",
                state = dir.join(format!("{log}-state")).display(),
                key = dir.join(".nordiq_key").display(),
            ),
        )
        .unwrap();
        start(
            Command::new(METRICS).args(["--config", config.to_str().unwrap(), "run"]),
            &dir.join(format!("{log}.log")),
        )
    };
    // Without the CA the certificate is refused and nothing arrives.
    let untrusted = scrape("", "untrusted");
    wait_until("the refusal in the log", Duration::from_secs(30), || {
        std::fs::read_to_string(dir.join("untrusted.log"))
            .unwrap_or_default()
            .to_lowercase()
            .contains("certificate")
    });
    untrusted.stop();
    assert!(history(api_port, &key, "tlshost").is_empty());
    // With it, scraped over HTTPS.
    let trusted = scrape(ca.cert_file.to_str().unwrap(), "trusted");
    wait_until(
        "samples scraped over HTTPS",
        Duration::from_secs(30),
        || history(api_port, &key, "tlshost").len() >= 2,
    );
    trusted.stop();
    let last = history(api_port, &key, "tlshost").pop().unwrap();
    assert!(
        last["mem_used_pct"].as_f64().is_some_and(|v| v > 0.0),
        "{last}"
    );
}
