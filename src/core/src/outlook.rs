//! The incident outlook: the probability that a metric crosses its critical threshold
//! **within** a horizon (30 minutes and 8 hours by default), per server and for the fleet,
//! from the forecast quantiles.
//!
//! - At one step, P(value past `crit`) comes from the quantiles as a CDF that is linear
//!   between them, with exponential tails beyond the outermost ones whose scale is the
//!   outermost quantile's distance to the median ([`exceedance`]).
//! - A server at one step: `1 − Π(1 − p_metric)`, metrics taken as independent.
//! - Within a horizon: steps are cut into blocks of `anomaly.outlook_block_minutes`; inside
//!   a block errors are taken as fully dependent (the block's highest probability), blocks
//!   as independent: `1 − Π_blocks(1 − max_block p)`. It can only grow with the horizon,
//!   so "within 8 h" is never below "within 30 min". Block 0 takes the whole horizon as one
//!   block (the highest step alone: a lower bound). The default block was chosen on ASD's
//!   training period (docs/alert-quality.md).
//! - The fleet: `1 − Π(1 − p_server)` (servers independent) and the expected number of
//!   servers, `Σ p_server`.
//!
//! Calibration on held-out data is measured by `nordiqctl evaluate-alerts` (the reliability
//! table in docs/alert-quality.md).

use crate::api::{Environment, FleetOutlook, ServerOutlook};
use crate::config::{Config, Direction, MetricDef};
use crate::forecast::ServerForecast;
use std::collections::BTreeMap;

/// P(value past `crit`) from quantile forecasts `(level, value)` sorted by level.
pub fn exceedance(quantiles: &[(f64, f64)], crit: f64, direction: Direction) -> f64 {
    let points: Vec<(f64, f64)> = quantiles
        .iter()
        .copied()
        .filter(|(_, v)| v.is_finite())
        .collect();
    if points.is_empty() {
        return 0.0;
    }
    // Work on "higher is worse": mirror for metrics where low is bad.
    let (points, crit): (Vec<(f64, f64)>, f64) = match direction {
        Direction::High => (points, crit),
        Direction::Low => (
            points.iter().rev().map(|(q, v)| (1.0 - q, -v)).collect(),
            -crit,
        ),
    };
    let median = points
        .iter()
        .min_by(|a, b| (a.0 - 0.5).abs().total_cmp(&(b.0 - 0.5).abs()))
        .map(|p| p.1)
        .unwrap_or(points[0].1);
    let (first, last) = (points[0], points[points.len() - 1]);
    let cdf = if crit >= last.1 {
        let scale = (last.1 - median).abs().max(1e-9);
        1.0 - (1.0 - last.0) * (-(crit - last.1) / scale).exp()
    } else if crit < first.1 {
        let scale = (median - first.1).abs().max(1e-9);
        first.0 * (-(first.1 - crit) / scale).exp()
    } else {
        let i = points
            .windows(2)
            .position(|w| crit >= w[0].1 && crit < w[1].1)
            .unwrap_or(0);
        let (a, b) = (points[i], points[i + 1]);
        let t = if b.1 > a.1 {
            (crit - a.1) / (b.1 - a.1)
        } else {
            0.0
        };
        a.0 + t * (b.0 - a.0)
    };
    (1.0 - cdf).clamp(0.0, 1.0)
}

/// P(metric `m` past its critical threshold) at each of the first `steps` steps; empty for
/// a metric without thresholds.
pub fn step_probabilities(
    def: &MetricDef,
    quantiles: &[f64],
    forecast: &ServerForecast,
    m: usize,
    steps: usize,
) -> Vec<f64> {
    let Some(risk) = &def.risk else {
        return Vec::new();
    };
    let mut levels: Vec<(f64, f64)> = Vec::with_capacity(quantiles.len());
    (0..steps.min(forecast.horizon))
        .map(|t| {
            levels.clear();
            levels.extend(
                quantiles
                    .iter()
                    .enumerate()
                    .take(forecast.n_quantiles)
                    .map(|(q, level)| (*level, forecast.series(m, q)[t] as f64)),
            );
            exceedance(&levels, risk.crit, risk.direction)
        })
        .collect()
}

/// P(a crossing at some step among the first `n`) from per-step probabilities: steps within
/// a block of `block` steps are taken as fully dependent (the block's highest), blocks as
/// independent. `block` 0: one block, the highest step alone (a lower bound).
pub fn within(step_probabilities: &[f64], n: usize, block: usize) -> f64 {
    let steps = &step_probabilities[..n.min(step_probabilities.len())];
    if block == 0 {
        return steps.iter().copied().fold(0.0, f64::max);
    }
    1.0 - steps
        .chunks(block)
        .map(|b| 1.0 - b.iter().copied().fold(0.0, f64::max))
        .product::<f64>()
}

/// The steps each outlook horizon covers (at least 1, at most the model's horizon).
pub fn horizon_steps(config: &Config) -> Vec<usize> {
    config
        .anomaly
        .outlook_minutes
        .iter()
        .map(|min| {
            ((*min as usize * 60).div_ceil(config.model.step_seconds as usize))
                .clamp(1, config.model.horizon_steps.max(1))
        })
        .collect()
}

/// One server's outlook: per horizon, the probability and the metric most likely to cross.
/// Metrics are taken as independent of each other at each step.
pub fn server_outlook(config: &Config, forecast: &ServerForecast) -> ServerOutlook {
    let steps = horizon_steps(config);
    let longest = steps
        .iter()
        .copied()
        .max()
        .unwrap_or(0)
        .min(forecast.horizon);
    let block = block_steps(config);
    let mut any = vec![0.0f64; longest];
    let mut probability = vec![0.0; steps.len()];
    let mut metric = vec![None; steps.len()];
    let mut best = vec![0.0; steps.len()];
    for (m, def) in config.metrics.iter().enumerate().take(forecast.n_metrics) {
        let p = step_probabilities(def, &config.model.quantiles, forecast, m, longest);
        if p.is_empty() {
            continue;
        }
        for (a, pm) in any.iter_mut().zip(&p) {
            *a = 1.0 - (1.0 - *a) * (1.0 - pm);
        }
        for (h, n) in steps.iter().enumerate() {
            let own = within(&p, *n, block);
            if own > best[h] {
                best[h] = own;
                metric[h] = Some(def.name.clone());
            }
        }
    }
    for (h, n) in steps.iter().enumerate() {
        probability[h] = round4(within(&any, *n, block));
    }
    ServerOutlook {
        probability,
        metric,
    }
}

/// `anomaly.outlook_block_minutes` in steps.
pub fn block_steps(config: &Config) -> usize {
    (config.anomaly.outlook_block_minutes as usize * 60)
        .div_ceil(config.model.step_seconds as usize)
}

fn round4(p: f64) -> f64 {
    (p * 1e4).round() / 1e4
}

/// The `environment` block: every server's outlook and the fleet's.
pub fn environment(config: &Config, servers: BTreeMap<String, ServerOutlook>) -> Environment {
    Environment {
        horizons_minutes: config.anomaly.outlook_minutes.clone(),
        horizon_steps: horizon_steps(config),
        fleet: fleet(config, servers.values()),
        servers,
    }
}

/// The fleet's outlook per horizon: servers taken as independent.
pub fn fleet<'a>(
    config: &Config,
    servers: impl Iterator<Item = &'a ServerOutlook> + Clone,
) -> Vec<FleetOutlook> {
    (0..config.anomaly.outlook_minutes.len())
        .map(|h| {
            let ps = servers.clone().map(|s| s.probability[h]);
            FleetOutlook {
                probability_any: round4(1.0 - ps.clone().map(|p| 1.0 - p).product::<f64>()),
                expected_servers: round4(ps.sum()),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const Q: [f64; 3] = [0.1, 0.5, 0.9];

    fn qs(values: [f64; 3]) -> Vec<(f64, f64)> {
        Q.iter().copied().zip(values).collect()
    }

    #[test]
    fn exceedance_follows_the_quantiles() {
        let band = qs([40.0, 50.0, 60.0]);
        // At a quantile the exceedance is one minus its level.
        assert!((exceedance(&band, 50.0, Direction::High) - 0.5).abs() < 1e-9);
        assert!((exceedance(&band, 60.0, Direction::High) - 0.1).abs() < 1e-9);
        assert!((exceedance(&band, 40.0, Direction::High) - 0.9).abs() < 1e-9);
        // Linear in between, decaying beyond, monotone throughout.
        assert!((exceedance(&band, 55.0, Direction::High) - 0.3).abs() < 1e-9);
        let far = exceedance(&band, 95.0, Direction::High);
        assert!(far > 0.0 && far < 0.01, "{far}");
        let mut last = 1.0;
        for crit in (0..120).map(|c| c as f64) {
            let p = exceedance(&band, crit, Direction::High);
            assert!(p <= last + 1e-12, "monotone at {crit}");
            last = p;
        }
        // Low is bad: crossing below 45 when the median is 50.
        let low = exceedance(&band, 45.0, Direction::Low);
        assert!((low - 0.3).abs() < 1e-9, "{low}");
        assert_eq!(exceedance(&[], 10.0, Direction::High), 0.0);
    }

    /// cpu_user_pct (crit 95) with p50 `p50[t]`, p10/p90 at ±5.
    fn forecast(config: &Config, p50: &[f32]) -> ServerForecast {
        let mut f = ServerForecast::empty("test", config.metrics.len(), 3, p50.len());
        for m in 0..config.metrics.len() {
            for q in 0..3 {
                let series = f.series_mut(m, q);
                for (t, v) in series.iter_mut().enumerate() {
                    *v = match m {
                        0 => p50[t] + 5.0 * (q as f32 - 1.0),
                        3 => 80.0, // idle high: healthy
                        _ => 1.0,
                    };
                }
            }
        }
        f
    }

    #[test]
    fn within_a_horizon_never_falls_as_the_horizon_grows() {
        let mut c = Config::default();
        c.model.horizon_steps = 96;
        // A spike at 20 minutes that is gone by 1 hour: "within 8 h" keeps it.
        let mut p50 = vec![50.0f32; 96];
        p50[3] = 95.0;
        let o = server_outlook(&c, &forecast(&c, &p50));
        assert_eq!(horizon_steps(&c), vec![6, 96]);
        assert!((o.probability[0] - 0.5).abs() < 1e-3, "{:?}", o.probability);
        assert!(o.probability[1] >= o.probability[0]);
        assert!(
            o.probability[1] < 0.51,
            "the other blocks add next to nothing"
        );
        assert_eq!(o.metric[0].as_deref(), Some("cpu_user_pct"));
        // A breach after 2 h: unlikely within 30 min, likely within 8 h.
        let mut p50 = vec![50.0f32; 96];
        p50[30] = 100.0;
        let o = server_outlook(&c, &forecast(&c, &p50));
        assert!(o.probability[0] < 0.01, "{:?}", o.probability);
        assert!(o.probability[1] > 0.8, "{:?}", o.probability);
        // Nothing near a threshold: nothing named.
        let calm = server_outlook(&c, &forecast(&c, &[10.0f32; 96]));
        assert!(calm.probability.iter().all(|p| *p < 1e-4), "{calm:?}");
    }

    #[test]
    fn blocks_are_dependent_inside_and_independent_between() {
        let p = [0.5, 0.5, 0.1, 0.1];
        assert_eq!(within(&p, 4, 0), 0.5);
        assert!((within(&p, 4, 2) - 0.55).abs() < 1e-12);
        assert!((within(&p, 4, 1) - (1.0 - 0.25 * 0.81)).abs() < 1e-12);
        assert_eq!(within(&p, 2, 2), 0.5, "only the first n steps");
        assert_eq!(within(&[], 4, 2), 0.0);
    }

    #[test]
    fn the_fleet_combines_servers_as_independent() {
        let c = Config::default();
        let servers = BTreeMap::from([
            (
                "a".to_string(),
                ServerOutlook {
                    probability: vec![0.5, 0.5],
                    metric: vec![None, None],
                },
            ),
            (
                "b".to_string(),
                ServerOutlook {
                    probability: vec![0.2, 0.6],
                    metric: vec![None, None],
                },
            ),
        ]);
        let e = environment(&c, servers);
        assert_eq!(e.horizons_minutes, vec![30, 480]);
        assert!((e.fleet[0].probability_any - 0.6).abs() < 1e-9);
        assert!((e.fleet[1].probability_any - 0.8).abs() < 1e-9);
        assert!((e.fleet[1].expected_servers - 1.1).abs() < 1e-9);
        let empty = environment(&c, BTreeMap::new());
        assert_eq!(empty.fleet[0].probability_any, 0.0);
    }
}
