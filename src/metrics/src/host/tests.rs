use super::*;

#[test]
fn cpu_lines_become_percentages() {
    let a = parse_cpu("cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 1 2 3 4 5\n").unwrap();
    let b = parse_cpu("cpu  160 20 70 1000 70 5 5 0 0 0\n").unwrap();
    let [user, sys, iowait, idle] = cpu_percent(&a, &b).unwrap();
    // Δ: user+nice 80, system+irq+softirq 30, idle 200, iowait 20; total 330.
    assert!((user - 80.0 / 330.0 * 100.0).abs() < 1e-9);
    assert!((sys - 30.0 / 330.0 * 100.0).abs() < 1e-9);
    assert!((iowait - 20.0 / 330.0 * 100.0).abs() < 1e-9);
    assert!((idle - 200.0 / 330.0 * 100.0).abs() < 1e-9);
    assert!(cpu_percent(&b, &b).is_none());
    assert!(parse_cpu("intr 1 2 3\n").is_none());
}

#[test]
fn meminfo_gives_used_memory_and_swap() {
    let text = "MemTotal:       16000000 kB\nMemFree:         1000000 kB\nMemAvailable:    4000000 kB\nSwapTotal:       2000000 kB\nSwapFree:        1500000 kB\n";
    let (mem, swap) = parse_meminfo(text).unwrap();
    assert!((mem - 75.0).abs() < 1e-9 && (swap - 25.0).abs() < 1e-9);
    let no_swap = "MemTotal: 100 kB\nMemAvailable: 50 kB\nSwapTotal: 0 kB\nSwapFree: 0 kB\n";
    assert_eq!(parse_meminfo(no_swap), Some((50.0, 0.0)));
    assert!(parse_meminfo("MemTotal: 100 kB\n").is_none());
}

#[test]
fn net_dev_sums_every_interface_but_loopback() {
    let text = "Inter-|   Receive                                                |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    lo: 5000 10 0 0 0 0 0 0 5000 10 0 0 0 0 0 0\n  eth0: 1000 5 0 0 0 0 0 0 2000 6 0 0 0 0 0 0\n  eth1: 300 1 0 0 0 0 0 0 400 1 0 0 0 0 0 0\n";
    assert_eq!(parse_net_dev(text), Some((1300, 2400)));
}

#[test]
fn close_wait_is_counted_by_local_and_remote_port() {
    // 0x1F90 = 8080 local; 0x1538 = 5432 remote; state 08 = CLOSE_WAIT, 01 = ESTABLISHED.
    let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:1F90 0100007F:C350 08 00000000:00000000 00:00000000 00000000  1000        0 1 1 0000000000000000 20 4 30 10 -1\n   1: 0100007F:C351 0100007F:1538 08 00000000:00000000 00:00000000 00000000  1000        0 2 1 0000000000000000 20 4 30 10 -1\n   2: 0100007F:1F90 0100007F:C352 01 00000000:00000000 00:00000000 00000000  1000        0 3 1 0000000000000000 20 4 30 10 -1\n";
    assert_eq!(count_close_wait(table, &[8080], &[5432]), (1, 1));
    assert_eq!(count_close_wait(table, &[], &[]), (0, 0));
}

#[test]
fn pid_stat_survives_names_with_spaces_and_parentheses() {
    let stat =
        "1234 (java (x) y) S 1 1234 1234 0 -1 4194304 100 0 0 0 250 50 0 0 20 0 30 0 1000 0 0";
    assert_eq!(parse_pid_jiffies(stat), Some(300));
    assert_eq!(parse_pid_jiffies("garbage"), None);
}

/// The real /proc of this machine, with a CLOSE_WAIT socket on each side and a busy
/// process named `java`, read twice a second apart.
#[test]
fn this_host_reads_in_range_and_sees_close_wait_and_java() {
    use std::io::Read;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // Front: the peer closes, our accepted socket (local port = `port`) waits.
    let client = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let (front_side, _) = listener.accept().unwrap();
    drop(client);
    // Back: the server side closes, our connecting socket (remote port = `port`) waits.
    let back_side = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let (served, _) = listener.accept().unwrap();
    drop(served);
    let mut buf = [0u8; 1];
    let _ = (&back_side).read(&mut buf); // sees the FIN
    let dir = nordiq_testkit::TempDir::new("host");
    let java = dir.join("java");
    let _ = std::fs::remove_file(&java);
    std::os::unix::fs::symlink("/usr/bin/yes", &java).unwrap();
    let mut busy = std::process::Command::new(&java)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let config = HostConfig {
        server_name: "testhost".into(),
        front_ports: vec![port],
        back_ports: vec![port],
        ..HostConfig::default()
    };
    let t0 = nordiq_core::timefmt::now_ms();
    let mut reader = HostReader::new(Path::new("/proc"), &config, t0).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1000));
    let reading = reader.read(nordiq_core::timefmt::now_ms()).unwrap();
    let _ = busy.kill();
    let _ = busy.wait();
    drop((front_side, back_side));
    let _ = std::fs::remove_dir_all(&dir);
    let get = |name: &str| {
        reading
            .values
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
    };
    assert_eq!(reading.server, "testhost");
    assert_eq!(reading.values.len(), 14, "{:?}", reading.values);
    let cpu: f64 = [
        "cpu_user_pct",
        "cpu_sys_pct",
        "cpu_iowait_pct",
        "cpu_idle_pct",
    ]
    .iter()
    .map(|m| get(m).unwrap())
    .sum();
    assert!(
        (90.0..=100.0 + 1e-6).contains(&cpu),
        "cpu parts sum to {cpu}"
    );
    for m in [
        "mem_used_pct",
        "swap_used_pct",
        "disk_usage_pct",
        "java_cpu_pct",
    ] {
        assert!((0.0..=100.0).contains(&get(m).unwrap()), "{m}");
    }
    assert!(
        get("front_close_wait").unwrap() >= 1.0,
        "{:?}",
        reading.values
    );
    assert!(
        get("back_close_wait").unwrap() >= 1.0,
        "{:?}",
        reading.values
    );
    // `yes` spins one core; on any machine that is well above 1 % of all CPU time.
    assert!(
        get("java_cpu_pct").unwrap() > 1.0,
        "{:?}",
        get("java_cpu_pct")
    );
    assert!(get("uptime_days").unwrap() > 0.0 && get("load_average").unwrap() >= 0.0);
}
