//! A config value that parsed but cannot be used.

/// The key path (`model.step_seconds`, `metrics[3].risk`) and why; the loader adds the
/// file and line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct Invalid {
    pub key: String,
    pub message: String,
}

impl Invalid {
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Invalid {
        Invalid {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// `Ok` when `ok` holds, else `key` is invalid for `message`.
pub(crate) fn require(
    ok: bool,
    key: &str,
    message: impl FnOnce() -> String,
) -> Result<(), Invalid> {
    if ok {
        Ok(())
    } else {
        Err(Invalid::new(key, message()))
    }
}

/// The first of `keys` (source → catalog metric maps, metric lists) whose metric is not
/// in the catalog.
pub(crate) fn in_catalog<'a>(
    key: &str,
    mut names: impl Iterator<Item = (&'a str, &'a str)>,
    known: &dyn Fn(&str) -> bool,
) -> Result<(), Invalid> {
    match names.find(|(_, metric)| !known(metric)) {
        Some((from, metric)) if from == metric => Err(Invalid::new(
            key,
            format!("`{metric}` is not in the catalog"),
        )),
        Some((from, metric)) => Err(Invalid::new(
            key,
            format!("`{from}` maps to `{metric}`, which is not in the catalog"),
        )),
        None => Ok(()),
    }
}
