//! Training: windows cut from step-grid history with a time-based split, Adam with
//! gradient-norm clipping, early stopping on validation pinball loss, the best weights kept,
//! then the correction and band calibrations fitted on the validation windows.

use super::features::{prepare, Prepared};
use super::network::pinball_points;
use super::{pinball_loss, TftModel};
use crate::accuracy::HorizonBucket;
use crate::backtest::Grid;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;
use tch::nn::{self, OptimizerConfig};
use tch::{Kind, Tensor};

#[derive(Debug, Clone)]
pub struct TrainOptions {
    pub epochs: usize,
    pub batch_size: usize,
    /// Training windows drawn per epoch at most (0 = all).
    pub max_windows: usize,
    pub learning_rate: f64,
    pub clip_norm: f64,
    /// Epochs without a better validation loss before stopping.
    pub patience: usize,
    pub seed: u64,
    /// Steps between window origins.
    pub stride: usize,
    /// Share of each series' training span kept for validation (its most recent part).
    pub validation_fraction: f64,
    /// Steps between validation origins.
    pub validation_stride: usize,
    /// Fit the correction and band calibrations on the validation windows after training
    /// ([`fit_correction_scales`], then [`fit_band_scales`]).
    pub calibrate_bands: bool,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            epochs: 20,
            batch_size: 64,
            max_windows: 2048,
            learning_rate: 1e-3,
            clip_norm: 1.0,
            patience: 4,
            seed: 42,
            stride: 12,
            validation_fraction: 0.15,
            validation_stride: 12,
            calibrate_bands: true,
        }
    }
}

/// One epoch's figures (also printed as a JSON line by `nordiq-train`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct EpochReport {
    pub epoch: usize,
    pub epochs: usize,
    pub train_loss: f64,
    pub validation_loss: f64,
    pub best: bool,
    pub elapsed_s: f64,
    pub eta_s: f64,
    pub windows: usize,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stop {
    Completed,
    EarlyStopped,
    Cancelled,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct TrainSummary {
    pub epochs_run: usize,
    pub best_epoch: usize,
    pub best_validation_loss: f64,
    pub seconds: f64,
    pub seconds_per_epoch: f64,
    pub train_windows: usize,
    pub validation_windows: usize,
    pub stop: Stop,
    /// The validation loss after the correction and band calibrations (none without
    /// either).
    #[serde(default)]
    pub calibrated_validation_loss: Option<f64>,
}

/// A window: grid index and origin (history is `t - T .. t`, truth `t .. t + H`).
#[derive(Debug, Clone, Copy)]
pub struct Origin {
    pub grid: usize,
    pub t: usize,
}

/// Where validation starts in a grid whose training part ends at `end` (None: too short
/// for both): the last `validation_fraction` of the span after the first encoder window,
/// at least one horizon. No training truth reaches past it.
pub fn validation_start(
    end: usize,
    encoder: usize,
    horizon: usize,
    options: &TrainOptions,
) -> Option<usize> {
    if end < encoder + 2 * horizon {
        return None;
    }
    let span = end - encoder;
    let val_len = ((span as f64 * options.validation_fraction) as usize).max(horizon);
    Some(end - val_len)
}

/// Training and validation origins from each grid's steps before `train_end(grid)`; the
/// validation origins are the most recent, and no training truth reaches into them.
pub fn split_origins(
    grids: &[Grid],
    encoder: usize,
    horizon: usize,
    train_end: &dyn Fn(&Grid) -> usize,
    options: &TrainOptions,
) -> (Vec<Origin>, Vec<Origin>) {
    let (mut train, mut val) = (Vec::new(), Vec::new());
    let stride = options.stride.max(1);
    for (g, grid) in grids.iter().enumerate() {
        let end = train_end(grid).min(grid.len);
        let Some(val_start) = validation_start(end, encoder, horizon, options) else {
            continue;
        };
        let mut t = encoder;
        while t + horizon <= val_start {
            train.push(Origin { grid: g, t });
            t += stride;
        }
        // Validation origins at the validation stride: enough windows that the
        // early-stopping and promotion decisions are not the luck of a few days.
        let mut t = val_start.max(encoder);
        while t + horizon <= end {
            val.push(Origin { grid: g, t });
            t += options.validation_stride.max(1);
        }
    }
    (train, val)
}

/// [`split_origins`] for `shape`: windows start where their whole history is there (the
/// seasons the decoder's seasonal inputs reach back), as at serving; history too short for
/// any such window falls back to windows that only need the encoder.
pub fn split_origins_for(
    grids: &[Grid],
    shape: &super::TftShape,
    train_end: &dyn Fn(&Grid) -> usize,
    options: &TrainOptions,
) -> (Vec<Origin>, Vec<Origin>) {
    let full = split_origins(
        grids,
        shape.history_steps(),
        shape.horizon_steps,
        train_end,
        options,
    );
    if !full.0.is_empty() && !full.1.is_empty() {
        return full;
    }
    split_origins(
        grids,
        shape.encoder_steps,
        shape.horizon_steps,
        train_end,
        options,
    )
}

/// Prepares one origin with its truth.
pub fn prepare_origin(model: &TftModel, grids: &[Grid], o: Origin) -> Prepared {
    let grid = &grids[o.grid];
    // The whole history the decoder's seasonal inputs need, as at serving: a window that
    // saw fewer seasons in training than it is served with learns the wrong corrections.
    let (t_len, h_len) = (model.shape.history_steps(), model.shape.horizon_steps);
    let from = o.t.saturating_sub(t_len);
    let history = |m: usize| -> &[f32] { &grid.series(m)[from..o.t] };
    let truth = |m: usize| -> &[f32] { &grid.series(m)[o.t..o.t + h_len] };
    prepare(
        &model.shape,
        &history,
        grid.start_step + o.t as i64 - 1,
        model.shape.profile_index(&grid.profile),
        Some(&truth),
    )
}

fn batch_of(model: &TftModel, grids: &[Grid], origins: &[Origin]) -> super::Batch {
    let prepared: Vec<Prepared> = origins
        .iter()
        .map(|o| prepare_origin(model, grids, *o))
        .collect();
    let refs: Vec<&Prepared> = prepared.iter().collect();
    model.batch(&refs)
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Mean validation loss (pinball, normalised units) over `origins`.
pub fn evaluate(model: &TftModel, grids: &[Grid], origins: &[Origin], batch_size: usize) -> f64 {
    let quantiles = model.quantile_tensor();
    let (mut total, mut n) = (0.0, 0usize);
    for chunk in origins.chunks(batch_size.max(1)) {
        let batch = batch_of(model, grids, chunk);
        let Some((target, mask)) = &batch.target else {
            continue;
        };
        let loss = tch::no_grad(|| {
            let out = model.net.forward(&batch, false);
            pinball_loss(&out.quantiles, target, mask, &quantiles)
        });
        total += loss.double_value(&[]) * chunk.len() as f64;
        n += chunk.len();
    }
    if n == 0 {
        f64::NAN
    } else {
        total / n as f64
    }
}

/// The factors [`fit_band_scales`] tries: 0.5 to 2 in steps of 0.02.
fn band_scale_grid() -> Vec<f64> {
    (0..=75).map(|i| (50 + 2 * i) as f64 / 100.0).collect()
}

/// Validation windows the band calibration reads at most (taken evenly from all).
const BAND_CALIBRATION_WINDOWS: usize = 4096;

/// Pinball loss sums per metric and quantile ([M, Q]) of the forecasts `pred` ([B, H, M,
/// Q]) against `target` and `mask` ([B, H, M]), with each quantile's distance from the
/// median (index `median`) multiplied by each factor of `grid`: one sum per factor.
fn band_scale_sums(
    pred: &Tensor,
    target: &Tensor,
    mask: &Tensor,
    levels: &Tensor,
    median: i64,
    grid: &[f64],
) -> Vec<Tensor> {
    let med = pred.narrow(3, median, 1);
    let distance = pred - &med;
    grid.iter()
        .map(|&factor| {
            pinball_points(&(&distance * factor + &med), target, mask, levels).sum_dim_intlist(
                &[0i64, 1][..],
                false,
                Kind::Double,
            )
        })
        .collect()
}

/// For every metric and quantile, the factor of `grid` whose sum (`sums`: one [M, Q] per
/// factor) is lowest; 1 for the median and wherever no factor does better than 1 (a metric
/// never observed). Empty when the sums do not have `m × q` entries.
fn pick_band_scales(sums: &[Tensor], grid: &[f64], median: usize, m: usize, q: usize) -> Vec<f64> {
    pick_lowest(sums, grid, m * q, &|i| i % q == median)
}

/// For each of the `count` entries of the sums (one tensor per factor of `grid`), the
/// factor whose sum is lowest; 1 where `fixed` says so and wherever no factor does better
/// than 1. Empty when `grid` has no 1 or the sums do not have `count` entries.
fn pick_lowest(
    sums: &[Tensor],
    grid: &[f64],
    count: usize,
    fixed: &dyn Fn(usize) -> bool,
) -> Vec<f64> {
    let Some(one) = grid.iter().position(|&f| (f - 1.0).abs() < 1e-9) else {
        return Vec::new();
    };
    if sums.len() != grid.len() {
        return Vec::new();
    }
    let stacked = Tensor::stack(sums, 0);
    let to_vec = |t: Tensor| Vec::<f64>::try_from(t.flatten(0, -1)).unwrap_or_default();
    let best: Vec<i64> = Vec::try_from(stacked.argmin(0, false).flatten(0, -1)).unwrap_or_default();
    let lowest = to_vec(stacked.amin(&[0i64][..], false));
    let at_one = to_vec(stacked.select(0, one as i64));
    if best.len() != count || lowest.len() != count || at_one.len() != count {
        return Vec::new();
    }
    (0..count)
        .map(|i| {
            if fixed(i) || at_one[i] <= lowest[i] {
                1.0
            } else {
                grid[best[i] as usize]
            }
        })
        .collect()
}

/// The sums `sums_of` gives for each batch of the forecasts (`[B, H, M, Q]`, with the
/// batch, its targets and mask), added over at most [`BAND_CALIBRATION_WINDOWS`] of
/// `origins` taken evenly; None when no window has a truth. What both calibrations fit on.
fn calibration_sums(
    model: &TftModel,
    grids: &[Grid],
    origins: &[Origin],
    batch_size: usize,
    sums_of: &dyn Fn(&Tensor, &super::Batch, &Tensor, &Tensor) -> Vec<Tensor>,
) -> Option<Vec<Tensor>> {
    let take = origins.len().min(BAND_CALIBRATION_WINDOWS);
    let picked: Vec<Origin> = (0..take)
        .map(|i| origins[i * origins.len() / take])
        .collect();
    let mut sums: Option<Vec<Tensor>> = None;
    for chunk in picked.chunks(batch_size.max(1)) {
        let batch = batch_of(model, grids, chunk);
        let Some((target, mask)) = &batch.target else {
            continue;
        };
        tch::no_grad(|| {
            let pred = model.net.forward(&batch, false).quantiles;
            let batch_sums = sums_of(&pred, &batch, target, mask);
            sums = Some(match sums.take() {
                None => batch_sums,
                Some(acc) => acc.iter().zip(&batch_sums).map(|(a, b)| a + b).collect(),
            });
        });
    }
    sums
}

/// The factors [`fit_correction_scales`] tries: 0 to 1.5 in steps of 0.05.
fn correction_scale_grid() -> Vec<f64> {
    (0..=30).map(|i| i as f64 / 20.0).collect()
}

/// Pinball loss sums per metric and horizon bucket ([M × K], metric-major) of the
/// forecasts `pred` ([B, H, M, Q]) against `target` and `mask`, with every quantile moved
/// by the median's distance from `seasonal` ([B, H, M]) times one minus each factor of
/// `grid`: one sum per factor.
#[allow(clippy::too_many_arguments)]
fn correction_scale_sums(
    pred: &Tensor,
    seasonal: &Tensor,
    target: &Tensor,
    mask: &Tensor,
    levels: &Tensor,
    median: i64,
    grid: &[f64],
    buckets: &[HorizonBucket],
) -> Vec<Tensor> {
    let distance = pred.narrow(3, median, 1) - seasonal.unsqueeze(-1);
    grid.iter()
        .map(|&factor| {
            let moved = pred - &distance * (1.0 - factor);
            // [H, M]
            let per_step = pinball_points(&moved, target, mask, levels).sum_dim_intlist(
                &[0i64, 3][..],
                false,
                Kind::Double,
            );
            let per_bucket: Vec<Tensor> = buckets
                .iter()
                .map(|b| {
                    per_step
                        .narrow(0, b.from as i64, (b.to - b.from) as i64)
                        .sum_dim_intlist(&[0i64][..], false, Kind::Double)
                })
                .collect();
            Tensor::stack(&per_bucket, 1).flatten(0, -1)
        })
        .collect()
}

/// The correction calibration: for every metric and horizon bucket
/// ([`super::network::correction_buckets`]), the factor on the median's distance from the
/// seasonal median (every quantile moving with the median) that gives the lowest pinball
/// loss on `origins` (validation windows the weights were not fitted on), from 0 (the
/// seasonal median itself) to 1.5. A network whose corrections overreach on a metric, or
/// at some horizon, gets a factor below 1 there. Returns no factors when no window has a
/// truth.
pub fn fit_correction_scales(
    model: &TftModel,
    grids: &[Grid],
    origins: &[Origin],
    batch_size: usize,
) -> Vec<f64> {
    let median = nordiq_core::forecast::median_index(&model.shape.quantiles);
    let m = model.shape.metrics.len();
    let buckets = super::network::correction_buckets(&model.shape);
    let levels = model.quantile_tensor();
    let grid = correction_scale_grid();
    let sums = calibration_sums(
        model,
        grids,
        origins,
        batch_size,
        &|pred, batch, target, mask| {
            let seasonal = batch
                .future
                .narrow(2, super::features::TIME_FEATURES as i64, m as i64);
            correction_scale_sums(
                pred,
                &seasonal,
                target,
                mask,
                &levels,
                median as i64,
                &grid,
                &buckets,
            )
        },
    );
    match sums {
        Some(sums) => pick_lowest(&sums, &grid, m * buckets.len(), &|_| false),
        None => Vec::new(),
    }
}

/// The band calibration: for every metric and quantile, the factor on the quantile's
/// distance from the median that gives the lowest pinball loss on `origins` (validation
/// windows the weights were not fitted on), from 0.5 to 2. The median's factor is 1. A
/// network whose bands are too narrow (coverage below nominal) gets factors above 1.
/// Returns no factors when no window has a truth.
pub fn fit_band_scales(
    model: &TftModel,
    grids: &[Grid],
    origins: &[Origin],
    batch_size: usize,
) -> Vec<f64> {
    let median = nordiq_core::forecast::median_index(&model.shape.quantiles);
    let levels = model.quantile_tensor();
    let grid = band_scale_grid();
    let sums = calibration_sums(
        model,
        grids,
        origins,
        batch_size,
        &|pred, _, target, mask| band_scale_sums(pred, target, mask, &levels, median as i64, &grid),
    );
    match sums {
        Some(sums) => pick_band_scales(
            &sums,
            &grid,
            median,
            model.shape.metrics.len(),
            model.shape.quantiles.len(),
        ),
        None => Vec::new(),
    }
}

/// Trains `model` in place; keeps the weights of the best validation epoch.
pub fn train(
    model: &mut TftModel,
    grids: &[Grid],
    train_origins: &[Origin],
    val_origins: &[Origin],
    options: &TrainOptions,
    cancel: &AtomicBool,
    progress: &mut dyn FnMut(&EpochReport),
) -> Result<TrainSummary, tch::TchError> {
    let started = Instant::now();
    // Weights change, so a calibration carried over (incremental training) no longer fits;
    // it is fitted anew at the end.
    model.set_band_scales(&[]);
    model.set_correction_scales(&[]);
    let mut opt = nn::Adam::default().build(&model.vs, options.learning_rate)?;
    opt.set_lr_group(
        super::LEVEL_PATH_GROUP,
        options.learning_rate * super::LEVEL_PATH_LR_SCALE,
    );
    let quantiles = model.quantile_tensor();
    let mut rng = Rng(options.seed.max(1));
    let mut best = f64::INFINITY;
    let mut best_epoch = 0;
    let mut best_weights: Vec<Tensor> = Vec::new();
    let mut since_best = 0;
    let mut stop = Stop::Completed;
    let mut epochs_run = 0;
    let mut order: Vec<Origin> = train_origins.to_vec();
    'epochs: for epoch in 1..=options.epochs {
        // Fisher–Yates with the seeded generator: the same seed, the same model.
        for i in (1..order.len()).rev() {
            let j = (rng.next() % (i as u64 + 1)) as usize;
            order.swap(i, j);
        }
        let take = if options.max_windows == 0 {
            order.len()
        } else {
            options.max_windows.min(order.len())
        };
        let (mut sum, mut count) = (0.0, 0usize);
        for chunk in order[..take].chunks(options.batch_size.max(1)) {
            if cancel.load(Ordering::Relaxed) {
                stop = Stop::Cancelled;
                break 'epochs;
            }
            let batch = batch_of(model, grids, chunk);
            let Some((target, mask)) = &batch.target else {
                continue;
            };
            let out = model.net.forward(&batch, true);
            let loss = pinball_loss(&out.quantiles, target, mask, &quantiles);
            opt.backward_step_clip_norm(&loss, options.clip_norm);
            sum += loss.double_value(&[]) * chunk.len() as f64;
            count += chunk.len();
        }
        epochs_run = epoch;
        let val = evaluate(model, grids, val_origins, options.batch_size);
        let improved = val < best;
        if improved {
            best = val;
            best_epoch = epoch;
            since_best = 0;
            best_weights = model
                .vs
                .trainable_variables()
                .iter()
                .map(|t| t.detach().copy())
                .collect();
        } else {
            since_best += 1;
        }
        let elapsed = started.elapsed().as_secs_f64();
        progress(&EpochReport {
            epoch,
            epochs: options.epochs,
            train_loss: if count > 0 {
                sum / count as f64
            } else {
                f64::NAN
            },
            validation_loss: val,
            best: improved,
            elapsed_s: elapsed,
            eta_s: elapsed / epoch as f64 * (options.epochs - epoch) as f64,
            windows: count,
        });
        if since_best >= options.patience {
            stop = Stop::EarlyStopped;
            break;
        }
    }
    if !best_weights.is_empty() {
        tch::no_grad(|| {
            for (var, saved) in model.vs.trainable_variables().iter_mut().zip(&best_weights) {
                var.copy_(saved);
            }
        });
    }
    let mut calibrated_validation_loss = None;
    if options.calibrate_bands && stop != Stop::Cancelled {
        let corrections = fit_correction_scales(model, grids, val_origins, options.batch_size);
        if !corrections.is_empty() {
            model.set_correction_scales(&corrections);
        }
        let scales = fit_band_scales(model, grids, val_origins, options.batch_size);
        if !scales.is_empty() {
            model.set_band_scales(&scales);
        }
        if !corrections.is_empty() || !scales.is_empty() {
            calibrated_validation_loss =
                Some(evaluate(model, grids, val_origins, options.batch_size));
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok(TrainSummary {
        epochs_run,
        best_epoch,
        best_validation_loss: best,
        seconds,
        seconds_per_epoch: if epochs_run > 0 {
            seconds / epochs_run as f64
        } else {
            0.0
        },
        train_windows: train_origins.len(),
        validation_windows: val_origins.len(),
        stop,
        calibrated_validation_loss,
    })
}

/// Mean of a loss tensor, for tests and reports.
pub fn scalar(t: &Tensor) -> f64 {
    t.to_kind(Kind::Double).double_value(&[])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Standard normal draws from our own generator (Box–Muller): libtorch's is global,
    /// and drawing from it here would change the draws of a training test running beside.
    fn normals(seed: u64, count: usize) -> Vec<f32> {
        let mut rng = Rng(seed);
        let mut uniform = || (rng.next() >> 11) as f64 / (1u64 << 53) as f64;
        (0..count)
            .map(|_| {
                let (u, v) = (uniform().max(1e-12), uniform());
                ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
            })
            .collect()
    }

    /// A metric whose corrections overreach (twice the true one) gets a factor near ½ in
    /// the horizon bucket where they do and about 1 in the other; one whose corrections
    /// are right keeps about 1 in both, a metric never observed keeps 1.
    #[test]
    fn the_correction_calibration_shrinks_corrections_that_overreach() {
        let (b, h) = (64i64, 48i64);
        let n = (b * h * 3) as usize;
        let noise = Tensor::from_slice(&normals(5, n)).view([b, h, 3]) * 0.5;
        // True corrections of up to ±3 around a seasonal median of 5.
        let correction = Tensor::from_slice(&normals(6, n)).view([b, h, 3]) * 1.5;
        let seasonal = Tensor::full([b, h, 3], 5.0, (Kind::Float, tch::Device::Cpu));
        let truth = &seasonal + &correction + noise;
        // Metric 0 overreaches in the first 24 steps only.
        let reach: Vec<f32> = (0..h)
            .flat_map(|step| [if step < 24 { 2.0 } else { 1.0 }, 1.0, 1.0])
            .collect();
        let reach = Tensor::from_slice(&reach).view([1, h, 3]);
        let median = &seasonal + &correction * reach;
        // The noise's p10 and p90 lie 0.64 from its median.
        let offsets = Tensor::from_slice(&[-0.64f32, 0.0, 0.64]).view([1, 1, 1, 3]);
        let pred = median.unsqueeze(-1) + offsets;
        let mask = Tensor::from_slice(&[1.0f32, 1.0, 0.0])
            .view([1, 1, 3])
            .expand([b, h, 3], false);
        let levels = Tensor::from_slice(&[0.1f32, 0.5, 0.9]);
        let grid = correction_scale_grid();
        let bucket = |from, to| HorizonBucket {
            label: format!("{from}-{to}"),
            from,
            to,
        };
        let buckets = [bucket(0, 24), bucket(24, 48)];
        let sums =
            correction_scale_sums(&pred, &seasonal, &truth, &mask, &levels, 1, &grid, &buckets);
        let scales = pick_lowest(&sums, &grid, 6, &|_| false);
        assert_eq!(scales.len(), 6);
        assert!((0.45..=0.55).contains(&scales[0]), "{scales:?}");
        for i in 1..4 {
            assert!((0.93..=1.07).contains(&scales[i]), "{i}: {scales:?}");
        }
        assert_eq!(&scales[4..], [1.0, 1.0], "{scales:?}");
    }

    /// Bands too narrow for the truth get factors above 1, bands too wide below 1, each
    /// metric its own; a metric never observed keeps 1, and so does the median.
    #[test]
    fn the_band_calibration_widens_narrow_bands_and_narrows_wide_ones() {
        let (b, h) = (64i64, 48i64);
        let truth = Tensor::from_slice(&normals(99, (b * h * 3) as usize)).view([b, h, 3]);
        // Standard normal truth: its p10 and p90 lie 1.28 from the median. Metric 0's
        // forecast bands are 0.8 wide on each side (the best factor is 1.6), metric 1's
        // 2.0 (0.64), metric 2 is never observed.
        let half_widths = Tensor::from_slice(&[0.8f32, 2.0, 1.0]).view([1, 1, 3, 1]);
        let offsets = Tensor::from_slice(&[-1.0f32, 0.0, 1.0]).view([1, 1, 1, 3]);
        let pred = (half_widths * offsets).expand([b, h, 3, 3], false);
        let mask = Tensor::from_slice(&[1.0f32, 1.0, 0.0])
            .view([1, 1, 3])
            .expand([b, h, 3], false);
        let levels = Tensor::from_slice(&[0.1f32, 0.5, 0.9]);
        let grid = band_scale_grid();
        let sums = band_scale_sums(&pred, &truth, &mask, &levels, 1, &grid);
        let scales = pick_band_scales(&sums, &grid, 1, 3, 3);
        assert_eq!(scales.len(), 9);
        for (i, &s) in scales.iter().enumerate() {
            let (metric, quantile) = (i / 3, i % 3);
            let expected = match (metric, quantile) {
                (_, 1) | (2, _) => 1.0..=1.0,
                (0, _) => 1.45..=1.75,
                _ => 0.56..=0.72,
            };
            assert!(
                expected.contains(&s),
                "metric {metric} quantile {quantile}: {s}"
            );
        }
    }
}
