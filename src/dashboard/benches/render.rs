//! Dashboard speed with a large fleet (`cargo bench -p nordiq-dashboard --bench render`):
//! the daemon in development mode fed 1,000 servers by `nordiqctl demo-feed`, the
//! dashboard in front, and tests/browser/bench.mjs timing each view in headless Chromium.
//! Prints the numbers and rewrites the dashboard section of docs/benchmarks.md.

#[path = "../tests/support/mod.rs"]
mod support;

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use support::{free_port, spawn, wait_port, DASHBOARD};

const SERVERS: usize = 1000;

fn main() {
    // The daemon and the feeder are other packages' binaries: build them in this profile
    // so the benchmark never runs stale ones.
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let built = Command::new(cargo)
        .args([
            "build",
            "--release",
            "-p",
            "nordiq-inference",
            "-p",
            "nordiq-ctl",
        ])
        .status()
        .expect("cargo build");
    assert!(
        built.success(),
        "building nordiq-inference and nordiqctl failed"
    );
    let dir = nordiq_testkit::TempDir::new("dashboard-bench");
    let dash_port = free_port();
    let servers = SERVERS.to_string();
    let (_inference, _feed, api_port, key) = support::start_fed_daemon(
        &dir,
        &[
            "--servers",
            &servers,
            "--history-interval",
            "300",
            "--interval",
            "30",
            "--duration",
            "3600",
        ],
    );
    let api_url = format!("http://127.0.0.1:{api_port}");
    support::wait_forecast(api_port, &key, SERVERS, Duration::from_secs(600));
    let _dashboard = spawn(
        Command::new(DASHBOARD)
            .args(["--dev", "--listen", &format!("127.0.0.1:{dash_port}")])
            .args(["--inference-url", &api_url])
            .current_dir(&dir),
        &dir.join("dashboard.log"),
    );
    wait_port(dash_port, &dir.join("dashboard.log"));
    let modules = std::env::var("NORDIQ_NODE_MODULES").unwrap_or_else(|_| {
        format!(
            "{}/.cache/nordiq/node/node_modules",
            std::env::var("HOME").unwrap_or_default()
        )
    });
    let out = Command::new("node")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/bench.mjs"))
        .env("DASH_URL", format!("http://127.0.0.1:{dash_port}"))
        .env("NORDIQ_NODE_MODULES", &modules)
        .output()
        .expect("node");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_str(text.trim()).expect("bench JSON");
    println!("{r:#}");
    let mut report = String::new();
    let _ = writeln!(
        report,
        "## Dashboard (issue 7)\n\nCommand: `cargo bench -p nordiq-dashboard --bench render`. Machine: {}. nordiq-inference (release build, development mode) with {SERVERS} servers fed by `nordiqctl demo-feed`, nordiq-dashboard in front, headless Chromium driven by playwright-core; browser, dashboard and daemon share the 2 cores. A refresh tick is one `render()` of the visible view (its API calls and DOM update); the heatmap draws only the rows in view.\n\n| view | first load ms | refresh tick ms | DOM nodes |\n|---|---|---|---|",
        nordiq_testkit::bench_report::machine()
    );
    for view in ["overview", "heatmap", "alerts", "models", "server"] {
        let v = &r["views"][view];
        let _ = writeln!(
            report,
            "| {view} | {} | {} | {} |",
            v["first_load_ms"],
            v["refresh_tick_ms"]
                .as_f64()
                .map(|t| format!("{t:.0}"))
                .unwrap_or_else(|| "–".into()),
            v["dom_nodes"]
                .as_u64()
                .map(|n| n.to_string())
                .unwrap_or_else(|| "–".into())
        );
    }
    let _ = writeln!(
        report,
        "\nHeatmap: {} rows; redrawing the visible rows after a scroll takes {:.2} ms (median of 50).\n",
        r["heatmap_rows"],
        r["heatmap_scroll_frame_ms"].as_f64().unwrap_or(f64::NAN)
    );
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/benchmarks.md");
    nordiq_testkit::bench_report::replace_section(&path, "dashboard", &report).unwrap();
    println!("wrote {}", path.display());
}
