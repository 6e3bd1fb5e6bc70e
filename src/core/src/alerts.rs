//! Alert state: each server's current level, and events when a level changes
//! (escalation, de-escalation, resolved), kept in a bounded ring.

use crate::risk::Level;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};

/// What kind of change an event records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// The level rose.
    Escalation,
    /// The level fell but is still above healthy.
    DeEscalation,
    /// The level fell back to healthy.
    Resolved,
}

/// One level change of one server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertEvent {
    /// Sequence number, increasing, so a client can ask for what is new.
    pub seq: u64,
    pub timestamp: String,
    pub server: String,
    pub kind: EventKind,
    pub from: Level,
    pub to: Level,
    pub risk: f64,
    /// The metric that drove the level (highest metric risk), if any.
    pub metric: Option<String>,
}

/// One server's assessment at one refresh.
#[derive(Debug, Clone)]
pub struct Assessment<'a> {
    pub server: &'a str,
    pub level: Level,
    pub risk: f64,
    pub metric: Option<&'a str>,
}

/// Tracks levels across refreshes and records changes.
#[derive(Debug)]
pub struct AlertTracker {
    levels: HashMap<String, Level>,
    events: VecDeque<AlertEvent>,
    max_events: usize,
    next_seq: u64,
}

impl AlertTracker {
    pub fn new(max_events: usize) -> Self {
        AlertTracker {
            levels: HashMap::new(),
            events: VecDeque::new(),
            max_events: max_events.max(1),
            next_seq: 1,
        }
    }

    /// Bounds the event ring anew (after a config reload).
    pub fn set_max_events(&mut self, max_events: usize) {
        self.max_events = max_events.max(1);
        while self.events.len() > self.max_events {
            self.events.pop_front();
        }
    }

    /// Applies one refresh's assessments; returns how many events it recorded. A server seen
    /// for the first time starts from healthy, so a server that arrives in trouble escalates.
    pub fn update<'a>(
        &mut self,
        timestamp: &str,
        assessments: impl Iterator<Item = Assessment<'a>>,
    ) -> usize {
        let mut recorded = 0;
        for a in assessments {
            let previous = self.levels.get(a.server).copied().unwrap_or(Level::Healthy);
            if previous == a.level {
                continue;
            }
            self.levels.insert(a.server.to_string(), a.level);
            let kind = if a.level > previous {
                EventKind::Escalation
            } else if a.level == Level::Healthy {
                EventKind::Resolved
            } else {
                EventKind::DeEscalation
            };
            if self.events.len() == self.max_events {
                self.events.pop_front();
            }
            self.events.push_back(AlertEvent {
                seq: self.next_seq,
                timestamp: timestamp.to_string(),
                server: a.server.to_string(),
                kind,
                from: previous,
                to: a.level,
                risk: a.risk,
                metric: a.metric.map(str::to_string),
            });
            self.next_seq += 1;
            recorded += 1;
        }
        recorded
    }

    /// Events newest last, at most `limit`, only those with `seq > after`.
    pub fn events(&self, after: u64, limit: usize) -> Vec<AlertEvent> {
        let newer: Vec<&AlertEvent> = self.events.iter().filter(|e| e.seq > after).collect();
        let skip = newer.len().saturating_sub(limit);
        newer.into_iter().skip(skip).cloned().collect()
    }

    pub fn level_of(&self, server: &str) -> Level {
        self.levels.get(server).copied().unwrap_or(Level::Healthy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(server: &str, level: Level) -> Assessment<'_> {
        Assessment {
            server,
            level,
            risk: 0.0,
            metric: Some("cpu_user_pct"),
        }
    }

    #[test]
    fn records_escalation_de_escalation_and_resolution() {
        let mut t = AlertTracker::new(100);
        assert_eq!(t.update("t0", [a("x", Level::Healthy)].into_iter()), 0);
        assert_eq!(t.update("t1", [a("x", Level::Critical)].into_iter()), 1);
        assert_eq!(t.update("t2", [a("x", Level::Critical)].into_iter()), 0);
        assert_eq!(t.update("t3", [a("x", Level::Watch)].into_iter()), 1);
        assert_eq!(t.update("t4", [a("x", Level::Healthy)].into_iter()), 1);
        let kinds: Vec<(EventKind, Level, Level)> = t
            .events(0, 10)
            .iter()
            .map(|e| (e.kind, e.from, e.to))
            .collect();
        assert_eq!(
            kinds,
            vec![
                (EventKind::Escalation, Level::Healthy, Level::Critical),
                (EventKind::DeEscalation, Level::Critical, Level::Watch),
                (EventKind::Resolved, Level::Watch, Level::Healthy),
            ]
        );
        assert_eq!(t.level_of("x"), Level::Healthy);
        assert_eq!(t.events(2, 10).len(), 1);
    }

    #[test]
    fn events_are_bounded() {
        let mut t = AlertTracker::new(3);
        for i in 0..10 {
            let level = if i % 2 == 0 {
                Level::Warning
            } else {
                Level::Healthy
            };
            t.update("t", [a("x", level)].into_iter());
        }
        let events = t.events(0, 100);
        assert_eq!(events.len(), 3);
        assert_eq!(events.last().unwrap().seq, 10);
        assert_eq!(t.events(0, 2).len(), 2);
        t.set_max_events(1);
        assert_eq!(t.events(0, 100).len(), 1);
    }
}
