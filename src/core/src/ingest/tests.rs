use super::*;
use crate::config::{Config, UnknownMetricPolicy};

const NOW: i64 = 1_795_000_000_000;

fn validate_json(config: &Config, body: &str) -> Validated {
    Validator::new(config, NOW)
        .json_batch(body.as_bytes())
        .unwrap()
}

fn errors_of(v: &Validated) -> Vec<(usize, &str)> {
    v.errors
        .iter()
        .map(|e| (e.index, e.field.as_str()))
        .collect()
}

#[test]
fn good_batch_in_every_timestamp_form() {
    let config = Config::default();
    let body = format!(
        r#"{{"records":[
        {{"timestamp":"2026-11-17T11:06:40Z","server_name":"ppml0001","cpu_user_pct":12.5,"mem_used_pct":40}},
        {{"timestamp":{},"server_name":"ppdb001","profile":"database","cpu_user_pct":1}},
        {{"timestamp":{},"server_name":"box-7","disk_usage_pct":null,"cpu_idle_pct":90}}
    ]}}"#,
        NOW / 1000,
        NOW
    );
    let v = validate_json(&config, &body);
    assert!(v.errors.is_empty(), "{:?}", v.errors);
    assert_eq!(v.records, 3);
    let samples: Vec<&Sample> = v.samples.iter().map(|(_, s)| s).collect();
    assert_eq!(samples[0].profile, "ml_compute");
    assert_eq!(samples[0].timestamp_ms, NOW - 86_400_000);
    assert_eq!(samples[0].values[0], 12.5);
    assert!(samples[0].values[1].is_nan());
    assert_eq!(samples[1].profile, "database");
    assert_eq!(samples[1].timestamp_ms, NOW);
    assert_eq!(samples[2].timestamp_ms, NOW);
    assert_eq!(samples[2].profile, "generic");
}

#[test]
fn every_bad_input_class_is_named() {
    let config = Config::default();
    let body = format!(
        r#"{{"records":[
        {{"server_name":"a","cpu_user_pct":1}},
        {{"timestamp":"soon","server_name":"a","cpu_user_pct":1}},
        {{"timestamp":{too_old},"server_name":"a","cpu_user_pct":1}},
        {{"timestamp":{future},"server_name":"a","cpu_user_pct":1}},
        {{"timestamp":{now},"cpu_user_pct":1}},
        {{"timestamp":{now},"server_name":"bad name!","cpu_user_pct":1}},
        {{"timestamp":{now},"server_name":"a","cpu_user_pct":101}},
        {{"timestamp":{now},"server_name":"a","cpu_user_pct":"high"}},
        {{"timestamp":{now},"server_name":"a","gpu_temp":50}},
        {{"timestamp":{now},"server_name":"a","cpu_user_pct":NaN}},
        {{"timestamp":{now},"server_name":"a","mem_used_pct":-Infinity}},
        {{"timestamp":{now},"server_name":"a"}},
        {{"timestamp":{now},"server_name":"a","profile":"toaster","cpu_user_pct":1}},
        {{"timestamp":0,"server_name":"a","cpu_user_pct":1}},
        {{"timestamp":{now},"server_name":"ok-1","cpu_user_pct":1}}
    ]}}"#,
        now = NOW,
        too_old = NOW - 61 * 86_400_000,
        future = NOW + 3_600_000,
    );
    let v = validate_json(&config, &body);
    assert_eq!(
        errors_of(&v),
        vec![
            (0, "timestamp"),
            (1, "timestamp"),
            (2, "timestamp"),
            (3, "timestamp"),
            (4, "server_name"),
            (5, "server_name"),
            (6, "cpu_user_pct"),
            (7, "cpu_user_pct"),
            (8, "gpu_temp"),
            (9, "cpu_user_pct"),
            (10, "mem_used_pct"),
            (11, "(record)"),
            (12, "profile"),
            (13, "timestamp"),
        ]
    );
    assert!(v.errors[0].reason.contains("missing"));
    assert!(v.errors[2].reason.contains("older"));
    assert!(v.errors[3].reason.contains("future"));
    assert!(v.errors[6].reason.contains("outside"));
    assert!(v.errors[8].reason.contains("unknown metric"));
    assert!(v.errors[9].reason.contains("NaN"));
    assert!(v.errors[10].reason.contains("Infinity"));
    assert_eq!(v.samples.len(), 1);
    assert_eq!(v.samples[0].0, 14);
}

#[test]
fn one_record_can_carry_several_errors() {
    let config = Config::default();
    let v = validate_json(
        &config,
        r#"[{"timestamp":"x","server_name":"","cpu_user_pct":-1}]"#,
    );
    assert_eq!(v.errors.len(), 3);
}

#[test]
fn unknown_metrics_can_be_ignored() {
    let mut config = Config::default();
    config.ingest.unknown_metrics = UnknownMetricPolicy::Ignore;
    let v = validate_json(
        &config,
        &format!(
            r#"{{"records":[{{"timestamp":{NOW},"server_name":"a","cpu_user_pct":1,"state":"healthy","gpu":[1]}}]}}"#
        ),
    );
    assert!(v.errors.is_empty(), "{:?}", v.errors);
    assert_eq!(v.samples.len(), 1);
}

#[test]
fn ndjson_reports_line_indices_and_skips_blank_lines() {
    let config = Config::default();
    let body = format!(
        "{{\"timestamp\":{NOW},\"server_name\":\"a\",\"cpu_user_pct\":1}}\n\n{{not json\n{{\"timestamp\":{NOW},\"server_name\":\"b\",\"cpu_user_pct\":NaN}}\n{{\"timestamp\":{NOW},\"server_name\":\"c\",\"cpu_user_pct\":3}}\n"
    );
    let v = Validator::new(&config, NOW)
        .ndjson(body.as_bytes())
        .unwrap();
    assert_eq!(errors_of(&v), vec![(2, "(line)"), (3, "cpu_user_pct")]);
    assert_eq!(
        v.samples.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
        vec![0, 4]
    );
    assert_eq!(v.records, 4);
}

#[test]
fn malformed_body_and_record_limit() {
    let mut config = Config::default();
    let validator = Validator::new(&config, NOW);
    assert!(matches!(
        validator.json_batch(b"{\"records\": 5}"),
        Err(BodyError::Json(_))
    ));
    assert!(matches!(
        validator.json_batch(b"{\"data\": []}"),
        Err(BodyError::Json(_))
    ));
    assert!(matches!(
        validator.json_batch(b"[1,"),
        Err(BodyError::Json(_))
    ));
    config.ingest.max_records_per_request = 2;
    let validator = Validator::new(&config, NOW);
    let rec = format!(r#"{{"timestamp":{NOW},"server_name":"a","cpu_user_pct":1}}"#);
    let ok = validator
        .json_batch(format!("[{rec},{rec}]").as_bytes())
        .unwrap();
    assert_eq!(ok.samples.len(), 2);
    assert_eq!(
        validator
            .json_batch(format!("[{rec},{rec},{rec}]").as_bytes())
            .unwrap_err(),
        BodyError::TooManyRecords { got: 3, max: 2 }
    );
    assert!(matches!(
        validator.ndjson(format!("{rec}\n{rec}\n{rec}\n").as_bytes()),
        Err(BodyError::TooManyRecords { got: 3, max: 2 })
    ));
}

#[test]
fn nonfinite_rewrite_leaves_strings_alone() {
    assert_eq!(rewrite_nonfinite_literals(br#"{"a":"NaN"}"#), None);
    let out = rewrite_nonfinite_literals(br#"{"a":"x\"NaN","b":NaN}"#).unwrap();
    let value: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(value["a"], "x\"NaN");
    assert!(value["b"].as_str().unwrap().ends_with("NaN"));
}

#[test]
fn server_names() {
    assert!(check_server_name("ppml0001").is_ok());
    assert!(check_server_name("host.example.com:9100").is_ok());
    assert!(check_server_name("").is_err());
    assert!(check_server_name(&"x".repeat(129)).is_err());
    assert!(check_server_name("a b").is_err());
    assert!(check_server_name("a/b").is_err());
}
