//! TFT speed (`cargo bench -p nordiq-model --bench tft`): a forward pass over 1,000
//! servers (default catalog and sizes), a training step, and a training epoch on ASD
//! windows side by side with pytorch-forecasting's `TemporalFusionTransformer` on the same
//! windows and sizes (bench/pf_train_speed.py in the venv bench/setup-reference.sh makes;
//! `--skip-reference` leaves it out), on this machine's CPU. Prints the numbers and the
//! ratio, and rewrites its section of docs/benchmarks.md. `--forward-only` stops after the
//! forward passes (nothing written); `--epoch-only` runs only the epoch comparison (nothing
//! written); `--quick` is a smoke run on 128 servers.

use nordiq_core::config::Config;
use nordiq_core::window::WindowSnapshot;
use nordiq_model::backtest::Grid;
use nordiq_model::tft::features::prepare;
use nordiq_model::tft::train::{split_origins_for, train, TrainOptions};
use nordiq_model::tft::{
    pinball_loss, set_fused_forecast_passes, TftForecaster, TftModel, TftShape,
};
use nordiq_model::Forecaster;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::Instant;
use tch::nn::OptimizerConfig;
use tch::Device;

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    tch::set_num_threads(threads as i32);
    if std::env::args().any(|a| a == "--epoch-only") {
        epoch_comparison(threads);
        return;
    }
    let config = Config::default();
    let shape = TftShape::from_config(&config, 32, 4, 0.1);
    let model = TftModel::new(shape.clone(), Device::Cpu, 1);
    let servers = if quick { 128 } else { 1000 };
    let len = config.history_steps();
    let series: Vec<Vec<f32>> = (0..config.metrics.len())
        .map(|m| {
            (0..len)
                .map(|t| {
                    40.0 + 10.0 * ((t % 288) as f32 / 288.0 * std::f32::consts::TAU).sin()
                        + m as f32
                })
                .collect()
        })
        .collect();
    let started = Instant::now();
    let prepared: Vec<_> = (0..servers)
        .map(|s| prepare(&shape, &|m| &series[m][..], 1_000_000 + s as i64, 0, None))
        .collect();
    let preparing = started.elapsed().as_secs_f64();
    println!("preparing {servers} windows on one thread: {preparing:.2} s");
    let refs: Vec<_> = prepared.iter().collect();
    let passes = if quick { 1 } else { 9 };
    // Both timings start from the servers' snapshots: preparing the windows is part of
    // serving them.
    let snapshots: Vec<WindowSnapshot> = (0..servers)
        .map(|s| WindowSnapshot {
            server: format!("s{s}"),
            profile: "generic".into(),
            last_step: 1_000_000 + s as i64,
            history: series.concat(),
            len,
            current: vec![f32::NAN; series.len()],
            current_ts: 0,
        })
        .collect();
    let snapshot_refs: Vec<_> = snapshots.iter().collect();
    // One model running libtorch on every thread, preparing the windows on one (how the
    // daemon served before its workers) ...
    let one_model_pass = || {
        let prepared: Vec<_> = snapshots
            .iter()
            .map(|s| model.prepare_snapshot(s))
            .collect();
        let refs: Vec<_> = prepared.iter().collect();
        assert_eq!(model.forecast(&refs).len(), servers)
    };
    // ... and as the daemon serves: one worker per thread, each with its own copy of the
    // model on one thread, preparing its share of the windows.
    let dir = nordiq_testkit::TempDir::new("tft-bench");
    model.save(&dir).expect("save the model");
    let forecaster = TftForecaster::load(&dir, "tft", threads, false).expect("load the model");
    // Warm-ups: the allocator and the kernels.
    model.forecast(&refs[..8]);
    forecaster.forecast_batch(&snapshot_refs[..8]);
    let served_pass = || assert_eq!(forecaster.forecast_batch(&snapshot_refs).len(), servers);
    // The variable selections' per-variable GRNs, the attention and the GRNs' and gates'
    // tails in the crate's fused passes (as served) or as libtorch's operations (as before
    // them); the one-model pass is served as it was then.
    let with_fused = |fused: bool, pass: &dyn Fn()| {
        set_fused_forecast_passes(fused);
        pass();
        set_fused_forecast_passes(true);
    };
    let [(one_model, _, _), (unfused, _, _), (forward, fastest, slowest)] = interleaved(
        passes,
        [
            ("one model, all threads", &|| {
                with_fused(false, &one_model_pass)
            }),
            ("as served, libtorch operations only", &|| {
                with_fused(false, &served_pass)
            }),
            ("as served", &|| with_fused(true, &served_pass)),
        ],
    );
    drop(forecaster);
    if std::env::args().any(|a| a == "--forward-only") {
        return;
    }

    // One training step on a batch of 64 windows.
    let truth: Vec<Vec<f32>> = series
        .iter()
        .map(|s| s[..shape.horizon_steps].to_vec())
        .collect();
    let train_windows: Vec<_> = (0..64)
        .map(|s| {
            prepare(
                &shape,
                &|m| &series[m][..],
                1_000_000 + s,
                0,
                Some(&|m| &truth[m][..]),
            )
        })
        .collect();
    let train_refs: Vec<_> = train_windows.iter().collect();
    let mut opt = tch::nn::Adam::default().build(&model.vs, 1e-3).unwrap();
    let q = model.quantile_tensor();
    let mut step_times = Vec::new();
    for _ in 0..(if quick { 2 } else { 5 }) {
        let started = Instant::now();
        let batch = model.batch(&train_refs);
        let (target, mask) = batch.target.as_ref().unwrap();
        let out = model.net.forward(&batch, true);
        let loss = pinball_loss(&out.quantiles, target, mask, &q);
        opt.backward_step_clip_norm(&loss, 1.0);
        step_times.push(started.elapsed().as_secs_f64());
    }
    step_times.sort_by(f64::total_cmp);
    let step = step_times[step_times.len() / 2];
    println!("training step, batch 64: {step:.2} s");
    let flops = forward_flops(&shape);
    let peak = peak_flops(threads);
    let forward_share = flops * servers as f64 / forward / peak;
    // A training step: forward and backward, about three forward passes.
    let step_share = 3.0 * flops * 64.0 / step / peak;
    println!(
        "estimated {:.1} MFLOP per window forward; forward reaches {:.1} % and training {:.1} % of a {:.0} GFLOP/s peak",
        flops / 1e6,
        forward_share * 100.0,
        step_share * 100.0,
        peak / 1e9
    );
    let epochs = if quick {
        None
    } else {
        epoch_comparison(threads)
    };
    let mut report = String::new();
    let _ = writeln!(report, "## TFT speed (issue 4)\n");
    let _ = writeln!(
        report,
        "Command: `cargo bench -p nordiq-model --bench tft`. Machine: {}; libtorch 2.13.0 (PyPI) on the CPU, {threads} threads. Default catalog (14 metrics), encoder 288, horizon 96, quantiles 0.1/0.5/0.9, hidden 32, 4 heads; forward passes in chunks of 64 windows, served as the daemon does (`TftForecaster`: one worker per thread, each with its own copy of the model on one libtorch thread, the batch split between them; the timing includes preparing each window from its snapshot: {preparing:.2} s for {servers} on one thread). Target: 1,000-server forward pass ≤ 1 s (issue 12; it was ≤ 2 s).\n\n| what | seconds |\n|---|---|\n| forward pass, {servers} servers, as served (median of {}; fastest {fastest:.2}, slowest {slowest:.2}) | **{forward:.2}** |\n| the same without the fused passes: the variable selections' per-variable GRNs, the attention and the GRNs' and gates' tails as libtorch's operations, as served before them (median) | {unfused:.2} |\n| the same, one model on {threads} libtorch threads preparing the windows on one, as served before the workers (median) | {one_model:.2} |\n| training step, batch of 64 windows (forward, backward, Adam) | {step:.2} |\n\nEstimated work: {:.1} MFLOP per window's forward pass, counted on the textbook network (the linear layers, LSTMs and attention; a training step ≈ 3× forward). Against this machine's FP32 peak of {:.0} GFLOP/s ({threads} cores × clock × 32, two 8-wide FMA units), the forward pass reaches {:.1} % and a training step {:.1} %. The network runs fewer operations than it is counted with: every layer that reads a variable's linear embedding of a scalar is folded into the embedding (no [windows, steps, variables, 8] tensor; each variable's input and skip layers become one multiply-add), fc2 and the gate are one product where no dropout sits between them, and attention runs in a fused kernel (in training libtorch's, its dropout one draw per head and position on the value rows instead of one per weight). Forecasts on a CPU with AVX2 and FMA run the parts libtorch spends most of a pass on as many narrow element-wise operations in this crate's own fused passes (`nordiq_model::tft::fused`; the same functions up to rounding, unit-tested against libtorch's): each variable selection's per-variable GRNs and their mix, eight rows per register through every step; the attention, scores, softmax and the shared values' weighted sum per query and head, eight keys per register; and the tail every GRN and gate-add-norm shares (ELU, the product to the GLU's halves, GLU, the skip, layer norm), one row in registers from its input to its output. One model spreading each operation over both cores waited at OpenMP barriers for a fifth of its time, which the workers, each on its own core, do not. The allocator keeps tensor-sized blocks on the heap (`nordiq_model::tft::memory`).\n",
        nordiq_testkit::bench_report::machine(),
        passes,
        flops / 1e6,
        peak / 1e9,
        forward_share * 100.0,
        step_share * 100.0
    );
    if let Some((ours, reference)) = epochs {
        let _ = writeln!(
            report,
            "### A training epoch, side by side with pytorch-forecasting

The same ASD windows (12 servers, train split, 19 metrics; encoder 288, horizon 96) and sizes (hidden 32, 4 heads, per-variable width 8, quantiles 0.1/0.5/0.9, dropout 0.1, batch 64, {threads} threads): NordIQ's TFT (tch) and pytorch-forecasting's `TemporalFusionTransformer` (torch 2.13.0 from PyPI, CPU, Lightning trainer, `bench/pf_train_speed.py`), each fed 19 observed metrics, 5 known time features and 19 known seasonal medians. An epoch is 2,048 windows (32 batches); the figure is each one's second epoch (the first warms up).

| | seconds per epoch |
|---|---|
| NordIQ TFT | **{ours:.1}** |
| pytorch-forecasting TFT | {} |
| ratio | {} |
",
            reference.map(|r| format!("{r:.1}")).unwrap_or_else(|| "not measured (bench/setup-reference.sh)".into()),
            reference.map(|r| format!("**{:.2}×** faster", r / ours)).unwrap_or_else(|| "–".into())
        );
    }
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/benchmarks.md");
    // A quick run (128 servers, no epoch comparison) is a smoke check, not a report.
    if quick {
        println!("--quick: {} left as it was", path.display());
        return;
    }
    nordiq_testkit::bench_report::replace_section(&path, "tft", &report).unwrap();
    println!("wrote {}", path.display());
}

/// Times `n` rounds of every pass, one after the other in each round (on a shared 2-core
/// machine single passes vary by ±25 % and slow stretches last minutes: interleaving lets
/// them fall on both alike); prints each and returns each one's median, fastest and
/// slowest seconds.
fn interleaved<const K: usize>(n: usize, passes: [(&str, &dyn Fn()); K]) -> [(f64, f64, f64); K] {
    let mut times = [(); K].map(|_| Vec::with_capacity(n));
    for _ in 0..n {
        for ((what, pass), times) in passes.iter().zip(times.iter_mut()) {
            let started = Instant::now();
            pass();
            let seconds = started.elapsed().as_secs_f64();
            println!("forward pass ({what}): {seconds:.2} s");
            times.push(seconds);
        }
    }
    std::array::from_fn(|k| {
        let t = &mut times[k];
        t.sort_by(f64::total_cmp);
        let (median, fastest, slowest) = (t[n / 2], t[0], t[n - 1]);
        println!(
            "forward pass ({}): {median:.2} s (median of {n}, {fastest:.2}–{slowest:.2})",
            passes[k].0
        );
        (median, fastest, slowest)
    })
}

/// The ASD servers' train split on the 5-minute grid (a small reader: the files are plain
/// CSV with a `timestamp`, `server_name`, `split` and `m01`…`m19` columns).
fn asd_train_grids(dir: &Path) -> Vec<Grid> {
    let mut grids = Vec::new();
    for i in 1..=12 {
        let path = dir.join(format!("omi-{i}.csv"));
        let mut reader =
            csv::Reader::from_path(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let header = reader.headers().expect("header").clone();
        let col = |name: &str| header.iter().position(|h| h == name).expect(name);
        let (ts, split) = (col("timestamp"), col("split"));
        let metrics: Vec<usize> = (1..=19).map(|m| col(&format!("m{m:02}"))).collect();
        let mut start = None;
        let mut columns: Vec<Vec<f32>> = vec![Vec::new(); metrics.len()];
        for row in reader.records() {
            let row = row.expect("row");
            if &row[split] != "train" {
                continue;
            }
            let step =
                nordiq_core::timefmt::parse_rfc3339_ms(&row[ts]).expect("timestamp") / 300_000;
            start.get_or_insert(step);
            for (c, m) in columns.iter_mut().zip(&metrics) {
                c.push(row[*m].parse().unwrap_or(f32::NAN));
            }
        }
        let len = columns[0].len();
        grids.push(Grid {
            server: format!("omi-{i}"),
            profile: "generic".into(),
            start_step: start.unwrap_or(0),
            len,
            values: columns.concat(),
        });
    }
    grids
}

/// Seconds per training epoch of 2,048 ASD windows: NordIQ's TFT, and pytorch-forecasting's
/// when its venv exists (`NORDIQ_BENCH_PYTHON`, else ~/.cache/nordiq/bench-venv).
fn epoch_comparison(threads: usize) -> Option<(f64, Option<f64>)> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let data = match nordiq_testkit::asd::full_dir() {
        Ok(d) => d,
        Err(e) => {
            println!("epoch comparison skipped: {e}");
            return None;
        }
    };
    let mut config = Config::default();
    config.metrics.clear();
    for m in 1..=19 {
        let mut metric = Config::default().metrics[0].clone();
        metric.name = format!("m{m:02}");
        (metric.min, metric.max) = (0.0, 1.0);
        config.metrics.push(metric);
    }
    let grids = asd_train_grids(&data);
    let shape = TftShape::from_config(&config, 32, 4, 0.1);
    let mut model = TftModel::new(shape.clone(), Device::Cpu, 42);
    let options = TrainOptions {
        epochs: 2,
        max_windows: 2048,
        batch_size: 64,
        stride: 6,
        patience: 10,
        // Epochs are what is timed; the calibration after them is not.
        calibrate_bands: false,
        ..TrainOptions::default()
    };
    let (train_origins, val_origins) =
        split_origins_for(&grids, &shape, &|g: &Grid| g.len, &options);
    let mut times = Vec::new();
    let mut last = 0.0;
    train(
        &mut model,
        &grids,
        &train_origins,
        &val_origins[..1],
        &options,
        &AtomicBool::new(false),
        &mut |r| {
            times.push(r.elapsed_s - last);
            last = r.elapsed_s;
        },
    )
    .expect("training");
    let ours = times.last().copied().unwrap_or(f64::NAN);
    println!("NordIQ TFT: {ours:.1} s per epoch of 2,048 ASD windows ({threads} threads)");
    if std::env::args().any(|a| a == "--skip-reference") {
        return Some((ours, None));
    }
    let python = std::env::var_os("NORDIQ_BENCH_PYTHON")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME").unwrap_or_default();
            Path::new(&home).join(".cache/nordiq/bench-venv/bin/python")
        });
    if !python.exists() {
        println!(
            "pytorch-forecasting not measured: no {} (run bench/setup-reference.sh)",
            python.display()
        );
        return Some((ours, None));
    }
    let out = std::process::Command::new(&python)
        .arg(repo.join("bench/pf_train_speed.py"))
        .args([
            "--data",
            &data.display().to_string(),
            "--threads",
            &threads.to_string(),
        ])
        .stderr(std::process::Stdio::inherit())
        .output()
        .expect("running bench/pf_train_speed.py");
    let line = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap_or("")
        .to_string();
    let reference = serde_json::from_str::<serde_json::Value>(&line)
        .ok()
        .and_then(|v| v["seconds_per_epoch"].as_f64());
    match reference {
        Some(r) => println!(
            "pytorch-forecasting TFT: {r:.1} s per epoch; NordIQ is {:.2}× faster",
            r / ours
        ),
        None => println!("pytorch-forecasting failed: {line}"),
    }
    Some((ours, reference))
}

/// Estimated floating-point operations of one window's forward pass (multiply-adds of the
/// linear layers, the LSTMs and the attention, counted as 2; element-wise work left out):
/// what the share-of-peak figure divides by.
fn forward_flops(shape: &TftShape) -> f64 {
    let (t, h) = (shape.encoder_steps as f64, shape.horizon_steps as f64);
    let (d, e) = (shape.hidden as f64, shape.variable_width() as f64);
    let (m, q) = (shape.metrics.len() as f64, shape.quantiles.len() as f64);
    let heads = shape.heads as f64;
    // A variable selection network, per step, over `v` variables.
    let vsn = |v: f64| {
        v * (2.0 * e + 2.0 * (2.0 * e * e + 3.0 * e * d) + 2.0 * d)
            + 2.0 * v * e * d
            + 2.0 * d * d
            + 4.0 * d * v
            + 2.0 * v * v * e
    };
    let positions = t + h;
    t * vsn(shape.encoder_vars() as f64)
        + h * vsn(shape.decoder_vars() as f64)
        + positions * (16.0 * d * d + 4.0 * d * d + 8.0 * d * d)
        + h * 2.0 * d * d
        + positions * (2.0 * d * d + 2.0 * d * d / heads)
        + 2.0 * 2.0 * h * positions * d
        + h * (2.0 * d * d / heads + 4.0 * d * d + 8.0 * d * d + 4.0 * d * d + 2.0 * d * m * q)
}

/// This machine's FP32 peak: cores × clock × 32 (two 8-wide FMA units per core, AVX2).
fn peak_flops(threads: usize) -> f64 {
    let mhz = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("cpu MHz"))
                .and_then(|l| l.split(':').nth(1))
                .and_then(|v| v.trim().parse::<f64>().ok())
        })
        .unwrap_or(2000.0);
    threads as f64 * mhz * 1e6 * 32.0
}
