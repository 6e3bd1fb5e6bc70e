//! Live accuracy in the daemon: which forecasts to keep, the best baseline beside the
//! served model, and the bins saved under `state_dir` so they survive a restart (the
//! scoring itself is `nordiq_model::live`).

use crate::state::App;
use nordiq_core::config::Config;
use nordiq_core::forecast::ServerForecast;
use nordiq_core::window::WindowSnapshot;
use nordiq_model::baseline::Baseline;
use nordiq_model::live::{LiveAccuracy, LiveState};
use nordiq_model::Forecaster;
use std::path::PathBuf;

fn path(config: &Config) -> PathBuf {
    config.paths.state_dir.join("live-accuracy.json")
}

/// The saved bins, or empty ones (a missing or unreadable file is logged, not fatal).
pub fn load(config: &Config) -> LiveAccuracy {
    let file = path(config);
    match std::fs::read(&file) {
        Ok(bytes) => match serde_json::from_slice::<LiveState>(&bytes) {
            Ok(state) => LiveAccuracy::from_state(state),
            Err(e) => {
                tracing::warn!(file = %file.display(), error = %e, "live accuracy file unreadable; starting anew");
                LiveAccuracy::default()
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => LiveAccuracy::default(),
        Err(e) => {
            tracing::warn!(file = %file.display(), error = %e, "cannot read the live accuracy file; starting anew");
            LiveAccuracy::default()
        }
    }
}

/// Saves the bins atomically; a failure is logged (the figures are a convenience, not data).
pub fn save(app: &App) {
    let config = app.config.load();
    let bytes = {
        let live = app.live.lock().unwrap_or_else(|p| p.into_inner());
        serde_json::to_vec(live.state()).unwrap_or_default()
    };
    if let Err((file, e)) = nordiq_runtime::atomic_file::write_atomic(&path(&config), &bytes) {
        tracing::warn!(file = %file.display(), error = %e, "cannot save live accuracy");
    }
}

/// The best baseline beside the served model: the one its held-out evaluation named
/// (`metrics.json`), else the configured baseline.
pub fn best_baseline(app: &App, config: &Config) -> Baseline {
    let named = app.model.best_baseline();
    Baseline::of_kind(config, named.unwrap_or(config.forecast.baseline))
}

/// Live accuracy as of now (None when `live.max_servers` = 0).
pub fn report(app: &App) -> Option<nordiq_core::api::LiveReport> {
    let config = app.config.load();
    (config.live.max_servers > 0).then(|| {
        app.live.lock().unwrap_or_else(|p| p.into_inner()).report(
            &config,
            nordiq_core::timefmt::now_ms().div_euclid(3_600_000),
        )
    })
}

/// One refresh's part: score what has closed, keep this origin's forecasts when due, and
/// save once an hour.
pub fn after_refresh(
    app: &App,
    config: &Config,
    served_id: &str,
    snapshots: &[WindowSnapshot],
    forecasts: &[ServerForecast],
    now_ms: i64,
) {
    if config.live.max_servers == 0 {
        return;
    }
    let hour = now_ms.div_euclid(3_600_000);
    {
        let mut live = app.live.lock().unwrap_or_else(|p| p.into_inner());
        live.score(config, snapshots, hour);
        let last_step = snapshots.first().map(|s| s.last_step);
        if let Some(last_step) = last_step.filter(|s| live.due(config, *s)) {
            let sample = LiveAccuracy::sample(config, last_step, snapshots.len());
            let baseline = best_baseline(app, config);
            let picked: Vec<&WindowSnapshot> = sample.iter().map(|i| &snapshots[*i]).collect();
            let theirs = baseline.forecast_batch(&picked);
            for (i, b) in sample.iter().zip(theirs) {
                live.keep(
                    config,
                    served_id,
                    baseline.id(),
                    &snapshots[*i],
                    forecasts[*i].clone(),
                    b,
                );
            }
        }
    }
    if app
        .live_saved_hour
        .swap(hour, std::sync::atomic::Ordering::AcqRel)
        != hour
    {
        save(app);
    }
}
