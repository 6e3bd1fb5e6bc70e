//! The loaded model's workers. tch modules are `Send`, not `Sync`, so each worker thread
//! owns its own copy of the model; callers hand them windows over channels and wait for
//! the answers.
//!
//! On the CPU there is one worker per serving thread, each running libtorch on one
//! thread, and a batch is split between them: the network's operations are small
//! (rows of 8 to 64 floats), and one model spreading each of them over several threads
//! spent a fifth of a forward pass waiting at OpenMP barriers (docs/model.md). Each copy
//! costs its weights (well under a megabyte) and one chunk's working memory. On CUDA one
//! worker drives the device.

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

/// A loaded TFT behind its worker threads.
pub struct TftForecaster {
    id: String,
    /// One channel per worker; a batch is cut into as many contiguous parts.
    workers: Vec<Mutex<mpsc::Sender<Job>>>,
    pub shape: super::TftShape,
    /// The trainer's anomaly threshold for this model (`metrics.json`), when it made one.
    anomaly_calibration: Option<AnomalyCalibration>,
}

impl TftForecaster {
    /// Loads the model directory `dir` on the CPU (or CUDA when asked and available) and
    /// starts its workers: `threads` of them on the CPU, one thread each. `id` is what
    /// answers carry (the directory name).
    pub fn load(
        dir: &Path,
        id: &str,
        threads: usize,
        use_cuda: bool,
    ) -> Result<TftForecaster, super::ModelError> {
        let anomaly_calibration = read_anomaly_calibration(dir)?;
        let cuda = use_cuda && tch::Cuda::is_available();
        let (workers, threads_each) = if cuda {
            (1, threads.max(1))
        } else {
            (threads.max(1), 1)
        };
        // libtorch hands every thread, at its first operation, the thread count set last by
        // any thread: asking for it here fixes the caller's own before the workers set
        // theirs (a trainer or bench that has not run an operation yet would otherwise run
        // on one thread).
        let _ = tch::get_num_threads();
        // All start loading at once; then each is waited for.
        let started: Vec<_> = (0..workers)
            .map(|index| start_worker(dir, index, threads_each, cuda))
            .collect::<Result<_, _>>()?;
        let mut senders = Vec::with_capacity(workers);
        let mut shape = None;
        for (sender, ready) in started {
            let loaded = ready.recv().map_err(|_| super::ModelError::Load {
                path: "worker thread".into(),
                message: "the worker stopped while loading".into(),
            })??;
            shape.get_or_insert(loaded);
            senders.push(Mutex::new(sender));
        }
        let shape = shape.ok_or_else(|| super::ModelError::Load {
            path: dir.display().to_string(),
            message: "no worker started".into(),
        })?;
        Ok(TftForecaster {
            id: id.to_string(),
            workers: senders,
            shape,
            anomaly_calibration,
        })
    }

    /// How many workers share a batch.
    pub fn workers(&self) -> usize {
        self.workers.len()
    }

    /// The anomaly threshold calibration this model carries, if any.
    pub fn anomaly_calibration(&self) -> Option<&AnomalyCalibration> {
        self.anomaly_calibration.as_ref()
    }

    /// Sets the calibration (a trainer that has just made one, before `metrics.json`).
    pub fn set_anomaly_calibration(&mut self, calibration: Option<AnomalyCalibration>) {
        self.anomaly_calibration = calibration;
    }

    fn send(&self, worker: usize, job: Job) -> bool {
        self.workers[worker]
            .lock()
            .map(|tx| tx.send(job).is_ok())
            .unwrap_or(false)
    }

    /// The model's explanation for one server's window.
    pub fn explain(&self, snapshot: &WindowSnapshot) -> Option<Explanation> {
        let (tx, rx) = mpsc::channel();
        if !self.send(0, Job::Explain(Box::new(snapshot.clone()), tx)) {
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

    /// The batch cut into one contiguous part per worker, forecast side by side and put
    /// back in order. A part whose worker is gone comes back as NaN forecasts (the caller
    /// keeps serving and logs it).
    fn forecast_batch(&self, snapshots: &[&WindowSnapshot]) -> Vec<ServerForecast> {
        let (m, q, h) = (
            self.shape.metrics.len(),
            self.shape.quantiles.len(),
            self.shape.horizon_steps,
        );
        let replies: Vec<_> = crate::forecaster::even_parts(snapshots.len(), self.workers.len())
            .into_iter()
            .enumerate()
            .map(|(worker, range)| {
                let part = &snapshots[range];
                let (tx, rx) = mpsc::channel();
                let owned: Vec<WindowSnapshot> = part.iter().map(|s| (*s).clone()).collect();
                let sent = self.send(worker, Job::Forecast(owned, tx));
                (part.len(), sent.then_some(rx))
            })
            .collect();
        replies
            .into_iter()
            .flat_map(|(n, rx)| match rx.and_then(|rx| rx.recv().ok()) {
                Some(answer) if answer.len() == n => answer,
                _ => (0..n)
                    .map(|_| ServerForecast::empty("tft", m, q, h))
                    .collect(),
            })
            .collect()
    }
}

/// What a worker answers once it has loaded the model: its shape, or why it could not.
type Ready = mpsc::Receiver<Result<super::TftShape, super::ModelError>>;

/// Starts worker `index`: a thread that loads the model and answers jobs until its channel
/// closes. Returns its channel and where it says it has loaded.
fn start_worker(
    dir: &Path,
    index: usize,
    threads: usize,
    cuda: bool,
) -> Result<(mpsc::Sender<Job>, Ready), super::ModelError> {
    let (ready_tx, ready_rx) = mpsc::channel();
    let (jobs, job_rx) = mpsc::channel::<Job>();
    let dir = dir.to_path_buf();
    std::thread::Builder::new()
        .name(format!("nordiq-tft-{index}"))
        .spawn(move || {
            // libtorch's thread count is the calling thread's (OpenMP and MKL keep it per
            // thread), so each worker sets its own.
            tch::set_num_threads(threads as i32);
            let device = if cuda {
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
    Ok((jobs, ready_rx))
}
