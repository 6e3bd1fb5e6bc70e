//! Exponential smoothing with its parameters fitted to each series (additive errors): level
//! only (simple exponential smoothing) or level plus damped trend (Gardner & McKenzie),
//! whichever fits the window better by AICc, as AutoETS chooses among its non-seasonal
//! forms. Quantile bands from the chosen model's own one-step residuals, widened by its
//! h-step variance factor.

use crate::stats::{centred_offsets, fill_forward, quantile_in_place};

/// Smoothing parameters: level α, trend β (of the level change), damping φ; β = 0 and
/// φ = 0 is level only.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EtsParams {
    pub alpha: f64,
    pub beta: f64,
    pub phi: f64,
}

impl EtsParams {
    pub fn has_trend(&self) -> bool {
        self.phi > 0.0
    }
}

/// The grid the fit searches: coarse, but every point is a sensible model and the search
/// is deterministic and cheap (35 passes over the window).
const ALPHAS: [f64; 7] = [0.05, 0.1, 0.2, 0.35, 0.5, 0.7, 0.9];
const TRENDS: [(f64, f64); 4] = [(0.02, 0.85), (0.02, 0.95), (0.1, 0.85), (0.1, 0.95)];
/// Steps skipped before errors count, while level and trend settle.
const BURN_IN: usize = 3;

/// One pass of the recursions over `y`: the final level and trend, and the squared
/// one-step error over the observed steps after the burn-in (with their count); those
/// one-step errors are pushed to `residuals` when given.
fn run(
    y: &[f32],
    observed: &[bool],
    p: EtsParams,
    mut residuals: Option<&mut Vec<f32>>,
) -> (f64, f64, f64, usize) {
    let mut level = y[0] as f64;
    let mut trend = if p.has_trend() && y.len() > 1 {
        (y[1] - y[0]) as f64
    } else {
        0.0
    };
    let (mut sse, mut n) = (0.0, 0usize);
    for (t, &obs) in y.iter().enumerate().skip(1) {
        let obs = obs as f64;
        let predicted = level + p.phi * trend;
        if t > BURN_IN && observed[t] {
            sse += (obs - predicted) * (obs - predicted);
            n += 1;
            if let Some(r) = residuals.as_deref_mut() {
                r.push((obs - predicted) as f32);
            }
        }
        let new_level = p.alpha * obs + (1.0 - p.alpha) * predicted;
        trend = p.beta * (new_level - level) + (1.0 - p.beta) * p.phi * trend;
        level = new_level;
    }
    (level, trend, sse, n)
}

/// AICc of a fit with `k` parameters (smoothing parameters and initial states).
fn aicc(sse: f64, n: usize, k: usize) -> f64 {
    let n_f = n as f64;
    let k_f = k as f64;
    let fit = n_f * (sse.max(1e-12) / n_f).ln() + 2.0 * k_f;
    if n > k + 1 {
        fit + 2.0 * k_f * (k_f + 1.0) / (n_f - k_f - 1.0)
    } else {
        f64::INFINITY
    }
}

/// The parameters with the lowest AICc on `series` (NaN = gap, filled forward): level
/// only, or level with damped trend. None when the series has no values.
pub fn fit_ets(series: &[f32]) -> Option<EtsParams> {
    let y = fill_forward(series)?;
    let observed: Vec<bool> = series.iter().map(|v| !v.is_nan()).collect();
    let mut best: Option<(f64, EtsParams)> = None;
    for &alpha in &ALPHAS {
        let level_only = std::iter::once(EtsParams {
            alpha,
            beta: 0.0,
            phi: 0.0,
        });
        let trended = TRENDS
            .iter()
            .map(move |&(beta, phi)| EtsParams { alpha, beta, phi });
        for p in level_only.chain(trended) {
            let (_, _, sse, n) = run(&y, &observed, p, None);
            if n == 0 {
                continue;
            }
            let k = if p.has_trend() { 5 } else { 2 };
            let score = aicc(sse, n, k);
            if best.is_none_or(|(b, _)| score < b) {
                best = Some((score, p));
            }
        }
    }
    Some(best.map(|(_, p)| p).unwrap_or(EtsParams {
        alpha: 0.5,
        beta: 0.0,
        phi: 0.0,
    }))
}

/// Fits and forecasts `horizon` steps into `bands[q][h]`. False when the series has no
/// values.
pub fn ets_series(
    series: &[f32],
    horizon: usize,
    quantiles: &[f64],
    bands: &mut [Vec<f32>],
) -> bool {
    match fit_ets(series) {
        Some(p) => ets_series_with(series, p, horizon, quantiles, bands),
        None => false,
    }
}

/// Forecasts with given parameters (see [`ets_series`]).
fn ets_series_with(
    series: &[f32],
    p: EtsParams,
    horizon: usize,
    quantiles: &[f64],
    bands: &mut [Vec<f32>],
) -> bool {
    let Some(y) = fill_forward(series) else {
        return false;
    };
    let observed: Vec<bool> = series.iter().map(|v| !v.is_nan()).collect();
    let mut residuals = Vec::with_capacity(y.len());
    let (level, trend, _, _) = run(&y, &observed, p, Some(&mut residuals));
    let offsets: Vec<f32> = if residuals.is_empty() {
        vec![0.0; quantiles.len()]
    } else {
        quantiles
            .iter()
            .map(|q| quantile_in_place(&mut residuals, *q))
            .collect()
    };
    // ETS(A,Ad,N): var_h / σ² = 1 + Σ_{j<h} c_j², c_j = α(1 + β·(φ + … + φ^j)); β = 0
    // gives simple smoothing's 1 + (h−1)α².
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

/// The last observed value held flat, with bands from the series' own one-step changes
/// widened by √h (a random walk's spread). False when the series has no values.
pub fn last_value_series(
    series: &[f32],
    horizon: usize,
    quantiles: &[f64],
    bands: &mut [Vec<f32>],
) -> bool {
    let Some(last) = series.iter().rev().copied().find(|v| !v.is_nan()) else {
        return false;
    };
    let mut changes: Vec<f32> = series
        .windows(2)
        .filter(|w| !w[0].is_nan() && !w[1].is_nan())
        .map(|w| w[1] - w[0])
        .collect();
    let offsets: Vec<f32> = if changes.is_empty() {
        vec![0.0; quantiles.len()]
    } else {
        centred_offsets(&mut changes, quantiles)
    };
    for h in 1..=horizon {
        let widen = (h as f32).sqrt();
        for (band, offset) in bands.iter_mut().zip(&offsets) {
            band[h - 1] = last + offset * widen;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fit_chooses_a_trend_only_where_there_is_one() {
        // A clean ramp: the damped trend fits far better than level only.
        let ramp: Vec<f32> = (0..200).map(|t| t as f32 * 0.5).collect();
        let p = fit_ets(&ramp).unwrap();
        assert!(p.has_trend(), "{p:?}");
        let mut bands = vec![vec![0.0f32; 10]; 1];
        assert!(ets_series(&ramp, 10, &[0.5], &mut bands));
        assert!(bands[0][0] > 99.0, "the ramp continues: {:?}", bands[0]);
        // Noise around a level, deterministic: level only, heavily smoothed.
        let mut x = 7u64;
        let noisy: Vec<f32> = (0..300)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                50.0 + ((x >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 10.0
            })
            .collect();
        let p = fit_ets(&noisy).unwrap();
        assert!(!p.has_trend(), "{p:?}");
        assert!(p.alpha <= 0.1, "noise is averaged, not followed: {p:?}");
        assert!(ets_series(
            &noisy,
            10,
            &[0.1, 0.5, 0.9],
            &mut vec![vec![0.0; 10]; 3]
        ));
        // A random walk: level only with α near 1 (the last value is the best guess).
        let mut v = 0.0f32;
        let walk: Vec<f32> = (0..300)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                v += ((x >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 10.0;
                v
            })
            .collect();
        let p = fit_ets(&walk).unwrap();
        assert!(p.alpha >= 0.7, "{p:?}");
        assert_eq!(fit_ets(&[f32::NAN; 5]), None);
    }

    #[test]
    fn last_value_holds_the_newest_observation() {
        let s = [1.0f32, 2.0, 3.0, 2.0, 3.0, 1.0, 2.0, 4.0, 2.0, f32::NAN];
        let mut bands = vec![vec![0.0f32; 4]; 3];
        assert!(last_value_series(&s, 4, &[0.1, 0.5, 0.9], &mut bands));
        assert!(bands[1].iter().all(|v| *v == 2.0), "{:?}", bands[1]);
        assert!(
            bands[0][3] < bands[0][0] && bands[2][3] > bands[2][0],
            "bands widen"
        );
        assert!(!last_value_series(&[f32::NAN; 3], 4, &[0.5], &mut bands));
    }
}
