//! Idle NATS clients for the idle bench. Each connection reads the server's `INFO`, sends `CONNECT {}` and
//! `PING`, waits for its `PONG` (so the filter watches it: monitoring starts with the client's first byte),
//! then stays idle. Afterwards the only bytes a client may receive are nats-server's own `PING`s (answered with
//! `PONG`, as a real client does); anything else, such as a `PONG` the filter failed to strip, and any close
//! are counted, and the bench fails on them.

use futures::stream::{self, StreamExt};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

/// What the idle connections of one Envoy saw after their handshake.
#[derive(Default, Debug)]
pub struct Seen {
    pub closed: AtomicU64,
    pub server_pings: AtomicU64,
    pub unexpected: AtomicU64,
    /// The first close and the first unexpected bytes, for the error message.
    pub first_problem: Mutex<Option<String>>,
}

/// A client process (`idle-bench --client`) holding one Envoy's connections: one process cannot hold 3 x 10,000
/// sockets under a 20,000 open-file limit that cannot be raised (no CAP_SYS_RESOURCE in a container).
pub struct Remote {
    pub seen: Arc<Seen>,
    pub pid: i32,
    ready: Option<tokio::sync::oneshot::Receiver<Result<usize, String>>>,
    _child: tokio::process::Child,
    count: usize,
}

impl Remote {
    /// Starts `exe --client ADDR,ADDR,... COUNT PARALLEL`; its stdout says `ready N`, then `seen CLOSED UNEXPECTED PINGS`
    /// every 500 ms, `problem TEXT` once; it exits when its stdin closes (this process ended or dropped it).
    pub fn spawn(exe: &std::path::Path, addrs: &[SocketAddr], count: usize, parallel: usize) -> anyhow::Result<Remote> {
        let addrs: Vec<String> = addrs.iter().map(|a| a.to_string()).collect();
        use std::process::Stdio;
        use tokio::io::AsyncBufReadExt;
        let mut child = tokio::process::Command::new(exe)
            .args(["--client", &addrs.join(","), &count.to_string(), &parallel.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()?;
        let pid = child.id().map(|p| p as i32).unwrap_or(0);
        let stdout = child.stdout.take().ok_or_else(|| anyhow::anyhow!("no stdout of the client process"))?;
        let seen = Arc::new(Seen::default());
        let (tx, rx) = tokio::sync::oneshot::channel();
        let s = seen.clone();
        tokio::spawn(async move {
            let mut tx = Some(tx);
            let mut lines = tokio::io::BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let (word, rest) = line.split_once(' ').unwrap_or((line.as_str(), ""));
                match word {
                    "ready" => {
                        if let Some(tx) = tx.take() {
                            let _ = tx.send(rest.trim().parse::<usize>().map_err(|e| format!("{line}: {e}")));
                        }
                    }
                    "seen" => {
                        let v: Vec<u64> = rest.split_whitespace().filter_map(|x| x.parse().ok()).collect();
                        if let [closed, unexpected, pings] = v[..] {
                            s.closed.store(closed, Ordering::SeqCst);
                            s.unexpected.store(unexpected, Ordering::SeqCst);
                            s.server_pings.store(pings, Ordering::SeqCst);
                        }
                    }
                    "problem" => s.problem(rest.to_string()),
                    "error" => {
                        s.problem(rest.to_string());
                        if let Some(tx) = tx.take() {
                            let _ = tx.send(Err(rest.to_string()));
                        }
                    }
                    _ => {}
                }
            }
            // The client process ended: every one of its connections is gone.
            s.closed.fetch_add(1, Ordering::SeqCst);
            s.problem("the client process exited".into());
            if let Some(tx) = tx.take() {
                let _ = tx.send(Err("the client process exited before its connections were ready".into()));
            }
        });
        Ok(Remote { seen, pid, ready: Some(rx), _child: child, count })
    }

    /// Waits until every connection completed its handshake.
    pub async fn ready(&mut self) -> anyhow::Result<usize> {
        let rx = self.ready.take().ok_or_else(|| anyhow::anyhow!("ready() twice"))?;
        match rx.await {
            Ok(Ok(n)) if n == self.count => Ok(n),
            Ok(Ok(n)) => anyhow::bail!("the client process opened {n} connections, not {}", self.count),
            Ok(Err(e)) => anyhow::bail!("{e}"),
            Err(_) => anyhow::bail!("the client process's reader ended"),
        }
    }

    pub fn len(&self) -> usize {
        self.count
    }
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

/// The `--client` side of [`Remote`]: opens the connections, reports, exits when stdin closes.
pub async fn serve(addrs: &[SocketAddr], count: usize, parallel: usize) -> anyhow::Result<()> {
    let fleet = match open(addrs, count, parallel).await {
        Ok(f) => f,
        Err(e) => {
            println!("error {}", format!("{e:#}").replace('\n', " "));
            return Err(e);
        }
    };
    println!("ready {}", fleet.len());
    let stdin_closed = tokio::spawn(async {
        let mut buf = [0u8; 64];
        let mut stdin = tokio::io::stdin();
        while matches!(stdin.read(&mut buf).await, Ok(n) if n > 0) {}
    });
    let mut told = false;
    while !stdin_closed.is_finished() {
        let seen = &fleet.seen;
        println!("seen {} {} {}", seen.closed(), seen.unexpected(), seen.server_pings());
        if let (false, Some(p)) = (told, seen.first_problem()) {
            println!("problem {}", p.replace('\n', " "));
            told = true;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok(())
}

impl Seen {
    fn problem(&self, what: String) {
        let mut first = self.first_problem.lock().unwrap_or_else(|e| e.into_inner());
        first.get_or_insert(what);
    }
    pub fn closed(&self) -> u64 {
        self.closed.load(Ordering::SeqCst)
    }
    pub fn unexpected(&self) -> u64 {
        self.unexpected.load(Ordering::SeqCst)
    }
    pub fn server_pings(&self) -> u64 {
        self.server_pings.load(Ordering::SeqCst)
    }
    pub fn first_problem(&self) -> Option<String> {
        self.first_problem.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// The idle connections through one Envoy; dropping it closes them.
pub struct Fleet {
    pub seen: Arc<Seen>,
    watchers: Vec<JoinHandle<()>>,
}

impl Fleet {
    pub fn len(&self) -> usize {
        self.watchers.len()
    }
    pub fn is_empty(&self) -> bool {
        self.watchers.is_empty()
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for w in &self.watchers {
            w.abort();
        }
    }
}

const HANDSHAKE_LIMIT: Duration = Duration::from_secs(30);

/// Opens `count` connections, round-robin over `addrs`, `parallel` handshakes at a time. Fails if any connection cannot be
/// opened or does not complete its handshake in time.
pub async fn open(addrs: &[SocketAddr], count: usize, parallel: usize) -> anyhow::Result<Fleet> {
    anyhow::ensure!(!addrs.is_empty(), "no address to connect to");
    let seen = Arc::new(Seen::default());
    let results: Vec<anyhow::Result<(TcpStream, Vec<u8>)>> = stream::iter(0..count)
        .map(|i| handshake(addrs[i % addrs.len()]))
        .buffer_unordered(parallel.max(1))
        .collect()
        .await;
    let mut watchers = Vec::with_capacity(count);
    let mut failed = Vec::new();
    for r in results {
        match r {
            Ok((s, rest)) => watchers.push(tokio::spawn(watch(s, rest, seen.clone()))),
            Err(e) => failed.push(format!("{e:#}")),
        }
    }
    let fleet = Fleet { seen, watchers };
    if !failed.is_empty() {
        anyhow::bail!(
            "{} of {count} connections to {addrs:?} failed their handshake; the first: {}",
            failed.len(),
            failed[0]
        );
    }
    Ok(fleet)
}

async fn handshake(addr: SocketAddr) -> anyhow::Result<(TcpStream, Vec<u8>)> {
    let fut = async {
        let mut s = TcpStream::connect(addr).await?;
        let mut buf = Vec::new();
        let info = next_line(&mut s, &mut buf).await?;
        anyhow::ensure!(info.starts_with(b"INFO "), "expected INFO, got {:?}", String::from_utf8_lossy(&info));
        s.write_all(b"CONNECT {\"verbose\":false,\"pedantic\":false}\r\nPING\r\n").await?;
        // The server may PING first; its PONG to our PING ends the handshake.
        loop {
            match next_line(&mut s, &mut buf).await?.as_slice() {
                b"PONG\r\n" => break,
                b"PING\r\n" => s.write_all(b"PONG\r\n").await?,
                other => anyhow::bail!("unexpected reply to CONNECT/PING: {:?}", String::from_utf8_lossy(other)),
            }
        }
        anyhow::Ok((s, buf))
    };
    tokio::time::timeout(HANDSHAKE_LIMIT, fut)
        .await
        .map_err(|_| anyhow::anyhow!("no INFO/PONG within {HANDSHAKE_LIMIT:?}"))?
}

/// The next CRLF-terminated line, reading from `s` into `buf` as needed; what follows it stays in `buf`.
async fn next_line(s: &mut TcpStream, buf: &mut Vec<u8>) -> anyhow::Result<Vec<u8>> {
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(i) = buf.windows(2).position(|w| w == b"\r\n") {
            return Ok(buf.drain(..i + 2).collect());
        }
        anyhow::ensure!(buf.len() < 64 * 1024, "no line end in 64 KiB");
        let n = s.read(&mut chunk).await?;
        anyhow::ensure!(n > 0, "closed by the peer after {:?}", String::from_utf8_lossy(buf));
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// After the handshake: answer the server's PINGs, count everything else and the close.
async fn watch(mut s: TcpStream, mut pending: Vec<u8>, seen: Arc<Seen>) {
    let mut buf = [0u8; 512];
    loop {
        if let Err(e) = answer(&mut s, &mut pending, &seen).await {
            seen.closed.fetch_add(1, Ordering::SeqCst);
            seen.problem(format!("answering a server PING failed: {e}"));
            return;
        }
        match s.read(&mut buf).await {
            Ok(0) => {
                seen.closed.fetch_add(1, Ordering::SeqCst);
                seen.problem("a connection was closed by the peer (EOF)".into());
                return;
            }
            Err(e) => {
                seen.closed.fetch_add(1, Ordering::SeqCst);
                seen.problem(format!("a connection failed: {e}"));
                return;
            }
            Ok(n) => pending.extend_from_slice(&buf[..n]),
        }
    }
}

/// Consumes the server's complete `PING`s in `pending` (answering each), counts anything else; a partial
/// `PING` stays for the next read.
async fn answer(s: &mut TcpStream, pending: &mut Vec<u8>, seen: &Seen) -> std::io::Result<()> {
    while !pending.is_empty() {
        if pending.starts_with(b"PING\r\n") {
            pending.drain(..6);
            seen.server_pings.fetch_add(1, Ordering::SeqCst);
            s.write_all(b"PONG\r\n").await?;
        } else if b"PING\r\n".starts_with(pending) {
            break;
        } else {
            seen.unexpected.fetch_add(1, Ordering::SeqCst);
            seen.problem(format!(
                "a client received bytes nobody asked for: {:?}",
                String::from_utf8_lossy(&pending[..pending.len().min(64)])
            ));
            pending.clear();
        }
    }
    Ok(())
}
