//! nordiq-metrics with `sources.publish_to_cluster`: it validates its batches and
//! publishes them straight to the cluster's JetStream stream (a real `nats-server`); the
//! node holding the shards applies every simulated server without a single batch posted to
//! it.

mod support;

use nordiq_testkit::Http;
use std::process::Command;
use std::time::Duration;
use support::{free_port, start, wait_port, wait_until, TempDir, METRICS};

const KEY: &str = "cluster-publish-key-0123456789";

#[test]
fn the_simulator_publishes_straight_to_the_stream() {
    let dir = TempDir::new("metrics-cluster");
    let (nats_port, api_port, sim_port) = (free_port(), free_port(), free_port());
    let nats_log = dir.join("nats.log");
    let _nats = start(
        Command::new("nats-server")
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &nats_port.to_string(),
                "-sd",
            ])
            .arg(dir.join("js")),
        &nats_log,
    );
    wait_port(nats_port, &nats_log);
    std::fs::write(dir.join("api-key"), format!("{KEY}\n")).unwrap();
    let config = dir.join("nordiq.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:{api_port}\"\n[paths]\nstate_dir = \"{state}\"\n[auth]\napi_key_file = \"{key}\"\n[cluster]\nenabled = true\nnats_urls = [\"nats://127.0.0.1:{nats_port}\"]\nnode_name = \"solo\"\nreplicas = 1\nlease_seconds = 3\n[sources]\npublish_to_cluster = true\ninterval_seconds = 1\n[sources.simulator]\nservers = 12\nseed = 7\nlisten = \"127.0.0.1:{sim_port}\"\n",
            state = dir.join("state").display(),
            key = dir.join("api-key").display(),
        ),
    )
    .unwrap();
    let inference_log = dir.join("inference.log");
    let _inference = start(
        Command::new(support::sibling("nordiq-inference"))
            .arg("--config")
            .arg(&config),
        &inference_log,
    );
    wait_port(api_port, &inference_log);
    let node = Http::new(api_port, Some(KEY));
    let status = || -> serde_json::Value { node.json("/status") };
    wait_until(
        "the node holds every shard",
        Duration::from_secs(60),
        || {
            status()["cluster"]["owned_shards"]
                .as_array()
                .is_some_and(|s| s.len() == 16)
        },
    );
    let metrics_log = dir.join("metrics.log");
    let _metrics = start(
        Command::new(METRICS)
            .arg("simulate")
            .arg("--config")
            .arg(&config),
        &metrics_log,
    );
    wait_until(
        "every simulated server applied",
        Duration::from_secs(60),
        || status()["servers"] == 12,
    );
    wait_until("a few rounds consumed", Duration::from_secs(30), || {
        status()["cluster"]["consumed_total"].as_u64().unwrap_or(0) >= 3 * 12
    });
    let s = status();
    assert_eq!(
        s["cluster"]["published_total"], 0,
        "nothing was posted to the node: {s}"
    );
    let log = std::fs::read_to_string(&metrics_log).unwrap();
    assert!(
        log.contains("publishing straight to the cluster's stream"),
        "{log}"
    );
    assert!(!log.contains("delivery failed"), "{log}");
}
