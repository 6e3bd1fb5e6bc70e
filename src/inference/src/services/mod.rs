//! What the daemon does, without HTTP: each service works on [`crate::state::App`].

pub mod cluster;
pub mod drift;
pub mod forecast_loop;
pub mod ingest;
pub mod jobs;
pub mod live;
pub mod model_loading;
pub mod notify;
pub mod refill;
pub mod reload;
