//! `nordiq-train`: trains the TFT on the buffer (or on given history), evaluates it against
//! the baselines on held-out time, and writes a complete model directory atomically.

mod job;
mod promote;

use anyhow::Context;
use clap::Parser;
use nordiq_core::config::Config;
use nordiq_core::ingest::Sample;
use nordiq_core::job_record::{JobParams, JobStatus, Promotion};
use nordiq_core::timefmt::{format_ms, now_ms, parse_rfc3339_ms};
use nordiq_model::accuracy::{best_baseline, best_baseline_per_bucket};
use nordiq_model::anomaly_calibration::calibrate_anomaly_threshold;
use nordiq_model::backtest::{backtest, to_grids, Grid, Options};
use nordiq_model::baseline::Baseline;
use nordiq_model::replay::ReplayOptions;
use nordiq_model::tft::train::{split_origins_for, train, TrainOptions};
use nordiq_model::tft::{TftForecaster, TftModel, TftShape};
use nordiq_model::Forecaster;
use nordiq_runtime::exit;
use nordiq_runtime::job_store::JobStore;
use nordiq_runtime::model_store::ModelStore;
use nordiq_runtime::systemd::Notifier;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

/// Train the NordIQ forecaster (a Temporal Fusion Transformer) and write a model directory
/// (config.json, weights.safetensors, metrics.json, training.json) under state_dir/models.
///
/// Progress: one JSON line per epoch on stdout, STATUS= under systemd, a progress line on
/// a terminal. SIGTERM stops cleanly and leaves no partial model directory.
#[derive(Parser, Debug)]
#[command(name = "nordiq-train", version, about, long_about = None)]
struct Args {
    /// Config file [default: $NORDIQ_CONFIG, else /etc/nordiq/nordiq.toml]
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Train on these history files (CSV or Parquet) instead of the buffer.
    #[arg(long = "data", value_name = "FILE")]
    data: Vec<PathBuf>,
    /// Days of buffer history to train on [default: buffer.export_days]
    #[arg(long)]
    days: Option<u32>,
    /// Start of the held-out test time (RFC 3339) [default: the last --holdout-days]
    #[arg(long, value_name = "TIME")]
    test_start: Option<String>,
    /// Days held out for the test evaluation when --test-start is not given.
    #[arg(long, default_value_t = 2.0)]
    holdout_days: f64,
    #[arg(long, default_value_t = 20)]
    epochs: usize,
    /// Training windows per epoch at most (0 = all).
    #[arg(long, default_value_t = 2048)]
    max_windows: usize,
    /// libtorch threads [default: cores]
    #[arg(long)]
    threads: Option<usize>,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    #[arg(long, default_value_t = 32)]
    hidden: usize,
    #[arg(long, default_value_t = 4)]
    heads: usize,
    /// Width of each input variable's own embedding and GRN (at most --hidden).
    #[arg(long, default_value_t = nordiq_model::tft::DEFAULT_VARIABLE_HIDDEN)]
    variable_hidden: usize,
    #[arg(long, default_value_t = 0.1)]
    dropout: f64,
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    #[arg(long, default_value_t = 1e-3)]
    learning_rate: f64,
    /// Steps between training windows.
    #[arg(long, default_value_t = 6)]
    stride: usize,
    /// Steps between validation windows and between held-out forecast origins: every
    /// server at every such origin, so promotion decides on thousands of windows, not a
    /// handful.
    #[arg(long, default_value_t = 24)]
    eval_stride: usize,
    /// Epochs without a better validation loss before stopping.
    #[arg(long, default_value_t = 4)]
    patience: usize,
    /// Warm-start from models/current.
    #[arg(long)]
    incremental: bool,
    /// Where model directories go [default: state_dir/models]
    #[arg(long, value_name = "DIR")]
    models_dir: Option<PathBuf>,
    /// Use CUDA when available.
    #[arg(long)]
    cuda: bool,
    /// Development mode: the embedded default config rooted in the current directory (as
    /// `nordiq-inference --dev`).
    #[arg(long, conflicts_with = "config")]
    dev: bool,
    /// Work under this job record in state_dir/jobs (`next`: the oldest queued job, else a
    /// new one). Without it every run still gets a record of its own.
    #[arg(long, value_name = "ID|next")]
    job: Option<String>,
    /// What started this run, for a new job record (`cli`, `timer`, `api`).
    #[arg(long, default_value = "cli")]
    trigger: String,
    /// Exit 0 with a logged reason when the buffer is not ready to train (the timer's unit
    /// uses it).
    #[arg(long)]
    skip_unready: bool,
    /// Promote the new model even if it does not beat the current one.
    #[arg(long, conflicts_with = "no_promote")]
    force: bool,
    /// Write the model directory but never promote it.
    #[arg(long)]
    no_promote: bool,
    /// How the daemon is told to load a promoted model.
    #[arg(long, value_enum, default_value = "auto")]
    reload: promote::ReloadVia,
}

/// How a run ended, for the exit code and the job record.
enum Outcome {
    Trained {
        id: String,
        path: PathBuf,
        promotion: Option<Promotion>,
    },
    Skipped(String),
    NotEnoughData(String),
    Cancelled,
}

static CANCEL: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    CANCEL.store(true, Ordering::SeqCst);
}

fn fail(code: i32, message: impl std::fmt::Display) -> ExitCode {
    nordiq_runtime::cli::fail("nordiq-train", code, message)
}

fn main() -> ExitCode {
    let args = match nordiq_runtime::cli::parse::<Args>() {
        Ok(a) => a,
        Err(code) => return code,
    };
    // SAFETY: the handler only stores to an atomic.
    unsafe {
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
    }
    let config = match nordiq_runtime::cli::load_config(args.dev, args.config.as_deref()) {
        Ok(c) => c,
        Err(f) => return fail(f.code, f),
    };
    let store = JobStore::new(config.paths.state_dir.join("jobs"));
    let claim = match args.job.as_deref() {
        None => job::Claim::New,
        Some("next") => job::Claim::Next,
        Some(id) => job::Claim::Id(id),
    };
    let cli_params = JobParams {
        epochs: Some(args.epochs),
        incremental: args.incremental,
        force: args.force,
        data_files: Vec::new(),
    };
    let mut job = match job::JobHandle::claim(store, claim, &args.trigger, cli_params) {
        Ok(j) => j,
        Err(e) => return fail(exit::IO_ERR, format!("{e:#}")),
    };
    eprintln!("job {}", job.record.job_id);
    match run(&args, &config, &mut job) {
        Ok(Outcome::Trained {
            id,
            path,
            promotion,
        }) => {
            job.record.model_id = Some(id);
            job.record.model_path = Some(path.display().to_string());
            job.record.promotion = promotion;
            job.finish(JobStatus::Completed, "completed");
            ExitCode::from(exit::OK as u8)
        }
        Ok(Outcome::Skipped(reason)) => {
            eprintln!("nordiq-train: skipped: {reason}");
            job.finish(JobStatus::Completed, &format!("skipped: {reason}"));
            ExitCode::from(exit::OK as u8)
        }
        Ok(Outcome::NotEnoughData(message)) => {
            eprintln!("nordiq-train: {message}");
            job.record.error = Some(message);
            job.finish(JobStatus::Failed, "failed");
            ExitCode::from(exit::DATA_ERR as u8)
        }
        Ok(Outcome::Cancelled) => {
            eprintln!("nordiq-train: stopped by a signal; no model written");
            job.finish(JobStatus::Cancelled, "cancelled");
            ExitCode::from(exit::TEMP_FAIL as u8)
        }
        Err(e) => {
            job.record.error = Some(format!("{e:#}"));
            job.finish(JobStatus::Failed, "failed");
            fail(exit::SOFTWARE, format!("{e:#}"))
        }
    }
}

/// The history files to train on: `--data`, else the job's own (a cluster job collects
/// every node's export); none means this node's buffer.
fn data_files(args: &Args, params: &JobParams) -> Vec<PathBuf> {
    if args.data.is_empty() {
        params.data_files.iter().map(PathBuf::from).collect()
    } else {
        args.data.clone()
    }
}

fn load_samples(data: &[PathBuf], args: &Args, config: &Config) -> anyhow::Result<Vec<Sample>> {
    let mut samples = Vec::new();
    if data.is_empty() {
        let root = config.paths.state_dir.join("buffer");
        let days = args.days.unwrap_or(config.buffer.export_days) as i64;
        let metrics: Vec<String> = config.metrics.iter().map(|m| m.name.clone()).collect();
        nordiq_buffer::read_range(
            &root,
            &metrics,
            now_ms() - days * 86_400_000,
            i64::MAX,
            &mut |s| samples.push(s),
        )
        .with_context(|| format!("reading the buffer at {}", root.display()))?;
    } else {
        for file in data {
            let history =
                nordiq_buffer::import::read_history(file, config, &Default::default(), now_ms())
                    .with_context(|| format!("reading {}", file.display()))?;
            if history.rejected_rows > 0 {
                eprintln!(
                    "{}: {} rows rejected (first: {:?})",
                    file.display(),
                    history.rejected_rows,
                    history.rejected.first()
                );
            }
            samples.extend(history.samples);
        }
    }
    Ok(samples)
}

fn run(args: &Args, config: &Config, job: &mut job::JobHandle) -> anyhow::Result<Outcome> {
    let threads = nordiq_core::config::threads_or_cores(args.threads.unwrap_or(0));
    tch::set_num_threads(threads as i32);
    let notifier = Notifier;
    // A job queued through the API carries its own parameters.
    let params = &job.record.params;
    let epochs = params.epochs.unwrap_or(args.epochs);
    let incremental = args.incremental || params.incremental;
    let force = args.force || params.force;
    let data = data_files(args, params);
    if args.skip_unready && data.is_empty() {
        let root = config.paths.state_dir.join("buffer");
        let stats = nordiq_buffer::stats_of(&root, &config.buffer)
            .with_context(|| format!("reading buffer stats at {}", root.display()))?;
        if !stats.readiness.ready {
            return Ok(Outcome::Skipped(format!(
                "the buffer is not ready to train: {}",
                stats.readiness.reason
            )));
        }
    }
    notifier.status("loading history");
    let samples = load_samples(&data, args, config)?;
    let (first_ms, last_ms) = samples.iter().fold((i64::MAX, i64::MIN), |(a, b), s| {
        (a.min(s.timestamp_ms), b.max(s.timestamp_ms))
    });
    let rows = samples.len();
    let step_ms = config.model.step_seconds as i64 * 1000;
    let aggregates: Vec<_> = config.metrics.iter().map(|m| m.aggregate).collect();
    let grids = to_grids(samples, step_ms, &aggregates);
    let test_start_ms = match &args.test_start {
        Some(t) => parse_rfc3339_ms(t).map_err(|e| anyhow::anyhow!("--test-start `{t}`: {e}"))?,
        None => last_ms - (args.holdout_days * 86_400_000.0) as i64,
    };
    let train_end = |g: &Grid| {
        (test_start_ms.div_euclid(step_ms) - g.start_step).clamp(0, g.len as i64) as usize
    };
    let options = TrainOptions {
        epochs,
        batch_size: args.batch_size,
        max_windows: args.max_windows,
        learning_rate: args.learning_rate,
        patience: args.patience,
        seed: args.seed,
        stride: args.stride,
        validation_stride: args.eval_stride.max(1),
        ..TrainOptions::default()
    };
    let mut shape = TftShape::from_config(config, args.hidden, args.heads, args.dropout);
    shape.variable_hidden = args.variable_hidden.clamp(1, args.hidden.max(1));
    let (train_origins, val_origins) = split_origins_for(&grids, &shape, &train_end, &options);
    if train_origins.is_empty() || val_origins.is_empty() {
        return Ok(Outcome::NotEnoughData(format!(
            "not enough history: {rows} rows of {} servers give {} training and {} validation windows (each needs {} + {} steps before the test start {})",
            grids.len(),
            train_origins.len(),
            val_origins.len(),
            shape.encoder_steps,
            shape.horizon_steps,
            format_ms(test_start_ms)
        )));
    }
    let device = if args.cuda && tch::Cuda::is_available() {
        tch::Device::Cuda(0)
    } else {
        tch::Device::Cpu
    };
    let models_dir = args
        .models_dir
        .clone()
        .unwrap_or_else(|| config.paths.state_dir.join("models"));
    let current = models_dir.join("current");
    let parent = match (incremental, std::fs::canonicalize(&current)) {
        (false, _) => None,
        (true, Ok(dir)) => Some(dir),
        // An API job asks to continue by default (as v2.3 did); with nothing to continue
        // from, it trains a new model. `--incremental` on the command line insists.
        (true, Err(_)) if !args.incremental => {
            eprintln!(
                "no current model at {} to continue from: training a new one",
                current.display()
            );
            None
        }
        (true, Err(e)) => {
            return Err(anyhow::anyhow!(
                "--incremental: no model at {}: {e}",
                current.display()
            ))
        }
    };
    let incremental = parent.is_some();
    let mut model = match &parent {
        Some(dir) => {
            let m = TftModel::load(dir, device)?;
            m.shape
                .compatible_with(config)
                .map_err(|e| anyhow::anyhow!("--incremental: {e}"))?;
            m
        }
        None => TftModel::new(shape, device, args.seed),
    };
    let tty = std::io::stderr().is_terminal();
    eprintln!(
        "training on {rows} rows of {} servers: {} training and {} validation windows, test from {}",
        grids.len(),
        train_origins.len(),
        val_origins.len(),
        format_ms(test_start_ms)
    );
    let summary = train(
        &mut model,
        &grids,
        &train_origins,
        &val_origins,
        &options,
        &CANCEL,
        &mut |r| {
            println!("{}", serde_json::to_string(r).unwrap_or_default());
            job.epoch(r);
            if job.cancel_requested() {
                CANCEL.store(true, Ordering::SeqCst);
            }
            notifier.status(&format!(
                "epoch {}/{}: validation loss {:.4}, ETA {:.0} s",
                r.epoch, r.epochs, r.validation_loss, r.eta_s
            ));
            if tty {
                let done = r.epoch * 30 / r.epochs.max(1);
                eprint!(
                    "\r[{}{}] epoch {}/{} val {:.4} ETA {:.0} s   ",
                    "#".repeat(done),
                    " ".repeat(30 - done),
                    r.epoch,
                    r.epochs,
                    r.validation_loss,
                    r.eta_s
                );
            }
        },
    )?;
    if tty {
        eprintln!();
    }
    if summary.stop == nordiq_model::tft::train::Stop::Cancelled {
        return Ok(Outcome::Cancelled);
    }
    notifier.status("comparing with the current model");
    job.stage("comparing with the current model");
    let current = evaluate_current(
        &ModelStore::new(&models_dir),
        config,
        &grids,
        &val_origins,
        device,
        args.batch_size,
    );
    notifier.status("evaluating against the baselines");
    job.stage("evaluating against the baselines");
    let staging = nordiq_runtime::model_store::Staging::create_new(&models_dir, now_ms())?;
    let id = staging.id().to_string();
    model.save(staging.path())?;
    let tft = TftForecaster::load(staging.path(), &id, threads, args.cuda)?;
    let baselines = Baseline::all(config);
    let models: Vec<&dyn Forecaster> = std::iter::once(&tft as &dyn Forecaster)
        .chain(baselines.iter().map(|b| b as &dyn Forecaster))
        .collect();
    let reports = backtest(
        config,
        &models,
        &grids,
        &Options {
            test_start_ms: Some(test_start_ms),
            stride: args.eval_stride.max(1),
        },
    );
    if CANCEL.load(Ordering::SeqCst) {
        return Ok(Outcome::Cancelled);
    }
    let best = best_baseline(&reports);
    notifier.status("calibrating the anomaly threshold");
    job.stage("calibrating the anomaly threshold");
    let calibration = calibrate_anomaly_threshold(
        config,
        &tft,
        &Baseline::from_config(config),
        &grids,
        &ReplayOptions {
            from_ms: Some(test_start_ms),
            ..ReplayOptions::default()
        },
        &mut |_, _| {},
    );
    match &calibration {
        Ok(c) => eprintln!(
            "anomaly threshold {:.3}: over {} held-out decisions {} started {} alert events at anomaly.threshold = {}, the model {} ({} at {})",
            c.threshold, c.decisions, c.baseline, c.baseline_events, c.configured_threshold,
            c.model_events, c.model_events_at_configured, c.configured_threshold
        ),
        Err(e) => eprintln!("anomaly threshold not calibrated: {e}"),
    }
    if CANCEL.load(Ordering::SeqCst) {
        return Ok(Outcome::Cancelled);
    }
    let held_out = best.map(|b| promote::HeldOut {
        candidate_mase: reports[0].mase,
        best_baseline: b.model.clone(),
        best_baseline_mase: b.mase,
    });
    let promotion = if args.no_promote {
        None
    } else {
        Some(promote::decide(
            summary.best_validation_loss,
            &current,
            held_out.as_ref(),
            config.training.promote_margin,
            force,
        ))
    };
    let metrics = serde_json::json!({
        "held_out_from": format_ms(test_start_ms),
        "held_out_stride_steps": args.eval_stride.max(1),
        "held_out_windows": reports[0].windows,
        "validation_windows": val_origins.len(),
        "validation_pinball": summary.best_validation_loss,
        "validation_pinball_calibrated": summary.calibrated_validation_loss,
        "band_scales": model.shape.band_scales,
        "correction_scales": model.shape.correction_scales,
        "mase": reports[0].mase,
        "best_baseline": best.map(|b| b.model.clone()),
        "best_baseline_mase": best.map(|b| b.mase),
        "best_baseline_per_horizon": best_baseline_per_bucket(&reports),
        "tft": reports[0],
        "baselines": reports[1..],
        // The model's own anomaly threshold (nordiq_core::anomaly_threshold), or why none.
        "anomaly_calibration": calibration.as_ref().ok(),
        "anomaly_calibration_error": calibration.as_ref().err().map(|e| e.to_string()),
        // The training inputs' distribution per metric, for the daemon's drift check.
        "inputs": config.metrics.iter().enumerate().filter_map(|(m, def)| {
            let values = grids.iter().flat_map(|g| g.series(m)[..train_end(g)].iter().copied());
            nordiq_core::drift::InputProfile::of(values).map(|p| (def.name.clone(), p))
        }).collect::<std::collections::BTreeMap<_, _>>(),
    });
    let training = serde_json::json!({
        "id": id,
        "data": { "rows": rows, "servers": grids.len(), "from": format_ms(first_ms), "to": format_ms(last_ms),
                  "source": if data.is_empty() { "buffer".to_string() } else { format!("{data:?}") } },
        "parent": parent.map(|p| p.display().to_string()),
        "seed": args.seed,
        "threads": threads,
        "job": job.record.job_id,
        "promotion": promotion,
        "options": { "epochs": epochs, "incremental": incremental, "max_windows": args.max_windows, "batch_size": args.batch_size,
                     "learning_rate": args.learning_rate, "stride": args.stride, "eval_stride": args.eval_stride, "patience": args.patience },
        "summary": summary,
        "finished": format_ms(now_ms()),
    });
    let dir = staging.finish(&metrics, &training)?;
    eprintln!(
        "model {id}: MASE {:.3} (best baseline {} {:.3}), coverage {:.1} %, {} held-out windows, {} epochs in {:.0} s → {}",
        reports[0].mase,
        best.map(|b| b.model.as_str()).unwrap_or("none"),
        best.map(|b| b.mase).unwrap_or(f64::NAN),
        reports[0].coverage * 100.0,
        reports[0].windows,
        summary.epochs_run,
        summary.seconds,
        dir.display()
    );
    job.stage("promoting");
    if let Some(p) = &promotion {
        eprintln!(
            "promotion: {} ({})",
            if p.promoted {
                "promoted"
            } else {
                "not promoted"
            },
            p.reason
        );
        if p.promoted {
            let before = ModelStore::new(&models_dir).promote(&id)?;
            eprintln!(
                "models/current → {id} (was {})",
                before.as_deref().unwrap_or("none")
            );
            match promote::notify_daemon(config, args.reload) {
                Ok(what) => eprintln!("{what}"),
                Err(e) => eprintln!(
                    "nordiq-train: promoted, but the daemon was not reloaded ({e}); run `nordiqctl reload`"
                ),
            }
        }
    }
    Ok(Outcome::Trained {
        id,
        path: dir,
        promotion,
    })
}

/// The current model's loss on the new model's validation windows.
fn evaluate_current(
    store: &ModelStore,
    config: &Config,
    grids: &[Grid],
    val_origins: &[nordiq_model::tft::train::Origin],
    device: tch::Device,
    batch_size: usize,
) -> promote::Current {
    let Some(id) = store.current() else {
        return promote::Current::None;
    };
    let unusable = |reason: String| promote::Current::Unusable {
        id: id.clone(),
        reason,
    };
    let model = match TftModel::load(&store.dir().join(&id), device) {
        Ok(m) => m,
        Err(e) => return unusable(e.to_string()),
    };
    if let Err(reason) = model.shape.compatible_with(config) {
        return unusable(reason);
    }
    let loss = nordiq_model::tft::train::evaluate(&model, grids, val_origins, batch_size);
    promote::Current::Evaluated { id, loss }
}
