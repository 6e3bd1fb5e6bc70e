//! `[ingest]`: what ingest accepts.

use super::invalid::{require, Invalid};
use serde::{Deserialize, Serialize};

/// What ingest does with a field that is not in the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnknownMetricPolicy {
    Reject,
    Ignore,
}

/// What happens to the good records of a batch that also holds bad ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MixedBatchPolicy {
    /// Nothing of the batch is applied; the 422 lists every bad record (the default:
    /// a feeder that retries the whole batch never duplicates samples).
    RejectAll,
    /// The good records are applied; the answer lists the rejected ones.
    AcceptValid,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    pub unknown_metrics: UnknownMetricPolicy,
    pub mixed_batch: MixedBatchPolicy,
    /// Samples further than this in the future are rejected.
    pub max_future_seconds: i64,
    /// Samples older than this are rejected.
    pub max_age_days: i64,
    pub max_records_per_request: usize,
    /// Profile given to servers that match no pattern and send none.
    pub default_profile: String,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            unknown_metrics: UnknownMetricPolicy::Reject,
            mixed_batch: MixedBatchPolicy::RejectAll,
            max_future_seconds: 300,
            max_age_days: 60,
            max_records_per_request: 200_000,
            default_profile: "generic".into(),
        }
    }
}

impl IngestConfig {
    pub(crate) fn validate(&self) -> Result<(), Invalid> {
        require(
            self.max_future_seconds >= 0,
            "ingest.max_future_seconds",
            || "must be ≥ 0".into(),
        )?;
        require(self.max_age_days >= 1, "ingest.max_age_days", || {
            "must be ≥ 1".into()
        })?;
        require(
            self.max_records_per_request > 0,
            "ingest.max_records_per_request",
            || "must be at least 1".into(),
        )
    }
}
