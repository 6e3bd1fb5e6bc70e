//! Scoped keys through the real daemon, route by route: every route refuses a key without
//! its scope (403), answers a key with it, refuses no key and unknown keys (401); the
//! single key of `[auth]` keeps every scope; admin actions are journalled with the key's
//! name, never the key; a revoked key stops working at SIGHUP.

mod common;

use common::*;
use nordiq_runtime::keyring::{add_key, revoke_key, Scope, Scopes};
use nordiq_testkit::Answer;

/// Every route of the API with the scope it needs (docs/security.md has the same table).
const ROUTES: &[(&str, &str, Scope)] = &[
    ("GET", "/status", Scope::Read),
    ("GET", "/predictions/current", Scope::Read),
    ("GET", "/predictions/web1", Scope::Read),
    ("GET", "/alerts/active", Scope::Read),
    ("GET", "/explain/web1", Scope::Read),
    ("GET", "/historical?since=2026-01-01T00:00:00Z", Scope::Read),
    ("GET", "/historical/web1", Scope::Read),
    ("GET", "/metrics", Scope::Read),
    ("POST", "/feed/data", Scope::Ingest),
    ("POST", "/api/v1/write", Scope::Ingest),
    ("POST", "/admin/refresh", Scope::Admin),
    ("GET", "/admin/models", Scope::Admin),
    ("GET", "/admin/model-info", Scope::Admin),
    (
        "POST",
        "/admin/reload-model?model_path=no-such-model",
        Scope::Admin,
    ),
    ("POST", "/admin/trigger-training?epochs=1", Scope::Admin),
    ("GET", "/admin/training-status", Scope::Admin),
    ("POST", "/admin/cancel-training", Scope::Admin),
    ("GET", "/admin/training-stats", Scope::Admin),
];

fn body_for(path: &str) -> (&'static str, &'static [u8]) {
    if path.starts_with("/feed") {
        ("application/json", b"{\"records\":[]}")
    } else if path.starts_with("/api/v1/write") {
        ("application/x-protobuf", b"")
    } else {
        ("application/json", b"")
    }
}

fn call(client: &Client, method: &str, path: &str) -> Answer {
    let (content_type, body) = body_for(path);
    client.request(
        method,
        path,
        &[("content-type", content_type)],
        body.to_vec(),
    )
}

#[test]
fn every_route_refuses_a_key_without_its_scope() {
    let dir = TempDir::new("scopes");
    let port = free_port();
    let keys_file = dir.join("api-keys.toml");
    let config = write_config(dir.path(), port, "[prometheus]\nrequire_key = true\n");
    // Into write_config's [auth] table.
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "[auth]\n",
        &format!("[auth]\nkeys_file = \"{}\"\n", keys_file.display()),
    );
    std::fs::write(&config, text).unwrap();
    let now = "2026-12-02T00:00:00Z";
    let key_for = |scope: Scope| {
        add_key(
            &keys_file,
            scope.name(),
            Scopes::parse([scope.name()]).unwrap(),
            None,
            false,
            now,
        )
        .unwrap()
    };
    let scoped: Vec<(Scope, String)> = Scope::ALL.into_iter().map(|s| (s, key_for(s))).collect();
    let daemon = Daemon::start(dir.path(), &config, port, &[("NORDIQ_API_KEY", KEY)]);

    let none = daemon.client(None);
    let unknown = daemon.client(Some("not-a-key-0123456789abcdef"));
    let single = daemon.client(Some(KEY));
    assert_eq!(none.get("/health").status, 200, "/health needs no key");
    let mut checked = 0;
    for (method, path, needs) in ROUTES {
        for client in [&none, &unknown] {
            let a = call(client, method, path);
            assert_eq!(
                a.status,
                401,
                "{method} {path} without a valid key: {}",
                a.text()
            );
        }
        for (scope, secret) in &scoped {
            let a = call(&daemon.client(Some(secret)), method, path);
            if scope == needs {
                assert!(
                    a.status != 401 && a.status != 403,
                    "{method} {path} refused its own scope `{}`: {} {}",
                    scope.name(),
                    a.status,
                    a.text()
                );
            } else {
                assert_eq!(
                    a.status,
                    403,
                    "{method} {path} let a `{}` key through (needs `{}`): {}",
                    scope.name(),
                    needs.name(),
                    a.text()
                );
                let text = a.text();
                assert!(
                    text.contains(needs.name()) && text.contains(scope.name()),
                    "the refusal names the key and the scope it lacks: {text}"
                );
            }
            checked += 1;
        }
        let a = call(&single, method, path);
        assert!(
            a.status != 401 && a.status != 403,
            "{method} {path}: the single key has every scope: {} {}",
            a.status,
            a.text()
        );
    }
    assert_eq!(checked, ROUTES.len() * 3);

    // Admin actions are journalled with the key's name; no secret reaches the log.
    let log = daemon.log_text();
    assert!(
        log.contains("admin request") && log.contains("admin") && log.contains("/admin/refresh"),
        "admin actions journalled: {log}"
    );
    for (_, secret) in &scoped {
        assert!(!log.contains(secret.as_str()), "a key reached the log");
    }
    assert!(!log.contains(KEY), "the single key reached the log");

    // Revoked at SIGHUP: the ingest key stops working, the others do not.
    assert!(revoke_key(&keys_file, "ingest").unwrap());
    daemon.signal(libc::SIGHUP);
    let ingest = daemon.client(Some(&scoped[1].1));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while call(&ingest, "POST", "/feed/data").status != 401 {
        assert!(
            std::time::Instant::now() < deadline,
            "a revoked key still works after SIGHUP"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(
        call(&daemon.client(Some(&scoped[0].1)), "GET", "/status").status,
        200
    );
}
