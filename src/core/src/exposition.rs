//! `GET /metrics`: the daemon's health and the fleet's forecasts in the Prometheus text
//! exposition format (version 0.0.4), so Prometheus and Grafana read NordIQ with no plugin.
//! Per-server series are bounded by `[prometheus]` (allow-lists and `max_servers`).

use crate::assess::Assessed;
use crate::config::{glob_match, Config};
use crate::risk::Level;
use std::fmt::Write as _;

/// The daemon's own figures at scrape time.
#[derive(Debug, Clone, Default)]
pub struct Health {
    pub uptime_seconds: f64,
    pub samples_total: u64,
    pub rejected_records_total: u64,
    pub duplicate_batches_total: u64,
    pub remote_write_ignored_series_total: u64,
    pub late_samples_total: u64,
    pub servers: usize,
    pub warm_servers: usize,
    pub forecast_servers: usize,
    /// The latest forecast refresh: its duration and when it finished.
    pub refresh_seconds: Option<f64>,
    pub refresh_at_ms: Option<i64>,
    pub model_id: String,
    pub reloads_ok: u64,
    pub reloads_refused: u64,
    /// Bytes the data buffer holds on disk; None when it is disabled.
    pub buffer_bytes: Option<u64>,
    /// Live accuracy of the served forecasts and the best baseline.
    pub live: Option<crate::api::LiveReport>,
    /// The latest drift check.
    pub drift: crate::drift::DriftState,
    /// The HTTP listener: open connections, and what it shed.
    pub http: HttpHealth,
    /// Each notification receiver's deliveries.
    pub notify: Vec<ReceiverHealth>,
    /// Cluster mode only: the cluster as this node sees it, and the merged fleet view.
    pub cluster: Option<ClusterHealth>,
}

/// The cluster in `/metrics`: membership, shards, counters and the whole fleet's levels.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClusterHealth {
    pub status: crate::api::ClusterStatus,
    /// Servers per level across the whole fleet (the merged view).
    pub fleet_levels: crate::api::LevelCounts,
    /// Each shard's part of the merged view: who made it and how old it is.
    pub shard_ages: Vec<crate::api::ShardAge>,
}

/// One notification receiver (Alertmanager URL or webhook name) and what it was sent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReceiverHealth {
    /// `alertmanager` or `webhook`.
    pub kind: String,
    pub name: String,
    pub delivered_total: u64,
    pub failed_attempts_total: u64,
    pub dropped_total: u64,
    pub pending: u64,
}

/// What the accept loop and the body budget did (overload shedding).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HttpHealth {
    pub connections_open: u64,
    pub connections_accepted_total: u64,
    /// Refused: the daemon had `server.max_connections` open (503).
    pub shed_full_total: u64,
    /// Refused: the client address had `server.max_connections_per_client` open (429).
    pub shed_client_total: u64,
    /// Refused: the bodies being read passed `server.max_inflight_body_bytes` (503).
    pub shed_body_total: u64,
    pub tls_handshake_failures_total: u64,
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// `nordiq_notify_*`: per receiver, notifications delivered, failed attempts, dropped, and
/// waiting in the spool.
fn notify_receivers(out: &mut String, receivers: &[ReceiverHealth]) {
    if receivers.is_empty() {
        return;
    }
    type Family = (
        &'static str,
        &'static str,
        &'static str,
        fn(&ReceiverHealth) -> u64,
    );
    let families: [Family; 4] = [
        (
            "nordiq_notify_delivered_total",
            "counter",
            "Notifications a receiver accepted.",
            |r| r.delivered_total,
        ),
        (
            "nordiq_notify_failed_attempts_total",
            "counter",
            "Delivery attempts that failed and are retried.",
            |r| r.failed_attempts_total,
        ),
        (
            "nordiq_notify_dropped_total",
            "counter",
            "Notifications refused for good (4xx) or dropped by the spool bound.",
            |r| r.dropped_total,
        ),
        (
            "nordiq_notify_pending",
            "gauge",
            "Notifications waiting in a receiver's spool.",
            |r| r.pending,
        ),
    ];
    for (name, kind, help, value) in families {
        family(out, name, kind, help);
        for r in receivers {
            let _ = writeln!(
                out,
                "{name}{{receiver=\"{}\",name=\"{}\"}} {}",
                escape(&r.kind),
                escape(&r.name),
                value(r)
            );
        }
    }
}

/// `nordiq_cluster_*`: membership, shard lag and view ages, counters, the fleet's levels.
fn cluster(out: &mut String, c: &ClusterHealth) {
    let s = &c.status;
    for (name, help, value) in [
        (
            "nordiq_cluster_nodes",
            "Live nodes of the cluster as this node sees them.",
            s.nodes.len() as u64,
        ),
        (
            "nordiq_cluster_shards_owned",
            "Shards this node holds.",
            s.owned_shards.len() as u64,
        ),
        (
            "nordiq_cluster_fleet_view_servers",
            "Servers in the merged fleet view.",
            s.fleet_servers as u64,
        ),
    ] {
        family(out, name, "gauge", help);
        let _ = writeln!(out, "{name} {value}");
    }
    for (name, help, value) in [
        (
            "nordiq_cluster_published_total",
            "Stream messages published by this node and acknowledged by JetStream.",
            s.published_total,
        ),
        (
            "nordiq_cluster_published_duplicates_total",
            "Of those, repeats JetStream stored once (same batch id).",
            s.published_duplicates_total,
        ),
        (
            "nordiq_cluster_publish_failures_total",
            "Publishes JetStream did not acknowledge (answered 503).",
            s.publish_failures_total,
        ),
        (
            "nordiq_cluster_consumed_total",
            "Stream messages this node's consumers applied.",
            s.consumed_total,
        ),
        (
            "nordiq_cluster_claims_total",
            "Shards this node took.",
            s.claims_total,
        ),
        (
            "nordiq_cluster_releases_total",
            "Shards this node gave up.",
            s.releases_total,
        ),
    ] {
        family(out, name, "counter", help);
        let _ = writeln!(out, "{name} {value}");
    }
    family(
        out,
        "nordiq_cluster_shard_pending",
        "gauge",
        "Messages of a shard not yet acknowledged by its holder.",
    );
    for shard in &s.shards {
        if let Some(p) = shard.pending {
            let _ = writeln!(
                out,
                "nordiq_cluster_shard_pending{{shard=\"{}\"}} {p}",
                shard.shard
            );
        }
    }
    family(
        out,
        "nordiq_cluster_shard_view_age_seconds",
        "gauge",
        "Age of each shard's part of the merged fleet view.",
    );
    for a in &c.shard_ages {
        let _ = writeln!(
            out,
            "nordiq_cluster_shard_view_age_seconds{{shard=\"{}\",node=\"{}\"}} {}",
            a.shard,
            escape(&a.node),
            a.age_seconds
        );
    }
    family(
        out,
        "nordiq_cluster_fleet_servers",
        "gauge",
        "Servers per level across the whole fleet (every node's shards).",
    );
    let l = &c.fleet_levels;
    for (level, n) in [
        ("healthy", l.healthy),
        ("watch", l.watch),
        ("warning", l.warning),
        ("critical", l.critical),
    ] {
        let _ = writeln!(out, "nordiq_cluster_fleet_servers{{level=\"{level}\"}} {n}");
    }
}

fn horizon_label(minutes: u32) -> String {
    if minutes.is_multiple_of(60) {
        format!("{}h", minutes / 60)
    } else {
        format!("{minutes}m")
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v}")
    }
}

/// `nordiq_live_{mase,pinball,coverage}{forecaster,window}`: what served and the best
/// baseline, over the last day and week (left out while nothing was scored).
/// `nordiq_drift`, `nordiq_drift_reason{reason}`, `nordiq_input_psi{metric}`.
fn drift(out: &mut String, state: &crate::drift::DriftState) {
    family(
        out,
        "nordiq_drift",
        "gauge",
        "1 while the served model is drifting (see docs/model-lifecycle.md).",
    );
    let _ = writeln!(out, "nordiq_drift {}", state.drifting as u8);
    family(
        out,
        "nordiq_drift_reason",
        "gauge",
        "1 for each signal the latest drift check found.",
    );
    for label in ["behind_baseline", "coverage", "input_shift"] {
        let on = state.reasons.iter().any(|r| r.label() == label);
        let _ = writeln!(
            out,
            "nordiq_drift_reason{{reason=\"{label}\"}} {}",
            on as u8
        );
    }
    family(
        out,
        "nordiq_input_psi",
        "gauge",
        "Population-stability index of a metric's recent values against the model's training data.",
    );
    for (metric, v) in &state.psi {
        let _ = writeln!(
            out,
            "nordiq_input_psi{{metric=\"{}\"}} {}",
            escape(metric),
            number(*v)
        );
    }
}

type Figure = fn(&crate::api::LiveScores) -> Option<f64>;

fn live_accuracy(out: &mut String, live: &crate::api::LiveReport) {
    let figures: [(&str, &str, Figure); 3] = [
        (
            "nordiq_live_mase",
            "MASE of the served forecasts against what happened (seasonal naive = 1).",
            |s| s.mase,
        ),
        (
            "nordiq_live_pinball",
            "Mean pinball loss of the served forecasts.",
            |s| s.pinball,
        ),
        (
            "nordiq_live_coverage",
            "Share of observed values inside the served forecast band.",
            |s| s.coverage,
        ),
    ];
    for (name, help, pick) in figures {
        family(out, name, "gauge", help);
        for (window, span) in [("1d", &live.day), ("7d", &live.week)] {
            for (who, scores) in [("served", &span.served), ("baseline", &span.baseline)] {
                if let Some(v) = pick(scores) {
                    let _ = writeln!(
                        out,
                        "{name}{{forecaster=\"{who}\",window=\"{window}\"}} {}",
                        number(v)
                    );
                }
            }
        }
    }
}

/// Which servers get per-server series: allowed by `prometheus.servers`, the first
/// `max_servers` by name.
pub fn exposed_servers<'a>(config: &Config, assessed: &'a [Assessed]) -> Vec<&'a Assessed> {
    let p = &config.prometheus;
    let mut chosen: Vec<&Assessed> = assessed
        .iter()
        .filter(|a| p.servers.is_empty() || p.servers.iter().any(|g| glob_match(g, &a.server)))
        .collect();
    chosen.sort_by(|a, b| a.server.cmp(&b.server));
    chosen.truncate(p.max_servers);
    chosen
}

pub fn render(config: &Config, health: &Health, assessed: &[Assessed]) -> String {
    let mut out = String::with_capacity(4096 + assessed.len() * 512);
    let mut simple = |name: &str, kind: &str, help: &str, value: f64| {
        family(&mut out, name, kind, help);
        let _ = writeln!(out, "{name} {}", number(value));
    };
    simple(
        "nordiq_uptime_seconds",
        "gauge",
        "Seconds since nordiq-inference started.",
        health.uptime_seconds,
    );
    simple(
        "nordiq_ingest_samples_total",
        "counter",
        "Samples accepted by ingest.",
        health.samples_total as f64,
    );
    simple(
        "nordiq_ingest_rejected_records_total",
        "counter",
        "Records ingest refused.",
        health.rejected_records_total as f64,
    );
    simple(
        "nordiq_ingest_duplicate_batches_total",
        "counter",
        "Batches dropped as repeats of a batch id already taken.",
        health.duplicate_batches_total as f64,
    );
    simple(
        "nordiq_remote_write_ignored_series_total",
        "counter",
        "Remote-write series that map onto no catalog metric.",
        health.remote_write_ignored_series_total as f64,
    );
    simple(
        "nordiq_window_late_samples_total",
        "counter",
        "Samples that arrived for a step already closed.",
        health.late_samples_total as f64,
    );
    simple(
        "nordiq_http_connections_open",
        "gauge",
        "Open HTTP connections.",
        health.http.connections_open as f64,
    );
    simple(
        "nordiq_http_connections_accepted_total",
        "counter",
        "HTTP connections admitted.",
        health.http.connections_accepted_total as f64,
    );
    simple(
        "nordiq_http_tls_handshake_failures_total",
        "counter",
        "TLS handshakes that failed or timed out.",
        health.http.tls_handshake_failures_total as f64,
    );
    simple(
        "nordiq_servers",
        "gauge",
        "Servers with a rolling window.",
        health.servers as f64,
    );
    simple(
        "nordiq_warm_servers",
        "gauge",
        "Servers with enough history to forecast.",
        health.warm_servers as f64,
    );
    simple(
        "nordiq_forecast_servers",
        "gauge",
        "Servers in the latest forecast.",
        health.forecast_servers as f64,
    );
    if let Some(s) = health.refresh_seconds {
        simple(
            "nordiq_forecast_refresh_duration_seconds",
            "gauge",
            "How long the latest forecast refresh took.",
            s,
        );
    }
    if let Some(at) = health.refresh_at_ms {
        simple(
            "nordiq_forecast_refresh_timestamp_seconds",
            "gauge",
            "When the latest forecast refresh finished (unix seconds).",
            at as f64 / 1000.0,
        );
    }
    if let Some(b) = health.buffer_bytes {
        simple(
            "nordiq_buffer_bytes",
            "gauge",
            "Bytes the data buffer holds on disk.",
            b as f64,
        );
    }
    if let Some(live) = &health.live {
        live_accuracy(&mut out, live);
    }
    drift(&mut out, &health.drift);
    family(
        &mut out,
        "nordiq_model_info",
        "gauge",
        "The model serving forecasts (always 1).",
    );
    let _ = writeln!(
        out,
        "nordiq_model_info{{model_id=\"{}\"}} 1",
        escape(&health.model_id)
    );
    family(
        &mut out,
        "nordiq_http_shed_total",
        "counter",
        "Connections and requests refused to shed load, by reason.",
    );
    for (reason, n) in [
        ("max_connections", health.http.shed_full_total),
        ("max_connections_per_client", health.http.shed_client_total),
        ("max_inflight_body_bytes", health.http.shed_body_total),
    ] {
        let _ = writeln!(out, "nordiq_http_shed_total{{reason=\"{reason}\"}} {n}");
    }
    notify_receivers(&mut out, &health.notify);
    if let Some(c) = &health.cluster {
        cluster(&mut out, c);
    }
    family(
        &mut out,
        "nordiq_model_reloads_total",
        "counter",
        "Model reloads by outcome.",
    );
    let _ = writeln!(
        out,
        "nordiq_model_reloads_total{{outcome=\"ok\"}} {}",
        health.reloads_ok
    );
    let _ = writeln!(
        out,
        "nordiq_model_reloads_total{{outcome=\"refused\"}} {}",
        health.reloads_refused
    );

    family(
        &mut out,
        "nordiq_alerts",
        "gauge",
        "Servers per alert level in the latest forecast.",
    );
    for level in Level::ALL {
        let n = assessed.iter().filter(|a| a.level == level).count();
        let _ = writeln!(out, "nordiq_alerts{{level=\"{}\"}} {n}", level.as_str());
    }

    family(
        &mut out,
        "nordiq_anomalous_servers",
        "gauge",
        "Servers whose anomaly score is at or above their threshold (anomaly.threshold, or the serving model's calibrated one).",
    );
    let anomalous = assessed.iter().filter(|a| a.is_anomalous()).count();
    let _ = writeln!(out, "nordiq_anomalous_servers {anomalous}");
    family(
        &mut out,
        "nordiq_incident_probability",
        "gauge",
        "Probability that some server's metric crosses its critical threshold within the horizon.",
    );
    let fleet = crate::outlook::fleet(config, assessed.iter().map(|a| &a.outlook));
    for (minutes, fleet) in config.anomaly.outlook_minutes.iter().zip(&fleet) {
        let _ = writeln!(
            out,
            "nordiq_incident_probability{{within=\"{}\"}} {}",
            horizon_label(*minutes),
            number(fleet.probability_any)
        );
    }

    let servers = exposed_servers(config, assessed);
    family(
        &mut out,
        "nordiq_anomaly_score",
        "gauge",
        "A server's anomaly score: mean band widths outside the forecast band (worst metric).",
    );
    for a in &servers {
        let _ = writeln!(
            out,
            "nordiq_anomaly_score{{server=\"{}\"}} {}",
            escape(&a.server),
            number(a.anomaly.score)
        );
    }
    family(
        &mut out,
        "nordiq_server_incident_probability",
        "gauge",
        "Probability that a server's metric crosses its critical threshold within the horizon.",
    );
    for a in &servers {
        for (minutes, p) in config
            .anomaly
            .outlook_minutes
            .iter()
            .zip(&a.outlook.probability)
        {
            let _ = writeln!(
                out,
                "nordiq_server_incident_probability{{server=\"{}\",within=\"{}\"}} {}",
                escape(&a.server),
                horizon_label(*minutes),
                number(*p)
            );
        }
    }
    family(
        &mut out,
        "nordiq_server_risk_score",
        "gauge",
        "A server's risk score, 0 - 1.",
    );
    for a in &servers {
        let _ = writeln!(
            out,
            "nordiq_server_risk_score{{server=\"{}\",profile=\"{}\"}} {}",
            escape(&a.server),
            escape(&a.profile),
            number(a.risk)
        );
    }
    family(
        &mut out,
        "nordiq_server_alert_level",
        "gauge",
        "A server's alert level: 0 healthy, 1 watch, 2 warning, 3 critical.",
    );
    for a in &servers {
        let level = Level::ALL.iter().position(|l| *l == a.level).unwrap_or(0);
        let _ = writeln!(
            out,
            "nordiq_server_alert_level{{server=\"{}\"}} {level}",
            escape(&a.server)
        );
    }
    family(
        &mut out,
        "nordiq_forecast",
        "gauge",
        "Forecast of a server's metric: quantile at a horizon after the last observed step.",
    );
    let step_minutes = config.model.step_seconds as f64 / 60.0;
    let metrics: Vec<usize> = if config.prometheus.metrics.is_empty() {
        (0..config.metrics.len()).collect()
    } else {
        config
            .prometheus
            .metrics
            .iter()
            .filter_map(|m| config.metric_index(m))
            .collect()
    };
    for a in &servers {
        let f = &a.forecast;
        for &m in &metrics {
            if m >= f.n_metrics {
                continue;
            }
            for &minutes in &config.prometheus.horizons_minutes {
                let step = (minutes as f64 / step_minutes).round() as usize;
                if step == 0 || step > f.horizon {
                    continue;
                }
                for (q, quantile) in config
                    .model
                    .quantiles
                    .iter()
                    .enumerate()
                    .take(f.n_quantiles)
                {
                    let v = f.series(m, q)[step - 1];
                    if v.is_finite() {
                        let _ = writeln!(
                            out,
                            "nordiq_forecast{{server=\"{}\",metric=\"{}\",quantile=\"{quantile}\",horizon=\"{}\"}} {}",
                            escape(&a.server),
                            config.metrics[m].name,
                            horizon_label(minutes),
                            v
                        );
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::assessed;

    #[test]
    fn series_pick_the_right_step_and_respect_the_bounds() {
        let mut config = Config::default();
        config.prometheus.metrics = vec!["cpu_user_pct".into()];
        config.prometheus.max_servers = 2;
        config.prometheus.horizons_minutes = vec![30, 60, 480, 10_000];
        let fleet = vec![
            assessed("c\"x", Level::Critical, &config),
            assessed("a", Level::Healthy, &config),
            assessed("b", Level::Warning, &config),
        ];
        let scores = |mase: f64| crate::api::LiveScores {
            windows: 3,
            mase: Some(mase),
            pinball: Some(0.5),
            coverage: None,
            horizons: Vec::new(),
        };
        let span = |hours| crate::api::LiveSpan {
            hours,
            served: scores(0.8),
            baseline: scores(0.9),
        };
        let health = Health {
            model_id: "tft_1".into(),
            samples_total: 7,
            live: Some(crate::api::LiveReport {
                served: "tft_1".into(),
                baseline: "baseline:seasonal_median".into(),
                pending_windows: 0,
                day: span(24),
                week: span(168),
            }),
            ..Health::default()
        };
        let text = render(&config, &health, &fleet);
        assert!(text.contains("nordiq_ingest_samples_total 7\n"));
        assert!(text.contains("nordiq_model_info{model_id=\"tft_1\"} 1\n"));
        assert!(text.contains("nordiq_alerts{level=\"critical\"} 1\n"));
        // 30 min at 5-min steps is the 6th step (index 5); p90 is quantile index 2.
        assert!(text.contains("nordiq_forecast{server=\"a\",metric=\"cpu_user_pct\",quantile=\"0.9\",horizon=\"30m\"} 205\n"), "{text}");
        assert!(text.contains("horizon=\"1h\"} 211\n") && text.contains("horizon=\"8h\"} 295\n"));
        // Bounded: two servers by name, one metric, no horizon past the model's.
        assert!(!text.contains("server=\"c\\\"x\""), "{text}");
        assert!(!text.contains("mem_used_pct") && !text.contains("10000"));
        assert_eq!(text.matches("nordiq_forecast{").count(), 2 * 3 * 3);
        assert_eq!(text.matches("nordiq_server_alert_level{").count(), 2);
        assert_eq!(text.matches("nordiq_anomaly_score{").count(), 2);
        assert!(
            text.contains("nordiq_live_mase{forecaster=\"served\",window=\"1d\"} 0.8\n"),
            "{text}"
        );
        assert!(text.contains("nordiq_live_mase{forecaster=\"baseline\",window=\"7d\"} 0.9\n"));
        assert!(
            !text.contains("nordiq_live_coverage{"),
            "no figure, no series"
        );
        assert!(text.contains("nordiq_anomalous_servers 0\n"), "{text}");
        assert!(text.contains("nordiq_incident_probability{within=\"30m\"} "));
        assert!(text.contains("nordiq_server_incident_probability{server=\"a\",within=\"8h\"} "));
        // Every sample line is `name{labels} value` or `name value`.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let value = line.rsplit(' ').next().unwrap();
            assert!(value.parse::<f64>().is_ok(), "{line}");
        }
        config.prometheus.servers = vec!["c*".into()];
        let text = render(&config, &health, &fleet);
        assert!(
            text.contains("nordiq_server_alert_level{server=\"c\\\"x\"} 3"),
            "{text}"
        );
    }

    #[test]
    fn the_cluster_block_shows_membership_lag_ages_and_fleet_levels() {
        let config = Config::default();
        let health = Health {
            cluster: Some(ClusterHealth {
                status: crate::api::ClusterStatus {
                    node: "n1".into(),
                    nodes: vec!["n1".into(), "n2".into()],
                    owned_shards: vec![0, 2],
                    shards: vec![crate::api::ClusterShard {
                        shard: 2,
                        owner: Some("n1".into()),
                        pending: Some(4),
                    }],
                    consumed_total: 9,
                    ..Default::default()
                },
                fleet_levels: crate::api::LevelCounts {
                    healthy: 5,
                    critical: 1,
                    ..Default::default()
                },
                shard_ages: vec![crate::api::ShardAge {
                    shard: 2,
                    node: "n1".into(),
                    generated_at: String::new(),
                    age_seconds: 3.5,
                    servers: 6,
                }],
            }),
            ..Health::default()
        };
        let text = render(&config, &health, &[]);
        for line in [
            "nordiq_cluster_nodes 2\n",
            "nordiq_cluster_shards_owned 2\n",
            "nordiq_cluster_consumed_total 9\n",
            "nordiq_cluster_shard_pending{shard=\"2\"} 4\n",
            "nordiq_cluster_shard_view_age_seconds{shard=\"2\",node=\"n1\"} 3.5\n",
            "nordiq_cluster_fleet_servers{level=\"critical\"} 1\n",
        ] {
            assert!(text.contains(line), "{line} missing:\n{text}");
        }
        assert!(!render(&config, &Health::default(), &[]).contains("nordiq_cluster_"));
    }
}
