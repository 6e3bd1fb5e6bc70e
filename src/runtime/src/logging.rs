//! Log sink selection: native journald (structured fields, priorities) when stderr is the
//! journal's stream, human-readable stderr otherwise. The filter can be changed at reload.

use std::os::fd::AsRawFd;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, EnvFilter, Layer, Registry};

/// Changes the log filter of a running process.
pub struct LogHandle {
    filter: reload::Handle<EnvFilter, Registry>,
    pub journald: bool,
}

/// Why logging could not be set up or changed.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("bad log level `{level}` (log.level, --log-level or RUST_LOG): {reason}")]
    BadFilter { level: String, reason: String },
    #[error("cannot install the log subscriber: {0}")]
    Install(String),
}

fn filter(level: &str) -> Result<EnvFilter, LogError> {
    EnvFilter::try_new(level).map_err(|e| LogError::BadFilter {
        level: level.to_string(),
        reason: e.to_string(),
    })
}

impl LogHandle {
    /// Applies a new filter (`info`, `debug`, `nordiq_inference=debug` …).
    pub fn set_level(&self, level: &str) -> Result<(), LogError> {
        self.filter
            .reload(filter(level)?)
            .map_err(|e| LogError::Install(e.to_string()))
    }
}

/// Whether `JOURNAL_STREAM` names the device and inode of our stderr.
pub fn stderr_is_journal() -> bool {
    let Ok(value) = std::env::var("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = value.split_once(':') else {
        return false;
    };
    let (Ok(dev), Ok(ino)) = (dev.parse::<u64>(), ino.parse::<u64>()) else {
        return false;
    };
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: fstat writes a full `stat` into the buffer on success.
    let rc = unsafe { libc::fstat(std::io::stderr().as_raw_fd(), st.as_mut_ptr()) };
    if rc != 0 {
        return false;
    }
    // SAFETY: rc == 0 means fstat initialised it.
    let st = unsafe { st.assume_init() };
    // The field types differ between targets (u32/u64); the casts keep it portable.
    #[allow(clippy::unnecessary_cast)]
    let same = st.st_dev as u64 == dev && st.st_ino as u64 == ino;
    same
}

/// Installs the global subscriber. `level` is a tracing filter; `RUST_LOG` wins when set.
pub fn init(level: &str, identifier: &str) -> Result<LogHandle, LogError> {
    let wanted = std::env::var("RUST_LOG").ok().filter(|s| !s.is_empty());
    let filter = filter(wanted.as_deref().unwrap_or(level))?;
    let (filter, handle) = reload::Layer::new(filter);
    let journald = if stderr_is_journal() {
        tracing_journald::layer().ok().map(|l| {
            use tracing_journald::{Priority, PriorityMappings};
            // syslog's meaning of the levels (the crate's default files info as notice).
            let mut mappings = PriorityMappings::new();
            mappings.info = Priority::Informational;
            mappings.debug = Priority::Debug;
            mappings.trace = Priority::Debug;
            l.with_syslog_identifier(identifier.to_string())
                .with_field_prefix(None)
                .with_priority_mappings(mappings)
        })
    } else {
        None
    };
    let is_journald = journald.is_some();
    let stderr_layer = (!is_journald).then(|| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_target(false)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .boxed()
    });
    tracing_subscriber::registry()
        .with(filter)
        .with(journald)
        .with(stderr_layer)
        .try_init()
        .map_err(|e| LogError::Install(e.to_string()))?;
    Ok(LogHandle {
        filter: handle,
        journald: is_journald,
    })
}
