//! Seasonal naive: tomorrow at 10:00 looks like today at 10:00.

use crate::stats::{fill_forward, quantile_in_place};

/// Fewest seasonal residuals worth taking quantiles of.
const MIN_RESIDUALS: usize = 8;

/// Forecasts `horizon` steps of `series` (oldest first, NaN = gap; longer than `season`)
/// into `bands[q][h]`. The median repeats the last season (`y[t + h − k·season]`); quantile
/// `q` adds the empirical q-quantile of the series' own seasonal differences
/// `y[t] − y[t − season]` minus their median, widened by √k for steps k seasons ahead.
/// False when the series has no values.
pub fn seasonal_naive_series(
    series: &[f32],
    season: usize,
    horizon: usize,
    quantiles: &[f64],
    bands: &mut [Vec<f32>],
) -> bool {
    let Some(filled) = fill_forward(series) else {
        return false;
    };
    let n = filled.len();
    if n <= season || season == 0 {
        return false;
    }
    // Residuals only where both ends were real observations, not gap fills.
    let mut residuals: Vec<f32> = (season..n)
        .filter(|&t| !series[t].is_nan() && !series[t - season].is_nan())
        .map(|t| series[t] - series[t - season])
        .collect();
    if residuals.len() < MIN_RESIDUALS {
        residuals = (season..n)
            .map(|t| filled[t] - filled[t - season])
            .collect();
    }
    // Centred on the median residual, so the median forecast is the plain seasonal naive
    // value and the bands carry the spread.
    let centre = quantile_in_place(&mut residuals, 0.5);
    let offsets: Vec<f32> = quantiles
        .iter()
        .map(|q| quantile_in_place(&mut residuals, *q) - centre)
        .collect();
    for h in 1..=horizon {
        let k = h.div_ceil(season);
        let point = filled[n - 1 + h - k * season];
        let widen = (k as f32).sqrt();
        for (band, offset) in bands.iter_mut().zip(&offsets) {
            band[h - 1] = point + offset * widen;
        }
    }
    true
}
