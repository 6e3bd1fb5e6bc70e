//! This host, read from /proc (and statvfs), mapped onto the default catalog:
//!
//! | metric | from |
//! |---|---|
//! | cpu_user_pct, cpu_sys_pct, cpu_iowait_pct, cpu_idle_pct | `/proc/stat` `cpu` line, change since the last reading: user+nice, system+irq+softirq, iowait, idle (steal counts as busy, in none of them) |
//! | java_cpu_pct | utime+stime of processes whose name (`/proc/PID/comm`) is in `sources.host.java_process_names`, as a share of all CPU time; 0 if none |
//! | mem_used_pct | `/proc/meminfo`: 100 × (MemTotal − MemAvailable) / MemTotal |
//! | swap_used_pct | `/proc/meminfo`: 100 × (SwapTotal − SwapFree) / SwapTotal; 0 without swap |
//! | disk_usage_pct | statvfs of `sources.host.disk_path`: used / (used + available to users), like `df` |
//! | net_in_mb_s, net_out_mb_s | `/proc/net/dev`, bytes of every interface but `lo`, change per second / 10⁶ |
//! | back_close_wait | `/proc/net/tcp` and `tcp6`: CLOSE_WAIT sockets whose remote port is in `back_ports` |
//! | front_close_wait | the same, local port in `front_ports` |
//! | load_average | `/proc/loadavg`, the 1-minute figure |
//! | uptime_days | `/proc/uptime` / 86,400 |

use crate::record::Reading;
use nordiq_core::config::HostConfig;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: unexpected format ({what})")]
    Format { path: PathBuf, what: String },
}

/// Jiffies of the aggregate `cpu` line.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CpuTimes {
    pub user: u64,
    pub system: u64,
    pub idle: u64,
    pub iowait: u64,
    /// Everything, steal and guest time included.
    pub total: u64,
}

pub fn parse_cpu(stat: &str) -> Option<CpuTimes> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let f: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    if f.len() < 5 {
        return None;
    }
    let at = |i: usize| f.get(i).copied().unwrap_or(0);
    // user nice system idle iowait irq softirq steal (guest is already inside user).
    Some(CpuTimes {
        user: at(0) + at(1),
        system: at(2) + at(5) + at(6),
        idle: at(3),
        iowait: at(4),
        total: (0..8).map(at).sum(),
    })
}

/// (user, system, iowait, idle) percent between two readings.
pub fn cpu_percent(before: &CpuTimes, after: &CpuTimes) -> Option<[f64; 4]> {
    let total = after.total.checked_sub(before.total)? as f64;
    if total <= 0.0 {
        return None;
    }
    let pct = |a: u64, b: u64| a.saturating_sub(b) as f64 / total * 100.0;
    Some([
        pct(after.user, before.user),
        pct(after.system, before.system),
        pct(after.iowait, before.iowait),
        pct(after.idle, before.idle),
    ])
}

/// (mem_used_pct, swap_used_pct).
pub fn parse_meminfo(text: &str) -> Option<(f64, f64)> {
    let field = |name: &str| -> Option<f64> {
        text.lines()
            .find(|l| l.starts_with(name) && l[name.len()..].starts_with(':'))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
    };
    let total = field("MemTotal")?;
    let available = field("MemAvailable")?;
    if total <= 0.0 {
        return None;
    }
    let swap_total = field("SwapTotal").unwrap_or(0.0);
    let swap_free = field("SwapFree").unwrap_or(0.0);
    let swap = if swap_total > 0.0 {
        (swap_total - swap_free) / swap_total * 100.0
    } else {
        0.0
    };
    Some(((total - available) / total * 100.0, swap))
}

/// Received and sent bytes of every interface but `lo`.
pub fn parse_net_dev(text: &str) -> Option<(u64, u64)> {
    let (mut rx, mut tx) = (0u64, 0u64);
    for line in text.lines().skip(2) {
        let (name, rest) = line.split_once(':')?;
        if name.trim() == "lo" {
            continue;
        }
        let f: Vec<u64> = rest
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        if f.len() < 9 {
            return None;
        }
        rx += f[0];
        tx += f[8];
    }
    Some((rx, tx))
}

/// (front, back) CLOSE_WAIT counts in a `/proc/net/tcp` or `tcp6` table.
pub fn count_close_wait(table: &str, front_ports: &[u16], back_ports: &[u16]) -> (usize, usize) {
    const CLOSE_WAIT: &str = "08";
    let port = |addr: &str| {
        addr.rsplit_once(':')
            .and_then(|(_, p)| u16::from_str_radix(p, 16).ok())
    };
    let (mut front, mut back) = (0, 0);
    for line in table.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 4 || f[3] != CLOSE_WAIT {
            continue;
        }
        if port(f[1]).is_some_and(|p| front_ports.contains(&p)) {
            front += 1;
        }
        if port(f[2]).is_some_and(|p| back_ports.contains(&p)) {
            back += 1;
        }
    }
    (front, back)
}

/// utime + stime from `/proc/PID/stat` (the name in parentheses may hold spaces).
pub fn parse_pid_jiffies(stat: &str) -> Option<u64> {
    let after = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = after.split_whitespace().collect();
    // After the name: state is field 3 of the whole line, utime 14, stime 15.
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

fn first_number(text: &str) -> Option<f64> {
    text.split_whitespace().next()?.parse().ok()
}

/// Reads this host; keeps the counters of the previous reading for rates.
pub struct HostReader {
    proc_root: PathBuf,
    config: HostConfig,
    server: String,
    previous: Option<Counters>,
}

#[derive(Debug, Clone)]
struct Counters {
    at_ms: i64,
    cpu: CpuTimes,
    net: (u64, u64),
    java: u64,
}

impl HostReader {
    /// `proc_root` is `/proc` except in tests. Takes a first reading of the counters, so
    /// the first [`read`](Self::read) has rates.
    pub fn new(
        proc_root: &Path,
        config: &HostConfig,
        now_ms: i64,
    ) -> Result<HostReader, HostError> {
        let server = if config.server_name.is_empty() {
            hostname()
        } else {
            config.server_name.clone()
        };
        let mut reader = HostReader {
            proc_root: proc_root.to_path_buf(),
            config: config.clone(),
            server,
            previous: None,
        };
        reader.previous = Some(reader.counters(now_ms)?);
        Ok(reader)
    }

    pub fn server(&self) -> &str {
        &self.server
    }

    fn read_file(&self, rel: &str) -> Result<String, HostError> {
        let path = self.proc_root.join(rel);
        std::fs::read_to_string(&path).map_err(|source| HostError::Read { path, source })
    }

    fn format(&self, rel: &str, what: &str) -> HostError {
        HostError::Format {
            path: self.proc_root.join(rel),
            what: what.into(),
        }
    }

    fn counters(&self, now_ms: i64) -> Result<Counters, HostError> {
        let cpu = parse_cpu(&self.read_file("stat")?)
            .ok_or_else(|| self.format("stat", "no cpu line"))?;
        let net = parse_net_dev(&self.read_file("net/dev")?)
            .ok_or_else(|| self.format("net/dev", "interface line"))?;
        Ok(Counters {
            at_ms: now_ms,
            cpu,
            net,
            java: self.java_jiffies(),
        })
    }

    fn java_jiffies(&self) -> u64 {
        let Ok(entries) = std::fs::read_dir(&self.proc_root) else {
            return 0;
        };
        let mut total = 0;
        for entry in entries.flatten() {
            let name = entry.file_name();
            if !name.to_string_lossy().bytes().all(|b| b.is_ascii_digit()) {
                continue;
            }
            // Processes come and go between listing and reading: skip what vanished.
            let Ok(comm) = std::fs::read_to_string(entry.path().join("comm")) else {
                continue;
            };
            if !self
                .config
                .java_process_names
                .iter()
                .any(|n| n == comm.trim())
            {
                continue;
            }
            if let Some(j) = std::fs::read_to_string(entry.path().join("stat"))
                .ok()
                .as_deref()
                .and_then(parse_pid_jiffies)
            {
                total += j;
            }
        }
        total
    }

    /// One reading at `now_ms`.
    pub fn read(&mut self, now_ms: i64) -> Result<Reading, HostError> {
        let now = self.counters(now_ms)?;
        let mut values: Vec<(&'static str, f64)> = Vec::with_capacity(14);
        if let Some(before) = &self.previous {
            if let Some([user, sys, iowait, idle]) = cpu_percent(&before.cpu, &now.cpu) {
                values.extend([
                    ("cpu_user_pct", user),
                    ("cpu_sys_pct", sys),
                    ("cpu_iowait_pct", iowait),
                    ("cpu_idle_pct", idle),
                ]);
                let total = now.cpu.total.saturating_sub(before.cpu.total) as f64;
                let java = now.java.saturating_sub(before.java) as f64 / total * 100.0;
                values.push(("java_cpu_pct", java.clamp(0.0, 100.0)));
            }
            let seconds = (now_ms - before.at_ms) as f64 / 1000.0;
            if seconds > 0.0 {
                let rate = |a: u64, b: u64| a.saturating_sub(b) as f64 / seconds / 1e6;
                values.push(("net_in_mb_s", rate(now.net.0, before.net.0)));
                values.push(("net_out_mb_s", rate(now.net.1, before.net.1)));
            }
        }
        let (mem, swap) = parse_meminfo(&self.read_file("meminfo")?)
            .ok_or_else(|| self.format("meminfo", "MemTotal/MemAvailable"))?;
        values.push(("mem_used_pct", mem));
        values.push(("swap_used_pct", swap));
        if let Some(disk) = disk_usage(Path::new(&self.config.disk_path)) {
            values.push(("disk_usage_pct", disk));
        }
        let (mut front, mut back) = (0, 0);
        for table in ["net/tcp", "net/tcp6"] {
            // tcp6 is absent without IPv6.
            if let Ok(text) = self.read_file(table) {
                let (f, b) =
                    count_close_wait(&text, &self.config.front_ports, &self.config.back_ports);
                front += f;
                back += b;
            }
        }
        values.push(("back_close_wait", back as f64));
        values.push(("front_close_wait", front as f64));
        let load = first_number(&self.read_file("loadavg")?)
            .ok_or_else(|| self.format("loadavg", "first field"))?;
        values.push(("load_average", load));
        let uptime = first_number(&self.read_file("uptime")?)
            .ok_or_else(|| self.format("uptime", "first field"))?;
        values.push(("uptime_days", uptime / 86_400.0));
        self.previous = Some(now);
        Ok(Reading {
            timestamp_ms: now_ms,
            server: self.server.clone(),
            profile: self.config.profile.clone(),
            values,
        })
    }
}

/// Used share of a filesystem as `df` shows it: used / (used + available to users).
pub fn disk_usage(path: &Path) -> Option<f64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid NUL-terminated path and a correctly sized out-parameter.
    if unsafe { libc::statvfs(c.as_ptr(), &mut s) } != 0 {
        return None;
    }
    let used = (s.f_blocks - s.f_bfree) as f64;
    let avail = s.f_bavail as f64;
    (used + avail > 0.0).then(|| used / (used + avail) * 100.0)
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

#[cfg(test)]
mod tests;
