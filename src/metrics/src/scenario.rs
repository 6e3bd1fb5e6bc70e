//! Fleet scenarios: which share of servers is pushed towards trouble, how fast, and to
//! which values. Pure: the simulator asks for an overlay at a simulated instant.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scenario {
    /// Servers follow their own patterns and states.
    Healthy,
    /// A fifth of the fleet climbs over 30 minutes towards warning levels.
    Degrading,
    /// Two fifths of the fleet climb over 10 minutes towards critical levels.
    Critical,
}

impl Scenario {
    pub fn parse(text: &str) -> Option<Scenario> {
        match text.trim().to_ascii_lowercase().as_str() {
            "healthy" => Some(Scenario::Healthy),
            "degrading" => Some(Scenario::Degrading),
            "critical" => Some(Scenario::Critical),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Scenario::Healthy => "healthy",
            Scenario::Degrading => "degrading",
            Scenario::Critical => "critical",
        }
    }

    /// Share of the fleet affected.
    pub fn share(self) -> f64 {
        match self {
            Scenario::Healthy => 0.0,
            Scenario::Degrading => 0.2,
            Scenario::Critical => 0.4,
        }
    }

    /// Simulated seconds from the switch to full effect.
    pub fn ramp_seconds(self) -> f64 {
        match self {
            Scenario::Healthy => 0.0,
            Scenario::Degrading => 1800.0,
            Scenario::Critical => 600.0,
        }
    }

    /// What an affected server reaches at full effect: (metric, value). A metric moves
    /// towards its target only when that is worse than where it is.
    pub fn targets(self) -> &'static [(&'static str, f64)] {
        match self {
            Scenario::Healthy => &[],
            Scenario::Degrading => &[
                ("cpu_user_pct", 72.0),
                ("cpu_iowait_pct", 10.0),
                ("mem_used_pct", 88.0),
                ("swap_used_pct", 20.0),
                ("back_close_wait", 120.0),
                ("front_close_wait", 60.0),
            ],
            Scenario::Critical => &[
                ("cpu_user_pct", 85.0),
                ("cpu_iowait_pct", 12.0),
                ("mem_used_pct", 97.0),
                ("swap_used_pct", 55.0),
                ("disk_usage_pct", 95.0),
                ("back_close_wait", 400.0),
                ("front_close_wait", 200.0),
            ],
        }
    }
}

/// The scenario in force and when it was set (simulated milliseconds).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ScenarioState {
    pub scenario: Scenario,
    pub since_sim_ms: i64,
}

impl ScenarioState {
    /// How far the ramp has come at `sim_ms`, 0 – 1.
    pub fn progress(&self, sim_ms: i64) -> f64 {
        let ramp = self.scenario.ramp_seconds();
        if ramp <= 0.0 {
            return 1.0;
        }
        ((sim_ms - self.since_sim_ms) as f64 / 1000.0 / ramp).clamp(0.0, 1.0)
    }

    /// How many of `fleet` servers it affects.
    pub fn affected(&self, fleet: usize) -> usize {
        (fleet as f64 * self.scenario.share()).round() as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_is_refused() {
        for s in [Scenario::Healthy, Scenario::Degrading, Scenario::Critical] {
            assert_eq!(Scenario::parse(s.name()), Some(s));
        }
        assert_eq!(Scenario::parse(" Critical "), Some(Scenario::Critical));
        assert_eq!(Scenario::parse("meltdown"), None);
    }

    #[test]
    fn ramps_take_their_time() {
        let state = ScenarioState {
            scenario: Scenario::Degrading,
            since_sim_ms: 1_000_000,
        };
        assert_eq!(state.progress(1_000_000), 0.0);
        assert!((state.progress(1_000_000 + 900_000) - 0.5).abs() < 1e-9);
        assert_eq!(state.progress(1_000_000 + 3_600_000), 1.0);
        assert_eq!(state.affected(20), 4);
        let critical = ScenarioState {
            scenario: Scenario::Critical,
            since_sim_ms: 0,
        };
        assert_eq!(critical.affected(20), 8);
        assert_eq!(critical.progress(600_000), 1.0);
    }
}
