//! node_exporter's metrics → the default catalog (what `nordiq-metrics node-exporter`
//! scrapes). Counters become rates between two scrapes, so the first scrape of a target
//! gives only the gauges.
//!
//! | metric | from |
//! |---|---|
//! | cpu_user_pct, cpu_sys_pct, cpu_iowait_pct, cpu_idle_pct | `node_cpu_seconds_total` by mode, summed over CPUs: user+nice, system+irq+softirq, iowait, idle, as shares of all modes |
//! | mem_used_pct | `node_memory_MemTotal_bytes`, `node_memory_MemAvailable_bytes` |
//! | swap_used_pct | `node_memory_SwapTotal_bytes`, `node_memory_SwapFree_bytes` (0 without swap) |
//! | disk_usage_pct | `node_filesystem_size_bytes`, `_free_bytes`, `_avail_bytes` of the mount point `sources.prometheus.mountpoint` |
//! | net_in_mb_s, net_out_mb_s | `node_network_receive_bytes_total`, `_transmit_bytes_total`, every device but `lo` |
//! | load_average | `node_load1` |
//! | uptime_days | `node_time_seconds` − `node_boot_time_seconds` |
//! | back/front_close_wait, java_cpu_pct | not in node_exporter's output: not sent |

use crate::record::Reading;
use crate::textformat::Sample;

#[derive(Debug, Clone, Default)]
struct Counters {
    at_ms: i64,
    /// user, system, iowait, idle, all modes.
    cpu: [f64; 5],
    net: (f64, f64),
}

/// One target's previous counters.
#[derive(Debug, Clone, Default)]
pub struct NodeTarget {
    previous: Option<Counters>,
}

fn sum(samples: &[Sample], name: &str, keep: impl Fn(&Sample) -> bool) -> Option<f64> {
    let mut found = false;
    let mut total = 0.0;
    for s in samples.iter().filter(|s| s.name == name && keep(s)) {
        found = true;
        total += s.value;
    }
    found.then_some(total)
}

fn gauge(samples: &[Sample], name: &str) -> Option<f64> {
    samples.iter().find(|s| s.name == name).map(|s| s.value)
}

impl NodeTarget {
    /// Maps one scrape taken at `now_ms` to a reading of `server`.
    pub fn reading(
        &mut self,
        samples: &[Sample],
        server: &str,
        mountpoint: &str,
        now_ms: i64,
    ) -> Reading {
        let mut values: Vec<(&'static str, f64)> = Vec::new();
        let mode = |modes: &'static [&'static str]| {
            sum(samples, "node_cpu_seconds_total", move |s| {
                s.label("mode").is_some_and(|m| modes.contains(&m))
            })
            .unwrap_or(0.0)
        };
        let cpu = [
            mode(&["user", "nice"]),
            mode(&["system", "irq", "softirq"]),
            mode(&["iowait"]),
            mode(&["idle"]),
            sum(samples, "node_cpu_seconds_total", |_| true).unwrap_or(0.0),
        ];
        let not_lo = |s: &Sample| s.label("device") != Some("lo");
        let net = (
            sum(samples, "node_network_receive_bytes_total", not_lo).unwrap_or(0.0),
            sum(samples, "node_network_transmit_bytes_total", not_lo).unwrap_or(0.0),
        );
        if let Some(before) = &self.previous {
            let total = cpu[4] - before.cpu[4];
            if total > 0.0 {
                for (i, name) in [
                    "cpu_user_pct",
                    "cpu_sys_pct",
                    "cpu_iowait_pct",
                    "cpu_idle_pct",
                ]
                .into_iter()
                .enumerate()
                {
                    values.push((
                        name,
                        ((cpu[i] - before.cpu[i]) / total * 100.0).clamp(0.0, 100.0),
                    ));
                }
            }
            let seconds = (now_ms - before.at_ms) as f64 / 1000.0;
            if seconds > 0.0 {
                values.push((
                    "net_in_mb_s",
                    ((net.0 - before.net.0) / seconds / 1e6).max(0.0),
                ));
                values.push((
                    "net_out_mb_s",
                    ((net.1 - before.net.1) / seconds / 1e6).max(0.0),
                ));
            }
        }
        if let (Some(total), Some(avail)) = (
            gauge(samples, "node_memory_MemTotal_bytes"),
            gauge(samples, "node_memory_MemAvailable_bytes"),
        ) {
            if total > 0.0 {
                values.push(("mem_used_pct", (total - avail) / total * 100.0));
            }
        }
        if let (Some(total), Some(free)) = (
            gauge(samples, "node_memory_SwapTotal_bytes"),
            gauge(samples, "node_memory_SwapFree_bytes"),
        ) {
            values.push((
                "swap_used_pct",
                if total > 0.0 {
                    (total - free) / total * 100.0
                } else {
                    0.0
                },
            ));
        }
        let fs = |name: &str| {
            samples
                .iter()
                .find(|s| s.name == name && s.label("mountpoint") == Some(mountpoint))
                .map(|s| s.value)
        };
        if let (Some(size), Some(free), Some(avail)) = (
            fs("node_filesystem_size_bytes"),
            fs("node_filesystem_free_bytes"),
            fs("node_filesystem_avail_bytes"),
        ) {
            let used = size - free;
            if used + avail > 0.0 {
                values.push(("disk_usage_pct", used / (used + avail) * 100.0));
            }
        }
        if let Some(load) = gauge(samples, "node_load1") {
            values.push(("load_average", load));
        }
        if let (Some(now), Some(boot)) = (
            gauge(samples, "node_time_seconds"),
            gauge(samples, "node_boot_time_seconds"),
        ) {
            values.push(("uptime_days", ((now - boot) / 86_400.0).max(0.0)));
        }
        self.previous = Some(Counters {
            at_ms: now_ms,
            cpu,
            net,
        });
        Reading {
            timestamp_ms: now_ms,
            server: server.to_string(),
            profile: String::new(),
            values,
        }
    }
}

/// A scrape target from config: `URL` (the server is the URL's host) or `NAME=URL`.
pub fn parse_target(text: &str) -> Result<(String, String), String> {
    let (name, url) = match text.split_once('=') {
        Some((n, u)) if !n.contains('/') && !n.contains(':') => {
            (Some(n.trim().to_string()), u.trim())
        }
        _ => (None, text.trim()),
    };
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| format!("`{url}`: a target is an http:// or https:// URL"))?;
    let host = rest.split(['/', ':']).next().unwrap_or_default();
    if host.is_empty() {
        return Err(format!("`{url}` has no host"));
    }
    let url = if rest.contains('/') {
        url.to_string()
    } else {
        format!("{url}/metrics")
    };
    Ok((name.unwrap_or_else(|| host.to_string()), url))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::textformat::parse;

    fn scrape(user: f64, idle: f64, rx: f64) -> Vec<Sample> {
        parse(&format!(
            "node_cpu_seconds_total{{cpu=\"0\",mode=\"user\"}} {user}\nnode_cpu_seconds_total{{cpu=\"1\",mode=\"user\"}} {user}\nnode_cpu_seconds_total{{cpu=\"0\",mode=\"idle\"}} {idle}\nnode_cpu_seconds_total{{cpu=\"0\",mode=\"system\"}} 10\nnode_memory_MemTotal_bytes 1000\nnode_memory_MemAvailable_bytes 250\nnode_memory_SwapTotal_bytes 0\nnode_memory_SwapFree_bytes 0\nnode_filesystem_size_bytes{{mountpoint=\"/\"}} 100\nnode_filesystem_free_bytes{{mountpoint=\"/\"}} 30\nnode_filesystem_avail_bytes{{mountpoint=\"/\"}} 20\nnode_network_receive_bytes_total{{device=\"lo\"}} 999999\nnode_network_receive_bytes_total{{device=\"eth0\"}} {rx}\nnode_network_transmit_bytes_total{{device=\"eth0\"}} 0\nnode_load1 1.5\nnode_time_seconds 200000\nnode_boot_time_seconds 27200\n"
        ))
        .unwrap()
    }

    #[test]
    fn a_scrape_pair_becomes_the_catalog() {
        let mut t = NodeTarget::default();
        let first = t.reading(&scrape(100.0, 100.0, 0.0), "h", "/", 0);
        let get = |r: &Reading, m: &str| r.values.iter().find(|(n, _)| *n == m).map(|(_, v)| *v);
        assert_eq!(get(&first, "cpu_user_pct"), None, "no rate from one scrape");
        assert_eq!(get(&first, "mem_used_pct"), Some(75.0));
        assert_eq!(get(&first, "disk_usage_pct"), Some(70.0 / 90.0 * 100.0));
        assert_eq!(get(&first, "load_average"), Some(1.5));
        assert_eq!(get(&first, "uptime_days"), Some(2.0));
        assert_eq!(get(&first, "swap_used_pct"), Some(0.0));
        let second = t.reading(&scrape(130.0, 140.0, 2e6), "h", "/", 2000);
        // Δ user 60 (two CPUs), Δ idle 40, Δ system 0: 100 in all.
        assert_eq!(get(&second, "cpu_user_pct"), Some(60.0));
        assert_eq!(get(&second, "cpu_idle_pct"), Some(40.0));
        assert_eq!(get(&second, "net_in_mb_s"), Some(1.0));
    }

    #[test]
    fn targets_name_their_server() {
        assert_eq!(
            parse_target("http://10.0.0.5:9100").unwrap(),
            ("10.0.0.5".into(), "http://10.0.0.5:9100/metrics".into())
        );
        assert_eq!(
            parse_target("db01=http://10.0.0.6:9100/metrics").unwrap(),
            ("db01".into(), "http://10.0.0.6:9100/metrics".into())
        );
        assert_eq!(
            parse_target("https://x:9100").unwrap(),
            ("x".into(), "https://x:9100/metrics".into())
        );
        assert!(parse_target("ftp://x:9100").is_err());
        assert!(parse_target("http://").is_err());
    }
}
