//! Training job records on disk: one JSON file per job under `state_dir/jobs/`, written
//! atomically (temp file, fsync, rename). The trainer updates its record as it goes and the
//! daemon reads it, so the record is the one source of truth, and it survives restarts of both.

use nordiq_core::job_record::{valid_job_id, JobRecord, JobStatus};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: not a job record: {message}")]
    Parse { path: String, message: String },
    #[error("no training job `{0}`")]
    Unknown(String),
}

/// `state_dir/jobs/`.
#[derive(Debug, Clone)]
pub struct JobStore {
    dir: PathBuf,
}

impl JobStore {
    pub fn new(dir: impl Into<PathBuf>) -> JobStore {
        JobStore { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path_of(&self, id: &str) -> Result<PathBuf, JobError> {
        if !valid_job_id(id) {
            return Err(JobError::Unknown(id.to_string()));
        }
        Ok(self.dir.join(format!("{id}.json")))
    }

    /// Writes the record atomically.
    pub fn write(&self, record: &JobRecord) -> Result<(), JobError> {
        let io = |path: &Path| {
            let path = path.display().to_string();
            move |source| JobError::Io { path, source }
        };
        std::fs::create_dir_all(&self.dir).map_err(io(&self.dir))?;
        let path = self.path_of(&record.job_id)?;
        let bytes = serde_json::to_vec_pretty(record).unwrap_or_default();
        crate::atomic_file::write_atomic(&path, &bytes).map_err(|(p, e)| io(&p)(e))
    }

    pub fn read(&self, id: &str) -> Result<JobRecord, JobError> {
        let path = self.path_of(id)?;
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(JobError::Unknown(id.to_string()))
            }
            Err(source) => {
                return Err(JobError::Io {
                    path: path.display().to_string(),
                    source,
                })
            }
        };
        serde_json::from_slice(&bytes).map_err(|e| JobError::Parse {
            path: path.display().to_string(),
            message: e.to_string(),
        })
    }

    /// Every readable record, oldest first. Unreadable files are skipped (and named in
    /// the second half of the answer).
    pub fn list(&self) -> (Vec<JobRecord>, Vec<String>) {
        let Ok(read) = std::fs::read_dir(&self.dir) else {
            return (Vec::new(), Vec::new());
        };
        let mut ids: Vec<String> = read
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name.strip_suffix(".json")
                    .filter(|id| valid_job_id(id))
                    .map(str::to_string)
            })
            .collect();
        ids.sort();
        let (mut records, mut bad) = (Vec::new(), Vec::new());
        for id in ids {
            match self.read(&id) {
                Ok(r) => records.push(r),
                Err(e) => bad.push(e.to_string()),
            }
        }
        (records, bad)
    }

    /// The most recently created job.
    pub fn latest(&self) -> Option<JobRecord> {
        self.list().0.pop()
    }

    /// The oldest job still queued (what a trainer started by systemd picks up).
    pub fn oldest_queued(&self) -> Option<JobRecord> {
        self.list()
            .0
            .into_iter()
            .find(|r| r.status == JobStatus::Queued)
    }
}

/// Whether process `pid` exists (signal 0 probes without sending anything).
pub fn process_alive(pid: u32) -> bool {
    // SAFETY: kill with signal 0 only checks permission and existence.
    let rc = unsafe { libc::kill(pid as libc::pid_t, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

#[cfg(test)]
mod tests {
    use super::*;
    use nordiq_core::job_record::{new_job_id, JobParams};

    #[test]
    fn records_round_trip_and_list_in_order() {
        let dir = nordiq_testkit::TempDir::new("jobs");
        let store = JobStore::new(dir.path());
        assert!(store.latest().is_none());
        let t0 = 1_795_824_000_000;
        let mut a = JobRecord::new(new_job_id(t0), "api", JobParams::default(), t0);
        let b = JobRecord::new(
            new_job_id(t0 + 1500),
            "timer",
            JobParams {
                epochs: Some(3),
                incremental: true,
                force: false,
                ..Default::default()
            },
            t0 + 1500,
        );
        assert_eq!(a.job_id, "job_20261128_000000_000");
        store.write(&a).unwrap();
        store.write(&b).unwrap();
        std::fs::write(dir.join("job_broken.json"), "{").unwrap();
        assert_eq!(store.read(&b.job_id).unwrap(), b);
        assert_eq!(store.oldest_queued().unwrap().job_id, a.job_id);
        a.status = JobStatus::Running;
        a.started = Some(nordiq_core::timefmt::format_ms(t0 + 10_000));
        store.write(&a).unwrap();
        assert_eq!(store.oldest_queued().unwrap().job_id, b.job_id);
        a.finish(JobStatus::Completed, "done", t0 + 70_000);
        assert_eq!(a.duration_s, Some(60.0));
        assert_eq!(a.progress, 100.0);
        let (records, bad) = store.list();
        assert_eq!(records.len(), 2);
        assert_eq!(bad.len(), 1, "{bad:?}");
        assert_eq!(store.latest().unwrap().job_id, b.job_id);
        assert!(matches!(store.read("job_nope"), Err(JobError::Unknown(_))));
        assert!(matches!(store.read("../x"), Err(JobError::Unknown(_))));
    }

    #[test]
    fn process_probe() {
        assert!(process_alive(std::process::id()));
        assert!(!process_alive(u32::MAX / 2));
    }
}
