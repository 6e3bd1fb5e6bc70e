//! `[sources]`: what `nordiq-metrics` reads and how it delivers to nordiq-inference.

use super::invalid::{in_catalog, Invalid};
use serde::{Deserialize, Serialize};

/// Which source `nordiq-metrics run` (and the unit) starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    /// The simulated fleet (the demo's default).
    Simulator,
    /// This machine, read from /proc.
    Host,
    /// node_exporter endpoints, scraped (`sources.prometheus.targets`).
    NodeExporter,
    /// A Prometheus server's HTTP API, pulled with `query_range` (`sources.prometheus.url`).
    Prometheus,
    /// Metricbeat-style documents in Elasticsearch (`sources.elasticsearch`).
    Elasticsearch,
    /// Documents in a MongoDB collection (`sources.mongodb`).
    Mongodb,
}

impl SourceKind {
    pub fn name(self) -> &'static str {
        match self {
            SourceKind::Simulator => "simulator",
            SourceKind::Host => "host",
            SourceKind::NodeExporter => "node_exporter",
            SourceKind::Prometheus => "prometheus",
            SourceKind::Elasticsearch => "elasticsearch",
            SourceKind::Mongodb => "mongodb",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SourcesConfig {
    pub kind: SourceKind,
    /// Where nordiq-inference answers; empty: derived from `server.listen`.
    pub inference_url: String,
    /// Seconds between samples (the simulator and the host source).
    pub interval_seconds: u64,
    /// Records per delivered batch at most.
    pub batch_max_records: usize,
    /// Batches that could not be delivered wait here (under `paths.state_dir`) in order;
    /// above this many bytes the oldest are dropped, and counted.
    pub spool_max_bytes: u64,
    /// Longest wait between delivery retries (they back off from 1 s).
    pub retry_max_seconds: u64,
    /// In a cluster: validate and publish batches straight to the NATS JetStream stream
    /// (the servers of `[cluster]`) instead of posting them to a node.
    pub publish_to_cluster: bool,
    pub simulator: SimulatorConfig,
    pub host: HostConfig,
    pub prometheus: PrometheusSourceConfig,
    pub elasticsearch: ElasticsearchConfig,
    pub mongodb: MongodbConfig,
}

impl Default for SourcesConfig {
    fn default() -> Self {
        SourcesConfig {
            kind: SourceKind::Simulator,
            inference_url: String::new(),
            interval_seconds: 5,
            batch_max_records: 5000,
            spool_max_bytes: 256 << 20,
            retry_max_seconds: 60,
            publish_to_cluster: false,
            simulator: SimulatorConfig::default(),
            host: HostConfig::default(),
            prometheus: PrometheusSourceConfig::default(),
            elasticsearch: ElasticsearchConfig::default(),
            mongodb: MongodbConfig::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SimulatorConfig {
    pub servers: usize,
    pub seed: u64,
    /// Simulated time runs this many times faster than the clock (patterns, state changes,
    /// scenario ramps); timestamps stay the wall clock's.
    pub speed: f64,
    /// The scenario API (`/scenario/set`, `/scenario/status`).
    pub listen: String,
}

impl Default for SimulatorConfig {
    fn default() -> Self {
        SimulatorConfig {
            servers: 20,
            seed: 42,
            speed: 1.0,
            listen: "127.0.0.1:8010".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HostConfig {
    /// The name samples carry; empty: this machine's hostname.
    pub server_name: String,
    /// The profile samples carry; empty: inferred from the name like any other server.
    pub profile: String,
    /// `front_close_wait`: CLOSE_WAIT sockets whose local port is one of these (the
    /// services this host offers).
    pub front_ports: Vec<u16>,
    /// `back_close_wait`: CLOSE_WAIT sockets whose remote port is one of these (the
    /// backends this host talks to).
    pub back_ports: Vec<u16>,
    /// `java_cpu_pct` sums the CPU of processes with these names (comm).
    pub java_process_names: Vec<String>,
    /// The filesystem `disk_usage_pct` measures.
    pub disk_path: String,
}

impl Default for HostConfig {
    fn default() -> Self {
        HostConfig {
            server_name: String::new(),
            profile: String::new(),
            front_ports: vec![80, 443, 8000, 8080, 8443],
            back_ports: vec![1521, 3306, 5432, 6379, 9042, 9092, 9200, 27017],
            java_process_names: vec!["java".into()],
            disk_path: "/".into(),
        }
    }
}

/// Prometheus as a source: node_exporter endpoints scraped, or a Prometheus server pulled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PrometheusSourceConfig {
    /// node_exporter endpoints: `http://host:9100` (the server is the host) or
    /// `name=http://host:9100/metrics`.
    pub targets: Vec<String>,
    /// The filesystem `disk_usage_pct` measures.
    pub mountpoint: String,
    /// A Prometheus server for `query_range` (`http://prometheus:9090`).
    pub url: String,
    /// A CA (PEM) trusted for `https://` targets and url, beside the system roots.
    pub ca_file: String,
    /// The label that names the server in the query results.
    pub server_label: String,
    /// `host:9100` → `host`.
    pub strip_port: bool,
    /// Resolution asked of Prometheus.
    pub step_seconds: u64,
    /// The newest seconds are left for the next poll (Prometheus may still be scraping them).
    pub lag_seconds: u64,
    /// On the first run (no high-water mark yet), how far back to start.
    pub start_hours: u64,
    /// Catalog metric → PromQL; every query must keep `server_label`. Empty: node_exporter
    /// defaults for the 14 metrics that have them (see docs/metrics.md).
    pub queries: std::collections::BTreeMap<String, String>,
}

impl Default for PrometheusSourceConfig {
    fn default() -> Self {
        PrometheusSourceConfig {
            targets: Vec::new(),
            mountpoint: "/".into(),
            url: String::new(),
            ca_file: String::new(),
            server_label: "instance".into(),
            strip_port: true,
            step_seconds: 60,
            lag_seconds: 60,
            start_hours: 24,
            queries: std::collections::BTreeMap::new(),
        }
    }
}

/// A document field that feeds a catalog metric: the value × `scale`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldMap {
    /// Dotted path into the document (`system.cpu.user.pct`).
    pub field: String,
    #[serde(default = "one")]
    pub scale: f64,
}

fn one() -> f64 {
    1.0
}

fn field(path: &str, scale: f64) -> FieldMap {
    FieldMap {
        field: path.into(),
        scale,
    }
}

/// Elasticsearch as a source: Metricbeat-style documents, read in `@timestamp` order from
/// a persisted high-water mark.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ElasticsearchConfig {
    pub url: String,
    /// Index or pattern searched.
    pub index: String,
    pub timestamp_field: String,
    /// The field naming the server.
    pub server_field: String,
    /// A file holding an API key, sent as `Authorization: ApiKey …`; empty: none.
    pub api_key_file: String,
    /// Basic auth: the user, with its password in `password_file` (or the systemd
    /// credential `elasticsearch-password`); empty: none.
    pub username: String,
    pub password_file: String,
    /// A CA (PEM) trusted for an `https://` url, beside the system roots.
    pub ca_file: String,
    pub batch_size: usize,
    /// Documents newer than this are left for the next poll (indexing delay).
    pub lag_seconds: u64,
    /// On the first run, how far back to start.
    pub start_hours: u64,
    /// Catalog metric → document field and scale. Default: Metricbeat's system module.
    pub fields: std::collections::BTreeMap<String, FieldMap>,
}

impl Default for ElasticsearchConfig {
    fn default() -> Self {
        ElasticsearchConfig {
            url: String::new(),
            index: "metricbeat-*".into(),
            timestamp_field: "@timestamp".into(),
            server_field: "host.name".into(),
            api_key_file: String::new(),
            username: String::new(),
            password_file: String::new(),
            ca_file: String::new(),
            batch_size: 1000,
            lag_seconds: 30,
            start_hours: 24,
            fields: [
                ("cpu_user_pct", field("system.cpu.user.pct", 100.0)),
                ("cpu_sys_pct", field("system.cpu.system.pct", 100.0)),
                ("cpu_iowait_pct", field("system.cpu.iowait.pct", 100.0)),
                ("cpu_idle_pct", field("system.cpu.idle.pct", 100.0)),
                (
                    "mem_used_pct",
                    field("system.memory.actual.used.pct", 100.0),
                ),
                ("swap_used_pct", field("system.memory.swap.used.pct", 100.0)),
                ("disk_usage_pct", field("system.filesystem.used.pct", 100.0)),
                ("load_average", field("system.load.1", 1.0)),
                (
                    "uptime_days",
                    field("system.uptime.duration.ms", 1.0 / 86_400_000.0),
                ),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        }
    }
}

/// MongoDB as a source: documents with a timestamp, read in order from a persisted
/// high-water mark.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MongodbConfig {
    /// A MongoDB connection string: `mongodb://host:port,host2:port/?replicaSet=rs0` or
    /// `mongodb+srv://cluster.example.com`; its options (`tls`, `authSource`, timeouts …)
    /// are the driver's. Keep the password out of it: use `password_file`.
    pub uri: String,
    /// Older form: `host:port` of one server, connected directly; used when `uri` is empty.
    pub address: String,
    /// The user to authenticate as (SCRAM unless `auth_mechanism` says otherwise); empty:
    /// the URI's, or none.
    pub username: String,
    /// A file holding the password (or the systemd credential `mongodb-password`).
    pub password_file: String,
    /// The database holding the user; empty: `admin` (or the URI's `authSource` when the
    /// URI names the user too).
    pub auth_source: String,
    /// SCRAM-SHA-256, SCRAM-SHA-1 or MONGODB-X509; empty: negotiated with the server.
    pub auth_mechanism: String,
    /// TLS, with the public roots unless `ca_file` is set.
    pub tls: bool,
    /// A CA (PEM) trusted instead of the public roots; turns TLS on.
    pub ca_file: String,
    /// This client's certificate and key in one PEM file (X.509 authentication or a
    /// server that asks for client certificates); turns TLS on.
    pub cert_key_file: String,
    pub database: String,
    pub collection: String,
    /// A BSON date.
    pub timestamp_field: String,
    pub server_field: String,
    pub batch_size: usize,
    pub lag_seconds: u64,
    pub start_hours: u64,
    /// Catalog metric → document field and scale; empty: fields named like the metrics.
    pub fields: std::collections::BTreeMap<String, FieldMap>,
}

impl Default for MongodbConfig {
    fn default() -> Self {
        MongodbConfig {
            uri: String::new(),
            address: String::new(),
            username: String::new(),
            password_file: String::new(),
            auth_source: String::new(),
            auth_mechanism: String::new(),
            tls: false,
            ca_file: String::new(),
            cert_key_file: String::new(),
            database: "monitoring".into(),
            collection: "metrics".into(),
            timestamp_field: "timestamp".into(),
            server_field: "server_name".into(),
            batch_size: 1000,
            lag_seconds: 5,
            start_hours: 24,
            fields: std::collections::BTreeMap::new(),
        }
    }
}

impl MongodbConfig {
    /// Checked when `kind = "mongodb"`: where to connect, and settings that contradict.
    fn validate(&self) -> Result<(), Invalid> {
        let bad = |k: &str, m: &str| Err(Invalid::new(format!("sources.mongodb.{k}"), m));
        match (self.uri.is_empty(), self.address.is_empty()) {
            (true, true) => {
                return bad(
                    "uri",
                    "kind = \"mongodb\" needs a connection string (mongodb://host:27017/)",
                )
            }
            (false, false) => return bad("address", "set uri or the older address, not both"),
            _ => {}
        }
        let known_scheme =
            self.uri.starts_with("mongodb://") || self.uri.starts_with("mongodb+srv://");
        if !self.uri.is_empty() && !known_scheme {
            return bad("uri", "must start with mongodb:// or mongodb+srv://");
        }
        if !self.password_file.is_empty() && self.username.is_empty() {
            return bad(
                "username",
                "a password_file needs the username it belongs to",
            );
        }
        if !matches!(
            self.auth_mechanism.as_str(),
            "" | "SCRAM-SHA-256" | "SCRAM-SHA-1" | "MONGODB-X509"
        ) {
            return bad(
                "auth_mechanism",
                "must be SCRAM-SHA-256, SCRAM-SHA-1, MONGODB-X509 or empty (negotiated)",
            );
        }
        if self.batch_size == 0 {
            return bad("batch_size", "must be at least 1");
        }
        Ok(())
    }
}

impl SourcesConfig {
    /// The first bad value; `known` says which metrics the catalog holds.
    pub(crate) fn validate(&self, known: &dyn Fn(&str) -> bool) -> Result<(), Invalid> {
        fn is_http_url(url: &str) -> bool {
            url.starts_with("http://") || url.starts_with("https://")
        }
        in_catalog(
            "sources.prometheus.queries",
            self.prometheus
                .queries
                .keys()
                .map(|m| (m.as_str(), m.as_str())),
            known,
        )?;
        let bad = |k: &str, m: &str| Err(Invalid::new(format!("sources.{k}"), m));
        if self.interval_seconds == 0 || self.interval_seconds > 3600 {
            return bad("interval_seconds", "must be 1 – 3600");
        }
        if self.batch_max_records == 0 {
            return bad("batch_max_records", "must be at least 1");
        }
        if self.spool_max_bytes < 1 << 20 {
            return bad("spool_max_bytes", "must be at least 1 MiB (1048576)");
        }
        if self.retry_max_seconds == 0 {
            return bad("retry_max_seconds", "must be at least 1");
        }
        let p = &self.prometheus;
        if p.step_seconds == 0 {
            return bad("prometheus.step_seconds", "must be at least 1");
        }
        match self.kind {
            SourceKind::NodeExporter if p.targets.is_empty() => {
                return bad(
                    "prometheus.targets",
                    "kind = \"node_exporter\" needs at least one target",
                );
            }
            SourceKind::Elasticsearch if !is_http_url(&self.elasticsearch.url) => {
                return bad(
                    "elasticsearch.url",
                    "kind = \"elasticsearch\" needs an http:// or https:// URL",
                );
            }
            SourceKind::Mongodb => self.mongodb.validate()?,
            SourceKind::Prometheus if !is_http_url(&p.url) => {
                return bad(
                    "prometheus.url",
                    "kind = \"prometheus\" needs an http:// or https:// URL of the Prometheus server",
                );
            }
            _ => {}
        }
        let es = &self.elasticsearch;
        if es.username.is_empty() != es.password_file.is_empty() {
            return bad(
                "elasticsearch.password_file",
                "basic auth needs both elasticsearch.username and elasticsearch.password_file",
            );
        }
        if !es.username.is_empty() && !es.api_key_file.is_empty() {
            return bad(
                "elasticsearch.api_key_file",
                "use an API key or basic auth (username, password_file), not both",
            );
        }
        let sim = &self.simulator;
        if sim.servers == 0 || sim.servers > 100_000 {
            return bad("simulator.servers", "must be 1 – 100000");
        }
        if !(sim.speed.is_finite() && sim.speed > 0.0 && sim.speed <= 10_000.0) {
            return bad("simulator.speed", "must be > 0 and ≤ 10000");
        }
        if sim.listen.parse::<std::net::SocketAddr>().is_err() {
            return bad("simulator.listen", "must be an address like 127.0.0.1:8010");
        }
        Ok(())
    }
}
