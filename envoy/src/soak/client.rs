//! Raw clients for the soak: they speak NATS, Redis (RESP2) and the framed echo protocol directly on a TCP
//! stream and compare every reply byte for byte with what the server must send. A PONG the filter failed
//! to strip, a client's own PONG the filter stripped, or a byte out of place shows up as a mismatch or a
//! missing reply. The only bytes accepted without being asked for are nats-server's own `PING`s, which a
//! real client answers.

use super::freeze::Tracker;
use super::Rng;
use crate::probe::Proto;
use crate::resp::{bulk, command as resp};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// How a connection ended other than by the client closing it.
#[derive(Debug)]
pub enum ConnError {
    /// EOF or a reset: the connection was closed from the other side (the filter, for a frozen upstream).
    Closed { at: Instant, how: String },
    /// Wrong bytes, unexpected bytes or no reply in time: always a failure.
    Bad(String),
}

impl std::fmt::Display for ConnError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnError::Closed { how, .. } => write!(f, "closed by the peer ({how})"),
            ConnError::Bad(why) => write!(f, "{why}"),
        }
    }
}

type R<T> = Result<T, ConnError>;

fn closed(how: impl Into<String>) -> ConnError {
    ConnError::Closed { at: Instant::now(), how: how.into() }
}

/// A read or write error: a reset or broken pipe is the peer closing; anything else is a failure.
fn io_error(what: &str, e: std::io::Error) -> ConnError {
    use std::io::ErrorKind::*;
    match e.kind() {
        ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof => closed(format!("{what}: {e}")),
        _ => ConnError::Bad(format!("{what}: {e}")),
    }
}

/// Up to 48 bytes of `b` around `at`, escaped, for a mismatch message.
fn excerpt(b: &[u8], at: usize) -> String {
    let lo = at.saturating_sub(16);
    let hi = (at + 32).min(b.len());
    format!("{:?}", String::from_utf8_lossy(&b[lo.min(hi)..hi]))
}

const SERVER_PING: &[u8] = b"PING\r\n";

pub struct Conn {
    stream: TcpStream,
    proto: Proto,
    id: u64,
    /// The frozen upstream's tracker, told of every request.
    tracker: Option<Arc<Tracker>>,
    /// Bytes read but not yet consumed.
    buf: Vec<u8>,
    /// NATS subject or Redis key of this connection.
    name: String,
    /// Replies checked byte for byte.
    pub replies: u64,
    /// nats-server PINGs answered.
    pub server_pings: u64,
    /// How long to wait for a reply.
    reply_limit: Duration,
}

impl Conn {
    /// TCP connection through Envoy; for NATS also the server's `INFO` line (which needs a live server:
    /// `limit` must cover a freeze). Nothing has been sent yet: the filter does not watch the connection.
    pub async fn connect(addr: SocketAddr, proto: Proto, id: u64, limit: Duration) -> R<Conn> {
        let stream = match tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(addr)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(ConnError::Bad(format!("connect to Envoy {addr}: {e}"))),
            Err(_) => return Err(ConnError::Bad(format!("connect to Envoy {addr}: no answer in 10 s"))),
        };
        stream.set_nodelay(true).map_err(|e| ConnError::Bad(format!("nodelay: {e}")))?;
        let name = match proto {
            Proto::Nats => format!("soak.c{id}"),
            _ => format!("soak:c{id}"),
        };
        let mut c = Conn {
            stream,
            proto,
            id,
            tracker: None,
            buf: Vec::new(),
            name,
            replies: 0,
            server_pings: 0,
            reply_limit: limit,
        };
        if proto == Proto::Nats {
            let deadline = Instant::now() + limit;
            let line = c.line(deadline).await?;
            if !line.starts_with(b"INFO {") {
                return Err(ConnError::Bad(format!("expected INFO, got {}", excerpt(&line, 0))));
            }
        }
        Ok(c)
    }

    /// From now on `tracker` watches this connection (call it just before the client's first byte).
    pub fn watch(&mut self, tracker: Arc<Tracker>) {
        tracker.watch(self.id);
        self.tracker = Some(tracker);
    }

    /// A request went out: a reply is owed from now.
    fn requested(&self) {
        if let Some(t) = &self.tracker {
            t.request(self.id);
        }
    }

    /// The client's first bytes. NATS: CONNECT, a subscription to the connection's own subject, and a PING
    /// whose PONG must arrive. Redis and framed: nothing (their first round is the first byte).
    pub async fn hello(&mut self) -> R<()> {
        if self.proto == Proto::Nats {
            let req = format!("CONNECT {{\"verbose\":false,\"pedantic\":false}}\r\nSUB {} 1\r\nPING\r\n", self.name);
            self.write(req.as_bytes()).await?;
            self.requested();
            self.expect(&[b"PONG\r\n".to_vec()]).await?;
        }
        Ok(())
    }

    /// One request and its exact reply; sometimes the request is written in pieces a few ms apart.
    /// Returns how many replies (frames) were checked.
    pub async fn round(&mut self, rng: &mut Rng) -> R<u64> {
        let (req, want) = match self.proto {
            Proto::Nats => self.nats_round(rng),
            Proto::Redis => self.redis_round(rng),
            Proto::Framed => framed_round(rng),
        };
        if rng.chance(30) && req.len() > 1 {
            let mut cuts: Vec<usize> = (0..rng.range(1, 4)).map(|_| rng.range(1, req.len() as u64) as usize).collect();
            cuts.sort_unstable();
            cuts.dedup();
            let mut from = 0;
            for cut in cuts.into_iter().chain([req.len()]) {
                self.write(&req[from..cut]).await?;
                from = cut;
                if from < req.len() {
                    tokio::time::sleep(rng.millis(1, 30)).await;
                }
            }
        } else {
            self.write(&req).await?;
        }
        self.requested();
        self.expect(&want).await?;
        self.replies += want.len() as u64;
        Ok(want.len() as u64)
    }

    fn nats_round(&self, rng: &mut Rng) -> (Vec<u8>, Vec<Vec<u8>>) {
        let mut req = Vec::new();
        let mut want = Vec::new();
        for _ in 0..rng.range(1, 4) {
            let len = rng.payload_len();
            let payload = rng.payload(len);
            req.extend_from_slice(format!("PUB {} {}\r\n", self.name, payload.len()).as_bytes());
            req.extend_from_slice(&payload);
            req.extend_from_slice(b"\r\n");
            let mut msg = format!("MSG {} 1 {}\r\n", self.name, payload.len()).into_bytes();
            msg.extend_from_slice(&payload);
            msg.extend_from_slice(b"\r\n");
            want.push(msg);
        }
        // The client's own PING: its PONG must reach the client, whatever the filter's PINGs do.
        if rng.chance(50) {
            req.extend_from_slice(b"PING\r\n");
            want.push(b"PONG\r\n".to_vec());
        }
        (req, want)
    }

    fn redis_round(&self, rng: &mut Rng) -> (Vec<u8>, Vec<Vec<u8>>) {
        let mut req = Vec::new();
        let mut want = Vec::new();
        if rng.chance(30) {
            let len = rng.range(0, 64) as usize;
            let text = rng.payload(len);
            req.extend(resp(&[b"ECHO", &text]));
            want.push(bulk(&text));
        }
        let len = rng.payload_len().max(1);
        let value = rng.payload(len);
        // Keys expire: tens of thousands of connections leave nothing behind in the server.
        req.extend(resp(&[b"SET", self.name.as_bytes(), &value, b"PX", b"5000"]));
        want.push(b"+OK\r\n".to_vec());
        req.extend(resp(&[b"GET", self.name.as_bytes()]));
        want.push(bulk(&value));
        // The client's own PING: its +PONG is the client's, the filter must not take it.
        if rng.chance(40) {
            req.extend(resp(&[b"PING"]));
            want.push(b"+PONG\r\n".to_vec());
        }
        (req, want)
    }

    /// Waits `d` expecting nothing but nats-server's own PINGs (answered); returns early only on an error.
    pub async fn idle(&mut self, d: Duration) -> R<()> {
        let deadline = Instant::now() + d;
        loop {
            self.take_server_pings().await?;
            let maybe_server_ping = self.proto == Proto::Nats && SERVER_PING.starts_with(&self.buf);
            if !self.buf.is_empty() && !maybe_server_ping {
                return Err(ConnError::Bad(format!(
                    "{} unexpected bytes while idle (a leaked PONG?): {}",
                    self.buf.len(),
                    excerpt(&self.buf, 0)
                )));
            }
            if Instant::now() >= deadline {
                return Ok(());
            }
            match self.fill(deadline).await {
                Ok(()) => {}
                Err(ConnError::Bad(why)) if why == TIMED_OUT => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    }

    /// Waits up to `d` for the peer to close the connection (anything else received is a failure).
    pub async fn wait_closed(&mut self, d: Duration) -> R<()> {
        self.idle(d).await
    }

    /// Reads exactly the frames in `want`, in order (nats-server's own PINGs, which come only between whole
    /// frames, are answered and skipped).
    async fn expect(&mut self, want: &[Vec<u8>]) -> R<()> {
        let deadline = Instant::now() + self.reply_limit;
        for (i, frame) in want.iter().enumerate() {
            loop {
                if self.proto == Proto::Nats && frame.as_slice() != SERVER_PING {
                    self.take_server_pings().await?;
                    // "P", "PI", ...: a server PING or the frame itself; only more bytes tell.
                    let undecided = !self.buf.is_empty()
                        && SERVER_PING.len() > self.buf.len()
                        && SERVER_PING.starts_with(&self.buf)
                        && !frame.starts_with(&self.buf);
                    if undecided {
                        self.fill_for(deadline, frame, i, want.len()).await?;
                        continue;
                    }
                }
                // Compare what is there already: a wrong byte fails now rather than after a timeout.
                self.check_prefix(frame, i, want.len())?;
                if self.buf.len() >= frame.len() {
                    break;
                }
                self.fill_for(deadline, frame, i, want.len()).await?;
            }
            self.buf.drain(..frame.len());
        }
        Ok(())
    }

    /// `fill`, with a timeout reported as the reply that did not come.
    async fn fill_for(&mut self, deadline: Instant, frame: &[u8], i: usize, n: usize) -> R<()> {
        self.fill(deadline).await.map_err(|e| match e {
            ConnError::Bad(why) if why == TIMED_OUT => ConnError::Bad(format!(
                "no complete reply {} of {n} within {:?}: have {} of its {} bytes {}",
                i + 1,
                self.reply_limit,
                self.buf.len(),
                frame.len(),
                excerpt(&self.buf, 0)
            )),
            other => other,
        })
    }

    fn check_prefix(&self, frame: &[u8], i: usize, n: usize) -> R<()> {
        let k = self.buf.len().min(frame.len());
        if let Some(at) = (0..k).find(|&j| self.buf[j] != frame[j]) {
            return Err(ConnError::Bad(format!(
                "reply {} of {} differs at byte {at} of {}: expected {}, got {}",
                i + 1,
                n,
                frame.len(),
                excerpt(frame, at),
                excerpt(&self.buf, at)
            )));
        }
        Ok(())
    }

    async fn take_server_pings(&mut self) -> R<()> {
        while self.proto == Proto::Nats && self.buf.starts_with(SERVER_PING) {
            self.buf.drain(..SERVER_PING.len());
            self.server_pings += 1;
            self.write(b"PONG\r\n").await?;
        }
        Ok(())
    }

    /// One read (until `deadline`) appended to the buffer.
    async fn fill(&mut self, deadline: Instant) -> R<()> {
        let mut chunk = [0u8; 16 * 1024];
        match tokio::time::timeout_at(deadline, self.stream.read(&mut chunk)).await {
            Err(_) => Err(ConnError::Bad(TIMED_OUT.into())),
            Ok(Ok(0)) => Err(closed("EOF")),
            Ok(Ok(n)) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(())
            }
            Ok(Err(e)) => Err(io_error("read", e)),
        }
    }

    /// NATS: one line (with its CRLF) from the buffer and the stream.
    async fn line(&mut self, deadline: Instant) -> R<Vec<u8>> {
        loop {
            if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                return Ok(self.buf.drain(..i + 2).collect());
            }
            self.fill(deadline).await.map_err(|e| match e {
                ConnError::Bad(why) if why == TIMED_OUT => ConnError::Bad(format!(
                    "no INFO line within {:?}: have {}",
                    self.reply_limit,
                    excerpt(&self.buf, 0)
                )),
                other => other,
            })?;
        }
    }

    async fn write(&mut self, bytes: &[u8]) -> R<()> {
        match tokio::time::timeout(Duration::from_secs(10), self.stream.write_all(bytes)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(io_error("write", e)),
            Err(_) => Err(ConnError::Bad("write blocked for 10 s".into())),
        }
    }
}

const TIMED_OUT: &str = "timed out";

fn framed_round(rng: &mut Rng) -> (Vec<u8>, Vec<Vec<u8>>) {
    let mut req = Vec::new();
    let mut want = Vec::new();
    for _ in 0..rng.range(1, 4) {
        let len = rng.payload_len();
        let mut payload = rng.payload(len);
        // A frame equal to the configured PING or PONG would be the protocol's own, not data.
        if payload == b"PING" || payload == b"PONG" {
            payload.push(b'!');
        }
        let frame = crate::framed_echo::frame(&payload);
        req.extend_from_slice(&frame);
        want.push(frame);
    }
    (req, want)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resp_commands_and_bulk_replies_are_binary_safe() {
        assert_eq!(resp(&[b"GET", b"k"]), b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
        assert_eq!(bulk(b"a\r\nb"), b"$4\r\na\r\nb\r\n");
        assert_eq!(bulk(b""), b"$0\r\n\r\n");
    }

    #[test]
    fn framed_rounds_never_send_the_protocol_frames_as_data() {
        let mut rng = Rng::new(1);
        for _ in 0..2000 {
            let (req, want) = framed_round(&mut rng);
            assert_eq!(req, want.concat());
            for f in want {
                assert_ne!(f, crate::framed_echo::PING_FRAME);
                assert_ne!(f, crate::framed_echo::PONG_FRAME);
            }
        }
    }
}
