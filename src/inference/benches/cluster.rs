//! Cluster benchmark (`cargo bench -p nordiq-inference --bench cluster`, as root: it makes
//! network namespaces): a cluster of 1 and of 3 hosts, each with a NATS server (JetStream,
//! stream replicas 1 resp. 3) and a release `nordiq-inference`, 3,000 servers. Measures
//! ingest throughput at the HTTP edge (answered once JetStream has the batch) and end to
//! end (until every shard's consumer has applied it), CPU seconds per node and per NATS
//! server, and each node's forecast refresh. Prints the numbers and rewrites its section
//! of docs/benchmarks.md. Not a test: nothing here asserts speed.

use nordiq_testkit::bench_report::{machine, replace_section};
use nordiq_testkit::cluster::{Cluster, Layout};
use nordiq_testkit::{ndjson_history, TempDir};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_nordiq-inference");
const KEY: &str = "bench-key-0123456789abcdef";
const SERVERS: usize = 3000;
const SHARDS: u32 = 16;
const LOAD: Duration = Duration::from_secs(20);
const SENDERS: usize = 4;
const BATCH: usize = 1000;

/// CPU seconds (user + system) a process has used.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i)?.parse::<f64>().ok())
        .sum();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    ticks / hz
}

fn names() -> Vec<String> {
    (0..SERVERS).map(|i| format!("srv{i:05}")).collect()
}

struct Run {
    nodes: usize,
    edge_per_s: f64,
    applied_per_s: f64,
    node_cpu: Vec<f64>,
    nats_cpu: Vec<f64>,
    samples: u64,
    refresh_ms: Vec<(usize, f64)>,
}

fn pending(c: &Cluster) -> Option<u64> {
    let s = c.status(1)?;
    let shards = s["cluster"]["shards"].as_array()?;
    (shards.len() == SHARDS as usize).then(|| {
        shards
            .iter()
            .map(|s| s["pending"].as_u64().unwrap_or(u64::MAX / 64))
            .sum()
    })
}

fn run(nodes: usize) -> Run {
    let tmp = TempDir::new("bench-cluster");
    let layout = Layout {
        nodes,
        shards: SHARDS,
        replicas: nodes.min(3),
        lease_seconds: 15,
        key: KEY.into(),
        extra: String::new(),
    };
    let mut c = Cluster::new(BIN, tmp.path(), layout).expect("root and `ip` for namespaces");
    c.start_all();
    let deadline = Instant::now() + Duration::from_secs(120);
    while (1..=nodes)
        .map(|i| c.owned(i).map_or(0, |o| o.len()))
        .sum::<usize>()
        < SHARDS as usize
    {
        assert!(Instant::now() < deadline, "the shards were not taken");
        std::thread::sleep(Duration::from_millis(200));
    }
    let names = names();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    // History so every server is forecast (12 steps needed).
    for chunk in refs.chunks(BATCH) {
        let body = ndjson_history(chunk, 14, 300, |i, t| 30.0 + ((i + t) % 20) as f64);
        let a = c.client(1).post("/feed/data", "application/x-ndjson", body);
        assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    }
    let node_pids: Vec<u32> = c.nodes.iter().flatten().map(|p| p.id()).collect();
    let nats_pids: Vec<u32> = c.nats.iter().flatten().map(|p| p.id()).collect();
    let node_cpu0: Vec<f64> = node_pids.iter().map(|&p| cpu_seconds(p)).collect();
    let nats_cpu0: Vec<f64> = nats_pids.iter().map(|&p| cpu_seconds(p)).collect();
    let accepted = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    std::thread::scope(|scope| {
        for sender in 0..SENDERS {
            let (c, refs, accepted) = (&c, &refs, Arc::clone(&accepted));
            scope.spawn(move || {
                let mut k = sender;
                while started.elapsed() < LOAD {
                    let chunk = &refs[(k * BATCH) % SERVERS..][..BATCH.min(SERVERS)];
                    let body = ndjson_history(chunk, 1, 5, |i, _| 40.0 + (i % 30) as f64);
                    let node = k % c.layout.nodes + 1;
                    if let Some(a) =
                        c.client(node)
                            .try_post("/feed/data", "application/x-ndjson", body)
                    {
                        if a.status == 200 {
                            accepted.fetch_add(BATCH as u64, Ordering::Relaxed);
                        }
                    }
                    k += SENDERS;
                }
            });
        }
    });
    let edge_seconds = started.elapsed().as_secs_f64();
    let deadline = Instant::now() + Duration::from_secs(600);
    while pending(&c) != Some(0) {
        assert!(Instant::now() < deadline, "the consumers did not catch up");
        std::thread::sleep(Duration::from_millis(100));
    }
    let applied_seconds = started.elapsed().as_secs_f64();
    let node_cpu = node_pids
        .iter()
        .zip(&node_cpu0)
        .map(|(&p, c0)| cpu_seconds(p) - c0)
        .collect();
    let nats_cpu = nats_pids
        .iter()
        .zip(&nats_cpu0)
        .map(|(&p, c0)| cpu_seconds(p) - c0)
        .collect();
    let samples = accepted.load(Ordering::Relaxed);
    // Each node's own refresh (its shards), three times, the median.
    let refresh_ms = (1..=nodes)
        .map(|i| {
            let mut times = Vec::new();
            let mut servers = 0;
            for _ in 0..3 {
                let a = c.client(i).post("/admin/refresh", "application/json", "{}");
                let v: serde_json::Value = serde_json::from_slice(&a.body).unwrap_or_default();
                let r = &v;
                servers = r["servers"].as_u64().unwrap_or(0) as usize;
                times.push(r["duration_ms"].as_f64().unwrap_or(f64::NAN));
            }
            times.sort_by(f64::total_cmp);
            (servers, times[1])
        })
        .collect();
    Run {
        nodes,
        edge_per_s: samples as f64 / edge_seconds,
        applied_per_s: samples as f64 / applied_seconds,
        node_cpu,
        nats_cpu,
        samples,
        refresh_ms,
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let runs: Vec<Run> = [1, 3].into_iter().map(run).collect();
    let mut md = String::new();
    let _ = writeln!(
        md,
        "## Cluster (issue 17): ingest and refresh on 1 and 3 nodes\n\n`cargo bench -p nordiq-inference --bench cluster` (as root) on {}; every host is a network namespace on this one machine, so 3 nodes share the same 2 cores (absolute numbers are the machine's; per-node cost is what carries over). {SERVERS} servers, {SHARDS} shards, {SENDERS} senders posting {BATCH}-record NDJSON batches for {} s, round robin over the nodes; stream replicas 1 (1 node) and 3 (3 nodes).\n",
        machine(),
        LOAD.as_secs()
    );
    let _ = writeln!(md, "| nodes | samples | edge (JetStream acked) | applied end to end | CPU s per node | CPU s per NATS server | CPU ms per 1,000 samples (nodes + NATS, all hosts) | refresh per node (servers: ms) |");
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|");
    for r in &runs {
        let total_cpu: f64 = r.node_cpu.iter().sum::<f64>() + r.nats_cpu.iter().sum::<f64>();
        let fmt = |v: &[f64]| {
            v.iter()
                .map(|x| format!("{x:.1}"))
                .collect::<Vec<_>>()
                .join(" / ")
        };
        let refresh = r
            .refresh_ms
            .iter()
            .map(|(s, ms)| format!("{s}: {ms:.0}"))
            .collect::<Vec<_>>()
            .join(", ");
        let _ = writeln!(
            md,
            "| {} | {} | {:.0}/s | {:.0}/s | {} | {} | {:.1} | {} |",
            r.nodes,
            r.samples,
            r.edge_per_s,
            r.applied_per_s,
            fmt(&r.node_cpu),
            fmt(&r.nats_cpu),
            total_cpu * 1e6 / r.samples.max(1) as f64,
            refresh
        );
    }
    print!("{md}");
    let report = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/benchmarks.md");
    replace_section(&report, "cluster", &md).expect("writing docs/benchmarks.md");
    println!("wrote {}", report.display());
}
