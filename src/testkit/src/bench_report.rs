//! Helpers for the benchmark binaries: describe the machine, and replace one named section
//! of a Markdown report so several benchmarks can share `docs/benchmarks.md`.

use std::path::Path;

/// "2 cores, <CPU model>".
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    format!("{cores} cores, {cpu}")
}

/// Replaces the text between `<!-- bench:NAME:begin -->` and `<!-- bench:NAME:end -->` in
/// the file at `path` (appending the section when absent).
pub fn replace_section(path: &Path, name: &str, content: &str) -> std::io::Result<()> {
    let begin = format!("<!-- bench:{name}:begin -->");
    let end = format!("<!-- bench:{name}:end -->");
    let existing = std::fs::read_to_string(path).unwrap_or_else(|_| "# Benchmarks\n".into());
    let block = format!("{begin}\n{content}{end}");
    let updated = match (existing.find(&begin), existing.find(&end)) {
        (Some(b), Some(e)) if e > b => {
            format!("{}{}{}", &existing[..b], block, &existing[e + end.len()..])
        }
        _ => format!("{}\n\n{}\n", existing.trim_end(), block),
    };
    std::fs::write(path, updated)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_are_replaced_in_place() {
        let path = std::env::temp_dir().join(format!("nordiq-report-{}.md", std::process::id()));
        std::fs::write(&path, "# B\n\nintro\n").unwrap();
        replace_section(&path, "a", "one\n").unwrap();
        replace_section(&path, "b", "two\n").unwrap();
        replace_section(&path, "a", "three\n").unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("intro"));
        assert!(text.contains("three") && !text.contains("one"));
        assert!(text.find("bench:a:begin").unwrap() < text.find("bench:b:begin").unwrap());
        let _ = std::fs::remove_file(&path);
    }
}
