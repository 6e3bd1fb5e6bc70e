//! The simulated fleet: servers named and mixed like the original product's fleet, each
//! with its profile's baselines for the 14 default metrics, daily and weekly rhythm, a
//! Markov chain of operating states, and a scenario overlay. Pure: time comes in as
//! simulated milliseconds, nothing is read from the clock.

use crate::scenario::{Scenario, ScenarioState};
use nordiq_core::rng::Rng;
use serde::Serialize;

/// The 14 metrics the simulator produces, in this order.
pub const METRICS: [&str; 14] = [
    "cpu_user_pct",
    "cpu_sys_pct",
    "cpu_iowait_pct",
    "cpu_idle_pct",
    "java_cpu_pct",
    "mem_used_pct",
    "swap_used_pct",
    "disk_usage_pct",
    "net_in_mb_s",
    "net_out_mb_s",
    "back_close_wait",
    "front_close_wait",
    "load_average",
    "uptime_days",
];
const USER: usize = 0;
const SYS: usize = 1;
const IOWAIT: usize = 2;
const IDLE: usize = 3;
const JAVA: usize = 4;
const MEM: usize = 5;
const SWAP: usize = 6;
const DISK: usize = 7;
const NET_IN: usize = 8;
const NET_OUT: usize = 9;
const BACK_CW: usize = 10;
const FRONT_CW: usize = 11;
const LOAD: usize = 12;
const UPTIME: usize = 13;

const DAY_MS: i64 = 86_400_000;

/// A profile's healthy levels at its busiest hour.
#[derive(Debug, Clone, Copy)]
pub struct ProfileSpec {
    pub profile: &'static str,
    pub prefix: &'static str,
    pub digits: usize,
    /// Share of the fleet.
    pub share: f64,
    cores: f64,
    /// Busy at night (batch work) rather than in business hours.
    night_batch: bool,
    cpu_user: f64,
    cpu_sys: f64,
    iowait: f64,
    mem: f64,
    disk: f64,
    net_in: f64,
    net_out: f64,
    back_cw: f64,
    front_cw: f64,
    /// Share of user CPU spent in java processes.
    java: f64,
}

const fn spec(
    profile: &'static str,
    prefix: &'static str,
    digits: usize,
    share: f64,
    cores: f64,
    night_batch: bool,
    levels: [f64; 10],
) -> ProfileSpec {
    ProfileSpec {
        profile,
        prefix,
        digits,
        share,
        cores,
        night_batch,
        cpu_user: levels[0],
        cpu_sys: levels[1],
        iowait: levels[2],
        mem: levels[3],
        disk: levels[4],
        net_in: levels[5],
        net_out: levels[6],
        back_cw: levels[7],
        front_cw: levels[8],
        java: levels[9],
    }
}

/// The original fleet's mix: web 28 %, ml 22 %, db 17 %, etl 11 %, risk 9 %, generic 7 %,
/// conductor 6 %. Levels: user, sys, iowait, mem, disk %, net in/out MB/s, back/front
/// CLOSE_WAIT, java share.
#[rustfmt::skip]
pub const PROFILES: [ProfileSpec; 7] = [
    spec("web_api", "ppweb", 3, 0.28, 8.0, false, [32.0, 7.0, 2.0, 52.0, 42.0, 25.0, 38.0, 8.0, 18.0, 0.7]),
    spec("ml_compute", "ppml", 4, 0.22, 12.0, true, [58.0, 8.0, 3.0, 70.0, 55.0, 40.0, 12.0, 4.0, 2.0, 0.1]),
    spec("database", "ppdb", 3, 0.17, 12.0, false, [36.0, 10.0, 12.0, 80.0, 68.0, 30.0, 45.0, 12.0, 4.0, 0.05]),
    spec("data_ingest", "ppetl", 3, 0.11, 12.0, true, [42.0, 9.0, 14.0, 60.0, 64.0, 60.0, 20.0, 6.0, 3.0, 0.5]),
    spec("risk_analytics", "pprisk", 3, 0.09, 12.0, false, [50.0, 6.0, 4.0, 66.0, 46.0, 15.0, 10.0, 5.0, 3.0, 0.6]),
    spec("generic", "ppgen", 3, 0.07, 4.0, false, [20.0, 5.0, 3.0, 46.0, 50.0, 8.0, 6.0, 3.0, 2.0, 0.2]),
    spec("conductor_mgmt", "ppcon", 3, 0.06, 4.0, false, [15.0, 4.0, 2.0, 40.0, 36.0, 5.0, 5.0, 3.0, 2.0, 0.8]),
];

/// A server's operating state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Idle,
    Healthy,
    MorningSpike,
    HeavyLoad,
    CriticalIssue,
    Maintenance,
    Recovery,
    Offline,
}

impl State {
    pub const ALL: [State; 8] = [
        State::Idle,
        State::Healthy,
        State::MorningSpike,
        State::HeavyLoad,
        State::CriticalIssue,
        State::Maintenance,
        State::Recovery,
        State::Offline,
    ];

    pub fn name(self) -> &'static str {
        match self {
            State::Idle => "idle",
            State::Healthy => "healthy",
            State::MorningSpike => "morning_spike",
            State::HeavyLoad => "heavy_load",
            State::CriticalIssue => "critical_issue",
            State::Maintenance => "maintenance",
            State::Recovery => "recovery",
            State::Offline => "offline",
        }
    }

    /// Multipliers: cpu, memory, iowait, network, close-wait; and swap percent added.
    fn effect(self) -> [f64; 6] {
        match self {
            State::Idle => [0.25, 0.9, 0.5, 0.2, 0.5, 0.0],
            State::Healthy => [1.0, 1.0, 1.0, 1.0, 1.0, 0.0],
            State::MorningSpike => [1.6, 1.05, 1.3, 1.7, 1.8, 0.0],
            State::HeavyLoad => [1.9, 1.15, 2.2, 1.5, 3.0, 8.0],
            State::CriticalIssue => [2.6, 1.3, 4.0, 0.7, 12.0, 35.0],
            State::Maintenance => [0.15, 0.8, 1.5, 0.05, 0.2, 0.0],
            State::Recovery => [1.25, 1.05, 1.3, 1.1, 1.5, 3.0],
            State::Offline => [0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        }
    }
}

/// Transition rates out of `from`, per simulated minute. `trouble` multiplies the rates
/// into trouble (4 for a problem child).
fn rates(from: State, hour: f64, weekday: bool, trouble: f64) -> Vec<(State, f64)> {
    let night = !(6.0..22.0).contains(&hour);
    match from {
        State::Healthy => vec![
            (
                State::MorningSpike,
                if weekday && (7.0..10.0).contains(&hour) {
                    0.03
                } else {
                    0.0
                },
            ),
            (State::HeavyLoad, 0.003 * trouble),
            (State::CriticalIssue, 0.0004 * trouble * trouble),
            (State::Maintenance, 0.0002),
            (State::Idle, if night { 0.02 } else { 0.001 }),
            (State::Offline, 0.000_05),
        ],
        State::Idle => vec![(State::Healthy, if night { 0.02 } else { 0.3 })],
        State::MorningSpike => vec![(State::Healthy, 0.08), (State::HeavyLoad, 0.005 * trouble)],
        State::HeavyLoad => vec![
            (State::Healthy, 0.04),
            (State::CriticalIssue, 0.006 * trouble),
        ],
        State::CriticalIssue => vec![(State::Recovery, 0.04), (State::Offline, 0.004)],
        State::Maintenance => vec![(State::Recovery, 0.03)],
        State::Recovery => vec![(State::Healthy, 0.08), (State::HeavyLoad, 0.003 * trouble)],
        State::Offline => vec![(State::Recovery, 0.05)],
    }
}

/// One simulated server.
#[derive(Debug, Clone)]
pub struct SimServer {
    pub name: String,
    pub profile: &'static str,
    /// Fails more often (about a tenth of the fleet).
    pub problem_child: bool,
    pub state: State,
    spec: ProfileSpec,
    rng: Rng,
    /// Smoothed values, in `METRICS` order.
    values: [f64; 14],
    /// Slow per-metric noise (AR(1), unit variance).
    noise: [f64; 14],
    booted_ms: i64,
    /// Seconds for a value to move ~63 % of the way to its target.
    inertia_s: f64,
}

/// The whole fleet and its scenario.
#[derive(Debug, Clone)]
pub struct Fleet {
    pub servers: Vec<SimServer>,
    scenario: ScenarioState,
    /// Servers in the order a scenario takes them (problem children first).
    scenario_order: Vec<usize>,
    last_ms: Option<i64>,
}

/// How many servers of each profile a fleet of `n` has (largest remainder).
pub fn mix(n: usize) -> [usize; 7] {
    let mut counts = [0usize; 7];
    let mut rest: Vec<(usize, f64)> = Vec::new();
    for (i, p) in PROFILES.iter().enumerate() {
        let exact = n as f64 * p.share;
        counts[i] = exact.floor() as usize;
        rest.push((i, exact - exact.floor()));
    }
    rest.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let missing = n - counts.iter().sum::<usize>();
    for (i, _) in rest.into_iter().take(missing) {
        counts[i] += 1;
    }
    counts
}

impl Fleet {
    /// `n` servers, deterministic for `seed`, with their clocks at `start_ms`.
    pub fn new(n: usize, seed: u64, start_ms: i64) -> Fleet {
        let mut rng = Rng::new(seed);
        let mut servers = Vec::with_capacity(n);
        for (spec, count) in PROFILES.iter().zip(mix(n)) {
            for number in 1..=count {
                let mut own = Rng::new(seed ^ rng.next_u64());
                let booted_ms = start_ms - (5.0 + own.uniform() * 115.0) as i64 * DAY_MS;
                let mut server = SimServer {
                    name: format!("{}{:0width$}", spec.prefix, number, width = spec.digits),
                    profile: spec.profile,
                    problem_child: false,
                    state: State::Healthy,
                    spec: *spec,
                    values: [0.0; 14],
                    noise: [0.0; 14],
                    booted_ms,
                    inertia_s: 90.0 + own.uniform() * 90.0,
                    rng: own,
                };
                server.values = server.target(start_ms, None);
                servers.push(server);
            }
        }
        // About a tenth are problem children, at least one in a fleet of five or more.
        let problems = ((n as f64 * 0.1).round() as usize).max(usize::from(n >= 5));
        let mut order: Vec<usize> = (0..n).collect();
        shuffle(&mut order, &mut rng);
        for &i in order.iter().take(problems) {
            servers[i].problem_child = true;
        }
        // A scenario takes the problem children first, then the others in shuffled order.
        let mut scenario_order: Vec<usize> = order.clone();
        scenario_order.sort_by_key(|&i| !servers[i].problem_child);
        Fleet {
            servers,
            scenario: ScenarioState {
                scenario: Scenario::Healthy,
                since_sim_ms: start_ms,
            },
            scenario_order,
            last_ms: Some(start_ms),
        }
    }

    pub fn scenario(&self) -> ScenarioState {
        self.scenario
    }

    pub fn set_scenario(&mut self, scenario: Scenario, sim_ms: i64) {
        self.scenario = ScenarioState {
            scenario,
            since_sim_ms: sim_ms,
        };
    }

    /// Names of the servers the scenario affects now.
    pub fn affected(&self) -> Vec<&str> {
        let k = self.scenario.affected(self.servers.len());
        self.scenario_order[..k]
            .iter()
            .map(|&i| self.servers[i].name.as_str())
            .collect()
    }

    /// Moves every server to `sim_ms` and returns each one's values (`None` while offline).
    /// Time never runs backwards: an earlier `sim_ms` changes nothing.
    pub fn advance(&mut self, sim_ms: i64) -> Vec<Option<[f64; 14]>> {
        let dt_s = self
            .last_ms
            .map(|last| ((sim_ms - last) as f64 / 1000.0).max(0.0))
            .unwrap_or(0.0);
        self.last_ms = Some(self.last_ms.map_or(sim_ms, |l| l.max(sim_ms)));
        let k = self.scenario.affected(self.servers.len());
        let progress = self.scenario.progress(sim_ms);
        let mut overlay = vec![None; self.servers.len()];
        for &i in &self.scenario_order[..k] {
            overlay[i] = Some((self.scenario.scenario, progress));
        }
        self.servers
            .iter_mut()
            .zip(overlay)
            .map(|(s, o)| s.advance(sim_ms, dt_s, o))
            .collect()
    }
}

fn shuffle(items: &mut [usize], rng: &mut Rng) {
    for i in (1..items.len()).rev() {
        let j = (rng.uniform() * (i + 1) as f64) as usize;
        items.swap(i, j.min(i));
    }
}

/// Hour of day (UTC) and whether it is a weekday, at `ms` since the epoch.
fn clock(ms: i64) -> (f64, bool) {
    let hour = ms.rem_euclid(DAY_MS) as f64 / 3_600_000.0;
    // 1970-01-01 was a Thursday: day 0 → weekday index 3 (Mon = 0).
    let weekday = (ms.div_euclid(DAY_MS) + 3).rem_euclid(7) < 5;
    (hour, weekday)
}

/// 0 – 1: how busy a profile is at this hour.
fn rhythm(spec: &ProfileSpec, ms: i64) -> f64 {
    let (hour, weekday) = clock(ms);
    let peak = if spec.night_batch { 2.0 } else { 14.0 };
    let distance = ((hour - peak).abs()).min(24.0 - (hour - peak).abs());
    let curve = (-(distance / 4.5).powi(2)).exp();
    let week = if weekday || spec.night_batch {
        1.0
    } else {
        0.6
    };
    (0.45 + 0.55 * curve) * week
}

impl SimServer {
    /// Where the values head at `ms` in the current state (before inertia and noise).
    fn target(&self, ms: i64, overlay: Option<(Scenario, f64)>) -> [f64; 14] {
        let s = &self.spec;
        let busy = rhythm(s, ms);
        let [cpu_x, mem_x, io_x, net_x, cw_x, swap_add] = self.state.effect();
        let mut t = [0.0; 14];
        t[USER] = s.cpu_user * busy * cpu_x;
        t[SYS] = s.cpu_sys * (0.6 + 0.4 * busy) * cpu_x.sqrt();
        t[IOWAIT] = s.iowait * (0.7 + 0.3 * busy) * io_x;
        // Problem children leak memory until the next restart.
        let leak = if self.problem_child {
            ((ms - self.booted_ms) as f64 / DAY_MS as f64 * 1.5).min(25.0)
        } else {
            0.0
        };
        t[MEM] = s.mem * (0.9 + 0.1 * busy) * mem_x + leak;
        t[SWAP] = 1.0 + swap_add + (t[MEM] - 85.0).max(0.0) * 1.5;
        // Logs grow through the week and are cleaned up on Sundays.
        let week_fraction = (ms.div_euclid(DAY_MS) + 3).rem_euclid(7) as f64 / 7.0;
        t[DISK] = s.disk + 6.0 * week_fraction;
        t[NET_IN] = s.net_in * busy * net_x;
        t[NET_OUT] = s.net_out * busy * net_x;
        t[BACK_CW] = s.back_cw * (0.5 + 0.5 * busy) * cw_x;
        t[FRONT_CW] = s.front_cw * (0.5 + 0.5 * busy) * cw_x;
        if let Some((scenario, progress)) = overlay {
            for (name, value) in scenario.targets() {
                if let Some(m) = METRICS.iter().position(|n| n == name) {
                    if *value > t[m] {
                        t[m] += (value - t[m]) * progress;
                    }
                }
            }
        }
        t
    }

    fn advance(
        &mut self,
        ms: i64,
        dt_s: f64,
        overlay: Option<(Scenario, f64)>,
    ) -> Option<[f64; 14]> {
        if dt_s > 0.0 {
            self.transition(ms, dt_s);
        }
        if self.state == State::Offline {
            return None;
        }
        let target = self.target(ms, overlay);
        let pull = if dt_s > 0.0 {
            1.0 - (-dt_s / self.inertia_s).exp()
        } else {
            0.0
        };
        // Noise that wanders over minutes rather than jumping every sample.
        let keep = (-dt_s / 300.0).exp();
        for ((value, noise), goal) in self.values.iter_mut().zip(&mut self.noise).zip(target) {
            *value += (goal - *value) * pull;
            *noise = *noise * keep + (1.0 - keep * keep).sqrt() * self.rng.gauss();
        }
        Some(self.observe(ms))
    }

    /// The values as a monitoring agent would report them: noise, bounds, the derived
    /// metrics (idle, java, load, uptime).
    fn observe(&mut self, ms: i64) -> [f64; 14] {
        let v = &self.values;
        let n = &self.noise;
        let jitter = |x: f64, rel: f64, i: usize, rng: &mut Rng| {
            (x * (1.0 + rel * (0.7 * n[i] + 0.3 * rng.gauss()))).max(0.0)
        };
        let mut out = [0.0; 14];
        out[USER] = jitter(v[USER], 0.08, USER, &mut self.rng);
        out[SYS] = jitter(v[SYS], 0.10, SYS, &mut self.rng);
        out[IOWAIT] = jitter(v[IOWAIT], 0.15, IOWAIT, &mut self.rng);
        let busy = out[USER] + out[SYS] + out[IOWAIT];
        if busy > 99.5 {
            let scale = 99.5 / busy;
            for m in [USER, SYS, IOWAIT] {
                out[m] *= scale;
            }
        }
        out[IDLE] = (100.0 - out[USER] - out[SYS] - out[IOWAIT]).max(0.0);
        out[JAVA] =
            (out[USER] * self.spec.java * (1.0 + 0.05 * self.rng.gauss())).clamp(0.0, 100.0);
        out[MEM] = jitter(v[MEM], 0.02, MEM, &mut self.rng).min(99.9);
        out[SWAP] = jitter(v[SWAP], 0.05, SWAP, &mut self.rng).min(100.0);
        out[DISK] = (v[DISK] + 0.3 * n[DISK]).clamp(0.0, 100.0);
        out[NET_IN] = jitter(v[NET_IN], 0.12, NET_IN, &mut self.rng);
        out[NET_OUT] = jitter(v[NET_OUT], 0.12, NET_OUT, &mut self.rng);
        out[BACK_CW] = jitter(v[BACK_CW], 0.2, BACK_CW, &mut self.rng).round();
        out[FRONT_CW] = jitter(v[FRONT_CW], 0.2, FRONT_CW, &mut self.rng).round();
        out[LOAD] = ((out[USER] + out[SYS] + out[IOWAIT]) / 100.0
            * self.spec.cores
            * 1.1
            * (1.0 + 0.05 * n[LOAD]))
            .max(0.0);
        out[UPTIME] = ((ms - self.booted_ms) as f64 / DAY_MS as f64).max(0.0);
        out
    }

    fn transition(&mut self, ms: i64, dt_s: f64) {
        let (hour, weekday) = clock(ms);
        let trouble = if self.problem_child { 4.0 } else { 1.0 };
        let minutes = dt_s / 60.0;
        for (next, rate) in rates(self.state, hour, weekday, trouble) {
            if rate > 0.0 && self.rng.uniform() < 1.0 - (-rate * minutes).exp() {
                if self.state == State::Offline {
                    // Back from offline means rebooted.
                    self.booted_ms = ms;
                }
                self.state = next;
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests;
