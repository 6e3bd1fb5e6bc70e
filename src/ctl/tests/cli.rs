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
fn status_against_a_dead_daemon_exits_unavailable() {
    let dir = tmpdir("status");
    let (code, out) = ctl(&dir, &["--dev", "--url", "http://127.0.0.1:9", "status"]);
    assert_eq!(code, 69, "{out}");
    assert!(out.contains("cannot reach"), "{out}");
    let (code, _) = ctl(&dir, &["--bogus"]);
    assert_eq!(code, 64);
}
