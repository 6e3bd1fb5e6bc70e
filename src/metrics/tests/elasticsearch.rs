//! The Elasticsearch source against an HTTP stand-in (no Elasticsearch server can be
//! installed here): it answers `POST /{index}/_search` the way Elasticsearch does — the
//! same request fields (`size`, `range` on `@timestamp` with `gte`/`lt`, `sort`) and the
//! same response body (`took`, `_shards`, `hits.hits[]` with `_index`, `_id`, `_source`,
//! `sort`) — over Metricbeat-shaped documents. Three hosts share every timestamp and the
//! page size is 4, so pages end in the middle of ties; nordiq-metrics is restarted in
//! between; every document must arrive exactly once. A second test serves the stand-in over
//! HTTPS (a certificate the test makes) and demands basic auth the way Elasticsearch's
//! security does (401 with a `security_exception` and `WWW-Authenticate`).

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
    /// Served over TLS with this config (None: plain HTTP).
    tls: Option<Arc<rustls::ServerConfig>>,
    /// The `Authorization` header every request must carry (None: no security).
    authorization: Option<String>,
    /// Requests refused for a missing or wrong `Authorization`.
    refused: Arc<Mutex<usize>>,
}

impl StandIn {
    fn new(docs: Vec<(String, i64, serde_json::Value)>) -> StandIn {
        StandIn {
            docs: Arc::new(Mutex::new(docs)),
            searches: Arc::new(Mutex::new(0)),
            tls: None,
            authorization: None,
            refused: Arc::new(Mutex::new(0)),
        }
    }
}

/// A plain or TLS stream, as the stand-in reads and writes it.
trait Stream: Read + Write {}
impl<T: Read + Write> Stream for T {}

/// Serves `standin` on a port the kernel picks (a port picked earlier could be taken by
/// another test meanwhile); returns it.
fn serve(standin: &StandIn) -> u16 {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let docs = Arc::clone(&standin.docs);
    let searches = Arc::clone(&standin.searches);
    let refused = Arc::clone(&standin.refused);
    let tls = standin.tls.clone();
    let authorization = standin.authorization.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(tcp) = stream else { continue };
            let mut s: Box<dyn Stream> = match &tls {
                Some(config) => {
                    let Ok(conn) = rustls::ServerConnection::new(Arc::clone(config)) else {
                        continue;
                    };
                    Box::new(rustls::StreamOwned::new(conn, tcp))
                }
                None => Box::new(tcp),
            };
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
            let head = String::from_utf8_lossy(&buf[..head_end.max(1) - 1]).to_string();
            let presented = head
                .lines()
                .find(|l| l.to_lowercase().starts_with("authorization:"))
                .map(|l| l["authorization:".len()..].trim().to_string());
            let allowed = authorization.is_none() || presented == authorization;
            let (status, answer) = if !allowed {
                *refused.lock().unwrap() += 1;
                (
                    401,
                    serde_json::json!({"error": {"root_cause": [{"type": "security_exception", "reason": "unable to authenticate user [nordiq] for REST request [/metricbeat-*/_search]"}], "type": "security_exception", "reason": "unable to authenticate user [nordiq] for REST request [/metricbeat-*/_search]"}, "status": 401}),
                )
            } else if request_line.starts_with("POST /metricbeat-*/_search ") {
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
            let challenge = if status == 401 {
                "WWW-Authenticate: Basic realm=\"security\" charset=\"UTF-8\"\r\n"
            } else {
                ""
            };
            let _ = write!(s, "HTTP/1.1 {status} OK\r\nContent-Type: application/json\r\n{challenge}Content-Length: {}\r\nConnection: close\r\n\r\n{text}", text.len());
            let _ = s.flush();
        }
    });
    port
}

fn write_config(dir: &Path, api_port: u16, es_port: u16) -> std::path::PathBuf {
    write_config_with(
        dir,
        api_port,
        &format!("url = \"http://127.0.0.1:{es_port}\"\n"),
    )
}

fn write_config_with(dir: &Path, api_port: u16, elasticsearch: &str) -> std::path::PathBuf {
    let path = dir.join("metrics.toml");
    std::fs::write(
        &path,
        format!(
            "[paths]\nstate_dir = \"{}\"\n[auth]\napi_key_file = \"{}\"\n[sources]\nkind = \"elasticsearch\"\ninference_url = \"http://127.0.0.1:{api_port}\"\ninterval_seconds = 1\n\
             [sources.elasticsearch]\n{elasticsearch}batch_size = 4\nlag_seconds = 1\nstart_hours = 1\n",
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
    let now = nordiq_core::timefmt::now_ms() / 1000 * 1000;
    let start = now - 20_000;
    let standin = StandIn::new(documents(start, now));
    let es_port = serve(&standin);
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

#[test]
fn elasticsearch_over_https_with_basic_auth() {
    let dir = TempDir::new("es-tls");
    let now = nordiq_core::timefmt::now_ms() / 1000 * 1000;
    let start = now - 10_000;
    let ca = nordiq_testkit::pki::Authority::new(&dir, "es");
    let cert = ca.server(&dir, "es-server");
    let files = nordiq_runtime::tls::ServerFiles {
        cert: cert.cert_file.clone(),
        key: cert.key_file.clone(),
        client_ca: None,
    };
    let mut standin = StandIn::new(documents(start, now));
    standin.tls = Some(nordiq_runtime::tls::server_config(&files).unwrap());
    // "nordiq:s3cret" as Elasticsearch's basic auth expects it.
    standin.authorization = Some("Basic bm9yZGlxOnMzY3JldA==".into());
    let es_port = serve(&standin);
    let (_inference, api_port, key) = dev_inference(&dir);
    let password = dir.join("es-password");
    std::fs::write(&password, "wrong\n").unwrap();
    let config = write_config_with(
        &dir,
        api_port,
        &format!(
            "url = \"https://localhost:{es_port}\"\nca_file = \"{}\"\nusername = \"nordiq\"\npassword_file = \"{}\"\n",
            ca.cert_file.display(),
            password.display()
        ),
    );
    let run = || {
        support::start(
            Command::new(METRICS).args(["--config", config.to_str().unwrap(), "run"]),
            &dir.join("metrics.log"),
        )
    };
    // A wrong password: refused with 401, said in the log, nothing delivered.
    let reader = run();
    wait_until("a 401 from the stand-in", Duration::from_secs(30), || {
        *standin.refused.lock().unwrap() > 0
    });
    std::thread::sleep(Duration::from_millis(500));
    reader.stop();
    let log = std::fs::read_to_string(dir.join("metrics.log")).unwrap_or_default();
    assert!(log.contains("401"), "{log}");
    assert!(
        !log.contains("wrong"),
        "the password reached the log: {log}"
    );
    assert!(stamps(api_port, &key, "es01").is_empty());
    // The right one (re-read from the file): every document arrives once, over HTTPS.
    std::fs::write(&password, "s3cret\n").unwrap();
    let reader = run();
    wait_until("the documents over HTTPS", Duration::from_secs(30), || {
        HOSTS.iter().all(|h| stamps(api_port, &key, h).len() >= 10)
    });
    reader.stop();
    let expected: Vec<i64> = (0..10).map(|i| start + i * 1000).collect();
    assert_eq!(stamps(api_port, &key, "es01"), expected);
    let _ = std::fs::remove_dir_all(&dir);
}
