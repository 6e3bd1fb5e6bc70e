//! The MongoDB source (the official driver) against `mockupdb` (PyPI), which speaks
//! MongoDB's real wire protocol; tests/mongo_standin.py gives it MongoDB's behaviour for
//! the handshake, SCRAM-SHA-256, TLS, a one-member replica set and find/getMore over a
//! collection that grows by a document per host per second. Batches of 4 end in the
//! middle of tied timestamps; nordiq-metrics is restarted in between; every document must
//! arrive exactly once. Wrong passwords, untrusted certificates and missing credentials
//! are refused with errors that say so, and nothing is read.

mod support;

use nordiq_testkit::pki::Authority;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use support::*;

const HOSTS: [&str; 3] = ["mongo01", "mongo02", "mongo03"];
const USER: &str = "reader";
const PASSWORD: &str = "correct horse battery";

fn python() -> String {
    std::env::var("NORDIQ_PYTHON").unwrap_or_else(|_| {
        format!(
            "{}/.cache/nordiq/venv/bin/python",
            std::env::var("HOME").unwrap_or_default()
        )
    })
}

/// The stand-in with TLS (a certificate from a CA the test made), the SCRAM user and the
/// replica set `rs0`; returns it, its port, the CA file and the first document's time.
fn secured_standin(dir: &Path) -> (Proc, u16, PathBuf, i64) {
    let ca = Authority::new(dir, "mongo");
    let server = ca.server(dir, "mongod");
    let port = free_port();
    let start = nordiq_core::timefmt::now_ms() / 1000 * 1000 - 15_000;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mongo_standin.py");
    let log = dir.join("mongo.log");
    let standin = support::start(
        Command::new(python())
            .arg(&script)
            .arg(port.to_string())
            .arg(start.to_string())
            .arg("--tls")
            .args([&server.cert_file, &server.key_file])
            .args(["--user", USER, PASSWORD])
            .args(["--replica-set", "rs0"]),
        &log,
    );
    wait_port(port, &log);
    (standin, port, ca.cert_file.clone(), start)
}

/// A nordiq-metrics config reading MongoDB with `mongodb` (the lines of its section).
fn write_config(dir: &Path, api_port: u16, mongodb: &str) -> PathBuf {
    let config = dir.join("metrics.toml");
    std::fs::write(
        &config,
        format!(
            "[paths]\nstate_dir = \"{}\"\n[auth]\napi_key_file = \"{}\"\n[sources]\nkind = \"mongodb\"\ninference_url = \"http://127.0.0.1:{api_port}\"\ninterval_seconds = 1\n\
             [sources.mongodb]\n{mongodb}database = \"monitoring\"\ncollection = \"metrics\"\nbatch_size = 4\nlag_seconds = 1\nstart_hours = 1\n",
            dir.join("metrics-state").display(),
            dir.join(".nordiq_key").display()
        ),
    )
    .unwrap();
    config
}

fn run_metrics(config: &Path, log: &Path) -> Proc {
    support::start(
        Command::new(METRICS).args(["--config", config.to_str().unwrap(), "run"]),
        log,
    )
}

#[test]
fn mongodb_documents_arrive_exactly_once_over_tls_with_scram_across_batches_and_restarts() {
    let dir = TempDir::new("mongo");
    let (_mongo, mongo_port, ca_file, start) = secured_standin(&dir);
    let password_file = dir.join("mongo-password");
    std::fs::write(&password_file, format!("{PASSWORD}\n")).unwrap();
    let (_inference, api_port, key) = dev_inference(&dir);
    // The mechanism is left to negotiation (saslSupportedMechs) on purpose.
    let config = write_config(
        &dir,
        api_port,
        &format!(
            "uri = \"mongodb://127.0.0.1:{mongo_port}/?replicaSet=rs0\"\nusername = \"{USER}\"\npassword_file = \"{}\"\nca_file = \"{}\"\n",
            password_file.display(),
            ca_file.display()
        ),
    );
    let metrics_log = dir.join("metrics.log");

    let reader = run_metrics(&config, &metrics_log);
    wait_until("the first documents", Duration::from_secs(30), || {
        HOSTS.iter().all(|h| stamps(api_port, &key, h).len() >= 15)
    });
    reader.stop();
    std::thread::sleep(Duration::from_secs(3));
    let reader = run_metrics(&config, &metrics_log);
    let target = ((nordiq_core::timefmt::now_ms() - start) / 1000) as usize;
    // On a timeout, say how far each host got and what the reader logged: a bare
    // "timed out" (seen once under a loaded CI run) leaves nothing to go on.
    let counts = || -> Vec<usize> {
        HOSTS
            .iter()
            .map(|h| stamps(api_port, &key, h).len())
            .collect()
    };
    wait_until_or_explain(
        "the documents written meanwhile",
        Duration::from_secs(30),
        || counts().iter().all(|n| *n >= target),
        || {
            format!(
                ": {:?} of {target} per host {HOSTS:?}; reader log:\n{}",
                counts(),
                std::fs::read_to_string(&metrics_log).unwrap_or_default()
            )
        },
    );
    reader.stop();
    for host in HOSTS {
        let got = stamps(api_port, &key, host);
        let expected: Vec<i64> = (0..got.len() as i64).map(|i| start + i * 1000).collect();
        assert_eq!(
            got, expected,
            "{host}: every document once, in order, none skipped"
        );
        assert!(got.len() >= target, "{host}: {} of {target}", got.len());
    }
    let rows = json(api_port, "/historical?format=json&servers=mongo02", &key);
    assert_eq!(rows["records"][0]["cpu_user_pct"], 11.0);
    let text = std::fs::read_to_string(&metrics_log).unwrap();
    assert!(!text.contains("reading failed"), "{text}");
    assert!(
        !text.contains(PASSWORD),
        "the password never reaches the log"
    );
    let standin = std::fs::read_to_string(dir.join("mongo.log")).unwrap();
    assert!(
        standin.contains(&format!("authenticated {USER}")),
        "{standin}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn mongodb_refuses_a_wrong_password_an_untrusted_server_and_no_credentials() {
    let dir = TempDir::new("mongo-refusals");
    let (_mongo, mongo_port, ca_file, _start) = secured_standin(&dir);
    let (_inference, api_port, key) = dev_inference(&dir);
    let uri = format!("uri = \"mongodb://127.0.0.1:{mongo_port}/?replicaSet=rs0\"\n");
    let wrong_password = dir.join("wrong-password");
    std::fs::write(&wrong_password, "not the password\n").unwrap();
    let cases = [
        (
            "a wrong password",
            format!(
                "{uri}username = \"{USER}\"\npassword_file = \"{}\"\nauth_mechanism = \"SCRAM-SHA-256\"\nca_file = \"{}\"\n",
                wrong_password.display(),
                ca_file.display()
            ),
            "authentication failed",
        ),
        (
            // The test CA is not among the public roots the driver trusts by default.
            "a server certificate from an unknown CA",
            format!("{uri}tls = true\n"),
            "certificate",
        ),
        (
            "no credentials",
            format!("{uri}ca_file = \"{}\"\n", ca_file.display()),
            "requires authentication",
        ),
    ];
    for (case, section, expected) in cases {
        let _ = std::fs::remove_dir_all(dir.join("metrics-state"));
        let config = write_config(&dir, api_port, &section);
        let log = dir.join(format!("metrics-{}.log", case.replace(' ', "-")));
        let reader = run_metrics(&config, &log);
        wait_until(case, Duration::from_secs(40), || {
            std::fs::read_to_string(&log)
                .map(|t| t.contains("reading failed") && t.contains(expected))
                .unwrap_or(false)
        });
        reader.stop();
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(!text.contains("not the password"), "{case}: {text}");
        for host in HOSTS {
            assert!(
                stamps(api_port, &key, host).is_empty(),
                "{case}: nothing is read"
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
