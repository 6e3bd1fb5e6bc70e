//! A real three-node cluster: three network namespaces on this machine, each with a
//! clustered `nats-server` (JetStream, stream replicas 3) and a `nordiq-inference`, fed a
//! simulated fleet of 3,000 servers at its normal rate (a sample per server every 5 s).
//! Checks every server is forecast by exactly one node and the fleet view is the same from
//! all three; `kill -9` of an inference node → its shards taken over within the bound, no
//! acknowledged sample missing or doubled across the buffers; `kill -9` of a NATS server →
//! ingest and forecasting go on; the killed node rejoins and the shards rebalance.

mod common;

use common::{clean_env, Client, TempDir, BIN, KEY};
use nordiq_testkit::cluster::{Cluster, Layout};
use serde_json::Value;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const NODES: usize = 3;
const SERVERS: usize = 3000;
const SHARDS: u64 = 16;
const LEASE_SECONDS: u64 = 10;
/// The takeover bound docs/cluster.md promises for the default 15 s lease is 30 s; the
/// test's lease is shorter, its bound the same formula: lease + lease/3 + replay.
const TAKEOVER_BOUND: Duration = Duration::from_secs(30);
/// History first (12 steps are needed for a forecast), then live samples every 5 s.
const HISTORY_STEPS: usize = 14;
const LIVE_EVERY: Duration = Duration::from_secs(5);
/// Two rounds of batches after a NATS server dies: 5–6 s, plus an election (at most 9 s
/// without heartbeats), a publish timing out (3 s) and re-sent, and a slow machine's slack.
const NATS_LOSS_BOUND: Duration = Duration::from_secs(25);
const BATCH: usize = 500;

fn server(i: usize) -> String {
    format!("srv{i:05}")
}

/// Every node answers and holds five or six of the 16 shards, all held once.
fn shared_by_all(c: &Cluster) -> bool {
    let counts: Vec<usize> = (1..=NODES)
        .filter_map(|i| c.owned(i).map(|o| o.len()))
        .collect();
    counts.len() == NODES
        && counts.iter().sum::<usize>() == SHARDS as usize
        && counts.iter().all(|&n| n >= 5)
}

/// Feeds the fleet in the background: each batch goes to a node (round robin) with its
/// batch id, and is re-sent with the same id to the next node until one acknowledges it.
struct Feeder {
    acknowledged: Arc<Mutex<HashSet<(String, i64)>>>,
    batches: Arc<AtomicU64>,
    retries: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn send_batch(
    clients: &[Client],
    turn: &mut usize,
    id: &str,
    body: String,
    retries: &AtomicU64,
) -> bool {
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        let client = &clients[*turn % clients.len()];
        *turn += 1;
        let answer = client.try_request(
            "POST",
            "/feed/data",
            &[
                ("content-type", "application/x-ndjson"),
                ("x-nordiq-batch", id),
            ],
            body.clone(),
        );
        match answer {
            Some(a) if a.status == 200 => return true,
            _ => {
                retries.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
    false
}

fn records(servers: std::ops::Range<usize>, ts: i64, step: usize) -> (String, Vec<(String, i64)>) {
    let mut body = String::new();
    let mut keys = Vec::new();
    for i in servers {
        let name = server(i);
        let wave = 30.0 + 20.0 * ((step as f64 / 6.0) + i as f64).sin();
        body.push_str(&format!(
            "{{\"timestamp\":{ts},\"server_name\":\"{name}\",\"cpu_user_pct\":{wave:.2},\"cpu_idle_pct\":{:.2},\"mem_used_pct\":{:.1}}}\n",
            100.0 - wave,
            40.0 + (i % 20) as f64
        ));
        keys.push((name, ts * 1000));
    }
    (body, keys)
}

impl Feeder {
    fn start(c: &Cluster) -> Feeder {
        let clients: Vec<Client> = (1..=NODES).map(|i| c.client(i)).collect();
        let acknowledged = Arc::new(Mutex::new(HashSet::new()));
        let batches = Arc::new(AtomicU64::new(0));
        let retries = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (acknowledged, batches, retries, stop) = (
                Arc::clone(&acknowledged),
                Arc::clone(&batches),
                Arc::clone(&retries),
                Arc::clone(&stop),
            );
            std::thread::spawn(move || {
                let mut turn = 0usize;
                let now = nordiq_core::timefmt::now_ms() / 1000;
                let mut send = |id: String, range: std::ops::Range<usize>, ts: i64, step: usize| {
                    let (body, keys) = records(range, ts, step);
                    if send_batch(&clients, &mut turn, &id, body, &retries) {
                        acknowledged.lock().unwrap().extend(keys);
                        batches.fetch_add(1, Ordering::Relaxed);
                    }
                };
                for step in 0..HISTORY_STEPS {
                    let ts = now - ((HISTORY_STEPS - step) as i64) * 300;
                    for start in (0..SERVERS).step_by(3000) {
                        send(
                            format!("history-{step}-{start}"),
                            start..(start + 3000).min(SERVERS),
                            ts,
                            step,
                        );
                    }
                }
                let mut round = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    let began = Instant::now();
                    let ts = nordiq_core::timefmt::now_ms() / 1000;
                    for start in (0..SERVERS).step_by(BATCH) {
                        send(
                            format!("live-{round}-{start}"),
                            start..(start + BATCH).min(SERVERS),
                            ts,
                            HISTORY_STEPS + round,
                        );
                    }
                    round += 1;
                    std::thread::sleep(LIVE_EVERY.saturating_sub(began.elapsed()));
                }
            })
        };
        Feeder {
            acknowledged,
            batches,
            retries,
            stop,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> HashSet<(String, i64)> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().expect("feeder");
        }
        std::mem::take(&mut *self.acknowledged.lock().unwrap())
    }
}

/// The fleet view as node `i` serves it: the servers and which node made each shard.
/// The servers of a fleet view and which node made each shard.
type View = (BTreeSet<String>, Vec<(u64, String)>);

fn fleet_view(c: &Cluster, i: usize) -> Option<View> {
    let a = c.client(i).try_get("/predictions/current").ok()?;
    let v: Value = serde_json::from_slice(&a.body).ok()?;
    let servers = v["servers"].as_object()?.keys().cloned().collect();
    let shards = v["shards"]
        .as_array()?
        .iter()
        .map(|s| {
            (
                s["shard"].as_u64().unwrap_or(u64::MAX),
                s["node"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    Some((servers, shards))
}

/// Every server forecast by exactly one node: the nodes' own forecast counts add up to the
/// fleet, and every shard of the view was made by the node holding it.
fn forecast_once_each(c: &Cluster, live: &[usize]) -> bool {
    let mut total = 0;
    let mut holders: HashMap<u64, String> = HashMap::new();
    for &i in live {
        let Some(s) = c.status(i) else { return false };
        total += s["forecast_servers"].as_u64().unwrap_or(0);
        for shard in s["cluster"]["owned_shards"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if let Some(shard) = shard.as_u64() {
                if holders.insert(shard, format!("node-{i}")).is_some() {
                    return false; // held twice
                }
            }
        }
    }
    let Some((servers, shards)) = fleet_view(c, live[0]) else {
        return false;
    };
    total == SERVERS as u64
        && servers.len() == SERVERS
        && holders.len() == SHARDS as usize
        && shards.len() == SHARDS as usize
        && shards.iter().all(|(s, node)| holders.get(s) == Some(node))
}

#[test]
fn three_nodes_share_the_fleet_take_over_without_loss_and_rebalance() {
    if nordiq_testkit::slow::skip("the three-node NATS cluster test") {
        return;
    }
    let tmp = TempDir::new("cluster");
    let layout = Layout {
        nodes: NODES,
        shards: SHARDS as u32,
        replicas: 3,
        lease_seconds: LEASE_SECONDS,
        key: KEY.into(),
        extra: String::new(),
    };
    let mut c = Cluster::new(BIN, tmp.path(), layout).unwrap_or_else(|e| {
        panic!("this test needs root and `ip` to make network namespaces: {e}")
    });
    c.start_all();
    c.settle(
        "the nodes share the 16 shards",
        Duration::from_secs(90),
        shared_by_all,
    );
    let feeder = Feeder::start(&c);

    // Every server forecast by exactly one node; the same fleet view from all three.
    c.settle(
        "every server forecast by exactly one node",
        Duration::from_secs(120),
        |c| forecast_once_each(c, &[1, 2, 3]),
    );
    c.settle(
        "the same fleet view from every node",
        Duration::from_secs(30),
        |c| {
            let views: Vec<_> = (1..=NODES).filter_map(|i| fleet_view(c, i)).collect();
            views.len() == NODES
                && views.windows(2).all(|w| w[0] == w[1])
                && views[0].0.len() == SERVERS
        },
    );
    eprintln!("all {SERVERS} servers forecast once, the same view from {NODES} nodes");
    // nordiqctl status and /metrics show the cluster from any node.
    let ctl = nordiq_testkit::sibling(BIN, "nordiqctl");
    let (_, out) = nordiq_testkit::run(clean_env(
        std::process::Command::new(ctl)
            .arg("--config")
            .arg(tmp.path().join("node-2/nordiq.toml"))
            .arg("status"),
    ));
    assert!(
        out.contains("cluster      node node-2 · 3 nodes (node-1, node-2, node-3)"),
        "{out}"
    );
    let metrics = c.client(2).get("/metrics");
    let text = String::from_utf8_lossy(&metrics.body);
    let fleet: u64 = text
        .lines()
        .filter(|l| l.starts_with("nordiq_cluster_fleet_servers{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum();
    assert_eq!(fleet, SERVERS as u64, "{text}");

    // kill -9 one inference node: its shards are taken over within the bound.
    let held = c.owned(3).expect("node 3 answers").len();
    c.nodes[2].as_ref().expect("node 3").signal(libc::SIGKILL);
    let killed = Instant::now();
    c.settle("nodes 1 and 2 hold every shard", TAKEOVER_BOUND, |c| {
        let a = c.owned(1).map_or(0, |o| o.len());
        let b = c.owned(2).map_or(0, |o| o.len());
        a + b == SHARDS as usize
    });
    let takeover = killed.elapsed();
    eprintln!(
        "node 3 (held {held} shards) killed; taken over in {:.1} s",
        takeover.as_secs_f64()
    );
    c.settle(
        "the survivors forecast the whole fleet",
        Duration::from_secs(60),
        |c| forecast_once_each(c, &[1, 2]),
    );

    // kill -9 one NATS server: ingest and forecasting go on.
    c.nats[1].as_ref().expect("nats 2").signal(libc::SIGKILL);
    let published_before: u64 = [1, 2]
        .iter()
        .filter_map(|&i| c.status(i))
        .map(|s| s["cluster"]["published_total"].as_u64().unwrap_or(0))
        .sum();
    // Publishes stall while JetStream re-elects the leaders the killed server held (NATS's
    // raft waits 4–9 s without heartbeats before an election; meanwhile each publish times
    // out after 3 s and the feeder re-sends): two rounds of batches, which take 5–6 s when
    // nothing stalls, must be acknowledged within that and a slow machine's slack.
    let batches_before = feeder.batches.load(Ordering::Relaxed);
    let retries_before = feeder.retries.load(Ordering::Relaxed);
    let killed = Instant::now();
    while feeder.batches.load(Ordering::Relaxed) < batches_before + 12
        && killed.elapsed() < NATS_LOSS_BOUND
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    let (took, batches, retries) = (
        killed.elapsed(),
        feeder.batches.load(Ordering::Relaxed) - batches_before,
        feeder.retries.load(Ordering::Relaxed) - retries_before,
    );
    eprintln!(
        "NATS server 2 killed: {batches} batches acknowledged in {:.1} s ({retries} re-sent)",
        took.as_secs_f64()
    );
    assert!(
        batches >= 12,
        "ingest stalled with one NATS server down: {batches} batches in {NATS_LOSS_BOUND:?} ({retries} re-sent)"
    );
    let published_after: u64 = [1, 2]
        .iter()
        .filter_map(|&i| c.status(i))
        .map(|s| s["cluster"]["published_total"].as_u64().unwrap_or(0))
        .sum();
    assert!(
        published_after > published_before,
        "nothing published with one NATS server down"
    );
    c.settle(
        "forecasts go on with one NATS server down",
        Duration::from_secs(60),
        |c| forecast_once_each(c, &[1, 2]),
    );
    eprintln!("NATS server 2 killed: ingest and forecasts went on");

    // The killed node rejoins (its log reconciled) and the shards rebalance.
    c.start_nats(2);
    c.start_node(3);
    c.settle(
        "the shards rebalance onto the rejoined node",
        Duration::from_secs(90),
        shared_by_all,
    );
    c.settle(
        "every server forecast by exactly one node again",
        Duration::from_secs(90),
        |c| forecast_once_each(c, &[1, 2, 3]),
    );
    let retries = feeder.retries.load(Ordering::Relaxed);
    let acknowledged = feeder.finish();

    // Everything consumed, then a clean stop of every node (logs rolled into Parquet).
    c.settle(
        "every shard's consumer caught up",
        Duration::from_secs(120),
        |c| {
            c.status(1).is_some_and(|s| {
                s["cluster"]["shards"].as_array().is_some_and(|shards| {
                    shards.len() == SHARDS as usize
                        && shards.iter().all(|s| s["pending"].as_u64() == Some(0))
                })
            })
        },
    );
    for i in 1..=NODES {
        let node = c.nodes[i - 1].take().expect("node");
        let status = node.stop();
        assert!(
            status.success(),
            "node {i} stopped with {status}:\n{}",
            c.node_log(i)
        );
    }
    let metrics: Vec<String> = nordiq_core::config::default_catalog()
        .into_iter()
        .map(|m| m.name)
        .collect();
    let mut seen: HashMap<(String, i64), usize> = HashMap::new();
    let mut per_node = Vec::new();
    for i in 1..=NODES {
        let root = tmp.path().join(format!("node-{i}/state/buffer"));
        let mut n = 0u64;
        nordiq_buffer::read_range(&root, &metrics, 0, i64::MAX, &mut |s| {
            *seen.entry((s.server, s.timestamp_ms)).or_default() += 1;
            n += 1;
        })
        .expect("read a node's buffer");
        per_node.push(n);
    }
    let missing = acknowledged
        .iter()
        .filter(|k| !seen.contains_key(*k))
        .count();
    let doubled = seen.values().filter(|&&n| n > 1).count();
    let reconciled: usize = c
        .node_log(3)
        .lines()
        .filter(|l| l.contains("dropped from the log of the previous run"))
        .count();
    eprintln!(
        "acknowledged {} samples; buffers hold {per_node:?} = {}; missing {missing}; doubled {doubled}; feeder retries {retries}; takeover {:.1} s; node 3 reconciled its log: {}",
        acknowledged.len(),
        per_node.iter().sum::<u64>(),
        takeover.as_secs_f64(),
        reconciled > 0
    );
    assert_eq!(missing, 0, "acknowledged samples missing from every buffer");
    assert_eq!(doubled, 0, "samples applied by two nodes");
    assert_eq!(
        seen.len(),
        acknowledged.len(),
        "samples nobody acknowledged"
    );
}
