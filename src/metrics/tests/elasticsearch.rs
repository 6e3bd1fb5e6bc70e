//! The Elasticsearch source against an HTTP stand-in (no Elasticsearch server can be
//! installed here): it answers `POST /{index}/_search` the way Elasticsearch does — the
//! same request fields (`size`, `range` on `@timestamp` with `gte`/`lt`, `sort`) and the
//! same response body (`took`, `_shards`, `hits.hits[]` with `_index`, `_id`, `_source`,
//! `sort`) — over Metricbeat-shaped documents. Three hosts share every timestamp and the
//! page size is 4, so pages end in the middle of ties; nordiq-metrics is restarted in
//! between; every document must arrive exactly once.

mod support;

use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::*;

const HOSTS: [&str; 3] = ["es01", "es02", "es03"];

/// Metricbeat-like documents: per second, per host, a cpu document.
fn documents(from_ms: i64, until_ms: i64) -> Vec<(String, i64, serde_json::Value)> {
    let mut out = Vec::new();
    let mut t = from_ms;
    while t < until_ms {
        for (i, host) in HOSTS.iter().enumerate() {
            let source = serde_json::json!({
                "@timestamp": nordiq_core::timefmt::format_ms(t),
                "host": {"name": host},
                "metricset": {"name": "cpu"},
                "system": {"cpu": {"user": {"pct": 0.1 + i as f64 * 0.1}, "idle": {"pct": 0.8}}, "load": {"1": 0.5}}
            });
            out.push((format!("doc-{t}-{i}"), t, source));
        }
        t += 1000;
    }
    out
}

struct StandIn {
    docs: Arc<Mutex<Vec<(String, i64, serde_json::Value)>>>,
    searches: Arc<Mutex<usize>>,
}

fn serve(port: u16, standin: &StandIn) {
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    let docs = Arc::clone(&standin.docs);
    let searches = Arc::clone(&standin.searches);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 65536];
            // Headers, then Content-Length bytes of body.
            let (head_end, length) = loop {
                let n = s.read(&mut chunk).unwrap_or(0);
                if n == 0 {
                    break (0, 0);
                }
                buf.extend_from_slice(&chunk[..n]);
                if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&buf[..p]).to_lowercase();
                    let len = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    break (p + 4, len);
                }
            };
            while buf.len() < head_end + length {
                let n = s.read(&mut chunk).unwrap_or(0);
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            let request_line =
                String::from_utf8_lossy(&buf[..buf.iter().position(|b| *b == b'\r').unwrap_or(0)])
                    .to_string();
            let body: serde_json::Value =
                serde_json::from_slice(&buf[head_end..]).unwrap_or_default();
            let (status, answer) = if request_line.starts_with("POST /metricbeat-*/_search ") {
                *searches.lock().unwrap() += 1;
                let range = &body["query"]["range"]["@timestamp"];
                let (gte, lt) = (
                    range["gte"].as_i64().unwrap_or(i64::MIN),
                    range["lt"].as_i64().unwrap_or(i64::MAX),
                );
                let size = body["size"].as_u64().unwrap_or(10) as usize;
                assert_eq!(body["sort"][0]["@timestamp"]["order"], "asc");
                let docs = docs.lock().unwrap();
                let mut hits: Vec<_> = docs
                    .iter()
                    .filter(|(_, t, _)| *t >= gte && *t < lt)
                    .collect();
                hits.sort_by_key(|(_, t, _)| *t); // stable: ties keep their indexing order
                let hits: Vec<serde_json::Value> = hits
                    .into_iter()
                    .take(size)
                    .map(|(id, t, src)| serde_json::json!({"_index": "metricbeat-8.11.0-2026.11.28", "_id": id, "_score": null, "_source": src, "sort": [t]}))
                    .collect();
                (
                    200,
                    serde_json::json!({"took": 1, "timed_out": false,
                    "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0},
                    "hits": {"max_score": null, "hits": hits}}),
                )
            } else {
                (
                    404,
                    serde_json::json!({"error": {"root_cause": [{"type": "index_not_found_exception", "reason": "no such index"}], "type": "index_not_found_exception", "reason": "no such index"}, "status": 404}),
                )
            };
            let text = answer.to_string();
            let _ = write!(s, "HTTP/1.1 {status} OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}", text.len());
        }
    });
}

fn write_config(dir: &Path, api_port: u16, es_port: u16) -> std::path::PathBuf {
    let path = dir.join("metrics.toml");
    std::fs::write(
        &path,
        format!(
            "[paths]\nstate_dir = \"{}\"\n[auth]\napi_key_file = \"{}\"\n[sources]\nkind = \"elasticsearch\"\ninference_url = \"http://127.0.0.1:{api_port}\"\ninterval_seconds = 1\n\
             [sources.elasticsearch]\nurl = \"http://127.0.0.1:{es_port}\"\nbatch_size = 4\nlag_seconds = 1\nstart_hours = 1\n",
            dir.join("metrics-state").display(),
            dir.join(".nordiq_key").display()
        ),
    )
    .unwrap();
    path
}

#[test]
fn elasticsearch_documents_arrive_exactly_once_across_pages_and_restarts() {
    let dir = TempDir::new("es");
    let es_port = free_port();
    let now = nordiq_core::timefmt::now_ms() / 1000 * 1000;
    let start = now - 20_000;
    let standin = StandIn {
        docs: Arc::new(Mutex::new(documents(start, now))),
        searches: Arc::new(Mutex::new(0)),
    };
    serve(es_port, &standin);
    let (_inference, api_port, key) = dev_inference(&dir);
    let config = write_config(&dir, api_port, es_port);
    let run = || {
        support::start(
            Command::new(METRICS).args(["--config", config.to_str().unwrap(), "run"]),
            &dir.join("metrics.log"),
        )
    };

    let reader = run();
    wait_until(
        "the first 20 s of documents",
        Duration::from_secs(30),
        || HOSTS.iter().all(|h| stamps(api_port, &key, h).len() >= 20),
    );
    reader.stop();
    // New documents while nordiq-metrics is down.
    standin
        .docs
        .lock()
        .unwrap()
        .extend(documents(now, now + 5_000));
    let reader = run();
    wait_until(
        "the documents indexed meanwhile",
        Duration::from_secs(30),
        || HOSTS.iter().all(|h| stamps(api_port, &key, h).len() >= 25),
    );
    std::thread::sleep(Duration::from_secs(2));
    reader.stop();
    for host in HOSTS {
        let got = stamps(api_port, &key, host);
        let expected: Vec<i64> = (0..25).map(|i| start + i * 1000).collect();
        assert_eq!(got, expected, "{host}: every document once, in order");
    }
    let rows = json(api_port, "/historical?format=json&servers=es02", &key);
    assert!(
        (rows["records"][0]["cpu_user_pct"].as_f64().unwrap() - 20.0).abs() < 1e-3,
        "pct × 100"
    );
    assert!(
        *standin.searches.lock().unwrap() >= 15,
        "pages of 4 over 75 documents"
    );
    let mark =
        std::fs::read_to_string(dir.join("metrics-state/sources/elasticsearch.hwm.json")).unwrap();
    assert!(mark.contains(&(now + 4000).to_string()), "{mark}");
    let _ = std::fs::remove_dir_all(&dir);
}
