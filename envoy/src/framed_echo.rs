//! The framed-protocol test server: u32 big-endian length-prefixed frames. It answers the PING frame
//! `00000004 "PING"` with `00000004 "PONG"` and echoes every other frame. For the "alive but slow" fault it
//! can answer late and stream its replies in small, spaced-out chunks.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub const PING_FRAME: [u8; 8] = [0, 0, 0, 4, b'P', b'I', b'N', b'G'];
pub const PONG_FRAME: [u8; 8] = [0, 0, 0, 4, b'P', b'O', b'N', b'G'];
/// Frames larger than this close the connection instead of allocating without limit.
pub const MAX_FRAME: usize = 64 << 20;

#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Every reply (PONGs included) is sent this late.
    pub reply_delay: Duration,
    /// If non-zero, replies are written in chunks of this size with `chunk_delay` between them.
    pub chunk: usize,
    pub chunk_delay: Duration,
}

#[derive(Default, Debug)]
pub struct Counters {
    pub pings: AtomicU64,
    pub frames: AtomicU64,
}

/// A running server on a loopback port; stops when dropped.
pub struct FramedEcho {
    pub port: u16,
    pub counters: Arc<Counters>,
    task: tokio::task::JoinHandle<()>,
}

impl FramedEcho {
    pub async fn spawn(opts: Options) -> anyhow::Result<FramedEcho> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let counters = Arc::new(Counters::default());
        let task = tokio::spawn(serve(listener, opts, counters.clone()));
        Ok(FramedEcho { port, counters, task })
    }
}

impl Drop for FramedEcho {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub async fn serve(listener: TcpListener, opts: Options, counters: Arc<Counters>) {
    while let Ok((conn, _)) = listener.accept().await {
        let (opts, counters) = (opts.clone(), counters.clone());
        tokio::spawn(async move {
            let _ = connection(conn, &opts, &counters).await;
        });
    }
}

async fn connection(mut conn: TcpStream, opts: &Options, counters: &Counters) -> std::io::Result<()> {
    conn.set_nodelay(true)?;
    loop {
        let mut head = [0u8; 4];
        match conn.read_exact(&mut head).await {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        }
        let len = u32::from_be_bytes(head) as usize;
        if len > MAX_FRAME {
            return Ok(());
        }
        let mut frame = Vec::with_capacity(4 + len);
        frame.extend_from_slice(&head);
        frame.resize(4 + len, 0);
        conn.read_exact(&mut frame[4..]).await?;
        counters.frames.fetch_add(1, Ordering::Relaxed);
        let reply: &[u8] = if frame == PING_FRAME {
            counters.pings.fetch_add(1, Ordering::Relaxed);
            &PONG_FRAME
        } else {
            &frame
        };
        if !opts.reply_delay.is_zero() {
            tokio::time::sleep(opts.reply_delay).await;
        }
        if opts.chunk == 0 {
            conn.write_all(reply).await?;
        } else {
            for part in reply.chunks(opts.chunk) {
                conn.write_all(part).await?;
                tokio::time::sleep(opts.chunk_delay).await;
            }
        }
    }
}

/// Builds one frame: u32 BE length + payload.
pub fn frame(payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(4 + payload.len());
    f.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    f.extend_from_slice(payload);
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn answers_ping_with_pong_and_echoes_other_frames() {
        let srv = FramedEcho::spawn(Options { chunk: 3, ..Options::default() }).await.unwrap();
        let mut c = TcpStream::connect(("127.0.0.1", srv.port)).await.unwrap();
        let data = frame(b"hello world");
        c.write_all(&PING_FRAME).await.unwrap();
        c.write_all(&data).await.unwrap();
        let mut got = vec![0u8; 8 + data.len()];
        c.read_exact(&mut got).await.unwrap();
        assert_eq!(&got[..8], &PONG_FRAME);
        assert_eq!(&got[8..], &data[..]);
        assert_eq!(srv.counters.pings.load(Ordering::Relaxed), 1);
        assert_eq!(srv.counters.frames.load(Ordering::Relaxed), 2);
    }

    #[tokio::test]
    async fn oversized_length_closes_instead_of_allocating() {
        let srv = FramedEcho::spawn(Options::default()).await.unwrap();
        let mut c = TcpStream::connect(("127.0.0.1", srv.port)).await.unwrap();
        c.write_all(&u32::MAX.to_be_bytes()).await.unwrap();
        let mut buf = [0u8; 1];
        assert_eq!(c.read(&mut buf).await.unwrap(), 0);
    }
}
