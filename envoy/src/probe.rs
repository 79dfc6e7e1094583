//! A raw client connection through Envoy that measures "time until the client's connection is closed".
//! It speaks just enough of each protocol to get the upstream connection established and answering, then
//! watches: reads (and counts) whatever arrives, optionally keeps sending, and notes EOF or error.

use crate::framed_echo;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    Nats,
    Redis,
    Framed,
}

pub struct Probe {
    stream: TcpStream,
    proto: Proto,
}

#[derive(Clone, Debug)]
pub struct Outcome {
    /// Time from the start of `watch` until EOF or an error, or None if still open at the limit.
    pub closed_after: Option<Duration>,
    /// Bytes the client received while watching, apart from server PINGs (a stripped PONG must never show up here).
    pub received: usize,
    pub how: String,
}

async fn read_until(s: &mut TcpStream, needle: &[u8], limit: Duration) -> anyhow::Result<Vec<u8>> {
    let mut got = Vec::new();
    let deadline = Instant::now() + limit;
    while !got.windows(needle.len()).any(|w| w == needle) {
        let mut buf = [0u8; 4096];
        let left = deadline.saturating_duration_since(Instant::now());
        let n = tokio::time::timeout(left, s.read(&mut buf)).await.map_err(|_| {
            anyhow::anyhow!(
                "no {:?} within {limit:?}; got {:?}",
                String::from_utf8_lossy(needle),
                String::from_utf8_lossy(&got)
            )
        })??;
        anyhow::ensure!(
            n > 0,
            "EOF while waiting for {:?}; got {:?}",
            String::from_utf8_lossy(needle),
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&buf[..n]);
    }
    Ok(got)
}

impl Probe {
    /// Connects and does one full round trip with the real upstream behind Envoy.
    pub async fn connect(addr: SocketAddr, proto: Proto) -> anyhow::Result<Probe> {
        let mut s = TcpStream::connect(addr).await?;
        s.set_nodelay(true)?;
        let limit = Duration::from_secs(5);
        match proto {
            Proto::Nats => {
                read_until(&mut s, b"\r\n", limit).await?; // INFO
                s.write_all(b"CONNECT {\"verbose\":false,\"pedantic\":false}\r\nPING\r\n").await?;
                read_until(&mut s, b"PONG\r\n", limit).await?;
            }
            Proto::Redis => {
                s.write_all(b"*1\r\n$4\r\nPING\r\n").await?;
                read_until(&mut s, b"+PONG\r\n", limit).await?;
            }
            Proto::Framed => {
                let hello = framed_echo::frame(b"hello");
                s.write_all(&hello).await?;
                read_until(&mut s, &hello, limit).await?;
            }
        }
        Ok(Probe { stream: s, proto })
    }

    /// A message that needs no reply, for "the client keeps sending".
    fn traffic(&self) -> Vec<u8> {
        match self.proto {
            Proto::Nats => b"PUB probe.traffic 5\r\nhello\r\n".to_vec(),
            Proto::Redis => b"*3\r\n$7\r\nPUBLISH\r\n$5\r\nprobe\r\n$5\r\nhello\r\n".to_vec(),
            Proto::Framed => framed_echo::frame(b"traffic"),
        }
    }

    /// Watches for up to `limit`; with `send_every`, writes a message at that period meanwhile.
    pub async fn watch(&mut self, limit: Duration, send_every: Option<Duration>) -> Outcome {
        let start = Instant::now();
        let deadline = tokio::time::Instant::now() + limit;
        let mut received = 0usize;
        let mut ticker = tokio::time::interval(send_every.unwrap_or(Duration::from_secs(3600)));
        ticker.tick().await;
        let msg = self.traffic();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            tokio::select! {
                r = self.stream.read(&mut buf) => match r {
                    Ok(0) => return Outcome { closed_after: Some(start.elapsed()), received, how: "EOF".into() },
                    Ok(n) => {
                        let (other, server_pings) = self.split_server_pings(&buf[..n]);
                        received += other;
                        // A real client answers the server's own PINGs (nats-server sends its first soon after
                        // CONNECT); they are the server's traffic, not a leak.
                        for _ in 0..server_pings {
                            if let Err(e) = self.stream.write_all(b"PONG\r\n").await {
                                return Outcome { closed_after: Some(start.elapsed()), received, how: format!("write error: {e}") };
                            }
                        }
                    }
                    Err(e) => return Outcome { closed_after: Some(start.elapsed()), received, how: format!("read error: {e}") },
                },
                _ = ticker.tick(), if send_every.is_some() => {
                    if let Err(e) = self.stream.write_all(&msg).await {
                        return Outcome { closed_after: Some(start.elapsed()), received, how: format!("write error: {e}") };
                    }
                }
                _ = tokio::time::sleep_until(deadline) => {
                    return Outcome { closed_after: None, received, how: format!("still open at {limit:?}") };
                }
            }
        }
    }

    /// Uploads one never-ending Redis value (`SET upload <1 GB>`) as fast as the connection takes it, for up to
    /// `limit`, and notes when the connection closed (EOF, or an error reading or writing).
    pub async fn upload(&mut self, limit: Duration) -> Outcome {
        let start = Instant::now();
        let deadline = tokio::time::Instant::now() + limit;
        let (mut reader, mut writer) = self.stream.split();
        let header = b"*3\r\n$3\r\nSET\r\n$6\r\nupload\r\n$1000000000\r\n".to_vec();
        let piece = vec![b'u'; 64 * 1024];
        let write = async {
            writer.write_all(&header).await?;
            loop {
                writer.write_all(&piece).await?;
            }
            #[allow(unreachable_code)]
            std::io::Result::Ok(())
        };
        let mut buf = [0u8; 1024];
        let closed = |how: String| Outcome { closed_after: Some(start.elapsed()), received: 0, how };
        tokio::select! {
            r = write => closed(format!("write error: {r:?}")),
            r = reader.read(&mut buf) => match r {
                Ok(0) => closed("EOF".into()),
                Ok(n) => closed(format!("unexpected reply mid-upload: {:?}", String::from_utf8_lossy(&buf[..n]))),
                Err(e) => closed(format!("read error: {e}")),
            },
            _ = tokio::time::sleep_until(deadline) => {
                Outcome { closed_after: None, received: 0, how: format!("still open at {limit:?}") }
            }
        }
    }

    /// For NATS: (bytes that are not a whole `PING\r\n` from the server, number of server PINGs).
    fn split_server_pings(&self, chunk: &[u8]) -> (usize, usize) {
        if self.proto != Proto::Nats {
            return (chunk.len(), 0);
        }
        let pings = chunk.windows(6).filter(|w| *w == b"PING\r\n").count();
        (chunk.len() - 6 * pings, pings)
    }

    pub fn stream(&mut self) -> &mut TcpStream {
        &mut self.stream
    }
}

/// A MySQL packet: 3-byte little-endian length, sequence id, payload.
fn mysql_packet(seq: u8, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX).to_le_bytes();
    [&[len[0], len[1], len[2], seq][..], payload].concat()
}

async fn read_mysql_packet(s: &mut TcpStream) -> anyhow::Result<(u8, Vec<u8>)> {
    let mut header = [0u8; 4];
    s.read_exact(&mut header).await?;
    let len = u32::from_le_bytes([header[0], header[1], header[2], 0]) as usize;
    let mut payload = vec![0; len];
    s.read_exact(&mut payload).await?;
    Ok((header[3], payload))
}

/// A MySQL / MariaDB client logged in by hand as root without a password (the suite's MariaDB,
/// [`crate::Upstream::mariadb`]), so that the moment its connection closes can be watched on the socket.
pub async fn mysql_login(addr: SocketAddr) -> anyhow::Result<TcpStream> {
    let mut s = TcpStream::connect(addr).await?;
    s.set_nodelay(true)?;
    let limit = Duration::from_secs(5);
    let (_, greeting) = tokio::time::timeout(limit, read_mysql_packet(&mut s)).await??;
    anyhow::ensure!(greeting.first() == Some(&0x0a), "not a MySQL greeting: {greeting:?}");
    // PROTOCOL_41, SECURE_CONNECTION, PLUGIN_AUTH, TRANSACTIONS, MULTI_RESULTS, DEPRECATE_EOF.
    let caps: u32 = 0x200 | 0x8000 | 0x8_0000 | 0x2000 | 0x2_0000 | 1 << 24;
    let mut login = caps.to_le_bytes().to_vec();
    login.extend_from_slice(&(1u32 << 24).to_le_bytes());
    login.push(45);
    login.extend_from_slice(&[0; 23]);
    login.extend_from_slice(b"root\0\0mysql_native_password\0");
    s.write_all(&mysql_packet(1, &login)).await?;
    loop {
        let (seq, reply) = tokio::time::timeout(limit, read_mysql_packet(&mut s)).await??;
        match reply.first() {
            Some(0x00) => return Ok(s),
            // An auth switch: the empty password's answer is empty.
            Some(0xfe) => s.write_all(&mysql_packet(seq.wrapping_add(1), b"")).await?,
            _ => anyhow::bail!("MySQL login refused: {}", String::from_utf8_lossy(&reply)),
        }
    }
}

/// A PostgreSQL client logged in by hand as `postgres` (trust authentication: the suite's server,
/// [`crate::Upstream::postgres`]), ready for a query once the server's first ReadyForQuery arrived, so that the
/// moment its connection closes can be watched on the socket.
pub async fn postgres_login(addr: SocketAddr) -> anyhow::Result<TcpStream> {
    let mut s = TcpStream::connect(addr).await?;
    s.set_nodelay(true)?;
    // StartupMessage: length, protocol 3.0, then key/value pairs ending in an empty key.
    let body = [&196608u32.to_be_bytes()[..], b"user\0postgres\0database\0postgres\0\0"].concat();
    let len = u32::try_from(body.len() + 4)?;
    s.write_all(&[&len.to_be_bytes()[..], &body].concat()).await?;
    let limit = Duration::from_secs(5);
    loop {
        let mut header = [0u8; 5];
        tokio::time::timeout(limit, s.read_exact(&mut header)).await??;
        let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
        let mut payload = vec![0; len.saturating_sub(4)];
        tokio::time::timeout(limit, s.read_exact(&mut payload)).await??;
        match header[0] {
            b'Z' => return Ok(s),
            b'E' => anyhow::bail!("PostgreSQL login refused: {}", String::from_utf8_lossy(&payload)),
            _ => {} // AuthenticationOk, ParameterStatus, BackendKeyData
        }
    }
}

/// A COM_QUERY packet (sequence id 0), for a query in flight.
pub fn mysql_query(sql: &str) -> Vec<u8> {
    mysql_packet(0, &[&[0x03][..], sql.as_bytes()].concat())
}

/// Watches a connection for up to `limit`: when it closed (EOF or an error), counted from `from`.
pub async fn watch_close(s: &mut TcpStream, from: Instant, limit: Duration) -> Outcome {
    let deadline = tokio::time::Instant::from_std(from + limit);
    let mut received = 0usize;
    let mut buf = vec![0u8; 4096];
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Err(_) => return Outcome { closed_after: None, received, how: format!("still open at {limit:?}") },
            Ok(Ok(0)) => return Outcome { closed_after: Some(from.elapsed()), received, how: "EOF".into() },
            Ok(Err(e)) => {
                return Outcome { closed_after: Some(from.elapsed()), received, how: format!("read error: {e}") }
            }
            Ok(Ok(n)) => received += n,
        }
    }
}
