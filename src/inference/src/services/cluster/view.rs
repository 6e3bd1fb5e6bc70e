//! The fleet view in a cluster: after each refresh a node publishes, per shard it holds,
//! that shard's part of `/predictions/current` and `/alerts/active` to the views bucket;
//! every node watches the bucket and merges the parts (`nordiq_core::cluster::merge_views`)
//! into the answers it serves, each part with its age.

use crate::state::cluster::{ClusterState, FleetJson};
use crate::state::App;
use futures_util::StreamExt;
use nordiq_core::assess::{self, Assessed};
use nordiq_core::cluster::{merge_views, shard_of, ShardView};
use nordiq_core::timefmt::now_ms;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Recent alert events kept in the merged `/alerts/active` (as on a single node).
const RECENT_EVENTS: usize = 100;
/// A views watch that delivered nothing for this long is made again.
const STALE_WATCH: Duration = Duration::from_secs(90);

fn view_key(shard: u32) -> String {
    format!("shard.{shard}")
}

/// Publishes this node's part of the view, one entry per shard it holds (an empty part
/// too, so a shard whose servers went quiet does not keep showing them).
pub async fn publish(app: &Arc<App>, cluster: &ClusterState) {
    let Some(handles) = cluster.handles.load_full() else {
        return;
    };
    let owned = cluster.owned_shards();
    if owned.is_empty() {
        return;
    }
    let set = app.forecasts.load_full();
    let config = app.config.load_full();
    let shards = cluster.config.shards;
    let mut parts: BTreeMap<u32, Vec<Assessed>> = owned.iter().map(|s| (*s, Vec::new())).collect();
    for a in &set.assessed {
        if let Some(part) = parts.get_mut(&shard_of(&a.server, shards)) {
            part.push(a.clone());
        }
    }
    let events = app
        .alerts
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .events(0, RECENT_EVENTS);
    for (shard, assessed) in parts {
        let shard_events = events
            .iter()
            .filter(|e| shard_of(&e.server, shards) == shard)
            .cloned()
            .collect();
        let view = ShardView {
            shard,
            node: cluster.node.clone(),
            generated_at_ms: set.generated_at_ms,
            predictions: assess::predictions_current(
                &config,
                &set.model_id,
                set.generated_at_ms,
                &assessed,
            ),
            alerts: assess::active_alerts(
                &config,
                &set.model_id,
                set.generated_at_ms,
                &assessed,
                shard_events,
            ),
        };
        let Ok(bytes) = serde_json::to_vec(&view) else {
            continue;
        };
        if let Err(e) = handles.views.put(view_key(shard), bytes.into()).await {
            tracing::warn!(shard, error = %e, "cannot publish the shard's view");
        }
    }
}

/// Watches the views bucket and keeps the merged fleet view current until `shutdown`.
pub async fn merge_loop(app: Arc<App>, cluster: Arc<ClusterState>, shutdown: CancellationToken) {
    let Some(handles) = cluster.handles.load_full() else {
        return;
    };
    let mut latest: HashMap<String, ShardView> = HashMap::new();
    'watch: loop {
        let mut watch = match handles.views.watch_all().await {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch the fleet views; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(2)) => continue 'watch,
                    _ = shutdown.cancelled() => return,
                }
            }
        };
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut heard = std::time::Instant::now();
        loop {
            // Every holder publishes at each refresh: a watch silent this long lost its
            // server (a reconnect) and is made again, which delivers every key anew.
            if heard.elapsed() > STALE_WATCH {
                tracing::debug!("the fleet view watch went quiet; watching again");
                continue 'watch;
            }
            tokio::select! {
                entry = watch.next() => match entry {
                    Some(Ok(entry)) => {
                        heard = std::time::Instant::now();
                        match serde_json::from_slice::<ShardView>(&entry.value) {
                            Ok(view) if view.shard < cluster.config.shards => {
                                latest.insert(entry.key, view);
                            }
                            _ => {
                                latest.remove(&entry.key);
                            }
                        }
                    }
                    _ => continue 'watch,
                },
                _ = tick.tick() => merge(&app, &cluster, &latest),
                _ = shutdown.cancelled() => return,
            }
        }
    }
}

fn merge(app: &App, cluster: &ClusterState, latest: &HashMap<String, ShardView>) {
    let config = app.config.load_full();
    let views: Vec<ShardView> = latest.values().cloned().collect();
    let fleet = merge_views(&config, &views, now_ms(), RECENT_EVENTS);
    cluster.fleet.store(Some(Arc::new(FleetJson {
        current: serde_json::to_vec(&fleet.predictions)
            .unwrap_or_default()
            .into(),
        alerts: serde_json::to_vec(&fleet.alerts).unwrap_or_default().into(),
        servers: fleet.predictions.servers.len(),
        levels: fleet.predictions.fleet.levels.clone(),
        shards: fleet.predictions.shards.clone(),
    })));
}
