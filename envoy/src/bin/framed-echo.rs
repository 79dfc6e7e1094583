//! The framed-protocol echo server as a program (u32 BE length-prefixed frames; PING frame → PONG frame).
//! Usage: framed-echo [--port P] [--delay-ms D] [--chunk N --chunk-delay-ms D]

use heartbeat_envoy_tests::framed_echo::{serve, Counters, Options};
use std::time::Duration;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let mut port = 7000u16;
    let mut opts = Options::default();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || -> anyhow::Result<u64> {
            let v = args.next().ok_or_else(|| anyhow::anyhow!("{flag} needs a value"))?;
            v.parse().map_err(|e| anyhow::anyhow!("{flag} {v}: {e}"))
        };
        match flag.as_str() {
            "--port" => port = u16::try_from(value()?)?,
            "--delay-ms" => opts.reply_delay = Duration::from_millis(value()?),
            "--chunk" => opts.chunk = usize::try_from(value()?)?,
            "--chunk-delay-ms" => opts.chunk_delay = Duration::from_millis(value()?),
            other => anyhow::bail!("unknown argument {other}"),
        }
    }
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    eprintln!("framed-echo listening on {}", listener.local_addr()?);
    serve(listener, opts, std::sync::Arc::new(Counters::default())).await;
    Ok(())
}
