//! A NordIQ cluster for tests and benches: `n` hosts (network namespaces, see [`Hosts`]),
//! each with a clustered `nats-server` (JetStream) and a `nordiq-inference` in cluster mode.
//! Processes are killed on drop; logs stay under the given directory.

use crate::netns::Hosts;
use crate::{clean_env, wait_until, Http, Proc};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How the cluster is laid out.
#[derive(Debug, Clone)]
pub struct Layout {
    pub nodes: usize,
    pub shards: u32,
    pub replicas: usize,
    pub lease_seconds: u64,
    /// The API key every node accepts.
    pub key: String,
    /// More TOML for every node's config (sections after `[cluster]`).
    pub extra: String,
}

pub struct Cluster {
    pub dir: PathBuf,
    pub hosts: Hosts,
    pub layout: Layout,
    /// `nordiq-inference` (a `CARGO_BIN_EXE_…` path).
    bin: PathBuf,
    pub nats: Vec<Option<Proc>>,
    pub nodes: Vec<Option<Proc>>,
}

impl Cluster {
    /// The hosts, nothing started yet (needs root and `ip`: see [`Hosts::create`]).
    pub fn new(bin: &str, dir: &Path, layout: Layout) -> Result<Cluster, String> {
        Ok(Cluster {
            dir: dir.to_path_buf(),
            hosts: Hosts::create(layout.nodes)?,
            bin: PathBuf::from(bin),
            nats: (0..layout.nodes).map(|_| None).collect(),
            nodes: (0..layout.nodes).map(|_| None).collect(),
            layout,
        })
    }

    fn nats_config(&self, i: usize) -> PathBuf {
        let routes: Vec<String> = (1..=self.layout.nodes)
            .filter(|&j| j != i)
            .map(|j| format!("nats://{}:6222", self.hosts.addr(j)))
            .collect();
        let path = self.dir.join(format!("nats-{i}.conf"));
        let cluster = if self.layout.nodes > 1 {
            format!(
                "cluster {{\n  name: nordiq\n  listen: \"{}:6222\"\n  routes: [{}]\n}}\n",
                self.hosts.addr(i),
                routes.join(", ")
            )
        } else {
            String::new()
        };
        let text = format!(
            "server_name: n{i}\nlisten: \"{}:4222\"\njetstream {{\n  store_dir: \"{}\"\n}}\n{cluster}",
            self.hosts.addr(i),
            self.dir.join(format!("js-{i}")).display(),
        );
        std::fs::write(&path, text).expect("nats config");
        path
    }

    /// Node `i`'s directory (config, key, state).
    pub fn node_dir(&self, i: usize) -> PathBuf {
        self.dir.join(format!("node-{i}"))
    }

    fn node_config(&self, i: usize) -> PathBuf {
        let node_dir = self.node_dir(i);
        std::fs::create_dir_all(&node_dir).expect("node dir");
        std::fs::write(node_dir.join("api-key"), format!("{}\n", self.layout.key)).expect("key");
        // The node's own NATS server first: it prefers it.
        let urls: Vec<String> = [i]
            .into_iter()
            .chain((1..=self.layout.nodes).filter(|&j| j != i))
            .map(|j| format!("\"nats://{}:4222\"", self.hosts.addr(j)))
            .collect();
        let path = node_dir.join("nordiq.toml");
        let l = &self.layout;
        let text = format!(
            "[server]\nlisten = \"{a}:8080\"\nshutdown_timeout_seconds = 10\n\n[paths]\nstate_dir = \"{state}\"\n\n[auth]\napi_key_file = \"{key}\"\n\n[cluster]\nenabled = true\nnats_urls = [{urls}]\nnode_name = \"node-{i}\"\nreplicas = {replicas}\nshards = {shards}\nlease_seconds = {lease}\n\n{extra}\n",
            a = self.hosts.addr(i),
            state = node_dir.join("state").display(),
            key = node_dir.join("api-key").display(),
            urls = urls.join(", "),
            replicas = l.replicas,
            shards = l.shards,
            lease = l.lease_seconds,
            extra = l.extra,
        );
        std::fs::write(&path, text).expect("node config");
        path
    }

    /// Starts (or restarts) NATS server `i` (1-based).
    pub fn start_nats(&mut self, i: usize) {
        let conf = self.nats_config(i);
        let mut cmd = self.hosts.command(i, "nats-server");
        cmd.arg("-c").arg(conf);
        self.nats[i - 1] = Some(Proc::start(
            &mut cmd,
            &self.dir.join(format!("nats-{i}.log")),
        ));
    }

    /// Starts (or restarts) node `i` and waits until it answers.
    pub fn start_node(&mut self, i: usize) {
        let conf = self.node_config(i);
        let mut cmd = self.hosts.command(i, &self.bin.to_string_lossy());
        clean_env(cmd.arg("--config").arg(conf));
        // Appended, so a restart keeps the first run's log beside the second's.
        self.nodes[i - 1] = Some(Proc::start(&mut cmd, &self.node_log_path(i)));
        let client = self.client(i);
        wait_until(
            &format!("node {i} answers"),
            Duration::from_secs(60),
            || client.try_get("/health").is_ok_and(|a| a.status == 200),
        );
    }

    /// Starts every NATS server, then every node.
    pub fn start_all(&mut self) {
        for i in 1..=self.layout.nodes {
            self.start_nats(i);
        }
        for i in 1..=self.layout.nodes {
            self.start_node(i);
        }
    }

    pub fn client(&self, i: usize) -> Http {
        Http::for_url(
            &format!("http://{}:8080", self.hosts.addr(i)),
            Some(&self.layout.key),
        )
        .with_timeout(Duration::from_secs(10))
    }

    /// `GET /status` of node `i`, when it answers.
    pub fn status(&self, i: usize) -> Option<Value> {
        let a = self.client(i).try_get("/status").ok()?;
        (a.status == 200).then(|| serde_json::from_slice(&a.body).ok())?
    }

    /// The shards node `i` holds (None when it does not answer).
    pub fn owned(&self, i: usize) -> Option<Vec<u64>> {
        let s = self.status(i)?;
        Some(
            s["cluster"]["owned_shards"]
                .as_array()?
                .iter()
                .filter_map(Value::as_u64)
                .collect(),
        )
    }

    fn node_log_path(&self, i: usize) -> PathBuf {
        self.dir.join(format!("node-{i}.log"))
    }

    pub fn node_log(&self, i: usize) -> String {
        std::fs::read_to_string(self.node_log_path(i)).unwrap_or_default()
    }

    /// What every node says (shards held, servers, forecasts, the fleet view's size, the
    /// end of its log), for a failure's message.
    pub fn explain(&self) -> String {
        let mut out = String::new();
        for i in 1..=self.layout.nodes {
            let status = self.status(i);
            let field = |f: &str| status.as_ref().map(|s| s[f].clone());
            let view = self
                .client(i)
                .try_get("/predictions/current")
                .ok()
                .and_then(|a| serde_json::from_slice::<Value>(&a.body).ok())
                .map(|v| {
                    (
                        v["servers"].as_object().map_or(0, |o| o.len()),
                        v["shards"].clone(),
                    )
                });
            let log = self.node_log(i);
            let tail: Vec<&str> = log.lines().rev().take(15).collect();
            out.push_str(&format!(
                "\n--- node {i}: owned {:?}, servers {:?}, forecast {:?}, view {view:?}\n{}\n",
                status
                    .as_ref()
                    .map(|s| s["cluster"]["owned_shards"].clone()),
                field("servers"),
                field("forecast_servers"),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            ));
        }
        out
    }

    /// Polls `ok` until it holds; after `timeout` panics naming `what`, with
    /// [`Cluster::explain`].
    pub fn settle(&self, what: &str, timeout: Duration, mut ok: impl FnMut(&Cluster) -> bool) {
        let deadline = std::time::Instant::now() + timeout;
        while !ok(self) {
            if std::time::Instant::now() > deadline {
                panic!("timed out waiting for {what}:{}", self.explain());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Processes first: a namespace is removed only once nothing runs in it.
        self.nodes.clear();
        self.nats.clear();
    }
}
