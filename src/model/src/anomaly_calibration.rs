//! The trainer's anomaly threshold for a model (`nordiq_core::anomaly_threshold`):
//! held-out time replayed through the model and through the baseline that would serve
//! without it, the way the daemon decides (`crate::replay`), and the model's threshold set
//! as low as it can go, coming down from the model's highest score, before the model
//! starts more alert events than the baseline does at `anomaly.threshold`.
//!
//! Events, not alerting steps: an operator is paged per event, and a sharper model's
//! alerts flicker more (on ASD's held-out half, measured before the trainer's band
//! calibration, matching alerting steps left the TFT at 1.39 false events per server-day,
//! matching events at 1.24; the baseline: 0.99). Alerts off for at most
//! [`MERGE_GAP_MINUTES`] are one event, as `nordiqctl evaluate-alerts` counts them by
//! default.

use crate::alert_quality::event_starts;
use crate::backtest::Grid;
use crate::replay::{first_scored, replay, ReplayOptions};
use crate::Forecaster;
use nordiq_core::anomaly_threshold::{AnomalyCalibration, CalibrationError, MIN_BASELINE_EVENTS};
use nordiq_core::config::{AnomalyConfig, Config};
use std::borrow::Cow;

/// At most this many decisions per model, which keeps the replay to seconds: a fleet
/// whose held-out time holds more is calibrated on servers taken evenly from it (sorted by
/// name), each over its whole held-out time — events need time to start and end in.
pub const MAX_DECISIONS: usize = 20_000;

/// Alerts off for at most this long are one event.
pub const MERGE_GAP_MINUTES: u32 = 60;

/// Thresholds tried: at most this many of the model's scores, evenly spaced by rank.
const CANDIDATES: usize = 1024;

/// Replays `grids` from `options` (its `max_steps` is capped by [`MAX_DECISIONS`]) through
/// both forecasters under `config.anomaly` and matches their event rates.
pub fn calibrate_anomaly_threshold(
    config: &Config,
    model: &dyn Forecaster,
    baseline: &dyn Forecaster,
    grids: &[Grid],
    options: &ReplayOptions,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<AnomalyCalibration, CalibrationError> {
    let sample = sample_servers(config, grids, options);
    let grids: &[Grid] = &sample;
    let scores = |forecaster: &dyn Forecaster, progress: &mut dyn FnMut(usize, usize)| {
        replay(
            config,
            forecaster,
            grids,
            std::slice::from_ref(&config.anomaly),
            options,
            progress,
        )
        .into_iter()
        .map(|trace| {
            let scored = trace.scored_from.min(trace.risk.len());
            trace
                .anomaly
                .into_iter()
                .next()
                .unwrap_or_default()
                .split_off(scored)
        })
        .collect::<Vec<Vec<f32>>>()
    };
    let baseline_scores = scores(baseline, &mut |_, _| {});
    let model_scores = scores(model, progress);
    let merge_gap = (MERGE_GAP_MINUTES as usize * 60) / config.model.step_seconds.max(1) as usize;
    match_event_rate(
        &config.anomaly,
        baseline.id(),
        &model_scores,
        &baseline_scores,
        merge_gap,
    )
}

/// The servers replayed: all of them when their held-out decisions fit in
/// [`MAX_DECISIONS`], else every k-th, as many as fit (at least one).
fn sample_servers<'a>(
    config: &Config,
    grids: &'a [Grid],
    options: &ReplayOptions,
) -> Cow<'a, [Grid]> {
    let step_ms = config.model.step_seconds as i64 * 1000;
    let season = config.season_steps();
    let steps: Vec<usize> = grids
        .iter()
        .map(|g| {
            let held_out = g
                .len
                .saturating_sub(first_scored(g, options, step_ms, season));
            options.max_steps.map_or(held_out, |n| n.min(held_out))
        })
        .collect();
    let total: usize = steps.iter().sum();
    if total <= MAX_DECISIONS {
        return Cow::Borrowed(grids);
    }
    let longest = steps.iter().copied().max().unwrap_or(1).max(1);
    let keep = (MAX_DECISIONS / longest).clamp(1, grids.len());
    (0..keep)
        .map(|i| grids[i * grids.len() / keep].clone())
        .collect()
}

/// Alert events started over every server's score series at `threshold`.
fn events(series: &[Vec<f32>], threshold: f64, merge_gap: usize) -> usize {
    series
        .iter()
        .map(|s| {
            let alerting: Vec<bool> = s.iter().map(|v| *v as f64 >= threshold).collect();
            event_starts(&alerting, merge_gap).len()
        })
        .sum()
}

/// The lowest threshold down to which the model starts no more events than the baseline
/// does at `anomaly.threshold`. Score series are per server, over the same decisions; NaN
/// (nothing judged) never alerts.
pub fn match_event_rate(
    anomaly: &AnomalyConfig,
    baseline: &str,
    model_scores: &[Vec<f32>],
    baseline_scores: &[Vec<f32>],
    merge_gap: usize,
) -> Result<AnomalyCalibration, CalibrationError> {
    let count = |s: &[Vec<f32>]| s.iter().map(Vec::len).sum::<usize>();
    let decisions = count(model_scores);
    if decisions != count(baseline_scores) || model_scores.len() != baseline_scores.len() {
        return Err(CalibrationError::Mismatch {
            model: decisions,
            baseline: count(baseline_scores),
        });
    }
    let configured = anomaly.threshold;
    let target = events(baseline_scores, configured, merge_gap);
    if target < MIN_BASELINE_EVENTS {
        return Err(CalibrationError::TooFewEvents {
            events: target,
            decisions,
        });
    }
    let mut ranked: Vec<f32> = model_scores
        .iter()
        .flatten()
        .copied()
        .filter(|v| *v > 0.0)
        .collect();
    ranked.sort_by(f32::total_cmp);
    ranked.dedup();
    let stride = ranked.len().div_ceil(CANDIDATES).max(1);
    // From the top down: above the highest score nothing alerts; lowering the threshold
    // adds events until, far down, alerts run together into a few long ones. The answer
    // is the lowest threshold before the count first exceeds the baseline's.
    let mut threshold = ranked.last().map_or(configured, |v| *v as f64 * 1.001);
    for t in ranked.iter().rev().step_by(stride).map(|v| *v as f64) {
        if events(model_scores, t, merge_gap) > target {
            break;
        }
        threshold = t;
    }
    Ok(AnomalyCalibration {
        threshold,
        baseline: baseline.to_string(),
        configured_threshold: configured,
        horizon_steps: anomaly.horizon_steps,
        smoothing_steps: anomaly.smoothing_steps,
        metrics_needed: anomaly.metrics_needed,
        decisions,
        merge_gap_steps: merge_gap,
        baseline_events: target,
        model_events: events(model_scores, threshold, merge_gap),
        model_events_at_configured: events(model_scores, configured, merge_gap),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::baseline::Baseline;
    use nordiq_core::config::BaselineKind;
    use nordiq_core::forecast::ServerForecast;
    use nordiq_core::window::WindowSnapshot;

    /// The baseline with its bands shrunk to `1/narrow` of their width around the median:
    /// a sharper forecaster that sees the same excursions as more band widths out.
    struct Narrowed {
        inner: Baseline,
        narrow: f32,
    }

    impl Forecaster for Narrowed {
        fn id(&self) -> &str {
            "narrowed"
        }

        fn forecast_batch(&self, snapshots: &[&WindowSnapshot]) -> Vec<ServerForecast> {
            let mut out = self.inner.forecast_batch(snapshots);
            for f in &mut out {
                let q = f.n_quantiles;
                for m in 0..f.n_metrics {
                    let median: Vec<f32> = f.series(m, q / 2).to_vec();
                    for qi in 0..q {
                        for (v, mid) in f.series_mut(m, qi).iter_mut().zip(&median) {
                            *v = mid + (*v - mid) / self.narrow;
                        }
                    }
                }
            }
            out
        }
    }

    /// `n` servers, `len` hourly steps: a daily wave, noise, and now and then a spike of
    /// random size on either metric.
    fn noisy_grids(n: usize, len: usize) -> Vec<Grid> {
        let mut x = 7u64;
        let mut uniform = move || {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 40) as f32 / (1u64 << 24) as f32
        };
        (0..n)
            .map(|s| {
                let mut values = vec![0.0f32; 2 * len];
                for t in 0..len {
                    let wave = 40.0 + 10.0 * ((t % 24) as f32 / 24.0 * std::f32::consts::TAU).sin();
                    for m in 0..2 {
                        let spike = if uniform() < 0.04 {
                            uniform() * 30.0
                        } else {
                            0.0
                        };
                        values[m * len + t] = wave + (uniform() - 0.5) * 4.0 + spike;
                    }
                }
                Grid {
                    server: format!("s{s}"),
                    profile: "generic".into(),
                    start_step: 0,
                    len,
                    values,
                }
            })
            .collect()
    }

    fn anomaly() -> AnomalyConfig {
        AnomalyConfig {
            threshold: 1.0,
            ..AnomalyConfig::default()
        }
    }

    /// One server whose score rises to `peaks[i]` for one step every 5 steps.
    fn spikes(peaks: &[f32]) -> Vec<Vec<f32>> {
        vec![peaks
            .iter()
            .flat_map(|p| [0.1, 0.1, *p, 0.1, 0.1])
            .collect()]
    }

    #[test]
    fn the_model_starts_as_many_events_as_the_baseline() {
        // Baseline: 10 of 20 spikes reach 1.0. Model: the same spikes twice as high
        // (20 events at 1.0); going down from the top, the 10th highest doubled peak is
        // the last with at most 10 events: 2 × 1.025.
        let peaks: Vec<f32> = (0..20).map(|i| 0.5 + i as f32 * 0.05 + 0.025).collect();
        let baseline = spikes(&peaks);
        let model = spikes(&peaks.iter().map(|p| p * 2.0).collect::<Vec<_>>());
        let c = match_event_rate(&anomaly(), "baseline:seasonal_median", &model, &baseline, 0)
            .expect("enough events");
        assert_eq!(c.baseline_events, 10, "{c:?}");
        assert_eq!(c.model_events, 10, "{c:?}");
        assert_eq!(c.model_events_at_configured, 20, "{c:?}");
        assert!((c.threshold - 2.0 * 1.025).abs() < 1e-5, "{c:?}");
        assert_eq!(c.decisions, 100);
    }

    #[test]
    fn a_large_fleet_is_sampled_by_server_over_its_whole_held_out_time() {
        let config = crate::backtest::hourly_test_config();
        // 100 servers × 240 held-out steps = 24,000 decisions > 20,000: 83 servers.
        let grids: Vec<Grid> = (0..100)
            .map(|s| Grid {
                server: format!("s{s:03}"),
                profile: "generic".into(),
                start_step: 0,
                len: 480,
                values: vec![1.0; 2 * 480],
            })
            .collect();
        let options = ReplayOptions {
            from_ms: Some(240 * 3_600_000),
            ..ReplayOptions::default()
        };
        let sample = sample_servers(&config, &grids, &options);
        assert_eq!(sample.len(), MAX_DECISIONS / 240);
        assert_eq!(sample[0].server, "s000");
        assert_eq!(sample.last().map(|g| g.server.as_str()), Some("s098"));
        let mut names: Vec<&str> = sample.iter().map(|g| g.server.as_str()).collect();
        names.dedup();
        assert_eq!(names.len(), sample.len(), "no server twice");
        // A fleet that fits is replayed whole.
        assert_eq!(sample_servers(&config, &grids[..50], &options).len(), 50);
    }

    #[test]
    fn events_merge_over_the_gap_and_too_few_are_refused() {
        // Alerts one step apart are one event with a gap of 1, two with a gap of 0.
        let flicker = vec![vec![2.0f32, 0.0, 2.0, 0.0, 0.0, 0.0]];
        assert_eq!(events(&flicker, 1.0, 0), 2);
        assert_eq!(events(&flicker, 1.0, 1), 1);
        let few = spikes(&[2.0; 9]);
        assert_eq!(
            match_event_rate(&anomaly(), "b", &few, &few, 0),
            Err(CalibrationError::TooFewEvents {
                events: 9,
                decisions: 45
            })
        );
        assert!(matches!(
            match_event_rate(&anomaly(), "b", &spikes(&[2.0; 10]), &spikes(&[2.0; 11]), 0),
            Err(CalibrationError::Mismatch { .. })
        ));
    }

    #[test]
    fn a_sharper_model_gets_a_higher_threshold_and_alerts_as_often() {
        let mut config = crate::backtest::hourly_test_config();
        config.forecast.baseline = BaselineKind::SeasonalNaive;
        config.anomaly.metrics_needed = 1;
        config.anomaly.threshold = 0.5;
        let grids = noisy_grids(4, 480);
        let baseline = Baseline::from_config(&config);
        let sharp = Narrowed {
            inner: Baseline::from_config(&config),
            narrow: 3.0,
        };
        let options = ReplayOptions {
            from_ms: Some(240 * 3_600_000),
            ..ReplayOptions::default()
        };
        let c = calibrate_anomaly_threshold(
            &config,
            &sharp,
            &baseline,
            &grids,
            &options,
            &mut |_, _| {},
        )
        .expect("calibrates");
        assert_eq!(c.decisions, 4 * 240, "{c:?}");
        assert!(c.baseline_events >= 10, "{c:?}");
        assert!(c.model_events <= c.baseline_events, "{c:?}");
        // Bands a third as wide: exceedances three times as large, plus the excursions
        // that only the narrow band catches, so the matched threshold is well above 0.5.
        assert!(c.threshold > 1.0, "{c:?}");
        assert_eq!(c.baseline, "baseline:seasonal_naive");
        // The same forecaster on both sides keeps the configured threshold's rate.
        let same = calibrate_anomaly_threshold(
            &config,
            &baseline,
            &baseline,
            &grids,
            &options,
            &mut |_, _| {},
        )
        .expect("calibrates");
        assert_eq!(same.model_events_at_configured, same.baseline_events);
        assert!(same.threshold <= 0.5, "{same:?}");
        assert_eq!(same.model_events, same.baseline_events, "{same:?}");
    }
}
