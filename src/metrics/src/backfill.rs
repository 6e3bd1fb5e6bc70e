//! `simulate --backfill 30d`: simulated history, so a model can be trained at once. All but
//! the last window goes straight into the buffer (as `nordiqctl import` writes it: new
//! files, repeats skipped); the last window goes through nordiq-inference, which warms its
//! windows and buffers it like any live sample.

use anyhow::{bail, Context};
use nordiq_core::config::Config;
use nordiq_core::ingest::{Validated, Validator};
use nordiq_metrics::record::{push_ndjson, Reading};
use nordiq_metrics::source::SimSource;

/// `30d`, `12h`, `90m`, `3600s` (or plain seconds) in milliseconds.
pub fn parse_duration_ms(text: &str) -> anyhow::Result<i64> {
    let text = text.trim();
    let (number, unit) = text.split_at(
        text.find(|c: char| c.is_ascii_alphabetic())
            .unwrap_or(text.len()),
    );
    let n: f64 = number
        .parse()
        .with_context(|| format!("`{text}` is not a duration like 30d, 12h, 90m or 3600s"))?;
    let unit_ms = match unit {
        "" | "s" => 1_000.0,
        "m" => 60_000.0,
        "h" => 3_600_000.0,
        "d" => 86_400_000.0,
        "w" => 604_800_000.0,
        other => bail!("`{other}` in `{text}` is not a unit (s, m, h, d, w)"),
    };
    if !(n.is_finite() && n > 0.0) {
        bail!("`{text}`: a backfill must be longer than zero");
    }
    Ok((n * unit_ms) as i64)
}

/// What the backfill did.
pub struct BackfillReport {
    pub buffered: usize,
    pub duplicates: usize,
    /// Samples handed to `live` (the last window, for nordiq-inference).
    pub live: usize,
}

/// Simulates `[from_ms, now_ms)` every `step_ms`. Samples older than the daemon's window
/// are written to the buffer a day at a time; the window's samples are handed to `live`
/// as NDJSON batches (records, body) as they are made. Memory stays at one day's samples
/// and one batch, however long the backfill.
pub fn run(
    config: &Config,
    sim: &mut SimSource,
    from_ms: i64,
    now_ms: i64,
    step_ms: i64,
    progress: &mut dyn FnMut(f64),
    live: &mut dyn FnMut(usize, String) -> anyhow::Result<()>,
) -> anyhow::Result<BackfillReport> {
    let warm_from =
        now_ms - config.history_steps() as i64 * config.model.step_seconds as i64 * 1000;
    let validator =
        Validator::new(config, now_ms).with_max_age_days(config.buffer.retention_days as i64);
    let keep = |m: &str| config.metric_index(m).is_some();
    let root = config.paths.state_dir.join("buffer");
    let mut report = BackfillReport {
        buffered: 0,
        duplicates: 0,
        live: 0,
    };
    let mut day = Validated::default();
    let mut day_of = nordiq_buffer::layout::day_of(from_ms);
    let (mut body, mut in_body) = (String::new(), 0usize);
    let mut t = from_ms;
    let mut last_shown = 0.0;
    while t < now_ms {
        if t < warm_from && nordiq_buffer::layout::day_of(t) != day_of {
            write_day(config, &root, &mut day, now_ms, &mut report)?;
            day_of = nordiq_buffer::layout::day_of(t);
        }
        for reading in sim.readings(t) {
            if t < warm_from {
                add_sample(&validator, config, &reading, &mut day);
            } else {
                push_ndjson(&mut body, &reading, &keep);
                in_body += 1;
                if in_body >= config.sources.batch_max_records {
                    report.live += in_body;
                    live(in_body, std::mem::take(&mut body))?;
                    in_body = 0;
                }
            }
        }
        let done = (t - from_ms) as f64 / (now_ms - from_ms) as f64;
        if done - last_shown >= 0.05 {
            progress(done);
            last_shown = done;
        }
        t += step_ms;
    }
    write_day(config, &root, &mut day, now_ms, &mut report)?;
    if in_body > 0 {
        report.live += in_body;
        live(in_body, body)?;
    }
    progress(1.0);
    Ok(report)
}

/// Writes one day's samples into the buffer (as `nordiqctl import` does) and empties `day`.
fn write_day(
    config: &Config,
    root: &std::path::Path,
    day: &mut Validated,
    now_ms: i64,
    report: &mut BackfillReport,
) -> anyhow::Result<()> {
    let day = std::mem::take(day);
    if let Some(e) = day.errors.first() {
        bail!(
            "a simulated sample was refused ({}: {}); the catalog may not fit the simulator",
            e.field,
            e.reason
        );
    }
    let samples: Vec<_> = day.samples.into_iter().map(|(_, s)| s).collect();
    if samples.is_empty() {
        return Ok(());
    }
    let written = nordiq_buffer::import::import_samples(root, config, samples, now_ms)
        .with_context(|| format!("writing the backfill into {}", root.display()))?;
    report.buffered += written.imported;
    report.duplicates += written.duplicates;
    Ok(())
}

/// Adds a reading to `out`, validated like ingest validates it (so the buffer holds what
/// ingest would have stored).
fn add_sample(validator: &Validator, config: &Config, reading: &Reading, out: &mut Validated) {
    let mut record = validator.record();
    record.timestamp_ms(reading.timestamp_ms);
    record.server(&reading.server);
    record.profile(&reading.profile);
    for (name, value) in &reading.values {
        if config.metric_index(name).is_some() {
            record.metric(name, Some(*value));
        }
    }
    let index = out.records;
    record.finish(index, out);
}

#[cfg(test)]
mod tests {
    use super::parse_duration_ms;

    #[test]
    fn durations_parse_and_nonsense_is_refused() {
        assert_eq!(parse_duration_ms("30d").unwrap(), 30 * 86_400_000);
        assert_eq!(parse_duration_ms("12h").unwrap(), 12 * 3_600_000);
        assert_eq!(parse_duration_ms("90m").unwrap(), 90 * 60_000);
        assert_eq!(parse_duration_ms("3600").unwrap(), 3_600_000);
        assert_eq!(parse_duration_ms("1.5d").unwrap(), 129_600_000);
        for bad in ["", "d", "-1d", "3y", "abc"] {
            assert!(parse_duration_ms(bad).is_err(), "{bad}");
        }
    }
}
