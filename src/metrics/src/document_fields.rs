//! Documents (Elasticsearch `_source`, MongoDB documents as JSON) → readings, by a table
//! of catalog metric → field path and scale.

use crate::record::Reading;
use crate::source_error::SourceError;
use nordiq_core::config::FieldMap;
use std::collections::BTreeMap;

/// The value at a dotted path. Objects may be nested (`{"system":{"cpu":…}}`), flat
/// (`{"system.cpu.user.pct": …}`) or a mix of both, as Elasticsearch documents are.
pub fn lookup<'a>(v: &'a serde_json::Value, path: &str) -> Option<&'a serde_json::Value> {
    let obj = v.as_object()?;
    if let Some(found) = obj.get(path) {
        return Some(found);
    }
    for (i, _) in path.match_indices('.') {
        if let Some(inner) = obj.get(&path[..i]) {
            if let Some(found) = lookup(inner, &path[i + 1..]) {
                return Some(found);
            }
        }
    }
    None
}

/// A timestamp field: RFC 3339 text, unix milliseconds, or MongoDB's extended JSON date
/// (`{"$date": …}`).
pub fn timestamp_ms(v: &serde_json::Value) -> Option<i64> {
    match v {
        serde_json::Value::String(s) => nordiq_core::timefmt::parse_rfc3339_ms(s).ok(),
        serde_json::Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        serde_json::Value::Object(o) => o.get("$date").and_then(timestamp_ms),
        _ => None,
    }
}

/// [`field_table`] for the running catalog; an error naming `key` when nothing maps.
pub fn catalog_fields(
    config: &nordiq_core::config::Config,
    configured: &BTreeMap<String, FieldMap>,
    key: &str,
) -> Result<Vec<(&'static str, FieldMap)>, SourceError> {
    let catalog: Vec<String> = config.metrics.iter().map(|m| m.name.clone()).collect();
    let fields = field_table(&catalog, configured);
    if fields.is_empty() {
        return Err(SourceError::Setup(format!(
            "no field maps onto the catalog ({key})"
        )));
    }
    Ok(fields)
}

/// Catalog metrics with their fields: the configured table, or the metric's own name.
pub fn field_table(
    catalog: &[String],
    configured: &BTreeMap<String, FieldMap>,
) -> Vec<(&'static str, FieldMap)> {
    catalog
        .iter()
        .filter_map(|m| {
            let map = if configured.is_empty() {
                Some(FieldMap {
                    field: m.clone(),
                    scale: 1.0,
                })
            } else {
                configured.get(m).cloned()
            };
            map.map(|f| (crate::record::static_name(m), f))
        })
        .collect()
}

/// A reading from one document; None without a server name or any mapped value.
pub fn reading(
    doc: &serde_json::Value,
    ts_ms: i64,
    server_field: &str,
    fields: &[(&'static str, FieldMap)],
) -> Option<Reading> {
    let server = lookup(doc, server_field)?.as_str()?.to_string();
    let values: Vec<(&'static str, f64)> = fields
        .iter()
        .filter_map(|(metric, f)| {
            lookup(doc, &f.field)
                .and_then(serde_json::Value::as_f64)
                .map(|v| (*metric, v * f.scale))
        })
        .collect();
    (!values.is_empty()).then_some(Reading {
        timestamp_ms: ts_ms,
        server,
        profile: String::new(),
        values,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nested_flat_and_mixed_paths_are_found() {
        let doc = json!({"host": {"name": "web01"}, "system.cpu": {"user": {"pct": 0.25}}, "system.load.1": 0.5});
        assert_eq!(lookup(&doc, "host.name"), Some(&json!("web01")));
        assert_eq!(lookup(&doc, "system.cpu.user.pct"), Some(&json!(0.25)));
        assert_eq!(lookup(&doc, "system.load.1"), Some(&json!(0.5)));
        assert_eq!(lookup(&doc, "system.memory"), None);
    }

    #[test]
    fn documents_become_readings_by_the_table() {
        let fields = vec![
            (
                "cpu_user_pct",
                FieldMap {
                    field: "system.cpu.user.pct".into(),
                    scale: 100.0,
                },
            ),
            (
                "load_average",
                FieldMap {
                    field: "system.load.1".into(),
                    scale: 1.0,
                },
            ),
        ];
        let doc = json!({"host": {"name": "web01"}, "system": {"cpu": {"user": {"pct": 0.25}}}});
        let r = reading(&doc, 5, "host.name", &fields).unwrap();
        assert_eq!(
            (r.server.as_str(), r.values.clone()),
            ("web01", vec![("cpu_user_pct", 25.0)])
        );
        assert!(reading(
            &json!({"host": {"name": "x"}, "other": 1}),
            5,
            "host.name",
            &fields
        )
        .is_none());
        assert!(reading(
            &json!({"system": {"load": {"1": 2}}}),
            5,
            "host.name",
            &fields
        )
        .is_none());
        assert_eq!(
            timestamp_ms(&json!("2026-11-28T00:00:00.500Z")),
            Some(1_795_824_000_500)
        );
        assert_eq!(
            timestamp_ms(&json!({"$date": 1_795_824_000_500i64})),
            Some(1_795_824_000_500)
        );
        let catalog = vec!["cpu_user_pct".to_string(), "mem_used_pct".to_string()];
        assert_eq!(field_table(&catalog, &Default::default()).len(), 2);
    }
}
