//! nordiq-inference as a library (the `nordiq-inference` binary is its thin `main`).
//!
//! Layers, each importing only the ones below it:
//! - [`daemon`]: the life under systemd (the shared `nordiq_runtime::lifecycle`), wiring
//!   the HTTP API and the forecast loop, reload on SIGHUP, the drain.
//! - [`handlers`]: the HTTP API — routes and handlers; they parse requests, call services
//!   or read the published state, and answer.
//! - [`error`]: the API's error answer and the key/body extractors (a leaf).
//! - [`services`]: ingest, the forecast loop, model reload, training jobs, live accuracy,
//!   drift, refilling windows from the buffer — no HTTP types.
//! - [`state`]: the shared state (config, key, windows, the published forecast set, the
//!   model's and jobs' state) — imports nothing else of this crate.

pub mod daemon;
pub mod error;
pub mod handlers;
pub mod services;
pub mod state;
