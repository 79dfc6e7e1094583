//! Where the suite finds its tools and the filter: stable paths made by `envoy/bootstrap.sh` and `make build`.

use std::path::PathBuf;

/// The repository root (the parent of this crate's directory).
pub fn repo_root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.parent().map(PathBuf::from).unwrap_or(here)
}

/// `.tools/bin/<name>` as laid out by bootstrap.sh.
pub fn tool(name: &str) -> PathBuf {
    repo_root().join(".tools").join("bin").join(name)
}

/// The Envoy binary for process mode: `ENVOY_BIN`, else the one bootstrap.sh installed.
pub fn envoy_bin() -> PathBuf {
    std::env::var_os("ENVOY_BIN").map(PathBuf::from).unwrap_or_else(|| tool("envoy"))
}

/// The filter: `HEARTBEAT_WASM`, else `target/heartbeat.wasm` (where `make build` puts it).
pub fn wasm_path() -> PathBuf {
    std::env::var_os("HEARTBEAT_WASM")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target").join("heartbeat.wasm"))
}

/// The filter, or an error that says how to build it. Tests that need the filter fail (never skip) without it.
pub fn require_wasm() -> anyhow::Result<PathBuf> {
    let p = wasm_path();
    if p.is_file() {
        Ok(p)
    } else {
        anyhow::bail!("filter not found at {} (run `make build` or set HEARTBEAT_WASM)", p.display())
    }
}

/// A fresh scratch directory under `target/envoy-runs/` (YAML, logs); kept after the run for post-mortems.
pub fn scratch_dir(label: &str) -> anyhow::Result<PathBuf> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    let dir = repo_root().join("target").join("envoy-runs").join(format!("{}-{}-{}", label, std::process::id(), n));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
