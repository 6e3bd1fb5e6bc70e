//! Model lifecycle commands: `models`, `promote`, `rollback`, `reload`, `model-info`, and
//! `train` (trigger, follow, status, cancel).

use crate::{check, failure, runtime, unreachable};
use anyhow::Context;
use clap::{Args, Subcommand};
use nordiq_core::api::{ModelInfo, ReloadOutcome, TrainingTriggered};
use nordiq_core::config::Config;
use nordiq_core::job_record::{JobRecord, JobStatus};
use nordiq_runtime::client::{query_escape, ApiClient};
use nordiq_runtime::exit;
use nordiq_runtime::model_store::ModelStore;
use std::io::IsTerminal;
use std::time::Duration;

#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct TrainArgs {
    #[command(subcommand)]
    action: Option<TrainAction>,
    /// Epochs for this job [default: the daemon's training.default_epochs]
    #[arg(long)]
    epochs: Option<usize>,
    /// Warm-start from the current model.
    #[arg(long)]
    incremental: bool,
    /// Promote the result even if it does not beat the current model.
    #[arg(long)]
    force: bool,
    /// Print the job id and return instead of following the job.
    #[arg(long)]
    no_wait: bool,
}

#[derive(Subcommand, Debug)]
enum TrainAction {
    /// A training job's record (the latest by default).
    Status {
        #[arg(long)]
        job: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Stop the running job (SIGTERM; killed after training.cancel_timeout_seconds).
    Cancel,
}

async fn post(client: &ApiClient, path: &str) -> anyhow::Result<nordiq_runtime::client::Answer> {
    let answer = client
        .post(path, "application/json", "")
        .await
        .map_err(unreachable)?;
    check(answer, path)
}

/// `POST /admin/reload-model`, keeping a 422's outcome (the refusal) as an answer.
async fn reload(client: &ApiClient, model: Option<&str>) -> anyhow::Result<ReloadOutcome> {
    let path = match model {
        Some(m) => format!("/admin/reload-model?model_path={}", query_escape(m)),
        None => "/admin/reload-model".into(),
    };
    let answer = client
        .post(&path, "application/json", "")
        .await
        .map_err(unreachable)?;
    if answer.status.as_u16() == 422 {
        return answer.json().context("reading the reload answer");
    }
    check(answer, &path)?
        .json()
        .context("reading the reload answer")
}

fn print_outcome(o: &ReloadOutcome) {
    match &o.error {
        None => println!(
            "serving {} (loaded and checked in {:.0} ms on {} {} windows)",
            o.serving,
            o.duration_ms,
            o.smoke_windows,
            if o.smoke_real { "live" } else { "synthetic" }
        ),
        Some(e) => println!(
            "reload refused after {:.0} ms: {e}\nstill serving {}",
            o.duration_ms, o.serving
        ),
    }
}

pub fn run_models(config: &Config, json: bool) -> anyhow::Result<i32> {
    let store = ModelStore::new(config.paths.state_dir.join("models"));
    let models = store
        .list()
        .map_err(|e| failure(exit::IO_ERR, e.to_string()))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&models)?);
        return Ok(exit::OK);
    }
    if models.is_empty() {
        println!(
            "no models in {} (train one: nordiqctl train, or nordiq-train)",
            store.dir().display()
        );
        return Ok(exit::OK);
    }
    let fmt = |v: Option<f64>, scale: f64| {
        v.map(|x| format!("{:.3}", x * scale))
            .unwrap_or_else(|| "-".into())
    };
    println!(
        "  {:<22} {:<21} {:>6} {:>8} {:>10}",
        "MODEL", "CREATED", "MASE", "COVER %", "VAL LOSS"
    );
    for m in &models {
        let mark = if m.current {
            "*"
        } else if m.previous {
            "-"
        } else {
            " "
        };
        println!(
            "{mark} {:<22} {:<21} {:>6} {:>8} {:>10}{}",
            m.id,
            m.created.as_deref().unwrap_or("-"),
            fmt(m.mase, 1.0),
            fmt(m.coverage, 100.0),
            fmt(m.validation_pinball, 1.0),
            if m.complete { "" } else { "  (incomplete)" }
        );
    }
    println!("* current, - previous (nordiqctl rollback goes back to it)");
    Ok(exit::OK)
}

/// Points `current` at `id` (or back at `previous`), then has the daemon load it. If the
/// daemon refuses the model, the link is put back, so a restart serves what runs now.
pub fn run_promote(config: &Config, client: &ApiClient, id: Option<&str>) -> anyhow::Result<i32> {
    let store = ModelStore::new(config.paths.state_dir.join("models"));
    let before = store.current();
    let now = match id {
        Some(id) => {
            store
                .promote(id)
                .map_err(|e| failure(exit::DATA_ERR, e.to_string()))?;
            id.to_string()
        }
        None => store
            .rollback()
            .map_err(|e| failure(exit::DATA_ERR, e.to_string()))?,
    };
    println!(
        "models/current → {now} (was {})",
        before.as_deref().unwrap_or("none")
    );
    let outcome = match runtime()?.block_on(reload(client, None)) {
        Ok(o) => o,
        Err(e) => {
            println!("the daemon was not told ({e:#}); it loads {now} at its next reload or start");
            return Ok(exit::OK);
        }
    };
    print_outcome(&outcome);
    if outcome.ok {
        return Ok(exit::OK);
    }
    if let Some(old) = before {
        store
            .promote(&old)
            .map_err(|e| failure(exit::IO_ERR, e.to_string()))?;
        println!("models/current put back to {old}");
    }
    Err(failure(exit::DATA_ERR, format!("{now} was refused")))
}

pub fn run_reload(client: &ApiClient, model: Option<&str>, json: bool) -> anyhow::Result<i32> {
    let outcome = runtime()?.block_on(reload(client, model))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&outcome)?);
    } else {
        print_outcome(&outcome);
    }
    Ok(if outcome.ok { exit::OK } else { exit::DATA_ERR })
}

pub fn run_model_info(client: &ApiClient, json: bool) -> anyhow::Result<i32> {
    let answer = runtime()?.block_on(crate::get_ok(client, "/admin/model-info"))?;
    if json {
        println!("{}", answer.text());
        return Ok(exit::OK);
    }
    let i: ModelInfo = answer.json().context("reading /admin/model-info")?;
    println!("serving      {}", i.serving);
    if !i.serving_reason.is_empty() {
        println!("why          {}", i.serving_reason);
    }
    println!("baseline     {} (servers not yet warm)", i.baseline);
    if let Some(p) = &i.path {
        println!("path         {p}");
    }
    println!(
        "current      {} (previous {})",
        i.current.as_deref().unwrap_or("none"),
        i.previous.as_deref().unwrap_or("none")
    );
    if let Some(t) = &i.loaded_at {
        println!("loaded       {t}");
    }
    if let Some(m) = i.mase {
        println!(
            "held out     MASE {m:.3} (seasonal naive 1.000), p10–p90 coverage {}",
            i.coverage
                .map(|c| format!("{:.1} %", c * 100.0))
                .unwrap_or_else(|| "-".into())
        );
    }
    if let (Some(b), Some(m)) = (&i.best_baseline, i.best_baseline_mase) {
        println!("best baseline {b} (MASE {m:.3} on the same held-out time)");
    }
    if i.anomaly_threshold > 0.0 {
        println!(
            "anomaly      threshold {:.3}: {}",
            i.anomaly_threshold, i.anomaly_threshold_reason
        );
    }
    println!(
        "reloads      {} ok, {} refused",
        i.reloads_ok, i.reloads_failed
    );
    if let Some(o) = &i.last_reload {
        print!("last reload  {} · ", o.at);
        print_outcome(o);
    }
    if let Some(live) = &i.live {
        print_live(live);
    }
    Ok(exit::OK)
}

/// The live-accuracy table: served forecaster and best baseline, last day and week.
fn print_live(live: &nordiq_core::api::LiveReport) {
    let f = |v: Option<f64>, digits: usize| match v {
        Some(v) => format!("{v:.digits$}"),
        None => "-".into(),
    };
    let pct = |v: Option<f64>| {
        v.map(|c| format!("{:.1} %", c * 100.0))
            .unwrap_or("-".into())
    };
    println!(
        "live         served forecasts scored against what happened ({} waiting for their horizon)",
        live.pending_windows
    );
    println!(
        "  {:<8} {:<34} {:>8} {:>8} {:>10} {:>9}",
        "SPAN", "FORECASTER", "WINDOWS", "MASE", "PINBALL", "COVERAGE"
    );
    for (label, span) in [("day", &live.day), ("week", &live.week)] {
        for (who, scores) in [
            (&live.served, &span.served),
            (&live.baseline, &span.baseline),
        ] {
            println!(
                "  {:<8} {:<34} {:>8} {:>8} {:>10} {:>9}",
                label,
                who,
                scores.windows,
                f(scores.mase, 3),
                f(scores.pinball, 5),
                pct(scores.coverage)
            );
        }
    }
}

fn print_job(r: &JobRecord) {
    println!("job          {} ({:?}, {})", r.job_id, r.status, r.trigger);
    println!("stage        {} · {:.0} %", r.stage, r.progress);
    if r.epochs > 0 {
        println!(
            "epoch        {}/{} · train loss {} · validation loss {}",
            r.epoch,
            r.epochs,
            r.train_loss
                .map(|v| format!("{v:.5}"))
                .unwrap_or("-".into()),
            r.validation_loss
                .map(|v| format!("{v:.5}"))
                .unwrap_or("-".into())
        );
    }
    println!(
        "started      {} · completed {} · {}",
        r.started.as_deref().unwrap_or("-"),
        r.completed.as_deref().unwrap_or("-"),
        r.duration_s
            .map(|d| format!("{d:.0} s"))
            .unwrap_or_else(|| "-".into())
    );
    if let Some(m) = &r.model_id {
        println!("model        {m}");
    }
    if let Some(p) = &r.promotion {
        println!(
            "promotion    {} ({})",
            if p.promoted {
                "promoted"
            } else {
                "not promoted"
            },
            p.reason
        );
    }
    if let Some(e) = &r.error {
        println!("error        {e}");
    }
}

fn exit_for(r: &JobRecord) -> i32 {
    match r.status {
        JobStatus::Completed | JobStatus::Queued | JobStatus::Running => exit::OK,
        JobStatus::Cancelled => exit::TEMP_FAIL,
        JobStatus::Failed => exit::SOFTWARE,
    }
}

async fn job_status(client: &ApiClient, job: Option<&str>) -> anyhow::Result<JobRecord> {
    let path = match job {
        Some(id) => format!("/admin/training-status?job_id={}", query_escape(id)),
        None => "/admin/training-status".into(),
    };
    let answer: serde_json::Value = crate::get_ok(client, &path)
        .await?
        .json()
        .with_context(|| format!("reading {path}"))?;
    // Before the first job the daemon answers v2.3's `idle`.
    if answer["status"] == "idle" {
        return Err(crate::failure(
            exit::DATA_ERR,
            "no training job has run yet",
        ));
    }
    serde_json::from_value(answer).with_context(|| format!("reading {path}"))
}

/// Polls the job until it ends, drawing a progress bar on a terminal (a line per change
/// otherwise).
async fn follow(client: &ApiClient, job_id: &str) -> anyhow::Result<JobRecord> {
    let tty = std::io::stderr().is_terminal();
    let mut last = String::new();
    loop {
        let r = job_status(client, Some(job_id)).await?;
        let line = format!(
            "{:>3.0} % {}{}",
            r.progress,
            r.stage,
            r.validation_loss
                .map(|v| format!(" · validation loss {v:.5}"))
                .unwrap_or_default()
        );
        if tty {
            let done = (r.progress / 100.0 * 30.0).round() as usize;
            eprint!(
                "\r[{}{}] {line:<70}",
                "#".repeat(done.min(30)),
                " ".repeat(30 - done.min(30))
            );
        } else if line != last {
            eprintln!("{line}");
        }
        last = line;
        if !r.status.is_active() {
            if tty {
                eprintln!();
            }
            return Ok(r);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

pub fn run_train(client: &ApiClient, args: &TrainArgs) -> anyhow::Result<i32> {
    let rt = runtime()?;
    match &args.action {
        Some(TrainAction::Status { job, json }) => {
            let r = rt.block_on(job_status(client, job.as_deref()))?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                print_job(&r);
            }
            Ok(exit::OK)
        }
        Some(TrainAction::Cancel) => {
            let r: JobRecord = rt
                .block_on(post(client, "/admin/cancel-training"))?
                .json()
                .context("reading the cancel answer")?;
            print_job(&r);
            Ok(exit::OK)
        }
        None => {
            let mut path = format!(
                "/admin/trigger-training?incremental={}&force={}",
                args.incremental, args.force
            );
            if let Some(e) = args.epochs {
                path.push_str(&format!("&epochs={e}"));
            }
            let t: TrainingTriggered = rt
                .block_on(post(client, &path))?
                .json()
                .context("reading the trigger answer")?;
            println!("started training job {} ({})", t.job_id, t.launcher);
            if args.no_wait {
                println!("follow it with: nordiqctl train status --job {}", t.job_id);
                return Ok(exit::OK);
            }
            let r = rt.block_on(follow(client, &t.job_id))?;
            print_job(&r);
            Ok(exit_for(&r))
        }
    }
}
