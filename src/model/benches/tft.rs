//! TFT speed (`cargo bench -p nordiq-model --bench tft`): a forward pass over 1,000
//! servers (default catalog and sizes) and a training step, on this machine's CPU.
//! Prints the numbers and rewrites its section of docs/benchmarks.md.

use nordiq_core::config::Config;
use nordiq_model::tft::features::prepare;
use nordiq_model::tft::{pinball_loss, TftModel, TftShape};
use std::fmt::Write as _;
use std::time::Instant;
use tch::nn::OptimizerConfig;
use tch::Device;

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    tch::set_num_threads(threads as i32);
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
    let prepared: Vec<_> = (0..servers)
        .map(|s| prepare(&shape, &|m| &series[m][..], 1_000_000 + s as i64, 0, None))
        .collect();
    let refs: Vec<_> = prepared.iter().collect();
    model.forecast(&refs[..8]); // warm up the allocator and kernels
    let mut times = Vec::new();
    for _ in 0..(if quick { 1 } else { 3 }) {
        let started = Instant::now();
        let out = model.forecast(&refs);
        assert_eq!(out.len(), servers);
        times.push(started.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    let forward = times[times.len() / 2];
    println!(
        "forward pass, {servers} servers: {forward:.2} s (median of {})",
        times.len()
    );

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
    let mut report = String::new();
    let _ = writeln!(report, "## TFT speed (issue 4)\n");
    let _ = writeln!(
        report,
        "Command: `cargo bench -p nordiq-model --bench tft`. Machine: {}; libtorch 2.13.0 (PyPI) on the CPU, {threads} threads. Default catalog (14 metrics), encoder 288, horizon 96, quantiles 0.1/0.5/0.9, hidden 32, 4 heads; forward passes in chunks of 64 windows. Target: 1,000-server forward pass ≤ 2 s.\n\n| what | seconds |\n|---|---|\n| forward pass, {servers} servers (median) | **{forward:.2}** |\n| training step, batch of 64 windows (forward, backward, Adam) | {step:.2} |\n",
        nordiq_core::bench_report::machine()
    );
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/benchmarks.md");
    nordiq_core::bench_report::replace_section(&path, "tft", &report).unwrap();
    println!("wrote {}", path.display());
}
