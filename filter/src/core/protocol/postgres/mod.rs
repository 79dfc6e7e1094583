//! PostgreSQL (frontend/backend protocol 3).
//!
//! The filter's PING is `Sync`; on an idle connection the server answers it with one `ReadyForQuery` (`Z`)
//! and does nothing else. The server answers every client `Query`, `Sync` and `FunctionCall` with exactly one
//! `Z`, in order, so a `Sync` goes in only where every one of them has been answered:
//! - never before the first `Z` (startup and authentication);
//! - never inside an extended-query pipeline (`Parse`/`Bind`/`Execute`... not yet closed by the client's
//!   `Sync`): a `Sync` there would end its implicit transaction early;
//! - never in COPY: `COPY FROM STDIN` and `COPY TO STDOUT` owe their `Z` until the copy ends, and the server
//!   ignores a `Sync` in copy-in mode (the decoder forgets the client's `Sync`s that reach it there);
//!   copy-both (replication) stops the watch.
//!
//! Only the `Z` owed to the filter is stripped; unasked server messages (`NoticeResponse`, `ParameterStatus`,
//! `NotificationResponse`, a FATAL `ErrorResponse` before a close) pass like any other. While a `Z` is owed
//! to the client (a slow query such as `SELECT pg_sleep(600)`), the server's silence is judged on
//! `reply_timeout` ([`Protocol::reply_owed`]), not on PINGs.
//!
//! After an SSLRequest or GSSENCRequest that the server accepts (`S`, `G`), or a client that starts with TLS
//! directly, the rest is encrypted: the connection is no longer watched (every later PING is deferred as
//! [`Defer::Mode`] and every byte skipped unread). Terminate TLS in Envoy in front of the filter to watch
//! such connections. A CancelRequest's connection carries nothing else: not watched either.
//!
//! `reader::MessageReader` follows one direction, driven by the toolkit's [`Driver`]; `pong` holds the `Sync`
//! and the `Z`'s shape for the toolkit's [`Pairing`].

mod pong;
mod reader;
#[cfg(test)]
mod tests;

use super::toolkit::{Driver, Pairing};
use super::{skipped, Defer, Output, Owner, Protocol, ProtocolError, Side};
use pong::{Ready, READY_LEN, SYNC};
use reader::{Message, MessageReader, CANCEL_REQUEST, GSSENC_REQUEST, SSL_REQUEST};

/// Why a connection is no longer watched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unwatched {
    /// Encrypted (TLS or GSSAPI) from the handshake on.
    Encrypted,
    /// A CancelRequest's connection.
    Cancel,
    /// Copy-both mode (streaming replication).
    CopyBoth,
}

/// One PostgreSQL connection.
///
/// The filter's `Sync` goes in only when the client is owed no `Z`, so every `Z` owed to the filter comes
/// before any owed to the client: the toolkit's [`Pairing`] holds only the filter's, and the client's are a
/// count.
#[derive(Debug)]
pub struct Postgres {
    client: Driver<MessageReader>,
    upstream: Driver<MessageReader>,
    /// Holds at most a `ReadyForQuery` (6 bytes).
    pairing: Pairing<READY_LEN>,
    /// `Z`s the server owes the filter (mirrors the pairing's queue, which holds only the filter's).
    filter_owed: u32,
    /// `Z`s the server owes the client: its `Query`s, `Sync`s and `FunctionCall`s not answered yet.
    client_owed: u64,
    /// The first `Z` arrived: startup and authentication are over.
    ready: bool,
    /// The client sent extended-query messages since its last `Sync`.
    pipeline_open: bool,
    /// The client's `Sync`s since its last `Execute` or `Query`: the ones a `COPY FROM STDIN` they follow
    /// makes the server ignore.
    syncs_since_command: u64,
    /// `COPY FROM STDIN` in progress: the server sent `CopyInResponse`, the client has not ended the copy.
    copy_in: bool,
    unwatched: Option<Unwatched>,
}

impl Default for Postgres {
    fn default() -> Self {
        Self::new()
    }
}

impl Postgres {
    pub fn new() -> Self {
        Postgres {
            client: Driver::new(Side::Client, MessageReader::client()),
            upstream: Driver::new(Side::Upstream, MessageReader::upstream()),
            pairing: Pairing::new(),
            filter_owed: 0,
            client_owed: 0,
            ready: false,
            pipeline_open: false,
            syncs_since_command: 0,
            copy_in: false,
            unwatched: None,
        }
    }

    /// Why the connection is no longer watched, if it is not.
    pub fn unwatched(&self) -> Option<Unwatched> {
        self.unwatched
    }

    fn stop_watching(&mut self, why: Unwatched) {
        self.unwatched = Some(why);
        self.client.reader_mut().go_opaque();
        self.upstream.reader_mut().go_opaque();
    }
}

impl Protocol for Postgres {
    fn on_client_bytes(&mut self, data: &[u8]) -> Result<(), ProtocolError> {
        if self.unwatched.is_some() {
            return Ok(());
        }
        let mut stop = None;
        let mut answers = 0u8;
        let result = self.client.feed(data, |_, message| {
            match message {
                Some(Message::Typed(b'Q' | b'F')) => {
                    self.client_owed = self.client_owed.saturating_add(1);
                    self.syncs_since_command = 0;
                }
                // The server ignores a Sync in copy-in mode.
                Some(Message::Typed(b'S')) if !self.copy_in => {
                    self.client_owed = self.client_owed.saturating_add(1);
                    self.syncs_since_command = self.syncs_since_command.saturating_add(1);
                    self.pipeline_open = false;
                }
                Some(Message::Typed(b'E')) => {
                    self.pipeline_open = true;
                    self.syncs_since_command = 0;
                }
                Some(Message::Typed(b'P' | b'B' | b'D' | b'C')) => self.pipeline_open = true,
                // CopyDone, CopyFail.
                Some(Message::Typed(b'c' | b'f')) => self.copy_in = false,
                Some(Message::Startup(SSL_REQUEST | GSSENC_REQUEST)) => answers = answers.saturating_add(1),
                Some(Message::Startup(CANCEL_REQUEST)) => stop = Some(Unwatched::Cancel),
                Some(Message::DirectTls) => stop = Some(Unwatched::Encrypted),
                _ => {}
            }
            Ok(())
        });
        for _ in 0..answers {
            self.upstream.reader_mut().expect_answer();
        }
        if let Some(why) = stop {
            self.stop_watching(why);
        }
        result
    }

    fn can_inject(&self) -> Result<(), Defer> {
        if self.unwatched.is_some() {
            return Err(Defer::Mode);
        }
        if !self.client.at_boundary() {
            return Err(Defer::MidFrame);
        }
        if !self.ready {
            return Err(Defer::Handshake);
        }
        if self.client_owed > 0 || self.copy_in {
            return Err(Defer::RepliesOutstanding);
        }
        if self.pipeline_open {
            return Err(Defer::Transaction);
        }
        Ok(())
    }

    fn ping(&self) -> &[u8] {
        SYNC
    }

    fn on_ping_injected(&mut self) {
        self.filter_owed = self.filter_owed.saturating_add(1);
        self.pairing.push(Owner::Filter);
    }

    fn on_upstream_bytes(&mut self, data: &[u8], out: &mut Output) -> Result<u32, ProtocolError> {
        if self.unwatched.is_some() {
            out.forward(data.len());
            return Ok(0);
        }
        let Postgres { upstream, pairing, filter_owed, client_owed, ready, syncs_since_command, copy_in, .. } = self;
        let mut stop = None;
        let result = pairing.feed(upstream, &Ready, data, out, |_, message| match message {
            Some(Message::Typed(b'Z')) => {
                *ready = true;
                // The filter's are owed first (see `Postgres`).
                if *filter_owed > 0 {
                    *filter_owed -= 1;
                } else {
                    *client_owed = client_owed.saturating_sub(1);
                }
                true
            }
            // CopyInResponse: the client's Syncs since the COPY's Execute will be ignored.
            Some(Message::Typed(b'G')) => {
                *copy_in = true;
                *client_owed = client_owed.saturating_sub(*syncs_since_command);
                *syncs_since_command = 0;
                false
            }
            Some(Message::Typed(b'W')) => {
                stop = Some(Unwatched::CopyBoth);
                false
            }
            Some(Message::Answer(b'S' | b'G')) => {
                stop = Some(Unwatched::Encrypted);
                false
            }
            _ => false,
        });
        if let Some(why) = stop {
            self.stop_watching(why);
        }
        result
    }

    fn release_held(&mut self, out: &mut Output) {
        self.pairing.release(out);
    }

    /// The server owes the client a `Z` that nothing of the filter's comes before, outside COPY FROM STDIN
    /// (there the server waits for the client).
    fn reply_owed(&self) -> bool {
        self.unwatched.is_none() && self.ready && !self.copy_in && self.filter_owed == 0 && self.client_owed > 0
    }

    /// Bodies (all of them but their last byte); everything once unwatched.
    fn client_skippable(&self) -> u64 {
        if self.unwatched.is_some() {
            return u64::MAX;
        }
        self.client.skippable()
    }

    fn skip_client(&mut self, n: usize) -> usize {
        if self.unwatched.is_some() {
            return n;
        }
        skipped(self.client.skip(n as u64))
    }

    /// A body is never withheld: only a `Z` may be the filter's reply, and its one body byte ends it.
    fn upstream_skippable(&self) -> u64 {
        if self.unwatched.is_some() {
            return u64::MAX;
        }
        if self.pairing.is_holding() {
            return 0;
        }
        self.upstream.skippable()
    }

    fn skip_upstream(&mut self, n: usize, out: &mut Output) -> usize {
        let n = if self.unwatched.is_some() {
            n
        } else if self.pairing.is_holding() {
            0
        } else {
            skipped(self.upstream.skip(n as u64))
        };
        out.forward(n);
        n
    }
}
