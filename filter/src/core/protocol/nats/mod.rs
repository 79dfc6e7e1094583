//! NATS client protocol: frame boundaries on the client's stream, and the PONGs that answer the filter's PINGs
//! on the server's stream.
//!
//! Both directions are text control lines, some followed by a payload whose size is the line's last token
//! (`PUB`/`HPUB` from the client, `MSG`/`HMSG` from the server). `reader::LineReader` follows one direction
//! (driven by the toolkit's [`Driver`], which keeps the sticky error); `pong::PongLine` says which server
//! lines may be the PONG owed to the filter, withheld by the toolkit's [`Pairing`] while they may be.

mod pong;
mod reader;
#[cfg(test)]
mod tests;

use super::toolkit::{Driver, Pairing};
use super::{skipped, Defer, Output, Owner, Protocol, ProtocolError, Side};
use pong::{PongLine, MAX_PONG_LINE};
use reader::{LineReader, Op};

const PING: &[u8] = b"PING\r\n";

/// One NATS connection: the client's frames, who owns each PONG, and the PONGs to strip.
#[derive(Debug)]
pub struct Nats {
    client: Driver<LineReader>,
    /// The client's `CONNECT` has been seen (servers with auth refuse any other op before it).
    connected: bool,
    upstream: Driver<LineReader>,
    pairing: Pairing<MAX_PONG_LINE>,
}

impl Default for Nats {
    fn default() -> Self {
        Self::new()
    }
}

impl Nats {
    pub fn new() -> Self {
        Nats {
            client: Driver::new(Side::Client, LineReader::new(Side::Client)),
            connected: false,
            upstream: Driver::new(Side::Upstream, LineReader::new(Side::Upstream)),
            pairing: Pairing::new(),
        }
    }
}

impl Protocol for Nats {
    fn on_client_bytes(&mut self, data: &[u8]) -> Result<(), ProtocolError> {
        self.client.feed(data, |_, frame| {
            match frame {
                Some(Op::Ping) => self.pairing.push(Owner::Client),
                Some(Op::Connect) => self.connected = true,
                _ => {}
            }
            Ok(())
        })
    }

    fn can_inject(&self) -> Result<(), Defer> {
        if self.client.error().is_some() {
            return Err(Defer::MidFrame);
        }
        if !self.connected {
            return Err(Defer::Handshake);
        }
        if !self.client.at_boundary() {
            return Err(Defer::MidFrame);
        }
        Ok(())
    }

    fn ping(&self) -> &[u8] {
        PING
    }

    fn on_ping_injected(&mut self) {
        self.pairing.push(Owner::Filter);
    }

    fn on_upstream_bytes(&mut self, data: &[u8], out: &mut Output) -> Result<u32, ProtocolError> {
        self.pairing.feed(&mut self.upstream, &PongLine, data, out, |_, frame| frame == Some(Op::Pong))
    }

    fn release_held(&mut self, out: &mut Output) {
        self.pairing.release(out);
    }

    /// Payloads are followed by their `\r\n`: all of a payload may be skipped.
    fn client_skippable(&self) -> u64 {
        self.client.skippable()
    }

    fn skip_client(&mut self, n: usize) -> usize {
        skipped(self.client.skip(n as u64))
    }

    /// A payload is never part of a PONG (a line with a payload was seen not to fit one), so it is never
    /// withheld: all of it may be skipped.
    fn upstream_skippable(&self) -> u64 {
        if !self.pairing.is_holding() {
            self.upstream.skippable()
        } else {
            0
        }
    }

    fn skip_upstream(&mut self, n: usize, out: &mut Output) -> usize {
        let n = if self.pairing.is_holding() { 0 } else { skipped(self.upstream.skip(n as u64)) };
        out.forward(n);
        n
    }
}
