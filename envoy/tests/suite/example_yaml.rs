//! The README points users at `envoy/envoy.yaml`: Envoy 1.40 must accept it as shipped (with the built
//! filter), and refuse it, naming the field, when the filter's configuration is broken.

use heartbeat_envoy_tests::paths;
use std::process::Command;

fn validate(yaml: &std::path::Path) -> anyhow::Result<(bool, String)> {
    paths::require_wasm()?;
    // The example names the filter by a path relative to the repository root, as a user runs it.
    let out = Command::new(paths::envoy_bin())
        .args(["--mode", "validate", "--disable-hot-restart", "-c"])
        .arg(yaml)
        .current_dir(paths::repo_root())
        .output()?;
    let log = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    Ok((out.status.success(), log))
}

#[test]
fn the_example_configuration_is_accepted_and_a_broken_one_refused() -> anyhow::Result<()> {
    let example = paths::repo_root().join("envoy").join("envoy.yaml");
    let (ok, log) = validate(&example)?;
    assert!(ok, "envoy refused envoy/envoy.yaml:\n{log}");
    assert!(log.contains("heartbeat: protocol nats"), "the filter did not configure itself:\n{log}");

    let broken = std::fs::read_to_string(&example)?.replace("\"max_missed_pongs\": 3", "\"max_missed_pongs\": 0");
    anyhow::ensure!(broken.contains("\"max_missed_pongs\": 0"), "the example no longer sets max_missed_pongs");
    let path = paths::scratch_dir("example-yaml")?.join("broken.yaml");
    std::fs::write(&path, broken)?;
    let (ok, log) = validate(&path)?;
    assert!(!ok, "envoy accepted max_missed_pongs 0:\n{log}");
    assert!(log.contains("invalid configuration: max_missed_pongs: 0 is outside 1..=100"), "{log}");
    Ok(())
}
