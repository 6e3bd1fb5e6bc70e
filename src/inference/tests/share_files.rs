//! The files shipped under /usr/share/nordiq/ for Prometheus and Grafana: the rule file
//! passes Debian's real `promtool check rules`; every query of the Grafana dashboard, with
//! its variables filled in, is valid PromQL to the same `promtool`; and every NordIQ
//! series either file reads is one that `GET /metrics` writes. The NATS cluster example
//! passes the real `nats-server -t`.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn promtool_check_rules(file: &Path) {
    let out = Command::new("promtool")
        .args(["check", "rules"])
        .arg(file)
        .output()
        .expect("promtool (Debian package prometheus) runs");
    assert!(
        out.status.success(),
        "promtool check rules {}:\n{}{}",
        file.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `nordiq_…` series names in `text` (recording rules' `nordiq:…` names are not series
/// the daemon writes).
fn series_names(text: &str) -> std::collections::BTreeSet<String> {
    let mut names = std::collections::BTreeSet::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(at) = text[i..].find("nordiq_") {
        let start = i + at;
        let before_ok = start == 0
            || !(bytes[start - 1].is_ascii_alphanumeric()
                || bytes[start - 1] == b'_'
                || bytes[start - 1] == b':');
        let mut end = start;
        while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
            end += 1;
        }
        if before_ok && bytes.get(end) != Some(&b':') {
            names.insert(text[start..end].to_string());
        }
        i = end;
    }
    names
}

fn assert_exposed(file: &str, names: &std::collections::BTreeSet<String>) {
    let exposition = std::fs::read_to_string(repo().join("src/core/src/exposition.rs")).unwrap();
    assert!(!names.is_empty(), "{file} reads no NordIQ series");
    for name in names {
        assert!(
            exposition.contains(&format!("\"{name}\"")),
            "{file} reads {name}, which GET /metrics does not write"
        );
    }
}

#[test]
fn the_prometheus_rule_file_passes_promtool_and_reads_real_series() {
    let file = repo().join("share/prometheus-rules.yml");
    promtool_check_rules(&file);
    let text = std::fs::read_to_string(&file).unwrap();
    assert_exposed("prometheus-rules.yml", &series_names(&text));
}

#[test]
fn every_grafana_query_is_valid_promql_over_real_series() {
    let file = repo().join("share/grafana-dashboard.json");
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(dashboard["uid"], "nordiq-fleet");
    let variables: Vec<&str> = dashboard["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(variables, ["datasource", "server", "metric", "horizon"]);
    let mut exprs = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        if panel["type"] == "row" {
            continue;
        }
        let targets = panel["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "panel {} has no query", panel["title"]);
        for t in targets {
            exprs.push(t["expr"].as_str().unwrap().to_string());
        }
    }
    for v in dashboard["templating"]["list"].as_array().unwrap() {
        if let Some(q) = v["query"]["query"].as_str() {
            // label_values(SERIES, LABEL): the series is a selector.
            let inner = q
                .strip_prefix("label_values(")
                .and_then(|r| r.rsplit_once(','))
                .map(|(series, _)| series.to_string())
                .unwrap_or_else(|| panic!("variable query {q}"));
            exprs.push(inner);
        }
    }
    let dir = nordiq_testkit::TempDir::new("grafana-promql");
    let mut rules = String::from("groups:\n  - name: grafana-queries\n    rules:\n");
    for (i, e) in exprs.iter().enumerate() {
        let filled = e
            .replace("$server", ".*")
            .replace("$metric", "cpu_user_pct")
            .replace("$horizon", "1h");
        rules.push_str(&format!(
            "      - record: grafana:query_{i}\n        expr: {}\n",
            serde_json::Value::String(filled)
        ));
    }
    let rules_file = dir.join("grafana-queries.yml");
    std::fs::write(&rules_file, rules).unwrap();
    promtool_check_rules(&rules_file);
    assert_exposed("grafana-dashboard.json", &series_names(&exprs.join("\n")));
}

#[test]
fn the_nats_cluster_example_is_a_valid_nats_config() {
    let out = Command::new("nats-server")
        .arg("-t")
        .arg("-c")
        .arg(repo().join("share/nats-cluster.conf"))
        .output()
        .expect("nats-server (Debian package nats-server) runs");
    assert!(
        out.status.success(),
        "nats-server -t:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let unit = std::fs::read_to_string(repo().join("share/nordiq-nats.service")).unwrap();
    assert!(
        unit.contains("-c /etc/nordiq/nats-cluster.conf"),
        "the unit runs the example's path"
    );
}
