//! Seeded, deterministic test data: a small PRNG and the histories tests feed daemons.

/// SplitMix64: a tiny seeded generator (tests must be reproducible, not cryptographic).
#[derive(Debug, Clone)]
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (0 when n is 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

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
