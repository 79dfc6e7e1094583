//! Real upstream servers (nats-server, redis-server) on a loopback port, in a container (host network,
//! frozen with `docker pause`) or as a local process (frozen with SIGSTOP). Either way the frozen server's
//! kernel keeps ACKing: the "hung process" fault that TCP keepalive cannot see.

use crate::mode::Mode;
use crate::process::Process;
use crate::{paths, ports};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use testcontainers::core::WaitFor;
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};

enum Backend {
    Container(Box<ContainerAsync<GenericImage>>),
    Process(Process),
}

pub struct Upstream {
    pub name: &'static str,
    pub port: u16,
    backend: Backend,
    frozen: AtomicBool,
    /// A data directory removed after the server (declared after `backend`, so dropped after it).
    scratch: Option<PgData>,
}

impl Upstream {
    /// nats-server 2.15 on a fresh port.
    pub async fn nats(mode: Mode) -> anyhow::Result<Upstream> {
        let port = ports::free_port()?;
        let args = vec!["-a".into(), "127.0.0.1".into(), "-p".into(), port.to_string()];
        Upstream::start(mode, "nats", ("heartbeat/nats", "2.15"), paths::tool("nats-server"), args, port).await
    }

    /// redis-server 7.0 on a fresh port, no persistence; `extra` are more `--option value` arguments
    /// (e.g. `["--timeout", "3"]` for the idle-reaper fault).
    pub async fn redis(mode: Mode, extra: &[&str]) -> anyhow::Result<Upstream> {
        let port = ports::free_port()?;
        let mut args: Vec<String> = [
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--protected-mode",
            "no",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        let bin = which("redis-server").unwrap_or_else(|| paths::tool("redis-server"));
        Upstream::start(mode, "redis", ("heartbeat/redis", "7.0"), bin, args, port).await
    }

    /// PostgreSQL 15 (Debian's `postgresql-15`, installed by `envoy/bootstrap.sh`) on a fresh port, trust
    /// authentication on 127.0.0.1, no fsync: a fresh cluster (`initdb`) in a scratch directory under /tmp.
    ///
    /// A local process in both modes (`mode` is ignored): there is no container registry on these machines,
    /// and a FROM-scratch image of postgres (its binaries, libraries, locale and timezone data) is not worth it
    /// for a server that runs the same either way. Postgres refuses to run as root, so `initdb` and `postgres`
    /// run as the `postgres` user through `setpriv`, which execs in place: the pid is the postmaster's, and
    /// [`Upstream::freeze`] stops it and its backends (one process per connection) with SIGSTOP.
    pub async fn postgres(mode: Mode) -> anyhow::Result<Upstream> {
        let _ = mode;
        let port = ports::free_port()?;
        let bin = std::path::Path::new(PG_BIN);
        anyhow::ensure!(
            bin.join("postgres").is_file(),
            "{PG_BIN}/postgres not found: run envoy/bootstrap.sh (installs postgresql-15)"
        );
        let data = PgData::create(port)?;
        let as_postgres = |program: &str| -> Vec<String> {
            ["--reuid=postgres", "--regid=postgres", "--init-groups", "--", &format!("{PG_BIN}/{program}")]
                .iter()
                .map(|s| s.to_string())
                .collect()
        };
        let mut initdb = as_postgres("initdb");
        initdb.extend(
            ["-D", &data.dir().to_string_lossy(), "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8"]
                .iter()
                .map(|s| s.to_string()),
        );
        // Awaited, not blocking: initdb takes seconds, and a blocked thread would stall every other future of
        // the task (the fault matrix runs its rows side by side in one task and times them).
        let out = tokio::process::Command::new("setpriv").args(&initdb).output().await?;
        anyhow::ensure!(out.status.success(), "initdb failed: {}", String::from_utf8_lossy(&out.stderr));
        let mut args = as_postgres("postgres");
        let dir = data.dir().to_string_lossy().into_owned();
        for a in [
            "-D",
            &dir,
            "-p",
            &port.to_string(),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            &format!("unix_socket_directories={dir}"),
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
            "-c",
            "max_connections=200",
        ] {
            args.push(a.to_string());
        }
        let mut up = Upstream::start(Mode::Process, "postgres", ("", ""), "setpriv".into(), args, port).await?;
        up.scratch = Some(data);
        Ok(up)
    }

    /// MariaDB 10.11 (Debian's `mariadbd`, installed by `envoy/bootstrap.sh`) on a fresh port of 127.0.0.1: a copy
    /// of the data directory bootstrap.sh made once with `mariadb-install-db` (user root, no password), no
    /// binary log, small buffers.
    ///
    /// A local process in both modes (`mode` is ignored): the suite's images are built FROM scratch from
    /// single binaries and there is no registry to pull a MariaDB image from, while mariadbd needs its data
    /// directory, plugins and Debian's shared libraries. SIGSTOP freezes it as `docker pause` would (one
    /// process, a thread per connection; its kernel keeps ACKing).
    pub async fn mariadb(mode: Mode) -> anyhow::Result<Upstream> {
        let _ = mode;
        let port = ports::free_port()?;
        let template = paths::repo_root().join(".tools").join("mariadb-data");
        anyhow::ensure!(
            template.join("mysql").is_dir(),
            "{} not found: run envoy/bootstrap.sh (installs mariadb-server and makes it)",
            template.display()
        );
        let data = paths::scratch_dir("mariadb")?.join("data");
        let out = tokio::process::Command::new("cp").arg("-a").arg(&template).arg(&data).output().await?;
        anyhow::ensure!(
            out.status.success(),
            "copying {}: {}",
            template.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let dir = data.to_string_lossy().into_owned();
        let mut args: Vec<String> = vec![
            "--no-defaults".into(),
            format!("--datadir={dir}"),
            format!("--port={port}"),
            "--bind-address=127.0.0.1".into(),
            format!("--socket={dir}/mysqld.sock"),
            format!("--pid-file={dir}/mysqld.pid"),
            "--skip-log-bin".into(),
            "--innodb-buffer-pool-size=16M".into(),
            "--innodb-log-file-size=4M".into(),
            "--performance-schema=OFF".into(),
            "--max-connections=500".into(),
        ];
        // mariadbd refuses to run as root unless told to.
        // SAFETY: geteuid(2) reads the process's user id; it cannot fail.
        if unsafe { libc::geteuid() } == 0 {
            args.push("--user=root".into());
        }
        let bin = which("mariadbd").unwrap_or_else(|| "/usr/sbin/mariadbd".into());
        Upstream::start(Mode::Process, "mariadb", ("", ""), bin, args, port).await
    }

    async fn start(
        mode: Mode,
        name: &'static str,
        image: (&str, &str),
        bin: std::path::PathBuf,
        args: Vec<String>,
        port: u16,
    ) -> anyhow::Result<Upstream> {
        let backend = match mode {
            Mode::Container => Backend::Container(Box::new(
                GenericImage::new(image.0, image.1)
                    .with_wait_for(WaitFor::Nothing)
                    .with_network("host")
                    .with_cmd(args)
                    .start()
                    .await
                    .map_err(|e| anyhow::anyhow!("starting the {name} container: {e}"))?,
            )),
            Mode::Process => {
                let log = paths::scratch_dir(name)?.join(format!("{name}.log"));
                Backend::Process(Process::spawn(&bin, &args, log)?)
            }
        };
        let up = Upstream { name, port, backend, frozen: AtomicBool::new(false), scratch: None };
        let start = Instant::now();
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            if start.elapsed() > Duration::from_secs(20) {
                anyhow::bail!("{name} not listening on {port} after 20 s:\n{}", up.log());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(up)
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Hang the server: the process stops, its kernel keeps ACKing.
    pub async fn freeze(&self) -> anyhow::Result<()> {
        match &self.backend {
            Backend::Container(c) => c.pause().await.map_err(|e| anyhow::anyhow!("docker pause: {e}"))?,
            Backend::Process(p) => {
                p.freeze()?;
                // Servers that fork a process per connection (postgres): those too.
                signal_children(p.pid(), libc::SIGSTOP);
            }
        }
        self.frozen.store(true, Ordering::SeqCst);
        Ok(())
    }

    pub async fn thaw(&self) -> anyhow::Result<()> {
        match &self.backend {
            Backend::Container(c) => c.unpause().await.map_err(|e| anyhow::anyhow!("docker unpause: {e}"))?,
            Backend::Process(p) => {
                signal_children(p.pid(), libc::SIGCONT);
                p.thaw()?;
            }
        }
        self.frozen.store(false, Ordering::SeqCst);
        Ok(())
    }

    pub fn log(&self) -> String {
        match &self.backend {
            Backend::Process(p) => p.log(),
            Backend::Container(c) => crate::mode::container_log(c.id()),
        }
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        // Children stopped with their parent would stay stopped once it is killed.
        if let Backend::Process(p) = &self.backend {
            signal_children(p.pid(), libc::SIGCONT);
        }
        // A paused container cannot be stopped gracefully: unpause it before testcontainers removes it.
        if let Backend::Container(c) = &self.backend {
            if self.frozen.load(Ordering::SeqCst) {
                let _ = std::process::Command::new("docker").args(["unpause", c.id()]).output();
            }
        }
    }
}

fn which(name: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")?.to_str()?.split(':').map(|d| std::path::Path::new(d).join(name)).find(|p| p.is_file())
}

/// Debian's PostgreSQL 15 binaries.
const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// A postgres data directory under /tmp, owned by the `postgres` user; removed when dropped.
struct PgData(std::path::PathBuf);

impl PgData {
    fn create(port: u16) -> anyhow::Result<PgData> {
        let dir = std::env::temp_dir().join(format!("heartbeat-pg-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let out = std::process::Command::new("chown").args(["postgres:postgres", &dir.to_string_lossy()]).output()?;
        anyhow::ensure!(
            out.status.success(),
            "chown postgres {}: {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(PgData(dir))
    }

    fn dir(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for PgData {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Sends `sig` to the direct children of `pid` (Linux's /proc/PID/task/PID/children); best effort.
fn signal_children(pid: i32, sig: i32) {
    let list = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
    for child in list.split_whitespace().filter_map(|c| c.parse::<i32>().ok()) {
        // SAFETY: kill(2) on a child of our own child; no memory is shared.
        unsafe {
            libc::kill(child, sig);
        }
    }
}
