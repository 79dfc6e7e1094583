//! `/proc` readings for the idle bench: a process's resident memory and CPU time, the whole machine's CPU
//! time (to say how busy the machine was with other work during the window), and the machine itself.

/// One process at one instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcSample {
    /// VmRSS, bytes.
    pub rss: u64,
    /// utime + stime, clock ticks.
    pub cpu_ticks: u64,
}

pub fn process(pid: i32) -> anyhow::Result<ProcSample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| anyhow::anyhow!("/proc/{pid}/status: {e} (did the process exit?)"))?;
    let rss = vm_rss(&status).ok_or_else(|| anyhow::anyhow!("/proc/{pid}/status has no VmRSS"))?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let cpu_ticks = cpu_ticks(&stat).ok_or_else(|| anyhow::anyhow!("cannot parse /proc/{pid}/stat: {stat:?}"))?;
    Ok(ProcSample { rss, cpu_ticks })
}

/// VmRSS in bytes from the text of `/proc/<pid>/status`.
pub fn vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// utime + stime (fields 14 and 15) from the text of `/proc/<pid>/stat`. The command name (field 2) may hold
/// spaces and parentheses, so the fields are counted from the last ')'.
pub fn cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state): utime is field 14, index 11.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Clock ticks per second (`sysconf(_SC_CLK_TCK)`, 100 on Linux).
pub fn ticks_per_second() -> u64 {
    // SAFETY: sysconf reads a constant.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as u64
    } else {
        100
    }
}

/// The whole machine's CPU time from `/proc/stat`: (busy, total) in clock ticks, all cores.
pub fn machine() -> anyhow::Result<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    machine_from(&stat).ok_or_else(|| anyhow::anyhow!("cannot parse the cpu line of /proc/stat"))
}

pub fn machine_from(stat: &str) -> Option<(u64, u64)> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line.split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
    // user nice system idle iowait irq softirq steal guest guest_nice; guest time is already in user.
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3)? + v.get(4).copied().unwrap_or(0);
    Some((total - idle, total))
}

/// A process whose argv[0] ends with `program` and which has `arg` among its arguments (nats-server by port).
pub fn pid_of(program: &str, arg: &str) -> Option<i32> {
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: i32 = e.file_name().to_str()?.parse().ok()?;
        let cmd = std::fs::read(e.path().join("cmdline")).ok()?;
        let args: Vec<String> = cmd.split(|b| *b == 0).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
        (args.first()?.ends_with(program) && args.iter().any(|a| a == arg)).then_some(pid)
    })
}

/// "2 x Intel(R) Xeon(R) ... , 23.6 GiB, Linux 6.1": cores as the kernel shows them, the CPU model, memory, kernel.
pub fn describe_machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, m)| m.trim().to_string())
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let mem_kib: u64 = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{cores} x {model}, {:.1} GiB, Linux {}", mem_kib as f64 / (1 << 20) as f64, kernel.trim())
}

/// The 1-minute load average.
pub fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_files() {
        assert_eq!(vm_rss("Name:\tenvoy\nVmRSS:\t  1234 kB\n"), Some(1234 * 1024));
        let stat = "42 (envoy (main)) S 1 42 42 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 12 0 100 0 0";
        assert_eq!(cpu_ticks(stat), Some(325));
        assert_eq!(machine_from("cpu  10 0 5 80 5 0 0 0 0 0\ncpu0 1 2 3\n"), Some((15, 100)));
        let me = process(std::process::id() as i32).unwrap();
        assert!(me.rss > 0);
    }
}
