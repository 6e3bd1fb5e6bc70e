//! NordIQ core: everything the daemons share that is not a model.
//!
//! Pure logic (config, catalog, ingest validation, windows, risk, alerts) has no I/O and is
//! unit-tested directly; the thin I/O edges (systemd glue, logging, key files, the HTTP
//! client) are kept in their own modules so the pure parts never touch a socket or a disk.

pub mod alerts;
pub mod anomaly;
pub mod api;
pub mod assess;
pub mod auth;
pub mod batch_ids;
pub mod bench_report;
pub mod cli;
pub mod client;
pub mod config;
pub mod drift;
pub mod exit;
pub mod exposition;
pub mod forecast;
pub mod fsutil;
pub mod ingest;
pub mod jobs;
pub mod logging;
pub mod models;
pub mod outlook;
pub mod remote_write;
pub mod risk;
pub mod systemd;
pub mod timefmt;
pub mod window;
