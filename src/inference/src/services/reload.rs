//! Model hot reload: resolve the candidate, load and validate it on the blocking pool (the
//! main loop keeps accepting and pinging the watchdog), then swap the serving forecaster
//! in one atomic store. A refused candidate changes nothing; the reason is logged, kept
//! for `GET /admin/model-info`, shown in `STATUS=` and returned to the caller. Windows,
//! the forecast cache and alert state are untouched either way.

use super::model_loading::{self, SMOKE_WINDOWS};
use crate::state::App;
use nordiq_core::api::{ModelInfo, ReloadOutcome};
use nordiq_core::timefmt::{format_ms, now_ms};
use nordiq_model::baseline::Baseline;
use nordiq_model::serving::Serving;
use nordiq_model::Forecaster;
use nordiq_runtime::model_store::ModelStore;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// Which model a reload should load.
#[derive(Debug, Clone)]
pub enum Candidate {
    /// Whatever `models/current` points at (the baselines when nothing was promoted).
    Current,
    /// A model directory named by the operator.
    Path(PathBuf),
}

/// Loads, validates and (if it passes) serves `candidate`.
pub async fn reload_model(app: &Arc<App>, candidate: Candidate) -> ReloadOutcome {
    let _one_at_a_time = app.model.reload_lock.lock().await;
    let started = Instant::now();
    let config = app.config.load_full();
    let dir = match &candidate {
        Candidate::Current => model_loading::current_dir(&config),
        Candidate::Path(p) => Some(p.clone()),
    };
    let step_ms = config.model.step_seconds as i64 * 1000;
    let smoke = app.store.sample_snapshots(
        now_ms().div_euclid(step_ms),
        config.model.encoder_steps,
        SMOKE_WINDOWS,
    );
    let validated = match dir.clone() {
        None => Ok(None),
        Some(dir) => {
            let config = Arc::clone(&config);
            tokio::task::spawn_blocking(move || model_loading::load_validated(&config, &dir, smoke))
                .await
                .unwrap_or_else(|e| Err(format!("validation panicked: {e}")))
                .map(Some)
        }
    };
    let mut outcome = ReloadOutcome {
        ok: validated.is_ok(),
        serving: String::new(),
        candidate: dir.as_ref().map(|d| d.display().to_string()),
        duration_ms: 0.0,
        smoke_windows: 0,
        smoke_real: false,
        at: format_ms(now_ms()),
        error: None,
    };
    let baseline = Baseline::from_config(&config);
    match validated {
        Ok(model) => {
            let path = model.as_ref().map(|v| v.path.clone());
            if let Some(v) = &model {
                outcome.smoke_windows = v.smoke_windows;
                outcome.smoke_real = v.smoke_real;
            }
            let serving = Serving::new(
                model.map(|v| Arc::new(v.model)),
                baseline,
                config.model.encoder_steps,
            );
            outcome.serving = serving.id().to_string();
            app.forecaster.store(Arc::new(serving));
            app.model.with(|l| {
                l.set_path(path);
                l.loaded_at_ms = Some(now_ms());
            });
            // Forecast with the new model now rather than at the next step.
            app.refresh_requested.notify_one();
        }
        Err(reason) => {
            outcome.serving = app.forecaster.load().id().to_string();
            outcome.error = Some(reason);
        }
    }
    outcome.duration_ms = started.elapsed().as_secs_f64() * 1000.0;
    if let (true, Some(dir), Some(cluster)) = (outcome.ok, dir.as_ref(), app.cluster.get()) {
        // Promoted here: every node of the cluster is to serve it.
        let (cluster, dir) = (Arc::clone(cluster), dir.clone());
        tokio::spawn(async move {
            super::cluster::training::announce_if_new(&cluster, &dir).await;
        });
    }
    match &outcome.error {
        None => tracing::info!(
            serving = %outcome.serving,
            candidate = outcome.candidate.as_deref().unwrap_or("none (no model promoted)"),
            duration_ms = outcome.duration_ms,
            smoke_windows = outcome.smoke_windows,
            "model reloaded"
        ),
        Some(reason) => tracing::error!(
            candidate = outcome.candidate.as_deref().unwrap_or(""),
            %reason,
            kept = %outcome.serving,
            "model reload refused; the previous model keeps serving"
        ),
    }
    app.model.with(|l| {
        if outcome.ok {
            l.ok += 1;
        } else {
            l.failed += 1;
        }
        l.last = Some(outcome.clone());
    });
    outcome
}

/// Pairs the serving model with a baseline built from the (reloaded) config.
pub fn rebuild_baseline(app: &App) {
    let config = app.config.load();
    let old = app.forecaster.load_full();
    app.forecaster.store(Arc::new(Serving::new(
        old.model.clone(),
        Baseline::from_config(&config),
        config.model.encoder_steps,
    )));
}

/// `GET /admin/model-info`.
pub fn model_info(app: &App) -> ModelInfo {
    let config = app.config.load();
    let serving = app.forecaster.load_full();
    let store = ModelStore::new(config.paths.state_dir.join("models"));
    let (path, loaded_at_ms, last, ok, failed) = app.model.with(|l| {
        (
            l.path.clone(),
            l.loaded_at_ms,
            l.last.clone(),
            l.ok,
            l.failed,
        )
    });
    let path = path.filter(|_| serving.model.is_some());
    let (mase, coverage, validation_pinball) = path
        .as_deref()
        .map(nordiq_runtime::model_store::headline)
        .unwrap_or_default();
    let shape = path.as_ref().and_then(|p| {
        std::fs::read(p.join("config.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
    });
    let best = path
        .as_deref()
        .and_then(nordiq_runtime::model_store::best_baseline_of);
    let serving_reason = match (&path, serving.model.is_some()) {
        (Some(p), true) => match nordiq_runtime::model_store::promotion_of(p) {
            Some((true, reason)) => format!("{} was promoted: {reason}", serving.id()),
            _ => format!("{} was loaded from {}", serving.id(), p.display()),
        },
        _ => {
            // No trained model serves: say why, from the newest model directory.
            let newest = store.list().ok().and_then(|l| l.into_iter().next_back());
            match (store.current(), newest) {
                (Some(current), _) => format!(
                    "models/current ({current}) is not loaded ({}); {} serves",
                    last.as_ref()
                        .and_then(|o| o.error.as_deref())
                        .unwrap_or("not yet reloaded"),
                    serving.id()
                ),
                (None, Some(entry)) => {
                    match nordiq_runtime::model_store::promotion_of(Path::new(&entry.path)) {
                        Some((false, reason)) => format!(
                            "the newest trained model {} was not promoted: {reason}; {} serves",
                            entry.id,
                            serving.id()
                        ),
                        _ => format!("no model is current; {} serves", serving.id()),
                    }
                }
                (None, None) => format!("no model has been trained yet; {} serves", serving.id()),
            }
        }
    };
    let (anomaly_threshold, anomaly_threshold_reason) = match &serving.model {
        Some(model) => {
            nordiq_core::anomaly_threshold::explain(model.anomaly_calibration(), &config.anomaly)
        }
        None => (
            config.anomaly.threshold,
            "anomaly.threshold: a baseline serves".into(),
        ),
    };
    ModelInfo {
        serving: serving.id().to_string(),
        baseline: serving.baseline.id().to_string(),
        path: path.map(|p| p.display().to_string()),
        current: store.current(),
        previous: store.previous(),
        loaded_at: loaded_at_ms.map(format_ms),
        shape,
        mase,
        coverage,
        validation_pinball,
        best_baseline: best.as_ref().map(|b| b.0.clone()),
        best_baseline_mase: best.map(|b| b.1),
        serving_reason,
        anomaly_threshold,
        anomaly_threshold_reason,
        reloads_ok: ok,
        reloads_failed: failed,
        last_reload: last,
        live: super::live::report(app).map(|mut report| {
            if report.served.is_empty() {
                // Nothing kept yet: name what will be scored.
                report.served = serving.id().to_string();
                report.baseline = super::live::best_baseline(app, &config).id().to_string();
            }
            report
        }),
    }
}
