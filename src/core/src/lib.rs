//! NordIQ core: the pure logic every NordIQ crate shares.
//!
//! Config and catalog, ingest validation, windows, forecast types, risk, alerts, anomaly
//! scores, incident outlook, drift tests, API types, exposition text, remote-write decoding,
//! job records and time formats. No sockets, no async runtime, no process or systemd calls:
//! those live in `nordiq-runtime`. The one file read here is the config file itself.
#![forbid(unsafe_code)]

pub mod alerts;
pub mod anomaly;
pub mod anomaly_threshold;
pub mod api;
pub mod assess;
pub mod batch_ids;
pub mod cluster;
pub mod config;
pub mod drift;
pub mod exposition;
pub mod forecast;
pub mod ingest;
pub mod job_record;
pub mod live_report;
pub mod notify;
pub mod outlook;
pub mod remote_write;
pub mod risk;
pub mod rng;
#[cfg(test)]
mod test_support;
pub mod timefmt;
pub mod window;
