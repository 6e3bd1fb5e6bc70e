//! Readings → the ingest API's NDJSON records, keeping only the metrics the running
//! catalog knows (a custom catalog is not flooded with rejections).

use std::fmt::Write as _;

/// A catalog metric's name for [`Reading::values`]: leaked once, when a source starts
/// (a handful of short strings for the process's life).
pub fn static_name(name: &str) -> &'static str {
    Box::leak(name.to_string().into_boxed_str())
}

/// One server's readings at one instant.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    pub timestamp_ms: i64,
    pub server: String,
    /// Empty: nordiq-inference infers it from the name.
    pub profile: String,
    pub values: Vec<(&'static str, f64)>,
}

/// Appends `reading` as one NDJSON line; non-finite values and metrics `keep` refuses are
/// left out.
pub fn push_ndjson(out: &mut String, reading: &Reading, keep: &dyn Fn(&str) -> bool) {
    let quoted = |s: &str| serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into());
    let _ = write!(
        out,
        "{{\"timestamp\":{},\"server_name\":{}",
        reading.timestamp_ms,
        quoted(&reading.server)
    );
    if !reading.profile.is_empty() {
        let _ = write!(out, ",\"profile\":{}", quoted(&reading.profile));
    }
    for (name, value) in &reading.values {
        if value.is_finite() && keep(name) {
            let _ = write!(out, ",\"{name}\":{}", round(*value));
        }
    }
    out.push_str("}\n");
}

/// Three decimals are plenty for percentages, MB/s and counts, and keep batches small.
fn round(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_json_with_only_kept_finite_metrics() {
        let reading = Reading {
            timestamp_ms: 1_700_000_000_000,
            server: "odd \"name\"".into(),
            profile: "web_api".into(),
            values: vec![
                ("cpu_user_pct", 12.34567),
                ("custom", 1.0),
                ("mem_used_pct", f64::NAN),
            ],
        };
        let mut out = String::new();
        push_ndjson(&mut out, &reading, &|m| m != "custom");
        assert!(out.ends_with('\n'));
        let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!(v["server_name"], "odd \"name\"");
        assert_eq!(v["profile"], "web_api");
        assert_eq!(v["cpu_user_pct"], 12.346);
        assert!(v.get("custom").is_none() && v.get("mem_used_pct").is_none());
    }
}
