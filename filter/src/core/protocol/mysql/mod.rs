//! MySQL and MariaDB client/server protocol.
//!
//! Probe: COM_PING (`01 00 00 00 0e`: payload 0x0e, sequence id 0), injected only at a command boundary once
//! the previous command's whole response has been read; the server answers it with an OK packet (sequence id
//! 1), which is withheld and stripped whole (`pong`, matched on its type, not its bytes).
//!
//! Both directions are read logical packet by logical packet (`reader::PacketReader`, driven by the toolkit's
//! [`Driver`]; payloads are skipped by counting down, only their first bytes kept). `response::Session`
//! follows the handshake (server greeting, the client's HandshakeResponse and its capability flags, auth
//! exchanges until OK or ERR), then each command and its response: OK, ERR, result sets with and without
//! CLIENT_DEPRECATE_EOF, several of them (SERVER_MORE_RESULTS_EXISTS), COM_STMT_PREPARE's definitions,
//! LOCAL INFILE uploads, COM_CHANGE_USER's auth exchange, MariaDB's progress reports. Commands without a reply
//! (COM_STMT_SEND_LONG_DATA, COM_STMT_CLOSE) take no place.
//!
//! A command's response is owed to the client ([`Protocol::reply_owed`]): a query may run for minutes with
//! nothing on the wire, so a silent server is then judged on `reply_timeout`, as Redis commands are.
//!
//! What is not followed exactly is passed through (a [`ProtocolError`], counted once): TLS (CLIENT_SSL), the
//! compressed protocol, MySQL's optional result set metadata,
//! cursors (COM_STMT_EXECUTE with a cursor flag), binlog dumps, commands whose response shape is unknown.
//! A server packet with sequence id 0 and an ERR type where a response starts is the server's unasked goodbye
//! (MySQL 8.0.24+ ER_CLIENT_INTERACTION_TIMEOUT before closing an idle connection): it is forwarded, and
//! nothing is injected on that connection any more, as after COM_QUIT.

mod pong;
mod reader;
mod response;
#[cfg(test)]
mod tests;

use super::toolkit::Driver;
use super::{skipped, Defer, Output, Protocol, ProtocolError, Side};
use pong::Hold;
use reader::{PacketReader, Step};
use response::{ClientMode, Phase, Session};

/// COM_PING: payload length 1, sequence id 0, command 0x0e.
const PING: &[u8] = &[0x01, 0x00, 0x00, 0x00, 0x0e];

/// One MySQL connection.
#[derive(Clone, Debug)]
pub struct Mysql {
    client: Driver<PacketReader>,
    upstream: Driver<PacketReader>,
    session: Session,
    hold: Hold,
}

impl Default for Mysql {
    fn default() -> Self {
        Self::new()
    }
}

impl Mysql {
    pub fn new() -> Self {
        Mysql {
            client: Driver::new(Side::Client, PacketReader::new()),
            upstream: Driver::new(Side::Upstream, PacketReader::new()),
            session: Session::new(),
            hold: Hold::Boundary,
        }
    }
}

impl Protocol for Mysql {
    fn on_client_bytes(&mut self, data: &[u8]) -> Result<(), ProtocolError> {
        self.client.check()?;
        let mut rest = data;
        while !rest.is_empty() {
            let (used, step) = self.client.step(rest)?;
            if step == Some(Step::End) {
                let packet = self.client.reader().packet();
                if let Err(reason) = self.session.on_client_packet(packet) {
                    return Err(self.client.fail(reason));
                }
            }
            if used == 0 && step.is_none() {
                break;
            }
            rest = rest.get(used..).unwrap_or_default();
        }
        Ok(())
    }

    fn can_inject(&self) -> Result<(), Defer> {
        if self.session.closing {
            return Err(Defer::Mode);
        }
        if self.session.phase != Phase::Ready || self.session.client_mode == ClientMode::AuthData {
            return Err(Defer::Handshake);
        }
        if !self.client.at_boundary() {
            return Err(Defer::MidFrame);
        }
        if !self.session.idle() || !self.upstream.at_boundary() {
            return Err(Defer::RepliesOutstanding);
        }
        Ok(())
    }

    fn ping(&self) -> &[u8] {
        PING
    }

    fn on_ping_injected(&mut self) {
        self.session.ping_injected();
    }

    fn on_upstream_bytes(&mut self, data: &[u8], out: &mut Output) -> Result<u32, ProtocolError> {
        self.upstream.check()?;
        let before = out.pongs();
        let mut rest = data;
        while !rest.is_empty() {
            if self.hold == Hold::Boundary {
                self.hold = if self.session.filter_next() { Hold::holding() } else { Hold::Forwarding };
            }
            let (used, step) = self.upstream.step(rest)?;
            let (stepped, after) = rest.split_at_checked(used).unwrap_or((rest, &[]));
            if self.hold.is_holding() {
                if !self.hold.push(stepped) {
                    return Err(self.upstream.fail("the reply to the filter's COM_PING is too long to withhold"));
                }
                out.skip(stepped.len());
            } else {
                out.forward(stepped.len());
            }
            match step {
                Some(step) => {
                    if self.hold.is_holding() && !self.hold.is_reply() {
                        if let Err(reason) = self.hold.decide(self.upstream.reader().packet(), out) {
                            return Err(self.upstream.fail(reason));
                        }
                    }
                    if step == Step::End {
                        let stripped = self.hold.is_reply();
                        if let Err(reason) = self.session.on_upstream_packet(self.upstream.reader().packet()) {
                            return Err(self.upstream.fail(reason));
                        }
                        if stripped {
                            out.pong_answered();
                        }
                        self.hold = Hold::Boundary;
                    }
                }
                None if used == 0 => break,
                None => {}
            }
            rest = after;
        }
        Ok(out.pongs().saturating_sub(before))
    }

    fn release_held(&mut self, out: &mut Output) {
        self.hold.release(out);
    }

    fn reply_owed(&self) -> bool {
        self.session.reply_owed()
    }

    /// The rest of a payload past its kept first bytes (its last byte excepted).
    fn client_skippable(&self) -> u64 {
        self.client.skippable()
    }

    fn skip_client(&mut self, n: usize) -> usize {
        skipped(self.client.skip(n as u64))
    }

    /// The same, on a packet that is not withheld.
    fn upstream_skippable(&self) -> u64 {
        if self.hold.is_holding() {
            0
        } else {
            self.upstream.skippable()
        }
    }

    fn skip_upstream(&mut self, n: usize, out: &mut Output) -> usize {
        let n = skipped(self.upstream.skip((n as u64).min(self.upstream_skippable())));
        out.forward(n);
        n
    }
}
