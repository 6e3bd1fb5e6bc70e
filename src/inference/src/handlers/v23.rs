//! The admin answers' fields as NordIQ v2.3 named them, added beside today's so that
//! v2.3 scripts (`jq -r .success`, `.progress_pct`, `.ready_to_train` …) keep working.
//! Pure: records and stats in, JSON objects out.

use nordiq_core::job_record::JobRecord;
use nordiq_core::timefmt::{now_ms, parse_rfc3339_ms};
use serde_json::{json, Value};

/// `body` (an object) with `extra`'s keys added; a key `body` already has keeps its value.
pub fn merged(body: impl serde::Serialize, extra: Value) -> Value {
    let mut out = serde_json::to_value(body).unwrap_or(Value::Null);
    if let (Some(out), Value::Object(extra)) = (out.as_object_mut(), extra) {
        for (k, v) in extra {
            out.entry(k).or_insert(v);
        }
    }
    out
}

/// A job's v2.3 fields: `progress_pct`, `incremental`, `started_at`, `completed_at`,
/// `duration_seconds` (so far, while it runs).
pub fn job_fields(record: &JobRecord) -> Value {
    let duration = record.duration_s.or_else(|| {
        let started = parse_rfc3339_ms(record.started.as_deref()?).ok()?;
        record
            .status
            .is_active()
            .then(|| (now_ms() - started) as f64 / 1000.0)
    });
    json!({
        "progress_pct": record.progress.round() as i64,
        "incremental": record.params.incremental,
        "started_at": record.started,
        "completed_at": record.completed,
        "duration_seconds": duration.map(|d| d.round() as i64),
    })
}

/// `GET /admin/training-status` before any job: v2.3 answered `idle`.
pub fn idle() -> Value {
    json!({
        "job_id": null,
        "status": "idle",
        "progress_pct": 0,
        "epochs": null,
        "incremental": null,
        "started_at": null,
        "completed_at": null,
        "duration_seconds": null,
        "model_path": null,
        "error": null,
        "message": "no training job has run yet",
    })
}

/// The v2.3 half of `GET /admin/training-stats`.
pub struct StatsInput<'a> {
    /// Every job record, oldest first (the running one and the last start come from it).
    pub records: &'a [JobRecord],
    /// Jobs by how they ended (as today's `jobs` block counts them).
    pub completed: usize,
    pub failed: usize,
    pub cancelled: usize,
    pub total_records: u64,
    pub file_count: usize,
    pub first_day: Option<&'a str>,
    pub last_day: Option<&'a str>,
    pub disk_bytes: u64,
    pub ready: bool,
    pub ready_reason: &'a str,
    pub training_days: u32,
    pub min_records: u64,
}

pub fn stats_fields(input: &StatsInput) -> Value {
    let current = input.records.iter().rev().find(|r| r.status.is_active());
    let last = input
        .records
        .last()
        .map(|r| r.started.clone().unwrap_or(r.created.clone()));
    json!({
        "current_job": current.map(|r| json!({
            "job_id": r.job_id,
            "status": r.status,
            "progress_pct": r.progress.round() as i64,
        })),
        "history": {
            "total_trainings": input.records.len(),
            "successful": input.completed,
            "failed": input.failed,
            "cancelled": input.cancelled,
            "last_training": last,
        },
        "data_buffer": {
            "total_records": input.total_records,
            "file_count": input.file_count,
            "date_range": { "start": input.first_day, "end": input.last_day },
            "disk_usage_mb": (input.disk_bytes as f64 / 1_048_576.0 * 10.0).round() / 10.0,
        },
        "ready_to_train": input.ready,
        "ready_reason": if input.ready { "Ready to train" } else { input.ready_reason },
        "config": {
            "training_days": input.training_days,
            "min_records_threshold": input.min_records,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use nordiq_core::job_record::{JobParams, JobStatus};

    fn record(id: &str, status: JobStatus, progress: f64) -> JobRecord {
        let t0 = 1_795_824_000_000;
        let mut r = JobRecord::new(
            id.into(),
            "api",
            JobParams {
                epochs: Some(5),
                incremental: true,
                force: false,
                ..Default::default()
            },
            t0,
        );
        r.status = status;
        r.progress = progress;
        r.started = Some(nordiq_core::timefmt::format_ms(t0 + 1000));
        r
    }

    #[test]
    fn merged_adds_without_overwriting() {
        let v = merged(
            json!({"status": "running", "a": 1}),
            json!({"status": "x", "b": 2}),
        );
        assert_eq!(v, json!({"status": "running", "a": 1, "b": 2}));
    }

    #[test]
    fn job_fields_follow_the_record() {
        let mut r = record("job_1", JobStatus::Completed, 100.0);
        r.finish(JobStatus::Completed, "done", 1_795_824_000_000 + 61_400);
        let v = job_fields(&r);
        assert_eq!(v["progress_pct"], 100);
        assert_eq!(v["incremental"], true);
        assert_eq!(v["duration_seconds"], 60);
        assert_eq!(v["started_at"], "2026-11-28T00:00:01Z");
        assert!(v["completed_at"].is_string());
        let running = job_fields(&record("job_2", JobStatus::Running, 64.6));
        assert_eq!(running["progress_pct"], 65);
        assert!(running["duration_seconds"].as_i64().unwrap() > 0);
        assert!(running["completed_at"].is_null());
    }

    #[test]
    fn stats_count_history_and_say_readiness() {
        let records = [
            record("job_1", JobStatus::Completed, 100.0),
            record("job_2", JobStatus::Failed, 30.0),
            record("job_3", JobStatus::Running, 45.0),
        ];
        let v = stats_fields(&StatsInput {
            records: &records,
            completed: 1,
            failed: 1,
            cancelled: 0,
            total_records: 2_500_000,
            file_count: 45,
            first_day: Some("2026-10-01"),
            last_day: Some("2026-11-14"),
            disk_bytes: 257_229_619,
            ready: false,
            ready_reason: "need 100000 records over 3 days, have 10 over 0.1 days",
            training_days: 30,
            min_records: 100_000,
        });
        assert_eq!(v["current_job"]["job_id"], "job_3");
        assert_eq!(v["current_job"]["progress_pct"], 45);
        assert_eq!(v["history"]["total_trainings"], 3);
        assert_eq!(v["history"]["successful"], 1);
        assert_eq!(v["history"]["failed"], 1);
        assert_eq!(v["data_buffer"]["date_range"]["start"], "2026-10-01");
        assert_eq!(v["data_buffer"]["disk_usage_mb"], 245.3);
        assert_eq!(v["ready_to_train"], false);
        assert!(v["ready_reason"]
            .as_str()
            .unwrap()
            .starts_with("need 100000"));
        assert_eq!(v["config"]["min_records_threshold"], 100_000);
    }
}
