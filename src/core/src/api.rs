//! The HTTP API's bodies, shared by the daemon (which writes them) and the CLI, tests and
//! benches (which read them). Maps are `BTreeMap` so answers are stable and diffable.

use crate::alerts::AlertEvent;
use crate::ingest::RecordError;
pub use crate::live_report::{LiveBucket, LiveReport, LiveScores, LiveSpan};
use crate::risk::Level;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Every error answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
}

/// `POST /feed/data` answer (200, or 422 with `accepted` = 0 under `reject_all`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IngestResponse {
    pub records: usize,
    pub accepted: usize,
    /// Records refused (a record with several bad fields counts once).
    pub rejected_records: usize,
    /// Each bad field of each refused record (the first 1,000).
    pub rejected: Vec<RecordError>,
    /// The mixed-batch rule that applied: `reject_all` or `accept_valid`.
    pub policy: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The batch id (`X-NordIQ-Batch`) was seen before: nothing was applied again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub duplicate_batch: bool,
}

/// Count of servers per level.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LevelCounts {
    pub healthy: usize,
    pub watch: usize,
    pub warning: usize,
    pub critical: usize,
}

impl LevelCounts {
    pub fn add(&mut self, level: Level) {
        match level {
            Level::Healthy => self.healthy += 1,
            Level::Watch => self.watch += 1,
            Level::Warning => self.warning += 1,
            Level::Critical => self.critical += 1,
        }
    }
}

/// A server's warm-up, in `GET /status`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WarmupEntry {
    pub server: String,
    pub profile: String,
    pub history_steps: usize,
    pub warmup_remaining_steps: usize,
    pub last_sample: String,
}

/// Servers whose window is full (nothing left to warm up).
pub fn warm_count(warmup: &[WarmupEntry]) -> usize {
    warmup
        .iter()
        .filter(|w| w.warmup_remaining_steps == 0)
        .count()
}

/// The latest forecast refresh.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RefreshInfo {
    pub at: String,
    pub duration_ms: f64,
    pub servers: usize,
    pub trigger: String,
}

/// `GET /status`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatusResponse {
    pub service: String,
    pub version: String,
    pub model_id: String,
    pub uptime_seconds: u64,
    pub servers: usize,
    /// Servers whose encoder window is full.
    pub warm_servers: usize,
    /// Servers with enough history to be forecast at all.
    pub forecast_servers: usize,
    pub samples_total: u64,
    pub late_samples_total: u64,
    pub rejected_records_total: u64,
    pub step_seconds: u32,
    pub encoder_steps: usize,
    pub horizon_steps: usize,
    pub levels: LevelCounts,
    pub last_refresh: Option<RefreshInfo>,
    pub warmup: Vec<WarmupEntry>,
    /// The latest drift check (see `nordiq_core::drift`).
    #[serde(default)]
    pub drift: crate::drift::DriftState,
    /// Cluster mode only: the nodes, who holds each shard and how far behind it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterStatus>,
}

/// The cluster as one node sees it, in `GET /status`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClusterStatus {
    pub node: String,
    /// Whether the stream and buckets are set up (NATS answered).
    pub ready: bool,
    /// Live nodes (heartbeat not expired), as of `checked_at`.
    pub nodes: Vec<String>,
    pub checked_at: String,
    /// The shards this node holds.
    pub owned_shards: Vec<u32>,
    pub shards: Vec<ClusterShard>,
    /// Servers in the merged fleet view.
    pub fleet_servers: usize,
    /// Stream messages this node published (and JetStream acknowledged), of which
    /// repeats stored once, and publishes that failed.
    pub published_total: u64,
    pub published_duplicates_total: u64,
    pub publish_failures_total: u64,
    /// Stream messages this node's consumers applied.
    pub consumed_total: u64,
    /// Shards taken and given up by this node since it started.
    pub claims_total: u64,
    pub releases_total: u64,
    /// Samples replayed from the stream into windows of taken shards.
    pub rebuilt_samples_total: u64,
    /// The job holding the cluster's training lease (`JOB on NODE`), if any.
    #[serde(default)]
    pub training: Option<String>,
    /// The model the cluster agreed on (the latest promoted anywhere).
    #[serde(default)]
    pub agreed_model: Option<String>,
    /// Why this node does not serve the agreed model (it keeps its previous one).
    #[serde(default)]
    pub model_error: Option<String>,
}

/// One shard: its holder and its consumer's lag.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterShard {
    pub shard: u32,
    pub owner: Option<String>,
    /// Messages not yet acknowledged by the holder (None when unknown).
    pub pending: Option<u64>,
}

/// One metric in `GET /predictions/current`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MetricSummary {
    pub current: Option<f32>,
    pub risk: f64,
    pub level: Level,
    pub trend: String,
    /// Quantile label (`p10`, `p50`, …) → value at each summary horizon.
    pub forecast: BTreeMap<String, Vec<Option<f32>>>,
}

/// One server in `GET /predictions/current`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServerSummary {
    pub profile: String,
    pub risk: f64,
    pub level: Level,
    pub method: String,
    pub last_sample: String,
    pub anomaly: AnomalySummary,
    pub metrics: BTreeMap<String, MetricSummary>,
}

/// One entry of the fleet's top risks.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TopRisk {
    pub server: String,
    pub risk: f64,
    pub level: Level,
    pub metric: Option<String>,
}

/// The fleet summary.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FleetSummary {
    pub servers: usize,
    pub levels: LevelCounts,
    pub mean_risk: f64,
    pub top_risks: Vec<TopRisk>,
}

/// `GET /predictions/current`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PredictionsCurrent {
    pub model_id: String,
    pub generated_at: String,
    pub step_seconds: u32,
    pub horizons_minutes: Vec<u32>,
    pub quantiles: Vec<f64>,
    pub fleet: FleetSummary,
    pub servers: BTreeMap<String, ServerSummary>,
    /// The incident outlook (see `nordiq_core::outlook`).
    pub environment: Environment,
    /// In cluster mode, each shard's part of this view: who made it and how old it is.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shards: Vec<ShardAge>,
}

/// One shard's part of a cluster's fleet view: the node that made it and its age.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardAge {
    pub shard: u32,
    pub node: String,
    pub generated_at: String,
    pub age_seconds: f64,
    pub servers: usize,
}

/// The incident outlook in `GET /predictions/current`: the probability that a metric
/// crosses its critical threshold within each horizon.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Environment {
    pub horizons_minutes: Vec<u32>,
    /// The forecast steps each horizon covers.
    pub horizon_steps: Vec<usize>,
    /// Per horizon.
    pub fleet: Vec<FleetOutlook>,
    pub servers: BTreeMap<String, ServerOutlook>,
}

/// The fleet's outlook at one horizon.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FleetOutlook {
    /// Probability that at least one server has a metric past its critical threshold.
    pub probability_any: f64,
    /// Expected number of such servers.
    pub expected_servers: f64,
}

/// One server's outlook, per horizon.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerOutlook {
    pub probability: Vec<f64>,
    /// The metric most likely to cross (None where no metric has any chance).
    pub metric: Vec<Option<String>>,
}

/// A server's anomaly reading (see `nordiq_core::anomaly`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AnomalySummary {
    /// The worst metric's score, in band widths outside the forecast band.
    pub score: f64,
    /// At or above `threshold`.
    pub anomalous: bool,
    /// The threshold the server is held to: `anomaly.threshold`, or the calibrated one of
    /// the model serving it (`metrics.json` → `anomaly_calibration`). Absent from
    /// answers of nodes before 2.6 (read as 0).
    #[serde(default)]
    pub threshold: f64,
    pub metric: Option<String>,
    /// Closed steps judged so far (0: no score yet).
    pub judged_steps: u64,
    /// Where a model's anomalies are confirmed by the best baseline beside it
    /// (`anomaly.confirm_with_baseline`): the baseline's own score, in its band widths.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline_score: Option<f64>,
}

/// One metric in `GET /predictions/{server}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MetricForecast {
    pub unit: String,
    pub current: Option<f32>,
    pub risk: f64,
    pub level: Level,
    pub trend: String,
    /// Change of the median per hour over the horizon.
    pub slope_per_hour: f64,
    pub predicted_peak: Option<f64>,
    /// The metric's anomaly score (None before anything was judged) and the band the
    /// newest judged step was held to.
    pub anomaly_score: Option<f64>,
    pub expected_low: Option<f32>,
    pub expected_high: Option<f32>,
    /// Quantile label → `horizon_steps` values, the first at `forecast_start`.
    pub quantiles: BTreeMap<String, Vec<Option<f32>>>,
}

/// `GET /predictions/{server}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServerPrediction {
    pub model_id: String,
    pub method: String,
    pub server: String,
    pub profile: String,
    pub generated_at: String,
    pub forecast_start: String,
    pub step_seconds: u32,
    pub horizon_steps: usize,
    pub risk: f64,
    pub level: Level,
    pub anomaly: AnomalySummary,
    pub metrics: BTreeMap<String, MetricForecast>,
}

/// One metric-level alert.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MetricAlert {
    pub metric: String,
    pub level: Level,
    pub risk: f64,
    pub current: Option<f32>,
    pub predicted_peak: Option<f64>,
}

/// The two kinds of alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// Risk at watch or above: a threshold is crossed now or forecast to be.
    PredictedBreach,
    /// What is observed falls outside what was forecast for it ("anomalous now").
    Anomaly,
}

impl AlertKind {
    /// The name the API, the config and notifications use (as serialised).
    pub const fn as_str(self) -> &'static str {
        match self {
            AlertKind::PredictedBreach => "predicted_breach",
            AlertKind::Anomaly => "anomaly",
        }
    }
}

/// One server with something to say.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServerAlert {
    pub kind: AlertKind,
    pub server: String,
    pub profile: String,
    pub level: Level,
    pub risk: f64,
    pub metrics: Vec<MetricAlert>,
}

/// One metric of an anomalous server.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MetricAnomaly {
    pub metric: String,
    pub score: f64,
    /// The newest value.
    pub current: Option<f32>,
    /// The band forecast for the newest judged step.
    pub expected_low: Option<f32>,
    pub expected_high: Option<f32>,
}

/// A server anomalous now.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AnomalyAlert {
    pub kind: AlertKind,
    pub server: String,
    pub profile: String,
    pub score: f64,
    /// Its metrics at or above the threshold, highest first.
    pub metrics: Vec<MetricAnomaly>,
}

/// `GET /alerts/active`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ActiveAlerts {
    pub model_id: String,
    pub generated_at: String,
    pub levels: LevelCounts,
    /// Servers at watch or above, highest risk first.
    pub alerts: Vec<ServerAlert>,
    /// Servers anomalous now (score at or above `anomaly.threshold`), highest score first.
    pub anomalies: Vec<AnomalyAlert>,
    /// The latest level changes, oldest first.
    pub recent_events: Vec<AlertEvent>,
    /// In cluster mode, each shard's part of this view (see `PredictionsCurrent::shards`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shards: Vec<ShardAge>,
}

/// Label of a quantile in answers: 0.1 → `p10`, 0.5 → `p50`, 0.975 → `p97.5`.
pub fn quantile_label(q: f64) -> String {
    let pct = (q * 1000.0).round() / 10.0;
    if pct.fract() == 0.0 {
        format!("p{}", pct as i64)
    } else {
        format!("p{pct}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantile_labels() {
        assert_eq!(quantile_label(0.1), "p10");
        assert_eq!(quantile_label(0.5), "p50");
        assert_eq!(quantile_label(0.9), "p90");
        assert_eq!(quantile_label(0.975), "p97.5");
        assert_eq!(quantile_label(0.05), "p5");
    }
}

/// The outcome of one model reload (`POST /admin/reload-model`, SIGHUP, and in
/// `GET /admin/model-info`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ReloadOutcome {
    /// The candidate was validated and now serves (or, with no model to load, the
    /// baselines serve).
    pub ok: bool,
    /// What now serves: a model id or `baseline:…`.
    pub serving: String,
    /// The directory asked for (`models/current` resolved, or `model_path`).
    pub candidate: Option<String>,
    /// Load and validation time.
    pub duration_ms: f64,
    /// Windows the candidate forecast before it was accepted, and whether they were
    /// real (from live servers) or synthetic (no server was warm yet).
    pub smoke_windows: usize,
    pub smoke_real: bool,
    pub at: String,
    /// Why the candidate was refused (the old model kept serving).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `GET /admin/model-info`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelInfo {
    /// What serves warm servers: a model id, or `baseline:…` when no model is loaded.
    pub serving: String,
    /// The baseline serving servers whose window is not yet full.
    pub baseline: String,
    pub path: Option<String>,
    /// Where `models/current` and `models/previous` point.
    pub current: Option<String>,
    pub previous: Option<String>,
    pub loaded_at: Option<String>,
    /// The model's shape (`config.json`) and held-out figures (`metrics.json`).
    pub shape: Option<serde_json::Value>,
    pub mase: Option<f64>,
    pub coverage: Option<f64>,
    pub validation_pinball: Option<f64>,
    /// The best baseline on the served model's held-out time, and its MASE.
    #[serde(default)]
    pub best_baseline: Option<String>,
    #[serde(default)]
    pub best_baseline_mase: Option<f64>,
    /// Why this serves, in words: the promotion decision of the served model, or why no
    /// trained model serves (none trained, the newest not promoted and why, or not loadable).
    #[serde(default)]
    pub serving_reason: String,
    /// The anomaly threshold for servers the model serves (`anomaly.threshold` when no
    /// model serves), and where it comes from.
    #[serde(default)]
    pub anomaly_threshold: f64,
    #[serde(default)]
    pub anomaly_threshold_reason: String,
    pub reloads_ok: u64,
    pub reloads_failed: u64,
    pub last_reload: Option<ReloadOutcome>,
    /// Live accuracy of what served, beside the best baseline (last day and week).
    #[serde(default)]
    pub live: Option<LiveReport>,
}

/// `POST /admin/trigger-training` answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainingTriggered {
    pub job_id: String,
    /// `systemd` (nordiq-retrain.service) or `process` (a nordiq-train child).
    pub launcher: String,
    pub status: crate::job_record::JobStatus,
}
