//! `nordiq.toml`: every key has a default, unknown keys and bad values are errors that name
//! the file, the line and the key.

mod anomaly;
mod catalog;
mod drift;
mod live;
mod locate;
mod profiles;
mod prometheus;
mod remote_write;
mod sources;

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
use std::net::SocketAddr;
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
    pub model: ModelConfig,
    pub ingest: IngestConfig,
    pub window: WindowConfig,
    pub forecast: ForecastConfig,
    pub risk: RiskConfig,
    pub alerts: AlertsConfig,
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
            model: ModelConfig::default(),
            ingest: IngestConfig::default(),
            window: WindowConfig::default(),
            forecast: ForecastConfig::default(),
            risk: RiskConfig::default(),
            alerts: AlertsConfig::default(),
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
            metrics: default_catalog(),
            profiles: default_profiles(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Bound only when systemd passes no socket.
    pub listen: String,
    /// How long SIGTERM waits for in-flight requests before exiting anyway.
    pub shutdown_timeout_seconds: u64,
    /// Largest accepted request body (413 above it).
    pub max_body_bytes: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:8000".into(),
            shutdown_timeout_seconds: 10,
            max_body_bytes: 32 * 1024 * 1024,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PathsConfig {
    pub state_dir: PathBuf,
}

impl Default for PathsConfig {
    fn default() -> Self {
        PathsConfig {
            state_dir: PathBuf::from("/var/lib/nordiq"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    pub api_key_file: PathBuf,
    pub allow_anonymous: bool,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            api_key_file: PathBuf::from("/etc/nordiq/api-key"),
            allow_anonymous: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    /// Model resolution in seconds.
    pub step_seconds: u32,
    pub encoder_steps: usize,
    pub horizon_steps: usize,
    pub quantiles: Vec<f64>,
    /// libtorch threads for serving the trained model; 0 = one per core.
    pub threads: usize,
    /// Serve the trained model on a CUDA device when one is available.
    pub cuda: bool,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            step_seconds: 300,
            encoder_steps: 288,
            horizon_steps: 96,
            quantiles: vec![0.1, 0.5, 0.9],
            threads: 0,
            cuda: false,
        }
    }
}

/// What ingest does with a field that is not in the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnknownMetricPolicy {
    Reject,
    Ignore,
}

/// What happens to the good records of a batch that also holds bad ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MixedBatchPolicy {
    /// Nothing of the batch is applied; the 422 lists every bad record (the default:
    /// a feeder that retries the whole batch never duplicates samples).
    RejectAll,
    /// The good records are applied; the answer lists the rejected ones.
    AcceptValid,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    pub unknown_metrics: UnknownMetricPolicy,
    pub mixed_batch: MixedBatchPolicy,
    /// Samples further than this in the future are rejected.
    pub max_future_seconds: i64,
    /// Samples older than this are rejected.
    pub max_age_days: i64,
    pub max_records_per_request: usize,
    /// Profile given to servers that match no pattern and send none.
    pub default_profile: String,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            unknown_metrics: UnknownMetricPolicy::Reject,
            mixed_batch: MixedBatchPolicy::RejectAll,
            max_future_seconds: 300,
            max_age_days: 60,
            max_records_per_request: 200_000,
            default_profile: "generic".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WindowConfig {
    /// Raw samples kept per server (at the feed's own rate).
    pub raw_capacity: usize,
    /// Servers tracked at most; records for further new servers are rejected.
    pub max_servers: usize,
    /// Aggregated steps kept per server; 0 = the largest of the encoder,
    /// `forecast.median_seasons` seasons (at least two: seasonal baselines need a season of
    /// history plus a season of residuals) and eight seasons (the weekly seasonal naive).
    pub history_steps: usize,
}

impl Default for WindowConfig {
    fn default() -> Self {
        WindowConfig {
            raw_capacity: 720,
            max_servers: 10_000,
            history_steps: 0,
        }
    }
}

/// Which baseline serves when no trained model is present.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BaselineKind {
    /// Per server, the baseline below that forecast the server's own last horizon best
    /// (lowest scaled absolute error); chosen again whenever a new step closes.
    Auto,
    /// The median of the same step in the last `median_seasons` seasons (as many as the
    /// history holds); fitted smoothing while history is shorter than a season.
    SeasonalMedian,
    /// Seasonal naive at the daily season, fitted smoothing while history is shorter.
    SeasonalNaive,
    /// Seasonal naive at a week (7 seasons) once the history holds a week and a step;
    /// seasonal naive at the season before that.
    SeasonalNaiveWeek,
    /// Exponential smoothing with its parameters fitted per series: level only, or level
    /// and damped trend, whichever fits the window better (AICc). `holt` is the old name.
    #[serde(alias = "holt")]
    Ets,
    /// The last observed value, held flat.
    LastValue,
}

impl BaselineKind {
    /// Every concrete baseline (not `auto`), in the order reports list them.
    pub const ALL: [BaselineKind; 5] = [
        BaselineKind::SeasonalNaive,
        BaselineKind::SeasonalNaiveWeek,
        BaselineKind::SeasonalMedian,
        BaselineKind::Ets,
        BaselineKind::LastValue,
    ];

    /// The id forecasts and reports carry (`baseline:<name>`).
    pub fn id(self) -> &'static str {
        match self {
            BaselineKind::Auto => "baseline:auto",
            BaselineKind::SeasonalMedian => "baseline:seasonal_median",
            BaselineKind::SeasonalNaive => "baseline:seasonal_naive",
            BaselineKind::SeasonalNaiveWeek => "baseline:seasonal_naive_week",
            BaselineKind::Ets => "baseline:ets",
            BaselineKind::LastValue => "baseline:last_value",
        }
    }

    /// The kind for an id (`baseline:ets`, or just `ets`; `holt` is accepted for `ets`).
    pub fn from_id(id: &str) -> Option<BaselineKind> {
        let name = id.strip_prefix("baseline:").unwrap_or(id);
        if name == "holt" {
            return Some(BaselineKind::Ets);
        }
        std::iter::once(BaselineKind::Auto)
            .chain(BaselineKind::ALL)
            .find(|k| k.id().strip_prefix("baseline:") == Some(name))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ForecastConfig {
    pub baseline: BaselineKind,
    /// Season length for the seasonal baselines (a multiple of the step).
    pub season_seconds: u32,
    /// Seasons the seasonal median (and the trained model's seasonal input) looks back.
    pub median_seasons: usize,
    /// Aggregated steps a server needs before it is forecast at all.
    pub min_history_steps: usize,
    /// Forecasts are recomputed at every step boundary and at least this often, so risk
    /// follows current values between steps.
    pub refresh_seconds: u64,
    /// Horizons summarised in `GET /predictions/current`.
    pub summary_horizons_minutes: Vec<u32>,
    /// Worker threads for a refresh; 0 = one per core.
    pub threads: usize,
}

impl Default for ForecastConfig {
    fn default() -> Self {
        ForecastConfig {
            baseline: BaselineKind::Auto,
            season_seconds: 86_400,
            median_seasons: 7,
            min_history_steps: 12,
            refresh_seconds: 60,
            summary_horizons_minutes: vec![30, 60, 480],
            threads: 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RiskConfig {
    /// Weight of the current value; the predicted peak gets the rest.
    pub current_weight: f64,
    /// How far ahead the predicted peak looks.
    pub lookahead_minutes: u32,
    /// How many servers `top_risks` lists.
    pub top_n: usize,
}

impl Default for RiskConfig {
    fn default() -> Self {
        RiskConfig {
            current_weight: 0.7,
            lookahead_minutes: 120,
            top_n: 10,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsConfig {
    /// Alert events kept (oldest dropped first).
    pub max_events: usize,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig { max_events: 10_000 }
    }
}

/// The data buffer under `state_dir/buffer/`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BufferConfig {
    /// Keep what ingest accepts (write-ahead log + Parquet). Off: windows only, nothing
    /// survives a restart.
    pub enabled: bool,
    /// A log segment is rolled into Parquet when it is this old …
    pub roll_seconds: u64,
    /// … or this large.
    pub roll_bytes: u64,
    /// Partitions (days) older than this are removed.
    pub retention_days: u32,
    /// Remove the oldest partitions while the buffer is larger; 0 = no cap.
    pub max_disk_bytes: u64,
    /// Days the trainer's export covers by default.
    pub export_days: u32,
    /// Readiness to train: at least this many records …
    pub min_train_records: u64,
    /// … spanning at least this many days.
    pub min_train_days: u32,
}

impl Default for BufferConfig {
    fn default() -> Self {
        BufferConfig {
            enabled: true,
            roll_seconds: 600,
            roll_bytes: 64 * 1024 * 1024,
            retention_days: 60,
            max_disk_bytes: 0,
            export_days: 30,
            min_train_records: 100_000,
            min_train_days: 3,
        }
    }
}

/// `nordiqctl import`: how columns of imported files map onto the catalog.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ImportConfig {
    /// Source column → catalog metric (`--map SRC=DST` adds to it).
    pub columns: std::collections::BTreeMap<String, String>,
}

/// How `POST /admin/trigger-training` runs `nordiq-train`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Launcher {
    /// `systemd` when the daemon runs under systemd, `process` otherwise.
    Auto,
    /// `systemctl start` the retrain unit (it picks up the queued job).
    Systemd,
    /// A `nordiq-train` child process of the daemon.
    Process,
}

/// Training jobs and promotion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainingConfig {
    pub launcher: Launcher,
    /// The unit the systemd launcher starts.
    pub unit: String,
    /// The unit `nordiq-train` reloads after promoting a model under systemd.
    pub inference_unit: String,
    /// `nordiq-train` for the process launcher; empty: next to nordiq-inference, else $PATH.
    pub trainer: PathBuf,
    /// A new model is promoted only if its validation loss is at least this fraction
    /// below the current model's on the same windows (0.02 = 2 % better).
    pub promote_margin: f64,
    /// `POST /admin/cancel-training` waits this long after SIGTERM, then kills.
    pub cancel_timeout_seconds: u64,
}

impl Default for TrainingConfig {
    fn default() -> Self {
        TrainingConfig {
            launcher: Launcher::Auto,
            unit: "nordiq-retrain.service".into(),
            inference_unit: "nordiq-inference.service".into(),
            trainer: PathBuf::new(),
            promote_margin: 0.0,
            cancel_timeout_seconds: 30,
        }
    }
}

/// `nordiq-dashboard`, the web UI.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DashboardConfig {
    /// Used only when systemd passes no socket. Loopback by default: the page can trigger
    /// training, so it is not for the open network without `require_login`.
    pub listen: String,
    /// Where nordiq-inference answers; empty: derived from `server.listen`.
    pub inference_url: String,
    /// Ask for the API key once (a login form) and keep an HttpOnly session cookie.
    pub require_login: bool,
    pub session_hours: u64,
    /// The page's default refresh interval (it offers 5 s – 5 min).
    pub refresh_seconds: u64,
    /// Where `nordiq-metrics simulate` answers (`/scenario/…`); empty: no scenario buttons.
    pub simulator_url: String,
}

impl Default for DashboardConfig {
    fn default() -> Self {
        DashboardConfig {
            listen: "127.0.0.1:8050".into(),
            inference_url: String::new(),
            require_login: false,
            session_hours: 12,
            refresh_seconds: 30,
            simulator_url: String::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// A tracing filter: `info`, `debug`, `nordiq_inference=debug,info` …
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
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
            .map_err(|(key, message)| ConfigError::Invalid {
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

    /// Checks the values serde cannot: returns the offending key path and why.
    fn validate(&self) -> Result<(), (String, String)> {
        let bad = |key: &str, msg: String| Err((key.to_string(), msg));
        if self.server.listen.parse::<SocketAddr>().is_err() {
            return bad(
                "server.listen",
                format!(
                    "`{}` is not an address like 127.0.0.1:8000",
                    self.server.listen
                ),
            );
        }
        if self.dashboard.listen.parse::<SocketAddr>().is_err() {
            return bad(
                "dashboard.listen",
                format!(
                    "`{}` is not an address like 127.0.0.1:8050",
                    self.dashboard.listen
                ),
            );
        }
        if !(5..=300).contains(&self.dashboard.refresh_seconds) {
            return bad(
                "dashboard.refresh_seconds",
                "must be between 5 and 300".into(),
            );
        }
        if !(0.0..1.0).contains(&self.training.promote_margin) {
            return bad(
                "training.promote_margin",
                format!(
                    "{} is not a fraction in [0, 1)",
                    self.training.promote_margin
                ),
            );
        }
        if self.training.unit.is_empty() || self.training.inference_unit.is_empty() {
            return bad("training.unit", "unit names must not be empty".into());
        }
        if self.server.max_body_bytes < 1024 {
            return bad("server.max_body_bytes", "must be at least 1024".into());
        }
        if self.paths.state_dir.as_os_str().is_empty() {
            return bad("paths.state_dir", "must not be empty".into());
        }
        let m = &self.model;
        if m.step_seconds == 0 || 86_400 % m.step_seconds != 0 {
            return bad(
                "model.step_seconds",
                format!(
                    "{} must be positive and divide a day (86400) evenly",
                    m.step_seconds
                ),
            );
        }
        if m.encoder_steps < 2 || m.encoder_steps > 100_000 {
            return bad("model.encoder_steps", "must be between 2 and 100000".into());
        }
        if m.horizon_steps == 0 || m.horizon_steps > 10_000 {
            return bad("model.horizon_steps", "must be between 1 and 10000".into());
        }
        if m.quantiles.is_empty()
            || m.quantiles.iter().any(|q| !(*q > 0.0 && *q < 1.0))
            || m.quantiles.windows(2).any(|w| w[0] >= w[1])
        {
            return bad(
                "model.quantiles",
                "must be strictly increasing values inside (0, 1)".into(),
            );
        }
        if !m.quantiles.iter().any(|q| (q - 0.5).abs() < 1e-9) {
            return bad(
                "model.quantiles",
                "must contain 0.5 (the median drives risk)".into(),
            );
        }
        let f = &self.forecast;
        if f.season_seconds == 0 || f.season_seconds % m.step_seconds != 0 {
            return bad(
                "forecast.season_seconds",
                "must be a positive multiple of model.step_seconds".into(),
            );
        }
        if !(1..=28).contains(&f.median_seasons) {
            return bad(
                "forecast.median_seasons",
                format!("{} must be between 1 and 28", f.median_seasons),
            );
        }
        if f.refresh_seconds == 0 {
            return bad("forecast.refresh_seconds", "must be at least 1".into());
        }
        if f.min_history_steps < 2 {
            return bad("forecast.min_history_steps", "must be at least 2".into());
        }
        let horizon_minutes = m.horizon_steps as u64 * m.step_seconds as u64 / 60;
        if let Some(h) = f
            .summary_horizons_minutes
            .iter()
            .find(|h| **h == 0 || **h as u64 > horizon_minutes)
        {
            return bad(
                "forecast.summary_horizons_minutes",
                format!("{h} must be between 1 and the horizon ({horizon_minutes} minutes)"),
            );
        }
        if !(0.0..=1.0).contains(&self.risk.current_weight) {
            return bad("risk.current_weight", "must be in [0, 1]".into());
        }
        if self.risk.lookahead_minutes == 0 || self.risk.lookahead_minutes as u64 > horizon_minutes
        {
            return bad(
                "risk.lookahead_minutes",
                format!("must be between 1 and the horizon ({horizon_minutes} minutes)"),
            );
        }
        if self.window.raw_capacity < 1 || self.window.raw_capacity > 1_000_000 {
            return bad(
                "window.raw_capacity",
                "must be between 1 and 1000000".into(),
            );
        }
        if self.window.history_steps > 1_000_000 {
            return bad("window.history_steps", "must be at most 1000000".into());
        }
        if self.window.max_servers < 1 {
            return bad("window.max_servers", "must be at least 1".into());
        }
        if self.ingest.max_future_seconds < 0 || self.ingest.max_age_days < 1 {
            return bad(
                "ingest.max_age_days",
                "max_age_days must be ≥ 1 and max_future_seconds ≥ 0".into(),
            );
        }
        if self.ingest.max_records_per_request == 0 {
            return bad(
                "ingest.max_records_per_request",
                "must be at least 1".into(),
            );
        }
        let b = &self.buffer;
        if b.roll_seconds == 0 || b.roll_bytes < 4096 {
            return bad(
                "buffer.roll_seconds",
                "roll_seconds must be ≥ 1 and roll_bytes ≥ 4096".into(),
            );
        }
        if b.retention_days == 0 || b.export_days == 0 {
            return bad(
                "buffer.retention_days",
                "retention_days and export_days must be ≥ 1".into(),
            );
        }
        if self.alerts.max_events == 0 {
            return bad("alerts.max_events", "must be at least 1".into());
        }
        if let Some((src, dst)) = self
            .import
            .columns
            .iter()
            .find(|(_, dst)| self.metric_index(dst).is_none())
        {
            return bad(
                "import.columns",
                format!("`{src}` maps to `{dst}`, which is not in the catalog"),
            );
        }
        self.sources.validate()?;
        if let Some(m) = self
            .prometheus
            .metrics
            .iter()
            .find(|m| self.metric_index(m).is_none())
        {
            return bad("prometheus.metrics", format!("`{m}` is not in the catalog"));
        }
        if let Some((name, m)) = self
            .remote_write
            .names
            .iter()
            .find(|(_, m)| self.metric_index(m).is_none())
        {
            return bad(
                "remote_write.names",
                format!("`{name}` maps to `{m}`, which is not in the catalog"),
            );
        }
        if let Some(m) = self
            .sources
            .prometheus
            .queries
            .keys()
            .find(|m| self.metric_index(m).is_none())
        {
            return bad(
                "sources.prometheus.queries",
                format!("`{m}` is not in the catalog"),
            );
        }
        if self.prometheus.horizons_minutes.contains(&0) {
            return bad(
                "prometheus.horizons_minutes",
                "horizons must be ≥ 1 minute".into(),
            );
        }
        self.anomaly.validate(self.model.horizon_steps)?;
        self.live.validate()?;
        self.drift.validate()?;
        self.validate_catalog()?;
        self.validate_profiles()
    }

    fn validate_catalog(&self) -> Result<(), (String, String)> {
        if self.metrics.is_empty() {
            return Err((
                "metrics".into(),
                "the catalog needs at least one metric".into(),
            ));
        }
        for (i, metric) in self.metrics.iter().enumerate() {
            let key = |field: &str| format!("metrics[{i}].{field}");
            if !is_identifier(&metric.name)
                || matches!(
                    metric.name.as_str(),
                    "timestamp" | "server_name" | "profile"
                )
            {
                return Err((
                    key("name"),
                    format!(
                        "`{}` must be a non-reserved name of letters, digits and _",
                        metric.name
                    ),
                ));
            }
            if self.metrics[..i].iter().any(|m| m.name == metric.name) {
                return Err((key("name"), format!("`{}` appears twice", metric.name)));
            }
            if !(metric.min.is_finite() && metric.max.is_finite() && metric.min < metric.max) {
                return Err((
                    key("max"),
                    "min and max must be finite with min < max".into(),
                ));
            }
            if let Some(r) = &metric.risk {
                let ordered = match r.direction {
                    Direction::High => r.ok < r.warn && r.warn < r.crit,
                    Direction::Low => r.ok > r.warn && r.warn > r.crit,
                };
                let inside = [r.ok, r.warn, r.crit]
                    .iter()
                    .all(|v| (metric.min..=metric.max).contains(v));
                if !ordered || !inside {
                    return Err((
                        key("risk"),
                        "ok, warn, crit must lie in [min, max] and get worse in the risk direction"
                            .into(),
                    ));
                }
                if !(0.0..=1.0).contains(&r.weight) {
                    return Err((key("risk"), "weight must be in [0, 1]".into()));
                }
            }
        }
        Ok(())
    }

    fn validate_profiles(&self) -> Result<(), (String, String)> {
        for (i, p) in self.profiles.iter().enumerate() {
            if !is_identifier(&p.name) {
                return Err((
                    format!("profiles[{i}].name"),
                    format!("`{}` must be letters, digits and _", p.name),
                ));
            }
            if self.profiles[..i].iter().any(|q| q.name == p.name) {
                return Err((
                    format!("profiles[{i}].name"),
                    format!("`{}` appears twice", p.name),
                ));
            }
        }
        if !self
            .profiles
            .iter()
            .any(|p| p.name == self.ingest.default_profile)
        {
            return Err((
                "ingest.default_profile".into(),
                format!(
                    "`{}` is not one of the profiles",
                    self.ingest.default_profile
                ),
            ));
        }
        Ok(())
    }

    /// Keys whose change needs a restart (windows and the listener are built from them).
    /// A reload keeps the running values of these and says so.
    pub fn restart_only_differences(&self, new: &Config) -> Vec<&'static str> {
        let mut keys = Vec::new();
        if self.server.listen != new.server.listen {
            keys.push("server.listen");
        }
        if self.paths != new.paths {
            keys.push("paths");
        }
        if self.model != new.model {
            keys.push("model");
        }
        if self.metrics != new.metrics {
            keys.push("metrics");
        }
        if self.forecast.season_seconds != new.forecast.season_seconds {
            keys.push("forecast.season_seconds");
        }
        if self.forecast.median_seasons != new.forecast.median_seasons {
            keys.push("forecast.median_seasons");
        }
        if self.window != new.window {
            keys.push("window");
        }
        if self.buffer.enabled != new.buffer.enabled {
            keys.push("buffer.enabled");
        }
        keys
    }

    /// `new`, with every restart-only key taken from `self`.
    pub fn with_restart_only_from(&self, new: &Config) -> Config {
        let mut merged = new.clone();
        merged.server.listen = self.server.listen.clone();
        merged.paths = self.paths.clone();
        merged.model = self.model.clone();
        merged.metrics = self.metrics.clone();
        merged.forecast.season_seconds = self.forecast.season_seconds;
        merged.forecast.median_seasons = self.forecast.median_seasons;
        merged.window = self.window.clone();
        merged.buffer.enabled = self.buffer.enabled;
        merged
    }
}

/// A thread-count setting: `n`, or every core for 0.
pub fn threads_or_cores(n: usize) -> usize {
    match n {
        0 => std::thread::available_parallelism()
            .map(|c| c.get())
            .unwrap_or(1),
        n => n,
    }
}

fn is_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !s.starts_with(|c: char| c.is_ascii_digit())
}

#[cfg(test)]
mod tests;
