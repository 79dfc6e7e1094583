//! Container mode (testcontainers, the default and what CI runs) or process mode (machines without Docker).

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Container,
    Process,
}

impl Mode {
    /// `HEARTBEAT_ENVOY_MODE=container|process`; unset: process if `ENVOY_BIN` is set, else container.
    pub fn from_env() -> anyhow::Result<Mode> {
        match std::env::var("HEARTBEAT_ENVOY_MODE").ok().as_deref() {
            Some("container") => Ok(Mode::Container),
            Some("process") => Ok(Mode::Process),
            Some(other) => anyhow::bail!("HEARTBEAT_ENVOY_MODE={other}: expected container or process"),
            None if std::env::var_os("ENVOY_BIN").is_some() => Ok(Mode::Process),
            None => Ok(Mode::Container),
        }
    }

    /// The mode, with Docker checked and the local images built once per test process. In container mode a
    /// missing Docker is an error, never a skip: CI must fail loudly.
    pub async fn ready() -> anyhow::Result<Mode> {
        let mode = Mode::from_env()?;
        if mode == Mode::Container {
            IMAGES.get_or_try_init(build_images).await?;
        }
        Ok(mode)
    }
}

static IMAGES: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();

async fn build_images() -> anyhow::Result<()> {
    let info = tokio::process::Command::new("docker").args(["info", "--format", "{{.ServerVersion}}"]).output().await;
    match info {
        Ok(o) if o.status.success() => {}
        Ok(o) => anyhow::bail!(
            "container mode needs Docker, and the daemon is not reachable: {} \
             (set HEARTBEAT_ENVOY_MODE=process to run Envoy as a local process)",
            String::from_utf8_lossy(&o.stderr).trim()
        ),
        Err(e) => anyhow::bail!(
            "container mode needs Docker, and `docker` could not be run: {e} \
             (set HEARTBEAT_ENVOY_MODE=process to run Envoy as a local process)"
        ),
    }
    let script = crate::paths::repo_root().join("envoy").join("image").join("build.sh");
    let out = tokio::process::Command::new("bash").arg(&script).output().await?;
    if !out.status.success() {
        anyhow::bail!(
            "{} failed:\n{}{}",
            script.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// A container's whole log (stdout and stderr), or why it could not be read.
pub(crate) fn container_log(id: &str) -> String {
    std::process::Command::new("docker")
        .args(["logs", id])
        .output()
        .map(|o| format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)))
        .unwrap_or_else(|e| format!("(docker logs failed: {e})"))
}
