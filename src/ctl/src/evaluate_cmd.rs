//! `nordiqctl evaluate-alerts`: replays labelled history through the daemon's own windows,
//! forecasts, risk, alert and anomaly code, step by step (each decision from the past only),
//! and scores the alerts against the labelled incidents (see nordiq_model::alert_quality).

use crate::backtest_cmd::{model, model_dir, parse_test_start, read_grids};
use crate::failure;
use nordiq_core::config::Config;
use nordiq_core::risk::Level;
use nordiq_model::baseline::Baseline;
use nordiq_model::evaluation::{
    nordiq_alerting, outlook_reliability, score_detector, scored_labels, split_labels,
    static_alerting, with_label_metric, DetectorReport, EventRules, Series, NORDIQ_DETECTORS,
};
use nordiq_model::replay::{confirm_traces, replay, ReplayOptions};
use nordiq_model::Forecaster;
use nordiq_runtime::exit;
use std::io::{IsTerminal, Write as _};
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct EvaluateArgs {
    /// History files with a label column (CSV with a header row, or Parquet).
    #[arg(long = "data", required = true, num_args = 1.., value_name = "FILE")]
    data: Vec<PathBuf>,
    /// The column that marks incident steps (1/true = incident, 0/empty = normal).
    #[arg(long, value_name = "COLUMN")]
    label_column: String,
    /// What forecasts: a trained model directory or baseline:KIND, as for `backtest`
    /// [default: the configured forecast.baseline]
    #[arg(long, value_name = "MODEL")]
    model: Option<String>,
    /// First scored step (RFC 3339); default: the start of the last third of each series.
    #[arg(long, value_name = "TIME")]
    test_start: Option<String>,
    /// An alert up to this long before an incident still catches it.
    #[arg(long, default_value_t = 60, value_name = "MINUTES")]
    lead_minutes: u32,
    /// An alert that was off for at most this long is still the same alert event.
    #[arg(long, default_value_t = 60, value_name = "MINUTES")]
    merge_minutes: u32,
    /// The risk level that counts as a predicted-breach alert.
    #[arg(long, default_value = "warning", value_parser = parse_level)]
    min_level: Level,
    /// Map a source column to a catalog metric (repeatable).
    #[arg(long = "map", value_name = "SRC=DST")]
    map: Vec<String>,
    #[arg(long)]
    json: bool,
}

fn parse_level(s: &str) -> Result<Level, String> {
    Level::ALL
        .into_iter()
        .find(|l| l.as_str() == s)
        .ok_or_else(|| format!("`{s}`: one of healthy, watch, warning, critical"))
}

/// With a model directory and `anomaly.confirm_with_baseline`: the baseline the daemon
/// would confirm its anomalies with (the best baseline its `metrics.json` names, else
/// `forecast.baseline`).
fn confirming_baseline(config: &Config, model: Option<&str>) -> Option<Baseline> {
    let dir = model_dir(model?).filter(|_| config.anomaly.confirm_with_baseline)?;
    let named = nordiq_runtime::model_store::best_baseline_kind_of(dir);
    Some(Baseline::of_kind(
        config,
        named.unwrap_or(config.forecast.baseline),
    ))
}

pub fn run(config: &Config, args: &EvaluateArgs) -> anyhow::Result<i32> {
    let forecaster = model(
        config,
        args.model
            .as_deref()
            .unwrap_or(&format!("baseline:{}", config.forecast.baseline.id())),
    )?;
    let labelled = with_label_metric(config, &args.label_column)
        .map_err(|e| failure(exit::USAGE, format!("--label-column: {e}")))?;
    let map = crate::buffer_cmd::parse_map(&labelled, &args.map)?;
    let (mut grids, rejected) = read_grids(&labelled, &args.data, &map)?;
    let labels = split_labels(&mut grids, config.metrics.len());
    if labels.iter().all(|l| !l.iter().any(|x| *x)) {
        eprintln!(
            "warning: no step is labelled in column `{}`: recall and NAB are undefined",
            args.label_column
        );
    }
    let step_ms = config.model.step_seconds as i64 * 1000;
    let from_ms = parse_test_start(args.test_start.as_deref())?;
    let started = std::time::Instant::now();
    let mut last_print = std::time::Instant::now();
    // Progress on a terminal only: tools reading --json or a log get no carriage returns.
    let tty = std::io::stderr().is_terminal();
    let options = ReplayOptions {
        from_ms,
        // Without --test-start: the last third of each series, as `backtest` does.
        server_from_ms: if from_ms.is_some() {
            Default::default()
        } else {
            grids
                .iter()
                .map(|g| {
                    let start = (g.start_step + (g.len - g.len / 3) as i64) * step_ms;
                    (g.server.clone(), start)
                })
                .collect()
        },
        ..ReplayOptions::default()
    };
    let mut progress = |done, total| {
        if tty && (last_print.elapsed().as_secs() >= 1 || done == total) {
            eprint!("\rreplayed {done}/{total} steps");
            let _ = std::io::stderr().flush();
            last_print = std::time::Instant::now();
        }
    };
    let variants = std::slice::from_ref(&config.anomaly);
    let mut traces = replay(
        config,
        forecaster.as_ref(),
        &grids,
        variants,
        &options,
        &mut progress,
    );
    // A model's anomalies are confirmed by the best baseline beside it, as the daemon does.
    let confirmed_by = confirming_baseline(config, args.model.as_deref()).map(|baseline| {
        let scale = forecaster.anomaly_threshold(&config.anomaly) / config.anomaly.threshold;
        let theirs = replay(
            config,
            &baseline,
            &grids,
            variants,
            &options,
            &mut |_, _| {},
        );
        confirm_traces(&mut traces, &theirs, scale);
        baseline.id().to_string()
    });
    if tty {
        eprintln!(" in {:.1} s", started.elapsed().as_secs_f64());
    }
    let rules = EventRules {
        lead_steps: (args.lead_minutes as usize * 60).div_ceil(config.model.step_seconds as usize),
        merge_gap_steps: args.merge_minutes as usize * 60 / config.model.step_seconds as usize,
        step_seconds: config.model.step_seconds,
    };
    let mut reports: Vec<DetectorReport> = Vec::new();
    // The daemon's threshold for what this forecaster serves (a model's calibrated one).
    let anomaly_threshold = forecaster.anomaly_threshold(&config.anomaly);
    let alerting: Vec<[Vec<bool>; 3]> = traces
        .iter()
        .map(|t| nordiq_alerting(t, args.min_level, 0, anomaly_threshold))
        .collect();
    for (d, name) in NORDIQ_DETECTORS.iter().enumerate() {
        let series: Vec<Series> = traces
            .iter()
            .zip(&labels)
            .zip(&alerting)
            .map(|((t, l), a)| Series {
                server: &t.server,
                labels: scored_labels(t, l),
                alerting: a[d].clone(),
            })
            .collect();
        reports.push(score_detector(name, &series, rules));
    }
    let series: Vec<Series> = traces
        .iter()
        .zip(&labels)
        .zip(&grids)
        .map(|((t, l), g)| Series {
            server: &t.server,
            labels: scored_labels(t, l),
            alerting: static_alerting(config, t, g, args.min_level),
        })
        .collect();
    reports.push(score_detector("static thresholds", &series, rules));
    let reliability = outlook_reliability(config, &traces, &grids);
    let steps: usize = traces.iter().map(|t| t.len() - t.scored_from).sum();
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "model": forecaster.id(),
                "servers": grids.len(),
                "rejected_rows": rejected,
                "scored_steps": steps,
                "lead_minutes": args.lead_minutes,
                "merge_minutes": args.merge_minutes,
                "min_level": args.min_level,
                "anomaly_threshold": anomaly_threshold,
                "anomaly_confirmed_by": confirmed_by,
                "detectors": reports,
                "outlook_minutes": config.anomaly.outlook_minutes,
                "outlook_reliability": reliability,
            }))?
        );
        return Ok(exit::OK);
    }
    println!(
        "{} servers, {steps} steps scored, forecasts by {}; an alert up to {} min before an incident catches it; anomaly threshold {anomaly_threshold:.3}{}",
        grids.len(),
        forecaster.id(),
        args.lead_minutes,
        if anomaly_threshold == config.anomaly.threshold { "" } else { " (the model's calibrated one)" }
    );
    if let Some(baseline) = &confirmed_by {
        println!("the model's anomalies confirmed by {baseline} (anomaly.confirm_with_baseline)");
    }
    println!(
        "{:<20} {:>9} {:>8} {:>7} {:>7} {:>10} {:>11} {:>10} {:>6}",
        "DETECTOR",
        "SEGMENTS",
        "CAUGHT",
        "EARLY",
        "RECALL",
        "PRECISION",
        "FALSE/DAY",
        "LEAD(MIN)",
        "NAB"
    );
    for r in &reports {
        let o = &r.overall;
        println!(
            "{:<20} {:>9} {:>8} {:>7} {:>7.2} {:>10.2} {:>11.2} {:>10} {:>6.1}",
            r.detector,
            o.segments,
            o.caught,
            o.caught_early,
            o.recall,
            o.precision,
            o.false_per_server_day,
            o.median_lead_minutes
                .map(|m| format!("{m:.0}"))
                .unwrap_or_else(|| "–".into()),
            o.nab_standard
        );
    }
    for (minutes, r) in config.anomaly.outlook_minutes.iter().zip(&reliability) {
        println!(
            "\nP(critical within {minutes} min): {} decisions, Brier {:.4}, base rate {:.3}",
            r.count, r.brier, r.base_rate
        );
        for b in r.bins.iter().filter(|b| b.count > 0) {
            println!(
                "  {:.1}–{:.1}: {:>7} predicted {:.3} observed {:.3}",
                b.from, b.to, b.count, b.mean_predicted, b.observed
            );
        }
    }
    Ok(exit::OK)
}
