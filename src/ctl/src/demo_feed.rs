//! A scripted demo feed: a small deterministic fleet with daily cycles, noise, and a few
//! servers that degrade, sent as NDJSON. It exists so the suite shows real forecasts on a
//! fresh machine; it is not the simulator (that is `nordiq-metrics simulate`).

use anyhow::{bail, Context};
use nordiq_core::config::Config;
use nordiq_core::timefmt::now_ms;
use nordiq_runtime::client::ApiClient;
use std::fmt::Write as _;
use std::time::Duration;

#[derive(clap::Args, Debug)]
pub struct DemoFeedArgs {
    /// Servers in the fleet.
    #[arg(long, default_value_t = 20)]
    servers: usize,
    /// Hours of history sent first (26 h: a day for seasonal forecasts, plus residuals).
    #[arg(long, default_value_t = 26.0)]
    history_hours: f64,
    /// Seconds between history samples.
    #[arg(long, default_value_t = 60)]
    history_interval: u64,
    /// Seconds between live samples.
    #[arg(long, default_value_t = 5)]
    interval: u64,
    /// Stop after this many seconds of live feed (0: run until interrupted).
    #[arg(long, default_value_t = 0)]
    duration: u64,
    /// Seed for the noise.
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

const PROFILES: [(&str, &str); 7] = [
    ("ppweb", "web_api"),
    ("ppml", "ml_compute"),
    ("ppdb", "database"),
    ("ppetl", "data_ingest"),
    ("pprisk", "risk_analytics"),
    ("ppgen", "generic"),
    ("ppcon", "conductor_mgmt"),
];

struct Server {
    name: String,
    base_cpu: f64,
    base_mem: f64,
    amplitude: f64,
    /// Degrading servers climb towards trouble over the last hours of history.
    degrading: bool,
}

fn fleet(n: usize) -> Vec<Server> {
    (0..n)
        .map(|i| {
            let (prefix, _) = PROFILES[i % PROFILES.len()];
            let number = i / PROFILES.len() + 1;
            Server {
                name: format!("{prefix}{number:03}"),
                base_cpu: 20.0 + (i * 7 % 30) as f64,
                base_mem: 40.0 + (i * 11 % 25) as f64,
                amplitude: 10.0 + (i * 3 % 12) as f64,
                degrading: i % 9 == 4,
            }
        })
        .collect()
}

/// Deterministic noise in [-1, 1) from (seed, server, time).
fn noise(seed: u64, server: usize, t: i64, channel: u64) -> f64 {
    let mut x = seed
        ^ (server as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (t as u64).wrapping_mul(0xBF58_476D_1CE4_E5B9)
        ^ channel;
    x ^= x >> 31;
    x = x.wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^= x >> 29;
    (x >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
}

fn record(
    out: &mut String,
    config: &Config,
    s: &Server,
    i: usize,
    ts_ms: i64,
    seed: u64,
    start_ms: i64,
) {
    let day = 86_400_000.0;
    let phase = ((ts_ms % 86_400_000) as f64 / day - 14.0 / 24.0) * std::f64::consts::TAU;
    let daily = phase.cos(); // peaks at 14:00 UTC
    let ramp = if s.degrading {
        ((ts_ms - start_ms) as f64 / (6.0 * 3_600_000.0))
            .clamp(0.0, 1.0)
            .powi(2)
    } else {
        0.0
    };
    let n = |c| noise(seed, i, ts_ms / 1000, c);
    let cpu = (s.base_cpu + s.amplitude * daily + 3.0 * n(1) + 45.0 * ramp).clamp(0.0, 99.0);
    let sys = (cpu * 0.2 + n(2)).clamp(0.0, 100.0);
    let iowait = (2.0 + 1.5 * n(3).abs() + 10.0 * ramp).clamp(0.0, 100.0);
    let idle = (100.0 - cpu - sys - iowait).clamp(0.0, 100.0);
    let mem = (s.base_mem + 5.0 * daily + 2.0 * n(4) + 40.0 * ramp).clamp(0.0, 99.5);
    let values = [
        ("cpu_user_pct", cpu),
        ("cpu_sys_pct", sys),
        ("cpu_iowait_pct", iowait),
        ("cpu_idle_pct", idle),
        ("java_cpu_pct", (cpu * 0.6).clamp(0.0, 100.0)),
        ("mem_used_pct", mem),
        (
            "swap_used_pct",
            (ramp * 25.0 + n(5).abs()).clamp(0.0, 100.0),
        ),
        (
            "disk_usage_pct",
            50.0 + (i % 5) as f64 * 6.0 + (ts_ms - start_ms) as f64 / 3.6e9 * 0.1,
        ),
        ("net_in_mb_s", (20.0 + 15.0 * daily + 3.0 * n(6)).max(0.0)),
        ("net_out_mb_s", (12.0 + 9.0 * daily + 2.0 * n(7)).max(0.0)),
        (
            "back_close_wait",
            (5.0 + 4.0 * n(8).abs() + 300.0 * ramp).round(),
        ),
        ("front_close_wait", (3.0 + 3.0 * n(9).abs()).round()),
        ("load_average", (cpu / 12.0 + n(10).abs()).max(0.0)),
        ("uptime_days", 30.0 + (ts_ms - start_ms) as f64 / day),
    ];
    let _ = write!(
        out,
        "{{\"timestamp\":{ts_ms},\"server_name\":\"{}\"",
        s.name
    );
    for (name, v) in values {
        // Only metrics the running catalog knows, so a custom catalog is not flooded
        // with rejections.
        if config.metric_index(name).is_some() {
            let _ = write!(out, ",\"{name}\":{v:.3}");
        }
    }
    out.push_str("}\n");
}

async fn send(client: &ApiClient, body: String) -> anyhow::Result<usize> {
    let answer = client
        .post("/feed/data", "application/x-ndjson", body)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    if !answer.status.is_success() {
        bail!("/feed/data answered {}: {}", answer.status, answer.text());
    }
    let parsed: nordiq_core::api::IngestResponse = answer.json().context("reading /feed/data")?;
    Ok(parsed.accepted)
}

pub async fn run(client: &ApiClient, config: &Config, args: &DemoFeedArgs) -> anyhow::Result<()> {
    if args.servers == 0 || args.interval == 0 || args.history_interval == 0 {
        bail!("--servers, --interval and --history-interval must be positive");
    }
    let servers = fleet(args.servers);
    let now = now_ms();
    let history_ms = (args.history_hours * 3_600_000.0) as i64;
    let start = now - history_ms;
    let step = args.history_interval as i64 * 1000;
    let mut sent = 0usize;
    let mut body = String::new();
    let mut t = start - start % step;
    eprintln!(
        "demo feed: {} servers, {:.0} h of history every {} s, then live every {} s",
        servers.len(),
        args.history_hours,
        args.history_interval,
        args.interval
    );
    while t < now {
        for (i, s) in servers.iter().enumerate() {
            record(&mut body, config, s, i, t, args.seed, start);
        }
        if body.len() > 4 << 20 {
            sent += send(client, std::mem::take(&mut body)).await?;
            eprint!("\r  history: {sent} samples sent");
        }
        t += step;
    }
    if !body.is_empty() {
        sent += send(client, std::mem::take(&mut body)).await?;
    }
    eprintln!("\r  history: {sent} samples sent");
    let refresh = client
        .post("/admin/refresh", "application/json", "")
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    eprintln!("  forecasts refreshed: {}", refresh.text());
    let deadline = (args.duration > 0).then(|| now_ms() + args.duration as i64 * 1000);
    let mut tick = tokio::time::interval(Duration::from_secs(args.interval));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = tokio::signal::ctrl_c() => break,
        }
        let ts = now_ms();
        if deadline.is_some_and(|d| ts >= d) {
            break;
        }
        for (i, s) in servers.iter().enumerate() {
            record(&mut body, config, s, i, ts, args.seed, start);
        }
        match send(client, std::mem::take(&mut body)).await {
            Ok(n) => sent += n,
            Err(e) => eprintln!("  live sample not delivered (will keep trying): {e:#}"),
        }
    }
    eprintln!("demo feed stopped after {sent} samples");
    Ok(())
}
