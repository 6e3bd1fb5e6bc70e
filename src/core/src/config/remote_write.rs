//! `[remote_write]`: how `POST /api/v1/write` (Prometheus remote write 1.0) maps series
//! onto the catalog.

use super::invalid::{in_catalog, Invalid};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RemoteWriteConfig {
    /// The label naming the server.
    pub server_label: String,
    /// `host:9100` → `host`.
    pub strip_port: bool,
    /// Series name → catalog metric, beside the catalog's own names and `nordiq:<metric>`
    /// (the shipped config maps `node_load1` to `load_average`).
    pub names: BTreeMap<String, String>,
}

impl Default for RemoteWriteConfig {
    fn default() -> Self {
        RemoteWriteConfig {
            server_label: "instance".into(),
            strip_port: true,
            names: BTreeMap::new(),
        }
    }
}

impl RemoteWriteConfig {
    pub(crate) fn validate(&self, known: &dyn Fn(&str) -> bool) -> Result<(), Invalid> {
        in_catalog(
            "remote_write.names",
            self.names.iter().map(|(n, m)| (n.as_str(), m.as_str())),
            known,
        )
    }
}
