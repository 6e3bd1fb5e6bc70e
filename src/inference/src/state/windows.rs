//! All servers' windows, sharded behind short-held mutexes so concurrent ingest batches
//! rarely contend, with an exact cap on the number of servers.

use nordiq_core::api::WarmupEntry;
use nordiq_core::ingest::Sample;
use nordiq_core::timefmt::format_ms;
use nordiq_core::window::{ServerWindow, WindowShape, WindowSnapshot};
use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

const SHARDS: usize = 32;

type Shard = HashMap<String, ServerWindow>;

pub struct WindowStore {
    shape: WindowShape,
    shards: Vec<Mutex<Shard>>,
    /// Servers held plus slots reserved by batches in flight.
    servers: AtomicUsize,
    max_servers: usize,
}

/// Slots for new servers held by one batch between validation and apply.
pub struct Reservation {
    names: HashSet<String>,
}

impl WindowStore {
    pub fn new(shape: WindowShape, max_servers: usize) -> Self {
        WindowStore {
            shape,
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            servers: AtomicUsize::new(0),
            max_servers,
        }
    }

    fn shard_of(server: &str) -> usize {
        let mut h = DefaultHasher::new();
        server.hash(&mut h);
        (h.finish() as usize) % SHARDS
    }

    fn lock(&self, i: usize) -> MutexGuard<'_, Shard> {
        // A panic while holding a shard leaves plain data behind: keep serving it.
        self.shards[i].lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Drops every server `gone` says (cluster mode: the servers of a shard given to
    /// another node); returns how many were dropped.
    pub fn remove_where(&self, gone: impl Fn(&str) -> bool) -> usize {
        let mut removed = 0;
        for i in 0..SHARDS {
            let mut shard = self.lock(i);
            let before = shard.len();
            shard.retain(|name, _| !gone(name));
            removed += before - shard.len();
        }
        self.servers.fetch_sub(removed, Ordering::AcqRel);
        removed
    }

    /// Reserves a slot for every server in `names` not held yet. Returns the reservation
    /// and the names refused because `window.max_servers` is reached.
    pub fn reserve<'a>(
        &self,
        names: impl Iterator<Item = &'a str>,
    ) -> (Reservation, HashSet<String>) {
        let mut reserved = HashSet::new();
        let mut refused = HashSet::new();
        let unique: HashSet<&str> = names.collect();
        for name in unique {
            if self.lock(Self::shard_of(name)).contains_key(name) {
                continue;
            }
            let took = self
                .servers
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                    (n < self.max_servers).then_some(n + 1)
                })
                .is_ok();
            if took {
                reserved.insert(name.to_string());
            } else {
                refused.insert(name.to_string());
            }
        }
        (Reservation { names: reserved }, refused)
    }

    /// Gives back a reservation's slots (the batch was refused).
    pub fn release(&self, reservation: Reservation) {
        self.servers
            .fetch_sub(reservation.names.len(), Ordering::AcqRel);
    }

    /// Applies samples (in order per server); new servers take their reserved slots.
    pub fn apply<'a>(&self, samples: impl Iterator<Item = &'a Sample>, reservation: Reservation) {
        let mut by_shard: Vec<Vec<&Sample>> = vec![Vec::new(); SHARDS];
        for s in samples {
            by_shard[Self::shard_of(&s.server)].push(s);
        }
        let mut unused = reservation.names;
        for (i, part) in by_shard.into_iter().enumerate() {
            if part.is_empty() {
                continue;
            }
            let mut shard = self.lock(i);
            for sample in part {
                let window = match shard.get_mut(&sample.server) {
                    Some(w) => w,
                    None => {
                        if !unused.remove(&sample.server) {
                            // Not reserved: the caller skipped `reserve`; refuse quietly
                            // rather than break the cap.
                            continue;
                        }
                        shard.entry(sample.server.clone()).or_insert_with(|| {
                            ServerWindow::new(&self.shape, sample.profile.clone())
                        })
                    }
                };
                window.push(&self.shape, sample);
            }
        }
        // Reserved names another batch created first, or whose samples never came.
        self.servers.fetch_sub(unused.len(), Ordering::AcqRel);
    }

    /// Closes steps the clock has passed and copies every server with at least
    /// `min_history` closed steps, sorted by name.
    pub fn snapshots(&self, now_step: i64, min_history: usize) -> Vec<WindowSnapshot> {
        let mut out = self.sample_snapshots(now_step, min_history, usize::MAX);
        out.sort_by(|a, b| a.server.cmp(&b.server));
        out
    }

    /// Like [`snapshots`](Self::snapshots), but at most `limit` of them, in no particular
    /// order (a model's smoke test needs a few real windows, not all of them).
    pub fn sample_snapshots(
        &self,
        now_step: i64,
        min_history: usize,
        limit: usize,
    ) -> Vec<WindowSnapshot> {
        let mut out = Vec::new();
        for i in 0..SHARDS {
            let mut shard = self.lock(i);
            for (name, window) in shard.iter_mut() {
                if out.len() >= limit {
                    return out;
                }
                if window.observed_steps() >= min_history {
                    out.push(window.snapshot_at(&self.shape, name, now_step));
                }
            }
        }
        out
    }

    /// One server's window (steps the clock has passed closed), if the server is known.
    pub fn snapshot_of(&self, server: &str, now_step: i64) -> Option<WindowSnapshot> {
        let mut shard = self.lock(Self::shard_of(server));
        let window = shard.get_mut(server)?;
        Some(window.snapshot_at(&self.shape, server, now_step))
    }

    /// How many servers have at least `min_history` closed steps.
    pub fn count_with_history(&self, min_history: usize) -> usize {
        (0..SHARDS)
            .map(|i| {
                self.lock(i)
                    .values()
                    .filter(|w| w.observed_steps() >= min_history)
                    .count()
            })
            .sum()
    }

    /// Per-server warm-up, sorted by name, and the late-sample total.
    pub fn warmup(&self) -> (Vec<WarmupEntry>, u64) {
        let mut entries = Vec::new();
        let mut late = 0;
        for i in 0..SHARDS {
            for (name, w) in self.lock(i).iter() {
                late += w.late_samples;
                entries.push(WarmupEntry {
                    server: name.clone(),
                    profile: w.profile.clone(),
                    history_steps: w.observed_steps(),
                    warmup_remaining_steps: w.warmup_remaining(&self.shape),
                    last_sample: format_ms(w.latest_ts()),
                });
            }
        }
        entries.sort_by(|a, b| a.server.cmp(&b.server));
        (entries, late)
    }

    pub fn server_count(&self) -> usize {
        (0..SHARDS).map(|i| self.lock(i).len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nordiq_core::config::Aggregate;

    fn store(max: usize) -> WindowStore {
        WindowStore::new(
            WindowShape {
                step_ms: 1000,
                aggregates: vec![Aggregate::Mean],
                raw_capacity: 4,
                history_steps: 8,
                encoder_steps: 4,
            },
            max,
        )
    }

    fn sample(server: &str, ts: i64) -> Sample {
        Sample {
            timestamp_ms: ts,
            server: server.into(),
            profile: "generic".into(),
            values: vec![1.0],
        }
    }

    #[test]
    fn cap_is_exact_and_released_slots_return() {
        let s = store(2);
        let (r, refused) = s.reserve(["a", "b", "a"].into_iter());
        assert!(refused.is_empty());
        let (r2, refused) = s.reserve(["c"].into_iter());
        assert!(refused.contains("c"));
        s.release(r2);
        let samples = [sample("a", 0), sample("b", 0)];
        s.apply(samples.iter(), r);
        assert_eq!(s.server_count(), 2);
        let (r, refused) = s.reserve(["a", "d"].into_iter());
        assert!(refused.contains("d"));
        assert!(r.names.is_empty());
        s.release(r);
        let s = store(2);
        let (r, _) = s.reserve(["x", "y"].into_iter());
        s.release(r);
        let (r, refused) = s.reserve(["p", "q"].into_iter());
        assert!(refused.is_empty());
        s.apply([sample("p", 0)].iter(), r);
        assert_eq!(
            s.servers.load(Ordering::Acquire),
            1,
            "unused slot for q came back"
        );
    }

    #[test]
    fn snapshots_close_steps_and_filter_by_history() {
        let s = store(10);
        let (r, _) = s.reserve(["a", "b"].into_iter());
        let samples: Vec<Sample> = (0..5)
            .map(|t| sample("a", t * 1000))
            .chain([sample("b", 0)])
            .collect();
        s.apply(samples.iter(), r);
        let snaps = s.snapshots(5, 3);
        assert_eq!(snaps.len(), 1, "b has one observed step, padded with gaps");
        assert_eq!(snaps[0].len, 5, "the open step 4 was closed by the clock");
        assert_eq!(s.count_with_history(1), 2);
        assert_eq!(s.count_with_history(2), 1);
        let (warm, late) = s.warmup();
        assert_eq!(warm[0].warmup_remaining_steps, 0);
        assert_eq!(warm[1].server, "b");
        assert_eq!(late, 0);
    }
}
