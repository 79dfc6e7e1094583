//! Test support shared by the decoders' unit tests, the property tests in `filter/tests` and the fuzz
//! targets: what the client receives from the upstream through a [`Protocol`], checked against the trait's
//! contract. Plain code (no test-only dependencies), never called by the filter itself.

use std::fmt;

use super::{Output, Protocol, ProtocolError};

/// Why [`ClientView`] or [`client_view`] could not give the client's view.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ViewError {
    /// The decoder broke the contract: a chunk it accepted is not fully accounted for, or a chunk it failed
    /// on accounts for more bytes than it has.
    Unaccounted { accounted: usize, chunk: usize, failed: bool },
    /// The stream is not the protocol ([`client_view`] expects a valid one; [`ClientView::feed`] reports the
    /// chunk the decoder failed on, and passes the connection through from there, as the connection core does).
    Protocol(ProtocolError),
}

impl fmt::Display for ViewError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ViewError::Unaccounted { accounted, chunk, failed: false } => {
                write!(f, "an Ok chunk must be fully accounted for: {accounted} of {chunk} bytes")
            }
            ViewError::Unaccounted { accounted, chunk, failed: true } => {
                write!(f, "an error accounted for more than the chunk: {accounted} of {chunk} bytes")
            }
            ViewError::Protocol(error) => write!(f, "{error}"),
        }
    }
}

/// The upstream's stream fed chunk by chunk through a decoder, as the connection core does, keeping what the
/// client receives and how many replies to the filter's PINGs were stripped.
#[derive(Debug, Default)]
pub struct ClientView {
    out: Output,
    seen: Vec<u8>,
    answered: u64,
    error: Option<ProtocolError>,
}

impl ClientView {
    pub fn new() -> Self {
        Self::default()
    }

    /// One upstream chunk. Returns the replies to the filter completed in it, or the decoder's error; after an
    /// error the held bytes are given back and everything from there on is forwarded as it is (the decoder is
    /// not called again but to give back held bytes), as the connection core does.
    pub fn feed(&mut self, protocol: &mut dyn Protocol, chunk: &[u8]) -> Result<u32, ViewError> {
        self.out.clear();
        let result = if let Some(error) = &self.error {
            protocol.release_held(&mut self.out);
            self.out.forward(chunk.len());
            Err(ViewError::Protocol(error.clone()))
        } else {
            match protocol.on_upstream_bytes(chunk, &mut self.out) {
                Ok(answered) => {
                    self.answered = self.answered.saturating_add(u64::from(answered));
                    if self.out.accounted() != chunk.len() {
                        return Err(self.unaccounted(chunk, false));
                    }
                    Ok(answered)
                }
                Err(error) => {
                    self.answered = self.answered.saturating_add(u64::from(self.out.pongs()));
                    if self.out.accounted() > chunk.len() {
                        return Err(self.unaccounted(chunk, true));
                    }
                    protocol.release_held(&mut self.out);
                    self.out.forward(chunk.len().saturating_sub(self.out.accounted()));
                    self.error = Some(error.clone());
                    Err(ViewError::Protocol(error))
                }
            }
        };
        match self.out.apply(chunk) {
            Some(bytes) => self.seen.extend_from_slice(&bytes),
            None => self.seen.extend_from_slice(chunk),
        }
        result
    }

    fn unaccounted(&self, chunk: &[u8], failed: bool) -> ViewError {
        ViewError::Unaccounted { accounted: self.out.accounted(), chunk: chunk.len(), failed }
    }

    /// The upstream's stream ended: the bytes the decoder held are given back.
    pub fn finish(&mut self, protocol: &mut dyn Protocol) {
        self.out.clear();
        protocol.release_held(&mut self.out);
        self.seen.extend(self.out.apply(&[]).unwrap_or_default());
    }

    /// What the client received so far.
    pub fn seen(&self) -> &[u8] {
        &self.seen
    }

    /// Replies to the filter's PINGs stripped so far (those completed in a chunk that ended in an error too).
    pub fn answered(&self) -> u64 {
        self.answered
    }

    /// The decoder's error, once it failed.
    pub fn error(&self) -> Option<&ProtocolError> {
        self.error.as_ref()
    }

    /// What the client received.
    pub fn into_seen(self) -> Vec<u8> {
        self.seen
    }
}

/// What the client receives when the valid `chunks` come from the upstream (held bytes given back at the
/// end), and how many replies to the filter's PINGs were stripped; every byte of every chunk accounted for.
pub fn client_view(protocol: &mut dyn Protocol, chunks: &[&[u8]]) -> Result<(Vec<u8>, u32), ViewError> {
    let mut view = ClientView::new();
    let mut answered = 0u32;
    for chunk in chunks {
        answered = answered.saturating_add(view.feed(protocol, chunk)?);
    }
    view.finish(protocol);
    Ok((view.into_seen(), answered))
}
