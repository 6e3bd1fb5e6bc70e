//! What the daemon does, without HTTP: each service works on [`crate::state::App`].

pub mod drift;
pub mod forecast_loop;
pub mod ingest;
pub mod jobs;
pub mod live;
pub mod reload;
pub mod serving;
pub mod warm;
