//! What to tell people, and when: per server and alert kind, a level must hold for
//! `notify.min_level_seconds` before it is notified (flap control), a still-firing alert is
//! repeated every `notify.repeat_seconds`, and an alert that ends is notified as resolved.
//! Pure: the daemon feeds [`Notifier::observe`] each refresh's assessments and delivers the
//! [`Notice`]s it returns; [`alertmanager_alerts`] and [`webhook_payload`] render them.

use crate::api::AlertKind;
use crate::assess::Assessed;
use crate::config::{Config, NotifyConfig};
use crate::risk::Level;
use crate::timefmt::format_ms;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One server's state for one alert kind at one refresh.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    pub kind: AlertKind,
    pub server: String,
    pub profile: String,
    /// Healthy: nothing to alert on. An anomaly is `warning` while anomalous.
    pub level: Level,
    /// Risk 0–100 (predicted breach) or the anomaly score.
    pub score: f64,
    /// The metric that drove it.
    pub metric: Option<String>,
    /// That metric now.
    pub current: Option<f64>,
    /// Predicted breach: the metric's forecast peak within the risk lookahead. Anomaly: the
    /// edge of the band the observed value left.
    pub expected: Option<f64>,
    /// Predicted breach: the metric's threshold at the alert's level.
    pub threshold: Option<f64>,
    /// Minutes ahead the forecast looks (`risk.lookahead_minutes`); 0 for an anomaly.
    pub horizon_minutes: u64,
}

/// What a notice says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeEvent {
    /// An alert starts, or its level changes (`previous` says from what).
    Firing,
    /// A still-firing alert, said again after `repeat_seconds`.
    Repeat,
    /// The alert ended.
    Resolved,
}

impl NoticeEvent {
    /// As serialised (the webhook's `X-NordIQ-Event`).
    pub fn as_str(self) -> &'static str {
        match self {
            NoticeEvent::Firing => "firing",
            NoticeEvent::Repeat => "repeat",
            NoticeEvent::Resolved => "resolved",
        }
    }
}

/// One notification, as it is spooled and delivered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notice {
    /// Unique per notice: receivers may drop a repeat delivery by it.
    pub id: String,
    pub event: NoticeEvent,
    /// For `resolved`, the level the alert had.
    pub severity: Level,
    /// The level notified before this one (healthy for a new alert).
    pub previous: Level,
    /// When the alert began (its first firing notice).
    pub started_at_ms: i64,
    /// When this notice was made (for `resolved`, when the alert ended).
    pub at_ms: i64,
    #[serde(flatten)]
    pub observation: Observation,
}

/// Flap-control state of one (kind, server).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Track {
    /// The level seen at the latest refresh, and since when.
    observed: Level,
    since_ms: i64,
    /// The level last notified (healthy: none firing).
    notified: Level,
    started_ms: i64,
    last_sent_ms: i64,
    /// When the server was last assessed at all.
    #[serde(default)]
    seen_ms: i64,
    last: Observation,
}

/// Decides notices from observations; its state can be saved and restored so a restart
/// neither repeats a firing alert nor forgets to resolve one.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Notifier {
    tracks: BTreeMap<String, Track>,
    next_seq: u64,
}

fn key(kind: AlertKind, server: &str) -> String {
    format!("{}/{server}", kind.as_str())
}

impl Notifier {
    /// Applies one refresh at `now_ms`: `observations` are every server assessed. A level
    /// below `min_severity` counts as healthy. A (kind, server) not observed keeps its state
    /// until it has gone unassessed for `forget_after_seconds`; a firing one is then
    /// resolved (its server stopped reporting, or was evicted).
    pub fn observe(
        &mut self,
        settings: &NotifyConfig,
        now_ms: i64,
        observations: impl IntoIterator<Item = Observation>,
    ) -> Vec<Notice> {
        let hold_ms = settings.min_level_seconds as i64 * 1000;
        let repeat_ms = settings.repeat_seconds as i64 * 1000;
        let mut notices = Vec::new();
        for mut o in observations {
            if o.level < settings.min_severity {
                o.level = Level::Healthy;
            }
            let k = key(o.kind, &o.server);
            let track = self.tracks.entry(k.clone()).or_insert_with(|| Track {
                observed: Level::Healthy,
                since_ms: now_ms,
                notified: Level::Healthy,
                started_ms: now_ms,
                last_sent_ms: now_ms,
                seen_ms: now_ms,
                last: o.clone(),
            });
            track.seen_ms = now_ms;
            if o.level != track.observed {
                track.observed = o.level;
                track.since_ms = now_ms;
            }
            if o.level != Level::Healthy {
                track.last = o.clone();
            }
            let held = now_ms - track.since_ms >= hold_ms;
            let event = if held && track.observed != track.notified {
                Some(if track.observed == Level::Healthy {
                    NoticeEvent::Resolved
                } else {
                    NoticeEvent::Firing
                })
            } else if track.notified != Level::Healthy
                && repeat_ms > 0
                && now_ms - track.last_sent_ms >= repeat_ms
            {
                Some(NoticeEvent::Repeat)
            } else {
                None
            };
            let Some(event) = event else {
                if track.notified == Level::Healthy && track.observed == Level::Healthy {
                    self.tracks.remove(&k);
                }
                continue;
            };
            self.next_seq += 1;
            let previous = track.notified;
            if event == NoticeEvent::Firing && previous == Level::Healthy {
                track.started_ms = now_ms;
            }
            let severity = match event {
                NoticeEvent::Resolved => previous,
                _ => track.observed,
            };
            let mut observation = track.last.clone();
            if event == NoticeEvent::Resolved {
                // What the server looks like now that it is over.
                observation.current = o.current;
                observation.score = o.score;
            }
            observation.level = severity;
            notices.push(Notice {
                id: format!("{now_ms}-{}", self.next_seq),
                event,
                severity,
                previous,
                started_at_ms: track.started_ms,
                at_ms: now_ms,
                observation,
            });
            track.notified = track.observed;
            track.last_sent_ms = now_ms;
            if track.notified == Level::Healthy {
                self.tracks.remove(&k);
            }
        }
        self.forget_unseen(settings, now_ms, &mut notices);
        notices
    }

    /// Resolves, and forgets, what has not been assessed for `forget_after_seconds`.
    fn forget_unseen(&mut self, settings: &NotifyConfig, now_ms: i64, notices: &mut Vec<Notice>) {
        if settings.forget_after_seconds == 0 {
            return;
        }
        let forget_ms = settings.forget_after_seconds as i64 * 1000;
        let gone: Vec<String> = self
            .tracks
            .iter()
            .filter(|(_, t)| now_ms - t.seen_ms >= forget_ms)
            .map(|(k, _)| k.clone())
            .collect();
        for k in gone {
            let Some(t) = self.tracks.remove(&k) else {
                continue;
            };
            if t.notified == Level::Healthy {
                continue;
            }
            self.next_seq += 1;
            let mut observation = t.last;
            observation.level = t.notified;
            notices.push(Notice {
                id: format!("{now_ms}-{}", self.next_seq),
                event: NoticeEvent::Resolved,
                severity: t.notified,
                previous: t.notified,
                started_at_ms: t.started_ms,
                at_ms: now_ms,
                observation,
            });
        }
    }

    /// The alerts notified as firing now, as firing notices (for a receiver that wants the
    /// whole set again, as Alertmanager does).
    pub fn firing(&self, now_ms: i64) -> Vec<Notice> {
        self.tracks
            .values()
            .filter(|t| t.notified != Level::Healthy)
            .map(|t| {
                let mut observation = t.last.clone();
                observation.level = t.notified;
                Notice {
                    id: format!("{now_ms}-resend"),
                    event: NoticeEvent::Repeat,
                    severity: t.notified,
                    previous: t.notified,
                    started_at_ms: t.started_ms,
                    at_ms: now_ms,
                    observation,
                }
            })
            .collect()
    }

    /// After a restart: what was observed is taken as holding since `now_ms`, so an alert
    /// that ended while the daemon was down is resolved after `min_level_seconds`.
    pub fn restarted(mut self, now_ms: i64) -> Notifier {
        for t in self.tracks.values_mut() {
            t.since_ms = now_ms;
            t.seen_ms = now_ms;
        }
        self
    }
}

/// Each assessed server's observations: its predicted-breach level (its top metric with
/// the forecast peak and the threshold of that level) and whether it is anomalous now.
pub fn observations(config: &Config, assessed: &[Assessed]) -> Vec<Observation> {
    let value = |v: Option<&f32>| v.copied().filter(|v| v.is_finite()).map(f64::from);
    let mut out = Vec::with_capacity(assessed.len() * 2);
    for a in assessed {
        let breach_metric = a
            .top_metric
            .and_then(|m| config.metrics.get(m).map(|d| (m, d)));
        let threshold = breach_metric.and_then(|(_, d)| {
            d.risk.as_ref().map(|r| match a.level {
                Level::Critical => r.crit,
                Level::Warning => r.warn,
                _ => r.ok,
            })
        });
        out.push(Observation {
            kind: AlertKind::PredictedBreach,
            server: a.server.clone(),
            profile: a.profile.clone(),
            level: a.level,
            score: a.risk,
            metric: breach_metric.map(|(_, d)| d.name.clone()),
            current: breach_metric.and_then(|(m, _)| value(a.current.get(m))),
            expected: breach_metric
                .and_then(|(m, _)| a.metric_peak.get(m).copied())
                .filter(|v| v.is_finite()),
            threshold,
            horizon_minutes: u64::from(config.risk.lookahead_minutes),
        });
        let anomalous = a.is_anomalous();
        let m = a.anomaly.top_metric;
        let current = m.and_then(|m| value(a.current.get(m)));
        let (low, high) = m.map_or((None, None), |m| {
            (
                value(a.anomaly.expected_low.get(m)),
                value(a.anomaly.expected_high.get(m)),
            )
        });
        // The edge of the band the value left.
        let edge = match (current, low, high) {
            (Some(c), _, Some(h)) if c > h => Some(h),
            (Some(_), Some(l), _) => Some(l),
            _ => high,
        };
        out.push(Observation {
            kind: AlertKind::Anomaly,
            server: a.server.clone(),
            profile: a.profile.clone(),
            level: if anomalous {
                Level::Warning
            } else {
                Level::Healthy
            },
            score: a.anomaly.score,
            metric: m
                .and_then(|m| config.metrics.get(m))
                .map(|d| d.name.clone()),
            current,
            expected: edge,
            threshold: None,
            horizon_minutes: 0,
        });
    }
    out
}

fn title(kind: AlertKind) -> &'static str {
    match kind {
        AlertKind::PredictedBreach => "NordIQPredictedBreach",
        AlertKind::Anomaly => "NordIQAnomaly",
    }
}

fn fmt_value(v: Option<f64>) -> String {
    v.map_or_else(|| "?".into(), |v| format!("{v:.1}"))
}

/// One line for people: what, where, how bad.
pub fn summary(n: &Notice) -> String {
    let o = &n.observation;
    let metric = o.metric.as_deref().unwrap_or("its metrics");
    let what = match o.kind {
        AlertKind::PredictedBreach => format!(
            "{}: {metric} now {}, forecast peak {} within {} min ({} threshold {})",
            o.server,
            fmt_value(o.current),
            fmt_value(o.expected),
            o.horizon_minutes,
            n.severity.as_str(),
            fmt_value(o.threshold)
        ),
        AlertKind::Anomaly => format!(
            "{}: {metric} at {} is outside the band forecast for it (edge {}, score {:.2})",
            o.server,
            fmt_value(o.current),
            fmt_value(o.expected),
            o.score
        ),
    };
    match n.event {
        NoticeEvent::Resolved => format!("resolved: {what}"),
        _ => what,
    }
}

/// The dashboard link of a notice's server; None without `notify.dashboard_url`.
pub fn dashboard_link(settings: &NotifyConfig, n: &Notice) -> Option<String> {
    (!settings.dashboard_url.is_empty()).then(|| {
        format!(
            "{}/server/{}",
            settings.dashboard_url.trim_end_matches('/'),
            n.observation.server
        )
    })
}

/// Alertmanager's labels for a notice: they name one alert, so a change of level is a new
/// alert (the old one is ended, as when a Prometheus rule's severity label changes).
pub fn alertmanager_labels(n: &Notice) -> BTreeMap<&'static str, String> {
    let o = &n.observation;
    let mut labels = BTreeMap::from([
        ("alertname", title(o.kind).to_string()),
        ("server", o.server.clone()),
        ("profile", o.profile.clone()),
        ("severity", n.severity.as_str().to_string()),
        ("kind", o.kind.as_str().to_string()),
        ("source", "nordiq".to_string()),
    ]);
    if let Some(m) = &o.metric {
        labels.insert("metric", m.clone());
    }
    labels
}

/// A postable alert of Alertmanager's v2 API (`POST /api/v2/alerts`, a JSON array of
/// these). A firing one ends `ends_in_ms` after `sent_ms` unless posted again.
pub fn alertmanager_alert(
    settings: &NotifyConfig,
    n: &Notice,
    sent_ms: i64,
    ends_in_ms: i64,
) -> serde_json::Value {
    let o = &n.observation;
    let ends = match n.event {
        NoticeEvent::Resolved => n.at_ms,
        _ => sent_ms + ends_in_ms,
    };
    let mut annotations = BTreeMap::from([
        ("summary", summary(n)),
        ("risk", format!("{:.1}", o.score)),
        ("horizon_minutes", o.horizon_minutes.to_string()),
    ]);
    if let Some(v) = o.current {
        annotations.insert("current", format!("{v:.2}"));
    }
    if let Some(v) = o.expected {
        let name = match o.kind {
            AlertKind::PredictedBreach => "forecast_peak",
            AlertKind::Anomaly => "expected_edge",
        };
        annotations.insert(name, format!("{v:.2}"));
    }
    if let Some(v) = o.threshold {
        annotations.insert("threshold", format!("{v:.2}"));
    }
    let mut alert = serde_json::json!({
        "labels": alertmanager_labels(n),
        "annotations": annotations,
        "startsAt": format_ms(n.started_at_ms),
        "endsAt": format_ms(ends),
    });
    if let Some(link) = dashboard_link(settings, n) {
        alert["generatorURL"] = serde_json::Value::String(link.clone());
        alert["annotations"]["dashboard"] = serde_json::Value::String(link);
    }
    alert
}

/// What Alertmanager is sent for a notice: its alert, and when the level changed, the
/// alert of the previous level ended (the labels differ, so it is another alert there).
pub fn alertmanager_alerts(
    settings: &NotifyConfig,
    n: &Notice,
    sent_ms: i64,
    ends_in_ms: i64,
) -> Vec<serde_json::Value> {
    let mut out = vec![alertmanager_alert(settings, n, sent_ms, ends_in_ms)];
    if n.event == NoticeEvent::Firing && n.previous != Level::Healthy && n.previous != n.severity {
        let mut ended = n.clone();
        ended.event = NoticeEvent::Resolved;
        ended.severity = n.previous;
        out.push(alertmanager_alert(settings, &ended, sent_ms, ends_in_ms));
    }
    out
}

/// The JSON body a webhook receives (docs/notifications.md).
pub fn webhook_payload(settings: &NotifyConfig, n: &Notice) -> serde_json::Value {
    let o = &n.observation;
    serde_json::json!({
        "version": 1,
        "id": n.id,
        "event": n.event,
        "kind": o.kind,
        "server": o.server,
        "profile": o.profile,
        "severity": n.severity,
        "previous_severity": n.previous,
        "metric": o.metric,
        "score": o.score,
        "current": o.current,
        "expected": o.expected,
        "threshold": o.threshold,
        "horizon_minutes": o.horizon_minutes,
        "summary": summary(n),
        "started_at": format_ms(n.started_at_ms),
        "at": format_ms(n.at_ms),
        "dashboard_url": dashboard_link(settings, n),
    })
}

/// Whether a webhook with these filters wants a notice: its kind, a server matching a glob,
/// and a severity (now or before) at or above the minimum.
pub fn webhook_wants(
    min_severity: Level,
    kinds: &[String],
    servers: &[String],
    n: &Notice,
) -> bool {
    let o = &n.observation;
    (kinds.is_empty() || kinds.iter().any(|k| k == o.kind.as_str()))
        && (servers.is_empty()
            || servers
                .iter()
                .any(|g| crate::config::glob_match(g, &o.server)))
        && n.severity.max(n.previous) >= min_severity
}

#[cfg(test)]
mod tests;
