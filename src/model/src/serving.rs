//! What the daemon forecasts with: the trained model for servers whose encoder window is
//! full, the configured baseline for the others (and for everything before any model is
//! trained), in one `Forecaster`.

use crate::baseline::Baseline;
use crate::tft::TftForecaster;
use crate::Forecaster;
use nordiq_core::anomaly::{confirm, AnomalyBook, AnomalyReading};
use nordiq_core::config::{AnomalyConfig, Config};
use nordiq_core::forecast::ServerForecast;
use nordiq_core::window::WindowSnapshot;
use std::sync::Arc;

pub struct Serving {
    /// Shared so a config reload can pair the loaded model with a new baseline.
    pub model: Option<Arc<TftForecaster>>,
    pub baseline: Baseline,
    encoder_steps: usize,
    id: String,
}

impl Serving {
    pub fn new(
        model: Option<Arc<TftForecaster>>,
        baseline: Baseline,
        encoder_steps: usize,
    ) -> Serving {
        let id = match &model {
            Some(m) => m.id().to_string(),
            None => baseline.id().to_string(),
        };
        Serving {
            model,
            baseline,
            encoder_steps,
            id,
        }
    }

    /// The model forecasts a server once its encoder window is full (and a model is loaded).
    pub fn model_serves(&self, snapshot: &WindowSnapshot) -> bool {
        self.model.is_some() && snapshot.len >= self.encoder_steps
    }

    /// The anomaly threshold for the server of `snapshot`: the model's when the model
    /// forecasts it, else the baseline's.
    pub fn anomaly_threshold_for(&self, snapshot: &WindowSnapshot, anomaly: &AnomalyConfig) -> f64 {
        match &self.model {
            Some(model) if self.model_serves(snapshot) => model.anomaly_threshold(anomaly),
            _ => self.baseline.anomaly_threshold(anomaly),
        }
    }

    /// Holds the anomaly readings of the servers the model serves to `baseline`, the best
    /// baseline beside it (`anomaly.confirm_with_baseline`): `baseline` forecasts those
    /// servers too, `witness` keeps its anomaly state, and a model's anomaly stands only
    /// where the baseline sees one (`nordiq_core::anomaly::confirm`, in the model's units).
    /// Without a model, or with the option off, the readings stay as they are.
    pub fn confirm_anomalies(
        &self,
        config: &Config,
        baseline: &dyn Forecaster,
        witness: &mut AnomalyBook,
        snapshots: &[WindowSnapshot],
        readings: &mut [AnomalyReading],
    ) {
        let warm: Vec<usize> = if config.anomaly.confirm_with_baseline && self.model.is_some() {
            (0..snapshots.len())
                .filter(|&i| self.model_serves(&snapshots[i]))
                .collect()
        } else {
            Vec::new()
        };
        let picked: Vec<&WindowSnapshot> = warm.iter().map(|&i| &snapshots[i]).collect();
        let theirs = if picked.is_empty() {
            Vec::new()
        } else {
            baseline.forecast_batch(&picked)
        };
        // Updated even when empty, so servers the model no longer serves are forgotten.
        let seen = witness.update_all(config, picked.iter().copied().zip(theirs.iter()));
        for (&i, seen) in warm.iter().zip(&seen) {
            let scale = self.anomaly_threshold_for(&snapshots[i], &config.anomaly)
                / config.anomaly.threshold;
            let own = std::mem::replace(&mut readings[i], AnomalyReading::none(0, 0.0));
            readings[i] = confirm(own, seen, scale);
        }
    }
}

impl Forecaster for Serving {
    fn id(&self) -> &str {
        &self.id
    }

    fn forecast_batch(&self, snapshots: &[&WindowSnapshot]) -> Vec<ServerForecast> {
        let Some(model) = &self.model else {
            return self.baseline.forecast_batch(snapshots);
        };
        let (warm, cold): (Vec<usize>, Vec<usize>) =
            (0..snapshots.len()).partition(|&i| self.model_serves(snapshots[i]));
        let pick = |idx: &[usize]| idx.iter().map(|&i| snapshots[i]).collect::<Vec<_>>();
        let mut out: Vec<Option<ServerForecast>> = vec![None; snapshots.len()];
        for (i, f) in warm.iter().zip(model.forecast_batch(&pick(&warm))) {
            out[*i] = Some(f);
        }
        for (i, f) in cold.iter().zip(self.baseline.forecast_batch(&pick(&cold))) {
            out[*i] = Some(f);
        }
        out.into_iter().flatten().collect()
    }
}
