//! Drift in the daemon: every `drift.check_seconds`, the live accuracy and the inputs'
//! shift against the serving model's training data (`metrics.json` → `inputs`) go through
//! `nordiq_core::drift`; a change is logged, shown in `STATUS=`, `/status` and `/metrics`,
//! and with `drift.retrain = true` starts a training job (debounced there).

use crate::state::App;
use nordiq_core::drift::{check, InputProfile};
use nordiq_core::job_record::JobParams;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// The training profiles of the model in `dir` (empty for older models or none).
fn profiles(dir: &Path) -> BTreeMap<String, InputProfile> {
    std::fs::read(dir.join("metrics.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| serde_json::from_value(v["inputs"].clone()).ok())
        .unwrap_or_default()
}

/// Per metric with a training profile, the PSI of the last `drift.psi_hours` of every
/// window against it.
fn input_shift(
    app: &App,
    config: &nordiq_core::config::Config,
    profiles: &BTreeMap<String, InputProfile>,
    now_ms: i64,
) -> Vec<(String, f64)> {
    let step_ms = config.model.step_seconds as i64 * 1000;
    let recent =
        (config.drift.psi_hours as usize * 3600).div_ceil(config.model.step_seconds as usize);
    let snapshots = app.store.snapshots(now_ms.div_euclid(step_ms), 1);
    config
        .metrics
        .iter()
        .enumerate()
        .filter_map(|(m, def)| {
            let profile = profiles.get(&def.name)?;
            let values = snapshots.iter().flat_map(|s| {
                let series = s.series(m);
                series[series.len().saturating_sub(recent)..]
                    .iter()
                    .copied()
            });
            profile
                .psi_of(values)
                .map(|v| (def.name.clone(), (v * 1e4).round() / 1e4))
        })
        .collect()
}

/// Runs one check when one is due.
pub async fn maybe_check(app: &Arc<App>, now_ms: i64) {
    let config = app.config.load_full();
    let due = app
        .drift
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .checked_at_ms
        .is_none_or(|at| now_ms - at >= config.drift.check_seconds as i64 * 1000);
    if !due {
        return;
    }
    let serving = app.forecaster.load_full();
    let model_serves = serving.model.is_some();
    let profiles = app
        .model
        .path()
        .filter(|_| model_serves)
        .map(|p| profiles(&p))
        .unwrap_or_default();
    let psis = if profiles.is_empty() {
        Vec::new()
    } else {
        // Window copies of the whole fleet: off the async threads.
        let worker = Arc::clone(app);
        let config = Arc::clone(&config);
        tokio::task::spawn_blocking(move || input_shift(&worker, &config, &profiles, now_ms))
            .await
            .unwrap_or_default()
    };
    let live = super::live::report(app);
    let reasons = check(&config.drift, live.as_ref(), model_serves, &psis);
    let (decision, state) = {
        let mut state = app.drift.lock().unwrap_or_else(|p| p.into_inner());
        let decision = state.update(&config.drift, reasons, now_ms);
        state.psi = psis;
        (decision, state.clone())
    };
    let said: Vec<String> = state.reasons.iter().map(|r| r.to_string()).collect();
    if decision.changed && state.drifting {
        tracing::warn!(
            reasons = %said.join("; "),
            checks = state.consecutive,
            retrain = config.drift.retrain,
            "drift: the served model no longer fits what it sees"
        );
    } else if decision.changed {
        tracing::info!("drift over: the latest check found no reason");
    }
    if decision.retrain {
        let params = JobParams {
            epochs: None,
            incremental: false,
            force: false,
            ..Default::default()
        };
        match super::jobs::trigger_from(app, params, "drift").await {
            Ok(t) => {
                tracing::info!(job_id = %t.job_id, launcher = %t.launcher, "drift: training job started")
            }
            Err(e) => tracing::warn!(error = %e, "drift: could not start a training job"),
        }
    }
    if decision.changed {
        app.notifier.status(&app.status_line());
    }
}
