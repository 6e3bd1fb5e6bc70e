//! Accuracy report (`cargo bench -p nordiq-ctl --bench accuracy`): every forecaster scored
//! on the ASD dataset's held-out time (origins from the `test` split, 2026-01-31, onward;
//! history before each origin, train rows included) with the rolling-origin backtest that
//! `nordiqctl backtest` runs. Writes docs/accuracy.md. Nothing here asserts a figure.

use nordiq_core::config::{BaselineKind, Config};
use nordiq_model::backtest::{backtest, to_grids, Options};
use nordiq_model::baseline::Baseline;
use nordiq_model::Forecaster;
use std::fmt::Write as _;
use std::path::Path;

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
    let models: Vec<Box<dyn Forecaster>> = [BaselineKind::SeasonalNaive, BaselineKind::Holt]
        .into_iter()
        .map(|kind| {
            let mut c = config.clone();
            c.forecast.baseline = kind;
            Box::new(Baseline::from_config(&c)) as Box<dyn Forecaster>
        })
        .collect();
    let refs: Vec<&dyn Forecaster> = models.iter().map(|m| m.as_ref()).collect();
    let test_start = nordiq_core::timefmt::parse_rfc3339_ms("2026-01-31T00:00:00Z").unwrap();
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
    let _ = writeln!(md, "\nNo trained model yet: the TFT (its issue) will be added to this table, judged against these baselines.\n");
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
