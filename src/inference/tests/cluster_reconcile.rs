//! A node restarting after a crash drops from its leftover log exactly the stream messages
//! another node took over, reading the shards' claims from a real NATS server (JetStream):
//! what it had consumed under its own claim stays, what a later claim of another node
//! covers goes, and samples that came without the cluster stay.

mod common;

use common::{free_port, Proc, TempDir};
use nordiq_core::cluster::Lease;
use nordiq_core::config::Config;
use nordiq_core::ingest::Sample;
use nordiq_inference::services::cluster;
use nordiq_testkit::wait_port;
use std::process::Command;

fn frame(id: &str, n: usize) -> Vec<u8> {
    let samples: Vec<Sample> = (0..n)
        .map(|i| Sample {
            timestamp_ms: 1_700_000_000_000 + i as i64,
            server: format!("srv{i}"),
            profile: "generic".into(),
            values: vec![1.0; 14],
        })
        .collect();
    let mut out = Vec::new();
    nordiq_buffer::wal::encode_samples(samples.iter(), Some(id), &mut out);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_node_drops_what_another_node_took_over() {
    let dir = TempDir::new("reconcile");
    let port = free_port();
    let log = dir.path().join("nats.log");
    let _nats = Proc::start(
        Command::new("nats-server")
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(dir.path().join("js")),
        &log,
    );
    wait_port(port, &log);
    let mut config = Config::default();
    config.cluster.enabled = true;
    config.cluster.nats_urls = vec![format!("nats://127.0.0.1:{port}")];
    config.cluster.node_name = "node-a".into();
    config.cluster.replicas = 1;
    let state = cluster::connect(&config).await.expect("connect");
    let handles = cluster::setup(&state).await.expect("stream and buckets");
    let claim = |node: &str, from_seq| -> bytes::Bytes {
        serde_json::to_vec(&Lease {
            node: node.into(),
            from_seq,
        })
        .unwrap()
        .into()
    };
    // Shard 3: node-a from 1, node-b took it over at 40. Shard 5: node-a's alone.
    handles
        .claims
        .put("shard.3", claim("node-a", 1))
        .await
        .unwrap();
    handles
        .claims
        .put("shard.3", claim("node-b", 40))
        .await
        .unwrap();
    handles
        .claims
        .put("shard.5", claim("node-a", 7))
        .await
        .unwrap();

    // The log a kill -9 left: messages of both shards and a batch from outside the cluster.
    let root = dir.path().join("buffer");
    let wal = root.join("wal");
    std::fs::create_dir_all(&wal).unwrap();
    let metrics: Vec<String> = config.metrics.iter().map(|m| m.name.clone()).collect();
    let mut segment = nordiq_buffer::wal::SegmentWriter::create(&wal, 1, &metrics).unwrap();
    for (id, n) in [
        ("nats:3:39", 2),
        ("nats:3:40", 3),
        ("nats:5:100", 4),
        ("feeder-1", 5),
        ("nats:3:41", 6),
    ] {
        segment.write(&frame(id, n)).unwrap();
    }
    segment.sync().unwrap();
    drop(segment);

    let reconciled = cluster::reconcile::reconcile(&state, &root)
        .await
        .expect("reconcile");
    assert_eq!((reconciled.frames, reconciled.samples), (2, 3 + 6));
    assert_eq!(
        nordiq_buffer::logged_batch_ids(&root).unwrap(),
        vec!["nats:3:39", "nats:5:100", "feeder-1"]
    );
    // A second start finds nothing more to drop.
    let again = cluster::reconcile::reconcile(&state, &root).await.unwrap();
    assert_eq!(again.frames, 0);
}
