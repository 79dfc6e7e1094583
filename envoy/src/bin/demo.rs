//! `make demo`: NATS behind real Envoy twice, with and without the heartbeat filter. The server freezes
//! (a hung process: its kernel still ACKs, so TCP sees nothing wrong) and both clients wait to find out.

use async_nats::Event;
use heartbeat_envoy_tests::setup::{envoy_for, filter_config, Setup, Timing};
use heartbeat_envoy_tests::{metrics, Mode, Upstream};
use std::time::{Duration, Instant};

async fn client(
    addr: std::net::SocketAddr,
) -> anyhow::Result<(async_nats::Client, tokio::sync::mpsc::UnboundedReceiver<Instant>)> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let c = async_nats::ConnectOptions::new()
        .event_callback(move |ev| {
            let tx = tx.clone();
            async move {
                if matches!(ev, Event::Disconnected) {
                    let _ = tx.send(Instant::now());
                }
            }
        })
        .connect(format!("nats://{addr}"))
        .await?;
    Ok((c, rx))
}

fn fmt(d: Option<Duration>, watched: Duration) -> String {
    match d {
        Some(d) => format!("closed after {:.1} s", d.as_secs_f64()),
        None => format!("still open after {:.0} s", watched.as_secs_f64()),
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let watch: u64 = std::env::var("DEMO_WATCH_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(30);
    let watch = Duration::from_secs(watch);
    let t = Timing::DEFAULT;
    let cfg = filter_config("nats", "30s");
    let mode = Mode::ready().await?;
    println!("heartbeat demo: nats-server behind Envoy 1.40 ({mode:?} mode), twice:");
    println!("  A: client → Envoy → tcp_proxy → nats-server                 (what you have today)");
    println!("  B: client → Envoy → heartbeat filter → tcp_proxy → nats-server");
    println!("  filter config: {cfg}");
    println!(
        "  promise: a dead upstream is closed within read_idle + max_missed × interval = {:.0} s\n",
        t.bound().as_secs_f64()
    );

    let nats = Upstream::nats(mode).await?;
    let envoy = envoy_for(mode, nats.port, &[Setup::Alone, Setup::Filter], &cfg).await?;
    let (a, mut a_events) = client(envoy.listener(Setup::Alone.listener())).await?;
    let (b, mut b_events) = client(envoy.listener(Setup::Filter.listener())).await?;
    for (name, c) in [("A", &a), ("B", &b)] {
        let mut sub = c.subscribe("demo").await?;
        c.publish("demo", "hello".into()).await?;
        c.flush().await?;
        use futures::StreamExt;
        let got = tokio::time::timeout(Duration::from_secs(5), sub.next()).await?;
        anyhow::ensure!(got.is_some(), "client {name}: no message back");
    }
    println!("both clients connected and exchanged a message; idling 4 s (the filter PINGs B's idle connection)...");
    tokio::time::sleep(Duration::from_secs(4)).await;
    let s = envoy.filter_stats().await?;
    println!(
        "  filter so far: {} PINGs injected, {} PONGs received and stripped (client B never saw them)\n",
        metrics::get(&s, metrics::PINGS_INJECTED).unwrap_or(-1),
        metrics::get(&s, metrics::PONGS_STRIPPED).unwrap_or(-1)
    );

    println!(
        "freezing nats-server ({}) now: the process hangs, its kernel keeps ACKing.",
        if mode == Mode::Container { "docker pause" } else { "SIGSTOP" }
    );
    let frozen = Instant::now();
    nats.freeze().await?;
    let (mut a_closed, mut b_closed) = (None, None);
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    ticker.tick().await;
    while frozen.elapsed() < watch {
        ticker.tick().await;
        if let Ok(at) = a_events.try_recv() {
            a_closed.get_or_insert(at - frozen);
        }
        if let Ok(at) = b_events.try_recv() {
            b_closed.get_or_insert(at - frozen);
        }
        let state = |c: Option<Duration>| {
            c.map(|d| format!("DISCONNECTED at {:.1} s", d.as_secs_f64()))
                .unwrap_or_else(|| "connected (waiting on a dead server)".into())
        };
        // Every second until the filter has acted, then every 5 s: the baseline just keeps waiting.
        let secs = frozen.elapsed().as_secs();
        if b_closed.is_none() || secs.is_multiple_of(5) || b_closed.is_some_and(|d| d.as_secs() + 1 >= secs) {
            println!("  t={secs:>2} s   A (no filter): {:<38} B (filter): {}", state(a_closed), state(b_closed));
        }
        if a_closed.is_some() && b_closed.is_some() {
            break;
        }
    }
    nats.thaw().await?;
    let s = envoy.filter_stats().await?;
    println!("\n=== time until the client learns the server is dead ===");
    println!("  A  Envoy alone          : {}", fmt(a_closed, watch));
    println!("  B  Envoy + heartbeat    : {}  (the bound counts from the upstream's last byte, which came before the freeze)", fmt(b_closed, watch));
    println!("  (without the filter: TCP keepalive never fires against a hung process, Linux retransmission");
    println!("   gives up after ~924 s only when data is unacknowledged, tcp_proxy's idle_timeout is 1 h)");
    println!("  filter counters: {s:?}");
    drop((a, b));
    anyhow::ensure!(b_closed.is_some(), "the filter did not close B within {watch:?}");
    Ok(())
}
