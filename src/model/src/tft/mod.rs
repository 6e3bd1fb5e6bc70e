//! The Temporal Fusion Transformer: shape (what `config.json` records), the network, the
//! inputs, training, and a [`Forecaster`](crate::Forecaster) that serves it from worker
//! threads, a copy of the model each (tch modules are `Send` but not `Sync`).

pub mod features;
mod fused;
pub mod memory;
mod network;
pub mod train;
mod worker;

pub use network::{
    pinball_loss, set_fused_forecast_passes, Tft, TftOutput, LEVEL_PATH_GROUP, LEVEL_PATH_LR_SCALE,
};
pub use worker::TftForecaster;

use features::{Prepared, TIME_FEATURES};
use nordiq_core::config::Config;
use nordiq_core::forecast::ServerForecast;
use nordiq_core::window::WindowSnapshot;
use serde::{Deserialize, Serialize};
use std::path::Path;
use tch::nn;
use tch::{Device, Kind, Tensor};

/// 3: trained on the same history it is served with; the seasonal median smoothed over
/// neighbouring steps (`seasonal_width`); the level-correction path (`residual_steps`).
/// 2: a static variable selection network over the profile and each metric's
/// level and spread; per-variable width `variable_hidden`; the seasonal-median decoder input.
pub const FORMAT_VERSION: u32 = 3;

/// Neighbouring steps on each side that the decoder's seasonal median also takes (chosen
/// on ASD's training split: 0 → 0.749, 1 → 0.739, 2 → 0.738, 4 → 0.741 MASE).
pub const DEFAULT_SEASONAL_WIDTH: usize = 2;
/// Spans (steps) over which the recent residual against the seasonal median is averaged
/// for the level-correction path.
pub const DEFAULT_RESIDUAL_STEPS: [usize; 2] = [3, 12];
fn one() -> usize {
    1
}

/// Default width of the per-variable processing (`TftShape::variable_hidden`).
pub const DEFAULT_VARIABLE_HIDDEN: usize = 8;
/// Windows per forward pass when serving.
pub const FORWARD_CHUNK: usize = 64;

/// Everything that fixes the network's shape and meaning; written as `config.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TftShape {
    pub format_version: u32,
    pub metrics: Vec<String>,
    /// Each metric's catalog range (forecasts are clamped into it).
    pub metric_ranges: Vec<(f64, f64)>,
    pub profiles: Vec<String>,
    pub default_profile: String,
    pub step_seconds: u32,
    pub encoder_steps: usize,
    pub horizon_steps: usize,
    /// The decoder also reads each metric's value one season before every forecast step
    /// (known at forecast time), so the network learns corrections to the seasonal pattern.
    pub season_steps: usize,
    /// That seasonal input is the median of the same step in this many past seasons (as
    /// many as the history holds; 1 = the value one season before). Missing in files
    /// written before it existed: 1.
    #[serde(default = "one")]
    pub seasons: usize,
    /// The seasonal median also takes this many neighbouring steps on each side of the
    /// step in every season (0 = the step alone).
    #[serde(default)]
    pub seasonal_width: usize,
    /// For each span k here, each metric's mean residual against its seasonal median over
    /// the last k steps feeds a learned per-step, per-quantile correction added to the
    /// forecast (the level-correction path; see [`network`]).
    #[serde(default)]
    pub residual_steps: Vec<usize>,
    pub quantiles: Vec<f64>,
    /// Band calibration fitted on validation windows after training, per metric and
    /// quantile (`[metric][quantile]` flattened): each quantile's distance from the
    /// median is multiplied by its factor (the median's is 1). Empty: uncalibrated (files
    /// written before it existed, and a network in training).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub band_scales: Vec<f64>,
    /// Correction calibration fitted on validation windows after training (before the
    /// band calibration), per metric and horizon bucket (`[metric][bucket]`, the buckets
    /// of `accuracy::horizon_buckets`; one per metric applies to every step): the
    /// forecast's median moves to the factor of its distance from the seasonal median it
    /// corrects (below 1 toward the seasonal median, above 1 away from it), and every
    /// quantile moves with it. Empty: none (files written before it existed, and a network
    /// in training).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub correction_scales: Vec<f64>,
    pub hidden: usize,
    /// Width of each input variable's own embedding and GRN in the variable selection
    /// networks (the TFT paper's per-variable processing; smaller than `hidden` because it
    /// runs once per variable and time step). 0 in files written before it existed means
    /// `hidden`.
    #[serde(default)]
    pub variable_hidden: usize,
    pub heads: usize,
    pub dropout: f64,
    /// How inputs are scaled (recorded so a reader knows what the weights expect).
    pub normalisation: String,
}

impl TftShape {
    pub fn from_config(config: &Config, hidden: usize, heads: usize, dropout: f64) -> TftShape {
        TftShape {
            format_version: FORMAT_VERSION,
            metrics: config.metrics.iter().map(|m| m.name.clone()).collect(),
            metric_ranges: config.metrics.iter().map(|m| (m.min, m.max)).collect(),
            profiles: config.profiles.iter().map(|p| p.name.clone()).collect(),
            default_profile: config.ingest.default_profile.clone(),
            step_seconds: config.model.step_seconds,
            encoder_steps: config.model.encoder_steps,
            horizon_steps: config.model.horizon_steps,
            season_steps: config.season_steps(),
            seasons: config.forecast.median_seasons,
            seasonal_width: DEFAULT_SEASONAL_WIDTH,
            residual_steps: DEFAULT_RESIDUAL_STEPS.to_vec(),
            quantiles: config.model.quantiles.clone(),
            band_scales: Vec::new(),
            correction_scales: Vec::new(),
            hidden,
            variable_hidden: DEFAULT_VARIABLE_HIDDEN.min(hidden),
            heads,
            dropout,
            normalisation:
                "per series and metric: mean and standard deviation of the encoder window".into(),
        }
    }

    #[cfg(test)]
    pub fn for_test(metrics: usize, encoder: usize, horizon: usize) -> TftShape {
        TftShape {
            format_version: FORMAT_VERSION,
            metrics: (0..metrics).map(|m| format!("m{m}")).collect(),
            metric_ranges: vec![(0.0, 100.0); metrics],
            profiles: vec!["generic".into(), "web_api".into()],
            default_profile: "generic".into(),
            step_seconds: 3600,
            encoder_steps: encoder,
            horizon_steps: horizon,
            season_steps: 24,
            seasons: 1,
            seasonal_width: 0,
            residual_steps: Vec::new(),
            quantiles: vec![0.1, 0.5, 0.9],
            band_scales: Vec::new(),
            correction_scales: Vec::new(),
            hidden: 8,
            variable_hidden: 4,
            heads: 2,
            dropout: 0.0,
            normalisation: "test".into(),
        }
    }

    /// The per-variable width actually used (see `variable_hidden`).
    pub fn variable_width(&self) -> usize {
        match self.variable_hidden {
            0 => self.hidden,
            n => n,
        }
    }

    /// Real-valued static inputs: each metric's level and spread in the encoder window.
    pub fn static_reals(&self) -> usize {
        2 * self.metrics.len()
    }

    pub fn encoder_vars(&self) -> usize {
        self.metrics.len() + TIME_FEATURES
    }

    pub fn decoder_vars(&self) -> usize {
        TIME_FEATURES + self.metrics.len()
    }

    /// Steps of history a window needs for every input: the encoder, and the seasons (and
    /// neighbouring steps) the seasonal median reaches back from the oldest step it is
    /// taken for — the oldest recent residual.
    pub fn history_steps(&self) -> usize {
        let residual = self.residual_steps.iter().copied().max().unwrap_or(0);
        self.encoder_steps
            .max(self.seasons.max(1) * self.season_steps + self.seasonal_width + residual)
    }

    pub fn profile_index(&self, profile: &str) -> i64 {
        self.profiles
            .iter()
            .position(|p| p == profile)
            .or_else(|| {
                self.profiles
                    .iter()
                    .position(|p| *p == self.default_profile)
            })
            .unwrap_or(0) as i64
    }

    /// Whether a daemon with `config` can be served by this model: same metrics in the
    /// same order, same step, horizon and quantiles.
    pub fn compatible_with(&self, config: &Config) -> Result<(), String> {
        let names: Vec<&str> = config.metrics.iter().map(|m| m.name.as_str()).collect();
        if names != self.metrics.iter().map(String::as_str).collect::<Vec<_>>() {
            return Err(format!(
                "the model's metrics {:?} differ from the catalog {names:?}",
                self.metrics
            ));
        }
        if self.step_seconds != config.model.step_seconds
            || self.horizon_steps != config.model.horizon_steps
            || self.encoder_steps != config.model.encoder_steps
            || self.quantiles != config.model.quantiles
        {
            return Err(format!(
                "the model was trained for step {} s, encoder {}, horizon {}, quantiles {:?}; the config says {} s, {}, {}, {:?}",
                self.step_seconds,
                self.encoder_steps,
                self.horizon_steps,
                self.quantiles,
                config.model.step_seconds,
                config.model.encoder_steps,
                config.model.horizon_steps,
                config.model.quantiles
            ));
        }
        Ok(())
    }
}

/// Why a model could not be built, loaded or saved.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("{path}: {message}")]
    Load { path: String, message: String },
    #[error("model error: {0}")]
    Torch(#[from] tch::TchError),
}

/// A network with its weights.
pub struct TftModel {
    pub shape: TftShape,
    pub vs: nn::VarStore,
    pub net: Tft,
}

/// Tensors of a batch of prepared windows.
pub struct Batch {
    pub past: Tensor,
    pub future: Tensor,
    pub profile: Tensor,
    /// [B, 2M]: per metric, the encoder window's mean as a fraction of the metric's range,
    /// then its spread as ln(std / range) / 4 (see [`static_reals_of`]).
    pub static_real: Tensor,
    /// [B, M, R]: the recent residuals (see [`Prepared::recent`]).
    pub recent: Tensor,
    pub target: Option<(Tensor, Tensor)>,
}

/// The static real inputs of one window: level and spread of each metric relative to its
/// catalog range (a range without a finite end counts as width 1), so servers of any scale
/// land in similar numbers.
pub fn static_reals_of(shape: &TftShape, w: &Prepared) -> Vec<f32> {
    let m = shape.metrics.len();
    let mut out = vec![0f32; 2 * m];
    for i in 0..m {
        let (lo, hi) = shape.metric_ranges.get(i).copied().unwrap_or((0.0, 1.0));
        let (lo, width) = if lo.is_finite() && hi.is_finite() && hi > lo {
            (lo, hi - lo)
        } else {
            (0.0, 1.0)
        };
        let level = (w.mean[i] as f64 - lo) / width;
        let spread = (w.scale[i] as f64 / width).max(1e-9).ln() / 4.0;
        out[i] = level.clamp(-10.0, 10.0) as f32;
        out[m + i] = spread.clamp(-10.0, 10.0) as f32;
    }
    out
}

impl TftModel {
    pub fn new(shape: TftShape, device: Device, seed: u64) -> TftModel {
        memory::keep_tensor_memory();
        tch::manual_seed(seed as i64);
        let vs = nn::VarStore::new(device);
        let net = Tft::new(&vs.root(), &shape);
        TftModel { shape, vs, net }
    }

    /// Loads `dir/config.json` and `dir/weights.safetensors`.
    pub fn load(dir: &Path, device: Device) -> Result<TftModel, ModelError> {
        memory::keep_tensor_memory();
        let err = |path: &Path, message: String| ModelError::Load {
            path: path.display().to_string(),
            message,
        };
        let config_path = dir.join("config.json");
        let text =
            std::fs::read_to_string(&config_path).map_err(|e| err(&config_path, e.to_string()))?;
        let shape: TftShape =
            serde_json::from_str(&text).map_err(|e| err(&config_path, e.to_string()))?;
        if shape.format_version != FORMAT_VERSION {
            return Err(err(
                &config_path,
                format!(
                    "format version {} (this build reads {FORMAT_VERSION})",
                    shape.format_version
                ),
            ));
        }
        let mut model = TftModel::new(shape, device, 0);
        let weights = dir.join("weights.safetensors");
        model
            .vs
            .load(&weights)
            .map_err(|e| err(&weights, e.to_string()))?;
        Ok(model)
    }

    /// Writes `config.json` and `weights.safetensors` into `dir`.
    pub fn save(&self, dir: &Path) -> Result<(), ModelError> {
        let config_path = dir.join("config.json");
        let json = serde_json::to_vec_pretty(&self.shape).map_err(|e| ModelError::Load {
            path: config_path.display().to_string(),
            message: e.to_string(),
        })?;
        std::fs::write(&config_path, json).map_err(|e| ModelError::Load {
            path: config_path.display().to_string(),
            message: e.to_string(),
        })?;
        self.vs.save(dir.join("weights.safetensors"))?;
        Ok(())
    }

    /// Sets (or, with an empty slice, clears) the band calibration in the network and in
    /// the shape `save` writes.
    pub fn set_band_scales(&mut self, scales: &[f64]) {
        self.shape.band_scales = scales.to_vec();
        self.net.set_band_scales(scales);
    }

    /// Sets (or, with an empty slice, clears) the correction calibration in the network
    /// and in the shape `save` writes.
    pub fn set_correction_scales(&mut self, scales: &[f64]) {
        self.shape.correction_scales = scales.to_vec();
        self.net.set_correction_scales(scales);
    }

    /// The model's quantile levels as a tensor on its device (for the pinball loss).
    pub fn quantile_tensor(&self) -> Tensor {
        let levels: Vec<f32> = self.shape.quantiles.iter().map(|q| *q as f32).collect();
        Tensor::from_slice(&levels).to(self.vs.device())
    }

    pub fn batch(&self, windows: &[&Prepared]) -> Batch {
        let device = self.vs.device();
        let (b, t, h, m) = (
            windows.len() as i64,
            self.shape.encoder_steps as i64,
            self.shape.horizon_steps as i64,
            self.shape.metrics.len() as i64,
        );
        let cat = |f: &dyn Fn(&Prepared) -> &[f32]| -> Vec<f32> {
            windows.iter().flat_map(|w| f(w).iter().copied()).collect()
        };
        let past = Tensor::from_slice(&cat(&|w| &w.past))
            .view([b, t, self.shape.encoder_vars() as i64])
            .to(device);
        let future = Tensor::from_slice(&cat(&|w| &w.future))
            .view([b, h, self.shape.decoder_vars() as i64])
            .to(device);
        let profile =
            Tensor::from_slice(&windows.iter().map(|w| w.profile).collect::<Vec<_>>()).to(device);
        let reals: Vec<f32> = windows
            .iter()
            .flat_map(|w| static_reals_of(&self.shape, w))
            .collect();
        let static_real = Tensor::from_slice(&reals)
            .view([b, self.shape.static_reals() as i64])
            .to(device);
        let recent = Tensor::from_slice(&cat(&|w| &w.recent))
            .view([b, m, self.shape.residual_steps.len() as i64])
            .to(device);
        let target = windows.iter().all(|w| w.target.is_some()).then(|| {
            let y: Vec<f32> = windows
                .iter()
                .flat_map(|w| w.target.as_ref().map(|t| t.0.clone()).unwrap_or_default())
                .collect();
            let mask: Vec<f32> = windows
                .iter()
                .flat_map(|w| w.target.as_ref().map(|t| t.1.clone()).unwrap_or_default())
                .collect();
            (
                Tensor::from_slice(&y).view([b, h, m]).to(device),
                Tensor::from_slice(&mask).view([b, h, m]).to(device),
            )
        });
        Batch {
            past,
            future,
            profile,
            static_real,
            recent,
            target,
        }
    }

    /// Prepares a snapshot for inference.
    pub fn prepare_snapshot(&self, s: &WindowSnapshot) -> Prepared {
        features::prepare(
            &self.shape,
            &|m| s.series(m),
            s.last_step,
            self.shape.profile_index(&s.profile),
            None,
        )
    }

    /// Forecasts prepared windows, a forward pass per [`FORWARD_CHUNK`] windows (the
    /// variable-selection embeddings are windows × steps × variables × hidden floats, so
    /// one pass over 1,000 servers would need gigabytes): denormalised, quantiles sorted
    /// (so they never cross), clamped to each metric's range.
    pub fn forecast(&self, windows: &[&Prepared]) -> Vec<ServerForecast> {
        windows
            .chunks(FORWARD_CHUNK)
            .flat_map(|chunk| self.forecast_chunk(chunk))
            .collect()
    }

    fn forecast_chunk(&self, windows: &[&Prepared]) -> Vec<ServerForecast> {
        if windows.is_empty() {
            return Vec::new();
        }
        let batch = self.batch(windows);
        let out = tch::no_grad(|| self.net.forward(&batch, false));
        let q = out.quantiles.sort(-1, false).0;
        let (h, m, nq) = (
            self.shape.horizon_steps,
            self.shape.metrics.len(),
            self.shape.quantiles.len(),
        );
        let flat: Vec<f32> = match network::to_f32_vec(&q) {
            Some(v) => v,
            None => {
                return windows
                    .iter()
                    .map(|_| ServerForecast::empty("tft", m, nq, h))
                    .collect()
            }
        };
        windows
            .iter()
            .enumerate()
            .map(|(b, w)| {
                let mut f = ServerForecast::empty("tft", m, nq, h);
                for mi in 0..m {
                    let (lo, hi) = self.shape.metric_ranges[mi];
                    for qi in 0..nq {
                        let series = f.series_mut(mi, qi);
                        for (hi_step, dst) in series.iter_mut().enumerate() {
                            let v = flat[((b * h + hi_step) * m + mi) * nq + qi];
                            let real = (v * w.scale[mi] + w.mean[mi]) as f64;
                            *dst = if real.is_finite() {
                                real.clamp(lo, hi) as f32
                            } else {
                                f32::NAN
                            };
                        }
                    }
                }
                f
            })
            .collect()
    }

    /// The model's own explanation of one window: variable-selection weights (encoder and
    /// decoder, averaged over time) and attention of each forecast step over past steps.
    pub fn explain(&self, window: &Prepared) -> Explanation {
        let batch = self.batch(&[window]);
        let out = tch::no_grad(|| self.net.forward_explained(&batch));
        let to_vec = |t: Tensor| network::to_f32_vec(&t).unwrap_or_default();
        let mut encoder_names = self.shape.metrics.clone();
        let time_names = [
            "time_of_day_sin",
            "time_of_day_cos",
            "day_of_week_sin",
            "day_of_week_cos",
            "weekend",
        ];
        encoder_names.extend(time_names.iter().map(|s| s.to_string()));
        let statics = to_vec(out.static_weights);
        let enc = to_vec(out.encoder_weights.mean_dim(1, false, Kind::Float));
        let dec = to_vec(out.decoder_weights.mean_dim(1, false, Kind::Float));
        let t = self.shape.encoder_steps;
        // Mean attention over forecast steps, on the encoder positions only.
        let attention = out
            .attention
            .map(|a| to_vec(a.mean_dim(1, false, Kind::Float).narrow(1, 0, t as i64)))
            .unwrap_or_default();
        let static_names = std::iter::once("profile".to_string())
            .chain(self.shape.metrics.iter().map(|m| format!("{m}_level")))
            .chain(self.shape.metrics.iter().map(|m| format!("{m}_spread")));
        Explanation {
            static_variables: static_names.zip(statics).collect(),
            encoder_variables: encoder_names.into_iter().zip(enc).collect(),
            decoder_variables: time_names
                .iter()
                .map(|s| s.to_string())
                .chain(
                    self.shape
                        .metrics
                        .iter()
                        .map(|m| format!("{m}_seasonal_median")),
                )
                .zip(dec)
                .collect(),
            attention_over_past_steps: attention,
        }
    }
}

/// `GET /explain/{server}`'s body.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Explanation {
    /// The profile and each metric's level and spread in the window.
    pub static_variables: Vec<(String, f32)>,
    pub encoder_variables: Vec<(String, f32)>,
    pub decoder_variables: Vec<(String, f32)>,
    /// One weight per past step, oldest first (sums to the share of attention on the past).
    pub attention_over_past_steps: Vec<f32>,
}

#[cfg(test)]
mod tests;
