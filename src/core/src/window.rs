//! Per-server rolling windows: a ring of raw samples at the feed's own rate, and a ring of
//! values aggregated to the model step (mean / max / last per catalog entry).
//!
//! Steps are numbered `floor(timestamp / step)`. The newest step stays open while samples
//! arrive for it; a sample for a later step closes it (skipped steps become gaps, NaN). A
//! sample for a step that is already closed is counted as late and kept in the raw ring
//! only. Forecasting reads a window as of the current step with
//! [`ServerWindow::snapshot_at`], which closes nothing, so history sent in several requests
//! is never made late by the clock.

use crate::config::{Aggregate, Config};
use crate::ingest::Sample;

/// Running aggregate of one metric inside the open step.
#[derive(Debug, Clone, Copy)]
struct Accumulator {
    sum: f64,
    count: u32,
    max: f32,
    last: f32,
    last_ts: i64,
}

impl Accumulator {
    const EMPTY: Accumulator = Accumulator {
        sum: 0.0,
        count: 0,
        max: f32::NEG_INFINITY,
        last: f32::NAN,
        last_ts: i64::MIN,
    };

    fn add(&mut self, value: f32, ts: i64) {
        self.sum += value as f64;
        self.count += 1;
        self.max = self.max.max(value);
        if ts >= self.last_ts {
            self.last = value;
            self.last_ts = ts;
        }
    }

    fn value(&self, aggregate: Aggregate) -> f32 {
        if self.count == 0 {
            return f32::NAN;
        }
        match aggregate {
            Aggregate::Mean => (self.sum / self.count as f64) as f32,
            Aggregate::Max => self.max,
            Aggregate::Last => self.last,
        }
    }
}

/// A fixed-capacity ring of rows of `width` f32 values.
#[derive(Debug, Clone)]
struct RowRing {
    width: usize,
    capacity: usize,
    data: Vec<f32>,
    /// Index of the oldest row.
    head: usize,
    len: usize,
    /// Rows holding at least one value (not gap rows).
    observed: usize,
}

impl RowRing {
    fn new(width: usize, capacity: usize) -> Self {
        RowRing {
            width,
            capacity,
            data: Vec::new(),
            head: 0,
            len: 0,
            observed: 0,
        }
    }

    fn has_value(row: &[f32]) -> bool {
        row.iter().any(|v| !v.is_nan())
    }

    /// Appends a row, dropping the oldest when full. Memory grows with use up to capacity.
    fn push(&mut self, row: impl Iterator<Item = f32>) {
        let slot = if self.len < self.capacity {
            let slot = (self.head + self.len) % self.capacity;
            if self.data.len() < (slot + 1) * self.width {
                self.data.resize((slot + 1) * self.width, f32::NAN);
            }
            self.len += 1;
            slot
        } else {
            let slot = self.head;
            self.head = (self.head + 1) % self.capacity;
            if Self::has_value(&self.data[slot * self.width..(slot + 1) * self.width]) {
                self.observed -= 1;
            }
            slot
        };
        let dst = &mut self.data[slot * self.width..(slot + 1) * self.width];
        for (d, v) in dst.iter_mut().zip(row) {
            *d = v;
        }
        if Self::has_value(dst) {
            self.observed += 1;
        }
    }

    /// Row `i`, 0 = oldest.
    fn row(&self, i: usize) -> &[f32] {
        let slot = (self.head + i) % self.capacity;
        &self.data[slot * self.width..(slot + 1) * self.width]
    }

    fn clear(&mut self) {
        self.head = 0;
        self.len = 0;
        self.observed = 0;
    }
}

/// The sizes a window is built with (from the config, fixed for the daemon's life).
#[derive(Debug, Clone)]
pub struct WindowShape {
    pub step_ms: i64,
    pub aggregates: Vec<Aggregate>,
    pub raw_capacity: usize,
    pub history_steps: usize,
    pub encoder_steps: usize,
}

impl WindowShape {
    pub fn from_config(config: &Config) -> Self {
        WindowShape {
            step_ms: config.model.step_seconds as i64 * 1000,
            aggregates: config.metrics.iter().map(|m| m.aggregate).collect(),
            raw_capacity: config.window.raw_capacity,
            history_steps: config.history_steps(),
            encoder_steps: config.model.encoder_steps,
        }
    }

    fn step_of(&self, ts_ms: i64) -> i64 {
        ts_ms.div_euclid(self.step_ms)
    }
}

/// One server's window.
#[derive(Debug, Clone)]
pub struct ServerWindow {
    pub profile: String,
    raw_ts: Vec<i64>,
    raw: RowRing,
    steps: RowRing,
    /// Step number of the newest closed step (valid when `steps.len > 0`).
    last_closed_step: i64,
    open_step: Option<i64>,
    open: Vec<Accumulator>,
    latest_ts: i64,
    latest: Vec<f32>,
    pub samples_total: u64,
    pub late_samples: u64,
}

/// A copy of what forecasting needs from one window.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowSnapshot {
    pub server: String,
    pub profile: String,
    /// Step number of the newest value in `history` (the forecast starts one step later).
    pub last_step: i64,
    /// Closed steps, oldest first, metric-major: `history[m * len + t]`.
    pub history: Vec<f32>,
    pub len: usize,
    /// The newest raw value of each metric (NaN where never seen) and its time.
    pub current: Vec<f32>,
    pub current_ts: i64,
}

impl WindowSnapshot {
    /// Metric `m`'s closed-step series, oldest first.
    pub fn series(&self, m: usize) -> &[f32] {
        &self.history[m * self.len..(m + 1) * self.len]
    }
}

impl ServerWindow {
    pub fn new(shape: &WindowShape, profile: String) -> Self {
        let width = shape.aggregates.len();
        ServerWindow {
            profile,
            raw_ts: Vec::new(),
            raw: RowRing::new(width, shape.raw_capacity),
            steps: RowRing::new(width, shape.history_steps),
            last_closed_step: i64::MIN,
            open_step: None,
            open: vec![Accumulator::EMPTY; width],
            latest_ts: i64::MIN,
            latest: vec![f32::NAN; width],
            samples_total: 0,
            late_samples: 0,
        }
    }

    /// Adds one validated sample.
    pub fn push(&mut self, shape: &WindowShape, sample: &Sample) {
        self.samples_total += 1;
        if sample.profile != self.profile {
            self.profile.clone_from(&sample.profile);
        }
        self.push_raw(sample);
        let step = shape.step_of(sample.timestamp_ms);
        match self.open_step {
            Some(open) if step < open => {
                self.late_samples += 1;
                return;
            }
            Some(open) if step > open => {
                self.close_open(shape);
                self.fill_gaps_before(step);
                self.open_step = Some(step);
            }
            Some(_) => {}
            None => {
                if self.steps.len > 0 && step <= self.last_closed_step {
                    self.late_samples += 1;
                    return;
                }
                self.fill_gaps_before(step);
                self.open_step = Some(step);
            }
        }
        for (acc, v) in self.open.iter_mut().zip(&sample.values) {
            if !v.is_nan() {
                acc.add(*v, sample.timestamp_ms);
            }
        }
    }

    fn push_raw(&mut self, sample: &Sample) {
        let cap = self.raw.capacity;
        if self.raw.len < cap {
            self.raw_ts.push(sample.timestamp_ms);
        } else {
            self.raw_ts[self.raw.head] = sample.timestamp_ms;
        }
        self.raw.push(sample.values.iter().copied());
        if sample.timestamp_ms >= self.latest_ts {
            self.latest_ts = sample.timestamp_ms;
            for (l, v) in self.latest.iter_mut().zip(&sample.values) {
                if !v.is_nan() {
                    *l = *v;
                }
            }
        }
    }

    fn close_open(&mut self, shape: &WindowShape) {
        if let Some(open) = self.open_step.take() {
            self.fill_gaps_before(open);
            let row = self
                .open
                .iter()
                .zip(&shape.aggregates)
                .map(|(acc, agg)| acc.value(*agg));
            self.steps.push(row);
            self.last_closed_step = open;
            self.open.fill(Accumulator::EMPTY);
        }
    }

    /// Pushes NaN rows for every step between the newest closed step and `step`.
    fn fill_gaps_before(&mut self, step: i64) {
        if self.steps.len == 0 {
            return;
        }
        let gap = step - self.last_closed_step - 1;
        if gap <= 0 {
            return;
        }
        if gap as usize >= self.steps.capacity {
            // Nothing of the old history would stay in the window.
            self.steps.clear();
            return;
        }
        let width = self.steps.width;
        for _ in 0..gap {
            self.steps.push(std::iter::repeat_n(f32::NAN, width));
        }
        self.last_closed_step = step - 1;
    }

    /// Closed steps held (gaps included).
    pub fn history_len(&self) -> usize {
        self.steps.len
    }

    /// Closed steps that hold at least one value (gaps excluded): what warm-up and
    /// forecast eligibility count, so a server that went silent cools down.
    pub fn observed_steps(&self) -> usize {
        let open_has_value = self.open_step.is_some() && self.open.iter().any(|a| a.count > 0);
        self.steps.observed + usize::from(open_has_value)
    }

    /// Observed steps still missing before the encoder is full (0 = warm).
    pub fn warmup_remaining(&self, shape: &WindowShape) -> usize {
        shape.encoder_steps.saturating_sub(self.observed_steps())
    }

    /// Raw samples held.
    pub fn raw_len(&self) -> usize {
        self.raw.len
    }

    /// Time of the newest sample.
    pub fn latest_ts(&self) -> i64 {
        self.latest_ts
    }

    /// Raw samples, oldest first (by arrival), as (timestamp, values).
    pub fn raw_samples(&self) -> impl Iterator<Item = (i64, &[f32])> {
        (0..self.raw.len).map(move |i| {
            let slot = (self.raw.head + i) % self.raw.capacity;
            (self.raw_ts[slot], self.raw.row(i))
        })
    }

    /// The history as of `now_step` (every step before it), for forecasting, without
    /// closing anything: once the clock has passed the open step it is included as
    /// aggregated so far, and the steps since are gaps. Nothing changes in the window, so
    /// samples that arrive later for those steps (history sent in several requests while
    /// the forecast loop runs) still land in it.
    pub fn snapshot_at(&self, shape: &WindowShape, server: &str, now_step: i64) -> WindowSnapshot {
        let cap = self.steps.capacity;
        let width = self.steps.width;
        let has_ring = self.steps.len > 0;
        let open = self.open_step.filter(|&o| o < now_step);
        let open_row: Option<Vec<f32>> = open.map(|_| {
            self.open
                .iter()
                .zip(&shape.aggregates)
                .map(|(acc, agg)| acc.value(*agg))
                .collect()
        });
        // Counts are capped at the capacity: more would push the whole ring out anyway.
        let clamp = |n: i64| n.clamp(0, cap as i64 + 1) as usize;
        let pre_gap = match open {
            Some(o) if has_ring => clamp(o - self.last_closed_step - 1),
            _ => 0,
        };
        let last = match open {
            Some(o) => Some(o),
            None if has_ring => Some(self.last_closed_step),
            None => None,
        };
        let post_gap = last.map(|l| clamp(now_step - 1 - l)).unwrap_or(0);
        let extra = pre_gap + usize::from(open_row.is_some()) + post_gap;
        let total = self.steps.len + extra;
        let len = total.min(cap);
        let first = total - len;
        let mut history = vec![f32::NAN; width * len];
        for (t, i) in (first..total).enumerate() {
            let row: Option<&[f32]> = if i < self.steps.len {
                Some(self.steps.row(i))
            } else if i - self.steps.len == pre_gap {
                open_row.as_deref()
            } else {
                None
            };
            if let Some(row) = row {
                for (m, v) in row.iter().enumerate() {
                    history[m * len + t] = *v;
                }
            }
        }
        let last_step = match last {
            Some(_) if post_gap > 0 => now_step - 1,
            Some(l) => l,
            None => self.last_closed_step,
        };
        WindowSnapshot {
            server: server.to_string(),
            profile: self.profile.clone(),
            last_step,
            history,
            len,
            current: self.latest.clone(),
            current_ts: self.latest_ts,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(raw: usize, history: usize) -> WindowShape {
        WindowShape {
            step_ms: 60_000,
            aggregates: vec![Aggregate::Mean, Aggregate::Max, Aggregate::Last],
            raw_capacity: raw,
            history_steps: history,
            encoder_steps: 4,
        }
    }

    fn sample(ts: i64, values: [f32; 3]) -> Sample {
        Sample {
            timestamp_ms: ts,
            server: "s".into(),
            profile: "generic".into(),
            values: values.to_vec(),
        }
    }

    #[test]
    fn aggregates_mean_max_last_per_step() {
        let shape = shape(10, 10);
        let mut w = ServerWindow::new(&shape, "generic".into());
        w.push(&shape, &sample(0, [1.0, 5.0, 7.0]));
        w.push(&shape, &sample(20_000, [3.0, 2.0, 8.0]));
        w.push(&shape, &sample(10_000, [5.0, 1.0, 9.0])); // out of order inside the step
        assert_eq!(w.history_len(), 0);
        w.push(&shape, &sample(60_000, [0.0, 0.0, 0.0]));
        let snap = w.snapshot_at(&shape, "s", 1);
        assert_eq!(snap.len, 1);
        assert_eq!(snap.last_step, 0);
        assert_eq!(snap.series(0), &[3.0]);
        assert_eq!(snap.series(1), &[5.0]);
        assert_eq!(snap.series(2), &[8.0], "last by timestamp, not by arrival");
        assert_eq!(snap.current, vec![0.0, 0.0, 0.0]);
    }

    #[test]
    fn snapshots_close_nothing_so_a_backfill_in_parts_is_kept() {
        let shape = shape(10, 10);
        let mut w = ServerWindow::new(&shape, "generic".into());
        // First half of a backfill: steps 0..=2 (step 2 still open).
        for t in 0..3 {
            w.push(&shape, &sample(t * 60_000, [t as f32, 0.0, 0.0]));
        }
        // The forecast loop looks at step 6 ("now"): steps 0..=5, the open step 2
        // aggregated so far, 3..=5 gaps.
        let snap = w.snapshot_at(&shape, "s", 6);
        assert_eq!(snap.len, 6);
        assert_eq!(snap.last_step, 5);
        let s0 = snap.series(0);
        assert_eq!(&s0[..3], &[0.0, 1.0, 2.0]);
        assert!(s0[3..].iter().all(|v| v.is_nan()));
        // Nothing was closed: the second half of the backfill is not late.
        for t in 3..6 {
            w.push(&shape, &sample(t * 60_000, [t as f32, 0.0, 0.0]));
        }
        assert_eq!(w.late_samples, 0);
        let snap = w.snapshot_at(&shape, "s", 6);
        assert_eq!(snap.series(0), &[0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
        assert_eq!(
            w.observed_steps(),
            6,
            "the open step counts once it holds a value"
        );
        // The step the clock is in is not included; a long silence keeps the capacity.
        let snap = w.snapshot_at(&shape, "s", 5);
        assert_eq!(snap.len, 5);
        let snap = w.snapshot_at(&shape, "s", 1000);
        assert_eq!(snap.len, 10);
        assert_eq!(snap.last_step, 999);
        assert!(snap.series(0).iter().all(|v| v.is_nan()));
        // An empty window stays empty.
        let empty = ServerWindow::new(&shape, "generic".into());
        assert_eq!(empty.snapshot_at(&shape, "s", 50).len, 0);
    }

    #[test]
    fn missing_values_do_not_count_and_gaps_become_nan() {
        let shape = shape(10, 10);
        let mut w = ServerWindow::new(&shape, "generic".into());
        w.push(&shape, &sample(0, [1.0, f32::NAN, 2.0]));
        w.push(&shape, &sample(1000, [3.0, f32::NAN, 2.0]));
        w.push(&shape, &sample(3 * 60_000, [4.0, 4.0, 4.0]));
        let snap = w.snapshot_at(&shape, "s", 4);
        assert_eq!(snap.len, 4);
        assert_eq!(snap.last_step, 3);
        let s0 = snap.series(0);
        assert_eq!(s0[0], 2.0);
        assert!(s0[1].is_nan() && s0[2].is_nan());
        assert_eq!(s0[3], 4.0);
        assert!(snap.series(1)[0].is_nan());
        assert_eq!(w.observed_steps(), 2, "gap steps do not count as history");
    }

    #[test]
    fn late_samples_are_counted_not_aggregated() {
        let shape = shape(10, 10);
        let mut w = ServerWindow::new(&shape, "generic".into());
        w.push(&shape, &sample(120_000, [1.0, 1.0, 1.0]));
        w.push(&shape, &sample(180_000, [2.0, 2.0, 2.0]));
        w.push(&shape, &sample(10_000, [9.0, 9.0, 9.0]));
        assert_eq!(w.late_samples, 1);
        assert_eq!(w.raw_len(), 3);
        let snap = w.snapshot_at(&shape, "s", 4);
        assert_eq!(snap.series(0), &[1.0, 2.0]);
        assert_eq!(snap.current, vec![2.0, 2.0, 2.0]);
    }

    #[test]
    fn rings_are_bounded_and_warmup_counts_down() {
        let shape = shape(3, 5);
        let mut w = ServerWindow::new(&shape, "generic".into());
        for i in 0..20 {
            w.push(&shape, &sample(i * 60_000, [i as f32, 0.0, 0.0]));
            // The open step counts as soon as it holds a value.
            if i < 4 {
                assert_eq!(w.warmup_remaining(&shape), 3 - i as usize);
            }
        }
        assert_eq!(w.raw_len(), 3);
        assert_eq!(w.history_len(), 5);
        assert_eq!(w.warmup_remaining(&shape), 0);
        assert_eq!(
            w.snapshot_at(&shape, "s", 19).series(0),
            &[14.0, 15.0, 16.0, 17.0, 18.0]
        );
        let raw: Vec<i64> = w.raw_samples().map(|(t, _)| t).collect();
        assert_eq!(raw, vec![17 * 60_000, 18 * 60_000, 19 * 60_000]);
    }

    #[test]
    fn a_gap_longer_than_the_window_restarts_history() {
        let shape = shape(3, 5);
        let mut w = ServerWindow::new(&shape, "generic".into());
        for i in 0..6 {
            w.push(&shape, &sample(i * 60_000, [1.0, 1.0, 1.0]));
        }
        w.push(&shape, &sample(100 * 60_000, [2.0, 2.0, 2.0]));
        assert_eq!(w.history_len(), 0);
        w.push(&shape, &sample(101 * 60_000, [3.0, 3.0, 3.0]));
        let snap = w.snapshot_at(&shape, "s", 101);
        assert_eq!((snap.len, snap.last_step), (1, 100));
        assert_eq!(snap.series(0), &[2.0]);
    }
}
