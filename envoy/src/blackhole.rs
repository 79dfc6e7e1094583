//! The blackhole fault: every packet to or from an upstream's loopback port is dropped (iptables on `lo`),
//! so neither side ever sees a FIN or an RST; both kernels just retransmit into the void. Removed on drop.
//! Needs root (CAP_NET_ADMIN); the rules carry a comment so a crashed run's leftovers can be found.

use std::process::Command;

pub struct Blackhole {
    port: u16,
}

const TAG: &str = "heartbeat-envoy-tests";

fn rules(port: u16) -> [Vec<String>; 2] {
    let p = port.to_string();
    let base = |dir: &str| -> Vec<String> {
        ["INPUT", "-i", "lo", "-p", "tcp", dir, &p, "-m", "comment", "--comment", TAG, "-j", "DROP"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    };
    [base("--dport"), base("--sport")]
}

fn iptables(op: &str, rule: &[String]) -> anyhow::Result<()> {
    let out = Command::new("iptables")
        .arg("-w")
        .arg(op)
        .args(rule)
        .output()
        .map_err(|e| anyhow::anyhow!("cannot run iptables (the blackhole fault needs it and root): {e}"))?;
    if !out.status.success() {
        anyhow::bail!("iptables {op} {}: {}", rule.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

impl Blackhole {
    /// Starts dropping every TCP packet to and from 127.0.0.1:`port`.
    pub fn start(port: u16) -> anyhow::Result<Blackhole> {
        let [a, b] = rules(port);
        iptables("-I", &a)?;
        if let Err(e) = iptables("-I", &b) {
            let _ = iptables("-D", &a);
            return Err(e);
        }
        Ok(Blackhole { port })
    }
}

impl Drop for Blackhole {
    fn drop(&mut self) {
        for r in rules(self.port) {
            let _ = iptables("-D", &r);
        }
    }
}
