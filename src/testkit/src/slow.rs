//! Slow tests (a real Chromium, Prometheus, systemd in nspawn, packaging) always run in the
//! README's test command; a developer can skip them locally with `NORDIQ_SKIP_SLOW=1`.

/// The variable that skips slow tests.
pub const SKIP_SLOW: &str = "NORDIQ_SKIP_SLOW";

/// True (and says so on stderr) when slow tests are to be skipped; call at the top of a
/// slow test and return early.
pub fn skip(what: &str) -> bool {
    let skip = std::env::var(SKIP_SLOW).is_ok_and(|v| !v.is_empty() && v != "0");
    if skip {
        eprintln!("skipped ({SKIP_SLOW} is set): {what}");
    }
    skip
}
