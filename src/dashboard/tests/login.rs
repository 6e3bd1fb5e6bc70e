//! `dashboard.require_login`: the page and the API need a session, the session comes from
//! the API key once (an HttpOnly cookie), a wrong key gets none.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const DASHBOARD: &str = env!("CARGO_BIN_EXE_nordiq-dashboard");
const KEY: &str = "dashboard-login-key-0123456789";

fn request(port: u16, raw: &str) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(raw.as_bytes()).unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    answer
}

#[test]
fn a_session_needs_the_key() {
    let dir = std::env::temp_dir().join(format!("nordiq-dash-login-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = dir.join("nordiq.toml");
    std::fs::write(
        &config,
        format!(
            "[paths]\nstate_dir = \"{}\"\n[server]\nlisten = \"127.0.0.1:9\"\n[dashboard]\nlisten = \"127.0.0.1:{port}\"\nrequire_login = true\n",
            dir.display()
        ),
    )
    .unwrap();
    let mut child = Command::new(DASHBOARD)
        .arg("--config")
        .arg(&config)
        .env("NORDIQ_API_KEY", KEY)
        .env_remove("NOTIFY_SOCKET")
        .env_remove("LISTEN_FDS")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "dashboard did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let get = |path: &str, cookie: &str| {
        request(
            port,
            &format!(
                "GET {path} HTTP/1.1\r\nHost: x\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"
            ),
        )
    };
    assert!(
        get("/", "").starts_with("HTTP/1.1 303"),
        "the page redirects to /login"
    );
    assert!(get("/api/status", "").starts_with("HTTP/1.1 401"));
    assert!(get("/api/status", "nordiq_session=forged").starts_with("HTTP/1.1 401"));
    assert!(get("/login", "").contains("API key"));
    assert!(
        get("/health", "").starts_with("HTTP/1.1 200"),
        "health needs no session"
    );
    let login = |key: &str| {
        let body = format!("key={key}");
        request(
            port,
            &format!(
                "POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            ),
        )
    };
    assert!(login("wrong-key").starts_with("HTTP/1.1 401"));
    let ok = login(KEY);
    assert!(ok.starts_with("HTTP/1.1 303"), "{ok}");
    let cookie_line = ok
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .expect("a session cookie");
    assert!(cookie_line.contains("HttpOnly") && cookie_line.contains("SameSite=Strict"));
    let cookie = cookie_line
        .split_once(':')
        .unwrap()
        .1
        .split(';')
        .next()
        .unwrap()
        .trim()
        .to_string();
    assert!(get("/", &cookie).starts_with("HTTP/1.1 200"));
    // With a session the API call goes through (and fails only because no daemon runs).
    assert!(get("/api/status", &cookie).starts_with("HTTP/1.1 502"));
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
}
