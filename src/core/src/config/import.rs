//! `[import]`: column mapping for `nordiqctl import`.

use super::invalid::{in_catalog, Invalid};
use serde::{Deserialize, Serialize};

/// `nordiqctl import`: how columns of imported files map onto the catalog.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ImportConfig {
    /// Source column → catalog metric (`--map SRC=DST` adds to it).
    pub columns: std::collections::BTreeMap<String, String>,
}

impl ImportConfig {
    /// Every mapped column lands on a catalog metric.
    pub(crate) fn validate(&self, known: &dyn Fn(&str) -> bool) -> Result<(), Invalid> {
        in_catalog(
            "import.columns",
            self.columns.iter().map(|(s, d)| (s.as_str(), d.as_str())),
            known,
        )
    }
}
