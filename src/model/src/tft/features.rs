//! From a window of history to the network's inputs, and back: per-series normalisation
//! (mean and spread of the encoder window, per metric), known-future time features, the
//! profile index. Pure Rust, no tensors, so it is unit-tested directly.

use super::TftShape;
use crate::baseline::seasonal_median_smoothed_at;

/// Known inputs per step: time of day (sin, cos), day of week (sin, cos), weekend flag.
pub const TIME_FEATURES: usize = 5;

/// The time features of the step starting at `ts_ms` (UTC).
pub fn time_features(ts_ms: i64) -> [f32; TIME_FEATURES] {
    let tau = std::f64::consts::TAU;
    let day_ms = 86_400_000i64;
    let tod = ts_ms.rem_euclid(day_ms) as f64 / day_ms as f64;
    // 1970-01-01 was a Thursday: Monday = 0 makes it 3.
    let dow = (ts_ms.div_euclid(day_ms) + 3).rem_euclid(7);
    let dow_f = dow as f64 / 7.0;
    [
        (tau * tod).sin() as f32,
        (tau * tod).cos() as f32,
        (tau * dow_f).sin() as f32,
        (tau * dow_f).cos() as f32,
        if dow >= 5 { 1.0 } else { 0.0 },
    ]
}

/// One window, ready to become a row of a batch.
#[derive(Debug, Clone, PartialEq)]
pub struct Prepared {
    /// [T][M + TIME_FEATURES]: normalised metrics (missing = 0, the window mean), then time.
    pub past: Vec<f32>,
    /// [H][TIME_FEATURES + M]: time, then each metric's seasonal median for the step (the
    /// same step and `shape.seasonal_width` neighbours on each side in the last
    /// `shape.seasons` seasons; normalised, missing = 0).
    pub future: Vec<f32>,
    pub profile: i64,
    /// [M][R]: for each of `shape.residual_steps` (R of them), the mean over the last that
    /// many observed steps of each metric's value minus its seasonal median (normalised;
    /// 0 when unknown): how far the server runs above or below its usual pattern now.
    pub recent: Vec<f32>,
    /// Per metric: value = normalised · scale + mean.
    pub mean: Vec<f32>,
    pub scale: Vec<f32>,
    /// [H][M] normalised truth and 1/0 where present (training and validation only).
    pub target: Option<(Vec<f32>, Vec<f32>)>,
}

/// Prepares a window. `history[m][..]` is metric `m`'s series (oldest first; the last
/// `encoder_steps` are used, shorter history is padded with missing values); `last_step`
/// is the step number of its newest value; `truth[m][h]`, when given, the horizon after it.
pub fn prepare<'a>(
    shape: &TftShape,
    history: &dyn Fn(usize) -> &'a [f32],
    last_step: i64,
    profile: i64,
    truth: Option<&dyn Fn(usize) -> &'a [f32]>,
) -> Prepared {
    let (t_len, h_len, m_len) = (
        shape.encoder_steps,
        shape.horizon_steps,
        shape.metrics.len(),
    );
    let step_ms = shape.step_seconds as i64 * 1000;
    let width = m_len + TIME_FEATURES;
    let mut past = vec![0.0f32; t_len * width];
    let (mut mean, mut scale) = (vec![0.0f32; m_len], vec![1.0f32; m_len]);
    for m in 0..m_len {
        let series = history(m);
        let window = &series[series.len().saturating_sub(t_len)..];
        let values: Vec<f64> = window
            .iter()
            .filter(|v| !v.is_nan())
            .map(|v| *v as f64)
            .collect();
        let (lo, hi) = shape.metric_ranges.get(m).copied().unwrap_or((0.0, 1.0));
        if !values.is_empty() {
            let mu = values.iter().sum::<f64>() / values.len() as f64;
            let var = values.iter().map(|v| (v - mu) * (v - mu)).sum::<f64>() / values.len() as f64;
            mean[m] = mu as f32;
            // A floor relative to the metric's range keeps flat series from exploding.
            scale[m] = var.sqrt().max(1e-3 * (hi - lo)).max(1e-6) as f32;
        }
        let pad = t_len - window.len();
        for (i, v) in window.iter().enumerate() {
            if !v.is_nan() {
                past[(pad + i) * width + m] = (v - mean[m]) / scale[m];
            }
        }
    }
    for t in 0..t_len {
        let ts = (last_step - (t_len - 1 - t) as i64) * step_ms;
        past[t * width + m_len..(t + 1) * width].copy_from_slice(&time_features(ts));
    }
    let future_width = shape.decoder_vars();
    let mut future = vec![0.0f32; h_len * future_width];
    let season = shape.season_steps.max(1);
    for h in 0..h_len {
        let ts = (last_step + 1 + h as i64) * step_ms;
        let row = &mut future[h * future_width..(h + 1) * future_width];
        row[..TIME_FEATURES].copy_from_slice(&time_features(ts));
        for m in 0..m_len {
            let series = history(m);
            // Step h lies h + 1 after the newest value.
            if let Some(v) = seasonal_median_smoothed_at(
                series,
                series.len(),
                h + 1,
                season,
                shape.seasons.max(1),
                shape.seasonal_width,
            ) {
                row[TIME_FEATURES + m] = (v - mean[m]) / scale[m];
            }
        }
    }
    let residual_steps = &shape.residual_steps;
    let mut recent = vec![0.0f32; m_len * residual_steps.len()];
    for m in 0..m_len {
        let series = history(m);
        let longest = residual_steps.iter().copied().max().unwrap_or(0);
        // Residuals of the newest steps, newest first (None where unknown).
        let residuals: Vec<Option<f32>> = (1..=longest.min(series.len()))
            .map(|k| {
                let i = series.len() - k;
                let v = series[i];
                if v.is_nan() {
                    return None;
                }
                seasonal_median_smoothed_at(
                    series,
                    i,
                    1,
                    season,
                    shape.seasons.max(1),
                    shape.seasonal_width,
                )
                .map(|med| (v - med) / scale[m])
            })
            .collect();
        for (r, steps) in residual_steps.iter().enumerate() {
            let known: Vec<f32> = residuals.iter().take(*steps).flatten().copied().collect();
            if !known.is_empty() {
                let mean = known.iter().sum::<f32>() / known.len() as f32;
                recent[m * residual_steps.len() + r] = mean.clamp(-10.0, 10.0);
            }
        }
    }
    let target = truth.map(|truth| {
        let (mut y, mut mask) = (vec![0.0f32; h_len * m_len], vec![0.0f32; h_len * m_len]);
        for m in 0..m_len {
            for (h, v) in truth(m).iter().take(h_len).enumerate() {
                if !v.is_nan() {
                    y[h * m_len + m] = (v - mean[m]) / scale[m];
                    mask[h * m_len + m] = 1.0;
                }
            }
        }
        (y, mask)
    });
    Prepared {
        past,
        future,
        profile,
        recent,
        mean,
        scale,
        target,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoder_reads_the_value_one_season_earlier() {
        let mut shape = TftShape::for_test(1, 6, 4);
        shape.season_steps = 3;
        let series: Vec<f32> = (0..6).map(|v| v as f32).collect(); // 0 … 5, newest 5
        let p = prepare(&shape, &|_| &series[..], 10, 0, None);
        let width = TIME_FEATURES + 1;
        let back = |h: usize| p.future[h * width + TIME_FEATURES] * p.scale[0] + p.mean[0];
        // Steps ahead 1, 2, 3 are one season after values 3, 4, 5; step 4 after value 3.
        assert!((back(0) - 3.0).abs() < 1e-4);
        assert!((back(1) - 4.0).abs() < 1e-4);
        assert!((back(2) - 5.0).abs() < 1e-4);
        assert!((back(3) - 3.0).abs() < 1e-4, "two seasons back");
        // Over two seasons: the median (mean of the two) of 0 and 3 for the first step.
        shape.seasons = 2;
        let p = prepare(&shape, &|_| &series[..], 10, 0, None);
        let back = |h: usize| p.future[h * width + TIME_FEATURES] * p.scale[0] + p.mean[0];
        assert!((back(0) - 1.5).abs() < 1e-4, "{}", back(0));
        // Four ahead: two and three seasons back (values 3 and 0).
        assert!((back(3) - 1.5).abs() < 1e-4, "{}", back(3));
    }

    #[test]
    fn recent_residuals_say_how_far_the_server_runs_from_its_pattern() {
        let mut shape = TftShape::for_test(1, 6, 2);
        shape.season_steps = 3;
        shape.seasons = 2;
        shape.residual_steps = vec![1, 2];
        // A flat pattern of 10, except that the newest two steps run at 13 and 16.
        let series = [10.0f32, 10.0, 10.0, 10.0, 10.0, 10.0, 10.0, 13.0, 16.0];
        let p = prepare(&shape, &|_| &series[..], 100, 0, None);
        let back = |r: usize| p.recent[r] * p.scale[0];
        assert!(
            (back(0) - 6.0).abs() < 1e-3,
            "newest step: 16 - 10 = {}",
            back(0)
        );
        assert!(
            (back(1) - 4.5).abs() < 1e-3,
            "mean of 3 and 6 = {}",
            back(1)
        );
        // A gap is skipped, not read as a residual of zero.
        let gappy = [10.0f32, 10.0, 10.0, 10.0, 10.0, 10.0, 10.0, 13.0, f32::NAN];
        let p = prepare(&shape, &|_| &gappy[..], 100, 0, None);
        assert_eq!(p.recent[0], 0.0, "the newest step is unknown");
        assert!((p.recent[1] * p.scale[0] - 3.0).abs() < 1e-3);
    }

    #[test]
    fn time_features_know_the_calendar() {
        // 2026-11-28 (a Saturday) 06:00 UTC.
        let ts = 1_795_824_000_000 + 6 * 3_600_000;
        let f = time_features(ts);
        assert!(
            (f[0] - 1.0).abs() < 1e-6,
            "06:00 is a quarter day: sin = 1 ({f:?})"
        );
        assert!(f[1].abs() < 1e-6);
        assert_eq!(f[4], 1.0, "Saturday is a weekend");
        assert_eq!(
            time_features(ts - 86_400_000 * 2)[4],
            0.0,
            "Thursday is not"
        );
    }

    #[test]
    fn normalisation_round_trips_and_pads() {
        let shape = TftShape::for_test(2, 4, 2);
        let a = [f32::NAN, 10.0, 12.0, 14.0];
        let b = [5.0f32, 5.0, 5.0];
        let truth_a = [16.0f32, f32::NAN];
        let truth_b = [5.0f32, 6.0];
        let series = |m: usize| -> &[f32] {
            if m == 0 {
                &a
            } else {
                &b
            }
        };
        let truth = |m: usize| -> &[f32] {
            if m == 0 {
                &truth_a
            } else {
                &truth_b
            }
        };
        let p = prepare(&shape, &series, 100, 0, Some(&truth));
        let width = 2 + TIME_FEATURES;
        assert_eq!(p.mean[0], 12.0);
        assert!((p.scale[0] - (8.0f32 / 3.0).sqrt()).abs() < 1e-5);
        assert_eq!(p.past[0], 0.0, "missing value sits at the mean");
        assert!((p.past[3 * width] * p.scale[0] + p.mean[0] - 14.0).abs() < 1e-4);
        // b is one step short: padded at the front, and flat: the scale floor applies.
        assert_eq!(p.past[1], 0.0);
        assert!(
            (p.scale[1] - 0.1).abs() < 1e-6,
            "the floor: 0.1 % of the range"
        );
        let (y, mask) = p.target.unwrap();
        assert_eq!(mask, vec![1.0, 1.0, 0.0, 1.0]);
        assert!((y[0] * p.scale[0] + p.mean[0] - 16.0).abs() < 1e-4);
        assert_eq!(p.future.len(), 2 * (TIME_FEATURES + 2));
        assert!(p.recent.is_empty(), "no residual inputs in this shape");
        // Season 24 with 4 steps of history: one season before step 0 is outside the
        // history, so it reads as missing (0).
        assert_eq!(p.future[TIME_FEATURES], 0.0);
    }
}
