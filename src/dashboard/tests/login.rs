//! `dashboard.require_login`: the page and the API need a session, the session comes from
//! the API key once (an HttpOnly cookie), a wrong key gets none.

use nordiq_testkit::{clean_env, free_port, Http, Proc, TempDir};
use std::process::Command;

const DASHBOARD: &str = env!("CARGO_BIN_EXE_nordiq-dashboard");
const KEY: &str = "dashboard-login-key-0123456789";

#[test]
fn a_session_needs_the_key() {
    let dir = TempDir::new("dash-login");
    let port = free_port();
    let config = dir.join("nordiq.toml");
    std::fs::write(
        &config,
        format!(
            "[paths]\nstate_dir = \"{}\"\n[server]\nlisten = \"127.0.0.1:9\"\n[dashboard]\nlisten = \"127.0.0.1:{port}\"\nrequire_login = true\n",
            dir.display()
        ),
    )
    .unwrap();
    let dashboard = Proc::start(
        clean_env(Command::new(DASHBOARD).arg("--config").arg(&config)).env("NORDIQ_API_KEY", KEY),
        &dir.join("dashboard.log"),
    );
    dashboard.wait_port(port);
    let http = Http::new(port, None);
    // "STATUS body", and the Set-Cookie header for the login.
    let get = |path: &str, cookie: &str| {
        let headers: Vec<(&str, &str)> = if cookie.is_empty() {
            Vec::new()
        } else {
            vec![("cookie", cookie)]
        };
        let a = http.request("GET", path, &headers, "");
        format!("{} {}", a.status.as_u16(), a.text())
    };
    assert!(
        get("/", "").starts_with("303"),
        "the page redirects to /login"
    );
    assert!(get("/api/status", "").starts_with("401"));
    assert!(get("/api/status", "nordiq_session=forged").starts_with("401"));
    assert!(get("/login", "").contains("API key"));
    assert!(
        get("/health", "").starts_with("200"),
        "health needs no session"
    );
    let login = |key: &str| {
        http.request(
            "POST",
            "/login",
            &[("content-type", "application/x-www-form-urlencoded")],
            format!("key={key}"),
        )
    };
    assert_eq!(login("wrong-key").status, 401);
    let ok = login(KEY);
    assert_eq!(ok.status, 303, "{}", ok.text());
    let cookie_line = ok
        .headers
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .expect("a session cookie");
    assert!(cookie_line.contains("HttpOnly") && cookie_line.contains("SameSite=Strict"));
    let cookie = cookie_line.split(';').next().unwrap().trim().to_string();
    assert!(get("/", &cookie).starts_with("200"));
    // With a session the API call goes through (and fails only because no daemon runs).
    assert!(get("/api/status", &cookie).starts_with("502"));
}

#[test]
fn over_https_the_session_cookie_is_secure() {
    let dir = TempDir::new("dash-tls");
    let port = free_port();
    let ca = nordiq_testkit::pki::Authority::new(&dir, "dash");
    let cert = ca.server(&dir, "dash-server");
    let config = dir.join("nordiq.toml");
    std::fs::write(
        &config,
        format!(
            "[paths]\nstate_dir = \"{}\"\n[server]\nlisten = \"127.0.0.1:9\"\n[dashboard]\nlisten = \"127.0.0.1:{port}\"\nrequire_login = true\n\
             [tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\nca_file = \"{}\"\n",
            dir.display(),
            cert.cert_file.display(),
            cert.key_file.display(),
            ca.cert_file.display()
        ),
    )
    .unwrap();
    let dashboard = Proc::start(
        clean_env(Command::new(DASHBOARD).arg("--config").arg(&config)).env("NORDIQ_API_KEY", KEY),
        &dir.join("dashboard.log"),
    );
    let tls = nordiq_runtime::tls::ClientTls {
        ca_file: Some(ca.cert_file.clone()),
        identity: None,
    };
    let https = Http::from_client(
        nordiq_runtime::client::ApiClient::with_tls(
            &format!("https://127.0.0.1:{port}"),
            None,
            &tls,
        )
        .unwrap(),
    );
    dashboard.wait_healthy_via(&https);
    assert!(
        Http::new(port, None).try_get("/health").is_err(),
        "plain HTTP answered on the HTTPS port"
    );
    let ok = https.request(
        "POST",
        "/login",
        &[("content-type", "application/x-www-form-urlencoded")],
        format!("key={KEY}"),
    );
    assert_eq!(ok.status, 303, "{}", ok.text());
    let cookie = ok
        .headers
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    assert!(cookie.contains("; Secure"), "{cookie}");
}
