//! NordIQ's data buffer: everything ingest accepts, kept so models can be retrained on it
//! and a restart loses nothing.
//!
//! Writes go to a write-ahead log with group commit: an append returns only after the
//! frame holding it is fsynced, and concurrent appends share one fsync. Closed log
//! segments are rolled into Hive-style Parquet partitions (`date=YYYY-MM-DD/part-<seq>`)
//! by a background thread; rolling is idempotent per (segment, day), so a crash at any
//! point neither loses nor duplicates a sample. See `layout` for the directory tree.

pub mod batch_id_log;
pub mod export;
pub mod import;
pub mod layout;
pub mod parquet_io;
pub mod retention;
mod stats;
pub mod wal;

pub use retention::RetentionReport;
pub use stats::{BufferStats, Readiness};

use nordiq_core::config::BufferConfig;
use nordiq_core::ingest::Sample;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// Why a buffer operation failed.
#[derive(Debug, thiserror::Error)]
pub enum BufferError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parquet { path: PathBuf, message: String },
    #[error("corrupt buffer data: {0}")]
    Corrupt(String),
    #[error("the buffer's writer thread is gone: {0}")]
    Closed(String),
}

impl BufferError {
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        BufferError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    pub fn parquet(path: &Path, e: impl std::fmt::Display) -> Self {
        BufferError::Parquet {
            path: path.to_path_buf(),
            message: e.to_string(),
        }
    }
}

/// What opening the buffer found and did.
#[derive(Debug, Clone, Default)]
pub struct OpenReport {
    /// Log segments left by the previous run, rolled into Parquet now.
    pub segments_recovered: usize,
    pub samples_recovered: usize,
    /// Bytes of torn tails dropped (frames that were never acknowledged).
    pub torn_bytes: u64,
    pub temp_files_removed: usize,
    pub next_segment: u64,
    /// The batch ids of acknowledged batches, oldest first (the rolled ones remembered in
    /// `wal/batch-ids`, then those of the recovered segments): seed the repeat check with
    /// them, so a batch retried across a crash is not applied twice.
    pub batch_ids: Vec<String>,
}

/// What rolling one log segment did.
#[derive(Debug, Clone, Default)]
pub struct Rolled {
    pub samples: usize,
    pub torn_bytes: u64,
    pub batch_ids: Vec<String>,
}

struct AppendJob {
    framed: Vec<u8>,
    done: tokio::sync::oneshot::Sender<Result<(), String>>,
}

enum Command {
    Append(AppendJob),
    /// Close the current segment (if it holds samples) and roll it; answer when rolled.
    Flush(mpsc::Sender<Result<(), String>>),
    Stop,
}

struct Shared {
    root: PathBuf,
    metrics: Vec<String>,
    settings: Mutex<BufferConfig>,
    /// Rolling holds it for writing; readers that also read the log hold it for reading,
    /// so they never see a segment half in Parquet and half in the log.
    roll_lock: RwLock<()>,
    stats_cache: Mutex<HashMap<PathBuf, parquet_io::FileStats>>,
}

/// The open buffer. Cheap to clone; the last clone dropped does not stop the threads:
/// call [`Buffer::close`].
#[derive(Clone)]
pub struct Buffer {
    shared: Arc<Shared>,
    commands: mpsc::Sender<Command>,
    threads: Arc<Mutex<Vec<std::thread::JoinHandle<()>>>>,
}

fn wal_dir(root: &Path) -> PathBuf {
    root.join(layout::WAL_DIR)
}

/// Rolls log segment `seq` into its date partitions, remembers its batch ids, then deletes
/// it. Idempotent: a day whose `part-<seq>` exists already is skipped.
pub fn roll_segment(root: &Path, seq: u64) -> Result<Rolled, BufferError> {
    let wal = wal_dir(root);
    let path = wal.join(wal::segment_name(seq));
    let contents = wal::read_segment(&path)?;
    let mut by_day: BTreeMap<i64, Vec<Sample>> = BTreeMap::new();
    let count = contents.samples.len();
    for s in contents.samples {
        by_day
            .entry(layout::day_of(s.timestamp_ms))
            .or_default()
            .push(s);
    }
    for (day, mut samples) in by_day {
        let part = layout::partition_dir(root, day).join(layout::part_name(seq));
        if part.exists() {
            continue;
        }
        parquet_io::write_samples(&part, &contents.header.metrics, &mut samples)?;
    }
    batch_id_log::remember(&wal, &contents.batch_ids)?;
    std::fs::remove_file(&path).map_err(|e| BufferError::io(&path, e))?;
    layout::sync_dir(&wal)?;
    Ok(Rolled {
        samples: count,
        torn_bytes: contents.torn_bytes,
        batch_ids: contents.batch_ids,
    })
}

fn highest_part_seq(root: &Path) -> Result<u64, BufferError> {
    let mut max = 0;
    for p in layout::partitions(root)? {
        for f in &p.files {
            let name = f
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if let Some(seq) = name
                .strip_prefix("part-")
                .and_then(|n| n.strip_suffix(".parquet"))
                .and_then(|n| n.parse::<u64>().ok())
            {
                max = max.max(seq);
            }
        }
    }
    Ok(max)
}

/// The batch ids in the log a previous run left behind (what [`Buffer::open`] will roll).
pub fn logged_batch_ids(root: &Path) -> Result<Vec<String>, BufferError> {
    let wal = wal_dir(root);
    if !wal.exists() {
        return Ok(Vec::new());
    }
    let mut ids = Vec::new();
    for seq in wal::list_segments(&wal)? {
        ids.extend(wal::read_segment(&wal.join(wal::segment_name(seq)))?.batch_ids);
    }
    Ok(ids)
}

/// Removes from the log a previous run left behind the batches `drop` names, before
/// [`Buffer::open`] rolls it (a crashed cluster node's writes another node took over).
pub fn drop_logged_batches(
    root: &Path,
    drop: &dyn Fn(&str) -> bool,
) -> Result<wal::Dropped, BufferError> {
    let wal = wal_dir(root);
    let mut total = wal::Dropped::default();
    if !wal.exists() {
        return Ok(total);
    }
    for seq in wal::list_segments(&wal)? {
        let d = wal::drop_batches(&wal.join(wal::segment_name(seq)), drop)?;
        total.frames += d.frames;
        total.samples += d.samples;
    }
    Ok(total)
}

impl Buffer {
    /// Opens (creating) the buffer at `root`: rolls what the previous run left in the log,
    /// removes stale temp files, starts a new segment and the writer and roller threads.
    pub fn open(
        root: &Path,
        metrics: &[String],
        settings: BufferConfig,
    ) -> Result<(Buffer, OpenReport), BufferError> {
        let wal = wal_dir(root);
        std::fs::create_dir_all(&wal).map_err(|e| BufferError::io(&wal, e))?;
        let mut report = OpenReport {
            temp_files_removed: layout::remove_stale_temp_files(root)?,
            ..OpenReport::default()
        };
        let segments = wal::list_segments(&wal)?;
        let mut max_seq = highest_part_seq(root)?;
        // Rolling adds each segment's ids to the file, so the file read afterwards holds
        // every remembered id in order.
        for seq in segments {
            let rolled = roll_segment(root, seq)?;
            report.segments_recovered += 1;
            report.samples_recovered += rolled.samples;
            report.torn_bytes += rolled.torn_bytes;
            max_seq = max_seq.max(seq);
        }
        report.batch_ids = batch_id_log::read(&wal)?;
        report.next_segment = max_seq + 1;
        retention::apply(root, &settings, nordiq_core::timefmt::now_ms())?;
        let writer = wal::SegmentWriter::create(&wal, report.next_segment, metrics)?;
        let shared = Arc::new(Shared {
            root: root.to_path_buf(),
            metrics: metrics.to_vec(),
            settings: Mutex::new(settings),
            roll_lock: RwLock::new(()),
            stats_cache: Mutex::new(HashMap::new()),
        });
        let (commands, command_rx) = mpsc::channel();
        let (roll_tx, roll_rx) = mpsc::channel();
        let committer = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("nordiq-wal".into())
                .spawn(move || commit_loop(shared, writer, command_rx, roll_tx))
                .map_err(|e| BufferError::io(root, e))?
        };
        let roller = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("nordiq-roll".into())
                .spawn(move || roll_loop(shared, roll_rx))
                .map_err(|e| BufferError::io(root, e))?
        };
        Ok((
            Buffer {
                shared,
                commands,
                threads: Arc::new(Mutex::new(vec![committer, roller])),
            },
            report,
        ))
    }

    pub fn root(&self) -> &Path {
        &self.shared.root
    }

    pub fn metrics(&self) -> &[String] {
        &self.shared.metrics
    }

    /// New retention, roll and readiness settings (a config reload).
    pub fn set_settings(&self, settings: BufferConfig) {
        *self
            .shared
            .settings
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = settings;
    }

    fn settings(&self) -> BufferConfig {
        self.shared
            .settings
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Appends samples; resolves once they are fsynced to the log.
    pub async fn append<'a>(
        &self,
        samples: impl ExactSizeIterator<Item = &'a Sample>,
    ) -> Result<(), BufferError> {
        self.append_batch(samples, None).await
    }

    /// Appends the samples of batch `batch_id` (the feeder's `X-NordIQ-Batch`) in one
    /// frame with the id; resolves once they are fsynced to the log.
    pub async fn append_batch<'a>(
        &self,
        samples: impl ExactSizeIterator<Item = &'a Sample>,
        batch_id: Option<&str>,
    ) -> Result<(), BufferError> {
        let mut framed = Vec::new();
        wal::encode_samples(samples, batch_id, &mut framed);
        let (done, wait) = tokio::sync::oneshot::channel();
        self.commands
            .send(Command::Append(AppendJob { framed, done }))
            .map_err(|_| BufferError::Closed("append".into()))?;
        match wait.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(BufferError::Closed(e)),
            Err(_) => Err(BufferError::Closed(
                "the writer stopped before committing".into(),
            )),
        }
    }

    /// Closes the current log segment and rolls it into Parquet now (blocking).
    pub fn flush(&self) -> Result<(), BufferError> {
        let (tx, rx) = mpsc::channel();
        self.commands
            .send(Command::Flush(tx))
            .map_err(|_| BufferError::Closed("flush".into()))?;
        rx.recv()
            .map_err(|_| BufferError::Closed("flush".into()))?
            .map_err(BufferError::Closed)
    }

    /// Rolls what is in the log and stops the threads (a clean shutdown).
    pub fn close(&self) {
        let _ = self.commands.send(Command::Stop);
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|p| p.into_inner()));
        for t in threads {
            let _ = t.join();
        }
    }

    /// Streams every stored sample with `since_ms <= timestamp < until_ms` (Parquet, then
    /// what is still only in the log), in file order: per file sorted by server then time.
    pub fn read_range(
        &self,
        since_ms: i64,
        until_ms: i64,
        each: &mut dyn FnMut(Sample),
    ) -> Result<u64, BufferError> {
        let _guard = self
            .shared
            .roll_lock
            .read()
            .unwrap_or_else(|p| p.into_inner());
        read_range(
            &self.shared.root,
            &self.shared.metrics,
            since_ms,
            until_ms,
            each,
        )
    }

    /// Records, files, days, bytes, records per server, readiness to train.
    pub fn stats(&self) -> Result<BufferStats, BufferError> {
        // Not while a roll moves records from the log into Parquet (they would count twice).
        let _guard = self
            .shared
            .roll_lock
            .read()
            .unwrap_or_else(|p| p.into_inner());
        let settings = self.settings();
        let mut cache = self
            .shared
            .stats_cache
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        stats::compute(&self.shared.root, &settings, &mut cache)
    }

    /// Applies retention now.
    pub fn apply_retention(&self) -> Result<RetentionReport, BufferError> {
        let _guard = self
            .shared
            .roll_lock
            .write()
            .unwrap_or_else(|p| p.into_inner());
        retention::apply(
            &self.shared.root,
            &self.settings(),
            nordiq_core::timefmt::now_ms(),
        )
    }
}

/// Stats of a buffer directory without opening it for writing (the daemon may run).
pub fn stats_of(root: &Path, settings: &BufferConfig) -> Result<BufferStats, BufferError> {
    stats::compute(root, settings, &mut HashMap::new())
}

/// Reads a buffer directory without opening it for writing (the daemon may be running and
/// rolling): the log is read first, then the Parquet partitions, and a log sample is only
/// emitted when the Parquet part of its segment and day was not among the files read. A part
/// appears (complete) before its segment is deleted, so every sample is seen exactly once
/// whatever a roll does meanwhile — including a part that appears after the partitions were
/// listed (its samples then come from the log).
pub fn read_range(
    root: &Path,
    metrics: &[String],
    since_ms: i64,
    until_ms: i64,
    each: &mut dyn FnMut(Sample),
) -> Result<u64, BufferError> {
    let mut logged: Vec<(u64, Vec<Sample>)> = Vec::new();
    let wal = wal_dir(root);
    if wal.exists() {
        for seq in wal::list_segments(&wal)? {
            let contents = match wal::read_segment(&wal.join(wal::segment_name(seq))) {
                Ok(c) => c,
                // Rolled and deleted since the listing: its parts are complete now.
                Err(BufferError::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound =>
                {
                    continue
                }
                Err(e) => return Err(e),
            };
            let index: Vec<Option<usize>> = metrics
                .iter()
                .map(|m| contents.header.metrics.iter().position(|h| h == m))
                .collect();
            let samples = contents
                .samples
                .into_iter()
                .filter(|s| s.timestamp_ms >= since_ms && s.timestamp_ms < until_ms)
                .map(|s| {
                    let values = index
                        .iter()
                        .map(|i| i.and_then(|i| s.values.get(i).copied()).unwrap_or(f32::NAN))
                        .collect();
                    Sample { values, ..s }
                })
                .collect();
            logged.push((seq, samples));
        }
    }
    let mut count = 0;
    let (first_day, last_day) = (
        layout::day_of(since_ms),
        layout::day_of(until_ms.saturating_sub(1)),
    );
    let mut read_parts: std::collections::HashSet<PathBuf> = std::collections::HashSet::new();
    for p in layout::partitions(root)? {
        if p.day < first_day || p.day > last_day {
            continue;
        }
        for f in &p.files {
            count += parquet_io::read_samples(f, metrics, since_ms, until_ms, each)?;
            read_parts.insert(f.clone());
        }
    }
    for (seq, samples) in logged {
        let mut rolled: HashMap<i64, bool> = HashMap::new();
        for s in samples {
            let day = layout::day_of(s.timestamp_ms);
            // Judged by what was read, not by what exists now: a part written after the
            // partitions were listed was not read, so its samples come from the log.
            let done = *rolled.entry(day).or_insert_with(|| {
                read_parts.contains(&layout::partition_dir(root, day).join(layout::part_name(seq)))
            });
            if !done {
                each(s);
                count += 1;
            }
        }
    }
    Ok(count)
}

/// A closed segment to roll, with who waits for it (`u64::MAX`: stop the roller).
type RollRequest = (u64, Option<mpsc::Sender<Result<(), String>>>);

/// Most framed bytes written before one fsync.
const GROUP_BYTES: usize = 32 * 1024 * 1024;

fn commit_loop(
    shared: Arc<Shared>,
    mut segment: wal::SegmentWriter,
    commands: mpsc::Receiver<Command>,
    roll: mpsc::Sender<RollRequest>,
) {
    let wal = wal_dir(&shared.root);
    let mut has_samples = false;
    let rotate = |segment: &mut wal::SegmentWriter,
                  has_samples: &mut bool,
                  reply: Option<mpsc::Sender<Result<(), String>>>| {
        if !*has_samples {
            if let Some(r) = reply {
                let _ = r.send(Ok(()));
            }
            return;
        }
        match wal::SegmentWriter::create(&wal, segment.seq + 1, &shared.metrics) {
            Ok(next) => {
                let closed = std::mem::replace(segment, next);
                *has_samples = false;
                let _ = roll.send((closed.seq, reply));
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot start a new log segment; keeping the current one");
                if let Some(r) = reply {
                    let _ = r.send(Err(e.to_string()));
                }
            }
        }
    };
    loop {
        let command = match commands.recv_timeout(Duration::from_secs(1)) {
            Ok(c) => Some(c),
            Err(mpsc::RecvTimeoutError::Timeout) => None,
            Err(mpsc::RecvTimeoutError::Disconnected) => Some(Command::Stop),
        };
        let mut waiting = Vec::new();
        let mut bytes = 0usize;
        let mut after: Option<Command> = None;
        let mut next = command;
        // Group commit: take every append already queued, write them, one fsync.
        while let Some(c) = next.take() {
            match c {
                Command::Append(job) => {
                    bytes += job.framed.len();
                    let written = segment.write(&job.framed);
                    waiting.push((job.done, written));
                    if bytes < GROUP_BYTES {
                        next = commands.try_recv().ok();
                    }
                }
                other => after = Some(other),
            }
        }
        if !waiting.is_empty() {
            let synced = segment.sync();
            has_samples = true;
            for (done, written) in waiting {
                let outcome = match (&written, &synced) {
                    (Ok(()), Ok(())) => Ok(()),
                    (Err(e), _) | (_, Err(e)) => Err(e.to_string()),
                };
                let _ = done.send(outcome);
            }
        }
        let settings = shared
            .settings
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let due = segment.bytes >= settings.roll_bytes
            || segment.opened.elapsed() >= Duration::from_secs(settings.roll_seconds);
        match after {
            Some(Command::Flush(reply)) => rotate(&mut segment, &mut has_samples, Some(reply)),
            Some(Command::Stop) => {
                // Roll the last segment; a clean stop leaves an empty log.
                if has_samples {
                    let (tx, rx) = mpsc::channel();
                    let _ = roll.send((segment.seq, Some(tx)));
                    let _ = rx.recv_timeout(Duration::from_secs(300));
                } else {
                    let _ = std::fs::remove_file(&segment.path);
                    let _ = layout::sync_dir(&wal);
                }
                let _ = roll.send((u64::MAX, None));
                return;
            }
            _ if due => rotate(&mut segment, &mut has_samples, None),
            _ => {}
        }
    }
}

fn roll_loop(shared: Arc<Shared>, segments: mpsc::Receiver<RollRequest>) {
    let mut last_retention = Instant::now();
    loop {
        match segments.recv_timeout(Duration::from_secs(60)) {
            Ok((u64::MAX, _)) | Err(mpsc::RecvTimeoutError::Disconnected) => return,
            Ok((seq, reply)) => {
                let started = Instant::now();
                let outcome = {
                    let _guard = shared.roll_lock.write().unwrap_or_else(|p| p.into_inner());
                    roll_segment(&shared.root, seq)
                };
                match &outcome {
                    Ok(rolled) => tracing::info!(
                        segment = seq,
                        samples = rolled.samples,
                        ms = started.elapsed().as_millis() as u64,
                        "log segment rolled into Parquet"
                    ),
                    Err(e) => {
                        tracing::error!(segment = seq, error = %e, "rolling a log segment failed; it stays in the log and is retried at the next start")
                    }
                }
                if let Some(r) = reply {
                    let _ = r.send(outcome.map(|_| ()).map_err(|e| e.to_string()));
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        if last_retention.elapsed() >= Duration::from_secs(3600) {
            last_retention = Instant::now();
            let settings = shared
                .settings
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            let _guard = shared.roll_lock.write().unwrap_or_else(|p| p.into_inner());
            if let Err(e) =
                retention::apply(&shared.root, &settings, nordiq_core::timefmt::now_ms())
            {
                tracing::error!(error = %e, "buffer retention failed");
            }
        }
    }
}

#[cfg(test)]
mod tests;
