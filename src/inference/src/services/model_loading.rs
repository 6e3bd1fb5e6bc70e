//! Which forecaster serves: a trained model (from `state_dir/models/current`, or a path
//! an operator names) once it has been loaded and validated, the configured baseline for
//! everything else. Validation happens before the model is published, on the caller's
//! thread (never the main loop): a complete directory, a catalog the config can serve, and
//! finite forecasts for a smoke batch of windows.

use nordiq_core::config::Config;
use nordiq_core::window::WindowSnapshot;
use nordiq_model::baseline::Baseline;
use nordiq_model::serving::Serving;
use nordiq_model::tft::TftForecaster;
use nordiq_model::Forecaster;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Windows a candidate model must forecast before it serves.
pub const SMOKE_WINDOWS: usize = 16;

/// A model that passed validation.
pub struct Validated {
    pub model: TftForecaster,
    pub path: PathBuf,
    pub smoke_windows: usize,
    /// The smoke windows came from live servers (not synthesised).
    pub smoke_real: bool,
}

/// Workers serving the trained model (one libtorch thread each): `model.threads`, 0 = every core.
pub fn threads(config: &Config) -> usize {
    nordiq_core::config::threads_or_cores(config.model.threads)
}

/// `state_dir/models/current` resolved, or None when no model was promoted yet.
pub fn current_dir(config: &Config) -> Option<PathBuf> {
    let link = config.paths.state_dir.join("models").join("current");
    std::fs::symlink_metadata(&link).ok()?;
    // A dangling link resolves to itself here and fails the completeness check below.
    Some(std::fs::canonicalize(&link).unwrap_or(link))
}

/// A flat window at the middle of each metric's range, for validating a model before any
/// server is warm.
fn synthetic_window(model: &TftForecaster) -> WindowSnapshot {
    let shape = &model.shape;
    let len = shape.encoder_steps;
    let mut history = Vec::with_capacity(shape.metrics.len() * len);
    let mut current = Vec::with_capacity(shape.metrics.len());
    for &(lo, hi) in &shape.metric_ranges {
        let mid = if hi.is_finite() {
            (lo + hi) / 2.0
        } else {
            lo + 1.0
        } as f32;
        history.extend(std::iter::repeat_n(mid, len));
        current.push(mid);
    }
    let step_ms = shape.step_seconds as i64 * 1000;
    let now_ms = nordiq_core::timefmt::now_ms();
    WindowSnapshot {
        server: "smoke-test".into(),
        profile: shape.default_profile.clone(),
        last_step: now_ms.div_euclid(step_ms) - 1,
        history,
        len,
        current,
        current_ts: now_ms,
    }
}

/// Loads the model directory `dir` and validates it against `config` and `smoke` (windows
/// of live servers; a synthetic one is used when there are none).
pub fn load_validated(
    config: &Config,
    dir: &Path,
    smoke: Vec<WindowSnapshot>,
) -> Result<Validated, String> {
    nordiq_runtime::model_store::check_complete(dir).map_err(|e| e.to_string())?;
    let id = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let model = TftForecaster::load(dir, &id, threads(config), config.model.cuda)
        .map_err(|e| format!("cannot load: {e}"))?;
    model.shape.compatible_with(config)?;
    let smoke_real = !smoke.is_empty();
    let smoke = if smoke_real {
        smoke
    } else {
        vec![synthetic_window(&model)]
    };
    let refs: Vec<&WindowSnapshot> = smoke.iter().collect();
    let forecasts = model.forecast_batch(&refs);
    let bad = forecasts
        .iter()
        .filter(|f| f.values.is_empty() || f.values.iter().any(|v| !v.is_finite()))
        .count();
    if forecasts.len() != smoke.len() || bad > 0 {
        return Err(format!(
            "its forecasts are not finite (NaN or infinite) for {bad} of {} smoke-test windows",
            smoke.len()
        ));
    }
    Ok(Validated {
        model,
        path: dir.to_path_buf(),
        smoke_windows: smoke.len(),
        smoke_real,
    })
}

/// What serves at start: the current model when it validates (on a synthetic window: no
/// server is warm yet), the baseline otherwise (logged).
pub fn initial(config: &Config) -> (Serving, Option<PathBuf>) {
    let baseline = Baseline::from_config(config);
    let encoder = config.model.encoder_steps;
    let Some(dir) = current_dir(config) else {
        return (Serving::new(None, baseline, encoder), None);
    };
    match load_validated(config, &dir, Vec::new()) {
        Ok(v) => {
            tracing::info!(model = %v.model.id(), path = %dir.display(), "serving the trained model");
            (
                Serving::new(Some(Arc::new(v.model)), baseline, encoder),
                Some(v.path),
            )
        }
        Err(reason) => {
            tracing::error!(path = %dir.display(), %reason, "the current model cannot serve; serving the baselines");
            (Serving::new(None, baseline, encoder), None)
        }
    }
}
