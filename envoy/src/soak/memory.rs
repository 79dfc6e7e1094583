//! Envoy's resident memory, wherever it runs: process mode reads `/proc/<pid>/status` (VmRSS) of the Envoy
//! whose command line names its scratch directory; container mode finds the container that mounts that
//! directory's files and reads its main process's VmRSS through `/proc` (Docker on this host), else the
//! container's memory cgroup (`memory.current`, or `memory.usage_in_bytes` on cgroup v1).
//! Also the flatness check over samples: first third against last third.

use crate::envoy::Envoy;
use crate::mode::Mode;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug)]
pub enum Source {
    /// VmRSS of this pid (the Envoy process, on this host).
    Pid(i32),
    /// A cgroup memory file (bytes).
    Cgroup(PathBuf),
}

impl Source {
    /// Where to read the memory of `envoy`.
    pub fn find(mode: Mode, envoy: &Envoy) -> anyhow::Result<Source> {
        // The scratch directory as a path prefix: `envoy-7-1/` must not match `envoy-7-10/`.
        let dir = format!("{}/", envoy.dir.display());
        match mode {
            Mode::Process => pid_with_arg(&dir).map(Source::Pid).ok_or_else(|| {
                anyhow::anyhow!("no process on this host has {dir} in its command line (the Envoy process)")
            }),
            Mode::Container => {
                let id = container_mounting(&dir)?;
                let pid = docker(&["inspect", "--format", "{{.State.Pid}}", &id])?.trim().parse::<i32>().unwrap_or(0);
                if pid > 0 && vm_rss(pid).is_ok() {
                    return Ok(Source::Pid(pid));
                }
                for p in [
                    format!("/sys/fs/cgroup/system.slice/docker-{id}.scope/memory.current"),
                    format!("/sys/fs/cgroup/docker/{id}/memory.current"),
                    format!("/sys/fs/cgroup/memory/docker/{id}/memory.usage_in_bytes"),
                ] {
                    if Path::new(&p).is_file() {
                        return Ok(Source::Cgroup(PathBuf::from(p)));
                    }
                }
                anyhow::bail!("container {id}: neither /proc/{pid}/status nor its memory cgroup is readable here")
            }
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Source::Pid(pid) => format!("VmRSS of pid {pid}"),
            Source::Cgroup(p) => p.display().to_string(),
        }
    }

    /// Bytes now.
    pub fn read(&self) -> anyhow::Result<u64> {
        match self {
            Source::Pid(pid) => vm_rss(*pid),
            Source::Cgroup(p) => Ok(std::fs::read_to_string(p)?.trim().parse()?),
        }
    }
}

fn docker(args: &[&str]) -> anyhow::Result<String> {
    let out = std::process::Command::new("docker").args(args).output()?;
    anyhow::ensure!(out.status.success(), "docker {args:?}: {}", String::from_utf8_lossy(&out.stderr).trim());
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The running container with a bind mount from under `dir` (Envoy's scratch directory, unique per Envoy).
fn container_mounting(dir: &str) -> anyhow::Result<String> {
    let ids = docker(&["ps", "-q", "--no-trunc"])?;
    for id in ids.split_whitespace() {
        let mounts = docker(&["inspect", "--format", "{{range .Mounts}}{{.Source}}\n{{end}}", id]).unwrap_or_default();
        if mounts.lines().any(|m| m.starts_with(dir)) {
            return Ok(id.to_string());
        }
    }
    anyhow::bail!("no running container mounts a file from {dir}")
}

fn vm_rss(pid: i32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .ok_or_else(|| anyhow::anyhow!("/proc/{pid}/status has no VmRSS"))?;
    let kib: u64 = line.split_whitespace().nth(1).unwrap_or("").parse()?;
    Ok(kib * 1024)
}

/// A process on this host whose command line has an argument containing `needle`.
fn pid_with_arg(needle: &str) -> Option<i32> {
    let me = std::process::id() as i32;
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: i32 = e.file_name().to_str()?.parse().ok()?;
        if pid == me {
            return None;
        }
        let cmd = std::fs::read(e.path().join("cmdline")).ok()?;
        cmd.split(|b| *b == 0).any(|a| String::from_utf8_lossy(a).contains(needle)).then_some(pid)
    })
}

/// A series of samples compared first third against last third.
#[derive(Clone, Debug, PartialEq)]
pub struct Thirds {
    pub first: u64,
    pub last: u64,
}

/// `pick` (e.g. the median or the maximum) of the samples taken in the first third of `run_secs`, and of
/// those in the last third. None if either third has no sample.
pub fn thirds(samples: &[(f64, u64)], run_secs: f64, pick: fn(&mut [u64]) -> u64) -> Option<Thirds> {
    let mut first: Vec<u64> = samples.iter().filter(|(t, _)| *t < run_secs / 3.0).map(|s| s.1).collect();
    let mut last: Vec<u64> = samples.iter().filter(|(t, _)| *t >= run_secs * 2.0 / 3.0).map(|s| s.1).collect();
    if first.is_empty() || last.is_empty() {
        return None;
    }
    Some(Thirds { first: pick(&mut first), last: pick(&mut last) })
}

pub fn median(v: &mut [u64]) -> u64 {
    v.sort_unstable();
    v[v.len() / 2]
}

pub fn max(v: &mut [u64]) -> u64 {
    v.iter().copied().max().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thirds_compare_the_first_and_last_thirds() {
        let s: Vec<(f64, u64)> = (0..30).map(|i| (i as f64, 100 + i as u64)).collect();
        assert_eq!(thirds(&s, 30.0, median), Some(Thirds { first: 105, last: 125 }));
        assert_eq!(thirds(&s, 30.0, max), Some(Thirds { first: 109, last: 129 }));
        assert_eq!(thirds(&s[..5], 30.0, max), None);
    }

    #[test]
    fn this_process_can_be_found_and_measured() {
        assert!(vm_rss(std::process::id() as i32).unwrap() > 0);
    }
}
