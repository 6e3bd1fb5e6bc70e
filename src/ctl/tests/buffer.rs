//! `nordiqctl import`, `buffer stats` and `buffer export` on real data (the ASD sample
//! vendored in nordiq-testkit: two servers, three days), and the buffer's files read by
//! pyarrow.

use nordiq_testkit::asd;
use nordiq_testkit::{clean_env, TempDir};
use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_nordiqctl");

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn tmpdir(name: &str) -> TempDir {
    TempDir::new(&format!("ctl-buf-{name}"))
}

/// The ASD example config with its state in `dir`.
fn asd_config(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(repo().join("examples/asd.toml")).unwrap();
    let path = dir.join("asd.toml");
    std::fs::write(
        &path,
        format!(
            "{text}\n[paths]\nstate_dir = \"{}\"\n",
            dir.join("state").display()
        ),
    )
    .unwrap();
    path
}

fn ctl(config: &Path, args: &[&str]) -> (i32, String) {
    nordiq_testkit::run(clean_env(
        Command::new(BIN).arg("--config").arg(config).args(args),
    ))
}

fn json(config: &Path, args: &[&str]) -> serde_json::Value {
    let (code, out) = ctl(config, args);
    assert!(code == 0 || code == 65, "{out}");
    let start = out.find('{').unwrap_or_else(|| panic!("no JSON in {out}"));
    serde_json::from_str(out[start..].trim()).unwrap_or_else(|e| panic!("{e}: {out}"))
}

#[test]
fn import_asd_idempotently_then_stats_export_and_pyarrow() {
    let dir = tmpdir("asd");
    let config = asd_config(&dir);
    let files = [asd::sample("omi-1.csv"), asd::sample("omi-2.csv")];
    let file_args: Vec<&str> = files.iter().map(|p| p.to_str().unwrap()).collect();

    let mut args = vec!["import", "--json"];
    args.extend(&file_args);
    let first = json(&config, &args);
    assert_eq!(first["rows"], 1728, "{first}");
    assert_eq!(first["imported"], 1728, "{first}");
    assert_eq!(first["rejected_rows"], 0, "{first}");
    assert_eq!(
        first["ignored_columns"],
        serde_json::json!(["anomaly", "split"])
    );

    // Importing the same history again adds nothing.
    let second = json(&config, &args);
    assert_eq!(second["imported"], 0, "{second}");
    assert_eq!(second["duplicates"], 1728, "{second}");

    let stats = json(&config, &["buffer", "stats", "--json"]);
    assert_eq!(stats["records"], 1728);
    assert_eq!(stats["records_per_server"]["omi-1"], 864);
    assert_eq!(stats["partitions"], 3, "3 days of data: {stats}");
    assert_eq!(stats["first_timestamp"], "2026-01-01T00:00:00Z");

    // Parquet as written is readable by pyarrow, as a Hive-partitioned dataset, and holds
    // what the CSV said.
    let python = std::env::var("NORDIQ_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = r#"
import sys, pyarrow.dataset as ds, pyarrow.compute as pc
t = ds.dataset(sys.argv[1], format="parquet", partitioning="hive").to_table()
omi1 = t.filter(pc.equal(t["server_name"], "omi-1")).sort_by("timestamp")
first = omi1.slice(0, 1).to_pylist()[0]
print(t.num_rows, len(set(t["date"].to_pylist())), first["timestamp"].isoformat(), round(first["m01"], 4), round(first["m19"], 4), t.schema.field("timestamp").type)
"#;
    let out = Command::new(&python)
        .arg("-c")
        .arg(script)
        .arg(dir.join("state/buffer"))
        .output()
        .unwrap_or_else(|e| panic!("cannot run {python}: {e}; scripts/test.sh installs pyarrow"));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "pyarrow failed (scripts/test.sh installs it): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // omi-1's first CSV row: 2026-01-01T00:00:00Z, m01 = 0.49, m19 = 0.38.
    assert_eq!(
        text.trim(),
        "1728 3 2026-01-01T00:00:00+00:00 0.49 0.38 timestamp[ms, tz=UTC]",
        "{text}"
    );

    // Export of the whole range (the data is old: ask for enough days) and re-import of
    // that Parquet file into a fresh buffer gives the same records.
    let export = dir.join("export.parquet");
    let (code, out) = ctl(
        &config,
        &[
            "buffer",
            "export",
            "--days",
            "400",
            "--out",
            export.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("exported 1728 rows of 2 servers over 3 days"),
        "{out}"
    );
    let dir2 = tmpdir("asd-reimport");
    let config2 = asd_config(&dir2);
    let again = json(&config2, &["import", "--json", export.to_str().unwrap()]);
    assert_eq!(again["imported"], 1728, "{again}");
}

#[test]
fn import_reports_bad_rows_by_line_and_maps_columns() {
    let dir = tmpdir("bad");
    let config = asd_config(&dir);
    let csv = dir.join("bad.csv");
    std::fs::write(
        &csv,
        "timestamp,server_name,cpu,m02\n\
         2026-01-01T00:00:00Z,omi-x,0.5,0.1\n\
         2026-01-01T00:05:00Z,omi-x,NaN,0.1\n\
         2026-01-01T00:10:00Z,omi-x,1.5,0.1\n\
         soon,omi-x,0.5,0.1\n\
         2026-01-01T00:20:00Z,,0.5,0.1\n\
         2026-01-01T00:25:00Z,omi-x,abc,0.1\n\
         2026-01-01T00:30:00Z,omi-x,0.25,\n",
    )
    .unwrap();
    let report = json(
        &config,
        &[
            "import",
            "--json",
            "--map",
            "cpu=m01",
            csv.to_str().unwrap(),
        ],
    );
    assert_eq!(report["rows"], 7);
    assert_eq!(report["imported"], 2, "{report}");
    assert_eq!(report["rejected_rows"], 5);
    let lines: Vec<(u64, String)> = report["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["line"].as_u64().unwrap(),
                r["field"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        lines,
        vec![
            (3, "m01".into()),
            (4, "m01".into()),
            (5, "timestamp".into()),
            (6, "server_name".into()),
            (7, "m01".into()),
        ]
    );
    let (code, out) = ctl(
        &config,
        &["import", "--map", "cpu=m01", csv.to_str().unwrap()],
    );
    assert_eq!(code, 65, "rejected rows make the exit code 65: {out}");
    assert!(out.contains("bad.csv:3: m01"), "{out}");
    let (code, out) = ctl(
        &config,
        &["import", "--map", "cpu=nope", csv.to_str().unwrap()],
    );
    assert_eq!(code, 64, "{out}");
}

#[test]
fn backtest_scores_baselines_on_asd() {
    let dir = tmpdir("backtest");
    let config = asd_config(&dir);
    let (a, b) = (asd::sample("omi-3.csv"), asd::sample("omi-4.csv"));
    let report = json(
        &config,
        &[
            "backtest",
            "--json",
            "--data",
            a.to_str().unwrap(),
            "--data",
            b.to_str().unwrap(),
            "--test-start",
            "2026-01-31T00:00:00Z",
        ],
    );
    assert_eq!(report["servers"], 2);
    let models = report["models"].as_array().unwrap();
    assert_eq!(models[0]["model"], "baseline:seasonal_naive");
    assert!(
        (models[0]["mase"].as_f64().unwrap() - 1.0).abs() < 1e-9,
        "the MASE scale is seasonal naive itself"
    );
    let ids: Vec<&str> = models
        .iter()
        .map(|m| m["model"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "baseline:seasonal_naive",
            "baseline:seasonal_naive_week",
            "baseline:seasonal_median",
            "baseline:ets",
            "baseline:last_value"
        ]
    );
    // On real server data the median of several days beats yesterday alone.
    assert!(models[2]["mase"].as_f64().unwrap() < 1.0, "{report}");
    assert!(models[3]["mase"].as_f64().unwrap().is_finite());
    // The report names the baseline with the lowest MASE, overall and per horizon.
    let best = report["best_baseline"].as_str().unwrap();
    let best_mase = report["best_baseline_mase"].as_f64().unwrap();
    for m in models {
        assert!(best_mase <= m["mase"].as_f64().unwrap(), "{best} vs {m}");
    }
    let horizons = models[2]["horizons"].as_array().unwrap();
    let labels: Vec<&str> = horizons
        .iter()
        .map(|h| h["bucket"]["label"].as_str().unwrap())
        .collect();
    assert_eq!(labels, ["0-1h", "1-4h", "4-8h"], "{report}");
    assert!(report["best_baseline_per_horizon"]["0-1h"][1]
        .as_f64()
        .unwrap()
        .is_finite());
    assert!(models[0]["windows"].as_u64().unwrap() >= 2 * 40, "{report}");
    assert_eq!(models[0]["metrics"].as_object().unwrap().len(), 19);
    let (code, out) = ctl(
        &config,
        &[
            "backtest",
            "--model",
            "tft_x",
            "--data",
            a.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 64, "{out}");
}

#[test]
fn evaluate_alerts_scores_labelled_asd_incidents() {
    let dir = tmpdir("evaluate");
    let config = asd_config(&dir);
    let (a, b) = (asd::sample("omi-3.csv"), asd::sample("omi-4.csv"));
    let report = json(
        &config,
        &[
            "evaluate-alerts",
            "--json",
            "--model",
            "baseline:seasonal_median",
            "--label-column",
            "anomaly",
            "--test-start",
            "2026-01-31T00:00:00Z",
            "--data",
            a.to_str().unwrap(),
            b.to_str().unwrap(),
        ],
    );
    assert_eq!(report["servers"], 2);
    assert_eq!(report["model"], "baseline:seasonal_median");
    assert_eq!(
        report["scored_steps"],
        2 * 4320,
        "every test step of both servers"
    );
    let detectors: Vec<&str> = report["detectors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["detector"].as_str().unwrap())
        .collect();
    assert_eq!(
        detectors,
        [
            "predicted breach",
            "anomaly",
            "breach or anomaly",
            "static thresholds"
        ]
    );
    // omi-3 and omi-4 hold 6 + 5 labelled segments in their test split.
    let anomaly = &report["detectors"][1]["overall"];
    assert_eq!(anomaly["segments"], 11, "{anomaly}");
    let caught = anomaly["caught"].as_u64().unwrap();
    assert!(
        caught >= 6,
        "the anomaly score catches most incidents: {anomaly}"
    );
    let nab = anomaly["nab_standard"].as_f64().unwrap();
    assert!(nab > 0.0 && nab <= 100.0, "{anomaly}");
    assert_eq!(
        report["detectors"][1]["servers"].as_object().unwrap().len(),
        2
    );
    // ASD's catalog has no thresholds: nothing can breach, and no probability is above 0.
    assert_eq!(report["detectors"][0]["overall"]["alert_events"], 0);
    let reliability = &report["outlook_reliability"][0];
    assert!(
        reliability["count"].as_u64().unwrap() > 8000,
        "{reliability}"
    );
    assert_eq!(reliability["base_rate"], 0.0);
    // A label column that is a metric, and an unknown level, are usage errors.
    let (code, out) = ctl(
        &config,
        &[
            "evaluate-alerts",
            "--label-column",
            "m01",
            "--data",
            a.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 64, "{out}");
    assert!(out.contains("m01"), "{out}");
    let (code, out) = ctl(
        &config,
        &[
            "evaluate-alerts",
            "--label-column",
            "anomaly",
            "--min-level",
            "severe",
            "--data",
            a.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 64, "{out}");
}
