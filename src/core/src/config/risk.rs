//! `[risk]`: how current and predicted values blend into a risk score.

use super::invalid::{require, Invalid};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RiskConfig {
    /// Weight of the current value; the predicted peak gets the rest.
    pub current_weight: f64,
    /// How far ahead the predicted peak looks.
    pub lookahead_minutes: u32,
    /// How many servers `top_risks` lists.
    pub top_n: usize,
}

impl Default for RiskConfig {
    fn default() -> Self {
        RiskConfig {
            current_weight: 0.7,
            lookahead_minutes: 120,
            top_n: 10,
        }
    }
}

impl RiskConfig {
    pub(crate) fn validate(&self, horizon_minutes: u64) -> Result<(), Invalid> {
        require(
            (0.0..=1.0).contains(&self.current_weight),
            "risk.current_weight",
            || "must be in [0, 1]".into(),
        )?;
        require(
            self.lookahead_minutes > 0 && self.lookahead_minutes as u64 <= horizon_minutes,
            "risk.lookahead_minutes",
            || format!("must be between 1 and the horizon ({horizon_minutes} minutes)"),
        )
    }
}
