//! `make bench`: throughput and latency through real Envoy 1.40 for Envoy alone, the no-op proxy-wasm filter and
//! heartbeat (and, with `--ablation`, the filter cut short after each step of its per-chunk work), in
//! interleaved rounds; writes `target/bench/results.json`, `BENCHMARKS.md` and the plots in `docs/`.
//!
//! ```text
//! bench [--ablation] [--quick] [--only w1,w2]   measure, then write the report
//! bench --report                                 write the report again from target/bench/results.json (and
//!                                                whatever target/bench/*.md fragments exist now)
//! ```
//! BENCH_SECS (seconds per trial, default 3) and BENCH_ROUNDS (counted rounds, default 5) set the length: the
//! default run with `--ablation` takes about 15 minutes. `--quick` is a smoke run (1 s, 1 round): it checks that
//! every workload completes through every setup, and says nothing about speed. It asserts nothing about speed
//! either way; it fails when a workload breaks.

use heartbeat_envoy_tests::bench::{self, plot, report, workloads::Workload, RunOptions};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

fn write_report(results: &bench::Results) -> anyhow::Result<()> {
    let root = heartbeat_envoy_tests::paths::repo_root();
    let md = root.join("BENCHMARKS.md");
    std::fs::write(&md, report::markdown(results))?;
    plot::throughput(results, &root.join("docs").join("bench-throughput.png"))?;
    if results.ablation {
        plot::ablation(results, &root.join("docs").join("bench-ablation.png"))?;
    }
    println!("wrote {} and docs/bench-*.png", md.display());
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let has = |flag: &str| args.iter().any(|a| a == flag);
    if has("--report") {
        return write_report(&bench::load()?);
    }
    let quick = has("--quick");
    let mut only = Vec::new();
    if let Some(i) = args.iter().position(|a| a == "--only") {
        for name in args.get(i + 1).map(String::as_str).unwrap_or("").split(',') {
            only.push(Workload::from_name(name).ok_or_else(|| {
                let all: Vec<_> = Workload::ALL.iter().map(|w| w.name()).collect();
                anyhow::anyhow!("--only: no workload {name:?} (one of {})", all.join(", "))
            })?);
        }
    }
    let opts = RunOptions {
        secs: if quick { 1.0 } else { env_or("BENCH_SECS", 3.0) },
        rounds: if quick { 1 } else { env_or("BENCH_ROUNDS", 5usize) },
        ablation: has("--ablation"),
        only,
    };
    let results = bench::measure(&opts).await?;
    let path = bench::save(&results)?;
    println!("\nrounds kept in {}", path.display());
    if quick {
        // A smoke run's figures are not worth a report: one short round on a busy machine.
        print!("{}", report::markdown(&results));
        return Ok(());
    }
    write_report(&results)
}
