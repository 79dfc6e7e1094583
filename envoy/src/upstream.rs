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
        let out = std::process::Command::new("cp").arg("-a").arg(&template).arg(&data).output()?;
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
        let up = Upstream { name, port, backend, frozen: AtomicBool::new(false) };
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
            Backend::Process(p) => p.freeze()?,
        }
        self.frozen.store(true, Ordering::SeqCst);
        Ok(())
    }

    pub async fn thaw(&self) -> anyhow::Result<()> {
        match &self.backend {
            Backend::Container(c) => c.unpause().await.map_err(|e| anyhow::anyhow!("docker unpause: {e}"))?,
            Backend::Process(p) => p.thaw()?,
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
