//! The metric catalog: which metrics exist, their valid range, how they aggregate to the
//! model step, and the thresholds risk scoring uses. The default is the original product's
//! 14 metrics; another catalog is a config change.

use super::invalid::Invalid;
use super::is_identifier;
use serde::{Deserialize, Serialize};

/// How raw samples inside one model step collapse into the step's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Aggregate {
    Mean,
    Max,
    Last,
}

/// Which side of the range is bad.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Higher values are worse (CPU, memory, disk …).
    #[default]
    High,
    /// Lower values are worse (idle CPU, free space …).
    Low,
}

/// Thresholds for one metric's risk. A value at `ok` or better scores 0, at `warn` 40
/// (the start of the `warning` level), at `crit` 70 (the start of `critical`) and at the
/// worst end of the metric's range 100; linear in between.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RiskThresholds {
    pub ok: f64,
    pub warn: f64,
    pub crit: f64,
    #[serde(default)]
    pub direction: Direction,
    /// Scales this metric's contribution (0..=1); 1 by default.
    #[serde(default = "one")]
    pub weight: f64,
}

fn one() -> f64 {
    1.0
}

/// One catalog entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricDef {
    pub name: String,
    #[serde(default)]
    pub unit: String,
    pub min: f64,
    pub max: f64,
    #[serde(default = "default_aggregate")]
    pub aggregate: Aggregate,
    /// Absent: the metric is forecast but never contributes to risk.
    #[serde(default)]
    pub risk: Option<RiskThresholds>,
}

fn default_aggregate() -> Aggregate {
    Aggregate::Mean
}

fn metric(
    name: &str,
    unit: &str,
    (min, max): (f64, f64),
    aggregate: Aggregate,
    risk: Option<(f64, f64, f64, Direction)>,
) -> MetricDef {
    MetricDef {
        name: name.to_string(),
        unit: unit.to_string(),
        min,
        max,
        aggregate,
        risk: risk.map(|(ok, warn, crit, direction)| RiskThresholds {
            ok,
            warn,
            crit,
            direction,
            weight: 1.0,
        }),
    }
}

/// The original product's 14 metrics.
pub fn default_catalog() -> Vec<MetricDef> {
    use Aggregate::*;
    use Direction::*;
    let pct = (0.0, 100.0);
    vec![
        metric(
            "cpu_user_pct",
            "%",
            pct,
            Mean,
            Some((60.0, 85.0, 95.0, High)),
        ),
        metric(
            "cpu_sys_pct",
            "%",
            pct,
            Mean,
            Some((20.0, 35.0, 50.0, High)),
        ),
        metric(
            "cpu_iowait_pct",
            "%",
            pct,
            Mean,
            Some((10.0, 25.0, 40.0, High)),
        ),
        metric("cpu_idle_pct", "%", pct, Mean, Some((30.0, 10.0, 3.0, Low))),
        metric(
            "java_cpu_pct",
            "%",
            pct,
            Mean,
            Some((70.0, 90.0, 98.0, High)),
        ),
        metric(
            "mem_used_pct",
            "%",
            pct,
            Mean,
            Some((75.0, 90.0, 97.0, High)),
        ),
        metric(
            "swap_used_pct",
            "%",
            pct,
            Max,
            Some((10.0, 30.0, 60.0, High)),
        ),
        metric(
            "disk_usage_pct",
            "%",
            pct,
            Last,
            Some((75.0, 88.0, 95.0, High)),
        ),
        metric("net_in_mb_s", "MB/s", (0.0, 100_000.0), Mean, None),
        metric("net_out_mb_s", "MB/s", (0.0, 100_000.0), Mean, None),
        metric(
            "back_close_wait",
            "count",
            (0.0, 1_000_000.0),
            Max,
            Some((50.0, 200.0, 1000.0, High)),
        ),
        metric(
            "front_close_wait",
            "count",
            (0.0, 1_000_000.0),
            Max,
            Some((50.0, 200.0, 1000.0, High)),
        ),
        metric(
            "load_average",
            "load",
            (0.0, 10_000.0),
            Mean,
            Some((8.0, 16.0, 32.0, High)),
        ),
        metric("uptime_days", "days", (0.0, 100_000.0), Last, None),
    ]
}

/// The catalog: at least one metric, unique non-reserved names, sane ranges and risk
/// thresholds that get worse in their direction.
pub(crate) fn validate_catalog(metrics: &[MetricDef]) -> Result<(), Invalid> {
    if metrics.is_empty() {
        return Err(Invalid::new(
            "metrics",
            "the catalog needs at least one metric",
        ));
    }
    for (i, metric) in metrics.iter().enumerate() {
        let key = |field: &str| format!("metrics[{i}].{field}");
        if !is_identifier(&metric.name)
            || matches!(
                metric.name.as_str(),
                "timestamp" | "server_name" | "profile"
            )
        {
            return Err(Invalid::new(
                key("name"),
                format!(
                    "`{}` must be a non-reserved name of letters, digits and _",
                    metric.name
                ),
            ));
        }
        if metrics[..i].iter().any(|m| m.name == metric.name) {
            return Err(Invalid::new(
                key("name"),
                format!("`{}` appears twice", metric.name),
            ));
        }
        if !(metric.min.is_finite() && metric.max.is_finite() && metric.min < metric.max) {
            return Err(Invalid::new(
                key("max"),
                "min and max must be finite with min < max",
            ));
        }
        if let Some(r) = &metric.risk {
            let ordered = match r.direction {
                Direction::High => r.ok < r.warn && r.warn < r.crit,
                Direction::Low => r.ok > r.warn && r.warn > r.crit,
            };
            let inside = [r.ok, r.warn, r.crit]
                .iter()
                .all(|v| (metric.min..=metric.max).contains(v));
            if !ordered || !inside {
                return Err(Invalid::new(
                    key("risk"),
                    "ok, warn, crit must lie in [min, max] and get worse in the risk direction",
                ));
            }
            if !(0.0..=1.0).contains(&r.weight) {
                return Err(Invalid::new(key("risk"), "weight must be in [0, 1]"));
            }
        }
    }
    Ok(())
}
