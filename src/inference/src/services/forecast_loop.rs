//! The forecast loop: one batched forecast for every server with enough history, at each
//! step boundary, every `forecast.refresh_seconds`, on demand, and when servers become
//! forecastable; results are scored, serialised once and published behind an `Arc`.

use crate::state::{App, ForecastSet};
use bytes::Bytes;
use nordiq_core::alerts::Assessment;
use nordiq_core::api::RefreshInfo;
use nordiq_core::assess;
use nordiq_core::timefmt::{format_ms, now_ms};
use nordiq_model::{parallel_map, ForecastSpec, Forecaster};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Recent alert events included in `GET /alerts/active`.
const RECENT_EVENTS: usize = 100;
/// Least time between two refreshes caused by new servers (ingest bursts).
const NEW_SERVER_DEBOUNCE: Duration = Duration::from_secs(2);

/// Runs until `shutdown` is cancelled.
pub async fn run(app: Arc<App>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_refresh = Instant::now() - Duration::from_secs(3600);
    let mut last_step = i64::MIN;
    loop {
        let requested = tokio::select! {
            _ = tick.tick() => false,
            _ = app.refresh_requested.notified() => true,
            _ = shutdown.cancelled() => return,
        };
        app.heartbeat();
        // Cheap unless `drift.check_seconds` have passed since the last check.
        super::drift::maybe_check(&app, now_ms()).await;
        let config = app.config.load_full();
        let step_ms = config.model.step_seconds as i64 * 1000;
        let now_step = now_ms().div_euclid(step_ms);
        let set = app.forecasts.load();
        let trigger = if requested {
            Some("on_demand")
        } else if now_step != last_step && last_step != i64::MIN {
            Some("step")
        } else if last_refresh.elapsed() >= Duration::from_secs(config.forecast.refresh_seconds) {
            Some("interval")
        } else if last_refresh.elapsed() >= NEW_SERVER_DEBOUNCE
            && app
                .store
                .count_with_history(config.forecast.min_history_steps)
                != set.assessed.len()
        {
            Some("new_servers")
        } else {
            None
        };
        last_step = now_step;
        let Some(trigger) = trigger else { continue };
        last_refresh = Instant::now();
        let seq = app.refresh_started.fetch_add(1, Ordering::AcqRel) + 1;
        let worker = Arc::clone(&app);
        match tokio::task::spawn_blocking(move || refresh(&worker, trigger)).await {
            Ok(info) => tracing::debug!(
                servers = info.servers,
                duration_ms = info.duration_ms,
                trigger,
                "forecasts refreshed"
            ),
            Err(e) => {
                tracing::error!(error = %e, "forecast refresh panicked; keeping the previous forecasts")
            }
        }
        if let Some(cluster) = app.cluster.get() {
            super::cluster::view::publish(&app, cluster).await;
        }
        app.heartbeat();
        app.notifier.status(&app.status_line());
        app.refresh_done.send_replace(seq);
    }
}

/// One refresh: snapshot, forecast, assess, serialise, publish.
pub fn refresh(app: &App, trigger: &str) -> RefreshInfo {
    let started = Instant::now();
    let config = app.config.load_full();
    let forecaster = app.forecaster.load_full();
    let now = now_ms();
    let step_ms = config.model.step_seconds as i64 * 1000;
    let snapshots = app
        .store
        .snapshots(now.div_euclid(step_ms), config.forecast.min_history_steps);
    let refs: Vec<_> = snapshots.iter().collect();
    let forecasts = forecaster.forecast_batch(&refs);
    let mut readings = app
        .anomalies
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .update_all(&config, snapshots.iter().zip(forecasts.iter()));
    {
        let mut witness = app
            .anomaly_witness
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if config.anomaly.confirm_with_baseline && forecaster.model.is_some() {
            let baseline = super::live::best_baseline(app, &config);
            forecaster.confirm_anomalies(
                &config,
                &baseline,
                &mut witness,
                &snapshots,
                &mut readings,
            );
        } else {
            // A model that comes back later starts its baseline's state anew.
            *witness = Default::default();
        }
    }
    super::live::after_refresh(app, &config, forecaster.id(), &snapshots, &forecasts, now);
    let pairs: Vec<_> = snapshots.iter().zip(forecasts).collect();
    let threads = ForecastSpec::from_config(&config).threads;
    let mut assessed = parallel_map(pairs, threads, |(s, f)| assess::assess(&config, s, f));
    for ((a, reading), snapshot) in assessed.iter_mut().zip(readings).zip(&snapshots) {
        a.anomaly = reading;
        a.anomaly.threshold = forecaster.anomaly_threshold_for(snapshot, &config.anomaly);
    }
    app.outbox.observe(&config, now, &assessed);
    let events = {
        let mut tracker = app.alerts.lock().unwrap_or_else(|p| p.into_inner());
        tracker.set_max_events(config.alerts.max_events);
        let stamp = format_ms(now);
        tracker.update(
            &stamp,
            assessed.iter().map(|a| Assessment {
                server: &a.server,
                level: a.level,
                risk: a.risk,
                metric: a.top_metric.map(|m| config.metrics[m].name.as_str()),
            }),
        );
        tracker.events(0, RECENT_EVENTS)
    };
    let model_id = forecaster.id().to_string();
    let current = assess::predictions_current(&config, &model_id, now, &assessed);
    let alerts = assess::active_alerts(&config, &model_id, now, &assessed, events);
    let info = RefreshInfo {
        at: format_ms(now),
        duration_ms: started.elapsed().as_secs_f64() * 1000.0,
        servers: assessed.len(),
        trigger: trigger.to_string(),
    };
    let index = assessed
        .iter()
        .enumerate()
        .map(|(i, a)| (a.server.clone(), i))
        .collect();
    app.forecasts.store(Arc::new(ForecastSet {
        model_id,
        generated_at_ms: now,
        assessed,
        index,
        current_json: Bytes::from(serde_json::to_vec(&current).unwrap_or_default()),
        alerts_json: Bytes::from(serde_json::to_vec(&alerts).unwrap_or_default()),
        refresh: Some(info.clone()),
    }));
    info
}
