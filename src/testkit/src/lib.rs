//! NordIQ test kit (a dev-dependency only): the helpers every crate's tests and benches
//! share, written once — temp dirs and free ports, child processes (the suite's daemons and
//! real servers), a notify socket, one HTTP client, test certificates, seeded histories, real data, bench reports, and the
//! switch that skips slow tests locally.

pub mod asd;
pub mod bench_report;
pub mod cluster;
pub mod history;
pub mod http;
pub mod netns;
pub mod notify;
pub mod pki;
pub mod process;
pub mod slow;
pub mod temp;

pub use history::{hourly_history, ndjson_history, Rng};
pub use http::{Answer, Http};
pub use notify::NotifySocket;
pub use process::{
    clean_env, dev_inference, run, sibling, wait_port, wait_until, wait_until_or_explain, Proc,
};
pub use temp::{free_port, TempDir};
