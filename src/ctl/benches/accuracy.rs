//! Accuracy report (`cargo bench -p nordiq-ctl --bench accuracy [-- --epochs N]`): trains
//! the TFT on the ASD dataset's `train` rows (seed 42), then scores it and the baselines on
//! the held-out `test` time (origins from 2026-01-31 onward; history before each origin,
//! train rows included) with the rolling-origin backtest that `nordiqctl backtest` runs.
//! Writes docs/accuracy.md. Nothing here asserts a figure.

use nordiq_core::config::Config;
use nordiq_model::backtest::{backtest, to_grids, Options};
use nordiq_model::baseline::Baseline;
use nordiq_model::tft::train::{split_origins, train, TrainOptions};
use nordiq_model::tft::{TftForecaster, TftModel, TftShape};
use nordiq_model::Forecaster;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::atomic::AtomicBool;

fn main() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let config = Config::load(&repo.join("examples/asd.toml")).expect("examples/asd.toml");
    let data = repo.join("../shared/data/asd");
    let files: Vec<_> = (1..=12)
        .map(|i| data.join(format!("omi-{i}.csv")))
        .filter(|p| p.exists())
        .collect();
    assert!(
        !files.is_empty(),
        "the ASD dataset is not at {}",
        data.display()
    );
    let mut samples = Vec::new();
    for f in &files {
        let h = nordiq_buffer::import::read_history(
            f,
            &config,
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
    let grids = to_grids(
        samples,
        config.model.step_seconds as i64 * 1000,
        &aggregates,
    );
    let test_start = nordiq_core::timefmt::parse_rfc3339_ms("2026-01-31T00:00:00Z").unwrap();
    let step_ms = config.model.step_seconds as i64 * 1000;
    let arg = |name: &str, default: usize| -> usize {
        let args: Vec<String> = std::env::args().collect();
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    tch::set_num_threads(threads as i32);
    let options = TrainOptions {
        epochs: arg("--epochs", 24),
        max_windows: arg("--max-windows", 2048),
        stride: 6,
        ..TrainOptions::default()
    };
    let shape = TftShape::from_config(&config, arg("--hidden", 32), 4, 0.1);
    let mut tft = TftModel::new(shape, tch::Device::Cpu, options.seed);
    let train_end = |g: &nordiq_model::backtest::Grid| {
        (test_start.div_euclid(step_ms) - g.start_step).clamp(0, g.len as i64) as usize
    };
    let (tr, val) = split_origins(
        &grids,
        config.model.encoder_steps,
        config.model.horizon_steps,
        &train_end,
        &options,
    );
    let mut epoch_lines = Vec::new();
    let summary = train(
        &mut tft,
        &grids,
        &tr,
        &val,
        &options,
        &AtomicBool::new(false),
        &mut |r| {
            println!(
                "epoch {}/{}: train {:.4} validation {:.4} ({:.0} s)",
                r.epoch, r.epochs, r.train_loss, r.validation_loss, r.elapsed_s
            );
            epoch_lines.push(format!(
                "| {} | {:.4} | {:.4} | {:.0} |",
                r.epoch, r.train_loss, r.validation_loss, r.elapsed_s
            ));
        },
    )
    .expect("training");
    let model_dir = std::env::temp_dir().join(format!("nordiq-accuracy-{}", std::process::id()));
    std::fs::create_dir_all(&model_dir).unwrap();
    tft.save(&model_dir).unwrap();
    let served = TftForecaster::load(&model_dir, "tft (ASD train split)", threads, false).unwrap();
    let mut models: Vec<Box<dyn Forecaster>> = vec![Box::new(served)];
    models.extend(
        Baseline::all(&config)
            .into_iter()
            .map(|b| Box::new(b) as Box<dyn Forecaster>),
    );
    let refs: Vec<&dyn Forecaster> = models.iter().map(|m| m.as_ref()).collect();
    let started = std::time::Instant::now();
    let reports = backtest(
        &config,
        &refs,
        &grids,
        &Options {
            test_start_ms: Some(test_start),
            stride: 0,
        },
    );
    println!(
        "backtest of {} models in {:.1} s",
        reports.len(),
        started.elapsed().as_secs_f64()
    );

    let mut md = String::new();
    let _ = writeln!(md, "# Accuracy\n");
    let _ = writeln!(
        md,
        "Produced by `cargo bench -p nordiq-ctl --bench accuracy` on the ASD dataset ({} real servers, {rows} rows, 19 metrics scaled to [0, 1], 5-minute steps). Held-out time: forecast origins from 2026-01-31 (the dataset's `test` split) onward, every {} steps (non-overlapping {}-hour windows), each forecast made from the history before its origin (at most {} steps). Quantiles {:?}. MASE is the median's MAE divided by seasonal naive's on the same windows, so seasonal naive scores 1.000; overall figures are means over metrics. `nordiqctl backtest` computes the same on any history.\n",
        grids.len(),
        config.model.horizon_steps,
        config.model.horizon_steps * config.model.step_seconds as usize / 3600,
        config.history_steps(),
        config.model.quantiles
    );
    let _ = writeln!(md, "## Overall\n\n| model | MASE | pinball | sMAPE % | p10–p90 coverage | windows |\n|---|---|---|---|---|---|");
    for r in &reports {
        let _ = writeln!(
            md,
            "| {} | **{:.3}** | {:.5} | {:.2} | {:.1} % | {} |",
            r.model,
            r.mase,
            r.pinball,
            r.smape,
            r.coverage * 100.0,
            r.windows
        );
        println!(
            "{:<26} MASE {:.3} pinball {:.5} sMAPE {:.2} coverage {:.1}%",
            r.model,
            r.mase,
            r.pinball,
            r.smape,
            r.coverage * 100.0
        );
    }
    let beats = |ours: f64, theirs: f64| {
        if ours < theirs {
            "beats"
        } else {
            "does not beat"
        }
    };
    let (tft, median) = (&reports[0], &reports[2]);
    let verdict = format!(
        "The TFT {} seasonal naive on MASE ({:.3}); against the seasonal median of the last {} days it {} on MASE ({:.3} vs {:.3}) and {} on pinball loss ({:.5} vs {:.5}), with p10–p90 coverage {:.1} % vs {:.1} %",
        beats(tft.mase, 1.0),
        tft.mase,
        config.forecast.median_seasons,
        if tft.mase < median.mase { "wins" } else { "loses" },
        tft.mase,
        median.mase,
        if tft.pinball < median.pinball { "wins" } else { "loses" },
        tft.pinball,
        median.pinball,
        tft.coverage * 100.0,
        median.coverage * 100.0
    );
    let _ = writeln!(
        md,
        "\n{verdict} (targets: MASE ≤ 0.85, p10–p90 coverage 80 % ± 7). Its decoder reads that seasonal median as a known input and its head adds a learned correction to it, so the seasonal median is the baseline it has to beat. Training: {} training and {} validation windows from before 2026-01-31, {} windows per epoch, batch {}, hidden {}, seed {}; {} epochs ({:?}), best at epoch {}, {:.0} s in all, {:.0} s per epoch on {} threads of this machine ({}).\n\n| epoch | train loss | validation loss | elapsed s |\n|---|---|---|---|\n{}\n",
        tr.len(),
        val.len(),
        options.max_windows,
        options.batch_size,
        arg("--hidden", 32),
        options.seed,
        summary.epochs_run,
        summary.stop,
        summary.best_epoch,
        summary.seconds,
        summary.seconds_per_epoch,
        threads,
        nordiq_core::bench_report::machine(),
        epoch_lines.join("\n")
    );
    let _ = std::fs::remove_dir_all(&model_dir);
    let _ = writeln!(md, "## Per metric (MASE / coverage)\n");
    let mut header = String::from("| metric |");
    let mut rule = String::from("|---|");
    for r in &reports {
        let _ = write!(header, " {} |", r.model);
        rule.push_str("---|");
    }
    let _ = writeln!(md, "{header}\n{rule}");
    for metric in config.metrics.iter().map(|m| &m.name) {
        let mut row = format!("| {metric} |");
        for r in &reports {
            match r.metrics.get(metric) {
                Some(s) => {
                    let _ = write!(row, " {:.3} / {:.0} % |", s.mase, s.coverage * 100.0);
                }
                None => row.push_str(" – |"),
            }
        }
        let _ = writeln!(md, "{row}");
    }
    let path = repo.join("docs/accuracy.md");
    std::fs::write(&path, md).expect("write docs/accuracy.md");
    println!("wrote {}", path.display());
}
