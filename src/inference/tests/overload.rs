//! Slow and greedy clients against the real daemon: a body that trickles in is cut with
//! 408 after `server.body_read_timeout_seconds`; while it holds the in-flight body budget,
//! another body gets 503 with Retry-After; /health and small requests keep being served.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn raw(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s
}

fn post_head(stream: &mut TcpStream, length: usize) {
    write!(
        stream,
        "POST /feed/data HTTP/1.1\r\nhost: x\r\nx-api-key: {KEY}\r\ncontent-type: application/json\r\ncontent-length: {length}\r\n\r\n"
    )
    .unwrap();
}

fn answer(stream: &mut TcpStream) -> String {
    let mut buf = vec![0u8; 4096];
    let n = stream.read(&mut buf).unwrap_or(0);
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[test]
fn slow_bodies_time_out_and_the_body_budget_sheds_with_retry_after() {
    let dir = TempDir::new("overload");
    let port = free_port();
    let config = write_config(dir.path(), port, "");
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "[server]\n",
        "[server]\nmax_body_bytes = 4096\nmax_inflight_body_bytes = 6000\nbody_read_timeout_seconds = 2\n",
    );
    std::fs::write(&config, text).unwrap();
    let daemon = Daemon::start(dir.path(), &config, port, &[("NORDIQ_API_KEY", KEY)]);

    // A body of 4,000 bytes that never finishes: it holds 4,000 of the 6,000 bytes.
    let mut slow = raw(port);
    post_head(&mut slow, 4000);
    slow.write_all(b"{\"records\":[").unwrap();
    std::thread::sleep(Duration::from_millis(300));

    // Another 4,000-byte body does not fit beside it: 503 with Retry-After, at once.
    let mut greedy = raw(port);
    post_head(&mut greedy, 4000);
    let started = Instant::now();
    let refused = answer(&mut greedy);
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
    assert!(
        refused.to_lowercase().contains("retry-after: 1"),
        "{refused}"
    );
    assert!(refused.contains("max_inflight_body_bytes"), "{refused}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "not refused at once"
    );

    // A small request still fits, and /health is untouched.
    let client = daemon.client(Some(KEY));
    let a = client.post("/feed/data", "application/json", "{\"records\":[]}");
    assert_ne!(a.status, 503, "{}", a.text());
    assert_eq!(client.get("/health").status, 200);

    // The slow body is cut after the body deadline (2 s).
    let cut = answer(&mut slow);
    assert!(cut.starts_with("HTTP/1.1 408"), "{cut}");
    assert!(cut.contains("body_read_timeout_seconds"), "{cut}");
    // Its bytes are back: the greedy body fits now.
    let mut retry = raw(port);
    post_head(&mut retry, 14);
    retry.write_all(b"{\"records\":[]").unwrap();
    retry.write_all(b"}").unwrap_or(());
    let ok = answer(&mut retry);
    assert!(!ok.starts_with("HTTP/1.1 503"), "{ok}");
    let metrics = client.get("/metrics").text();
    assert!(
        metrics.contains("nordiq_http_shed_total{reason=\"max_inflight_body_bytes\"} 1"),
        "{metrics}"
    );
}
