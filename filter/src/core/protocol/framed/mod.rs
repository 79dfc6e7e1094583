//! A length-prefixed binary protocol described in configuration.
//!
//! A frame is either a *short frame*, a fixed number of bytes recognised by its first byte (the Netty
//! heartbeat chat's one-byte PING and PONG), or a header of `header_size` bytes holding a length field
//! followed by a body of `field + length_adjust` bytes. The filter's PING and the PONG that answers it are
//! given as the exact bytes of one frame each; a server frame equal to the PONG answers whoever is owed the
//! next one.
//!
//! [`FramedConfig`] is what the operator writes; [`FramedConfig::build`] checks it and decodes the hex once into
//! a [`FramedSpec`], the wire layout every connection shares (`config`, `layout`). `reader::FrameReader` follows one direction,
//! driven by the toolkit's [`Driver`]; `pong` says which frames are the PING and the PONG, and the toolkit's
//! [`Pairing`] withholds a server frame while it may be the PONG owed to the filter.

mod config;
mod layout;
mod pong;
mod reader;
#[cfg(test)]
mod tests;

pub use config::{Endian, FramedConfig};
pub use layout::FramedSpec;

use super::toolkit::{Driver, Pairing};
use super::{skipped, Defer, Output, Owner, Protocol, ProtocolError, Side};
use pong::{FrameMatch, Pong};
use reader::FrameReader;

/// One connection of the configured protocol.
#[derive(Debug)]
pub struct Framed {
    spec: FramedSpec,
    client: Driver<FrameReader>,
    /// How much of the client's current frame equals the PING.
    client_ping: FrameMatch,
    upstream: Driver<FrameReader>,
    /// How much of the server's current frame equals the PONG.
    upstream_pong: FrameMatch,
    pairing: Pairing,
}

impl Framed {
    pub fn new(spec: FramedSpec) -> Self {
        Framed {
            client: Driver::new(Side::Client, FrameReader::new(spec.clone())),
            client_ping: FrameMatch::default(),
            upstream: Driver::new(Side::Upstream, FrameReader::new(spec.clone())),
            upstream_pong: FrameMatch::default(),
            pairing: Pairing::new(),
            spec,
        }
    }
}

impl Protocol for Framed {
    fn on_client_bytes(&mut self, data: &[u8]) -> Result<(), ProtocolError> {
        let ping = self.spec.ping();
        self.client.feed(data, |bytes, ended| {
            self.client_ping.extend(ping, bytes);
            if ended.is_some() && self.client_ping.end(ping) {
                self.pairing.push(Owner::Client);
            }
            Ok(())
        })
    }

    fn can_inject(&self) -> Result<(), Defer> {
        if !self.client.at_boundary() {
            return Err(Defer::MidFrame);
        }
        Ok(())
    }

    fn ping(&self) -> &[u8] {
        self.spec.ping()
    }

    fn on_ping_injected(&mut self) {
        self.pairing.push(Owner::Filter);
    }

    fn on_upstream_bytes(&mut self, data: &[u8], out: &mut Output) -> Result<u32, ProtocolError> {
        let pong = self.spec.pong();
        let matched = &mut self.upstream_pong;
        self.pairing.feed(&mut self.upstream, &Pong(pong), data, out, |bytes, ended| {
            matched.extend(pong, bytes);
            ended.is_some() && matched.end(pong)
        })
    }

    fn release_held(&mut self, out: &mut Output) {
        self.pairing.release(out);
    }

    /// The rest of a body already seen not to be the PING (its last byte, which ends the frame, excepted).
    fn client_skippable(&self) -> u64 {
        if self.client_ping.differs() {
            self.client.skippable()
        } else {
            0
        }
    }

    fn skip_client(&mut self, n: usize) -> usize {
        skipped(self.client.skip((n as u64).min(self.client_skippable())))
    }

    /// The rest of a body already seen not to be the PONG (so not withheld either; its last byte excepted).
    fn upstream_skippable(&self) -> u64 {
        if self.upstream_pong.differs() && !self.pairing.is_holding() {
            self.upstream.skippable()
        } else {
            0
        }
    }

    fn skip_upstream(&mut self, n: usize, out: &mut Output) -> usize {
        let n = skipped(self.upstream.skip((n as u64).min(self.upstream_skippable())));
        out.forward(n);
        n
    }
}
