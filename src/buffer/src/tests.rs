use super::*;
use nordiq_core::config::BufferConfig;

fn tmp(name: &str) -> nordiq_testkit::TempDir {
    let dir = nordiq_testkit::TempDir::new(&format!("buffer-{name}"));
    dir
}

fn metrics() -> Vec<String> {
    vec!["cpu".into(), "mem".into()]
}

fn sample(server: &str, ts: i64, v: f32) -> Sample {
    Sample {
        timestamp_ms: ts,
        server: server.into(),
        profile: "generic".into(),
        values: vec![v, v * 2.0],
    }
}

fn all(root: &Path) -> Vec<Sample> {
    let mut out = Vec::new();
    read_range(root, &metrics(), i64::MIN, i64::MAX, &mut |s| out.push(s)).unwrap();
    out.sort_by(|a, b| {
        (a.server.as_str(), a.timestamp_ms).cmp(&(b.server.as_str(), b.timestamp_ms))
    });
    out
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}

const DAY: i64 = 86_400_000;
const T0: i64 = 1_795_000_000_000 - 1_795_000_000_000 % DAY; // a midnight

#[test]
fn appends_survive_reopen_and_roll_into_day_partitions() {
    let root = tmp("reopen");
    let (buffer, report) = Buffer::open(&root, &metrics(), BufferConfig::default()).unwrap();
    assert_eq!(report.segments_recovered, 0);
    // Two days in one batch; a second batch.
    let batch = [
        sample("a", T0 - 1000, 1.0),
        sample("a", T0 + 1000, 2.0),
        sample("b", T0 + 2000, 3.0),
    ];
    block_on(buffer.append(batch.iter())).unwrap();
    block_on(buffer.append([sample("b", T0 + 3000, 4.0)].iter())).unwrap();
    // Visible while still only in the log.
    assert_eq!(all(&root).len(), 4);
    // Simulate a crash: forget the buffer without closing (threads keep running, but the
    // log segment stays un-rolled).
    std::mem::forget(buffer);
    let (buffer, report) = Buffer::open(&root, &metrics(), BufferConfig::default()).unwrap();
    assert_eq!(report.segments_recovered, 1);
    assert_eq!(report.samples_recovered, 4);
    let parts = layout::partitions(&root).unwrap();
    assert_eq!(parts.len(), 2, "{parts:?}");
    let got = all(&root);
    assert_eq!(got.len(), 4, "exactly once after recovery");
    assert_eq!(got[3].values, vec![4.0, 8.0]);
    buffer.close();
}

#[test]
fn rolling_is_idempotent_per_segment_and_day() {
    let root = tmp("idempotent");
    let (buffer, _) = Buffer::open(&root, &metrics(), BufferConfig::default()).unwrap();
    let batch = [sample("a", T0 - 1000, 1.0), sample("a", T0 + 1000, 2.0)];
    block_on(buffer.append(batch.iter())).unwrap();
    std::mem::forget(buffer);
    // Crash mid-roll: one day's part exists, the log is still there.
    let seq = wal::list_segments(&root.join("wal")).unwrap()[0];
    let contents = wal::read_segment(&root.join("wal").join(wal::segment_name(seq))).unwrap();
    let mut first_day: Vec<Sample> = contents
        .samples
        .into_iter()
        .filter(|s| s.timestamp_ms < T0)
        .collect();
    let part = layout::partition_dir(&root, layout::day_of(T0 - 1000)).join(layout::part_name(seq));
    parquet_io::write_samples(&part, &metrics(), &mut first_day).unwrap();
    assert_eq!(
        all(&root).len(),
        2,
        "a reader skips the rolled day of the log"
    );
    let (buffer, _) = Buffer::open(&root, &metrics(), BufferConfig::default()).unwrap();
    assert_eq!(all(&root).len(), 2);
    buffer.close();
}

#[test]
fn flush_stats_retention_and_export() {
    let root = tmp("stats");
    let settings = BufferConfig {
        retention_days: 3,
        min_train_records: 5,
        min_train_days: 1,
        ..BufferConfig::default()
    };
    let (buffer, _) = Buffer::open(&root, &metrics(), settings.clone()).unwrap();
    let now = nordiq_core::timefmt::now_ms();
    let today = now - now.rem_euclid(DAY);
    let mut batch = Vec::new();
    for d in 0..6 {
        for h in 0..4 {
            batch.push(sample("a", today - d * DAY + h * 3_600_000, d as f32));
            batch.push(sample("b", today - d * DAY + h * 3_600_000, d as f32));
        }
    }
    block_on(buffer.append(batch.iter())).unwrap();
    buffer.flush().unwrap();
    assert!(wal::list_segments(&root.join("wal")).unwrap().len() <= 1);
    let stats = buffer.stats().unwrap();
    assert_eq!(
        stats.records,
        48,
        "{stats:?} {:?}",
        layout::partitions(&root).unwrap()
    );
    assert_eq!(stats.partitions, 6);
    assert_eq!(stats.records_per_server["a"], 24);
    assert!(stats.readiness.ready, "{:?}", stats.readiness);
    assert!(stats.disk_bytes > 0);

    // Export the last 2 full days: today excluded.
    let out = root.join("export.parquet");
    let report = export::export(&root, &metrics(), 2, false, now, &out).unwrap();
    assert_eq!((report.rows, report.days, report.servers), (16, 2, 2));
    let mut exported = Vec::new();
    parquet_io::read_samples(&out, &metrics(), i64::MIN, i64::MAX, &mut |s| {
        exported.push(s)
    })
    .unwrap();
    assert!(exported
        .iter()
        .all(|s| s.timestamp_ms < today && s.timestamp_ms >= today - 2 * DAY));
    let with_today = export::export(&root, &metrics(), 2, true, now, &out).unwrap();
    assert_eq!(with_today.rows, 24);

    // Retention of 3 days keeps today and the two before.
    let removed = buffer.apply_retention().unwrap();
    assert_eq!(removed.removed_days.len(), 3);
    assert_eq!(buffer.stats().unwrap().records, 24);
    // A disk cap removes the oldest remaining days, never today.
    buffer.set_settings(BufferConfig {
        max_disk_bytes: 1,
        ..settings
    });
    buffer.apply_retention().unwrap();
    let parts = layout::partitions(&root).unwrap();
    assert_eq!(parts.len(), 1);
    assert_eq!(parts[0].day, layout::day_of(today));
    buffer.close();
}

#[test]
fn concurrent_appends_share_commits() {
    let root = tmp("group");
    let (buffer, _) = Buffer::open(&root, &metrics(), BufferConfig::default()).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    rt.block_on(async {
        let mut tasks = Vec::new();
        for t in 0..8 {
            let buffer = buffer.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..50 {
                    let s = sample(&format!("s{t}"), T0 + i * 1000, i as f32);
                    buffer.append([s].iter()).await.unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
    assert_eq!(all(&root).len(), 400);
    buffer.close();
    assert_eq!(
        all(&root).len(),
        400,
        "closing rolls the log into Parquet without loss"
    );
    assert!(wal::list_segments(&root.join("wal")).unwrap().is_empty());
}

#[test]
fn readiness_counts_what_is_still_in_the_log() {
    let root = tmp("readiness");
    let settings = BufferConfig {
        min_train_records: 4,
        min_train_days: 1,
        ..BufferConfig::default()
    };
    let (buffer, _) = Buffer::open(&root, &metrics(), settings).unwrap();
    let stats = buffer.stats().unwrap();
    assert!(!stats.readiness.ready, "{stats:?}");
    // Four samples over two days, all still in the log: ready, and counted as such.
    let batch = [
        sample("a", T0 - DAY, 1.0),
        sample("a", T0, 2.0),
        sample("b", T0 + 1000, 3.0),
        sample("b", T0 + DAY, 4.0),
    ];
    block_on(buffer.append(batch.iter())).unwrap();
    let stats = buffer.stats().unwrap();
    assert_eq!((stats.records, stats.log_records), (0, 4), "{stats:?}");
    assert!(stats.readiness.ready, "{}", stats.readiness.reason);
    // Asked again (the segment unchanged: from the cache) and after a roll (in Parquet).
    assert_eq!(buffer.stats().unwrap().log_records, 4);
    buffer.flush().unwrap();
    let stats = buffer.stats().unwrap();
    assert_eq!(stats.records, 4, "{stats:?}");
    assert!(stats.readiness.ready);
    // Too few anywhere: not ready, and the reason says what is missing.
    let small = tmp("readiness-small");
    let (buffer, _) = Buffer::open(
        &small,
        &metrics(),
        BufferConfig {
            min_train_records: 100,
            ..BufferConfig::default()
        },
    )
    .unwrap();
    block_on(buffer.append(batch.iter())).unwrap();
    let stats = buffer.stats().unwrap();
    assert!(!stats.readiness.ready);
    assert!(
        stats.readiness.reason.contains("have 4 over 2.0 days"),
        "{}",
        stats.readiness.reason
    );
}
