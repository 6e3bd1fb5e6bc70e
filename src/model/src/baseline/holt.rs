//! Damped-trend exponential smoothing (additive, Gardner & McKenzie), with quantile bands
//! from its own one-step residuals widened by the model's h-step variance factor.

use crate::stats::{fill_forward, quantile_in_place};

/// Smoothing parameters: level α, trend β (of the level change), damping φ.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HoltParams {
    pub alpha: f64,
    pub beta: f64,
    pub phi: f64,
}

/// Steps skipped before residuals count, while level and trend settle.
const BURN_IN: usize = 3;

/// Forecasts `horizon` steps into `bands[q][h]`. False when the series has no values.
pub fn holt_series(
    series: &[f32],
    p: HoltParams,
    horizon: usize,
    quantiles: &[f64],
    bands: &mut [Vec<f32>],
) -> bool {
    let Some(y) = fill_forward(series) else {
        return false;
    };
    let mut level = y[0] as f64;
    let mut trend = if y.len() > 1 {
        (y[1] - y[0]) as f64
    } else {
        0.0
    };
    let mut residuals = Vec::with_capacity(y.len());
    for (t, &obs) in y.iter().enumerate().skip(1) {
        let obs = obs as f64;
        let predicted = level + p.phi * trend;
        if t > BURN_IN && !series[t].is_nan() {
            residuals.push((obs - predicted) as f32);
        }
        let new_level = p.alpha * obs + (1.0 - p.alpha) * predicted;
        trend = p.beta * (new_level - level) + (1.0 - p.beta) * p.phi * trend;
        level = new_level;
    }
    let offsets: Vec<f32> = if residuals.is_empty() {
        vec![0.0; quantiles.len()]
    } else {
        quantiles
            .iter()
            .map(|q| quantile_in_place(&mut residuals, *q))
            .collect()
    };
    // ETS(A,Ad,N): var_h / σ² = 1 + Σ_{j<h} c_j², c_j = α(1 + β·(φ + … + φ^j)).
    let (mut damp_sum, mut phi_pow, mut var_factor) = (0.0f64, 1.0f64, 1.0f64);
    for h in 1..=horizon {
        phi_pow *= p.phi;
        damp_sum += phi_pow;
        let point = level + damp_sum * trend;
        let widen = var_factor.sqrt();
        for (band, offset) in bands.iter_mut().zip(&offsets) {
            band[h - 1] = (point + *offset as f64 * widen) as f32;
        }
        let c = p.alpha * (1.0 + p.beta * damp_sum);
        var_factor += c * c;
    }
    true
}
