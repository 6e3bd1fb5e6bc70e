//! `[live]`: live accuracy, the forecasts the daemon served scored against what happened
//! (see `nordiq_model::live`).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LiveConfig {
    /// Keep served forecasts (and the best baseline's) every this many steps (12 = hourly
    /// at 5-minute steps).
    pub origin_every_steps: usize,
    /// At most this many servers per kept origin (a different slice of the fleet each
    /// time); 0 turns live accuracy off.
    pub max_servers: usize,
}

impl Default for LiveConfig {
    fn default() -> Self {
        LiveConfig {
            origin_every_steps: 12,
            max_servers: 50,
        }
    }
}

impl LiveConfig {
    pub fn validate(&self) -> Result<(), (String, String)> {
        if self.origin_every_steps == 0 {
            return Err((
                "live.origin_every_steps".into(),
                "must be at least 1".into(),
            ));
        }
        if self.max_servers > 10_000 {
            return Err(("live.max_servers".into(), "must be at most 10000".into()));
        }
        Ok(())
    }
}
