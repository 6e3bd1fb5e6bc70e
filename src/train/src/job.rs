//! The trainer's side of a job record: claim it, report each epoch, finish it. Record
//! writes after the claim are best effort: a full disk must not cost a finished model.

use anyhow::Context;
use nordiq_core::job_record::{new_job_id, JobParams, JobRecord, JobStatus};
use nordiq_core::timefmt::{format_ms, now_ms};
use nordiq_model::tft::train::EpochReport;
use nordiq_runtime::job_store::JobStore;

/// Share of the progress bar the epochs take; evaluation and promotion take the rest.
const TRAINING_SHARE: f64 = 90.0;

pub struct JobHandle {
    store: JobStore,
    pub record: JobRecord,
}

/// Which record this run works under.
pub enum Claim<'a> {
    /// A queued job by id (the daemon's process launcher).
    Id(&'a str),
    /// The oldest queued job, else a new one (`nordiq-retrain.service`, started by the API
    /// or the timer).
    Next,
    /// A new record.
    New,
}

impl JobHandle {
    pub fn claim(
        store: JobStore,
        claim: Claim,
        trigger: &str,
        params: JobParams,
    ) -> anyhow::Result<JobHandle> {
        let now = now_ms();
        let fresh = || JobRecord::new(new_job_id(now), trigger, params.clone(), now);
        let mut record = match claim {
            Claim::Id(id) => {
                let r = store.read(id).with_context(|| format!("--job {id}"))?;
                if r.status != JobStatus::Queued {
                    anyhow::bail!("--job {id}: the job is {:?}, not queued", r.status);
                }
                r
            }
            Claim::Next => store.oldest_queued().unwrap_or_else(fresh),
            Claim::New => fresh(),
        };
        record.status = JobStatus::Running;
        record.pid = Some(std::process::id());
        record.started = Some(format_ms(now));
        record.stage = "loading history".into();
        store
            .write(&record)
            .with_context(|| format!("writing the job record under {}", store.dir().display()))?;
        Ok(JobHandle { store, record })
    }

    fn save(&self) {
        if let Err(e) = self.store.write(&self.record) {
            eprintln!("nordiq-train: cannot update the job record: {e}");
        }
    }

    pub fn stage(&mut self, stage: &str) {
        self.record.stage = stage.to_string();
        self.save();
    }

    pub fn epoch(&mut self, r: &EpochReport) {
        self.record.epoch = r.epoch;
        self.record.epochs = r.epochs;
        self.record.train_loss = Some(r.train_loss);
        self.record.validation_loss = Some(r.validation_loss);
        self.record.progress = r.epoch as f64 / r.epochs.max(1) as f64 * TRAINING_SHARE;
        self.record.stage = format!("training: epoch {}/{}", r.epoch, r.epochs);
        self.save();
    }

    /// Whether someone asked (through the record) for this job to stop.
    pub fn cancel_requested(&self) -> bool {
        self.store
            .read(&self.record.job_id)
            .map(|r| r.stage == "cancelling" || r.status == JobStatus::Cancelled)
            .unwrap_or(false)
    }

    pub fn finish(mut self, status: JobStatus, stage: &str) -> JobRecord {
        self.record.finish(status, stage, now_ms());
        self.save();
        self.record
    }
}
