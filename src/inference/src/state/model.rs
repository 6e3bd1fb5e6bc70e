//! The serving model's provenance and reload history (what `services::reload` updates and
//! `GET /admin/model-info` and `STATUS=` read).

use nordiq_core::api::ReloadOutcome;
use nordiq_core::config::BaselineKind;
use nordiq_core::timefmt::now_ms;
use std::path::PathBuf;
use std::sync::Mutex;

#[derive(Default)]
pub(crate) struct Loaded {
    /// Set with `set_path`, which keeps `best_baseline` with it.
    pub(crate) path: Option<PathBuf>,
    /// The best baseline the serving model's `metrics.json` names, read once per load:
    /// the forecast loop asks at every refresh.
    best_baseline: Option<BaselineKind>,
    pub(crate) loaded_at_ms: Option<i64>,
    pub(crate) last: Option<ReloadOutcome>,
    pub(crate) ok: u64,
    pub(crate) failed: u64,
}

/// The serving model's provenance and the reload history.
#[derive(Default)]
pub struct ModelState {
    /// One reload at a time (SIGHUP and the API may race).
    pub(crate) reload_lock: tokio::sync::Mutex<()>,
    loaded: Mutex<Loaded>,
}

impl Loaded {
    /// Records the model directory that now serves (None: a baseline serves).
    pub(crate) fn set_path(&mut self, path: Option<PathBuf>) {
        self.best_baseline = path
            .as_deref()
            .and_then(nordiq_runtime::model_store::best_baseline_kind_of);
        self.path = path;
    }
}

impl ModelState {
    pub fn new(path: Option<PathBuf>) -> ModelState {
        let state = ModelState::default();
        state.with(|l| {
            l.loaded_at_ms = path.as_ref().map(|_| now_ms());
            l.set_path(path);
        });
        state
    }

    /// The best baseline the serving model's held-out evaluation named, if any.
    pub fn best_baseline(&self) -> Option<BaselineKind> {
        self.with(|l| l.best_baseline)
    }

    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut Loaded) -> R) -> R {
        f(&mut self.loaded.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// The directory of the model that serves, if any.
    pub fn path(&self) -> Option<PathBuf> {
        self.with(|l| l.path.clone())
    }

    /// Reloads that served their candidate, and reloads refused, since start.
    pub fn reload_counts(&self) -> (u64, u64) {
        self.with(|l| (l.ok, l.failed))
    }

    /// The latest reload's refusal, for `STATUS=`.
    pub fn last_error(&self) -> Option<String> {
        self.with(|l| l.last.as_ref().and_then(|o| o.error.clone()))
    }
}
