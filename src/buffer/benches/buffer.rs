//! Buffer benchmark (`cargo bench -p nordiq-buffer --bench buffer`): sustained durable
//! write rate, bytes per metric value on disk (synthetic fleet and the real ASD data),
//! and export time for 30 days × 100 servers. Prints the numbers and rewrites its section
//! of docs/benchmarks.md. Nothing here asserts a speed.

use nordiq_buffer::{export, import, parquet_io, Buffer};
use nordiq_core::config::{BufferConfig, Config};
use nordiq_core::ingest::Sample;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

const DAY_MS: i64 = 86_400_000;

fn metrics() -> Vec<String> {
    nordiq_core::config::default_catalog()
        .into_iter()
        .map(|m| m.name)
        .collect()
}

/// A plausible sample: daily cycle + noise, rounded to what agents report (2 decimals;
/// counters whole), so compression is measured on realistic values, not on constants.
fn sample(server: usize, ts: i64) -> Sample {
    let phase = (ts % DAY_MS) as f64 / DAY_MS as f64 * std::f64::consts::TAU;
    let mut x = (ts as u64 / 1000).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (server as u64).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    let mut noise = || {
        x ^= x >> 29;
        x = x.wrapping_mul(0x94D0_49BB_1331_11EB);
        (x >> 11) as f64 / (1u64 << 53) as f64 - 0.5
    };
    let base = 20.0 + (server % 17) as f64 * 2.0;
    let cpu = (base + 15.0 * phase.sin() + 4.0 * noise()).clamp(0.0, 100.0);
    let r2 = |v: f64| ((v * 100.0).round() / 100.0) as f32;
    let values = vec![
        r2(cpu),
        r2(cpu * 0.2 + noise()),
        r2((2.0 + noise()).max(0.0)),
        r2((100.0 - cpu * 1.25).max(0.0)),
        r2(cpu * 0.6),
        r2(45.0 + 10.0 * phase.cos() + noise()),
        r2(1.0),
        r2(55.0 + (ts % (30 * DAY_MS)) as f64 / (30.0 * DAY_MS as f64)),
        r2((30.0 + 20.0 * phase.sin() + 5.0 * noise()).max(0.0)),
        r2((18.0 + 12.0 * phase.sin() + 3.0 * noise()).max(0.0)),
        (5.0 + 4.0 * noise()).round().max(0.0) as f32,
        (3.0 + 2.0 * noise()).round().max(0.0) as f32,
        r2(cpu / 12.0),
        r2(ts as f64 / DAY_MS as f64 % 400.0),
    ];
    Sample {
        timestamp_ms: ts,
        server: format!("ppweb{server:04}"),
        profile: "web_api".into(),
        values,
    }
}

fn dir_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            total += if p.is_dir() {
                dir_bytes(&p)
            } else {
                e.metadata().map(|m| m.len()).unwrap_or(0)
            };
        }
    }
    total
}

fn parquet_bytes(root: &Path) -> u64 {
    nordiq_buffer::layout::partitions(root)
        .unwrap()
        .iter()
        .map(|p| dir_bytes(&p.dir))
        .sum()
}

fn tmp(name: &str) -> nordiq_testkit::TempDir {
    let dir = nordiq_testkit::TempDir::new(&format!("bench-buffer-{name}"));
    dir
}

/// Appends `total` samples from `writers` concurrent tasks in batches of `batch`; returns
/// samples per second (every append waits for its fsync).
fn durable_write_rate(root: &Path, total: usize, batch: usize, writers: usize) -> (f64, f64) {
    let settings = BufferConfig::default();
    let (buffer, _) = Buffer::open(root, &metrics(), settings).unwrap();
    let servers = 1000;
    let per_writer = total / writers;
    let start_ts = nordiq_core::timefmt::now_ms() - DAY_MS / 2;
    // Build the samples first so generation stays out of the timing.
    let batches: Vec<Vec<Vec<Sample>>> = (0..writers)
        .map(|w| {
            (0..per_writer / batch)
                .map(|b| {
                    (0..batch)
                        .map(|i| {
                            let n = (b * batch + i) * writers + w;
                            sample(n % servers, start_ts + (n / servers) as i64 * 5000)
                        })
                        .collect()
                })
                .collect()
        })
        .collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let started = Instant::now();
    rt.block_on(async {
        let tasks: Vec<_> = batches
            .into_iter()
            .map(|mine| {
                let buffer = buffer.clone();
                tokio::spawn(async move {
                    for b in &mine {
                        buffer.append(b.iter()).await.unwrap();
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    });
    let seconds = started.elapsed().as_secs_f64();
    let roll_started = Instant::now();
    buffer.close();
    let roll_seconds = roll_started.elapsed().as_secs_f64();
    (
        (per_writer / batch * batch * writers) as f64 / seconds,
        roll_seconds,
    )
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let mut report = String::new();
    let _ = writeln!(
        report,
        "## Buffer (issue 3): durable writes, size on disk, export\n"
    );
    let _ = writeln!(
        report,
        "Command: `cargo bench -p nordiq-buffer --bench buffer`. Machine: {}. In-process, release build, the state directory on this machine's disk.\n",
        nordiq_testkit::bench_report::machine()
    );

    // 1. Sustained durable write rate.
    let total = if quick { 400_000 } else { 3_000_000 };
    let root = tmp("write");
    let (rate, close_s) = durable_write_rate(&root, total, 2500, 4);
    let bytes = parquet_bytes(&root);
    let values = total as f64 * 14.0;
    println!("durable writes: {rate:.0} samples/s; final roll {close_s:.1} s; {:.2} bytes per metric value", bytes as f64 / values);
    let _ = writeln!(
        report,
        "### Sustained write rate, durability on\n\n{total} samples × 14 metrics from 1,000 servers, 4 concurrent writers, 2,500 samples per append; every append returns only after its log frame is fsynced (group commit), and segments roll into Parquet in the background (64 MiB segments). Target: ≥ 100,000 samples/s.\n\n| samples/s | final roll of the open segment |\n|---|---|\n| **{rate:.0}** | {close_s:.1} s |\n"
    );
    let _ = std::fs::remove_dir_all(&root);

    // 2. Bytes per metric value: a day of a 100-server fleet at 5 s, as rolled.
    let root = tmp("size");
    let servers = 100;
    let steps = if quick { 2_000 } else { 17_280 };
    let day0 = nordiq_core::timefmt::now_ms() / DAY_MS * DAY_MS - DAY_MS;
    let mut samples: Vec<Sample> = (0..steps)
        .flat_map(|t| (0..servers).map(move |s| (s, t)))
        .map(|(s, t)| sample(s, day0 + t as i64 * 5000))
        .collect();
    let rows = samples.len();
    let path = root.join("date=x").join("part-1.parquet");
    let started = Instant::now();
    parquet_io::write_samples(&path, &metrics(), &mut samples).unwrap();
    let write_s = started.elapsed().as_secs_f64();
    drop(samples);
    let synthetic = std::fs::metadata(&path).unwrap().len() as f64 / (rows as f64 * 14.0);
    println!("synthetic fleet: {rows} rows, {synthetic:.2} bytes per metric value (written in {write_s:.1} s)");
    let _ = std::fs::remove_dir_all(&root);

    // The real ASD data (19 metrics, 2 decimals in [0, 1]), imported through nordiqctl's path.
    let asd_files: Vec<PathBuf> = match nordiq_testkit::asd::full_dir() {
        Ok(_) => nordiq_testkit::asd::full_files(),
        Err(e) => {
            println!("{e}");
            Vec::new()
        }
    };
    let asd_line = if asd_files.is_empty() {
        "ASD data not found beside the repository: not measured".to_string()
    } else {
        let root = tmp("asd");
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/asd.toml");
        let mut config = Config::load(&example).unwrap();
        config.paths.state_dir = root.to_path_buf();
        let r = import::import_files(
            &root,
            &config,
            &asd_files,
            &Default::default(),
            nordiq_core::timefmt::now_ms(),
            &mut |_, _| {},
        )
        .unwrap();
        let per_value = parquet_bytes(&root) as f64 / (r.imported as f64 * 19.0);
        println!(
            "ASD: {} rows × 19 metrics, {per_value:.2} bytes per metric value",
            r.imported
        );
        let _ = std::fs::remove_dir_all(&root);
        format!("| ASD (real, 12 servers × 45 days at 5 min, 19 metrics, daily files) | {} | **{per_value:.2}** |", r.imported)
    };
    let _ = writeln!(
        report,
        "### Bytes per metric value on disk\n\nZstd, rows sorted by server then time, floats BYTE_STREAM_SPLIT. Target: ≤ 4 bytes.\n\n| data | rows | bytes per value |\n|---|---|---|\n| synthetic fleet (100 servers × 1 day at 5 s, 14 metrics, values to 2 decimals) | {rows} | **{synthetic:.2}** |\n{asd_line}\n\nThe log rolled by the write benchmark above: {:.2} bytes per value (64 MiB segments, a few per day per partition).\n",
        bytes as f64 / values
    );

    // 3. Export: 30 days × 100 servers.
    let root = tmp("export");
    let spacing_ms = if quick { 300_000 } else { 30_000 };
    let now = nordiq_core::timefmt::now_ms();
    let today = now / DAY_MS * DAY_MS;
    let mut total_rows = 0usize;
    for d in 1..=30i64 {
        let day_start = today - d * DAY_MS;
        let mut day: Vec<Sample> = (0..DAY_MS / spacing_ms)
            .flat_map(|t| (0..100).map(move |s| (s, t)))
            .map(|(s, t)| sample(s, day_start + t * spacing_ms))
            .collect();
        total_rows += day.len();
        let path = nordiq_buffer::layout::partition_dir(&root, day_start / DAY_MS)
            .join("part-00000000000000000001.parquet");
        parquet_io::write_samples(&path, &metrics(), &mut day).unwrap();
    }
    let out = root.join("export.parquet");
    let started = Instant::now();
    let r = export::export(&root, &metrics(), 30, false, now, &out).unwrap();
    let export_s = started.elapsed().as_secs_f64();
    println!(
        "export: {} rows over {} days in {export_s:.2} s ({:.0} rows/s, {:.1} MB)",
        r.rows,
        r.days,
        r.rows as f64 / export_s,
        r.bytes as f64 / 1e6
    );
    let _ = writeln!(
        report,
        "### Export for the trainer\n\n30 days × 100 servers, one sample per {} s ({total_rows} rows × 14 metrics), exported as one Parquet file, one day in memory at a time.\n\n| rows | seconds | rows/s | output MB |\n|---|---|---|---|\n| {} | **{export_s:.2}** | {:.0} | {:.1} |\n",
        spacing_ms / 1000,
        r.rows,
        r.rows as f64 / export_s,
        r.bytes as f64 / 1e6
    );
    let _ = std::fs::remove_dir_all(&root);

    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/benchmarks.md");
    nordiq_testkit::bench_report::replace_section(&path, "buffer", &report).unwrap();
    println!("wrote {}", path.display());
}
