//! Seeded, deterministic test data: the PRNG and the histories tests feed daemons.

/// The seeded generator the simulated fleet uses too (SplitMix64).
pub use nordiq_core::rng::Rng;

fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// NDJSON for `servers` × `steps` samples `step_s` apart, ending now: `cpu_user_pct` is
/// `value(server index, step)`, `mem_used_pct` 40, `cpu_idle_pct` the rest of 100.
pub fn ndjson_history(
    servers: &[&str],
    steps: usize,
    step_s: i64,
    value: impl Fn(usize, usize) -> f64,
) -> String {
    let now = now_s();
    let mut out = String::new();
    for t in 0..steps {
        let ts = now - (steps - 1 - t) as i64 * step_s;
        for (i, s) in servers.iter().enumerate() {
            let v = value(i, t);
            out.push_str(&format!(
                "{{\"timestamp\":{ts},\"server_name\":\"{s}\",\"cpu_user_pct\":{v},\"mem_used_pct\":{:.1},\"cpu_idle_pct\":{:.1}}}\n",
                40.0,
                (100.0 - v).max(0.0)
            ));
        }
    }
    out
}

/// Hourly NDJSON ending at the current hour: a daily wave per server, with deterministic
/// noise (a noiseless wave would make seasonal naive perfect and MASE undefined).
pub fn hourly_history(servers: &[&str], hours: i64) -> String {
    let now = now_s() / 3600 * 3600;
    let mut out = String::new();
    for h in 0..hours {
        let ts = now - (hours - 1 - h) * 3600;
        for (i, s) in servers.iter().enumerate() {
            let noise = ((ts / 3600 * 7919 + i as i64 * 104729) % 1000) as f64 / 250.0 - 2.0;
            let v = 40.0
                + 20.0 * ((ts / 3600 % 24) as f64 / 24.0 * std::f64::consts::TAU).sin()
                + i as f64 * 5.0
                + noise;
            out.push_str(&format!(
                "{{\"timestamp\":{ts},\"server_name\":\"{s}\",\"cpu_user_pct\":{v:.2},\"mem_used_pct\":{:.2}}}\n",
                50.0 + i as f64 + noise
            ));
        }
    }
    out
}
