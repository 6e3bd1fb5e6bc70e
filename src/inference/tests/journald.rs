//! Native journald logging: when `JOURNAL_STREAM` names stderr, the daemon sends structured
//! entries (MESSAGE, PRIORITY, SYSLOG_IDENTIFIER, fields) to the journal socket instead of
//! printing. The test is the journal: it binds a datagram socket and, in a private mount
//! namespace, mounts it over /run/systemd/journal for the daemon alone.

mod common;

use common::*;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixDatagram;
use std::process::Command;
use std::time::{Duration, Instant};

/// Parses one native-protocol datagram into (key, value) pairs.
fn parse_entry(data: &[u8]) -> Vec<(String, String)> {
    let mut fields = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let line_end = rest.iter().position(|b| *b == b'\n').unwrap_or(rest.len());
        let line = &rest[..line_end];
        if let Some(eq) = line.iter().position(|b| *b == b'=') {
            fields.push((
                String::from_utf8_lossy(&line[..eq]).into_owned(),
                String::from_utf8_lossy(&line[eq + 1..]).into_owned(),
            ));
            rest = &rest[(line_end + 1).min(rest.len())..];
        } else {
            // KEY\n<u64 LE length><value>\n
            let key = String::from_utf8_lossy(line).into_owned();
            let after = &rest[line_end + 1..];
            let len = u64::from_le_bytes(after[..8].try_into().unwrap()) as usize;
            let value = String::from_utf8_lossy(&after[8..8 + len]).into_owned();
            fields.push((key, value));
            rest = &after[(8 + len + 1).min(after.len())..];
        }
    }
    fields
}

#[test]
fn logs_go_to_the_journal_with_structured_fields() {
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "this test mounts in a private namespace and needs root (CI runs as root)"
    );
    let dir = TempDir::new("journald");
    let journal_dir = dir.path().join("journal");
    std::fs::create_dir_all(&journal_dir).unwrap();
    let journal = UnixDatagram::bind(journal_dir.join("socket")).expect("bind fake journal");
    journal
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();

    let port = free_port();
    let config = write_config(dir.path(), port, "");
    let stderr_path = dir.path().join("stderr.log");
    let stderr_file = std::fs::File::create(&stderr_path).unwrap();
    let meta = stderr_file.metadata().unwrap();
    let script = format!(
        "mount -t tmpfs tmpfs /run && mkdir -p /run/systemd/journal && mount --bind {} /run/systemd/journal && exec {BIN} --config {}",
        journal_dir.display(),
        config.display()
    );
    let mut cmd = Command::new("unshare");
    clean_env(&mut cmd);
    cmd.args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .env("NORDIQ_API_KEY", KEY)
        .env("JOURNAL_STREAM", format!("{}:{}", meta.dev(), meta.ino()));
    // The same file (same inode) that JOURNAL_STREAM names.
    let daemon = Daemon {
        proc: Proc::start(&mut cmd, &stderr_path),
        port,
    };
    daemon.wait_healthy();

    let mut entries = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = vec![0u8; 65536];
    while Instant::now() < deadline {
        if let Ok(n) = journal.recv(&mut buf) {
            let entry = parse_entry(&buf[..n]);
            let ready = entry.iter().any(|(k, v)| k == "MESSAGE" && v == "ready");
            entries.push(entry);
            if ready {
                break;
            }
        }
    }
    let ready = entries
        .iter()
        .find(|e| e.iter().any(|(k, v)| k == "MESSAGE" && v == "ready"))
        .unwrap_or_else(|| {
            panic!(
                "no `ready` entry in the journal; got {entries:?}; stderr: {}",
                daemon.log_text()
            )
        });
    let field = |name: &str| {
        ready
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(
        field("PRIORITY"),
        Some("6"),
        "info is priority 6: {ready:?}"
    );
    assert_eq!(field("SYSLOG_IDENTIFIER"), Some("nordiq-inference"));
    assert_eq!(
        field("MODEL"),
        Some("baseline:auto"),
        "structured fields: {ready:?}"
    );
    assert!(field("ADDRESS").is_some_and(|a| a.ends_with(&port.to_string())));
    // Nothing human-readable went to stderr: the journal got it all.
    assert!(
        !daemon.log_text().contains("ready"),
        "stderr: {}",
        daemon.log_text()
    );
}
