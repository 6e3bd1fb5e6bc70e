//! Small statistics helpers shared by the baselines.

/// Empirical quantile (linear interpolation between order statistics, like numpy's
/// default) of `values`, which it reorders. NaN when empty.
pub fn quantile_in_place(values: &mut [f32], q: f64) -> f32 {
    let n = values.len();
    if n == 0 {
        return f32::NAN;
    }
    let pos = q.clamp(0.0, 1.0) * (n - 1) as f64;
    let lo = pos.floor() as usize;
    let frac = (pos - lo as f64) as f32;
    let (_, lo_value, upper) = values.select_nth_unstable_by(lo, f32::total_cmp);
    let lo_value = *lo_value;
    if frac == 0.0 || upper.is_empty() {
        return lo_value;
    }
    let hi_value = upper.iter().copied().fold(f32::INFINITY, f32::min);
    lo_value + frac * (hi_value - lo_value)
}

/// Each of `quantiles` of `values` minus their median (reordering `values`): band offsets
/// centred so that the median forecast stays the rule's own point and the bands carry the
/// spread. NaN offsets when `values` is empty.
pub fn centred_offsets(values: &mut [f32], quantiles: &[f64]) -> Vec<f32> {
    let centre = quantile_in_place(values, 0.5);
    quantiles
        .iter()
        .map(|q| quantile_in_place(values, *q) - centre)
        .collect()
}

/// Fills NaN gaps by carrying the last value forward (leading NaNs take the first value).
/// Returns None when the series has no value at all.
pub fn fill_forward(series: &[f32]) -> Option<Vec<f32>> {
    let first = series.iter().copied().find(|v| !v.is_nan())?;
    let mut last = first;
    Some(
        series
            .iter()
            .map(|v| {
                if !v.is_nan() {
                    last = *v;
                }
                last
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_match_linear_interpolation() {
        let mut v: Vec<f32> = (1..=5).rev().map(|x| x as f32).collect();
        assert_eq!(quantile_in_place(&mut v, 0.5), 3.0);
        assert_eq!(quantile_in_place(&mut v, 0.0), 1.0);
        assert_eq!(quantile_in_place(&mut v, 1.0), 5.0);
        assert!((quantile_in_place(&mut v, 0.1) - 1.4).abs() < 1e-6);
        assert!((quantile_in_place(&mut v, 0.9) - 4.6).abs() < 1e-6);
        assert!(quantile_in_place(&mut [], 0.5).is_nan());
        assert_eq!(quantile_in_place(&mut [7.0], 0.9), 7.0);
    }

    #[test]
    fn fill_forward_carries_values() {
        let nan = f32::NAN;
        assert_eq!(
            fill_forward(&[nan, 2.0, nan, nan, 5.0]).unwrap(),
            vec![2.0, 2.0, 2.0, 2.0, 5.0]
        );
        assert!(fill_forward(&[nan, nan]).is_none());
    }
}
