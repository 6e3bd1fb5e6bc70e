//! The systemd units under systemd/ (and the NATS unit example under share/):
//! `systemd-analyze verify` is clean (unknown keys are errors) and every service scores an
//! exposure ≤ 2.0 in `systemd-analyze security`.
//! The units name /usr/bin binaries; verify wants them to exist, so the check runs on
//! copies pointing at the binaries this build made.

use std::path::{Path, PathBuf};
use std::process::Command;

const TRAIN: &str = env!("CARGO_BIN_EXE_nordiq-train");

fn units_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../systemd")
}

#[test]
fn units_verify_and_are_hardened() {
    let bin_dir = Path::new(TRAIN).parent().unwrap();
    let tmp = nordiq_testkit::TempDir::new("units");
    let mut units = Vec::new();
    let example = units_dir().join("../share/nordiq-nats.service");
    let paths = std::fs::read_dir(units_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .chain([example]);
    for path in paths {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let unit_kinds = [".service", ".socket", ".timer", ".target"];
        if !unit_kinds.iter().any(|k| name.ends_with(k)) {
            continue;
        }
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace("/usr/bin/", &format!("{}/", bin_dir.display()));
        std::fs::write(tmp.join(&name), text).unwrap();
        units.push(name);
    }
    for expected in [
        "nordiq.target",
        "nordiq-inference.socket",
        "nordiq-inference.service",
        "nordiq-dashboard.socket",
        "nordiq-dashboard.service",
        "nordiq-retrain.service",
        "nordiq-retrain.timer",
        "nordiq-metrics.service",
        "nordiq-nats.service",
    ] {
        assert!(units.iter().any(|u| u == expected), "{expected}: {units:?}");
    }
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg("--recursive-errors=no")
        .args(units.iter().map(|u| format!("./{u}")))
        .current_dir(&tmp)
        .output()
        .expect("systemd-analyze (Debian package systemd; scripts/ensure-deps.sh installs it)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.trim().is_empty(), "{stderr}");
    for unit in units.iter().filter(|u| u.ends_with(".service")) {
        let out = Command::new("systemd-analyze")
            .args(["security", "--offline=true", "--threshold=20"])
            .arg(format!("./{unit}"))
            .current_dir(&tmp)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{unit} is exposed above 2.0:\n{}",
            text.lines().last().unwrap_or_default()
        );
    }
}
