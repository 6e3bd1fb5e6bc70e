//! One thread owns the model (tch modules are `Send`, not `Sync`); callers hand it batches
//! over a channel and wait for the answer. libtorch's thread count is pinned there.

use super::{Explanation, TftModel};
use crate::Forecaster;
use nordiq_core::anomaly_threshold::AnomalyCalibration;
use nordiq_core::config::AnomalyConfig;
use nordiq_core::forecast::ServerForecast;
use nordiq_core::window::WindowSnapshot;
use std::path::Path;
use std::sync::mpsc;
use std::sync::Mutex;

enum Job {
    Forecast(Vec<WindowSnapshot>, mpsc::Sender<Vec<ServerForecast>>),
    Explain(Box<WindowSnapshot>, mpsc::Sender<Explanation>),
}

/// A loaded TFT behind its worker thread.
pub struct TftForecaster {
    id: String,
    jobs: Mutex<mpsc::Sender<Job>>,
    pub shape: super::TftShape,
    /// The trainer's anomaly threshold for this model (`metrics.json`), when it made one.
    anomaly_calibration: Option<AnomalyCalibration>,
}

impl TftForecaster {
    /// Loads the model directory `dir` on the CPU (or CUDA when asked and available) and
    /// starts its worker. `id` is what answers carry (the directory name).
    pub fn load(
        dir: &Path,
        id: &str,
        threads: usize,
        use_cuda: bool,
    ) -> Result<TftForecaster, super::ModelError> {
        let anomaly_calibration = read_anomaly_calibration(dir)?;
        let (ready_tx, ready_rx) = mpsc::channel();
        let (jobs, job_rx) = mpsc::channel::<Job>();
        let dir = dir.to_path_buf();
        std::thread::Builder::new()
            .name("nordiq-tft".into())
            .spawn(move || {
                tch::set_num_threads(threads.max(1) as i32);
                let device = if use_cuda && tch::Cuda::is_available() {
                    tch::Device::Cuda(0)
                } else {
                    tch::Device::Cpu
                };
                let model = match TftModel::load(&dir, device) {
                    Ok(m) => {
                        let _ = ready_tx.send(Ok(m.shape.clone()));
                        m
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                for job in job_rx {
                    match job {
                        Job::Forecast(snapshots, reply) => {
                            let prepared: Vec<_> = snapshots
                                .iter()
                                .map(|s| model.prepare_snapshot(s))
                                .collect();
                            let refs: Vec<_> = prepared.iter().collect();
                            let _ = reply.send(model.forecast(&refs));
                        }
                        Job::Explain(snapshot, reply) => {
                            let _ = reply.send(model.explain(&model.prepare_snapshot(&snapshot)));
                        }
                    }
                }
            })
            .map_err(|e| super::ModelError::Load {
                path: "worker thread".into(),
                message: e.to_string(),
            })?;
        let shape = ready_rx.recv().map_err(|_| super::ModelError::Load {
            path: "worker thread".into(),
            message: "the worker stopped while loading".into(),
        })??;
        Ok(TftForecaster {
            id: id.to_string(),
            jobs: Mutex::new(jobs),
            shape,
            anomaly_calibration,
        })
    }

    /// The anomaly threshold calibration this model carries, if any.
    pub fn anomaly_calibration(&self) -> Option<&AnomalyCalibration> {
        self.anomaly_calibration.as_ref()
    }

    /// Sets the calibration (a trainer that has just made one, before `metrics.json`).
    pub fn set_anomaly_calibration(&mut self, calibration: Option<AnomalyCalibration>) {
        self.anomaly_calibration = calibration;
    }

    fn send(&self, job: Job) -> bool {
        self.jobs
            .lock()
            .map(|tx| tx.send(job).is_ok())
            .unwrap_or(false)
    }

    /// The model's explanation for one server's window.
    pub fn explain(&self, snapshot: &WindowSnapshot) -> Option<Explanation> {
        let (tx, rx) = mpsc::channel();
        if !self.send(Job::Explain(Box::new(snapshot.clone()), tx)) {
            return None;
        }
        rx.recv().ok()
    }
}

/// `metrics.json` → `anomaly_calibration`: None for a model trained before calibrations
/// (or without enough held-out alerts to make one); an error when it is there but
/// unreadable, since the rest of that file is then suspect too.
fn read_anomaly_calibration(dir: &Path) -> Result<Option<AnomalyCalibration>, super::ModelError> {
    let path = dir.join("metrics.json");
    let Ok(text) = std::fs::read(&path) else {
        return Ok(None);
    };
    let err = |message: String| super::ModelError::Load {
        path: path.display().to_string(),
        message,
    };
    let mut metrics: serde_json::Value =
        serde_json::from_slice(&text).map_err(|e| err(e.to_string()))?;
    match metrics
        .get_mut("anomaly_calibration")
        .map(serde_json::Value::take)
    {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(value) => serde_json::from_value(value).map(Some).map_err(|e| {
            err(format!(
                "anomaly_calibration: {e}; retrain the model or remove the key"
            ))
        }),
    }
}

impl Forecaster for TftForecaster {
    fn id(&self) -> &str {
        &self.id
    }

    fn anomaly_threshold(&self, anomaly: &AnomalyConfig) -> f64 {
        self.anomaly_calibration
            .as_ref()
            .and_then(|c| c.threshold_for(anomaly))
            .unwrap_or(anomaly.threshold)
    }

    /// One forward pass for the whole batch. If the worker is gone the answer is NaN
    /// forecasts (the caller keeps serving and logs it).
    fn forecast_batch(&self, snapshots: &[&WindowSnapshot]) -> Vec<ServerForecast> {
        let (m, q, h) = (
            self.shape.metrics.len(),
            self.shape.quantiles.len(),
            self.shape.horizon_steps,
        );
        let (tx, rx) = mpsc::channel();
        let owned: Vec<WindowSnapshot> = snapshots.iter().map(|s| (*s).clone()).collect();
        if self.send(Job::Forecast(owned, tx)) {
            if let Ok(answer) = rx.recv() {
                return answer;
            }
        }
        snapshots
            .iter()
            .map(|_| ServerForecast::empty("tft", m, q, h))
            .collect()
    }
}
