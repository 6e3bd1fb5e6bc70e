//! Pulling from a Prometheus server's HTTP API (`/api/v1/query_range`): one PromQL query
//! per catalog metric, its series told apart by a label (`instance` by default), merged
//! into one reading per server and instant.

use crate::record::Reading;
use std::collections::BTreeMap;

/// The default queries: node_exporter's series as the catalog's metrics, per instance.
/// `close_wait` and `java_cpu_pct` have no node_exporter series and no default.
pub fn default_queries() -> BTreeMap<String, String> {
    let cpu = |modes: &str| {
        format!("100 * sum by (instance) (rate(node_cpu_seconds_total{{mode=~\"{modes}\"}}[2m])) / sum by (instance) (rate(node_cpu_seconds_total[2m]))")
    };
    let fs = "mountpoint=\"/\"";
    [
        ("cpu_user_pct", cpu("user|nice")),
        ("cpu_sys_pct", cpu("system|irq|softirq")),
        ("cpu_iowait_pct", cpu("iowait")),
        ("cpu_idle_pct", cpu("idle")),
        ("mem_used_pct", "100 * (1 - node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes)".into()),
        ("swap_used_pct", "100 * (node_memory_SwapTotal_bytes - node_memory_SwapFree_bytes) / clamp_min(node_memory_SwapTotal_bytes, 1)".into()),
        ("disk_usage_pct", format!("100 * (node_filesystem_size_bytes{{{fs}}} - node_filesystem_free_bytes{{{fs}}}) / (node_filesystem_size_bytes{{{fs}}} - node_filesystem_free_bytes{{{fs}}} + node_filesystem_avail_bytes{{{fs}}})")),
        ("net_in_mb_s", "sum by (instance) (rate(node_network_receive_bytes_total{device!=\"lo\"}[2m])) / 1e6".into()),
        ("net_out_mb_s", "sum by (instance) (rate(node_network_transmit_bytes_total{device!=\"lo\"}[2m])) / 1e6".into()),
        ("load_average", "node_load1".into()),
        ("uptime_days", "(node_time_seconds - node_boot_time_seconds) / 86400".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// (server, unix ms, value)
pub type Point = (String, i64, f64);

/// Why an answer could not be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QueryError {
    #[error("Prometheus answered an error: {0}")]
    Prometheus(String),
    #[error("unexpected answer: {0}")]
    Shape(String),
}

/// (server, unix ms, value) points of one `query_range` answer (a matrix).
pub fn parse_matrix(
    body: &[u8],
    server_label: &str,
    strip_port: bool,
) -> Result<Vec<Point>, QueryError> {
    let v: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| QueryError::Shape(e.to_string()))?;
    if v["status"] != "success" {
        return Err(QueryError::Prometheus(format!(
            "{}: {}",
            v["errorType"].as_str().unwrap_or("error"),
            v["error"].as_str().unwrap_or("(no message)")
        )));
    }
    if v["data"]["resultType"] != "matrix" {
        return Err(QueryError::Shape(format!(
            "resultType {} (a range query gives a matrix)",
            v["data"]["resultType"]
        )));
    }
    let mut points = Vec::new();
    for series in v["data"]["result"].as_array().into_iter().flatten() {
        let Some(label) = series["metric"][server_label].as_str() else {
            continue; // a series without the server label cannot be placed
        };
        let server = if strip_port {
            label.rsplit_once(':').map_or(label, |(host, port)| {
                if port.bytes().all(|b| b.is_ascii_digit()) {
                    host
                } else {
                    label
                }
            })
        } else {
            label
        };
        for pair in series["values"].as_array().into_iter().flatten() {
            let (Some(t), Some(x)) = (pair[0].as_f64(), pair[1].as_str()) else {
                return Err(QueryError::Shape(format!("value {pair}")));
            };
            let Ok(x) = x.parse::<f64>() else { continue };
            if x.is_finite() {
                points.push((server.to_string(), (t * 1000.0).round() as i64, x));
            }
        }
    }
    Ok(points)
}

/// Merges per-metric points into readings, one per (server, instant), oldest first.
pub fn merge(per_metric: Vec<(&'static str, Vec<Point>)>) -> Vec<Reading> {
    let mut by_key: BTreeMap<(i64, String), Vec<(&'static str, f64)>> = BTreeMap::new();
    for (metric, points) in per_metric {
        for (server, t, v) in points {
            by_key.entry((t, server)).or_default().push((metric, v));
        }
    }
    by_key
        .into_iter()
        .map(|((t, server), values)| Reading {
            timestamp_ms: t,
            server,
            profile: String::new(),
            values,
        })
        .collect()
}

/// The next range to ask for: from one step after `mark_ms` to the last whole step
/// before `now_ms − lag_ms`, at most `max_steps` long; None when nothing is due.
pub fn next_range(
    mark_ms: i64,
    now_ms: i64,
    lag_ms: i64,
    step_ms: i64,
    max_steps: i64,
) -> Option<(i64, i64)> {
    let start = (mark_ms + step_ms).div_euclid(step_ms) * step_ms;
    let end = (now_ms - lag_ms).div_euclid(step_ms) * step_ms;
    (end >= start).then(|| (start, end.min(start + (max_steps - 1) * step_ms)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_matrix_becomes_points_per_server() {
        let body = br#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{"instance":"10.0.0.5:9100","job":"node"},"values":[[1700000000,"1.5"],[1700000060.5,"NaN"],[1700000120,"2"]]},
            {"metric":{"job":"other"},"values":[[1700000000,"9"]]},
            {"metric":{"instance":"db:x"},"values":[[1700000000,"3"]]}]}}"#;
        let points = parse_matrix(body, "instance", true).unwrap();
        assert_eq!(
            points,
            vec![
                ("10.0.0.5".to_string(), 1_700_000_000_000, 1.5),
                ("10.0.0.5".to_string(), 1_700_000_120_000, 2.0),
                ("db:x".to_string(), 1_700_000_000_000, 3.0),
            ]
        );
        let error = br#"{"status":"error","errorType":"bad_data","error":"parse error at char 3"}"#;
        assert!(
            matches!(parse_matrix(error, "instance", true), Err(QueryError::Prometheus(m)) if m.contains("parse error"))
        );
    }

    #[test]
    fn points_merge_into_readings_and_ranges_advance_without_gaps_or_overlap() {
        let readings = merge(vec![
            (
                "load_average",
                vec![("a".into(), 2000, 1.0), ("a".into(), 1000, 0.5)],
            ),
            ("mem_used_pct", vec![("a".into(), 1000, 40.0)]),
        ]);
        assert_eq!(readings.len(), 2);
        assert_eq!(readings[0].timestamp_ms, 1000);
        assert_eq!(
            readings[0].values,
            vec![("load_average", 0.5), ("mem_used_pct", 40.0)]
        );
        // Mark at 120 s, step 60 s, lag 60 s, now 400 s: 180 … 300.
        assert_eq!(
            next_range(120_000, 400_000, 60_000, 60_000, 1000),
            Some((180_000, 300_000))
        );
        // The next range starts one step after the last one ended.
        assert_eq!(next_range(300_000, 410_000, 60_000, 60_000, 1000), None);
        assert_eq!(
            next_range(300_000, 480_000, 60_000, 60_000, 1000),
            Some((360_000, 420_000))
        );
        assert_eq!(
            next_range(0, 10_000_000, 0, 60_000, 10),
            Some((60_000, 600_000))
        );
    }
}
