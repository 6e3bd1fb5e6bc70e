//! The MongoDB source against `mockupdb` (PyPI), which speaks MongoDB's real wire
//! protocol; tests/mongo_standin.py gives it MongoDB's semantics for find/getMore over a
//! collection that grows by a document per host per second. Batches of 4 end in the middle
//! of tied timestamps; nordiq-metrics is restarted in between; every document must
//! arrive exactly once.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;
use support::*;

const HOSTS: [&str; 3] = ["mongo01", "mongo02", "mongo03"];

fn python() -> String {
    std::env::var("NORDIQ_PYTHON").unwrap_or_else(|_| {
        format!(
            "{}/.cache/nordiq/venv/bin/python",
            std::env::var("HOME").unwrap_or_default()
        )
    })
}

#[test]
fn mongodb_documents_arrive_exactly_once_across_batches_and_restarts() {
    let dir = TempDir::new("mongo");
    let mongo_port = free_port();
    let start = nordiq_core::timefmt::now_ms() / 1000 * 1000 - 15_000;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mongo_standin.py");
    let mongo_log = dir.join("mongo.log");
    let _mongo = support::start(
        Command::new(python())
            .arg(&script)
            .arg(mongo_port.to_string())
            .arg(start.to_string()),
        &mongo_log,
    );
    wait_port(mongo_port, &mongo_log);
    let (_inference, api_port, key) = dev_inference(&dir);
    let config = dir.join("metrics.toml");
    std::fs::write(
        &config,
        format!(
            "[paths]\nstate_dir = \"{}\"\n[auth]\napi_key_file = \"{}\"\n[sources]\nkind = \"mongodb\"\ninference_url = \"http://127.0.0.1:{api_port}\"\ninterval_seconds = 1\n\
             [sources.mongodb]\naddress = \"127.0.0.1:{mongo_port}\"\ndatabase = \"monitoring\"\ncollection = \"metrics\"\nbatch_size = 4\nlag_seconds = 1\nstart_hours = 1\n",
            dir.join("metrics-state").display(),
            dir.join(".nordiq_key").display()
        ),
    )
    .unwrap();
    let metrics_log = dir.join("metrics.log");
    let run = || {
        support::start(
            Command::new(METRICS).args(["--config", config.to_str().unwrap(), "run"]),
            &metrics_log,
        )
    };

    let reader = run();
    wait_until("the first documents", Duration::from_secs(30), || {
        HOSTS.iter().all(|h| stamps(api_port, &key, h).len() >= 15)
    });
    reader.stop();
    std::thread::sleep(Duration::from_secs(3));
    let reader = run();
    let target = ((nordiq_core::timefmt::now_ms() - start) / 1000) as usize;
    wait_until(
        "the documents written meanwhile",
        Duration::from_secs(30),
        || {
            HOSTS
                .iter()
                .all(|h| stamps(api_port, &key, h).len() >= target)
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
    let _ = std::fs::remove_dir_all(&dir);
}
