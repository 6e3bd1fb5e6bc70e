//! From forecasts to what operators read: per-metric and per-server risk, trends, the fleet
//! summary, and the bodies of the prediction and alert endpoints. Pure: the daemon calls it
//! once per refresh and caches the result.

use crate::alerts::AlertEvent;
use crate::anomaly::AnomalyReading;
use crate::api::{
    quantile_label, ActiveAlerts, AlertKind, AnomalyAlert, AnomalySummary, FleetSummary,
    LevelCounts, MetricAlert, MetricAnomaly, MetricForecast, MetricSummary, PredictionsCurrent,
    ServerAlert, ServerOutlook, ServerPrediction, ServerSummary, TopRisk,
};
use crate::config::Config;
use crate::forecast::ServerForecast;
use crate::outlook;
use crate::risk::{metric_risk, server_risk, worst_of, Level};
use crate::timefmt::format_ms;
use crate::window::WindowSnapshot;
use std::collections::BTreeMap;

/// Relative change over the horizon below which a metric counts as flat.
const FLAT_FRACTION: f64 = 0.05;

/// One server, forecast and scored.
#[derive(Debug, Clone)]
pub struct Assessed {
    pub server: String,
    pub profile: String,
    pub last_sample_ms: i64,
    /// Time of the first forecast step.
    pub forecast_start_ms: i64,
    pub current: Vec<f32>,
    pub forecast: ServerForecast,
    pub metric_risk: Vec<f64>,
    pub metric_peak: Vec<f64>,
    pub slope_per_hour: Vec<f64>,
    pub risk: f64,
    pub level: Level,
    /// The metric with the highest risk, when any risk is above 0.
    pub top_metric: Option<usize>,
    /// The incident outlook (probability of a critical crossing within each horizon).
    pub outlook: ServerOutlook,
    /// The anomaly reading; set by whoever keeps the anomaly state (the forecast loop,
    /// the replay), `AnomalyReading::none` until then.
    pub anomaly: AnomalyReading,
}

impl Assessed {
    /// The anomaly reading as the API shows it.
    pub fn anomaly_summary(&self, config: &Config) -> AnomalySummary {
        AnomalySummary {
            score: round3(self.anomaly.score),
            anomalous: self.is_anomalous(),
            threshold: round3(self.anomaly.threshold),
            metric: self
                .anomaly
                .top_metric
                .and_then(|m| config.metrics.get(m))
                .map(|d| d.name.clone()),
            judged_steps: self.anomaly.judged_steps,
            baseline_score: self.anomaly.baseline_score.map(round3),
        }
    }

    /// "Anomalous now": the score is at or above the reading's threshold.
    pub fn is_anomalous(&self) -> bool {
        self.anomaly.score >= self.anomaly.threshold
    }
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// Scores one server's forecast.
pub fn assess(config: &Config, snapshot: &WindowSnapshot, forecast: ServerForecast) -> Assessed {
    let step_ms = config.model.step_seconds as i64 * 1000;
    let median = crate::forecast::median_index(&config.model.quantiles);
    let lookahead = ((config.risk.lookahead_minutes as usize * 60)
        .div_ceil(config.model.step_seconds as usize))
    .clamp(1, forecast.horizon.max(1));
    let hours_per_step = config.model.step_seconds as f64 / 3600.0;
    let n = config.metrics.len().min(forecast.n_metrics);
    let (mut risks, mut peaks, mut slopes) = (vec![0.0; n], vec![f64::NAN; n], vec![0.0; n]);
    for (m, def) in config.metrics.iter().enumerate().take(n) {
        let p50 = forecast.series(m, median);
        let current = snapshot.current.get(m).copied().unwrap_or(f32::NAN) as f64;
        peaks[m] = worst_of(
            def,
            p50[..lookahead.min(p50.len())].iter().map(|v| *v as f64),
        );
        risks[m] = metric_risk(def, current, peaks[m], config.risk.current_weight);
        slopes[m] = slope(p50) / hours_per_step;
    }
    let risk = server_risk(risks.iter().copied());
    let top_metric = risks
        .iter()
        .enumerate()
        .filter(|(_, r)| **r > 0.0)
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|(i, _)| i);
    Assessed {
        server: snapshot.server.clone(),
        profile: snapshot.profile.clone(),
        last_sample_ms: snapshot.current_ts,
        forecast_start_ms: (snapshot.last_step + 1) * step_ms,
        current: snapshot.current.clone(),
        metric_risk: risks,
        metric_peak: peaks,
        slope_per_hour: slopes,
        risk,
        level: Level::from_score(risk),
        top_metric,
        outlook: outlook::server_outlook(config, &forecast),
        anomaly: AnomalyReading::none(n, config.anomaly.threshold),
        forecast,
    }
}

/// Least-squares slope per step of a series (NaNs skipped); 0 when undefined.
fn slope(series: &[f32]) -> f64 {
    let (mut n, mut sx, mut sy, mut sxx, mut sxy) = (0.0f64, 0.0, 0.0, 0.0, 0.0);
    for (i, v) in series.iter().enumerate() {
        if v.is_nan() {
            continue;
        }
        let (x, y) = (i as f64, *v as f64);
        n += 1.0;
        sx += x;
        sy += y;
        sxx += x * x;
        sxy += x * y;
    }
    let denominator = n * sxx - sx * sx;
    if n < 2.0 || denominator == 0.0 {
        0.0
    } else {
        (n * sxy - sx * sy) / denominator
    }
}

/// `rising`, `falling` or `flat`: the change over the horizon against 5 % of the scale.
pub fn trend_label(current: f64, slope_per_hour: f64, horizon_hours: f64) -> &'static str {
    let change = slope_per_hour * horizon_hours;
    let scale = if current.is_nan() { 0.0 } else { current.abs() };
    let threshold = FLAT_FRACTION * scale + 1e-3;
    if change > threshold {
        "rising"
    } else if change < -threshold {
        "falling"
    } else {
        "flat"
    }
}

fn opt(v: f32) -> Option<f32> {
    (!v.is_nan()).then_some(v)
}

fn opt64(v: f64) -> Option<f64> {
    (!v.is_nan()).then_some(v)
}

fn quantile_labels(config: &Config) -> Vec<String> {
    config
        .model
        .quantiles
        .iter()
        .map(|q| quantile_label(*q))
        .collect()
}

fn horizon_hours(config: &Config) -> f64 {
    config.model.horizon_steps as f64 * config.model.step_seconds as f64 / 3600.0
}

/// Builds `GET /predictions/current`.
pub fn predictions_current(
    config: &Config,
    model_id: &str,
    generated_at_ms: i64,
    assessed: &[Assessed],
) -> PredictionsCurrent {
    let steps: Vec<usize> = config
        .forecast
        .summary_horizons_minutes
        .iter()
        .map(|min| ((*min as usize * 60) / config.model.step_seconds as usize).max(1) - 1)
        .collect();
    let labels = quantile_labels(config);
    let hh = horizon_hours(config);
    let mut servers = BTreeMap::new();
    for a in assessed {
        let mut metrics = BTreeMap::new();
        for (m, def) in config.metrics.iter().enumerate().take(a.forecast.n_metrics) {
            let forecast = labels
                .iter()
                .enumerate()
                .map(|(q, label)| {
                    let series = a.forecast.series(m, q);
                    let values = steps
                        .iter()
                        .map(|s| series.get(*s).copied().and_then(opt))
                        .collect();
                    (label.clone(), values)
                })
                .collect();
            let current = a.current.get(m).copied().unwrap_or(f32::NAN);
            metrics.insert(
                def.name.clone(),
                MetricSummary {
                    current: opt(current),
                    risk: round1(a.metric_risk[m]),
                    level: Level::from_score(a.metric_risk[m]),
                    trend: trend_label(current as f64, a.slope_per_hour[m], hh).to_string(),
                    forecast,
                },
            );
        }
        servers.insert(
            a.server.clone(),
            ServerSummary {
                profile: a.profile.clone(),
                risk: round1(a.risk),
                level: a.level,
                method: a.forecast.method.to_string(),
                last_sample: format_ms(a.last_sample_ms),
                anomaly: a.anomaly_summary(config),
                metrics,
            },
        );
    }
    PredictionsCurrent {
        model_id: model_id.to_string(),
        generated_at: format_ms(generated_at_ms),
        step_seconds: config.model.step_seconds,
        horizons_minutes: config.forecast.summary_horizons_minutes.clone(),
        quantiles: config.model.quantiles.clone(),
        fleet: fleet_summary(config, assessed),
        servers,
        environment: outlook::environment(
            config,
            assessed
                .iter()
                .map(|a| (a.server.clone(), a.outlook.clone()))
                .collect(),
        ),
        shards: Vec::new(),
    }
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

fn top_metric_name(config: &Config, a: &Assessed) -> Option<String> {
    a.top_metric.map(|m| config.metrics[m].name.clone())
}

/// Counts per level, mean risk and the top risks.
pub fn fleet_summary(config: &Config, assessed: &[Assessed]) -> FleetSummary {
    let mut levels = LevelCounts::default();
    for a in assessed {
        levels.add(a.level);
    }
    let mut ranked: Vec<&Assessed> = assessed.iter().collect();
    ranked.sort_by(|a, b| {
        b.risk
            .total_cmp(&a.risk)
            .then_with(|| a.server.cmp(&b.server))
    });
    let mean = if assessed.is_empty() {
        0.0
    } else {
        assessed.iter().map(|a| a.risk).sum::<f64>() / assessed.len() as f64
    };
    FleetSummary {
        servers: assessed.len(),
        levels,
        mean_risk: round1(mean),
        top_risks: ranked
            .into_iter()
            .take(config.risk.top_n)
            .map(|a| TopRisk {
                server: a.server.clone(),
                risk: round1(a.risk),
                level: a.level,
                metric: top_metric_name(config, a),
            })
            .collect(),
    }
}

/// Builds `GET /predictions/{server}`.
pub fn server_prediction(
    config: &Config,
    model_id: &str,
    generated_at_ms: i64,
    a: &Assessed,
) -> ServerPrediction {
    let labels = quantile_labels(config);
    let hh = horizon_hours(config);
    let metrics = config
        .metrics
        .iter()
        .enumerate()
        .take(a.forecast.n_metrics)
        .map(|(m, def)| {
            let current = a.current.get(m).copied().unwrap_or(f32::NAN);
            let quantiles = labels
                .iter()
                .enumerate()
                .map(|(q, label)| {
                    (
                        label.clone(),
                        a.forecast.series(m, q).iter().map(|v| opt(*v)).collect(),
                    )
                })
                .collect();
            (
                def.name.clone(),
                MetricForecast {
                    unit: def.unit.clone(),
                    current: opt(current),
                    risk: round1(a.metric_risk[m]),
                    level: Level::from_score(a.metric_risk[m]),
                    trend: trend_label(current as f64, a.slope_per_hour[m], hh).to_string(),
                    slope_per_hour: a.slope_per_hour[m],
                    predicted_peak: opt64(a.metric_peak[m]),
                    anomaly_score: a
                        .anomaly
                        .metrics
                        .get(m)
                        .copied()
                        .and_then(opt64)
                        .map(round3),
                    expected_low: a.anomaly.expected_low.get(m).copied().and_then(opt),
                    expected_high: a.anomaly.expected_high.get(m).copied().and_then(opt),
                    quantiles,
                },
            )
        })
        .collect();
    ServerPrediction {
        model_id: model_id.to_string(),
        method: a.forecast.method.to_string(),
        server: a.server.clone(),
        profile: a.profile.clone(),
        generated_at: format_ms(generated_at_ms),
        forecast_start: format_ms(a.forecast_start_ms),
        step_seconds: config.model.step_seconds,
        horizon_steps: a.forecast.horizon,
        risk: round1(a.risk),
        level: a.level,
        anomaly: a.anomaly_summary(config),
        metrics,
    }
}

/// Builds `GET /alerts/active`: servers at watch or above with their metrics at watch or
/// above, highest risk first.
pub fn active_alerts(
    config: &Config,
    model_id: &str,
    generated_at_ms: i64,
    assessed: &[Assessed],
    recent_events: Vec<AlertEvent>,
) -> ActiveAlerts {
    let mut levels = LevelCounts::default();
    let mut alerts = Vec::new();
    for a in assessed {
        levels.add(a.level);
        if a.level == Level::Healthy {
            continue;
        }
        let mut metrics: Vec<MetricAlert> = config
            .metrics
            .iter()
            .enumerate()
            .take(a.forecast.n_metrics)
            .filter(|(m, _)| Level::from_score(a.metric_risk[*m]) > Level::Healthy)
            .map(|(m, def)| MetricAlert {
                metric: def.name.clone(),
                level: Level::from_score(a.metric_risk[m]),
                risk: round1(a.metric_risk[m]),
                current: a.current.get(m).copied().and_then(opt),
                predicted_peak: opt64(a.metric_peak[m]),
            })
            .collect();
        metrics.sort_by(|x, y| y.risk.total_cmp(&x.risk));
        alerts.push(ServerAlert {
            kind: AlertKind::PredictedBreach,
            server: a.server.clone(),
            profile: a.profile.clone(),
            level: a.level,
            risk: round1(a.risk),
            metrics,
        });
    }
    alerts.sort_by(|x, y| {
        y.risk
            .total_cmp(&x.risk)
            .then_with(|| x.server.cmp(&y.server))
    });
    ActiveAlerts {
        model_id: model_id.to_string(),
        generated_at: format_ms(generated_at_ms),
        levels,
        alerts,
        anomalies: anomaly_alerts(config, assessed),
        recent_events,
        shards: Vec::new(),
    }
}

/// The servers anomalous now, highest score first, each with its metrics at or above the
/// threshold.
pub fn anomaly_alerts(config: &Config, assessed: &[Assessed]) -> Vec<AnomalyAlert> {
    let mut out: Vec<AnomalyAlert> = assessed
        .iter()
        .filter(|a| a.is_anomalous())
        .map(|a| {
            let threshold = a.anomaly.threshold;
            let mut metrics: Vec<MetricAnomaly> = config
                .metrics
                .iter()
                .enumerate()
                .filter(|(m, _)| a.anomaly.metrics.get(*m).is_some_and(|s| *s >= threshold))
                .map(|(m, def)| MetricAnomaly {
                    metric: def.name.clone(),
                    score: round3(a.anomaly.metrics[m]),
                    current: a.current.get(m).copied().and_then(opt),
                    expected_low: a.anomaly.expected_low.get(m).copied().and_then(opt),
                    expected_high: a.anomaly.expected_high.get(m).copied().and_then(opt),
                })
                .collect();
            metrics.sort_by(|x, y| y.score.total_cmp(&x.score));
            AnomalyAlert {
                kind: AlertKind::Anomaly,
                server: a.server.clone(),
                profile: a.profile.clone(),
                score: round3(a.anomaly.score),
                metrics,
            }
        })
        .collect();
    out.sort_by(|x, y| {
        y.score
            .total_cmp(&x.score)
            .then_with(|| x.server.cmp(&y.server))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        let mut c = Config::default();
        c.model.horizon_steps = 24; // 2 h
        c.risk.lookahead_minutes = 60;
        c.forecast.summary_horizons_minutes = vec![30, 120];
        c
    }

    fn snapshot(current: Vec<f32>) -> WindowSnapshot {
        WindowSnapshot {
            server: "ppweb001".into(),
            profile: "web_api".into(),
            last_step: 100,
            history: vec![],
            len: 0,
            current,
            current_ts: 100 * 300_000 + 5_000,
        }
    }

    /// A forecast whose p50 for metric 0 (cpu_user_pct) ramps from `from` to `to`.
    fn ramp(config: &Config, from: f32, to: f32) -> ServerForecast {
        let h = config.model.horizon_steps;
        let mut f = ServerForecast::empty("test", config.metrics.len(), 3, h);
        for m in 0..config.metrics.len() {
            for q in 0..3 {
                for (i, v) in f.series_mut(m, q).iter_mut().enumerate() {
                    let base = match m {
                        0 => from + (to - from) * i as f32 / (h - 1) as f32,
                        3 => 80.0, // idle CPU: healthy when high
                        _ => 1.0,
                    };
                    *v = base + (q as f32 - 1.0);
                }
            }
        }
        f
    }

    #[test]
    fn predicted_breach_raises_risk_before_the_incident() {
        let c = config();
        let mut current = vec![1.0f32; c.metrics.len()];
        current[3] = 80.0; // idle is high: healthy
        current[0] = 50.0;
        // The peak inside the 60-minute lookahead (12 steps of 24) is ~77.8: below warn.
        let calm = assess(&c, &snapshot(current.clone()), ramp(&c, 50.0, 50.0));
        assert_eq!(calm.level, Level::Healthy);
        assert_eq!(calm.top_metric, None);
        let rising = assess(&c, &snapshot(current.clone()), ramp(&c, 50.0, 100.0));
        assert!(rising.risk > calm.risk);
        assert_eq!(rising.top_metric, Some(0));
        assert_eq!(rising.forecast_start_ms, 101 * 300_000);
        assert!(rising.slope_per_hour[0] > 20.0);
        let hot = assess(
            &c,
            &snapshot({
                let mut c2 = current;
                c2[0] = 96.0;
                c2
            }),
            ramp(&c, 96.0, 99.0),
        );
        assert_eq!(hot.level, Level::Critical);
    }

    #[test]
    fn summaries_agree_with_assessments() {
        let c = config();
        let mut current = vec![1.0f32; c.metrics.len()];
        current[3] = 80.0;
        let mut hot_current = current.clone();
        hot_current[0] = 96.0;
        let mut hot_snapshot = snapshot(hot_current);
        hot_snapshot.server = "ppdb001".into();
        let assessed = vec![
            assess(&c, &snapshot(current), ramp(&c, 10.0, 10.0)),
            assess(&c, &hot_snapshot, ramp(&c, 96.0, 97.0)),
        ];
        let current = predictions_current(&c, "baseline:test", 0, &assessed);
        assert_eq!(current.fleet.servers, 2);
        assert_eq!(current.fleet.levels.critical, 1);
        assert_eq!(current.fleet.levels.healthy, 1);
        assert_eq!(current.fleet.top_risks[0].server, "ppdb001");
        assert_eq!(
            current.fleet.top_risks[0].metric.as_deref(),
            Some("cpu_user_pct")
        );
        let cpu = &current.servers["ppweb001"].metrics["cpu_user_pct"];
        assert_eq!(cpu.forecast["p50"].len(), 2);
        assert_eq!(cpu.forecast["p50"][0], Some(10.0));
        assert_eq!(cpu.forecast["p10"][1], Some(9.0));
        let alerts = active_alerts(&c, "baseline:test", 0, &assessed, vec![]);
        assert_eq!(alerts.alerts.len(), 1);
        assert_eq!(alerts.alerts[0].server, "ppdb001");
        assert_eq!(alerts.alerts[0].metrics[0].metric, "cpu_user_pct");
        assert_eq!(alerts.levels, current.fleet.levels);
        let one = server_prediction(&c, "baseline:test", 0, &assessed[1]);
        assert_eq!(one.metrics["cpu_user_pct"].quantiles["p90"].len(), 24);
        assert_eq!(one.level, Level::Critical);
    }

    #[test]
    fn anomalous_servers_are_a_second_alert_kind() {
        let c = config();
        let mut current = vec![1.0f32; c.metrics.len()];
        current[3] = 80.0;
        let mut calm = assess(&c, &snapshot(current.clone()), ramp(&c, 10.0, 10.0));
        let mut odd = calm.clone();
        odd.server = "ppweb002".into();
        odd.anomaly.score = 2.5;
        odd.anomaly.top_metric = Some(0);
        odd.anomaly.metrics[0] = 2.5;
        odd.anomaly.metrics[1] = 0.4;
        odd.anomaly.expected_low[0] = 9.0;
        odd.anomaly.expected_high[0] = 11.0;
        odd.anomaly.judged_steps = 7;
        calm.anomaly.score = 0.2;
        let assessed = vec![calm, odd];
        let alerts = active_alerts(&c, "m", 0, &assessed, vec![]);
        assert!(alerts.alerts.is_empty(), "no risk: no predicted breach");
        assert_eq!(alerts.anomalies.len(), 1);
        let a = &alerts.anomalies[0];
        assert_eq!(
            (a.kind, a.server.as_str(), a.score),
            (AlertKind::Anomaly, "ppweb002", 2.5)
        );
        assert_eq!(a.metrics.len(), 1, "only metrics at or above the threshold");
        assert_eq!(a.metrics[0].expected_high, Some(11.0));
        let one = server_prediction(&c, "m", 0, &assessed[1]);
        assert!(one.anomaly.anomalous);
        assert_eq!(one.anomaly.metric.as_deref(), Some("cpu_user_pct"));
        assert_eq!(one.metrics["cpu_user_pct"].anomaly_score, Some(2.5));
        assert_eq!(one.metrics["mem_used_pct"].anomaly_score, None);
        let current = predictions_current(&c, "m", 0, &assessed);
        assert!(!current.servers["ppweb001"].anomaly.anomalous);
        assert_eq!(current.environment.servers.len(), 2);
    }

    #[test]
    fn a_server_is_held_to_its_readings_threshold() {
        // anomaly.threshold is 1; a server a model serves may be held to the model's own.
        let c = config();
        let mut a = assess(
            &c,
            &snapshot(vec![1.0f32; c.metrics.len()]),
            ramp(&c, 10.0, 10.0),
        );
        assert_eq!(a.anomaly.threshold, c.anomaly.threshold);
        a.anomaly.score = 2.5;
        a.anomaly.metrics[0] = 2.5;
        a.anomaly.metrics[1] = 1.5;
        assert!(a.is_anomalous());
        assert_eq!(
            anomaly_alerts(&c, std::slice::from_ref(&a))[0]
                .metrics
                .len(),
            2
        );
        a.anomaly.threshold = 2.0;
        let alerts = anomaly_alerts(&c, std::slice::from_ref(&a));
        assert_eq!(alerts[0].metrics.len(), 1, "1.5 is below the model's 2.0");
        assert_eq!(a.anomaly_summary(&c).threshold, 2.0);
        a.anomaly.threshold = 3.0;
        assert!(!a.is_anomalous());
        assert!(anomaly_alerts(&c, &[a.clone()]).is_empty());
        assert!(!a.anomaly_summary(&c).anomalous);
    }

    #[test]
    fn trend_labels() {
        assert_eq!(trend_label(50.0, 5.0, 8.0), "rising");
        assert_eq!(trend_label(50.0, -5.0, 8.0), "falling");
        assert_eq!(trend_label(50.0, 0.1, 8.0), "flat");
        assert_eq!(slope(&[1.0, 2.0, 3.0]), 1.0);
        assert_eq!(slope(&[f32::NAN]), 0.0);
    }
}
