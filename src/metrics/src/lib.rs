//! nordiq-metrics' logic: the simulated fleet and its scenarios, the /proc readings of
//! this host, NDJSON records, and delivery with an on-disk spool. The binary wires them
//! to the clock, the network and systemd.

pub mod deliver;
pub mod document_fields;
pub mod elastic;
pub mod host;
pub mod mongo;
pub mod node;
pub mod prometheus_sources;
pub mod query_range;
pub mod record;
pub mod scenario;
pub mod sim;
pub mod source;
pub mod source_error;
pub mod source_mark;
pub mod textformat;

/// The delivery spool lives in `nordiq-runtime` (nordiq-inference spools notifications too).
pub use nordiq_runtime::spool;
