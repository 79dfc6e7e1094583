//! Faithfulness: plays the same scripts on this host and on real Envoy 1.40 (process mode, the V8
//! runtime) and compares what each side received and when each saw its end of stream. Exits 1 on
//! any disagreement: where Envoy and the host disagree, the host is wrong.
//!
//! Usage: `faithfulness [envoy-binary] [heartbeat.wasm]`; defaults `$ENVOY_BIN`, `.tools/bin/envoy`
//! or `.venv/bin/envoy` (from `make deps`), and `target/heartbeat.wasm`.

mod envoy_run;
mod probe_runs;
mod scripts;

use std::path::PathBuf;
use std::time::Duration;

use std::collections::BTreeMap;
use std::path::Path;

use heartbeat_host_tests::script::{differences, play, transcript, Script, Transcript};
use heartbeat_host_tests::{Host, HostOptions, Plugin};

/// Real Envoy's root tick runs from the worker's start, not from the connection's; add scheduling.
const TOLERANCE: Duration = Duration::from_millis(300);

fn envoy_binary(arg: Option<String>) -> PathBuf {
    arg.map(PathBuf::from)
        .or_else(|| std::env::var_os("ENVOY_BIN").map(PathBuf::from))
        .or_else(|| [".tools/bin/envoy", ".venv/bin/envoy"].into_iter().map(PathBuf::from).find(|p| p.exists()))
        .unwrap_or_else(|| PathBuf::from("envoy"))
}

/// Plays a script on the host, returning the transcript and the stats (as Envoy shows them).
fn host_run(plugin: &Plugin, script: &Script) -> (Transcript, BTreeMap<String, u64>) {
    let fail = |e: heartbeat_host_tests::HostError| -> ! { panic!("{}: host: {e}", script.name) };
    let mut host = Host::start(plugin, HostOptions::with_configuration(script.configuration.as_bytes()))
        .unwrap_or_else(|e| fail(e));
    let c = play(&mut host, script).unwrap_or_else(|e| fail(e));
    let transcript = transcript(&host, c).unwrap_or_else(|e| fail(e));
    let stats = host.metrics().into_iter().map(|(k, v)| (k, v.value())).collect();
    (transcript, stats)
}

/// Runs every script on both; prints one line per script; returns how many disagree.
fn compare_all(envoy: &Path, wasm: &Path, plugin: &Plugin, scripts: &[Script], compare_stats: bool) -> usize {
    let mut failed = 0;
    for (n, script) in scripts.iter().enumerate() {
        let (host, host_stats) = host_run(plugin, script);
        let scratch =
            std::env::temp_dir().join(format!("heartbeat-faithfulness-{}-{}-{n}", std::process::id(), compare_stats));
        std::fs::create_dir_all(&scratch).unwrap_or_else(|e| panic!("{}: {e}", scratch.display()));
        let real = match envoy_run::run(envoy, wasm, script, &scratch) {
            Ok(run) => run,
            Err(e) => {
                println!("FAIL  {}: Envoy run failed: {e} ({})", script.name, envoy.display());
                failed += 1;
                continue;
            }
        };
        let mut diffs = differences(&real.transcript, &host, TOLERANCE);
        if compare_stats {
            let names: std::collections::BTreeSet<&String> = real.stats.keys().chain(host_stats.keys()).collect();
            for name in names {
                if probe_runs::NOT_COMPARED.contains(&name.as_str()) {
                    continue;
                }
                let (e, h) = (real.stats.get(name), host_stats.get(name));
                if e != h {
                    diffs.push(format!("{name}: envoy {e:?}, host {h:?}"));
                }
            }
        }
        if diffs.is_empty() {
            println!(
                "same  {} (client EOF: envoy {:?}, host {:?})",
                script.name, real.transcript.client_eof_at, host.client_eof_at
            );
        } else {
            failed += 1;
            println!("DIFF  {} (envoy vs host; Envoy log in {})", script.name, scratch.display());
            for d in diffs {
                println!("        {d}");
            }
        }
    }
    failed
}

fn main() {
    let mut args = std::env::args().skip(1);
    let envoy = envoy_binary(args.next());
    let wasm = PathBuf::from(args.next().unwrap_or_else(|| "target/heartbeat.wasm".into()));
    let wasm = std::fs::canonicalize(&wasm).unwrap_or_else(|e| panic!("{}: {e} (run `make build`)", wasm.display()));
    let plugin = Plugin::from_file(&wasm).unwrap_or_else(|e| panic!("{e}"));

    println!("-- the WAT probe: the host's Envoy rules");
    let probe_wasm = std::env::temp_dir().join(format!("heartbeat-faithfulness-probe-{}.wasm", std::process::id()));
    let binary = wat::parse_str(heartbeat_host_tests::probe::wat()).unwrap_or_else(|e| panic!("probe: {e}"));
    std::fs::write(&probe_wasm, binary).unwrap_or_else(|e| panic!("{}: {e}", probe_wasm.display()));
    let probe = heartbeat_host_tests::probe::plugin().unwrap_or_else(|e| panic!("{e}"));
    let probe_scripts = probe_runs::all();
    let mut failed = compare_all(&envoy, &probe_wasm, &probe, &probe_scripts, true);

    println!("-- heartbeat.wasm: the product's scenarios");
    let product_scripts = scripts::all();
    failed += compare_all(&envoy, &wasm, &plugin, &product_scripts, false);
    let total = probe_scripts.len() + product_scripts.len();
    if failed > 0 {
        println!("{failed} script(s) disagree with Envoy 1.40");
    } else {
        println!("all scripts agree with Envoy 1.40");
    }
    // The plain closing line, as a test runner prints it.
    println!("faithfulness: {} passed, {failed} failed", total - failed);
    if failed > 0 {
        std::process::exit(1);
    }
}
