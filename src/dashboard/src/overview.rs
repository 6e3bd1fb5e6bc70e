//! The Overview's numbers, computed from the daemon's fleet answer and the catalog: level
//! counts, the risk distribution, and the probability of an incident (a metric crossing
//! its critical threshold) within each summary horizon. Pure: unit-tested without a
//! socket.

use nordiq_core::api::{LevelCounts, PredictionsCurrent};
use nordiq_core::config::{Direction, MetricDef};
use serde::Serialize;

/// Bins of the risk histogram (0–10, 10–20, … 90–100).
pub const RISK_BINS: usize = 10;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct HorizonOutlook {
    pub horizon_minutes: u32,
    /// Probability that at least one server has a metric past its critical threshold at
    /// this horizon (servers taken as independent).
    pub probability_any: f64,
    /// Expected number of servers past a critical threshold.
    pub expected_servers: f64,
    /// The servers most likely to be, highest first (at most 10).
    pub most_likely: Vec<(String, f64)>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Overview {
    pub model_id: String,
    pub generated_at: String,
    pub servers: usize,
    pub levels: LevelCounts,
    pub mean_risk: f64,
    pub risk_histogram: [usize; RISK_BINS],
    pub outlook: Vec<HorizonOutlook>,
    /// Servers forecast by each method (`tft`, `seasonal_median`, …).
    pub methods: Vec<(String, usize)>,
    /// The highest-risk servers (at most [`TOP`]), highest first.
    pub top: Vec<TopServer>,
}

/// Servers in the Overview's top list.
pub const TOP: usize = 10;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TopServer {
    pub server: String,
    pub profile: String,
    pub risk: f64,
    pub level: nordiq_core::risk::Level,
    pub method: String,
}

/// P(value past `crit`) from quantile forecasts `(level, value)` sorted by level: the
/// CDF is linear between the quantiles, with exponential tails beyond the outermost ones
/// (their scale is the distance from the outermost quantile to the median).
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

fn quantile_level(label: &str) -> Option<f64> {
    label
        .strip_prefix('p')
        .and_then(|n| n.parse::<f64>().ok())
        .map(|p| p / 100.0)
}

pub fn compute(p: &PredictionsCurrent, catalog: &[MetricDef]) -> Overview {
    let mut histogram = [0usize; RISK_BINS];
    let mut methods: std::collections::BTreeMap<String, usize> = Default::default();
    let mut risk_sum = 0.0;
    for s in p.servers.values() {
        let bin = ((s.risk / 100.0 * RISK_BINS as f64) as usize).min(RISK_BINS - 1);
        histogram[bin] += 1;
        risk_sum += s.risk;
        *methods.entry(s.method.clone()).or_default() += 1;
    }
    let outlook = p
        .horizons_minutes
        .iter()
        .enumerate()
        .map(|(h, &minutes)| {
            let mut per_server: Vec<(String, f64)> = p
                .servers
                .iter()
                .map(|(name, s)| {
                    let worst = catalog
                        .iter()
                        .filter_map(|def| {
                            let risk = def.risk.as_ref()?;
                            let m = s.metrics.get(&def.name)?;
                            let mut qs: Vec<(f64, f64)> = m
                                .forecast
                                .iter()
                                .filter_map(|(label, values)| {
                                    let v = values.get(h).copied().flatten()?;
                                    Some((quantile_level(label)?, v as f64))
                                })
                                .collect();
                            qs.sort_by(|a, b| a.0.total_cmp(&b.0));
                            Some(exceedance(&qs, risk.crit, risk.direction))
                        })
                        .fold(0.0f64, f64::max);
                    (name.clone(), worst)
                })
                .collect();
            let probability_any = 1.0 - per_server.iter().map(|(_, q)| 1.0 - q).product::<f64>();
            let expected_servers = per_server.iter().map(|(_, q)| q).sum();
            per_server.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            per_server.truncate(10);
            HorizonOutlook {
                horizon_minutes: minutes,
                probability_any,
                expected_servers,
                most_likely: per_server,
            }
        })
        .collect();
    let mut top: Vec<TopServer> = p
        .servers
        .iter()
        .map(|(name, s)| TopServer {
            server: name.clone(),
            profile: s.profile.clone(),
            risk: s.risk,
            level: s.level,
            method: s.method.clone(),
        })
        .collect();
    top.sort_by(|a, b| b.risk.total_cmp(&a.risk).then(a.server.cmp(&b.server)));
    top.truncate(TOP);
    Overview {
        model_id: p.model_id.clone(),
        generated_at: p.generated_at.clone(),
        servers: p.servers.len(),
        levels: p.fleet.levels.clone(),
        mean_risk: if p.servers.is_empty() {
            0.0
        } else {
            risk_sum / p.servers.len() as f64
        },
        risk_histogram: histogram,
        outlook,
        methods: methods.into_iter().collect(),
        top,
    }
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

    #[test]
    fn fleet_outlook_combines_servers() {
        let catalog = nordiq_core::config::Config::default().metrics;
        let body = serde_json::json!({
            "model_id": "baseline:seasonal_median",
            "generated_at": "2026-11-28T00:00:00Z",
            "step_seconds": 300,
            "horizons_minutes": [30, 480],
            "quantiles": [0.1, 0.5, 0.9],
            "fleet": { "servers": 2, "levels": { "healthy": 1, "watch": 0, "warning": 0, "critical": 1 },
                       "mean_risk": 0.0, "top_risks": [] },
            "servers": {
                "calm": { "profile": "generic", "risk": 5.0, "level": "healthy", "method": "tft",
                          "last_sample": "2026-11-28T00:00:00Z",
                          "metrics": { "cpu_user_pct": { "current": 10.0, "risk": 0.0, "level": "healthy", "trend": "flat",
                                        "forecast": { "p10": [5.0, 5.0], "p50": [10.0, 10.0], "p90": [15.0, 15.0] } } } },
                "hot": { "profile": "generic", "risk": 95.0, "level": "critical", "method": "seasonal_median",
                         "last_sample": "2026-11-28T00:00:00Z",
                         "metrics": { "cpu_user_pct": { "current": 90.0, "risk": 90.0, "level": "critical", "trend": "up",
                                       "forecast": { "p10": [85.0, 60.0], "p50": [97.0, 80.0], "p90": [99.5, 97.0] } } } }
            }
        });
        let p: PredictionsCurrent = serde_json::from_value(body).unwrap();
        let o = compute(&p, &catalog);
        assert_eq!(o.servers, 2);
        assert_eq!(o.risk_histogram[0], 1);
        assert_eq!(o.risk_histogram[9], 1);
        assert_eq!(o.mean_risk, 50.0);
        assert_eq!(o.outlook.len(), 2);
        let soon = &o.outlook[0];
        assert_eq!(soon.horizon_minutes, 30);
        assert_eq!(soon.most_likely[0].0, "hot");
        assert!(soon.most_likely[0].1 > 0.5, "{soon:?}");
        assert!(soon.most_likely[1].1 < 0.01, "{soon:?}");
        assert!(soon.probability_any >= soon.most_likely[0].1);
        assert!(
            (soon.expected_servers - soon.most_likely.iter().map(|s| s.1).sum::<f64>()).abs()
                < 1e-9
        );
        assert!(
            o.outlook[1].most_likely[0].1 < soon.most_likely[0].1,
            "lower later"
        );
        assert_eq!(
            o.methods,
            vec![("seasonal_median".to_string(), 1), ("tft".to_string(), 1)]
        );
        let top: Vec<&str> = o.top.iter().map(|t| t.server.as_str()).collect();
        assert_eq!(top, ["hot", "calm"]);
        assert_eq!(o.top[0].method, "seasonal_median");
    }
}
