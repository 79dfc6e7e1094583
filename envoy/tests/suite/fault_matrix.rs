//! Every fault, side by side: Envoy alone, Envoy + tight TCP keepalive, Envoy + the filter. Prints the table,
//! writes target/fault-matrix.json, and fails if any setup did not behave as TCP and the filter must.

use super::common;

use heartbeat_envoy_tests::faults;
use heartbeat_envoy_tests::setup::Setup;

#[test]
fn fault_matrix() -> anyhow::Result<()> {
    common::run(fault_matrix_case())
}

async fn fault_matrix_case() -> anyhow::Result<()> {
    let m = faults::matrix(common::mode().await, &Setup::ALL).await?;
    println!("\n{}", m.render());
    println!("written to {}", m.write_json()?.display());
    let bad = m.unexpected();
    assert!(bad.is_empty(), "unexpected outcomes:\n{}", bad.join("\n"));
    Ok(())
}
