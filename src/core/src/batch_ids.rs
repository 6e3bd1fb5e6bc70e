//! The batch ids (`X-NordIQ-Batch`) ingest has taken, so that a feeder retrying a batch
//! whose answer it never saw does not apply it twice. Bounded: the oldest ids are
//! forgotten first. The set lives in memory; the buffer keeps the ids in its log (and, once
//! rolled, in `buffer/wal/batch-ids`), and a restart seeds the set from there.

use std::collections::{HashSet, VecDeque};

/// How many batch ids are remembered, in memory and across restarts.
pub const REMEMBERED: usize = 100_000;

#[derive(Debug)]
pub struct RecentBatchIds {
    capacity: usize,
    seen: HashSet<String>,
    order: VecDeque<String>,
}

impl RecentBatchIds {
    pub fn new(capacity: usize) -> Self {
        RecentBatchIds {
            capacity: capacity.max(1),
            seen: HashSet::new(),
            order: VecDeque::new(),
        }
    }

    /// Claims `id`: false when it was claimed before (a repeat). A claim is made before
    /// the batch is applied, so two concurrent copies cannot both go through.
    pub fn claim(&mut self, id: &str) -> bool {
        if self.seen.contains(id) {
            return false;
        }
        if self.order.len() == self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.seen.remove(&old);
            }
        }
        self.seen.insert(id.to_string());
        self.order.push_back(id.to_string());
        true
    }

    /// Gives a claim back: the batch was not applied (so its retry must be).
    pub fn release(&mut self, id: &str) {
        if self.seen.remove(id) {
            self.order.retain(|o| o != id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::RecentBatchIds;

    #[test]
    fn repeats_are_caught_until_forgotten_and_released_ids_can_come_again() {
        let mut ids = RecentBatchIds::new(3);
        assert!(ids.claim("a"));
        assert!(!ids.claim("a"));
        assert!(ids.claim("b") && ids.claim("c"));
        assert!(ids.claim("d")); // forgets "a"
        assert!(ids.claim("a"));
        assert!(!ids.claim("d"));
        ids.release("d");
        assert!(ids.claim("d"));
    }
}
