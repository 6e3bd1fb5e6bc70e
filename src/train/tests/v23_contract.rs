//! NordIQ v2.3's admin contract, kept: its operators' scripts (curl + jq, in
//! v23_contract.sh) run against a real daemon that trains through the API.

mod common;

use common::{history, Daemon, TempDir, KEY};
use std::path::Path;
use std::process::Command;

fn phase(port: u16, name: &str) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/v23_contract.sh");
    for tool in ["curl", "jq"] {
        assert!(
            Command::new(tool).arg("--version").output().is_ok(),
            "{tool} is missing: scripts/test.sh installs it"
        );
    }
    let (code, text) = nordiq_testkit::run(
        Command::new(&script)
            .arg(name)
            .env("API_KEY", KEY)
            .env("DAEMON_URL", format!("http://127.0.0.1:{port}")),
    );
    assert_eq!(code, 0, "v2.3 contract, phase {name}:\n{text}");
    assert!(
        text.contains(&format!("v2.3 contract: {name} ok")),
        "{text}"
    );
}

#[test]
fn v23_scripts_work_against_the_daemon() {
    let dir = TempDir::new("v23");
    let port = common::free_port();
    let extra = common::process_training(dir.path());
    let config = common::write_small_config(dir.path(), port, &extra);
    let daemon = Daemon::start(dir.path(), &config, port);
    phase(port, "unready");
    let servers = ["ppweb001", "ppweb002", "ppweb003"];
    let (status, body) = daemon.http("POST", "/feed/data", &history(&servers, 12 * 24));
    assert_eq!(status, 200, "{body}");
    phase(port, "retrain");
    phase(port, "reload");
}
