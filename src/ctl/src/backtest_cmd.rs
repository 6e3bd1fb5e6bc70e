//! `nordiqctl backtest`: score forecasters on history a user brings (rolling origin; see
//! nordiq_model::backtest), so anyone can check a model on their own data.

use crate::failure;
use nordiq_core::config::{BaselineKind, Config};
use nordiq_model::accuracy::{best_baseline, best_baseline_per_bucket};
use nordiq_model::backtest::{backtest, to_grids, Grid, Options};
use nordiq_model::baseline::Baseline;
use nordiq_model::Forecaster;
use nordiq_runtime::exit;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct BacktestArgs {
    /// What to score (repeatable): a trained model directory (written by nordiq-train), or
    /// a baseline: baseline:seasonal_naive, baseline:seasonal_naive_week,
    /// baseline:seasonal_median, baseline:ets (fitted smoothing; baseline:holt is the old
    /// name), baseline:last_value, baseline:auto. Every concrete baseline is always scored
    /// too, so the report can name the best one.
    #[arg(long = "model", value_name = "MODEL")]
    models: Vec<String>,
    /// History files (CSV with a header row, or Parquet), as for `nordiqctl import`.
    #[arg(long = "data", required = true, num_args = 1.., value_name = "FILE")]
    data: Vec<PathBuf>,
    /// First forecast origin (RFC 3339); default: the start of the last third of each series.
    #[arg(long, value_name = "TIME")]
    test_start: Option<String>,
    /// Steps between origins [default: the horizon]
    #[arg(long, default_value_t = 0)]
    stride: usize,
    /// Map a source column to a catalog metric (repeatable).
    #[arg(long = "map", value_name = "SRC=DST")]
    map: Vec<String>,
    #[arg(long)]
    json: bool,
}

/// A forecaster by name: `baseline:KIND` or a trained model directory.
/// `name` as a trained model's directory (it holds `config.json`), if it is one.
pub(crate) fn model_dir(name: &str) -> Option<&std::path::Path> {
    let dir = std::path::Path::new(name);
    dir.join("config.json").is_file().then_some(dir)
}

pub(crate) fn model(config: &Config, name: &str) -> anyhow::Result<Box<dyn Forecaster>> {
    if let Some(kind) = name
        .strip_prefix("baseline:")
        .and_then(BaselineKind::from_id)
    {
        return Ok(Box::new(Baseline::of_kind(config, kind)));
    }
    match name {
        dir if model_dir(dir).is_some() => {
            let path = std::path::Path::new(dir);
            let threads = nordiq_core::config::threads_or_cores(0);
            let id = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| dir.to_string());
            let model = nordiq_model::tft::TftForecaster::load(path, &id, threads, false)
                .map_err(|e| failure(exit::DATA_ERR, format!("--model {dir}: {e}")))?;
            model
                .shape
                .compatible_with(config)
                .map_err(|e| failure(exit::CONFIG, format!("--model {dir}: {e}")))?;
            Ok(Box::new(model))
        }
        other => Err(failure(
            exit::USAGE,
            format!("--model `{other}`: neither a baseline (baseline:seasonal_naive, baseline:seasonal_naive_week, baseline:seasonal_median, baseline:ets, baseline:last_value, baseline:auto) nor a model directory (no config.json there)"),
        )),
    }
}

pub fn run(config: &Config, args: &BacktestArgs) -> anyhow::Result<i32> {
    let mut models = args
        .models
        .iter()
        .map(|m| model(config, m))
        .collect::<anyhow::Result<Vec<_>>>()?;
    for b in Baseline::all(config) {
        if !models.iter().any(|m| m.id() == b.id()) {
            models.push(Box::new(b));
        }
    }
    let map = crate::buffer_cmd::parse_map(config, &args.map)?;
    let test_start_ms = parse_test_start(args.test_start.as_deref())?;
    let (grids, rejected) = read_grids(config, &args.data, &map)?;
    let refs: Vec<&dyn Forecaster> = models.iter().map(|m| m.as_ref()).collect();
    let started = std::time::Instant::now();
    let reports = backtest(
        config,
        &refs,
        &grids,
        &Options {
            test_start_ms,
            stride: args.stride,
        },
    );
    let best = best_baseline(&reports);
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "servers": grids.len(),
                "rejected_rows": rejected,
                "best_baseline": best.map(|b| b.model.clone()),
                "best_baseline_mase": best.map(|b| b.mase),
                "best_baseline_per_horizon": best_baseline_per_bucket(&reports),
                "models": reports,
            }))?
        );
    } else {
        println!(
            "{} servers, {} origins, horizon {} steps of {} s, in {:.1} s",
            grids.len(),
            reports.first().map(|r| r.windows).unwrap_or(0),
            config.model.horizon_steps,
            config.model.step_seconds,
            started.elapsed().as_secs_f64()
        );
        println!(
            "{:<30} {:>8} {:>10} {:>8} {:>9}",
            "MODEL", "MASE", "PINBALL", "sMAPE", "COVERAGE"
        );
        for r in &reports {
            println!(
                "{:<30} {:>8.3} {:>10.5} {:>8.2} {:>8.1}%",
                r.model,
                r.mase,
                r.pinball,
                r.smape,
                r.coverage * 100.0
            );
        }
        if let Some(b) = best {
            println!("best baseline: {} (MASE {:.3})", b.model, b.mase);
        }
        let labels: Vec<&str> = reports
            .first()
            .map(|r| r.horizons.iter().map(|b| b.bucket.label.as_str()).collect())
            .unwrap_or_default();
        if !labels.is_empty() {
            println!("\nMASE / coverage by horizon:");
            print!("{:<30}", "MODEL");
            for l in &labels {
                print!(" {l:>15}");
            }
            println!();
            for r in &reports {
                print!("{:<30}", r.model);
                for b in &r.horizons {
                    print!(" {:>8.3} {:>5.1}%", b.mase, b.coverage * 100.0);
                }
                println!();
            }
        }
    }
    Ok(exit::OK)
}

/// `--test-start` as unix ms (a usage error when it is not RFC 3339).
pub(crate) fn parse_test_start(arg: Option<&str>) -> anyhow::Result<Option<i64>> {
    arg.map(|t| {
        nordiq_core::timefmt::parse_rfc3339_ms(t)
            .map_err(|e| failure(exit::USAGE, format!("--test-start `{t}`: {e}")))
    })
    .transpose()
}

/// Reads history files (CSV or Parquet) and puts them on the step grid; rows refused are
/// counted and the first of each file is reported on stderr.
pub(crate) fn read_grids(
    config: &Config,
    files: &[PathBuf],
    map: &nordiq_buffer::import::ColumnMap,
) -> anyhow::Result<(Vec<Grid>, usize)> {
    let mut samples = Vec::new();
    let mut rejected = 0;
    for file in files {
        let history =
            nordiq_buffer::import::read_history(file, config, map, nordiq_core::timefmt::now_ms())
                .map_err(|e| failure(exit::DATA_ERR, e.to_string()))?;
        rejected += history.rejected_rows;
        if let Some(r) = history.rejected.first() {
            eprintln!(
                "{}:{}: {}: {} ({} rows rejected in this file)",
                r.file.display(),
                r.line,
                r.field,
                r.reason,
                history.rejected_rows
            );
        }
        samples.extend(history.samples);
    }
    let step_ms = config.model.step_seconds as i64 * 1000;
    let aggregates: Vec<_> = config.metrics.iter().map(|m| m.aggregate).collect();
    let grids = to_grids(samples, step_ms, &aggregates);
    if grids.is_empty() {
        return Err(failure(exit::DATA_ERR, "no valid rows in the data"));
    }
    Ok((grids, rejected))
}
