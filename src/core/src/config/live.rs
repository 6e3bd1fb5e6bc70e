//! `[live]`: live accuracy, the forecasts the daemon served scored against what happened
//! (see `nordiq_model::live`).

use super::invalid::Invalid;
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
    pub(crate) fn validate(&self) -> Result<(), Invalid> {
        if self.origin_every_steps == 0 {
            return Err(Invalid::new(
                "live.origin_every_steps",
                "must be at least 1",
            ));
        }
        if self.max_servers > 10_000 {
            return Err(Invalid::new("live.max_servers", "must be at most 10000"));
        }
        Ok(())
    }
}
