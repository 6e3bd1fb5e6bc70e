use super::*;

const MIN: i64 = 60_000;

fn settings(hold_s: u64, repeat_s: u64) -> NotifyConfig {
    NotifyConfig {
        min_level_seconds: hold_s,
        repeat_seconds: repeat_s,
        ..NotifyConfig::default()
    }
}

fn seen(server: &str, level: Level) -> Observation {
    Observation {
        kind: AlertKind::PredictedBreach,
        server: server.into(),
        profile: "database".into(),
        level,
        score: match level {
            Level::Critical => 85.0,
            Level::Warning => 55.0,
            Level::Watch => 25.0,
            Level::Healthy => 5.0,
        },
        metric: Some("cpu_user_pct".into()),
        current: Some(80.0),
        expected: Some(97.0),
        threshold: Some(95.0),
        horizon_minutes: 30,
    }
}

fn events(notices: &[Notice]) -> Vec<(NoticeEvent, Level, Level)> {
    notices
        .iter()
        .map(|n| (n.event, n.severity, n.previous))
        .collect()
}

#[test]
fn a_level_is_notified_once_it_has_held_and_resolved_once_it_is_over() {
    let s = settings(120, 0);
    let mut n = Notifier::default();
    assert!(n.observe(&s, 0, [seen("db1", Level::Critical)]).is_empty());
    assert!(n
        .observe(&s, MIN, [seen("db1", Level::Critical)])
        .is_empty());
    let fired = n.observe(&s, 2 * MIN, [seen("db1", Level::Critical)]);
    assert_eq!(
        events(&fired),
        [(NoticeEvent::Firing, Level::Critical, Level::Healthy)]
    );
    assert_eq!(fired[0].started_at_ms, 2 * MIN);
    assert!(n
        .observe(&s, 3 * MIN, [seen("db1", Level::Critical)])
        .is_empty());
    assert_eq!(n.firing(3 * MIN).len(), 1);
    assert!(n
        .observe(&s, 4 * MIN, [seen("db1", Level::Healthy)])
        .is_empty());
    let resolved = n.observe(&s, 6 * MIN, [seen("db1", Level::Healthy)]);
    assert_eq!(
        events(&resolved),
        [(NoticeEvent::Resolved, Level::Critical, Level::Critical)]
    );
    assert_eq!(resolved[0].observation.score, 5.0, "as it is now");
    assert_eq!(
        resolved[0].started_at_ms,
        2 * MIN,
        "the alert it ends started then"
    );
    assert!(n.firing(6 * MIN).is_empty());
    assert!(n
        .observe(&s, 9 * MIN, [seen("db1", Level::Healthy)])
        .is_empty());
}

#[test]
fn a_server_hovering_at_a_threshold_pages_no_one() {
    let s = settings(120, 0);
    let mut n = Notifier::default();
    let mut sent = Vec::new();
    // An hour of flipping between warning and healthy every 30 s.
    for i in 0..120 {
        let level = if i % 2 == 0 {
            Level::Warning
        } else {
            Level::Healthy
        };
        sent.extend(n.observe(&s, i * 30_000, [seen("web1", level)]));
    }
    assert!(sent.is_empty(), "{sent:?}");
    // Without the hold, the same hour is 120 notices.
    let mut eager = Notifier::default();
    let count: usize = (0..120)
        .map(|i| {
            let level = if i % 2 == 0 {
                Level::Warning
            } else {
                Level::Healthy
            };
            eager
                .observe(&settings(0, 0), i * 30_000, [seen("web1", level)])
                .len()
        })
        .sum();
    assert_eq!(count, 120);
}

#[test]
fn level_changes_are_notified_and_levels_below_the_minimum_are_quiet() {
    let s = settings(0, 0);
    let mut n = Notifier::default();
    assert!(
        n.observe(&s, 0, [seen("db1", Level::Watch)]).is_empty(),
        "watch is below the default minimum (warning)"
    );
    let up = n.observe(&s, MIN, [seen("db1", Level::Warning)]);
    let higher = n.observe(&s, 2 * MIN, [seen("db1", Level::Critical)]);
    let lower = n.observe(&s, 3 * MIN, [seen("db1", Level::Warning)]);
    let to_watch = n.observe(&s, 4 * MIN, [seen("db1", Level::Watch)]);
    assert_eq!(
        events(&[up, higher, lower, to_watch].concat()),
        [
            (NoticeEvent::Firing, Level::Warning, Level::Healthy),
            (NoticeEvent::Firing, Level::Critical, Level::Warning),
            (NoticeEvent::Firing, Level::Warning, Level::Critical),
            (NoticeEvent::Resolved, Level::Warning, Level::Warning),
        ]
    );
}

#[test]
fn a_firing_alert_repeats_and_a_restart_neither_repeats_nor_forgets_it() {
    let s = settings(60, 3600);
    let mut n = Notifier::default();
    n.observe(&s, 0, [seen("db1", Level::Critical)]);
    assert_eq!(n.observe(&s, MIN, [seen("db1", Level::Critical)]).len(), 1);
    let quiet: usize = (2..60)
        .map(|m| n.observe(&s, m * MIN, [seen("db1", Level::Critical)]).len())
        .sum();
    assert_eq!(quiet, 0);
    let again = n.observe(&s, 61 * MIN, [seen("db1", Level::Critical)]);
    assert_eq!(
        events(&again),
        [(NoticeEvent::Repeat, Level::Critical, Level::Critical)]
    );

    // Saved and restored (a daemon restart); the server recovered meanwhile.
    let saved = serde_json::to_string(&n).unwrap();
    let mut back = serde_json::from_str::<Notifier>(&saved)
        .unwrap()
        .restarted(90 * MIN);
    assert!(back
        .observe(&s, 90 * MIN, [seen("db1", Level::Critical)])
        .is_empty());
    assert!(back
        .observe(&s, 91 * MIN, [seen("db1", Level::Healthy)])
        .is_empty());
    let over = back.observe(&s, 92 * MIN, [seen("db1", Level::Healthy)]);
    assert_eq!(
        events(&over),
        [(NoticeEvent::Resolved, Level::Critical, Level::Critical)]
    );
}

#[test]
fn kinds_and_servers_are_tracked_apart() {
    let s = settings(0, 0);
    let mut n = Notifier::default();
    let mut anomaly = seen("db1", Level::Warning);
    anomaly.kind = AlertKind::Anomaly;
    let out = n.observe(
        &s,
        0,
        [
            seen("db1", Level::Critical),
            anomaly,
            seen("db2", Level::Warning),
        ],
    );
    assert_eq!(out.len(), 3);
    let ids: std::collections::BTreeSet<&str> = out.iter().map(|n| n.id.as_str()).collect();
    assert_eq!(ids.len(), 3, "ids are unique");
    let out = n.observe(&s, MIN, [seen("db1", Level::Healthy)]);
    assert_eq!(events(&out)[0].0, NoticeEvent::Resolved);
    assert_eq!(n.firing(MIN).len(), 2, "the anomaly and db2 still fire");
}

#[test]
fn alertmanager_gets_stable_labels_and_the_previous_level_ended() {
    let s = NotifyConfig {
        dashboard_url: "https://nordiq.example.com/".into(),
        ..settings(0, 0)
    };
    let mut n = Notifier::default();
    n.observe(&s, 0, [seen("db1", Level::Warning)]);
    let change = n.observe(&s, MIN, [seen("db1", Level::Critical)]);
    let alerts = alertmanager_alerts(&s, &change[0], MIN, 4 * MIN);
    assert_eq!(alerts.len(), 2);
    let now = &alerts[0];
    assert_eq!(now["labels"]["alertname"], "NordIQPredictedBreach");
    assert_eq!(now["labels"]["severity"], "critical");
    assert_eq!(now["labels"]["server"], "db1");
    assert_eq!(now["labels"]["profile"], "database");
    assert_eq!(now["labels"]["metric"], "cpu_user_pct");
    assert_eq!(now["labels"]["kind"], "predicted_breach");
    assert_eq!(now["startsAt"], format_ms(0));
    assert_eq!(now["endsAt"], format_ms(5 * MIN));
    assert_eq!(now["annotations"]["forecast_peak"], "97.00");
    assert_eq!(
        now["annotations"]["dashboard"],
        "https://nordiq.example.com/server/db1"
    );
    let summary = now["annotations"]["summary"].as_str().unwrap();
    assert!(
        summary.contains("cpu_user_pct") && summary.contains("within 30 min"),
        "{summary}"
    );
    let ended = &alerts[1];
    assert_eq!(ended["labels"]["severity"], "warning");
    assert_eq!(ended["endsAt"], format_ms(MIN));
}

#[test]
fn webhook_filters_and_payload() {
    let s = settings(0, 0);
    let mut n = Notifier::default();
    let fired = n.observe(&s, 0, [seen("db1", Level::Warning)]);
    let lower = n.observe(&s, MIN, [seen("db1", Level::Watch)]);
    let globs = vec!["db*".to_string()];
    assert!(webhook_wants(Level::Warning, &[], &globs, &fired[0]));
    assert!(!webhook_wants(Level::Critical, &[], &[], &fired[0]));
    assert!(!webhook_wants(
        Level::Watch,
        &[],
        &["web*".to_string()],
        &fired[0]
    ));
    assert!(!webhook_wants(
        Level::Watch,
        &["anomaly".to_string()],
        &[],
        &fired[0]
    ));
    assert_eq!(lower[0].event, NoticeEvent::Resolved);
    assert!(
        webhook_wants(Level::Warning, &[], &[], &lower[0]),
        "the end of an alert it was sent is sent"
    );
    let body = webhook_payload(&s, &fired[0]);
    assert_eq!(body["version"], 1);
    assert_eq!(body["event"], "firing");
    assert_eq!(body["kind"], "predicted_breach");
    assert_eq!(body["severity"], "warning");
    assert_eq!(body["previous_severity"], "healthy");
    assert_eq!(body["id"], fired[0].id);
    assert!(body["dashboard_url"].is_null());
}

#[test]
fn a_firing_alert_of_a_server_no_longer_assessed_is_resolved_after_a_while() {
    let s = NotifyConfig {
        forget_after_seconds: 600,
        ..settings(0, 0)
    };
    let mut n = Notifier::default();
    n.observe(
        &s,
        0,
        [seen("db1", Level::Critical), seen("db2", Level::Warning)],
    );
    // db1 goes on being assessed; db2 stops reporting.
    let quiet: usize = (1..10)
        .map(|m| n.observe(&s, m * MIN, [seen("db1", Level::Critical)]).len())
        .sum();
    assert_eq!(quiet, 0);
    let gone = n.observe(&s, 10 * MIN, [seen("db1", Level::Critical)]);
    assert_eq!(
        events(&gone),
        [(NoticeEvent::Resolved, Level::Warning, Level::Warning)]
    );
    assert_eq!(gone[0].observation.server, "db2");
    assert_eq!(n.firing(10 * MIN).len(), 1, "db1 still fires");
    let never = NotifyConfig {
        forget_after_seconds: 0,
        ..settings(0, 0)
    };
    let mut kept = Notifier::default();
    kept.observe(&never, 0, [seen("db2", Level::Warning)]);
    assert!(kept.observe(&never, 100 * MIN, []).is_empty());
    assert_eq!(kept.firing(100 * MIN).len(), 1);
}

#[test]
fn names_are_the_serialised_ones() {
    for kind in [AlertKind::PredictedBreach, AlertKind::Anomaly] {
        assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
    }
    for event in [
        NoticeEvent::Firing,
        NoticeEvent::Repeat,
        NoticeEvent::Resolved,
    ] {
        assert_eq!(serde_json::to_value(event).unwrap(), event.as_str());
    }
}
