//! What a training job is: its record (status, progress, promotion, error) and its id.
//! The files that hold records live in `nordiq_runtime::job_store`.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    Queued,
    Running,
    Completed,
    Failed,
    Cancelled,
}

impl JobStatus {
    pub fn is_active(self) -> bool {
        matches!(self, JobStatus::Queued | JobStatus::Running)
    }

    /// The name records and answers carry (`queued`, `running`, …).
    pub fn name(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Completed => "completed",
            JobStatus::Failed => "failed",
            JobStatus::Cancelled => "cancelled",
        }
    }
}

/// What a job was asked to do.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JobParams {
    pub epochs: Option<usize>,
    pub incremental: bool,
    /// Promote even when the new model does not beat the current one.
    pub force: bool,
    /// History files to train on instead of this node's buffer (in a cluster: every
    /// node's export, collected for the job).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub data_files: Vec<String>,
}

/// The promotion decision and the figures it rests on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Promotion {
    pub promoted: bool,
    pub reason: String,
    /// The new model's validation pinball loss.
    pub candidate_loss: f64,
    /// The current model's loss on the same validation windows (None: no current model).
    pub current_loss: Option<f64>,
    pub current_model: Option<String>,
    /// The candidate must be at least this fraction better.
    pub margin: f64,
    /// The candidate's MASE on its held-out time.
    #[serde(default)]
    pub candidate_mase: Option<f64>,
    /// The baseline with the lowest MASE on the same held-out time, and that MASE: the
    /// candidate must beat it by the margin too.
    #[serde(default)]
    pub best_baseline: Option<String>,
    #[serde(default)]
    pub best_baseline_mase: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    pub job_id: String,
    pub status: JobStatus,
    /// `api`, `timer`, `cli`.
    pub trigger: String,
    pub params: JobParams,
    /// 0–100.
    pub progress: f64,
    pub epoch: usize,
    pub epochs: usize,
    pub train_loss: Option<f64>,
    pub validation_loss: Option<f64>,
    pub created: String,
    pub started: Option<String>,
    pub completed: Option<String>,
    pub duration_s: Option<f64>,
    /// What the job is doing right now, in words.
    pub stage: String,
    pub model_id: Option<String>,
    pub model_path: Option<String>,
    pub promotion: Option<Promotion>,
    pub error: Option<String>,
    /// The trainer's process id while it runs (to detect a trainer that died).
    pub pid: Option<u32>,
}

impl JobRecord {
    pub fn new(job_id: String, trigger: &str, params: JobParams, now_ms: i64) -> JobRecord {
        JobRecord {
            job_id,
            status: JobStatus::Queued,
            trigger: trigger.to_string(),
            params,
            progress: 0.0,
            epoch: 0,
            epochs: 0,
            train_loss: None,
            validation_loss: None,
            created: crate::timefmt::format_ms(now_ms),
            started: None,
            completed: None,
            duration_s: None,
            stage: "queued".into(),
            model_id: None,
            model_path: None,
            promotion: None,
            error: None,
            pid: None,
        }
    }

    /// Marks the record finished with `status` at `now_ms`.
    pub fn finish(&mut self, status: JobStatus, stage: &str, now_ms: i64) {
        self.status = status;
        self.stage = stage.to_string();
        self.pid = None;
        let now = crate::timefmt::format_ms(now_ms);
        if let Some(started) = self
            .started
            .as_deref()
            .and_then(|s| crate::timefmt::parse_rfc3339_ms(s).ok())
        {
            self.duration_s = Some((now_ms - started) as f64 / 1000.0);
        }
        self.completed = Some(now);
        if status == JobStatus::Completed {
            self.progress = 100.0;
        }
    }
}

/// `job_YYYYMMDD_HHMMSS_mmm` for a job created at `now_ms`.
pub fn new_job_id(now_ms: i64) -> String {
    let stamp = crate::timefmt::format_ms(now_ms);
    let digits: String = stamp.chars().filter(char::is_ascii_digit).collect();
    format!(
        "job_{}_{}_{:03}",
        &digits[..8],
        &digits[8..14],
        now_ms.rem_euclid(1000)
    )
}

/// Whether `id` can name a job record (and a file): short, `[A-Za-z0-9_-]` only.
pub fn valid_job_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}
