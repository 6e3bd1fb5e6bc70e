//! Training jobs started through the API: one at a time, recorded under `state_dir/jobs/`
//! (the trainer keeps its record up to date; see `nordiq_runtime::job_store`). Under systemd the
//! job runs as `nordiq-retrain.service` (it picks up the queued record); otherwise as a
//! `nordiq-train` child of this daemon, which reloads the model itself when the child
//! promoted one.

use super::reload::{reload_model, Candidate};
use crate::state::{App, ConfigSource};
use nordiq_core::api::TrainingTriggered;
use nordiq_core::config::{Config, Launcher};
use nordiq_core::job_record::{new_job_id, JobParams, JobRecord, JobStatus};
use nordiq_core::timefmt::{now_ms, parse_rfc3339_ms};
use nordiq_runtime::job_store::{process_alive, JobStore};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// A queued job nobody picked up in this long is marked failed.
const QUEUED_TIMEOUT_MS: i64 = 10 * 60 * 1000;

/// Why the trainer could not be started (or stopped) by its launcher.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("running systemctl {args}: {reason}")]
    NoSystemctl { args: String, reason: String },
    #[error("systemctl {args} failed: {stderr}")]
    Systemctl { args: String, stderr: String },
    #[error("{trainer}: {reason} (set training.trainer to nordiq-train's path)")]
    Spawn { trainer: String, reason: String },
}

/// Why a job request was refused.
#[derive(Debug, thiserror::Error)]
pub enum JobRequestError {
    #[error("training job {0} is still {1:?}; cancel it first (POST /admin/cancel-training)")]
    Busy(String, JobStatus),
    /// Another node of the cluster holds the cluster's training lease.
    #[error("training job {job_id} is running on node {node} (one job at a time in a cluster); cancel it there first")]
    ClusterBusy { job_id: String, node: String },
    #[error("no training job is running")]
    NothingToCancel,
    #[error("{0}")]
    Unknown(String),
    #[error("cannot start the trainer: {0}")]
    Launch(#[from] LaunchError),
    #[error("job store: {0}")]
    Store(String),
    /// The buffer does not hold enough to train on (`buffer.min_train_records`/`_days`).
    #[error("not ready to train: {0}")]
    NotReady(String),
}

fn store_of(config: &Config) -> JobStore {
    JobStore::new(config.paths.state_dir.join("jobs"))
}

fn launcher_of(config: &Config) -> Launcher {
    match config.training.launcher {
        Launcher::Auto if nordiq_runtime::systemd::running_as_unit() => Launcher::Systemd,
        Launcher::Auto => Launcher::Process,
        other => other,
    }
}

/// Marks records whose trainer is gone as failed, so a crash never blocks new jobs.
fn settle(store: &JobStore, mut record: JobRecord) -> JobRecord {
    let now = now_ms();
    let dead = match (record.status, record.pid) {
        (JobStatus::Running, Some(pid)) => !process_alive(pid),
        (JobStatus::Running, None) => true,
        (JobStatus::Queued, _) => parse_rfc3339_ms(&record.created)
            .map(|t| now - t > QUEUED_TIMEOUT_MS)
            .unwrap_or(true),
        _ => false,
    };
    if dead {
        record.error = Some(match record.status {
            JobStatus::Queued => "no trainer picked the job up within 10 minutes".into(),
            _ => format!(
                "the trainer (pid {}) exited without finishing its record",
                record.pid.unwrap_or(0)
            ),
        });
        record.finish(JobStatus::Failed, "failed", now);
        let _ = store.write(&record);
    }
    record
}

/// The job `id`, or the latest one.
pub fn status(app: &App, id: Option<&str>) -> Result<JobRecord, JobRequestError> {
    let store = store_of(&app.config.load());
    let record = match id {
        Some(id) => store
            .read(id)
            .map_err(|e| JobRequestError::Unknown(e.to_string()))?,
        None => store
            .latest()
            .ok_or_else(|| JobRequestError::Unknown("no training job has run yet".into()))?,
    };
    Ok(settle(&store, record))
}

fn active(store: &JobStore) -> Option<JobRecord> {
    store
        .list()
        .0
        .into_iter()
        .map(|r| settle(store, r))
        .find(|r| r.status.is_active())
}

fn trainer_path(config: &Config) -> PathBuf {
    if !config.training.trainer.as_os_str().is_empty() {
        return config.training.trainer.clone();
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join("nordiq-train")))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("nordiq-train"))
}

/// `POST /admin/trigger-training`.
pub async fn trigger(
    app: &Arc<App>,
    params: JobParams,
) -> Result<TrainingTriggered, JobRequestError> {
    trigger_from(app, params, "api").await
}

/// Starts a job; `origin` says who asked (`api`, `drift`), in its record.
pub async fn trigger_from(
    app: &Arc<App>,
    params: JobParams,
    origin: &str,
) -> Result<TrainingTriggered, JobRequestError> {
    let _one = app.jobs.lock.lock().await;
    let config = app.config.load_full();
    let store = store_of(&config);
    if let Some(busy) = active(&store) {
        return Err(JobRequestError::Busy(busy.job_id, busy.status));
    }
    let cluster = app.cluster.get();
    // Refused up front when the buffer cannot train a model (what the trainer would find
    // out later); readiness counts what is still in the log as well. In a cluster this
    // node's buffer holds only its shards: the trainer judges the collected history.
    if let (Some(buffer), None) = (app.buffer.clone(), cluster) {
        let stats = tokio::task::spawn_blocking(move || buffer.stats())
            .await
            .map_err(|e| JobRequestError::Store(e.to_string()))?
            .map_err(|e| JobRequestError::Store(format!("reading the buffer: {e}")))?;
        if !stats.readiness.ready {
            return Err(JobRequestError::NotReady(stats.readiness.reason));
        }
    }
    let record = JobRecord::new(new_job_id(now_ms()), origin, params, now_ms());
    if let Some(cluster) = cluster {
        super::cluster::training::take_lease(cluster, &record.job_id).await?;
    }
    if let Err(e) = store.write(&record) {
        if let Some(cluster) = cluster {
            super::cluster::training::release_lease(cluster).await;
        }
        return Err(JobRequestError::Store(e.to_string()));
    }
    let launcher = launcher_of(&config);
    if let Some(cluster) = cluster {
        // Every node's history first; the job's task launches the trainer on it.
        tokio::spawn(super::cluster::training::run_job(
            Arc::clone(app),
            Arc::clone(cluster),
            record.job_id.clone(),
        ));
        tracing::info!(job = %record.job_id, params = ?record.params, "cluster training job started: collecting every node's history");
        return Ok(TrainingTriggered {
            job_id: record.job_id,
            launcher: launcher_name(launcher).into(),
            status: JobStatus::Queued,
        });
    }
    let launched = launch(app, &record.job_id).await;
    if let Err(reason) = launched {
        let mut failed = record;
        failed.error = Some(reason.to_string());
        failed.finish(JobStatus::Failed, "failed to start", now_ms());
        let _ = store.write(&failed);
        return Err(JobRequestError::Launch(reason));
    }
    tracing::info!(job = %record.job_id, launcher = ?launcher, params = ?record.params, "training job started");
    Ok(TrainingTriggered {
        job_id: record.job_id,
        launcher: launcher_name(launcher).into(),
        status: JobStatus::Queued,
    })
}

fn launcher_name(launcher: Launcher) -> &'static str {
    match launcher {
        Launcher::Systemd => "systemd",
        _ => "process",
    }
}

/// Starts the trainer for queued job `job_id` with this node's launcher.
pub async fn launch(app: &Arc<App>, job_id: &str) -> Result<(), LaunchError> {
    let config = app.config.load_full();
    match launcher_of(&config) {
        Launcher::Systemd => start_unit(&config.training.unit).await,
        _ => spawn_trainer(app, &config, job_id),
    }
}

async fn systemctl(args: &[&str]) -> Result<(), LaunchError> {
    let out = tokio::process::Command::new("systemctl")
        .args(args)
        .output()
        .await
        .map_err(|e| LaunchError::NoSystemctl {
            args: args.join(" "),
            reason: e.to_string(),
        })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(LaunchError::Systemctl {
            args: args.join(" "),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

async fn start_unit(unit: &str) -> Result<(), LaunchError> {
    systemctl(&["start", "--no-block", unit]).await
}

/// Starts `nordiq-train --job ID` as a child and watches it: when it exits, a record it
/// left unfinished is marked failed, and a promoted model is loaded.
fn spawn_trainer(app: &Arc<App>, config: &Config, job_id: &str) -> Result<(), LaunchError> {
    let trainer = trainer_path(config);
    let mut command = tokio::process::Command::new(&trainer);
    command
        .args(["--job", job_id, "--reload", "none"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    match &app.jobs.source {
        ConfigSource::File(path) => {
            command.arg("--config").arg(path);
        }
        ConfigSource::Dev(dir) => {
            command.arg("--dev").current_dir(dir);
        }
    }
    let mut child = command.spawn().map_err(|e| LaunchError::Spawn {
        trainer: trainer.display().to_string(),
        reason: e.to_string(),
    })?;
    let app = Arc::clone(app);
    let job_id = job_id.to_string();
    let stderr = child.stderr.take();
    tokio::spawn(async move {
        // The trainer's own messages go to our log, so journalctl shows them in one place.
        if let Some(stderr) = stderr {
            use tokio::io::AsyncBufReadExt;
            let mut lines = tokio::io::BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                tracing::info!(job = %job_id, "trainer: {line}");
            }
        }
        let exit = child.wait().await;
        let store = store_of(&app.config.load());
        let Ok(mut record) = store.read(&job_id) else {
            return;
        };
        if record.status.is_active() {
            record.error = Some(format!("nordiq-train exited ({exit:?}) without finishing"));
            record.finish(JobStatus::Failed, "failed", now_ms());
            let _ = store.write(&record);
        }
        tracing::info!(job = %job_id, status = ?record.status, model = ?record.model_id, "training job finished");
        if record.promotion.as_ref().is_some_and(|p| p.promoted) {
            reload_model(&app, Candidate::Current).await;
        }
    });
    Ok(())
}

/// `POST /admin/cancel-training`: SIGTERM to the trainer (or `systemctl stop`), then wait
/// for it to record the cancellation; after `cancel_timeout_seconds` it is killed and the
/// record and any half-written model directory are cleaned up here.
pub async fn cancel(app: &Arc<App>) -> Result<JobRecord, JobRequestError> {
    let _one = app.jobs.lock.lock().await;
    let config = app.config.load_full();
    let store = store_of(&config);
    let mut record = active(&store).ok_or(JobRequestError::NothingToCancel)?;
    if record.status == JobStatus::Queued && record.pid.is_none() {
        record.finish(
            JobStatus::Cancelled,
            "cancelled before it started",
            now_ms(),
        );
        store
            .write(&record)
            .map_err(|e| JobRequestError::Store(e.to_string()))?;
        return Ok(record);
    }
    // The record marks the wish first, so a trainer between epochs sees it even if the
    // signal is lost.
    record.stage = "cancelling".into();
    let _ = store.write(&record);
    let pid = record.pid;
    if launcher_of(&config) == Launcher::Systemd && pid.is_none() {
        systemctl(&["stop", "--no-block", &config.training.unit])
            .await
            .map_err(JobRequestError::Launch)?;
    } else if let Some(pid) = pid {
        // SAFETY: plain kill(2) on the trainer's pid.
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
    }
    let deadline =
        tokio::time::Instant::now() + Duration::from_secs(config.training.cancel_timeout_seconds);
    loop {
        let now = store
            .read(&record.job_id)
            .map_err(|e| JobRequestError::Store(e.to_string()))?;
        if !now.status.is_active() {
            tracing::info!(job = %now.job_id, status = ?now.status, "training job stopped");
            return Ok(now);
        }
        if tokio::time::Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    if let Some(pid) = pid {
        // SAFETY: as above.
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
    }
    remove_staging(&config);
    let mut killed = store
        .read(&record.job_id)
        .map_err(|e| JobRequestError::Store(e.to_string()))?;
    killed.error = Some(format!(
        "the trainer did not stop within {} s of SIGTERM and was killed",
        config.training.cancel_timeout_seconds
    ));
    killed.finish(JobStatus::Cancelled, "killed", now_ms());
    let _ = store.write(&killed);
    tracing::warn!(job = %killed.job_id, "training job killed");
    Ok(killed)
}

/// Half-built model directories (`models/.tmp-*`) of a killed trainer.
fn remove_staging(config: &Config) {
    let models = config.paths.state_dir.join("models");
    if let Ok(entries) = std::fs::read_dir(&models) {
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with(".tmp-") {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
}
