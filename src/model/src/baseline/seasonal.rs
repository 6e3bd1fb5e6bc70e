//! Seasonal baselines: tomorrow at 10:00 looks like today at 10:00 (seasonal naive), or
//! like the median of the last few days at 10:00 (seasonal median, robust to one odd day).
//! Seasonal naive is the seasonal median over one season.

use crate::stats::{centred_offsets, fill_forward};

/// Fewest seasonal residuals worth taking quantiles of.
const MIN_RESIDUALS: usize = 8;

/// The median of the values `ahead` steps after the end of `series[..end]`, one, two, …
/// `seasons` whole seasons earlier (only seasons far enough back to be in the past, and
/// inside the series; NaN values skipped). None when there is none.
pub fn seasonal_median_at(
    series: &[f32],
    end: usize,
    ahead: usize,
    season: usize,
    seasons: usize,
) -> Option<f32> {
    if season == 0 || ahead == 0 {
        return None;
    }
    let first = ahead.div_ceil(season);
    let mut keys = [0i32; 32];
    let mut n = 0;
    for k in first..first + seasons.clamp(1, keys.len()) {
        // The target sits at index end - 1 + ahead; k seasons before it:
        let Some(i) = (end + ahead).checked_sub(1 + k * season) else {
            break;
        };
        let v = series[i];
        if !v.is_nan() {
            keys[n] = order_key(v);
            n += 1;
        }
    }
    median_of_keys(&mut keys[..n])
}

/// Like [`seasonal_median_at`], over the same step and its `width` neighbours on each
/// side in every season (only steps before `end`): a median over days *and* nearby times
/// of day, steadier than the median of single steps where the series is noisy.
pub fn seasonal_median_smoothed_at(
    series: &[f32],
    end: usize,
    ahead: usize,
    season: usize,
    seasons: usize,
    width: usize,
) -> Option<f32> {
    if width == 0 {
        return seasonal_median_at(series, end, ahead, season, seasons);
    }
    if season == 0 || ahead == 0 {
        return None;
    }
    let first = ahead.div_ceil(season);
    let seasons = seasons.clamp(1, 32);
    // This runs for every forecast step and metric of every window the TFT prepares: the
    // values go on the stack (the default 7 seasons × 5 steps fit) as ordered integer keys.
    let mut on_stack = [0i32; 128];
    let mut on_heap = Vec::new();
    let keys: &mut [i32] = if seasons * (2 * width + 1) <= on_stack.len() {
        &mut on_stack
    } else {
        on_heap.resize(seasons * (2 * width + 1), 0);
        &mut on_heap
    };
    let mut n = 0;
    for k in first..first + seasons {
        let Some(centre) = (end + ahead).checked_sub(1 + k * season) else {
            break;
        };
        let from = centre.saturating_sub(width);
        let to = (centre + width + 1).min(end);
        for v in series[from..to].iter().filter(|v| !v.is_nan()) {
            keys[n] = order_key(*v);
            n += 1;
        }
    }
    median_of_keys(&mut keys[..n])
}

/// An integer whose order is `f32::total_cmp`'s order of `v` (the same transform): selecting
/// on it compares one instruction instead of a closure.
fn order_key(v: f32) -> i32 {
    let bits = v.to_bits() as i32;
    bits ^ ((((bits >> 31) as u32) >> 1) as i32)
}

/// The inverse of [`order_key`].
fn from_order_key(key: i32) -> f32 {
    f32::from_bits((key ^ ((((key >> 31) as u32) >> 1) as i32)) as u32)
}

/// The median of values given as [`order_key`]s (the mean of the middle two for an even
/// count; None for none). Selection, not a sort: the seasonal baselines and the TFT's
/// inputs take one for every forecast step of every series.
fn median_of_keys(keys: &mut [i32]) -> Option<f32> {
    let n = keys.len();
    if n == 0 {
        return None;
    }
    let (lower, upper, _) = keys.select_nth_unstable(n / 2);
    let upper = from_order_key(*upper);
    if n % 2 == 1 {
        return Some(upper);
    }
    let lower = from_order_key(lower.iter().copied().max().unwrap_or(i32::MIN));
    Some((lower + upper) / 2.0)
}

/// Forecasts `horizon` steps of `series` (oldest first, NaN = gap; longer than `season`)
/// into `bands[q][h]`. The median is the seasonal median of up to `seasons` seasons
/// (gaps filled forward); quantile `q` adds the empirical q-quantile of the series' own
/// residuals over its last season against the same rule one step at a time, minus their
/// median, widened by √k for steps k seasons ahead. False when the series has no values.
pub fn seasonal_series(
    series: &[f32],
    season: usize,
    seasons: usize,
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
    // In-sample residuals: each step against the rule applied to what came before it;
    // only where the step was observed, not gap-filled (unless too few are).
    let residual = |t: usize| {
        if seasons == 1 {
            // Seasonal naive: no median to take.
            Some(filled[t] - filled[t - season])
        } else {
            seasonal_median_at(&filled, t, 1, season, seasons).map(|p| filled[t] - p)
        }
    };
    // The last season of residuals: the bands follow recent behaviour, and the cost stays
    // flat however many seasons the window keeps.
    let from = n.saturating_sub(season).max(season);
    let mut residuals: Vec<f32> = (from..n)
        .filter(|&t| !series[t].is_nan())
        .filter_map(residual)
        .collect();
    if residuals.len() < MIN_RESIDUALS {
        residuals = (season..n).filter_map(residual).collect();
    }
    let offsets = centred_offsets(&mut residuals, quantiles);
    for h in 1..=horizon {
        let k = h.div_ceil(season);
        let Some(point) = seasonal_median_at(&filled, n, h, season, seasons) else {
            return false;
        };
        let widen = (k as f32).sqrt();
        for (band, offset) in bands.iter_mut().zip(&offsets) {
            band[h - 1] = point + offset * widen;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::{median_of_keys, order_key, seasonal_median_at};

    #[test]
    fn medians_of_order_keys_are_the_medians_of_the_values() {
        let values = [
            3.5f32,
            -0.0,
            0.0,
            -7.25,
            1e-30,
            -1e-30,
            42.0,
            3.5,
            f32::MAX,
            -1.0,
        ];
        for n in 1..=values.len() {
            // The median by sorting.
            let mut sorted = values[..n].to_vec();
            sorted.sort_by(f32::total_cmp);
            let expected = if n % 2 == 1 {
                sorted[n / 2]
            } else {
                (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
            };
            let mut keys: Vec<i32> = values[..n].iter().map(|v| order_key(*v)).collect();
            assert_eq!(
                median_of_keys(&mut keys).map(f32::to_bits),
                Some(expected.to_bits()),
                "the first {n} values"
            );
        }
        assert_eq!(median_of_keys(&mut []), None);
        // Keys order as total_cmp does, negative values and signed zeros included.
        let mut sorted = values.to_vec();
        sorted.sort_by(f32::total_cmp);
        let keys: Vec<i32> = sorted.iter().map(|v| order_key(*v)).collect();
        assert!(keys.windows(2).all(|w| w[0] <= w[1]), "{keys:?}");
    }

    #[test]
    fn median_of_the_seasons_in_the_past() {
        // season 3; values 0..9, newest 8.
        let s: Vec<f32> = (0..9).map(|v| v as f32).collect();
        // One step ahead (index 9): seasons back are 6, 3, 0.
        assert_eq!(seasonal_median_at(&s, 9, 1, 3, 1), Some(6.0));
        assert_eq!(seasonal_median_at(&s, 9, 1, 3, 2), Some(4.5));
        assert_eq!(seasonal_median_at(&s, 9, 1, 3, 3), Some(3.0));
        assert_eq!(
            seasonal_median_at(&s, 9, 1, 3, 9),
            Some(3.0),
            "only what exists"
        );
        // Four ahead (index 12): one season back is still the future; 9 → 6, 3, 0.
        assert_eq!(seasonal_median_at(&s, 9, 4, 3, 1), Some(6.0));
        // An outlier day does not move the median.
        let mut spiky = s.clone();
        spiky[6] = 1000.0;
        assert_eq!(seasonal_median_at(&spiky, 9, 1, 3, 3), Some(3.0));
        // Gaps are skipped; all gaps → None.
        let gaps = [f32::NAN; 9];
        assert_eq!(seasonal_median_at(&gaps, 9, 1, 3, 3), None);
        assert_eq!(
            seasonal_median_at(&s, 2, 1, 3, 3),
            None,
            "no season of history"
        );
        // Smoothed: the neighbours count too, and never a step at or after `end`.
        let w = [0.0f32, 10.0, 1.0, 2.0, 10.0, 3.0, 4.0];
        // season 3, one step ahead of end 7 (index 7): one season back is index 4 (10.0),
        // its neighbours 3 and 5; two back index 1 and neighbours 0, 2.
        assert_eq!(
            super::seasonal_median_smoothed_at(&w, 7, 1, 3, 1, 0),
            Some(10.0)
        );
        assert_eq!(
            super::seasonal_median_smoothed_at(&w, 7, 1, 3, 1, 1),
            Some(3.0)
        );
        assert_eq!(
            super::seasonal_median_smoothed_at(&w, 7, 1, 3, 2, 1),
            Some(2.5)
        );
        // Index 6 is the newest value: a neighbour of index 5's step is still in the past.
        assert_eq!(
            super::seasonal_median_smoothed_at(&w, 6, 1, 3, 1, 1),
            Some(2.0)
        );
        // Three ahead of end 5: one season back is index 4, whose right neighbour (index 5)
        // is not in the history: only indices 3 and 4 count.
        assert_eq!(
            super::seasonal_median_smoothed_at(&w, 5, 3, 3, 1, 1),
            Some(6.0)
        );
        // Medians of one to five values, in any order.
        for (values, median) in [
            (vec![4.0], 4.0),
            (vec![4.0, 1.0], 2.5),
            (vec![9.0, 1.0, 4.0], 4.0),
            (vec![1.0, 9.0, 4.0], 4.0),
            (vec![4.0, 9.0, 1.0], 4.0),
            (vec![7.0, 1.0, 9.0, 3.0], 5.0),
            (vec![5.0, 1.0, 9.0, 3.0, 7.0], 5.0),
        ] {
            let mut keys: Vec<i32> = values.iter().map(|v| order_key(*v)).collect();
            assert_eq!(median_of_keys(&mut keys), Some(median), "{values:?}");
        }
    }
}
