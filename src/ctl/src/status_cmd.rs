//! `nordiqctl status`: the NordIQ units as systemd sees them (`systemctl show`) and the
//! daemon's own health (`GET /status`).

use crate::{get_ok, runtime};
use anyhow::Context;
use nordiq_core::api::StatusResponse;
use nordiq_runtime::client::ApiClient;
use nordiq_runtime::exit;
use serde::Serialize;
use std::collections::BTreeMap;

/// Exit code when a NordIQ unit is in the `failed` state (as `systemctl is-failed`).
pub const UNIT_FAILED: i32 = 1;

/// The units `status` reports, in display order.
pub const UNITS: [&str; 8] = [
    "nordiq.target",
    "nordiq-inference.socket",
    "nordiq-inference.service",
    "nordiq-dashboard.socket",
    "nordiq-dashboard.service",
    "nordiq-metrics.service",
    "nordiq-retrain.timer",
    "nordiq-retrain.service",
];

const PROPERTIES: &str = "Id,LoadState,ActiveState,SubState,MainPID,MemoryCurrent,CPUUsageNSec,ActiveEnterTimestampMonotonic,Listen,Result";

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct UnitStatus {
    pub unit: String,
    pub load: String,
    pub active: String,
    pub sub: String,
    pub pid: Option<u32>,
    /// What a socket listens on (`127.0.0.1:8000`).
    pub listen: Option<String>,
    pub memory_bytes: Option<u64>,
    pub cpu_seconds: Option<f64>,
    pub uptime_seconds: Option<f64>,
}

/// `KEY=value` lines of `systemctl show`.
pub fn parse_show(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// One unit from its `systemctl show` properties; `now_monotonic_s` is the current
/// CLOCK_MONOTONIC (the uptime in /proc/uptime) to turn the activation time into uptime.
pub fn unit_status(unit: &str, p: &BTreeMap<String, String>, now_monotonic_s: f64) -> UnitStatus {
    // systemd prints `[not set]` (or the max u64) for unknown numbers.
    let number = |key: &str| {
        p.get(key)
            .and_then(|v| v.parse::<u64>().ok())
            .filter(|v| *v != u64::MAX)
    };
    let active = p.get("ActiveState").cloned().unwrap_or_default();
    let since = number("ActiveEnterTimestampMonotonic").filter(|v| *v > 0);
    UnitStatus {
        unit: unit.to_string(),
        load: p.get("LoadState").cloned().unwrap_or_default(),
        sub: p.get("SubState").cloned().unwrap_or_default(),
        pid: number("MainPID").filter(|p| *p > 0).map(|p| p as u32),
        listen: p
            .get("Listen")
            .filter(|v| !v.is_empty())
            .map(|v| v.split(" (").next().unwrap_or(v).to_string()),
        memory_bytes: number("MemoryCurrent"),
        cpu_seconds: number("CPUUsageNSec").map(|ns| ns as f64 / 1e9),
        uptime_seconds: since
            .filter(|_| active == "active")
            .map(|us| (now_monotonic_s - us as f64 / 1e6).max(0.0)),
        active,
    }
}

fn monotonic_now() -> f64 {
    std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|t| t.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0.0)
}

/// Every NordIQ unit, or None when systemd is not running (development mode).
fn units() -> Option<Vec<UnitStatus>> {
    if !nordiq_runtime::systemd::booted() {
        return None;
    }
    let now = monotonic_now();
    let statuses = UNITS
        .iter()
        .filter_map(|unit| {
            let out = std::process::Command::new("systemctl")
                .args(["show", unit, "-p", PROPERTIES])
                .output()
                .ok()?;
            out.status.success().then(|| {
                unit_status(
                    unit,
                    &parse_show(&String::from_utf8_lossy(&out.stdout)),
                    now,
                )
            })
        })
        .collect();
    Some(statuses)
}

fn human_bytes(b: u64) -> String {
    match b {
        b if b >= 1 << 30 => format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64),
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64),
        b => format!("{:.0} KiB", b as f64 / 1024.0),
    }
}

fn human_duration(s: f64) -> String {
    let s = s as u64;
    match s {
        s if s >= 86_400 => format!("{}d {}h", s / 86_400, s % 86_400 / 3600),
        s if s >= 3600 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        s if s >= 60 => format!("{}m {}s", s / 60, s % 60),
        s => format!("{s}s"),
    }
}

fn print_units(units: &[UnitStatus]) {
    println!(
        "{:<26} {:<18} {:>7} {:<16} {:>10} {:>9} {:>9}",
        "UNIT", "STATE", "PID", "LISTEN", "MEMORY", "CPU", "UPTIME"
    );
    let dash = || "-".to_string();
    for u in units {
        println!(
            "{:<26} {:<18} {:>7} {:<16} {:>10} {:>9} {:>9}",
            u.unit,
            format!("{} ({})", u.active, u.sub),
            u.pid.map(|p| p.to_string()).unwrap_or_else(dash),
            u.listen.clone().unwrap_or_else(dash),
            u.memory_bytes.map(human_bytes).unwrap_or_else(dash),
            u.cpu_seconds
                .map(|c| format!("{c:.1}s"))
                .unwrap_or_else(dash),
            u.uptime_seconds.map(human_duration).unwrap_or_else(dash),
        );
    }
    println!();
}

fn print_daemon(s: &StatusResponse, base: &str) {
    println!(
        "nordiq-inference {} at {base} — up {} s",
        s.version, s.uptime_seconds
    );
    println!("  model        {}", s.model_id);
    println!(
        "  servers      {} ({} warm, {} forecast)",
        s.servers, s.warm_servers, s.forecast_servers
    );
    println!(
        "  levels       healthy {} · watch {} · warning {} · critical {}",
        s.levels.healthy, s.levels.watch, s.levels.warning, s.levels.critical
    );
    println!(
        "  samples      {} accepted, {} records rejected, {} late",
        s.samples_total, s.rejected_records_total, s.late_samples_total
    );
    match &s.last_refresh {
        Some(r) => println!(
            "  last refresh {} ({} servers in {:.1} ms, {})",
            r.at, r.servers, r.duration_ms, r.trigger
        ),
        None => println!("  last refresh none yet"),
    }
    let d = &s.drift;
    if d.drifting {
        let reasons: Vec<String> = d.reasons.iter().map(|r| r.to_string()).collect();
        println!("  drift        DRIFTING: {}", reasons.join("; "));
    } else if d.checked_at_ms.is_some() {
        println!("  drift        none at the latest check");
    }
    if let Some(c) = &s.cluster {
        print_cluster(c);
    }
    let warming: Vec<_> = s
        .warmup
        .iter()
        .filter(|w| w.warmup_remaining_steps > 0)
        .collect();
    if !warming.is_empty() {
        println!("  warming up   {} servers, e.g.:", warming.len());
        for w in warming.iter().take(5) {
            println!(
                "    {:<24} {} steps, {} to go",
                w.server, w.history_steps, w.warmup_remaining_steps
            );
        }
    }
}

pub fn run(client: &ApiClient, json: bool) -> anyhow::Result<i32> {
    let units = units();
    let failed = units
        .iter()
        .flatten()
        .filter(|u| u.active == "failed")
        .map(|u| u.unit.clone())
        .collect::<Vec<_>>();
    let daemon = runtime()?.block_on(get_ok(client, "/status"));
    if json {
        let daemon_json = match &daemon {
            Ok(a) => serde_json::from_slice::<serde_json::Value>(&a.body).unwrap_or_default(),
            Err(e) => serde_json::json!({ "error": format!("{e:#}") }),
        };
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "units": units,
                "failed_units": failed,
                "daemon": daemon_json,
            }))?
        );
    } else {
        match &units {
            Some(u) => print_units(u),
            None => println!("(systemd is not running here: no units to show)\n"),
        }
        if let Ok(a) = &daemon {
            let s: StatusResponse = a.json().context("reading /status")?;
            print_daemon(&s, client.base());
        }
        if !failed.is_empty() {
            println!(
                "\nfailed units: {} (see journalctl -u …)",
                failed.join(", ")
            );
        }
    }
    match daemon {
        Err(e) => {
            if !json {
                eprintln!("nordiqctl: {e:#}");
            }
            Ok(exit::UNAVAILABLE)
        }
        Ok(_) if !failed.is_empty() => Ok(UNIT_FAILED),
        Ok(_) => Ok(exit::OK),
    }
}

/// The cluster as this node sees it: nodes, who holds which shards, and the lag.
fn print_cluster(c: &nordiq_core::api::ClusterStatus) {
    if !c.ready {
        println!("  cluster      node {} — NOT CONNECTED: stream and buckets not set up yet (is NATS up?)", c.node);
        return;
    }
    println!(
        "  cluster      node {} · {} nodes ({}) · holds {} shards · fleet view {} servers",
        c.node,
        c.nodes.len(),
        c.nodes.join(", "),
        c.owned_shards.len(),
        c.fleet_servers
    );
    let mut by_node: std::collections::BTreeMap<&str, (Vec<u32>, u64)> = Default::default();
    for shard in &c.shards {
        let owner = shard.owner.as_deref().unwrap_or("(nobody)");
        let entry = by_node.entry(owner).or_default();
        entry.0.push(shard.shard);
        entry.1 += shard.pending.unwrap_or(0);
    }
    for (node, (shards, pending)) in by_node {
        let list: Vec<String> = shards.iter().map(u32::to_string).collect();
        println!(
            "    {node:<16} shards {:<40} lag {pending} messages",
            list.join(",")
        );
    }
    println!(
        "  stream       {} published ({} repeats), {} failed, {} consumed here; {} shards taken, {} given up",
        c.published_total,
        c.published_duplicates_total,
        c.publish_failures_total,
        c.consumed_total,
        c.claims_total,
        c.releases_total
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_systemctl_show() {
        let text = "Id=nordiq-inference.service\nLoadState=loaded\nActiveState=active\nSubState=running\nMainPID=4242\nMemoryCurrent=73400320\nCPUUsageNSec=12500000000\nActiveEnterTimestampMonotonic=100000000\nListen=\nResult=success\n";
        let u = unit_status("nordiq-inference.service", &parse_show(text), 160.0);
        assert_eq!(u.active, "active");
        assert_eq!(u.sub, "running");
        assert_eq!(u.pid, Some(4242));
        assert_eq!(u.memory_bytes, Some(73_400_320));
        assert_eq!(u.cpu_seconds, Some(12.5));
        assert_eq!(u.uptime_seconds, Some(60.0));
        assert_eq!(u.listen, None);
        let socket = "Id=nordiq-inference.socket\nActiveState=active\nSubState=listening\nMainPID=0\nMemoryCurrent=[not set]\nCPUUsageNSec=18446744073709551615\nListen=127.0.0.1:8000 (Stream)\n";
        let s = unit_status("nordiq-inference.socket", &parse_show(socket), 10.0);
        assert_eq!(s.pid, None);
        assert_eq!(s.memory_bytes, None);
        assert_eq!(s.cpu_seconds, None);
        assert_eq!(s.listen.as_deref(), Some("127.0.0.1:8000"));
        let failed = "ActiveState=failed\nSubState=failed\nActiveEnterTimestampMonotonic=5\n";
        let f = unit_status("nordiq-retrain.service", &parse_show(failed), 10.0);
        assert_eq!(f.active, "failed");
        assert_eq!(f.uptime_seconds, None, "no uptime unless active");
        assert_eq!(human_bytes(73_400_320), "70.0 MiB");
        assert_eq!(human_duration(93_784.0), "1d 2h");
    }
}
