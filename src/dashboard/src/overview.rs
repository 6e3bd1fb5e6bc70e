//! The Overview's numbers, computed from the daemon's fleet answer: level counts, the risk
//! distribution, the anomalous servers, and the incident outlook (the daemon's
//! `environment` block: the probability that a metric crosses its critical threshold within
//! each horizon). Pure: unit-tested without a socket.

use nordiq_core::api::{LevelCounts, PredictionsCurrent};
use serde::Serialize;

/// Bins of the risk histogram (0–10, 10–20, … 90–100).
pub const RISK_BINS: usize = 10;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct HorizonOutlook {
    pub horizon_minutes: u32,
    /// Probability that at least one server has a metric past its critical threshold
    /// within this horizon (servers taken as independent).
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
    /// Servers anomalous now, highest score first (at most [`TOP`]), and how many in all.
    pub anomalous: Vec<AnomalousServer>,
    pub anomalous_total: usize,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AnomalousServer {
    pub server: String,
    pub score: f64,
    pub metric: Option<String>,
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
    pub anomaly_score: f64,
}

pub fn compute(p: &PredictionsCurrent) -> Overview {
    let mut histogram = [0usize; RISK_BINS];
    let mut methods: std::collections::BTreeMap<String, usize> = Default::default();
    let mut risk_sum = 0.0;
    for s in p.servers.values() {
        let bin = ((s.risk / 100.0 * RISK_BINS as f64) as usize).min(RISK_BINS - 1);
        histogram[bin] += 1;
        risk_sum += s.risk;
        *methods.entry(s.method.clone()).or_default() += 1;
    }
    let env = &p.environment;
    let outlook = env
        .horizons_minutes
        .iter()
        .enumerate()
        .map(|(h, &minutes)| {
            let mut per_server: Vec<(String, f64)> = env
                .servers
                .iter()
                .map(|(name, o)| (name.clone(), o.probability.get(h).copied().unwrap_or(0.0)))
                .collect();
            per_server.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            per_server.truncate(10);
            let fleet = env.fleet.get(h).cloned().unwrap_or_default();
            HorizonOutlook {
                horizon_minutes: minutes,
                probability_any: fleet.probability_any,
                expected_servers: fleet.expected_servers,
                most_likely: per_server,
            }
        })
        .collect();
    let mut anomalous: Vec<AnomalousServer> = p
        .servers
        .iter()
        .filter(|(_, s)| s.anomaly.anomalous)
        .map(|(name, s)| AnomalousServer {
            server: name.clone(),
            score: s.anomaly.score,
            metric: s.anomaly.metric.clone(),
        })
        .collect();
    anomalous.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.server.cmp(&b.server)));
    let anomalous_total = anomalous.len();
    anomalous.truncate(TOP);
    let mut top: Vec<TopServer> = p
        .servers
        .iter()
        .map(|(name, s)| TopServer {
            server: name.clone(),
            profile: s.profile.clone(),
            risk: s.risk,
            level: s.level,
            method: s.method.clone(),
            anomaly_score: s.anomaly.score,
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
        anomalous,
        anomalous_total,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_overview_reads_the_daemons_outlook_and_anomalies() {
        let metric = |risk: f64| {
            serde_json::json!({ "current": 10.0, "risk": risk, "level": "healthy", "trend": "flat",
                                "forecast": { "p10": [5.0, 5.0], "p50": [10.0, 10.0], "p90": [15.0, 15.0] } })
        };
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
                          "anomaly": { "score": 3.2, "anomalous": true, "metric": "cpu_user_pct", "judged_steps": 9 },
                          "metrics": { "cpu_user_pct": metric(0.0) } },
                "hot": { "profile": "generic", "risk": 95.0, "level": "critical", "method": "seasonal_median",
                         "last_sample": "2026-11-28T00:00:00Z",
                         "anomaly": { "score": 0.1, "anomalous": false, "metric": null, "judged_steps": 9 },
                         "metrics": { "cpu_user_pct": metric(90.0) } }
            },
            "environment": {
                "horizons_minutes": [30, 480], "horizon_steps": [6, 96],
                "fleet": [ { "probability_any": 0.7, "expected_servers": 0.75 },
                           { "probability_any": 0.9, "expected_servers": 1.2 } ],
                "servers": {
                    "calm": { "probability": [0.05, 0.3], "metric": [null, "cpu_user_pct"] },
                    "hot": { "probability": [0.7, 0.9], "metric": ["cpu_user_pct", "cpu_user_pct"] }
                }
            }
        });
        let p: PredictionsCurrent = serde_json::from_value(body).unwrap();
        let o = compute(&p);
        assert_eq!(o.servers, 2);
        assert_eq!(o.risk_histogram[0], 1);
        assert_eq!(o.risk_histogram[9], 1);
        assert_eq!(o.mean_risk, 50.0);
        assert_eq!(o.outlook.len(), 2);
        let (soon, later) = (&o.outlook[0], &o.outlook[1]);
        assert_eq!((soon.horizon_minutes, later.horizon_minutes), (30, 480));
        assert_eq!((soon.probability_any, later.probability_any), (0.7, 0.9));
        assert_eq!(later.expected_servers, 1.2);
        assert_eq!(soon.most_likely[0], ("hot".to_string(), 0.7));
        assert_eq!(later.most_likely[1], ("calm".to_string(), 0.3));
        assert_eq!(
            o.methods,
            vec![("seasonal_median".to_string(), 1), ("tft".to_string(), 1)]
        );
        let top: Vec<&str> = o.top.iter().map(|t| t.server.as_str()).collect();
        assert_eq!(top, ["hot", "calm"]);
        assert_eq!(o.top[0].method, "seasonal_median");
        assert_eq!(o.anomalous_total, 1);
        assert_eq!(o.anomalous[0].server, "calm");
        assert_eq!(o.anomalous[0].metric.as_deref(), Some("cpu_user_pct"));
        assert_eq!(o.top[1].anomaly_score, 3.2);
    }
}
