//! Test hosts in network namespaces: `n` namespaces on one bridge, each with its own
//! address on a private /24 that exists only for the test (cluster tests run one NATS
//! server and one daemon per "host"). Needs root and `ip`; everything is removed on drop.

use std::net::Ipv4Addr;
use std::process::Command;

/// A bridge and `n` namespaces attached to it.
pub struct Hosts {
    bridge: String,
    namespaces: Vec<String>,
    subnet: [u8; 3],
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("running ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Hosts {
    /// Makes `n` hosts (at most 200). Fails with why when this machine cannot (not root,
    /// no `ip`, no veth or bridge support).
    pub fn create(n: usize) -> Result<Hosts, String> {
        // A tag unique to this process: names and the subnet do not collide with a
        // concurrent test run.
        let tag = std::process::id() % 10_000;
        let subnet = [10, 213, (tag % 250) as u8];
        let mut hosts = Hosts {
            bridge: format!("nqb{tag}"),
            namespaces: Vec::new(),
            subnet,
        };
        ip(&["link", "add", &hosts.bridge, "type", "bridge"])?;
        let gateway = format!("{}/24", hosts.addr(0));
        ip(&["addr", "add", &gateway, "dev", &hosts.bridge])?;
        ip(&["link", "set", &hosts.bridge, "up"])?;
        for i in 1..=n.min(200) {
            let ns = format!("nq{tag}-{i}");
            ip(&["netns", "add", &ns])?;
            hosts.namespaces.push(ns.clone());
            let host_end = format!("nqh{tag}x{i}");
            ip(&[
                "link", "add", &host_end, "type", "veth", "peer", "name", "eth0", "netns", &ns,
            ])?;
            ip(&["link", "set", &host_end, "master", &hosts.bridge, "up"])?;
            let addr = format!("{}/24", hosts.addr(i));
            ip(&["-n", &ns, "addr", "add", &addr, "dev", "eth0"])?;
            ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        }
        Ok(hosts)
    }

    /// Host `i`'s address (1-based; 0 is this machine's end of the bridge).
    pub fn addr(&self, i: usize) -> Ipv4Addr {
        Ipv4Addr::new(
            self.subnet[0],
            self.subnet[1],
            self.subnet[2],
            (10 + i) as u8,
        )
    }

    /// `program` to be run inside host `i` (1-based).
    pub fn command(&self, i: usize, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.namespaces[i - 1], program]);
        cmd
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        for ns in &self.namespaces {
            let _ = ip(&["netns", "del", ns]);
        }
        let _ = ip(&["link", "del", &self.bridge]);
    }
}
