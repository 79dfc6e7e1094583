//! The idle-connection bench (`--bin idle-bench`): what an operator pays in real Envoy for heartbeat's timers.
//! Many idle NATS connections through one Envoy worker each, three Envoys side by side: Envoy alone, Envoy with
//! a no-op wasm filter (the filter crate built with `ablate-noop`), Envoy with heartbeat pinging every
//! connection. Envoy's resident memory and CPU time are read from `/proc` over a measuring window.
//!
//! - `client`: the idle NATS clients (handshake, then nothing but answers to nats-server's own PINGs; any other
//!   byte, a leaked PONG for instance, and any close are counted and fail the bench).
//! - `sample`: `/proc` readings (VmRSS, utime + stime, the whole machine's CPU) and the machine's description.
//! - `report`: the markdown table (`target/bench/idle.md`).

pub mod client;
pub mod report;
pub mod sample;

use std::path::PathBuf;

/// One Envoy of the bench.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    Alone,
    Noop,
    Heartbeat,
}

impl Variant {
    pub const ALL: [Variant; 3] = [Variant::Alone, Variant::Noop, Variant::Heartbeat];

    pub fn label(self) -> &'static str {
        match self {
            Variant::Alone => "Envoy alone",
            Variant::Noop => "Envoy + no-op wasm filter",
            Variant::Heartbeat => "Envoy + heartbeat",
        }
    }
}

/// Where the filter crate's ablation builds land (`target/ablation/<variant>.wasm`), and where a build made by
/// hand with `--target-dir target/ablation-build` lands.
pub fn noop_wasm_candidates() -> [PathBuf; 2] {
    let target = crate::paths::repo_root().join("target");
    [
        target.join("ablation").join("noop.wasm"),
        target.join("ablation-build").join("wasm32-unknown-unknown").join("wasm-release").join("heartbeat.wasm"),
    ]
}

/// The command that builds the no-op variant, for the error message when there is none.
pub const NOOP_BUILD: &str = "cargo build -p heartbeat --target wasm32-unknown-unknown --profile wasm-release \
                              --features ablate-noop --target-dir target/ablation-build";

/// Raises this process's open-file soft limit to `want`, or to the hard limit if that is lower (raising the
/// hard limit needs CAP_SYS_RESOURCE, which containers often lack); children (Envoy, nats-server, the client
/// processes) inherit it. Returns the soft limit now in force: the caller checks that it is enough.
pub fn raise_nofile(want: u64) -> anyhow::Result<u64> {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit read and write only the struct passed.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        anyhow::bail!("getrlimit(RLIMIT_NOFILE): {}", std::io::Error::last_os_error());
    }
    if lim.rlim_cur >= want {
        return Ok(lim.rlim_cur);
    }
    let raised = libc::rlimit { rlim_cur: want, rlim_max: lim.rlim_max.max(want) };
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
        return Ok(want);
    }
    let capped = libc::rlimit { rlim_cur: lim.rlim_max, rlim_max: lim.rlim_max };
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &capped) } != 0 {
        anyhow::bail!("setrlimit(RLIMIT_NOFILE, {}): {}", lim.rlim_max, std::io::Error::last_os_error());
    }
    Ok(lim.rlim_max)
}

/// Open file descriptors of a process now (`/proc/<pid>/fd`).
pub fn open_fds(pid: i32) -> anyhow::Result<u64> {
    Ok(std::fs::read_dir(format!("/proc/{pid}/fd"))?.count() as u64)
}

/// Envoy's default circuit breakers allow 1,024 connections per cluster (the clients beyond are closed at once),
/// and the harness's clusters have no circuit-breaker setting, nor does its bootstrap an admin runtime layer to
/// raise them: the connections are spread over listeners of at most this many, each with its own cluster.
pub const PER_CLUSTER: usize = 1000;
