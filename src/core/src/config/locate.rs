//! Maps a byte offset or a key path (`metrics[3].risk.warn`) back to a 1-based line in the
//! config text, so every config error can name its line.

/// 1-based line of a byte offset.
pub fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// 1-based line where the value at `path` (or the nearest existing parent) is written;
/// None when not even the first segment is in the file (the value came from a default).
pub fn line_of_key(text: &str, path: &str) -> Option<usize> {
    let doc = toml_edit::Document::parse(text).ok()?;
    let mut item = doc.as_item();
    let mut best = None;
    for segment in split_path(path) {
        let next = match segment {
            Segment::Key(k) => item.get(k),
            Segment::Index(i) => item.get(i),
        };
        match next {
            Some(n) => {
                item = n;
                if let Some(span) = n.span() {
                    best = Some(line_of(text, span.start));
                }
            }
            None => break,
        }
    }
    best
}

enum Segment<'a> {
    Key(&'a str),
    Index(usize),
}

fn split_path(path: &str) -> Vec<Segment<'_>> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let (name, rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !name.is_empty() {
            out.push(Segment::Key(name));
        }
        for idx in rest.split('[').filter(|s| !s.is_empty()) {
            if let Ok(i) = idx.trim_end_matches(']').parse() {
                out.push(Segment::Index(i));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_lines_of_nested_keys_and_array_items() {
        let text = "[model]\nstep_seconds = 300\n\n[[metrics]]\nname = \"a\"\n\n[[metrics]]\nname = \"b\"\nmax = 5\n";
        assert_eq!(line_of_key(text, "model.step_seconds"), Some(2));
        assert_eq!(line_of_key(text, "metrics[1].max"), Some(9));
        assert_eq!(line_of_key(text, "metrics[1].name"), Some(8));
        assert_eq!(line_of_key(text, "forecast.baseline"), None);
        assert_eq!(line_of(text, 0), 1);
    }
}
