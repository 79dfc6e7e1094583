//! One Envoy, in a container (testcontainers, host network) or as a local process, started from a rendered
//! bootstrap and ready to take connections on every listener.

use crate::config::{EnvoyConfig, ListenerSpec, Options};
use crate::mode::Mode;
use crate::process::Process;
use crate::{admin, paths};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use testcontainers::core::{AccessMode, Mount, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};

/// The image the suite runs Envoy from: `ENVOY_IMAGE` (e.g. `envoyproxy/envoy:v1.40-latest`), else ours.
pub fn envoy_image() -> (String, String) {
    let image = std::env::var("ENVOY_IMAGE").unwrap_or_else(|_| "heartbeat/envoy:1.40".to_string());
    split_image(&image)
}

/// "repo/name:tag" → ("repo/name", "tag"); a ':' before the last '/' is a registry port, not a tag.
pub fn split_image(image: &str) -> (String, String) {
    let slash = image.rfind('/').map(|i| i + 1).unwrap_or(0);
    match image[slash..].rfind(':') {
        Some(i) => (image[..slash + i].to_string(), image[slash + i + 1..].to_string()),
        None => (image.to_string(), "latest".to_string()),
    }
}

enum Backend {
    Container(Box<ContainerAsync<GenericImage>>),
    Process(Process),
}

pub struct Envoy {
    backend: Backend,
    admin_port: u16,
    listeners: BTreeMap<String, u16>,
    pub dir: PathBuf,
    /// What `update_listeners` needs to render a new LDS file.
    cfg: EnvoyConfig,
    opts: Options,
    wasm_seen: String,
    lds_version: std::sync::atomic::AtomicU64,
}

const IN_CONTAINER_DIR: &str = "/etc/heartbeat";

impl Envoy {
    pub async fn start(mode: Mode, cfg: &EnvoyConfig) -> anyhow::Result<Envoy> {
        Envoy::start_with(mode, cfg, &Options::default()).await
    }

    /// `start` with per-case options: workers, drain time, failure policy, another filter build, LDS from a file.
    pub async fn start_with(mode: Mode, cfg: &EnvoyConfig, opts: &Options) -> anyhow::Result<Envoy> {
        let dir = paths::scratch_dir("envoy")?;
        let wasm = match (&opts.wasm, cfg.needs_wasm()) {
            (Some(w), _) if w.is_file() => Some(w.clone()),
            (Some(w), _) => anyhow::bail!("filter build not found at {}", w.display()),
            (None, true) => Some(paths::require_wasm()?),
            (None, false) => None,
        };
        let (wasm_seen, yaml_seen) = match mode {
            Mode::Container => (format!("{IN_CONTAINER_DIR}/heartbeat.wasm"), format!("{IN_CONTAINER_DIR}/envoy.yaml")),
            Mode::Process => (
                wasm.as_ref().map(|w| w.display().to_string()).unwrap_or_default(),
                dir.join("envoy.yaml").display().to_string(),
            ),
        };
        // LDS: the listeners file lives in a directory of its own, mounted whole in container mode, so that a
        // file renamed over it on the host is a move Envoy's watch sees.
        let lds_host = dir.join("lds");
        let lds_seen = match mode {
            Mode::Container => format!("{IN_CONTAINER_DIR}/lds"),
            Mode::Process => lds_host.display().to_string(),
        };
        if opts.lds {
            std::fs::create_dir_all(&lds_host)?;
            let first = cfg.render_lds(&cfg.listeners, &wasm_seen, opts, 1);
            std::fs::write(lds_host.join("listeners.yaml"), serde_json::to_string_pretty(&first)?)?;
        }
        let yaml_host = dir.join("envoy.yaml");
        let bootstrap = cfg.render_with(&wasm_seen, opts, &lds_seen, &format!("{lds_seen}/listeners.yaml"));
        std::fs::write(&yaml_host, serde_json::to_string_pretty(&bootstrap)?)?;
        // One worker by default keeps a dozen concurrent Envoys cheap on 2 cores; no hot restart, so that
        // several Envoys can share the host network namespace.
        let (concurrency, drain) = (opts.concurrency().to_string(), opts.drain_time_s().to_string());
        let args: Vec<String> = [
            "-c",
            &yaml_seen,
            "--concurrency",
            &concurrency,
            "--disable-hot-restart",
            "--log-level",
            "info",
            "--drain-time-s",
            &drain,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let backend = match mode {
            Mode::Container => {
                let (name, tag) = envoy_image();
                let mut req = GenericImage::new(name, tag)
                    .with_wait_for(WaitFor::Nothing)
                    .with_network("host")
                    .with_mount(
                        Mount::bind_mount(yaml_host.display().to_string(), yaml_seen.clone())
                            .with_access_mode(AccessMode::ReadOnly),
                    )
                    .with_cmd(args);
                if let Some(w) = &wasm {
                    req = req.with_mount(
                        Mount::bind_mount(w.display().to_string(), wasm_seen.clone())
                            .with_access_mode(AccessMode::ReadOnly),
                    );
                }
                if opts.lds {
                    req = req.with_mount(
                        Mount::bind_mount(lds_host.display().to_string(), lds_seen.clone())
                            .with_access_mode(AccessMode::ReadOnly),
                    );
                }
                Backend::Container(Box::new(
                    req.start().await.map_err(|e| anyhow::anyhow!("starting the Envoy container: {e}"))?,
                ))
            }
            Mode::Process => Backend::Process(Process::spawn(&paths::envoy_bin(), &args, dir.join("envoy.log"))?),
        };
        let mut envoy = Envoy {
            backend,
            admin_port: cfg.admin_port,
            listeners: cfg.listeners.iter().map(|l| (l.name.clone(), l.port)).collect(),
            dir,
            cfg: cfg.clone(),
            opts: opts.clone(),
            wasm_seen,
            lds_version: std::sync::atomic::AtomicU64::new(1),
        };
        if let Err(e) = envoy.wait_ready(Duration::from_secs(60)).await {
            return Err(anyhow::anyhow!("Envoy did not become ready: {e}\n--- Envoy log ---\n{}", envoy.log_tail(80)));
        }
        Ok(envoy)
    }

    async fn wait_ready(&mut self, limit: Duration) -> anyhow::Result<()> {
        let start = Instant::now();
        loop {
            if let Some(why) = self.exited().await {
                anyhow::bail!("Envoy exited during start-up ({why})");
            }
            let admin_ok = matches!(admin::get(self.admin_port, "/ready").await, Ok((200, _)));
            if admin_ok {
                let mut all = true;
                for port in self.listeners.values() {
                    all &= tokio::net::TcpStream::connect(("127.0.0.1", *port)).await.is_ok();
                }
                if all {
                    return Ok(());
                }
            }
            if start.elapsed() > limit {
                anyhow::bail!("not ready after {limit:?} (admin /ready ok: {admin_ok})");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn exited(&mut self) -> Option<String> {
        match &mut self.backend {
            Backend::Process(p) => p.exited().map(|s| s.to_string()),
            Backend::Container(c) => match c.is_running().await {
                Ok(false) => Some(format!("container exit code {:?}", c.exit_code().await.ok().flatten())),
                _ => None,
            },
        }
    }

    pub fn listener(&self, name: &str) -> SocketAddr {
        let port = self.listeners.get(name).copied().unwrap_or_else(|| panic!("no listener named {name}"));
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    pub fn admin_port(&self) -> u16 {
        self.admin_port
    }

    /// Replaces the listeners of an Envoy started with `Options { lds: true, .. }`: the new LDS file is written
    /// beside the watched one and renamed over it (Envoy reacts to the move). Returns at once; watch
    /// `listener_manager.lds.update_success` / `update_rejected` in `/stats` for Envoy's verdict.
    pub fn update_listeners(&self, listeners: &[ListenerSpec]) -> anyhow::Result<()> {
        anyhow::ensure!(self.opts.lds, "update_listeners needs an Envoy started with Options {{ lds: true, .. }}");
        for l in listeners {
            anyhow::ensure!(
                self.listeners.get(&l.name) == Some(&l.port),
                "listener {} must keep its name and port {}",
                l.name,
                l.port
            );
        }
        let version = self.lds_version.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        let lds = self.cfg.render_lds(listeners, &self.wasm_seen, &self.opts, version);
        let dir = self.dir.join("lds");
        let tmp = dir.join(format!(".listeners-{version}.yaml"));
        std::fs::write(&tmp, serde_json::to_string_pretty(&lds)?)?;
        // Kept for post-mortems beside the live file (a name Envoy does not read).
        let _ = std::fs::copy(&tmp, self.dir.join(format!("lds-v{version}.yaml")));
        std::fs::rename(&tmp, dir.join("listeners.yaml"))?;
        Ok(())
    }

    /// All of `/stats` (counters and gauges).
    pub async fn stats(&self) -> anyhow::Result<BTreeMap<String, i64>> {
        let (code, body) = admin::get(self.admin_port, "/stats").await?;
        anyhow::ensure!(code == 200, "/stats answered {code}");
        Ok(admin::parse_stats(&body))
    }

    /// The filter's own metrics: `wasmcustom.<name>` with the prefix removed.
    pub async fn filter_stats(&self) -> anyhow::Result<BTreeMap<String, i64>> {
        Ok(self
            .stats()
            .await?
            .into_iter()
            .filter_map(|(k, v)| k.strip_prefix("wasmcustom.").map(|n| (n.to_string(), v)))
            .collect())
    }

    /// Envoy's whole log so far (stderr of the process or the container).
    pub fn log(&self) -> String {
        match &self.backend {
            Backend::Process(p) => p.log(),
            Backend::Container(c) => crate::mode::container_log(c.id()),
        }
    }

    pub fn log_tail(&self, lines: usize) -> String {
        let log = self.log();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Adds Envoy's log tail to an error, for a failing test's report.
    pub fn explain(&self, e: anyhow::Error) -> anyhow::Error {
        anyhow::anyhow!("{e:#}\n--- Envoy log ({}) ---\n{}", self.dir.display(), self.log_tail(60))
    }
}

impl Drop for Envoy {
    fn drop(&mut self) {
        // Keep the log beside the YAML for post-mortems; show it at once if the test is failing.
        let log = self.log();
        let _ = std::fs::write(self.dir.join("envoy-final.log"), &log);
        if std::thread::panicking() {
            eprintln!("--- Envoy log ({}) ---\n{}", self.dir.display(), self.log_tail(60));
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn splits_image_names() {
        assert_eq!(
            super::split_image("envoyproxy/envoy:v1.40-latest"),
            ("envoyproxy/envoy".into(), "v1.40-latest".into())
        );
        assert_eq!(super::split_image("localhost:5000/envoy"), ("localhost:5000/envoy".into(), "latest".into()));
        assert_eq!(super::split_image("heartbeat/envoy:1.40"), ("heartbeat/envoy".into(), "1.40".into()));
    }
}
