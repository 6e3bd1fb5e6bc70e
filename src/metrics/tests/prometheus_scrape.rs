//! The real Prometheus (Debian's `prometheus`) scrapes nordiq-inference's `GET /metrics`
//! with the API key as a bearer token, and answers a PromQL query for a server's 1-hour
//! p90 CPU forecast with the value the daemon's own API gives.

mod support;

use std::process::Command;
use std::time::Duration;
use support::*;

fn prometheus_query(port: u16, query: &str) -> serde_json::Value {
    let escaped: String = query
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    let path = format!("/api/v1/query?query={escaped}");
    let (status, body) = http(port, "GET", &path, "", "", "");
    if status == 503 {
        // Seen on a loaded machine just after /-/ready said 200: asked again by the callers'
        // wait loops, which fail with the last answer at their deadline.
        return serde_json::json!({ "status": 503, "body": body });
    }
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap()
}

#[test]
fn prometheus_scrapes_forecasts_and_answers_promql() {
    if nordiq_testkit::slow::skip("a real Prometheus") {
        return;
    }
    if std::process::Command::new("prometheus")
        .arg("--version")
        .output()
        .is_err()
    {
        panic!(
            "prometheus is not installed: scripts/ensure-deps.sh test installs Debian's package"
        );
    }
    let dir = TempDir::new("prometheus");
    let sim_port = free_port();
    let (_inference, api_port, key) = dev_inference(&dir);
    let _metrics = start(
        Command::new(METRICS)
            .args([
                "--dev",
                "--inference-url",
                &format!("http://127.0.0.1:{api_port}"),
            ])
            .args([
                "simulate",
                "--servers",
                "8",
                "--backfill",
                "4d",
                "--listen",
                &format!("127.0.0.1:{sim_port}"),
            ])
            .current_dir(&dir),
        &dir.join("metrics.log"),
    );
    wait_until("forecasts for the fleet", Duration::from_secs(60), || {
        json(api_port, "/status", &key)["forecast_servers"] == 8
    });

    // Without the key: 401. With it: the exposition format.
    let (code, _) = http(api_port, "GET", "/metrics", "", "", "");
    assert_eq!(code, 401);
    let (code, text) = http(
        api_port,
        "GET",
        "/metrics",
        "",
        &format!("Authorization: Bearer {key}\r\n"),
        "",
    );
    assert_eq!(code, 200, "{text}");
    assert!(text.contains("# TYPE nordiq_forecast gauge"), "{text}");
    assert!(
        text.contains("nordiq_model_info{model_id=\"baseline:auto\"} 1"),
        "{text}"
    );

    let (prometheus, prom_port) = prometheus(
        &dir,
        &format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: nordiq\n    metrics_path: /metrics\n    authorization:\n      type: Bearer\n      credentials_file: {}\n    static_configs:\n      - targets: ['127.0.0.1:{api_port}']\n",
            dir.join(".nordiq_key").display()
        ),
    );

    let query = r#"nordiq_forecast{job="nordiq",server="ppweb001",metric="cpu_user_pct",quantile="0.9",horizon="1h"}"#;
    let mut answer = serde_json::Value::Null;
    wait_until(
        "Prometheus to have scraped the forecast",
        Duration::from_secs(60),
        || {
            answer = prometheus_query(prom_port, query);
            answer["data"]["result"]
                .as_array()
                .is_some_and(|r| !r.is_empty())
        },
    );
    let scraped: f64 = answer["data"]["result"][0]["value"][1]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    // The daemon's own answer: p90 of cpu_user_pct, 12 steps of 5 minutes ahead.
    let own = json(api_port, "/predictions/ppweb001", &key);
    let p90 = own["metrics"]["cpu_user_pct"]["quantiles"]["p90"][11]
        .as_f64()
        .unwrap();
    assert!(
        (scraped - p90).abs() <= 1e-3 * p90.abs().max(1.0),
        "Prometheus has {scraped}, the API says {p90}"
    );
    let up = prometheus_query(prom_port, r#"up{job="nordiq"}"#);
    assert_eq!(up["data"]["result"][0]["value"][1], "1", "{up}");
    let alerts = prometheus_query(prom_port, "sum(nordiq_alerts)");
    assert_eq!(alerts["data"]["result"][0]["value"][1], "8", "{alerts}");
    prometheus.stop();
    let _ = std::fs::remove_dir_all(&dir);
}
