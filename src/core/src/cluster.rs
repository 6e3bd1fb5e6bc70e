//! Cluster mode's pure parts: which shard a server belongs to, which node should own each
//! shard, what a shard lease says, and how the per-shard views of the fleet are merged
//! into one answer. The NATS side lives in `nordiq-inference` (`services::cluster`).

use crate::alerts::AlertEvent;
use crate::api::{ActiveAlerts, FleetSummary, LevelCounts, PredictionsCurrent, ShardAge};
use crate::config::Config;
use crate::timefmt::format_ms;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// FNV-1a, 64 bit: stable across builds, platforms and releases (a server's shard must
/// never move because the binary changed).
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The shard of `server` among `shards`.
pub fn shard_of(server: &str, shards: u32) -> u32 {
    (fnv1a(server.as_bytes()) % u64::from(shards.max(1))) as u32
}

/// A well-mixed weight of (node, shard) for rendezvous hashing.
fn weight(node: &str, shard: u32) -> u64 {
    let mut h = fnv1a(node.as_bytes()) ^ u64::from(shard).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    // splitmix64's finaliser: FNV alone clusters on short, similar names.
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// Which of `nodes` should own each of `shards` shards: rendezvous hashing with a load
/// bound, so every node gets ⌊shards / nodes⌋ or one more and a node joining or leaving
/// moves few shards. Deterministic in the set of nodes (their order does not matter); `None`
/// per shard when there is no node.
pub fn assign(shards: u32, nodes: &[String]) -> Vec<Option<String>> {
    let mut nodes: Vec<&String> = nodes.iter().collect();
    nodes.sort();
    nodes.dedup();
    if nodes.is_empty() {
        return vec![None; shards as usize];
    }
    // Every node gets ⌊shards / nodes⌋, and `extra` of them one more: capacity is exactly
    // `shards`, so each shard finds a node.
    let floor = shards as usize / nodes.len();
    let mut extra = shards as usize % nodes.len();
    let mut load = vec![0usize; nodes.len()];
    (0..shards)
        .map(|shard| {
            let best = (0..nodes.len())
                .filter(|&i| load[i] < floor || (load[i] == floor && extra > 0))
                .max_by_key(|&i| (weight(nodes[i], shard), std::cmp::Reverse(i)))?;
            if load[best] == floor {
                extra -= 1;
            }
            load[best] += 1;
            Some(nodes[best].clone())
        })
        .collect()
}

/// The value of a shard's lease key: who holds it, and from which stream sequence it
/// consumes (its consumer's first unacknowledged message when it took the shard).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub node: String,
    pub from_seq: u64,
}

/// Whether node `me`, restarting after a crash, keeps the stream message `seq` of a shard
/// that its log holds, given the shard's claims in the order they were made. The claim
/// that covers `seq` is the latest one starting at or before it: if another node made
/// it, that node consumed `seq` too (this node had written it but not acknowledged it,
/// since acknowledgements go in order and a claim starts after the last one), so the
/// copy here goes. No covering claim: older than every claim kept, so kept.
pub fn keeps_logged(me: &str, seq: u64, claims: &[Lease]) -> bool {
    claims
        .iter()
        .rev()
        .find(|c| c.from_seq <= seq)
        .is_none_or(|c| c.node == me)
}

/// The cluster's training lease: the one node running a job, and which.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrainingLease {
    pub node: String,
    pub job_id: String,
}

/// A training job's call for every node's history: the last `days` of each buffer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportRequest {
    pub job_id: String,
    pub node: String,
    pub days: u32,
}

/// A node's answer to an [`ExportRequest`]: its export is object `object` (absent with
/// `error` when it had none to give).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportDone {
    pub node: String,
    pub object: Option<String>,
    pub rows: u64,
    pub error: Option<String>,
}

/// The model the whole cluster serves: its id, the node that trained it, its files (in the
/// model object store as `<id>/<file>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelAnnouncement {
    pub id: String,
    pub node: String,
    pub files: Vec<String>,
}

/// One shard's part of the fleet view, as its owner published it after a refresh.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShardView {
    pub shard: u32,
    pub node: String,
    pub generated_at_ms: i64,
    pub predictions: PredictionsCurrent,
    pub alerts: ActiveAlerts,
}

/// The whole fleet from the shards' views (each with its parts' ages in `shards`).
#[derive(Debug, Clone)]
pub struct FleetView {
    pub predictions: PredictionsCurrent,
    pub alerts: ActiveAlerts,
}

/// Merges the shards' views into one: servers and outlooks united, counts summed, the
/// fleet's top risks, alerts and anomalies ranked across shards, the newest events kept.
/// `generated_at` is the oldest part's (the view is no fresher than that); `model_id`
/// is the newest part's.
pub fn merge_views(
    config: &Config,
    views: &[ShardView],
    now_ms: i64,
    max_events: usize,
) -> FleetView {
    let oldest = views
        .iter()
        .map(|v| v.generated_at_ms)
        .min()
        .unwrap_or(now_ms);
    let model_id = views
        .iter()
        .max_by_key(|v| v.generated_at_ms)
        .map(|v| v.predictions.model_id.clone())
        .unwrap_or_default();
    let mut servers = BTreeMap::new();
    let mut outlooks = BTreeMap::new();
    let mut levels = LevelCounts::default();
    let mut risk_sum = 0.0;
    let mut top = Vec::new();
    let mut alerts = Vec::new();
    let mut anomalies = Vec::new();
    let mut events: Vec<AlertEvent> = Vec::new();
    let mut alert_levels = LevelCounts::default();
    for v in views {
        let p = &v.predictions;
        servers.extend(p.servers.clone());
        outlooks.extend(p.environment.servers.clone());
        add_levels(&mut levels, &p.fleet.levels);
        risk_sum += p.fleet.mean_risk * p.fleet.servers as f64;
        top.extend(p.fleet.top_risks.iter().cloned());
        alerts.extend(v.alerts.alerts.iter().cloned());
        anomalies.extend(v.alerts.anomalies.iter().cloned());
        events.extend(v.alerts.recent_events.iter().cloned());
        add_levels(&mut alert_levels, &v.alerts.levels);
    }
    let count = servers.len();
    top.sort_by(|a, b| {
        b.risk
            .total_cmp(&a.risk)
            .then_with(|| a.server.cmp(&b.server))
    });
    top.truncate(config.risk.top_n);
    alerts.sort_by(|a, b| {
        b.risk
            .total_cmp(&a.risk)
            .then_with(|| a.server.cmp(&b.server))
    });
    anomalies.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a.server.cmp(&b.server))
    });
    // Each node numbers its own events: order by time across nodes.
    events.sort_by(|a, b| {
        a.timestamp
            .cmp(&b.timestamp)
            .then_with(|| a.server.cmp(&b.server))
    });
    let skip = events.len().saturating_sub(max_events);
    events.drain(..skip);
    let mut shards: Vec<ShardAge> = views
        .iter()
        .map(|v| ShardAge {
            shard: v.shard,
            node: v.node.clone(),
            generated_at: format_ms(v.generated_at_ms),
            age_seconds: ((now_ms - v.generated_at_ms).max(0) as f64 / 1000.0 * 10.0).round()
                / 10.0,
            servers: v.predictions.servers.len(),
        })
        .collect();
    shards.sort_by_key(|s| s.shard);
    let generated_at = format_ms(oldest);
    let mean = if count == 0 {
        0.0
    } else {
        risk_sum / count as f64
    };
    let predictions = PredictionsCurrent {
        model_id: model_id.clone(),
        generated_at: generated_at.clone(),
        step_seconds: config.model.step_seconds,
        horizons_minutes: config.forecast.summary_horizons_minutes.clone(),
        quantiles: config.model.quantiles.clone(),
        fleet: FleetSummary {
            servers: count,
            levels,
            mean_risk: (mean * 10.0).round() / 10.0,
            top_risks: top,
        },
        servers,
        environment: crate::outlook::environment(config, outlooks),
        shards: shards.clone(),
    };
    let alerts = ActiveAlerts {
        model_id,
        generated_at,
        levels: alert_levels,
        alerts,
        anomalies,
        recent_events: events,
        shards,
    };
    FleetView {
        predictions,
        alerts,
    }
}

fn add_levels(to: &mut LevelCounts, from: &LevelCounts) {
    to.healthy += from.healthy;
    to.watch += from.watch;
    to.warning += from.warning;
    to.critical += from.critical;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("node-{i}")).collect()
    }

    #[test]
    fn a_servers_shard_is_stable_and_spread() {
        // Pinned values: a change here would move every server to another shard.
        assert_eq!(shard_of("ppweb001", 16), shard_of("ppweb001", 16));
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        let mut counts = [0usize; 16];
        for i in 0..3000 {
            counts[shard_of(&format!("srv{i:05}"), 16) as usize] += 1;
        }
        let (min, max) = (*counts.iter().min().unwrap(), *counts.iter().max().unwrap());
        assert!(min > 120 && max < 260, "uneven shards: {counts:?}");
    }

    #[test]
    fn shard_views_merge_into_one_fleet() {
        use crate::assess::{active_alerts, predictions_current};
        use crate::risk::Level;
        use crate::test_support::assessed;
        let config = Config::default();
        let view = |shard, node: &str, at, servers: &[(&str, Level, f64)]| {
            let a: Vec<_> = servers
                .iter()
                .map(|(s, level, risk)| {
                    let mut a = assessed(s, *level, &config);
                    a.risk = *risk;
                    a
                })
                .collect();
            ShardView {
                shard,
                node: node.into(),
                generated_at_ms: at,
                predictions: predictions_current(&config, &format!("m-{node}"), at, &a),
                alerts: active_alerts(&config, &format!("m-{node}"), at, &a, Vec::new()),
            }
        };
        let views = [
            view(1, "n2", 10_000, &[("b", Level::Critical, 90.0)]),
            view(
                0,
                "n1",
                4_000,
                &[("a", Level::Healthy, 10.0), ("c", Level::Warning, 60.0)],
            ),
        ];
        let fleet = merge_views(&config, &views, 14_000, 100);
        let p = &fleet.predictions;
        assert_eq!(p.servers.keys().collect::<Vec<_>>(), ["a", "b", "c"]);
        assert_eq!(p.fleet.servers, 3);
        assert_eq!(
            (
                p.fleet.levels.healthy,
                p.fleet.levels.warning,
                p.fleet.levels.critical
            ),
            (1, 1, 1)
        );
        assert_eq!(p.fleet.mean_risk, 53.3);
        assert_eq!(p.fleet.top_risks[0].server, "b", "ranked across shards");
        assert_eq!(p.environment.servers.len(), 3);
        assert_eq!(p.generated_at, format_ms(4_000), "the oldest part");
        assert_eq!(p.model_id, "m-n2", "the newest part's model");
        let ages: Vec<_> = p
            .shards
            .iter()
            .map(|s| (s.shard, s.node.as_str(), s.age_seconds, s.servers))
            .collect();
        assert_eq!(ages, [(0, "n1", 10.0, 2), (1, "n2", 4.0, 1)]);
        let servers: Vec<_> = fleet
            .alerts
            .alerts
            .iter()
            .map(|a| a.server.as_str())
            .collect();
        assert_eq!(servers, ["b", "c"], "watch and above, highest risk first");
        assert_eq!(fleet.alerts.shards, p.shards);
        let empty = merge_views(&config, &[], 0, 100);
        assert_eq!(empty.predictions.fleet.servers, 0);
    }

    #[test]
    fn a_crashed_node_keeps_only_what_nobody_took_over() {
        let claim = |node: &str, from_seq| Lease {
            node: node.into(),
            from_seq,
        };
        // a held the shard from 1; b took it over at 40 (a had acknowledged up to 39).
        let claims = [claim("a", 1), claim("b", 40)];
        assert!(keeps_logged("a", 39, &claims));
        assert!(!keeps_logged("a", 40, &claims), "b consumed 40 as well");
        assert!(!keeps_logged("a", 41, &claims));
        // a took it back at 60: what a wrote from 60 on is a's alone.
        let claims = [claim("a", 1), claim("b", 40), claim("a", 60)];
        assert!(keeps_logged("a", 60, &claims));
        assert!(!keeps_logged("a", 45, &claims));
        // Two claims from the same floor: the later one consumed it.
        assert!(!keeps_logged("a", 40, &[claim("a", 40), claim("c", 40)]));
        assert!(
            keeps_logged("a", 5, &[claim("b", 10)]),
            "older than every claim"
        );
        assert!(keeps_logged("a", 5, &[]));
    }

    #[test]
    fn assignment_is_balanced_deterministic_and_moves_little() {
        let three = assign(16, &names(3));
        let mut reversed = names(3);
        reversed.reverse();
        assert_eq!(three, assign(16, &reversed), "order of nodes matters");
        for node in names(3) {
            let n = three.iter().filter(|o| o.as_deref() == Some(&node)).count();
            assert!((5..=6).contains(&n), "{node} has {n} of 16");
        }
        // A node leaving: only its shards move.
        let two = assign(16, &names(2));
        let moved = three
            .iter()
            .zip(&two)
            .filter(|(a, b)| a.as_deref() != Some("node-3") && a != b)
            .count();
        assert!(moved <= 3, "{moved} shards of the staying nodes moved");
        assert!(two.iter().all(|o| o.is_some()));
        assert_eq!(assign(4, &[]), vec![None; 4]);
    }
}
