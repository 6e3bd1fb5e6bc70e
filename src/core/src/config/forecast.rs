//! `[forecast]`: baselines, refresh cadence and summary horizons.

use super::invalid::{require, Invalid};
use super::ModelConfig;
use serde::{Deserialize, Serialize};

/// Which baseline serves when no trained model is present.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BaselineKind {
    /// Per server, the baseline below that forecast the server's own last horizon best
    /// (lowest scaled absolute error); chosen again whenever a new step closes.
    Auto,
    /// The median of the same step in the last `median_seasons` seasons (as many as the
    /// history holds); fitted smoothing while history is shorter than a season.
    SeasonalMedian,
    /// Seasonal naive at the daily season, fitted smoothing while history is shorter.
    SeasonalNaive,
    /// Seasonal naive at a week (7 seasons) once the history holds a week and a step;
    /// seasonal naive at the season before that.
    SeasonalNaiveWeek,
    /// Exponential smoothing with its parameters fitted per series: level only, or level
    /// and damped trend, whichever fits the window better (AICc). `holt` is the old name.
    #[serde(alias = "holt")]
    Ets,
    /// The last observed value, held flat.
    LastValue,
}

impl BaselineKind {
    /// Every concrete baseline (not `auto`), in the order reports list them.
    pub const ALL: [BaselineKind; 5] = [
        BaselineKind::SeasonalNaive,
        BaselineKind::SeasonalNaiveWeek,
        BaselineKind::SeasonalMedian,
        BaselineKind::Ets,
        BaselineKind::LastValue,
    ];

    /// The id forecasts and reports carry (`baseline:<name>`).
    pub fn id(self) -> &'static str {
        match self {
            BaselineKind::Auto => "baseline:auto",
            BaselineKind::SeasonalMedian => "baseline:seasonal_median",
            BaselineKind::SeasonalNaive => "baseline:seasonal_naive",
            BaselineKind::SeasonalNaiveWeek => "baseline:seasonal_naive_week",
            BaselineKind::Ets => "baseline:ets",
            BaselineKind::LastValue => "baseline:last_value",
        }
    }

    /// The kind for an id (`baseline:ets`, or just `ets`; `holt` is accepted for `ets`).
    pub fn from_id(id: &str) -> Option<BaselineKind> {
        let name = id.strip_prefix("baseline:").unwrap_or(id);
        if name == "holt" {
            return Some(BaselineKind::Ets);
        }
        std::iter::once(BaselineKind::Auto)
            .chain(BaselineKind::ALL)
            .find(|k| k.id().strip_prefix("baseline:") == Some(name))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ForecastConfig {
    pub baseline: BaselineKind,
    /// Season length for the seasonal baselines (a multiple of the step).
    pub season_seconds: u32,
    /// Seasons the seasonal median (and the trained model's seasonal input) looks back.
    pub median_seasons: usize,
    /// Aggregated steps a server needs before it is forecast at all.
    pub min_history_steps: usize,
    /// Forecasts are recomputed at every step boundary and at least this often, so risk
    /// follows current values between steps.
    pub refresh_seconds: u64,
    /// Horizons summarised in `GET /predictions/current`.
    pub summary_horizons_minutes: Vec<u32>,
    /// Worker threads for a refresh; 0 = one per core.
    pub threads: usize,
}

impl Default for ForecastConfig {
    fn default() -> Self {
        ForecastConfig {
            baseline: BaselineKind::Auto,
            season_seconds: 86_400,
            median_seasons: 7,
            min_history_steps: 12,
            refresh_seconds: 60,
            summary_horizons_minutes: vec![30, 60, 480],
            threads: 0,
        }
    }
}

impl ForecastConfig {
    /// Checks against the model's grid (the season is a multiple of its step, summaries lie
    /// inside its horizon).
    pub(crate) fn validate(&self, model: &ModelConfig) -> Result<(), Invalid> {
        require(
            self.season_seconds > 0 && self.season_seconds.is_multiple_of(model.step_seconds),
            "forecast.season_seconds",
            || "must be a positive multiple of model.step_seconds".into(),
        )?;
        require(
            (1..=28).contains(&self.median_seasons),
            "forecast.median_seasons",
            || format!("{} must be between 1 and 28", self.median_seasons),
        )?;
        require(self.refresh_seconds > 0, "forecast.refresh_seconds", || {
            "must be at least 1".into()
        })?;
        require(
            self.min_history_steps >= 2,
            "forecast.min_history_steps",
            || "must be at least 2".into(),
        )?;
        let horizon = model.horizon_minutes();
        match self
            .summary_horizons_minutes
            .iter()
            .find(|h| **h == 0 || **h as u64 > horizon)
        {
            Some(h) => Err(Invalid::new(
                "forecast.summary_horizons_minutes",
                format!("{h} must be between 1 and the horizon ({horizon} minutes)"),
            )),
            None => Ok(()),
        }
    }
}
