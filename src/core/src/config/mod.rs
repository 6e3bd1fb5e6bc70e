//! `nordiq.toml`: every key has a default, unknown keys and bad values are errors that name
//! the file, the line and the key. One file per section, each with its own validation;
//! this file holds the whole, its loading, and the cross-section rules (restart-only keys).

mod alerts;
mod anomaly;
mod auth;
mod buffer;
mod catalog;
mod cluster;
mod dashboard;
mod drift;
mod forecast;
mod import;
mod ingest;
mod invalid;
mod live;
mod locate;
mod log;
mod model;
mod notify;
mod paths;
mod profiles;
mod prometheus;
mod remote_write;
mod risk;
mod server;
mod sources;
mod tls;
mod training;
mod window;

pub use alerts::AlertsConfig;
pub use auth::AuthConfig;
pub use buffer::BufferConfig;
pub use cluster::ClusterConfig;
pub use dashboard::DashboardConfig;
pub use forecast::{BaselineKind, ForecastConfig};
pub use import::ImportConfig;
pub use ingest::{IngestConfig, MixedBatchPolicy, UnknownMetricPolicy};
pub use invalid::Invalid;
pub use log::LogConfig;
pub use model::ModelConfig;
pub use notify::{AlertmanagerConfig, NotifyConfig, WebhookConfig, ALERT_KINDS};
pub use paths::PathsConfig;
pub use risk::RiskConfig;
pub use server::ServerConfig;
pub use tls::TlsConfig;
pub use training::{Launcher, TrainingConfig};
pub use window::WindowConfig;

pub use anomaly::AnomalyConfig;
pub use catalog::{default_catalog, Aggregate, Direction, MetricDef, RiskThresholds};
pub use drift::DriftConfig;
pub use live::LiveConfig;
pub use profiles::{default_profiles, glob_match, infer_profile, ProfileDef};
pub use prometheus::PrometheusConfig;
pub use remote_write::RemoteWriteConfig;
pub use sources::{
    ElasticsearchConfig, FieldMap, HostConfig, MongodbConfig, PrometheusSourceConfig,
    SimulatorConfig, SourceKind, SourcesConfig,
};

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Where a binary looks for its config when neither `--config` nor `NORDIQ_CONFIG` is given.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/nordiq/nordiq.toml";
/// Environment variable naming the config file.
pub const CONFIG_ENV: &str = "NORDIQ_CONFIG";

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub paths: PathsConfig,
    pub auth: AuthConfig,
    pub tls: TlsConfig,
    pub model: ModelConfig,
    pub ingest: IngestConfig,
    pub window: WindowConfig,
    pub forecast: ForecastConfig,
    pub risk: RiskConfig,
    pub alerts: AlertsConfig,
    pub notify: NotifyConfig,
    pub anomaly: AnomalyConfig,
    pub live: LiveConfig,
    pub drift: DriftConfig,
    pub buffer: BufferConfig,
    pub import: ImportConfig,
    pub training: TrainingConfig,
    pub dashboard: DashboardConfig,
    pub sources: SourcesConfig,
    pub prometheus: PrometheusConfig,
    pub remote_write: RemoteWriteConfig,
    pub log: LogConfig,
    pub cluster: ClusterConfig,
    /// The metric catalog; absent means the 14 defaults.
    pub metrics: Vec<MetricDef>,
    /// Profiles in match order; absent means the 7 defaults.
    pub profiles: Vec<ProfileDef>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            server: ServerConfig::default(),
            paths: PathsConfig::default(),
            auth: AuthConfig::default(),
            tls: TlsConfig::default(),
            model: ModelConfig::default(),
            ingest: IngestConfig::default(),
            window: WindowConfig::default(),
            forecast: ForecastConfig::default(),
            risk: RiskConfig::default(),
            alerts: AlertsConfig::default(),
            notify: NotifyConfig::default(),
            anomaly: AnomalyConfig::default(),
            live: LiveConfig::default(),
            drift: DriftConfig::default(),
            buffer: BufferConfig::default(),
            import: ImportConfig::default(),
            training: TrainingConfig::default(),
            dashboard: DashboardConfig::default(),
            sources: SourcesConfig::default(),
            prometheus: PrometheusConfig::default(),
            remote_write: RemoteWriteConfig::default(),
            log: LogConfig::default(),
            cluster: ClusterConfig::default(),
            metrics: default_catalog(),
            profiles: default_profiles(),
        }
    }
}

/// A config that could not be used. Each variant says which file, and where possible the
/// line and key, so an operator can go straight to it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {source} (pass --config PATH or set NORDIQ_CONFIG)")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: {key}: {message}")]
    Invalid {
        path: PathBuf,
        line: usize,
        key: String,
        message: String,
    },
}

impl Config {
    /// Parses and validates a config file's text; `path` is only used in messages.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let de = toml::Deserializer::parse(text).map_err(|e| ConfigError::Invalid {
            path: path.to_path_buf(),
            line: e
                .span()
                .map(|s| locate::line_of(text, s.start))
                .unwrap_or(0),
            key: String::from("(syntax)"),
            message: e.message().trim().to_string(),
        })?;
        let config: Config = serde_path_to_error::deserialize(de).map_err(|e| {
            let key = e.path().to_string();
            let inner = e.inner();
            let line = inner
                .span()
                .map(|s| locate::line_of(text, s.start))
                .or_else(|| locate::line_of_key(text, &key))
                .unwrap_or(0);
            ConfigError::Invalid {
                path: path.to_path_buf(),
                line,
                key,
                message: inner.message().trim().to_string(),
            }
        })?;
        config
            .validate()
            .map_err(|Invalid { key, message }| ConfigError::Invalid {
                path: path.to_path_buf(),
                line: locate::line_of_key(text, &key).unwrap_or(0),
                key,
                message,
            })?;
        Ok(config)
    }

    /// Reads and validates the file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::parse(&text, path)
    }

    /// The config path a binary should use: the flag, else `NORDIQ_CONFIG`, else the default.
    pub fn resolve_path(flag: Option<&Path>) -> PathBuf {
        if let Some(p) = flag {
            return p.to_path_buf();
        }
        match std::env::var_os(CONFIG_ENV) {
            Some(p) if !p.is_empty() => PathBuf::from(p),
            _ => PathBuf::from(DEFAULT_CONFIG_PATH),
        }
    }

    /// The development default: the embedded defaults with state, key and listener local
    /// to `dir`, so the whole suite runs unprivileged.
    pub fn dev(dir: &Path) -> Config {
        let mut config = Config::default();
        config.paths.state_dir = dir.join(".nordiq");
        config.auth.api_key_file = dir.join(".nordiq_key");
        config.auth.keys_file = dir.join(".nordiq_keys.toml");
        config
    }

    /// Index of a metric in the catalog.
    pub fn metric_index(&self, name: &str) -> Option<usize> {
        self.metrics.iter().position(|m| m.name == name)
    }

    /// Aggregated steps in one season.
    pub fn season_steps(&self) -> usize {
        (self.forecast.season_seconds / self.model.step_seconds.max(1)) as usize
    }

    /// Aggregated steps each server keeps (see `window.history_steps`).
    pub fn history_steps(&self) -> usize {
        match self.window.history_steps {
            // A week and a season: the weekly seasonal naive needs a week behind every
            // forecast step plus a season of its own residuals for its bands.
            0 => self
                .model
                .encoder_steps
                .max(self.forecast.median_seasons.max(2) * self.season_steps())
                .max(8 * self.season_steps()),
            n => n.max(self.model.encoder_steps),
        }
    }

    /// Checks the values serde cannot, section by section: the offending key and why.
    pub fn validate(&self) -> Result<(), Invalid> {
        let known = |m: &str| self.metric_index(m).is_some();
        self.server.validate()?;
        self.tls.validate()?;
        self.dashboard.validate()?;
        self.training.validate()?;
        self.paths.validate()?;
        self.model.validate()?;
        self.forecast.validate(&self.model)?;
        self.risk.validate(self.model.horizon_minutes())?;
        self.window.validate()?;
        self.ingest.validate()?;
        self.buffer.validate()?;
        self.alerts.validate()?;
        self.notify.validate()?;
        self.import.validate(&known)?;
        self.sources.validate(&known)?;
        self.prometheus.validate(&known)?;
        self.remote_write.validate(&known)?;
        self.anomaly.validate(self.model.horizon_steps)?;
        self.live.validate()?;
        self.drift.validate()?;
        self.cluster
            .validate(self.model.encoder_steps as u64 * self.model.step_seconds as u64)?;
        invalid::require(
            !self.sources.publish_to_cluster || self.cluster.enabled,
            "sources.publish_to_cluster",
            || "needs [cluster] enabled = true (the NATS servers are taken from [cluster])".into(),
        )?;
        catalog::validate_catalog(&self.metrics)?;
        profiles::validate_profiles(&self.profiles, &self.ingest.default_profile)
    }

    /// Keys whose change needs a restart (windows and the listener are built from them):
    /// the ones [`RESTART_ONLY`] lists that differ in `new`.
    pub fn restart_only_differences(&self, new: &Config) -> Vec<&'static str> {
        RESTART_ONLY
            .iter()
            .filter(|k| !(k.same)(self, new))
            .map(|k| k.key)
            .collect()
    }

    /// `new`, with every restart-only key taken from `self` (a reload keeps the running
    /// values of these and says so).
    pub fn with_restart_only_from(&self, new: &Config) -> Config {
        let mut merged = new.clone();
        for k in &RESTART_ONLY {
            (k.keep)(&mut merged, self);
        }
        merged
    }
}

/// A config key that a reload cannot change: how to compare it, and how to keep the
/// running value.
struct RestartOnly {
    key: &'static str,
    same: fn(&Config, &Config) -> bool,
    keep: fn(&mut Config, &Config),
}

/// The one list of restart-only keys.
const RESTART_ONLY: [RestartOnly; 11] = [
    RestartOnly {
        key: "cluster",
        same: |a, b| a.cluster == b.cluster,
        keep: |to, from| to.cluster = from.cluster.clone(),
    },
    RestartOnly {
        key: "notify",
        same: |a, b| a.notify == b.notify,
        keep: |to, from| to.notify = from.notify.clone(),
    },
    RestartOnly {
        key: "server.listen",
        same: |a, b| a.server.listen == b.server.listen,
        keep: |to, from| to.server.listen = from.server.listen.clone(),
    },
    RestartOnly {
        key: "paths",
        same: |a, b| a.paths == b.paths,
        keep: |to, from| to.paths = from.paths.clone(),
    },
    RestartOnly {
        key: "model",
        same: |a, b| a.model == b.model,
        keep: |to, from| to.model = from.model.clone(),
    },
    RestartOnly {
        key: "metrics",
        same: |a, b| a.metrics == b.metrics,
        keep: |to, from| to.metrics = from.metrics.clone(),
    },
    RestartOnly {
        key: "forecast.season_seconds",
        same: |a, b| a.forecast.season_seconds == b.forecast.season_seconds,
        keep: |to, from| to.forecast.season_seconds = from.forecast.season_seconds,
    },
    RestartOnly {
        key: "forecast.median_seasons",
        same: |a, b| a.forecast.median_seasons == b.forecast.median_seasons,
        keep: |to, from| to.forecast.median_seasons = from.forecast.median_seasons,
    },
    RestartOnly {
        key: "window",
        same: |a, b| a.window == b.window,
        keep: |to, from| to.window = from.window.clone(),
    },
    RestartOnly {
        key: "buffer.enabled",
        same: |a, b| a.buffer.enabled == b.buffer.enabled,
        keep: |to, from| to.buffer.enabled = from.buffer.enabled,
    },
    // Turning HTTPS on or off changes the listener; new certificate files reload.
    RestartOnly {
        key: "tls.cert_file (HTTPS on or off)",
        same: |a, b| a.tls.files_set() == b.tls.files_set(),
        keep: |to, from| to.tls = from.tls.clone(),
    },
];

/// A thread-count setting: `n`, or every core for 0.
pub fn threads_or_cores(n: usize) -> usize {
    match n {
        0 => std::thread::available_parallelism()
            .map(|c| c.get())
            .unwrap_or(1),
        n => n,
    }
}

/// Letters, digits and `_`, not starting with a digit, at most 64 bytes.
fn is_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !s.starts_with(|c: char| c.is_ascii_digit())
}

#[cfg(test)]
mod tests;
