//! Runs every fault side by side and prints the matrix (also written to target/fault-matrix.json).
//! `fault-matrix --no-filter` runs only the baselines (no target/heartbeat.wasm needed).

use heartbeat_envoy_tests::faults;
use heartbeat_envoy_tests::setup::Setup;
use heartbeat_envoy_tests::Mode;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let no_filter = std::env::args().any(|a| a == "--no-filter");
    let setups: Vec<Setup> = Setup::ALL.into_iter().filter(|s| !(no_filter && s.has_filter())).collect();
    let m = faults::matrix(Mode::ready().await?, &setups).await?;
    print!("{}", m.render());
    println!("written to {}", m.write_json()?.display());
    let bad = m.unexpected();
    anyhow::ensure!(bad.is_empty(), "unexpected outcomes:\n{}", bad.join("\n"));
    Ok(())
}
