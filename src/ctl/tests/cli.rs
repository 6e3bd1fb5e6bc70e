//! `nordiqctl` as an operator runs it.

use nordiq_testkit::{clean_env, TempDir};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_nordiqctl");

fn tmpdir(name: &str) -> TempDir {
    TempDir::new(&format!("ctl-{name}"))
}

fn ctl(dir: &Path, args: &[&str]) -> (i32, String) {
    nordiq_testkit::run(clean_env(Command::new(BIN).current_dir(dir).args(args)))
}

#[test]
fn keygen_writes_a_private_key_and_never_touches_env_files() {
    let dir = tmpdir("keygen");
    std::fs::write(dir.join(".env"), "OTHER=1\n").unwrap();
    let key_path = dir.join("etc").join("api-key");
    let (code, out) = ctl(
        &dir,
        &["--dev", "keygen", "--path", key_path.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{out}");
    let key = std::fs::read_to_string(&key_path).unwrap();
    assert_eq!(key.trim().len(), 64);
    assert!(!out.contains(key.trim()), "the key is not printed");
    assert_eq!(
        std::fs::metadata(&key_path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        std::fs::read_to_string(dir.join(".env")).unwrap(),
        "OTHER=1\n"
    );

    let (code, out) = ctl(
        &dir,
        &["--dev", "keygen", "--path", key_path.to_str().unwrap()],
    );
    assert_eq!(code, 64, "{out}");
    assert!(out.contains("--force"), "{out}");
    assert_eq!(
        std::fs::read_to_string(&key_path).unwrap(),
        key,
        "not overwritten"
    );

    let (code, _) = ctl(
        &dir,
        &[
            "--dev",
            "keygen",
            "--path",
            key_path.to_str().unwrap(),
            "--force",
        ],
    );
    assert_eq!(code, 0);
    assert_ne!(std::fs::read_to_string(&key_path).unwrap(), key);

    // The dev default key file is ./.nordiq_key.
    let (code, out) = ctl(&dir, &["--dev", "keygen"]);
    assert_eq!(code, 0, "{out}");
    assert!(dir.join(".nordiq_key").exists());
}

#[test]
fn named_keys_with_scopes_are_made_listed_and_revoked() {
    let dir = tmpdir("named-keys");
    let (code, out) = ctl(
        &dir,
        &["--dev", "keygen", "--name", "grafana", "--scope", "read"],
    );
    assert_eq!(code, 0, "{out}");
    // The key is the one line on stdout; the file holds only its SHA-256.
    let key = out
        .lines()
        .find(|l| l.len() == 64 && l.chars().all(|c| c.is_ascii_hexdigit()))
        .unwrap_or_else(|| panic!("no key printed: {out}"))
        .to_string();
    let file = dir.join(".nordiq_keys.toml");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(!text.contains(&key) && text.contains("grafana"), "{text}");
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let named = nordiq_runtime::keyring::read_keys_file(&file).unwrap();
    let ring = nordiq_runtime::keyring::Keyring::new(None, named, &file);
    let found = ring
        .find(key.as_bytes())
        .expect("the printed key is in the file");
    assert_eq!(found.scopes.to_string(), "read");

    for (args, expect) in [
        (
            &["keygen", "--name", "grafana", "--scope", "read"][..],
            "--force",
        ),
        (
            &["keygen", "--name", "x", "--scope", "root"][..],
            "unknown scope",
        ),
        (
            &["keygen", "--name", "a b", "--scope", "read"][..],
            "not a usable key name",
        ),
        (&["keygen", "--name", "x"][..], "--scope"),
    ] {
        let mut all = vec!["--dev"];
        all.extend_from_slice(args);
        let (code, out) = ctl(&dir, &all);
        assert_eq!(code, 64, "{args:?}: {out}");
        assert!(out.contains(expect), "{args:?}: {out}");
    }
    let (code, out) = ctl(
        &dir,
        &[
            "--dev",
            "keygen",
            "--name",
            "feeder",
            "--scope",
            "ingest,read",
        ],
    );
    assert_eq!(code, 0, "{out}");
    let (code, out) = ctl(&dir, &["--dev", "keys", "--json"]);
    assert_eq!(code, 0, "{out}");
    let listed: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(listed[1]["name"], "feeder");
    assert_eq!(listed[1]["scopes"], serde_json::json!(["read", "ingest"]));
    assert!(!out.contains(&key));
    let (code, out) = ctl(&dir, &["--dev", "keys", "revoke", "grafana"]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = ctl(&dir, &["--dev", "keys", "revoke", "grafana"]);
    assert_eq!(code, 65, "{out}");
    let (_, out) = ctl(&dir, &["--dev", "keys"]);
    assert!(out.contains("feeder") && !out.contains("grafana"), "{out}");
}

#[test]
fn status_against_a_dead_daemon_exits_unavailable() {
    let dir = tmpdir("status");
    let (code, out) = ctl(&dir, &["--dev", "--url", "http://127.0.0.1:9", "status"]);
    assert_eq!(code, 69, "{out}");
    assert!(out.contains("cannot reach"), "{out}");
    let (code, _) = ctl(&dir, &["--bogus"]);
    assert_eq!(code, 64);
}
