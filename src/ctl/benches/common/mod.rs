//! What the ASD benches share: reading the dataset onto the step grid, arguments, and
//! training the TFT on the rows before a time.

#![allow(dead_code)] // each bench uses its own part

use nordiq_core::config::Config;
use nordiq_model::backtest::{to_grids, Grid};
use nordiq_model::tft::train::{split_origins_for, train, TrainOptions, TrainSummary};
use nordiq_model::tft::{TftForecaster, TftModel, TftShape};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

/// `--name N` from the command line, or `default`.
pub fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

pub fn flag(name: &str) -> bool {
    std::env::args().any(|a| a == name)
}

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The ASD CSV files, omi-1 … omi-12.
pub fn asd_files() -> Vec<PathBuf> {
    nordiq_testkit::asd::full_files()
}

/// Every ASD row through the import path (nothing may be rejected), on the step grid.
pub fn load_grids(config: &Config) -> (Vec<Grid>, usize) {
    let mut samples = Vec::new();
    for f in asd_files() {
        let h = nordiq_buffer::import::read_history(
            &f,
            config,
            &Default::default(),
            nordiq_core::timefmt::now_ms(),
        )
        .expect("read ASD");
        assert_eq!(
            h.rejected_rows,
            0,
            "{}: {:?}",
            f.display(),
            h.rejected.first()
        );
        samples.extend(h.samples);
    }
    let rows = samples.len();
    let aggregates: Vec<_> = config.metrics.iter().map(|m| m.aggregate).collect();
    let step_ms = config.model.step_seconds as i64 * 1000;
    (to_grids(samples, step_ms, &aggregates), rows)
}

pub fn threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// A trained TFT, loaded the way the daemon loads one.
pub struct Trained {
    pub forecaster: TftForecaster,
    /// The same network without its calibrations (none when it has none), to show
    /// what the calibration changes.
    pub uncalibrated: Option<TftForecaster>,
    pub summary: TrainSummary,
    pub train_windows: usize,
    pub validation_windows: usize,
    /// `| epoch | train | validation | elapsed |` rows.
    pub epochs: Vec<String>,
}

/// Trains on the rows of each grid before `test_start(grid)` (seed in `options`), saves the
/// model to a temporary directory and loads it back through the serving path.
pub fn train_tft(
    name: &str,
    config: &Config,
    grids: &[Grid],
    test_start: &dyn Fn(&Grid) -> i64,
    options: &TrainOptions,
) -> Trained {
    let step_ms = config.model.step_seconds as i64 * 1000;
    let shape = TftShape::from_config(config, arg("--hidden", 32), 4, 0.1);
    let mut tft = TftModel::new(shape.clone(), tch::Device::Cpu, options.seed);
    let train_end = |g: &Grid| {
        (test_start(g).div_euclid(step_ms) - g.start_step).clamp(0, g.len as i64) as usize
    };
    let (tr, val) = split_origins_for(grids, &shape, &train_end, options);
    println!(
        "{name}: {} training and {} validation windows",
        tr.len(),
        val.len()
    );
    let mut epochs = Vec::new();
    let summary = train(
        &mut tft,
        grids,
        &tr,
        &val,
        options,
        &AtomicBool::new(false),
        &mut |r| {
            println!(
                "{name}: epoch {}/{}: train {:.4} validation {:.4} ({:.0} s)",
                r.epoch, r.epochs, r.train_loss, r.validation_loss, r.elapsed_s
            );
            epochs.push(format!(
                "| {} | {:.4} | {:.4} | {:.0} |",
                r.epoch, r.train_loss, r.validation_loss, r.elapsed_s
            ));
        },
    )
    .expect("training");
    let dir = nordiq_testkit::TempDir::new(&format!("bench-{name}"));
    tft.save(&dir).expect("save");
    let forecaster = TftForecaster::load(&dir, "tft", threads(), false).expect("load");
    let _ = std::fs::remove_dir_all(&dir);
    let calibrated = !tft.shape.band_scales.is_empty() || !tft.shape.correction_scales.is_empty();
    let uncalibrated = calibrated.then(|| {
        println!(
            "{name}: band calibration {:?}; validation loss {:.5} → {:.5}",
            tft.shape.band_scales,
            summary.best_validation_loss,
            summary.calibrated_validation_loss.unwrap_or(f64::NAN)
        );
        println!(
            "{name}: correction calibration {:?}",
            tft.shape.correction_scales
        );
        tft.set_band_scales(&[]);
        tft.set_correction_scales(&[]);
        let dir = nordiq_testkit::TempDir::new(&format!("bench-{name}-uncalibrated"));
        tft.save(&dir).expect("save");
        let forecaster =
            TftForecaster::load(&dir, "tft_uncalibrated", threads(), false).expect("load");
        let _ = std::fs::remove_dir_all(&dir);
        forecaster
    });
    Trained {
        forecaster,
        uncalibrated,
        summary,
        train_windows: tr.len(),
        validation_windows: val.len(),
        epochs,
    }
}

/// The training options both benches use.
pub fn train_options() -> TrainOptions {
    TrainOptions {
        epochs: arg("--epochs", 24),
        max_windows: arg("--max-windows", 2048),
        stride: 6,
        validation_stride: 24,
        ..TrainOptions::default()
    }
}
