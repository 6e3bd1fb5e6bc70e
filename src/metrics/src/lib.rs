//! nordiq-metrics' logic: the simulated fleet and its scenarios, the /proc readings of
//! this host, NDJSON records, and delivery with an on-disk spool. The binary wires them
//! to the clock, the network and systemd.

pub mod bson;
pub mod deliver;
pub mod docs;
pub mod elastic;
pub mod host;
pub mod hwm;
pub mod mongo;
pub mod node;
pub mod promql;
pub mod pull;
pub mod record;
pub mod rng;
pub mod scenario;
pub mod sim;
pub mod source;
pub mod spool;
pub mod textformat;
