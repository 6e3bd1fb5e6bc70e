//! Accuracy report (`cargo bench -p nordiq-ctl --bench accuracy [-- --epochs N]`): trains
//! the TFT on the ASD dataset's `train` rows (seed 42), then scores it and every baseline
//! on the held-out `test` time (origins from 2026-01-31 onward every `--stride` steps;
//! history before each origin, train rows included) with the rolling-origin backtest that
//! `nordiqctl backtest` runs. A second run trains on omi-1…omi-8 only and scores
//! omi-9…omi-12, servers it never saw (`--skip-unseen` leaves it out). Writes
//! docs/accuracy.md, keeping its hand-written "## Ablation" section. Nothing here asserts
//! a figure. `--validation-days N` chooses between variants without the test time: it
//! drops the test rows, trains on the rows before the train split's last N days, scores
//! those days and prints the figures (nothing written).

mod common;

use common::{arg, load_grids, repo, threads, train_options, train_tft};
use nordiq_core::config::Config;
use nordiq_model::accuracy::{best_baseline, best_baseline_per_bucket, Report};
use nordiq_model::backtest::{backtest, Grid, Options};
use nordiq_model::baseline::Baseline;
use nordiq_model::tft::train::{TrainOptions, TrainSummary};
use nordiq_model::Forecaster;
use std::fmt::Write as _;

struct Run {
    reports: Vec<Report>,
    summary: TrainSummary,
    train_windows: usize,
    validation_windows: usize,
    epochs: Vec<String>,
}

/// Trains on `train_grids` (their rows before `test_start`) and scores the model and every
/// baseline on `eval_grids` from `test_start`.
fn run(
    name: &str,
    config: &Config,
    train_grids: &[Grid],
    eval_grids: &[Grid],
    test_start: i64,
    options: &TrainOptions,
) -> Run {
    let trained = train_tft(name, config, train_grids, &|_| test_start, options);
    let served = trained.forecaster;
    let mut models: Vec<Box<dyn Forecaster>> = vec![Box::new(served)];
    if let Some(uncalibrated) = trained.uncalibrated {
        models.push(Box::new(uncalibrated));
    }
    models.extend(
        Baseline::all(config)
            .into_iter()
            .map(|b| Box::new(b) as Box<dyn Forecaster>),
    );
    models.push(Box::new(Baseline::of_kind(
        config,
        nordiq_core::config::BaselineKind::Auto,
    )));
    let refs: Vec<&dyn Forecaster> = models.iter().map(|m| m.as_ref()).collect();
    let started = std::time::Instant::now();
    let reports = backtest(
        config,
        &refs,
        eval_grids,
        &Options {
            test_start_ms: Some(test_start),
            stride: arg("--stride", 24),
        },
    );
    println!(
        "{name}: backtest of {} models in {:.1} s",
        reports.len(),
        started.elapsed().as_secs_f64()
    );
    Run {
        reports,
        summary: trained.summary,
        train_windows: trained.train_windows,
        validation_windows: trained.validation_windows,
        epochs: trained.epochs,
    }
}

fn pct_below(ours: f64, theirs: f64) -> f64 {
    (1.0 - ours / theirs) * 100.0
}

fn overall_table(md: &mut String, reports: &[Report]) {
    let best = best_baseline(reports)
        .map(|b| b.model.clone())
        .unwrap_or_default();
    let _ = writeln!(md, "| model | MASE | pinball | sMAPE % | p10–p90 coverage | windows |\n|---|---|---|---|---|---|");
    for r in reports {
        let mark = if r.model == best {
            " (best baseline)"
        } else {
            ""
        };
        let _ = writeln!(
            md,
            "| {}{mark} | **{:.3}** | {:.5} | {:.2} | {:.1} % | {} |",
            r.model,
            r.mase,
            r.pinball,
            r.smape,
            r.coverage * 100.0,
            r.windows
        );
        println!(
            "{:<30} MASE {:.3} pinball {:.5} sMAPE {:.2} coverage {:.1}%",
            r.model,
            r.mase,
            r.pinball,
            r.smape,
            r.coverage * 100.0
        );
    }
}

fn horizon_table(md: &mut String, reports: &[Report]) {
    let labels: Vec<String> = reports[0]
        .horizons
        .iter()
        .map(|b| b.bucket.label.clone())
        .collect();
    let _ = writeln!(
        md,
        "| model | {} |\n|---|{}",
        labels.join(" | "),
        "---|".repeat(labels.len())
    );
    for r in reports {
        let cells: Vec<String> = r
            .horizons
            .iter()
            .map(|b| {
                format!(
                    "{:.3} / {:.5} / {:.0} %",
                    b.mase,
                    b.pinball,
                    b.coverage * 100.0
                )
            })
            .collect();
        let _ = writeln!(md, "| {} | {} |", r.model, cells.join(" | "));
    }
    let best = best_baseline_per_bucket(reports);
    let cells: Vec<String> = labels
        .iter()
        .map(|l| {
            best.get(l)
                .map(|(m, v)| format!("{m} {v:.3}"))
                .unwrap_or_default()
        })
        .collect();
    let _ = writeln!(md, "| *best baseline* | {} |", cells.join(" | "));
}

/// The targets, each with its measured value and whether it is met.
fn targets(md: &mut String, all: &[Report], unseen: Option<&[Report]>) {
    let tft = &all[0];
    let Some(best) = best_baseline(all) else {
        return;
    };
    let pin_best = all
        .iter()
        .filter(|r| r.model.starts_with("baseline:"))
        .map(|r| r.pinball)
        .fold(f64::INFINITY, f64::min);
    let yes = |ok: bool| if ok { "met" } else { "**not met**" };
    let mut rows = vec![
        (
            "MASE ≤ 0.74".to_string(),
            format!("{:.3}", tft.mase),
            tft.mase <= 0.74,
        ),
        (
            format!(
                "MASE ≥ 8 % below the best baseline ({} {:.3})",
                best.model, best.mase
            ),
            format!("{:.1} % below", pct_below(tft.mase, best.mase)),
            pct_below(tft.mase, best.mase) >= 8.0,
        ),
        (
            format!("pinball ≥ 8 % below the best baseline's ({pin_best:.5})"),
            format!("{:.1} % below", pct_below(tft.pinball, pin_best)),
            pct_below(tft.pinball, pin_best) >= 8.0,
        ),
        (
            "p10–p90 coverage 80 % ± 5".to_string(),
            format!("{:.1} %", tft.coverage * 100.0),
            (0.75..=0.85).contains(&tft.coverage),
        ),
    ];
    let per_bucket = best_baseline_per_bucket(all);
    for b in &tft.horizons {
        if let Some((model, mase)) = per_bucket.get(&b.bucket.label) {
            rows.push((
                format!(
                    "{}: MASE below the best baseline there ({model} {mase:.3})",
                    b.bucket.label
                ),
                format!("{:.3}", b.mase),
                b.mase < *mase,
            ));
        }
        rows.push((
            format!("{}: coverage 80 % ± 5", b.bucket.label),
            format!("{:.1} %", b.coverage * 100.0),
            (0.75..=0.85).contains(&b.coverage),
        ));
    }
    if let Some(unseen) = unseen {
        if let Some(ub) = best_baseline(unseen) {
            let below = pct_below(unseen[0].mase, ub.mase);
            rows.push((
                format!(
                    "unseen servers: MASE ≥ 5 % below the best baseline ({} {:.3})",
                    ub.model, ub.mase
                ),
                format!("{:.3}, {below:.1} % below", unseen[0].mase),
                below >= 5.0,
            ));
        }
    }
    let _ = writeln!(md, "| target | measured | |\n|---|---|---|");
    for (what, value, ok) in rows {
        println!("target {what}: {value} ({})", yes(ok));
        let _ = writeln!(md, "| {what} | {value} | {} |", yes(ok));
    }
}

/// `--validation-days N`: choosing between variants without reading the test time. Every
/// row from the test split on is dropped; the model trains on the rows before the last N
/// days of the train split and is scored on those N days. Prints, writes nothing.
fn validation_only(
    config: &Config,
    grids: &[Grid],
    test_start: i64,
    days: usize,
    options: &TrainOptions,
) {
    let step_ms = config.model.step_seconds as i64 * 1000;
    let cut: Vec<Grid> = grids
        .iter()
        .map(|g| {
            let keep =
                (test_start.div_euclid(step_ms) - g.start_step).clamp(0, g.len as i64) as usize;
            let values = (0..config.metrics.len())
                .flat_map(|m| g.series(m)[..keep].iter().copied())
                .collect();
            Grid {
                len: keep,
                values,
                ..g.clone()
            }
        })
        .collect();
    let start = test_start - days as i64 * 86_400_000;
    let run = run("validation", config, &cut, &cut, start, options);
    for r in &run.reports {
        let buckets: Vec<String> = r
            .horizons
            .iter()
            .map(|b| format!("{} {:.4}", b.bucket.label, b.mase))
            .collect();
        println!(
            "validation {}: MASE {:.4} pinball {:.5} coverage {:.1} % windows {} | {}",
            r.model,
            r.mase,
            r.pinball,
            r.coverage * 100.0,
            r.windows,
            buckets.join(" ")
        );
    }
}

fn main() {
    let repo = repo();
    let config = Config::load(&repo.join("examples/asd.toml")).expect("examples/asd.toml");
    let (grids, rows) = load_grids(&config);
    let test_start =
        nordiq_core::timefmt::parse_rfc3339_ms("2026-01-31T00:00:00Z").expect("test start");
    let threads = threads();
    tch::set_num_threads(threads as i32);
    let options = train_options();
    let validation_days = arg("--validation-days", 0);
    if validation_days > 0 {
        validation_only(&config, &grids, test_start, validation_days, &options);
        return;
    }
    let all = run("all", &config, &grids, &grids, test_start, &options);
    let unseen = (!std::env::args().any(|a| a == "--skip-unseen")).then(|| {
        let number = |g: &Grid| {
            g.server
                .trim_start_matches("omi-")
                .parse::<u32>()
                .unwrap_or(0)
        };
        let (seen, new): (Vec<Grid>, Vec<Grid>) =
            grids.iter().cloned().partition(|g| number(g) <= 8);
        run("unseen", &config, &seen, &new, test_start, &options)
    });

    let mut md = String::new();
    let _ = writeln!(md, "# Accuracy\n");
    let _ = writeln!(
        md,
        "Produced by `cargo bench -p nordiq-ctl --bench accuracy` on the ASD dataset ({} real servers, {rows} rows, 19 metrics scaled to [0, 1], 5-minute steps; [examples/asd.toml](../examples/asd.toml)). Held-out time: forecast origins from 2026-01-31 (the dataset's `test` split) onward, every {} steps, each forecast made from the history before its origin (at most {} steps) for the next {} steps ({} hours). Quantiles {:?}. MASE is the median's MAE divided by seasonal naive's on the same windows and steps (so seasonal naive scores 1.000); pinball is the mean quantile loss; overall and per-horizon figures are means over metrics. The **best baseline** is the baseline with the lowest MASE on the same windows; the targets compare against it. `nordiqctl backtest` computes the same on any history.\n",
        grids.len(),
        arg("--stride", 24),
        config.history_steps(),
        config.model.horizon_steps,
        config.model.horizon_steps * config.model.step_seconds as usize / 3600,
        config.model.quantiles
    );
    let _ = writeln!(md, "## Targets\n");
    targets(
        &mut md,
        &all.reports,
        unseen.as_ref().map(|u| &u.reports[..]),
    );
    let _ = writeln!(
        md,
        "\n## Overall (trained on the train split of all 12 servers)\n"
    );
    overall_table(&mut md, &all.reports);
    let _ = writeln!(md, "\n## By horizon (MASE / pinball / p10–p90 coverage)\n");
    horizon_table(&mut md, &all.reports);
    if let Some(u) = &unseen {
        let _ = writeln!(
            md,
            "\n## Unseen servers (trained on omi-1…omi-8, scored on omi-9…omi-12)\n\n{} training and {} validation windows; {} epochs, best {}, {:.0} s.\n",
            u.train_windows, u.validation_windows, u.summary.epochs_run, u.summary.best_epoch, u.summary.seconds
        );
        overall_table(&mut md, &u.reports);
        let _ = writeln!(md);
        horizon_table(&mut md, &u.reports);
    }
    let s = &all.summary;
    let _ = writeln!(
        md,
        "\n## Training\n\n{} training windows (stride {}) and {} validation windows (stride {}) from before 2026-01-31, {} windows per epoch, batch {}, hidden {}, seed {}; {} epochs ({:?}), best at epoch {}, {:.0} s in all, {:.0} s per epoch on {} threads of this machine ({}). Then the correction and band calibrations on the validation windows (docs/model.md): validation loss {:.5} → {:.5}; the row `tft_uncalibrated` is the same network without them.\n\n| epoch | train loss | validation loss | elapsed s |\n|---|---|---|---|\n{}\n",
        all.train_windows,
        options.stride,
        all.validation_windows,
        options.validation_stride,
        options.max_windows,
        options.batch_size,
        arg("--hidden", 32),
        options.seed,
        s.epochs_run,
        s.stop,
        s.best_epoch,
        s.seconds,
        s.seconds_per_epoch,
        threads,
        nordiq_testkit::bench_report::machine(),
        s.best_validation_loss,
        s.calibrated_validation_loss.unwrap_or(f64::NAN),
        all.epochs.join("\n")
    );
    let _ = writeln!(md, "## Per metric (MASE / coverage)\n");
    let mut header = String::from("| metric |");
    let mut rule = String::from("|---|");
    for r in &all.reports {
        let _ = write!(header, " {} |", r.model);
        rule.push_str("---|");
    }
    let _ = writeln!(md, "{header}\n{rule}");
    for metric in config.metrics.iter().map(|m| &m.name) {
        let mut row = format!("| {metric} |");
        for r in &all.reports {
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
    // The ablation is written by hand from runs of this bench; keep it.
    let ablation = std::fs::read_to_string(&path)
        .ok()
        .and_then(|old| old.find("## Ablation").map(|i| old[i..].to_string()));
    if let Some(a) = ablation {
        let _ = write!(md, "\n{a}");
    }
    std::fs::write(&path, md).expect("write docs/accuracy.md");
    println!("wrote {}", path.display());
}
