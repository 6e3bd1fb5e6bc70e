//! HTTPS on the real daemon, with certificates the test makes: the handshake with a client
//! that trusts the CA, refusals for one that does not and for plain HTTP, client
//! certificates (mutual TLS), a new certificate at SIGHUP, systemd credentials over the
//! config's paths, and nordiqctl reaching the daemon over HTTPS.

mod common;

use common::*;
use nordiq_runtime::client::ApiClient;
use nordiq_runtime::tls::ClientTls;
use nordiq_testkit::pki::{Authority, Issued};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn https(port: u16, ca: Option<&Path>, identity: Option<&Issued>) -> Client {
    let tls = ClientTls {
        ca_file: ca.map(Path::to_path_buf),
        identity: identity.map(|i| (i.cert_file.clone(), i.key_file.clone())),
    };
    let client = ApiClient::with_tls(&format!("https://127.0.0.1:{port}"), Some(KEY.into()), &tls)
        .expect("a TLS client");
    Client::from_client(client).with_timeout(Duration::from_secs(10))
}

fn tls_config(dir: &Path, port: u16, tls: &str) -> std::path::PathBuf {
    write_config(dir, port, &format!("[tls]\n{tls}"))
}

fn start(dir: &Path, config: &Path, port: u16, probe: &Client, env: &[(&str, &str)]) -> Daemon {
    let mut cmd = Command::new(BIN);
    clean_env(cmd.arg("--config").arg(config));
    cmd.env("NORDIQ_API_KEY", KEY);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let daemon = Daemon {
        proc: Proc::start(&mut cmd, &dir.join(format!("daemon-{port}.log"))),
        port,
    };
    daemon.proc.wait_healthy_via(probe);
    daemon
}

#[test]
fn https_with_the_right_ca_and_refusals_without_it() {
    let dir = TempDir::new("tls");
    let ca = Authority::new(dir.path(), "one");
    let server = ca.server(dir.path(), "server");
    let port = free_port();
    let config = tls_config(
        dir.path(),
        port,
        &format!(
            "cert_file = \"{}\"\nkey_file = \"{}\"\nca_file = \"{}\"\n",
            server.cert_file.display(),
            server.key_file.display(),
            ca.cert_file.display()
        ),
    );
    let trusted = https(port, Some(&ca.cert_file), None);
    let mut daemon = start(dir.path(), &config, port, &trusted, &[]);
    assert_eq!(trusted.get("/status").status, 200);

    // A client that does not trust the CA: the handshake fails, no request is made.
    let stranger = https(port, None, None);
    let err = stranger
        .try_get("/health")
        .expect_err("an untrusted certificate");
    assert!(err.to_lowercase().contains("certificate"), "{err}");
    let other = Authority::new(dir.path(), "other");
    let err = https(port, Some(&other.cert_file), None)
        .try_get("/health")
        .expect_err("signed by another CA");
    assert!(err.to_lowercase().contains("certificate"), "{err}");
    // Plain HTTP to the HTTPS port gets no HTTP answer.
    let plain = Client::new(port, Some(KEY)).with_timeout(Duration::from_secs(5));
    assert!(plain.try_get("/health").is_err(), "plain HTTP answered");

    // nordiqctl reaches it over HTTPS with the config's tls.ca_file.
    let ctl = nordiq_testkit::sibling(BIN, "nordiqctl");
    let (code, out) = nordiq_testkit::run(
        clean_env(Command::new(ctl).arg("--config").arg(&config).arg("alerts"))
            .env("NORDIQ_API_KEY", KEY),
    );
    assert_eq!(code, 0, "nordiqctl over HTTPS: {out}");

    // SIGHUP with a certificate from a new CA: new connections get it.
    let ca2 = Authority::new(dir.path(), "two");
    let server2 = ca2.server(dir.path(), "server2");
    std::fs::copy(&server2.cert_file, &server.cert_file).unwrap();
    std::fs::copy(&server2.key_file, &server.key_file).unwrap();
    daemon.signal(libc::SIGHUP);
    let renewed = https(port, Some(&ca2.cert_file), None);
    let deadline = Instant::now() + Duration::from_secs(20);
    while renewed.try_get("/health").is_err() {
        assert!(
            Instant::now() < deadline,
            "the new certificate is not served after SIGHUP"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        https(port, Some(&ca.cert_file), None)
            .try_get("/health")
            .is_err(),
        "the old certificate is still served"
    );
    // A broken certificate at SIGHUP is refused; the running one stays.
    std::fs::write(&server.cert_file, "not a certificate").unwrap();
    daemon.signal(libc::SIGHUP);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(renewed.get("/health").status, 200);
    assert!(
        daemon.log_text().contains("TLS certificate was refused"),
        "{}",
        daemon.log_text()
    );
    assert!(
        daemon.wait_exit(Duration::from_secs(1)).is_none(),
        "still running"
    );
}

#[test]
fn client_certificates_when_the_daemon_requires_them() {
    let dir = TempDir::new("mtls");
    let ca = Authority::new(dir.path(), "server");
    let server = ca.server(dir.path(), "server");
    let client_ca = Authority::new(dir.path(), "clients");
    let good = client_ca.client(dir.path(), "grafana");
    let rogue = Authority::new(dir.path(), "rogue").client(dir.path(), "rogue");
    let port = free_port();
    let config = tls_config(
        dir.path(),
        port,
        &format!(
            "cert_file = \"{}\"\nkey_file = \"{}\"\nclient_ca_file = \"{}\"\n",
            server.cert_file.display(),
            server.key_file.display(),
            client_ca.cert_file.display()
        ),
    );
    let with_cert = https(port, Some(&ca.cert_file), Some(&good));
    let _daemon = start(dir.path(), &config, port, &with_cert, &[]);
    assert_eq!(with_cert.get("/status").status, 200);
    // The key is still checked: a client certificate is not a key.
    let tls = ClientTls {
        ca_file: Some(ca.cert_file.clone()),
        identity: Some((good.cert_file.clone(), good.key_file.clone())),
    };
    let no_key = Client::from_client(
        ApiClient::with_tls(&format!("https://127.0.0.1:{port}"), None, &tls).unwrap(),
    );
    assert_eq!(no_key.get("/status").status, 401);
    for (name, client) in [
        (
            "no client certificate",
            https(port, Some(&ca.cert_file), None),
        ),
        (
            "a certificate from another CA",
            https(port, Some(&ca.cert_file), Some(&rogue)),
        ),
    ] {
        assert!(client.try_get("/health").is_err(), "{name} was let in");
    }
}

#[test]
fn systemd_credentials_take_precedence_over_the_config_paths() {
    let dir = TempDir::new("tls-cred");
    let ca = Authority::new(dir.path(), "cred");
    let creds = dir.join("credentials");
    std::fs::create_dir_all(&creds).unwrap();
    let issued = ca.server(&creds, "issued");
    std::fs::rename(&issued.cert_file, creds.join("tls-cert")).unwrap();
    std::fs::rename(&issued.key_file, creds.join("tls-key")).unwrap();
    // The config names files that do not exist: only the credentials can serve.
    let port = free_port();
    let config = tls_config(
        dir.path(),
        port,
        "cert_file = \"/nonexistent/cert.pem\"\nkey_file = \"/nonexistent/key.pem\"\n",
    );
    let client = https(port, Some(&ca.cert_file), None);
    let _daemon = start(
        dir.path(),
        &config,
        port,
        &client,
        &[("CREDENTIALS_DIRECTORY", creds.to_str().unwrap())],
    );
    assert_eq!(client.get("/status").status, 200);

    // Without them the missing files stop the start with exit 78, naming the file.
    let (code, out) = nordiq_testkit::run(
        clean_env(Command::new(BIN).arg("--config").arg(&config)).env("NORDIQ_API_KEY", KEY),
    );
    assert_eq!(code, 78, "{out}");
    assert!(out.contains("/nonexistent/cert.pem"), "{out}");
}
