//! NordIQ runtime: what a NordIQ process does with the operating system.
//!
//! systemd activation and notify, logging to the journal, the HTTP client, command-line
//! and config loading, named exit codes, API key files, atomic files, delivery spools, and
//! the two on-disk stores (models and training job records). Pure logic stays in `nordiq-core`; a crate that
//! needs no process, socket or systemd (the model, the buffer) does not depend on this one.

pub mod atomic_file;
pub mod auth;
pub mod cli;
pub mod client;
pub mod exit;
pub mod job_store;
pub mod keyring;
pub mod lifecycle;
pub mod logging;
pub mod model_store;
pub mod secret;
pub mod serve;
pub mod spool;
pub mod systemd;
pub mod tls;
