//! Warm restart: refill every server's window from the buffer, so a restarted daemon
//! forecasts at once instead of waiting a day for its encoder windows.

use crate::state::windows::WindowStore;
use nordiq_buffer::Buffer;
use nordiq_core::config::Config;
use nordiq_core::ingest::Sample;
use std::time::Instant;

/// Samples handed to the store at a time.
const CHUNK: usize = 64 * 1024;

pub struct Refill {
    pub samples: u64,
    pub servers: usize,
    pub seconds: f64,
}

/// Reads the last `window.history_steps` steps (plus the open one) from the buffer into
/// the store.
pub fn refill(
    store: &WindowStore,
    buffer: &Buffer,
    config: &Config,
    now_ms: i64,
) -> Result<Refill, nordiq_buffer::BufferError> {
    let started = Instant::now();
    let step_ms = config.model.step_seconds as i64 * 1000;
    let since = now_ms - (config.history_steps() as i64 + 1) * step_ms;
    let mut chunk: Vec<Sample> = Vec::with_capacity(CHUNK);
    let flush = |chunk: &mut Vec<Sample>| {
        let (reservation, refused) = store.reserve(chunk.iter().map(|s| s.server.as_str()));
        if !refused.is_empty() {
            tracing::warn!(
                servers = refused.len(),
                "window.max_servers reached while refilling; some servers stay cold"
            );
        }
        store.apply(
            chunk.iter().filter(|s| !refused.contains(&s.server)),
            reservation,
        );
        chunk.clear();
    };
    let samples = buffer.read_range(since, i64::MAX, &mut |s| {
        chunk.push(s);
        if chunk.len() >= CHUNK {
            flush(&mut chunk);
        }
    })?;
    flush(&mut chunk);
    Ok(Refill {
        samples,
        servers: store.server_count(),
        seconds: started.elapsed().as_secs_f64(),
    })
}
