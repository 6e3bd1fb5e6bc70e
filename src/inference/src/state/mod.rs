//! The daemon's shared state: config, key, windows, forecaster, the cached forecast set,
//! the model's reload history, training jobs, live accuracy and drift. The bottom layer:
//! it imports nothing else of this crate.

pub mod cluster;
mod config_source;
mod jobs;
mod model;
mod outbox;
pub mod windows;

pub use config_source::ConfigSource;
pub use jobs::Jobs;
pub use model::ModelState;
pub use outbox::{Outbox, ReceiverStats};

use arc_swap::ArcSwap;
use bytes::Bytes;
use nordiq_core::alerts::AlertTracker;
use nordiq_core::anomaly::AnomalyBook;
use nordiq_core::api::RefreshInfo;
use nordiq_core::assess::Assessed;
use nordiq_core::config::Config;
use nordiq_core::window::WindowShape;
use nordiq_model::serving::Serving;
use nordiq_model::Forecaster;
use nordiq_runtime::keyring::Keyring;
use nordiq_runtime::systemd::Notifier;
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::{watch, Notify};
use windows::WindowStore;

/// One refresh's results, immutable once published; handlers clone the `Arc`.
pub struct ForecastSet {
    pub model_id: String,
    pub generated_at_ms: i64,
    pub assessed: Vec<Assessed>,
    pub index: HashMap<String, usize>,
    /// `GET /predictions/current`, serialised once.
    pub current_json: Bytes,
    /// `GET /alerts/active`, serialised once.
    pub alerts_json: Bytes,
    pub refresh: Option<RefreshInfo>,
}

impl ForecastSet {
    pub fn empty(config: &Config, model_id: &str) -> Self {
        let now = nordiq_core::timefmt::now_ms();
        let current = nordiq_core::assess::predictions_current(config, model_id, now, &[]);
        let alerts = nordiq_core::assess::active_alerts(config, model_id, now, &[], Vec::new());
        ForecastSet {
            model_id: model_id.to_string(),
            generated_at_ms: now,
            assessed: Vec::new(),
            index: HashMap::new(),
            current_json: Bytes::from(serde_json::to_vec(&current).unwrap_or_default()),
            alerts_json: Bytes::from(serde_json::to_vec(&alerts).unwrap_or_default()),
            refresh: None,
        }
    }
}

/// Counters exposed by `/status`.
#[derive(Default)]
pub struct Counters {
    pub samples: AtomicU64,
    pub rejected_records: AtomicU64,
    /// Batches dropped as repeats of an id already taken.
    pub duplicate_batches: AtomicU64,
    /// Remote-write series that map onto no catalog metric.
    pub remote_write_ignored_series: AtomicU64,
}

pub struct App {
    pub config: ArcSwap<Config>,
    /// The keys requests are checked against (empty: anonymous access).
    pub keys: ArcSwap<Keyring>,
    pub store: WindowStore,
    /// The data buffer (None when `buffer.enabled = false`).
    pub buffer: Option<nordiq_buffer::Buffer>,
    pub forecaster: ArcSwap<Serving>,
    /// Where the serving model came from, and the reload history.
    pub model: ModelState,
    /// The training job this daemon launched, if any.
    pub jobs: Jobs,
    pub forecasts: ArcSwap<ForecastSet>,
    pub alerts: Mutex<AlertTracker>,
    /// Notifications on their way to Alertmanager and webhooks.
    pub outbox: Outbox,
    /// Every forecast server's pending bands and recent exceedances.
    pub anomalies: Mutex<AnomalyBook>,
    /// The same for the best baseline beside the model, on the servers the model serves:
    /// what confirms the model's anomalies (`anomaly.confirm_with_baseline`).
    pub anomaly_witness: Mutex<AnomalyBook>,
    /// Served forecasts kept for scoring, and the hourly live-accuracy bins.
    pub live: Mutex<nordiq_model::live::LiveAccuracy>,
    /// The hour the live-accuracy bins were last saved in.
    pub live_saved_hour: AtomicI64,
    /// The latest drift check and whether the fleet is drifting.
    pub drift: Mutex<nordiq_core::drift::DriftState>,
    pub counters: Counters,
    /// Batch ids ingest has taken (`X-NordIQ-Batch`), to drop repeats.
    pub batch_ids: Mutex<nordiq_core::batch_ids::RecentBatchIds>,
    /// What the accept loop admitted and shed (`/metrics`).
    pub http: Arc<nordiq_runtime::serve::ConnectionStats>,
    /// Request-body bytes being read now, bounded by `server.max_inflight_body_bytes`.
    pub body_budget: Arc<tokio::sync::Semaphore>,
    /// Requests refused because that budget was spent (503).
    pub bodies_shed: AtomicU64,
    /// Wakes the forecast loop for an on-demand refresh.
    pub refresh_requested: Notify,
    /// Sequence number of the latest refresh started, and of the latest published.
    pub refresh_started: AtomicU64,
    pub refresh_done: watch::Sender<u64>,
    /// Unix ms of the forecast loop's latest pass (the watchdog checks it).
    pub forecast_heartbeat_ms: AtomicI64,
    pub started: Instant,
    pub notifier: Notifier,
    /// Cluster mode (`[cluster] enabled`): set once at start, before any task runs.
    pub cluster: std::sync::OnceLock<Arc<cluster::ClusterState>>,
}

impl App {
    /// The state at start: `serving` is the forecaster and the model directory it came
    /// from (`services::model_loading::initial`), `live` the saved live-accuracy bins.
    pub fn new(
        config: Config,
        keys: Keyring,
        buffer: Option<nordiq_buffer::Buffer>,
        source: ConfigSource,
        serving: (Serving, Option<std::path::PathBuf>),
        live: nordiq_model::live::LiveAccuracy,
    ) -> Arc<App> {
        let (forecaster, model_path) = serving;
        let forecasts = ForecastSet::empty(&config, forecaster.id());
        let body_budget = config
            .server
            .max_inflight_body_bytes
            .min(tokio::sync::Semaphore::MAX_PERMITS);
        Arc::new(App {
            store: WindowStore::new(WindowShape::from_config(&config), config.window.max_servers),
            buffer,
            alerts: Mutex::new(AlertTracker::new(config.alerts.max_events)),
            outbox: Outbox::default(),
            anomalies: Mutex::new(AnomalyBook::default()),
            anomaly_witness: Mutex::new(AnomalyBook::default()),
            live: Mutex::new(live),
            live_saved_hour: AtomicI64::new(i64::MIN),
            drift: Mutex::new(Default::default()),
            batch_ids: Mutex::new(nordiq_core::batch_ids::RecentBatchIds::new(
                nordiq_core::batch_ids::REMEMBERED,
            )),
            forecaster: ArcSwap::from_pointee(forecaster),
            model: ModelState::new(model_path),
            jobs: Jobs::new(source),
            forecasts: ArcSwap::from_pointee(forecasts),
            config: ArcSwap::from_pointee(config),
            keys: ArcSwap::from_pointee(keys),
            http: Arc::default(),
            body_budget: Arc::new(tokio::sync::Semaphore::new(body_budget)),
            bodies_shed: AtomicU64::new(0),
            counters: Counters::default(),
            refresh_requested: Notify::new(),
            refresh_started: AtomicU64::new(0),
            refresh_done: watch::Sender::new(0),
            forecast_heartbeat_ms: AtomicI64::new(nordiq_core::timefmt::now_ms()),
            started: Instant::now(),
            notifier: Notifier,
            cluster: std::sync::OnceLock::new(),
        })
    }

    /// The one-line summary systemd shows (`STATUS=`).
    pub fn status_line(&self) -> String {
        let set = self.forecasts.load();
        let config = self.config.load();
        let servers = self.store.server_count();
        let warm = self.store.count_with_history(config.model.encoder_steps);
        let mut line = format!(
            "model {}; {} servers, {} warm, {} forecast",
            set.model_id,
            servers,
            warm,
            set.assessed.len()
        );
        if let Some(reason) = self.model.last_error() {
            line.push_str(&format!("; last model reload refused: {reason}"));
        }
        let drift = self.drift.lock().unwrap_or_else(|p| p.into_inner());
        if drift.drifting {
            let reasons: Vec<String> = drift.reasons.iter().map(|r| r.to_string()).collect();
            line.push_str(&format!("; drift: {}", reasons.join(", ")));
        }
        line
    }

    pub fn heartbeat(&self) {
        self.forecast_heartbeat_ms
            .store(nordiq_core::timefmt::now_ms(), Ordering::Release);
    }

    /// Milliseconds since the forecast loop last ran.
    pub fn forecast_loop_age_ms(&self) -> i64 {
        nordiq_core::timefmt::now_ms() - self.forecast_heartbeat_ms.load(Ordering::Acquire)
    }
}
