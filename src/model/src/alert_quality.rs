//! Alert quality against labelled incidents: event-level recall and precision, false alert
//! events per server-day, lead time, and the NAB score (standard profile), plus the
//! reliability of predicted probabilities. Pure: steps in, figures out.
//!
//! Definitions (all per server, summed over servers):
//! - A **segment** is a run of labelled steps. Its **window** starts `lead` steps before the
//!   segment and ends with it.
//! - An **alert event** starts at a step where the alert is on and was off for more than
//!   `merge_gap` steps before (so an alert that flickers counts once). It is **true** when it
//!   starts inside a window, **false** otherwise.
//! - A segment is **caught** when an alert event starts inside its window; its **lead time**
//!   is how many steps the first such event came before the segment's first step (negative:
//!   after it started).
//! - **NAB** (Lavin & Ahmad 2015, the Numenta Anomaly Benchmark's scorer): each window
//!   scores its earliest detection `A_TP · σ(p) / σ(−1)` with `p = −(right − i + 1)/width`
//!   (−1 at the window's first step, near 0 at its last) and `σ(x) = 2/(1 + e^{5x}) − 1`; a
//!   window without detection scores `−A_FN`; a detection outside every window scores
//!   `A_FP · σ(distance past the previous window's end / (its width − 1))`, or `−A_FP` when
//!   no window came before. Detections are alert-event starts. Standard profile:
//!   `A_TP = 1`, `A_FP = 0.11`, `A_FN = 1`. Normalised to 0 (the null detector, which
//!   never alerts) … 100 (the perfect one, which alerts at every window's start).
//!   NAB centres fixed-size windows on point labels; the labels here are segments, so the
//!   window is the segment plus the lead before it.

use serde::Serialize;

/// A run of labelled steps, `start..=end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Segment {
    pub start: usize,
    pub end: usize,
}

/// The labelled runs in `labels`.
pub fn segments(labels: &[bool]) -> Vec<Segment> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, &l) in labels.iter().enumerate() {
        match (l, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                out.push(Segment {
                    start: s,
                    end: i - 1,
                });
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push(Segment {
            start: s,
            end: labels.len() - 1,
        });
    }
    out
}

/// Where alert events start: the alert is on, and was off for more than `merge_gap` steps
/// before (0: every rising edge).
pub fn event_starts(alerting: &[bool], merge_gap: usize) -> Vec<usize> {
    let mut out = Vec::new();
    let mut last_on: Option<usize> = None;
    for (i, &on) in alerting.iter().enumerate() {
        if !on {
            continue;
        }
        let fresh = match last_on {
            None => true,
            Some(prev) => i - prev - 1 > merge_gap,
        };
        if fresh {
            out.push(i);
        }
        last_on = Some(i);
    }
    out
}

/// Windows: each segment extended `lead` steps before it; overlapping windows merged.
pub fn windows(segments: &[Segment], lead: usize) -> Vec<Segment> {
    let mut out: Vec<Segment> = Vec::new();
    for s in segments {
        let w = Segment {
            start: s.start.saturating_sub(lead),
            end: s.end,
        };
        match out.last_mut() {
            Some(last) if w.start <= last.end + 1 => last.end = last.end.max(w.end),
            _ => out.push(w),
        }
    }
    out
}

/// NAB's application profile.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct NabProfile {
    pub tp: f64,
    pub fp: f64,
    pub fn_: f64,
}

impl NabProfile {
    /// The standard profile.
    pub const STANDARD: NabProfile = NabProfile {
        tp: 1.0,
        fp: 0.11,
        fn_: 1.0,
    };
}

/// NAB's scaled sigmoid: near 1 at −1 (early), 0 at 0, towards −1 far past a window.
pub fn scaled_sigmoid(x: f64) -> f64 {
    if x > 3.0 {
        -1.0
    } else {
        2.0 / (1.0 + (5.0 * x).exp()) - 1.0
    }
}

/// Raw NAB score parts of one series, to be summed over series before normalising.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct NabRaw {
    pub score: f64,
    /// The null detector's and the perfect detector's scores on the same windows.
    pub null: f64,
    pub perfect: f64,
}

impl NabRaw {
    pub fn add(&mut self, other: &NabRaw) {
        self.score += other.score;
        self.null += other.null;
        self.perfect += other.perfect;
    }

    /// 100 · (score − null) / (perfect − null); 0 when there are no windows.
    pub fn normalised(&self) -> f64 {
        let span = self.perfect - self.null;
        if span <= 0.0 {
            0.0
        } else {
            100.0 * (self.score - self.null) / span
        }
    }
}

/// NAB's score of `detections` (sorted step indices) against `windows` (sorted, disjoint).
pub fn nab_raw(windows: &[Segment], detections: &[usize], profile: NabProfile) -> NabRaw {
    let max_tp = scaled_sigmoid(-1.0);
    let mut score = 0.0;
    let mut detected = vec![false; windows.len()];
    for &i in detections {
        match windows.iter().position(|w| w.start <= i && i <= w.end) {
            Some(k) => {
                if detected[k] {
                    continue; // only a window's earliest detection counts
                }
                detected[k] = true;
                let w = windows[k];
                let width = (w.end - w.start + 1) as f64;
                let position = -((w.end - i + 1) as f64) / width;
                score += scaled_sigmoid(position) * profile.tp / max_tp;
            }
            None => {
                let previous = windows.iter().rev().find(|w| w.end < i);
                let unweighted = match previous {
                    None => -1.0,
                    Some(w) => {
                        let width = (w.end - w.start + 1) as f64;
                        let past = (i - w.end) as f64 / (width - 1.0).max(1.0);
                        scaled_sigmoid(past)
                    }
                };
                score += unweighted * profile.fp;
            }
        }
    }
    score -= profile.fn_ * detected.iter().filter(|d| !**d).count() as f64;
    NabRaw {
        score,
        null: -profile.fn_ * windows.len() as f64,
        perfect: profile.tp * windows.len() as f64,
    }
}

/// Event-level figures of one detector on one or more series.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct EventScore {
    pub segments: usize,
    pub caught: usize,
    pub events: usize,
    pub true_events: usize,
    pub false_events: usize,
    /// Steps scored (for false events per server-day).
    pub steps: usize,
    /// Lead time of each caught segment, in steps (positive: before it started).
    pub leads: Vec<i64>,
    pub nab: NabRaw,
}

impl EventScore {
    /// Scores one series: `labels[i]` and `alerting[i]` for the same steps.
    pub fn of(labels: &[bool], alerting: &[bool], lead: usize, merge_gap: usize) -> EventScore {
        let segs = segments(labels);
        let wins = windows(&segs, lead);
        let starts = event_starts(alerting, merge_gap);
        let in_window = |i: usize| wins.iter().any(|w| w.start <= i && i <= w.end);
        let true_events = starts.iter().filter(|i| in_window(**i)).count();
        let mut leads = Vec::new();
        for s in &segs {
            let from = s.start.saturating_sub(lead);
            if let Some(first) = starts.iter().find(|i| from <= **i && **i <= s.end) {
                leads.push(s.start as i64 - *first as i64);
            }
        }
        EventScore {
            segments: segs.len(),
            caught: leads.len(),
            events: starts.len(),
            true_events,
            false_events: starts.len() - true_events,
            steps: labels.len().min(alerting.len()),
            leads,
            nab: nab_raw(&wins, &starts, NabProfile::STANDARD),
        }
    }

    pub fn add(&mut self, other: &EventScore) {
        self.segments += other.segments;
        self.caught += other.caught;
        self.events += other.events;
        self.true_events += other.true_events;
        self.false_events += other.false_events;
        self.steps += other.steps;
        self.leads.extend_from_slice(&other.leads);
        self.nab.add(&other.nab);
    }

    pub fn recall(&self) -> f64 {
        ratio(self.caught, self.segments)
    }

    pub fn precision(&self) -> f64 {
        ratio(self.true_events, self.events)
    }

    /// False alert events per server-day, for steps of `step_seconds`.
    pub fn false_per_day(&self, step_seconds: u32) -> f64 {
        let days = self.steps as f64 * step_seconds as f64 / 86_400.0;
        if days == 0.0 {
            0.0
        } else {
            self.false_events as f64 / days
        }
    }

    /// Median lead time in steps (None when nothing was caught).
    /// Caught segments whose first alert came before the segment began.
    pub fn caught_early(&self) -> usize {
        self.leads.iter().filter(|l| **l > 0).count()
    }

    pub fn median_lead(&self) -> Option<f64> {
        if self.leads.is_empty() {
            return None;
        }
        let mut l = self.leads.clone();
        l.sort_unstable();
        let n = l.len();
        Some(if n % 2 == 1 {
            l[n / 2] as f64
        } else {
            (l[n / 2 - 1] + l[n / 2]) as f64 / 2.0
        })
    }

    pub fn nab_score(&self) -> f64 {
        self.nab.normalised()
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// One bin of a reliability table.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ReliabilityBin {
    pub from: f64,
    pub to: f64,
    pub count: usize,
    pub mean_predicted: f64,
    pub observed: f64,
}

/// Predicted probabilities against what happened, in `bins` equal bins, and the Brier score.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Reliability {
    pub bins: Vec<ReliabilityBin>,
    pub count: usize,
    pub brier: f64,
    /// How often the event happened at all.
    pub base_rate: f64,
}

impl Reliability {
    pub fn of(pairs: impl Iterator<Item = (f64, bool)>, bins: usize) -> Reliability {
        let bins = bins.max(1);
        let mut sums = vec![(0usize, 0.0f64, 0usize); bins];
        let (mut count, mut brier, mut happened) = (0usize, 0.0f64, 0usize);
        for (p, hit) in pairs {
            let p = p.clamp(0.0, 1.0);
            let b = ((p * bins as f64) as usize).min(bins - 1);
            sums[b].0 += 1;
            sums[b].1 += p;
            sums[b].2 += hit as usize;
            count += 1;
            happened += hit as usize;
            brier += (p - hit as u8 as f64).powi(2);
        }
        Reliability {
            bins: sums
                .iter()
                .enumerate()
                .map(|(b, (n, sum_p, hits))| ReliabilityBin {
                    from: b as f64 / bins as f64,
                    to: (b + 1) as f64 / bins as f64,
                    count: *n,
                    mean_predicted: if *n > 0 { sum_p / *n as f64 } else { 0.0 },
                    observed: ratio(*hits, *n),
                })
                .collect(),
            count,
            brier: if count > 0 { brier / count as f64 } else { 0.0 },
            base_rate: ratio(happened, count),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bools(s: &str) -> Vec<bool> {
        s.chars().map(|c| c == '1').collect()
    }

    #[test]
    fn segments_events_and_windows() {
        assert_eq!(
            segments(&bools("0110001")),
            vec![Segment { start: 1, end: 2 }, Segment { start: 6, end: 6 }]
        );
        assert_eq!(event_starts(&bools("0110101100"), 0), vec![1, 4, 6]);
        // A gap of one step is merged with a merge gap of 1.
        assert_eq!(event_starts(&bools("0110101100"), 1), vec![1]);
        assert_eq!(event_starts(&bools("0110001100"), 1), vec![1, 6]);
        let w = windows(
            &[Segment { start: 5, end: 6 }, Segment { start: 9, end: 9 }],
            2,
        );
        assert_eq!(
            w,
            vec![Segment { start: 3, end: 9 }],
            "overlapping windows merge"
        );
    }

    #[test]
    fn event_figures_by_hand() {
        //        index: 0123456789012345678901234
        let labels = bools("0000001110000000000011000");
        let alerts = bools("0001000001000100000000000");
        // Lead 2: windows 4..=8 and 18..=21. Events at 3 (false), 9 (false: after the
        // segment), 13 (false). Nothing inside a window: nothing caught.
        let s = EventScore::of(&labels, &alerts, 2, 0);
        assert_eq!(
            (s.segments, s.caught, s.events, s.false_events),
            (2, 0, 3, 3)
        );
        // Lead 3: window 3..=8 holds the event at 3, three steps before the segment.
        let s = EventScore::of(&labels, &alerts, 3, 0);
        assert_eq!((s.caught, s.true_events, s.false_events), (1, 1, 2));
        assert_eq!(s.leads, vec![3]);
        assert_eq!(s.recall(), 0.5);
        assert!((s.precision() - 1.0 / 3.0).abs() < 1e-12);
        // 25 five-minute steps = 125 minutes: 2 false events per 0.0868 days.
        assert!((s.false_per_day(300) - 2.0 / (125.0 / 1440.0)).abs() < 1e-9);
        assert_eq!(s.median_lead(), Some(3.0));
        assert_eq!(s.caught_early(), 1);
    }

    #[test]
    fn nab_by_hand() {
        assert!((scaled_sigmoid(0.0)).abs() < 1e-12);
        assert!((scaled_sigmoid(-1.0) - 0.986_614_298_151_430_3).abs() < 1e-12);
        assert_eq!(scaled_sigmoid(3.5), -1.0);
        let w = [Segment { start: 10, end: 19 }];
        let p = NabProfile::STANDARD;
        // Perfect: a detection at the window's first step scores A_TP = 1.
        let perfect = nab_raw(&w, &[10], p);
        assert!((perfect.score - 1.0).abs() < 1e-12);
        assert_eq!((perfect.null, perfect.perfect), (-1.0, 1.0));
        assert!((perfect.normalised() - 100.0).abs() < 1e-9);
        // Null: -A_FN.
        assert_eq!(nab_raw(&w, &[], p).normalised(), 0.0);
        // At the window's last step: position −1/10, σ = 2/(1+e^−0.5) − 1 = 0.244919.
        let both = nab_raw(&w, &[15, 19], p);
        let expected = (2.0 / (1.0 + (-0.5f64).exp()) - 1.0) / scaled_sigmoid(-1.0);
        let first = nab_raw(&w, &[15], p).score;
        assert!(first > expected, "an earlier detection scores more");
        assert!((nab_raw(&w, &[19], p).score - expected).abs() < 1e-12);
        // Only the earliest detection in a window counts.
        assert!((both.score - first).abs() < 1e-12);
        // A false positive before any window: −A_FP; right after a window: about 0; far
        // after it (past 3 widths): −A_FP.
        let fp_before = nab_raw(&w, &[2, 10], p).score;
        assert!((fp_before - (1.0 - 0.11)).abs() < 1e-12);
        let just_after = nab_raw(&w, &[10, 20], p).score;
        let sigma = 2.0 / (1.0 + (5.0 / 9.0f64).exp()) - 1.0;
        assert!((just_after - (1.0 + 0.11 * sigma)).abs() < 1e-12);
        let far_after = nab_raw(&w, &[10, 60], p).score;
        assert!((far_after - (1.0 - 0.11)).abs() < 1e-12);
        // Normalised: (0.89 − (−1)) / 2 · 100 = 94.5.
        assert!((nab_raw(&w, &[2, 10], p).normalised() - 94.5).abs() < 1e-9);
    }

    #[test]
    fn reliability_bins_by_hand() {
        let pairs = [
            (0.05, false),
            (0.05, false),
            (0.15, true),
            (0.95, true),
            (1.0, true),
        ];
        let r = Reliability::of(pairs.into_iter(), 10);
        assert_eq!(r.count, 5);
        assert_eq!(r.bins[0].count, 2);
        assert_eq!(r.bins[0].observed, 0.0);
        assert_eq!(r.bins[1].observed, 1.0);
        assert_eq!(r.bins[9].count, 2, "1.0 falls in the last bin");
        assert!((r.bins[9].mean_predicted - 0.975).abs() < 1e-12);
        let brier = (0.05f64.powi(2) * 2.0 + 0.85f64.powi(2) + 0.05f64.powi(2)) / 5.0;
        assert!((r.brier - brier).abs() < 1e-12);
        assert_eq!(r.base_rate, 0.6);
    }
}
