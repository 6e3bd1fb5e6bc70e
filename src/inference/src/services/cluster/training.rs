//! Training in a cluster: one job at a time cluster-wide, on every shard's history, and
//! the promoted model served by every node.
//!
//! - The node asked to train takes the cluster's training lease (`training` in the leases
//!   bucket, renewed by its lease rounds while the job lives); another node asked meanwhile
//!   refuses with the job and node that hold it.
//! - It calls for history (`request` in the exports bucket); every node (itself included)
//!   rolls its buffer's log, exports the last `buffer.export_days` to Parquet, puts the
//!   file in the exports object store and answers (`done.JOB.NODE`). Once every live node
//!   has answered, the files are fetched into `jobs/JOB/data/` and the trainer runs on them
//!   (`JobParams::data_files`), through the node's usual launcher.
//! - A node whose reload succeeds with a model the cluster has not agreed on (a job's
//!   promotion, `nordiqctl promote` or `rollback`) puts its files in the models object
//!   store and announces it (`current` in the model bucket). Every node follows the
//!   announcement: fetches the files into its model store, promotes and hot-reloads; a node
//!   that cannot keeps its old model and says so in `/status`.

use super::leases::{lease_key_training, live_value};
use crate::services::jobs::{self, JobRequestError};
use crate::services::reload::{reload_model, Candidate};
use crate::state::cluster::{ClusterState, Handles, TrainingHeld};
use crate::state::App;
use futures_util::StreamExt;
use nordiq_core::cluster::{ExportDone, ExportRequest, ModelAnnouncement, TrainingLease};
use nordiq_core::job_record::JobStatus;
use nordiq_core::timefmt::now_ms;
use nordiq_model::Forecaster;
use nordiq_runtime::job_store::JobStore;
use nordiq_runtime::model_store::{ModelStore, Staging};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// How long a job waits for every node's history.
const COLLECT_TIMEOUT: Duration = Duration::from_secs(600);

fn json<T: serde::Serialize>(value: &T) -> bytes::Bytes {
    serde_json::to_vec(value).unwrap_or_default().into()
}

/// The key of `node`'s answer to job `job_id`'s call for history.
fn done_key(job_id: &str, node: &str) -> String {
    format!("done.{job_id}.{node}")
}

fn store_of(app: &App) -> JobStore {
    JobStore::new(app.config.load().paths.state_dir.join("jobs"))
}

/// Takes the cluster's training lease for `job_id`, or says who holds it.
pub async fn take_lease(cluster: &ClusterState, job_id: &str) -> Result<(), JobRequestError> {
    let handles = cluster
        .handles
        .load_full()
        .ok_or_else(|| JobRequestError::Unknown("the cluster is not connected yet".into()))?;
    let lease = TrainingLease {
        node: cluster.node.clone(),
        job_id: job_id.to_string(),
    };
    match handles
        .leases
        .create(lease_key_training(), json(&lease))
        .await
    {
        Ok(revision) => {
            *cluster.training.lock().unwrap_or_else(|p| p.into_inner()) = Some(TrainingHeld {
                job_id: job_id.to_string(),
                revision,
            });
            Ok(())
        }
        Err(e) => {
            let holder = live_value::<TrainingLease>(&handles.leases, lease_key_training())
                .await
                .ok()
                .flatten()
                .map(|(lease, _)| lease);
            Err(match holder {
                Some(h) => JobRequestError::ClusterBusy {
                    job_id: h.job_id,
                    node: h.node,
                },
                None => JobRequestError::Unknown(format!(
                    "cannot take the cluster's training lease: {e}"
                )),
            })
        }
    }
}

/// Gives the cluster's training lease back (the job is over, or never started).
pub async fn release_lease(cluster: &ClusterState) {
    let Some(handles) = cluster.handles.load_full() else {
        return;
    };
    let held = cluster
        .training
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take();
    if let Some(held) = held {
        let _ = handles
            .leases
            .delete_expect_revision(lease_key_training(), Some(held.revision))
            .await;
    }
}

/// Runs a queued cluster job to its end: collects every node's history, launches the
/// trainer on it, waits for the record to finish, gives the lease back.
pub async fn run_job(app: Arc<App>, cluster: Arc<ClusterState>, job_id: String) {
    let Some(handles) = cluster.handles.load_full() else {
        return;
    };
    let store = store_of(&app);
    let outcome = collect(&app, &cluster, &handles, &store, &job_id).await;
    let launched = match outcome {
        Ok(files) => {
            if let Ok(mut record) = store.read(&job_id) {
                record.params.data_files = files.iter().map(|f| f.display().to_string()).collect();
                record.stage = "history collected; starting the trainer".into();
                let _ = store.write(&record);
            }
            jobs::launch(&app, &job_id).await.map_err(|e| e.to_string())
        }
        Err(e) => Err(e),
    };
    if let Err(reason) = launched {
        tracing::error!(job = %job_id, %reason, "cluster training job failed before training");
        if let Ok(mut record) = store.read(&job_id) {
            record.error = Some(reason);
            record.finish(JobStatus::Failed, "failed", now_ms());
            let _ = store.write(&record);
        }
        release_lease(&cluster).await;
        return;
    }
    // The lease rounds renew the lease until the record says the job is over.
    loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        match jobs::status(&app, Some(&job_id)) {
            Ok(r) if r.status.is_active() => continue,
            _ => break,
        }
    }
    release_lease(&cluster).await;
    tracing::info!(job = %job_id, "cluster training job over; lease given back");
}

/// Calls for every node's history and fetches it; the files, one per node with data.
async fn collect(
    app: &App,
    cluster: &ClusterState,
    handles: &Handles,
    store: &JobStore,
    job_id: &str,
) -> Result<Vec<PathBuf>, String> {
    let request = ExportRequest {
        job_id: job_id.to_string(),
        node: cluster.node.clone(),
        days: app.config.load().buffer.export_days,
    };
    handles
        .exports
        .put("request", json(&request))
        .await
        .map_err(|e| format!("calling for history: {e}"))?;
    let started = Instant::now();
    let answers = loop {
        // Asked afresh each time: a node that joins meanwhile is waited for too.
        let nodes = super::leases::live_nodes(handles).await.unwrap_or_default();
        let mut answers = Vec::new();
        for node in &nodes {
            if let Ok(Some(value)) = handles.exports.get(done_key(job_id, node)).await {
                if let Ok(done) = serde_json::from_slice::<ExportDone>(&value) {
                    answers.push(done);
                }
            }
        }
        if let Ok(mut record) = store.read(job_id) {
            record.stage = format!(
                "collecting history: {} of {} nodes",
                answers.len(),
                nodes.len()
            );
            let _ = store.write(&record);
        }
        if !nodes.is_empty() && answers.len() >= nodes.len() {
            break answers;
        }
        if started.elapsed() > COLLECT_TIMEOUT {
            return Err(format!(
                "only {} of {} nodes sent their history within {} s",
                answers.len(),
                nodes.len(),
                COLLECT_TIMEOUT.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let dir = app
        .config
        .load()
        .paths
        .state_dir
        .join("jobs")
        .join(job_id)
        .join("data");
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    tracing::info!(
        job = %job_id,
        nodes = answers.len(),
        rows = answers.iter().map(|a| a.rows).sum::<u64>(),
        "every node's history is in"
    );
    let mut files = Vec::new();
    for done in answers {
        if let Some(e) = &done.error {
            tracing::warn!(job = %job_id, node = %done.node, error = %e, "a node sent no history");
        }
        let Some(object) = done.object.filter(|_| done.rows > 0) else {
            continue;
        };
        let path = dir.join(format!("{}.parquet", done.node));
        fetch(&handles.export_files, &object, &path).await?;
        files.push(path);
    }
    if files.is_empty() {
        return Err("no node had history to train on".into());
    }
    Ok(files)
}

async fn fetch(
    store: &async_nats::jetstream::object_store::ObjectStore,
    object: &str,
    path: &Path,
) -> Result<(), String> {
    let mut reader = store
        .get(object)
        .await
        .map_err(|e| format!("fetching {object}: {e}"))?;
    let mut file = tokio::fs::File::create(path)
        .await
        .map_err(|e| format!("{}: {e}", path.display()))?;
    tokio::io::copy(&mut reader, &mut file)
        .await
        .map_err(|e| format!("fetching {object} into {}: {e}", path.display()))?;
    file.sync_all()
        .await
        .map_err(|e| format!("{}: {e}", path.display()))
}

async fn upload(
    store: &async_nats::jetstream::object_store::ObjectStore,
    object: &str,
    path: &Path,
) -> Result<(), String> {
    let mut file = tokio::fs::File::open(path)
        .await
        .map_err(|e| format!("{}: {e}", path.display()))?;
    store
        .put(object, &mut file)
        .await
        .map(|_| ())
        .map_err(|e| format!("storing {object}: {e}"))
}

/// Answers every call for history until `shutdown`: this node's buffer, exported.
pub async fn serve_exports(app: Arc<App>, cluster: Arc<ClusterState>, shutdown: CancellationToken) {
    let Some(handles) = cluster.handles.load_full() else {
        return;
    };
    let mut served: HashSet<String> = HashSet::new();
    let mut requests = KeyFollower::new(&handles.exports, "request", "history requests");
    while let Some(request) = requests.next::<ExportRequest>(&shutdown).await {
        let key = done_key(&request.job_id, &cluster.node);
        // Answered already (before a restart, or seen twice): once is enough.
        if !served.insert(request.job_id.clone())
            || handles.exports.get(&key).await.is_ok_and(|v| v.is_some())
        {
            continue;
        }
        let done = export(&app, &cluster, &handles, &request).await;
        if let Some(e) = &done.error {
            tracing::warn!(job = %request.job_id, error = %e, "sending this node's history failed");
        } else {
            tracing::info!(job = %request.job_id, rows = done.rows, "sent this node's history for training");
        }
        if let Err(e) = handles.exports.put(key, json(&done)).await {
            tracing::warn!(error = %e, "cannot answer a history request");
        }
    }
}

async fn export(
    app: &App,
    cluster: &ClusterState,
    handles: &Handles,
    request: &ExportRequest,
) -> ExportDone {
    let mut done = ExportDone {
        node: cluster.node.clone(),
        object: None,
        rows: 0,
        error: None,
    };
    let Some(buffer) = app.buffer.clone() else {
        done.error = Some("buffer.enabled = false on this node".into());
        return done;
    };
    let path = app
        .config
        .load()
        .paths
        .state_dir
        .join(format!("export-{}.parquet", request.job_id));
    let days = request.days;
    let out = path.clone();
    let exported = tokio::task::spawn_blocking(move || {
        // What is still in the log is rolled first: the export reads Parquet.
        buffer.flush()?;
        let metrics = buffer.metrics().to_vec();
        nordiq_buffer::export::export(buffer.root(), &metrics, days, true, now_ms(), &out)
    })
    .await;
    match exported {
        Ok(Ok(report)) => {
            done.rows = report.rows;
            let object = format!("{}.{}", request.job_id, cluster.node);
            match upload(&handles.export_files, &object, &path).await {
                Ok(()) => done.object = Some(object),
                Err(e) => done.error = Some(e),
            }
        }
        Ok(Err(e)) => done.error = Some(format!("exporting the buffer: {e}")),
        Err(e) => done.error = Some(format!("exporting the buffer: {e}")),
    }
    let _ = tokio::fs::remove_file(&path).await;
    done
}

/// After a successful reload: a model newer than the one the cluster agreed on (promoted
/// here) is put in the models object store and announced, so every node serves it.
pub async fn announce_if_new(cluster: &ClusterState, dir: &Path) {
    let Some(handles) = cluster.handles.load_full() else {
        return;
    };
    // `models/current` is a link: the model's id is the name it points at.
    let dir = match tokio::fs::canonicalize(dir).await {
        Ok(d) => d,
        Err(_) => return,
    };
    let dir = dir.as_path();
    let Some(id) = dir.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return;
    };
    let agreed = match handles.model.get("current").await {
        Ok(Some(v)) => serde_json::from_slice::<ModelAnnouncement>(&v).ok(),
        _ => None,
    };
    // Only a newer model than the agreed one is announced (ids sort by when they were
    // trained): a node that reloads an older one — it could not load the agreed model, or
    // an operator rolled it back — does not take the cluster back with it.
    if agreed.as_ref().is_some_and(|a| a.id >= id) {
        return;
    }
    let mut files = Vec::new();
    let mut entries = match tokio::fs::read_dir(dir).await {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!(model = %id, error = %e, "cannot read the model to announce it");
            return;
        }
    };
    while let Ok(Some(entry)) = entries.next_entry().await {
        if entry.file_type().await.is_ok_and(|t| t.is_file()) {
            files.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    files.sort();
    for file in &files {
        if let Err(e) = upload(
            &handles.model_files,
            &format!("{id}/{file}"),
            &dir.join(file),
        )
        .await
        {
            tracing::error!(model = %id, error = %e, "cannot publish the model to the cluster");
            return;
        }
    }
    let announcement = ModelAnnouncement {
        id: id.clone(),
        node: cluster.node.clone(),
        files,
    };
    match handles.model.put("current", json(&announcement)).await {
        Ok(_) => tracing::info!(model = %id, "model announced to the cluster"),
        Err(e) => tracing::error!(model = %id, error = %e, "cannot announce the model"),
    }
}

/// Follows the cluster's model until `shutdown`: fetches an announced model this node
/// does not have, promotes it and hot-reloads; on failure keeps serving the old one.
pub async fn follow_models(app: Arc<App>, cluster: Arc<ClusterState>, shutdown: CancellationToken) {
    let Some(handles) = cluster.handles.load_full() else {
        return;
    };
    let mut announcements = KeyFollower::new(&handles.model, "current", "the cluster's model");
    while let Some(announced) = announcements.next::<ModelAnnouncement>(&shutdown).await {
        let outcome = adopt(&app, &handles, &announced).await;
        let mut sync = cluster.model_sync.lock().unwrap_or_else(|p| p.into_inner());
        sync.agreed = Some(announced.id.clone());
        sync.error = outcome.err();
        if let Some(e) = &sync.error {
            tracing::error!(model = %announced.id, error = %e, "cannot serve the cluster's model; the previous one keeps serving");
        }
    }
}

async fn adopt(
    app: &Arc<App>,
    handles: &Handles,
    announced: &ModelAnnouncement,
) -> Result<(), String> {
    if app.forecaster.load().id() == announced.id {
        return Ok(());
    }
    let models = ModelStore::new(app.config.load().paths.state_dir.join("models"));
    if !models.dir().join(&announced.id).is_dir() {
        let staging = Staging::create(models.dir(), &announced.id).map_err(|e| e.to_string())?;
        for file in &announced.files {
            if file.contains('/') || file.starts_with('.') {
                return Err(format!("the announcement names an odd file `{file}`"));
            }
            fetch(
                &handles.model_files,
                &format!("{}/{file}", announced.id),
                &staging.path().join(file),
            )
            .await?;
        }
        let staged = tokio::task::spawn_blocking(move || staging.finish_copied())
            .await
            .map_err(|e| e.to_string())?;
        staged.map_err(|e| e.to_string())?;
    }
    models.promote(&announced.id).map_err(|e| e.to_string())?;
    let outcome = reload_model(app, Candidate::Current).await;
    match outcome.error {
        None => {
            tracing::info!(model = %announced.id, from = %announced.node, "serving the cluster's model");
            Ok(())
        }
        Some(e) => {
            // The model store points at a model this node refused: point it back.
            let _ = models.rollback();
            Err(e)
        }
    }
}

/// Follows one key of a bucket: every value it takes (its latest first), watching again
/// when a watch ends (a reconnect), until shutdown.
struct KeyFollower<'a> {
    store: &'a async_nats::jetstream::kv::Store,
    key: &'static str,
    what: &'static str,
    watch: Option<async_nats::jetstream::kv::Watch>,
}

impl<'a> KeyFollower<'a> {
    fn new(
        store: &'a async_nats::jetstream::kv::Store,
        key: &'static str,
        what: &'static str,
    ) -> Self {
        KeyFollower {
            store,
            key,
            what,
            watch: None,
        }
    }

    /// The next value that parses as `T`; None at shutdown.
    async fn next<T: serde::de::DeserializeOwned>(
        &mut self,
        shutdown: &CancellationToken,
    ) -> Option<T> {
        loop {
            let watch = match &mut self.watch {
                Some(w) => w,
                None => match self.store.watch(self.key).await {
                    Ok(w) => self.watch.insert(w),
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot watch {}; retrying", self.what);
                        tokio::select! {
                            _ = tokio::time::sleep(Duration::from_secs(2)) => continue,
                            _ = shutdown.cancelled() => return None,
                        }
                    }
                },
            };
            let entry = tokio::select! {
                e = watch.next() => e,
                _ = shutdown.cancelled() => return None,
            };
            match entry {
                Some(Ok(entry)) => {
                    if let Ok(value) = serde_json::from_slice::<T>(&entry.value) {
                        return Some(value);
                    }
                }
                _ => self.watch = None,
            }
        }
    }
}
