//! The server-side reply decoder: every RESP2 and RESP3 reply type, nested aggregates, and what the client gets of
//! each reply (forwarded, stripped, or held back until its owner is known).

use super::number_line::NumberLine;
use super::shape::{Class, Shape};
use super::{Output, Owner, Redis, World, MAX_ARRAY, MAX_BULK, MAX_HELD, MAX_LINE, MAX_STRIPPED};

// ---------------------------------------------------------------------------------------------------
// Server side.

#[derive(Clone, Copy, Debug)]
pub(super) enum ReplyState {
    /// The next byte is a type byte.
    Type,
    /// Inside a line of text: `+`, `-`; RESP3 `_` (null), `,` (double), `#` (boolean), `(` (big number).
    Text { len: u32, cr: bool },
    /// Inside a number line: `:`; a length: `$`, RESP3 `!` (blob error), `=` (verbatim string); an element
    /// count: `*`, RESP3 `~` (set), `%` (map: twice as many elements), `>` (push).
    Number { kind: u8, line: NumberLine },
    /// Inside a bulk string's bytes.
    Body { left: u64 },
    /// After a bulk string's bytes: its CR, then (`lf`) its LF.
    BodyEnd { lf: bool },
}

/// What the client receives of the reply being read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Verdict {
    Forward,
    Strip,
    /// Not known yet: skipped now, given back or dropped once known.
    Hold,
}

/// The top-level reply being read.
#[derive(Clone, Copy, Debug)]
pub(super) struct Reply {
    pub(super) verdict: Verdict,
    /// Its owner was taken from a queue already.
    settled: bool,
    /// It answers a filter PING (counted when it ends).
    filter: bool,
    /// Subscribe mode, and nothing was owed when it began: a push, or unsolicited.
    unowed: bool,
    shape: Shape,
}

/// Bytes withheld from the client while the reply they belong to is not finished: a reply whose owner is
/// not known yet (given back or dropped once it is), or a reply to a filter PING (dropped when it ends). If
/// the connection falls back to pass-through before the reply ends, they are given back, so that the client
/// receives whole replies or nothing of the filter's, however the stream was cut.
#[derive(Debug, Default)]
pub(super) struct Held {
    bytes: Vec<u8>,
}

impl Held {
    fn extend(&mut self, bytes: &[u8], verdict: Verdict) -> Result<(), &'static str> {
        let (limit, too_long) = match verdict {
            Verdict::Strip => (MAX_STRIPPED, "reply to the filter's PING too long"),
            _ => (MAX_HELD, "reply header too long"),
        };
        if self.bytes.len().saturating_add(bytes.len()) > limit {
            return Err(too_long);
        }
        self.bytes.extend_from_slice(bytes);
        Ok(())
    }

    pub(super) fn as_slice(&self) -> &[u8] {
        &self.bytes
    }

    /// Forget the bytes (keeps the few bytes of capacity: the next filter reply reuses them).
    pub(super) fn clear(&mut self) {
        self.bytes.clear();
    }
}

impl Redis {
    // ----- server side -----

    fn with_shape(&mut self, f: impl FnOnce(&mut Shape)) {
        if let Some(reply) = self.reply.as_mut() {
            f(&mut reply.shape);
        }
    }

    /// A top-level reply begins with type byte `t`: whose is it, and what does the client get of it?
    fn begin_reply(&mut self, t: u8) -> Result<(), &'static str> {
        let mut reply =
            Reply { verdict: Verdict::Forward, settled: true, filter: false, unowed: false, shape: Shape::new() };
        if t == b'>' {
            // A RESP3 push: out of band, nobody's reply.
        } else if !self.owners.is_empty() {
            self.silence_through = self.silence_through.saturating_sub(1);
            if self.owners.pop() == Some(Owner::Filter) {
                reply.verdict = Verdict::Strip;
                reply.filter = true;
            }
        } else if self.world == World::Subscribe {
            reply.settled = false;
            reply.unowed = self.sub.entries.is_empty();
            if self.sub.front_is_filter_ping() {
                if t == b'*' {
                    // A push or the pong array: its first element tells.
                    reply.verdict = Verdict::Hold;
                } else {
                    reply.settled = true;
                    reply.filter = self.attribute_other()? == Some(Owner::Filter);
                    reply.verdict = if reply.filter { Verdict::Strip } else { Verdict::Forward };
                }
            }
        }
        self.reply = Some(reply);
        Ok(())
    }

    /// Reads one piece of a reply; returns how many bytes it took and whether the top-level reply ended.
    fn reply_step(&mut self, rest: &[u8]) -> Result<(usize, bool), &'static str> {
        let level = self.depth;
        match self.state {
            ReplyState::Type => {
                let Some(&t) = rest.first() else { return Ok((0, false)) };
                self.state = match t {
                    b'+' | b'-' | b'_' | b',' | b'#' | b'(' => ReplyState::Text { len: 0, cr: false },
                    b':' | b'$' | b'!' | b'=' | b'*' | b'~' | b'%' => {
                        ReplyState::Number { kind: t, line: NumberLine::default() }
                    }
                    b'>' if level == 0 => ReplyState::Number { kind: t, line: NumberLine::default() },
                    b'>' => return Err("push frame inside an aggregate"),
                    // An attribute annotates the reply after it; Redis sends none, and it cannot be stripped apart.
                    b'|' => return Err("RESP3 attributes not supported"),
                    _ => return Err("invalid reply type byte"),
                };
                self.with_shape(|shape| shape.on_type(level, t));
                Ok((1, false))
            }
            ReplyState::Text { mut len, mut cr } => {
                for (i, &b) in rest.iter().enumerate() {
                    if cr {
                        if b != b'\n' {
                            return Err("expected LF after CR");
                        }
                        return Ok((i + 1, self.value_end()));
                    }
                    match b {
                        b'\r' => cr = true,
                        b'\n' => return Err("LF without CR"),
                        _ => {
                            len += 1;
                            if len > MAX_LINE {
                                return Err("reply line too long");
                            }
                        }
                    }
                }
                self.state = ReplyState::Text { len, cr };
                Ok((rest.len(), false))
            }
            ReplyState::Number { kind, mut line } => {
                for (i, &b) in rest.iter().enumerate() {
                    if let Some(n) = line.push(b)? {
                        self.with_shape(|shape| shape.on_number(level, kind, n));
                        let ended = self.number_done(kind, n)?;
                        return Ok((i + 1, ended));
                    }
                }
                self.state = ReplyState::Number { kind, line };
                Ok((rest.len(), false))
            }
            ReplyState::Body { left } => {
                let n = usize::try_from(left).map_or(rest.len(), |left| left.min(rest.len()));
                let body = rest.get(..n).unwrap_or_default();
                self.with_shape(|shape| shape.on_body(level, body));
                let left = left.saturating_sub(n as u64);
                self.state = if left == 0 { ReplyState::BodyEnd { lf: false } } else { ReplyState::Body { left } };
                Ok((n, false))
            }
            ReplyState::BodyEnd { lf } => match (lf, rest.first()) {
                (_, None) => Ok((0, false)),
                (false, Some(b'\r')) => {
                    self.state = ReplyState::BodyEnd { lf: true };
                    Ok((1, false))
                }
                (true, Some(b'\n')) => {
                    self.with_shape(|shape| shape.on_bulk_end(level));
                    Ok((1, self.value_end()))
                }
                _ => Err("expected CRLF after a bulk string"),
            },
        }
    }

    /// A number line was read; returns whether the top-level reply ended.
    fn number_done(&mut self, kind: u8, n: i64) -> Result<bool, &'static str> {
        match kind {
            b':' => Ok(self.value_end()),
            b'$' | b'!' | b'=' => match n {
                -1 => Ok(self.value_end()),
                0 => {
                    self.state = ReplyState::BodyEnd { lf: false };
                    Ok(false)
                }
                1..=MAX_BULK => {
                    self.state = ReplyState::Body { left: n.unsigned_abs() };
                    Ok(false)
                }
                _ => Err("invalid bulk length"),
            },
            _ => match n {
                -1 | 0 => Ok(self.value_end()),
                1..=MAX_ARRAY => {
                    let elements = if kind == b'%' { n * 2 } else { n };
                    let slot = self.open.get_mut(self.depth).ok_or("arrays nested too deep")?;
                    *slot = u32::try_from(elements).map_err(|_| "invalid array length")?;
                    self.depth += 1;
                    self.state = ReplyState::Type;
                    Ok(false)
                }
                _ => Err("invalid array length"),
            },
        }
    }

    /// A value ended: close the arrays it completes. Returns whether that was the whole reply.
    fn value_end(&mut self) -> bool {
        self.state = ReplyState::Type;
        loop {
            let Some(parent) = self.depth.checked_sub(1) else {
                return true;
            };
            let Some(left) = self.open.get_mut(parent) else {
                return true;
            };
            *left = left.saturating_sub(1);
            if *left > 0 {
                return false;
            }
            self.depth = parent;
        }
    }

    /// What the client gets of `span`, the bytes just read of the current reply. Withheld bytes are kept
    /// before they are accounted as skipped: if they cannot be kept, the error leaves them unaccounted and the
    /// connection forwards them.
    fn emit(&mut self, span: &[u8], out: &mut Output) -> Result<(), &'static str> {
        match self.reply.as_ref().map(|reply| reply.verdict) {
            Some(verdict @ (Verdict::Strip | Verdict::Hold)) => {
                self.held.extend(span, verdict)?;
                out.skip(span.len());
            }
            Some(Verdict::Forward) | None => out.forward(span.len()),
        }
        Ok(())
    }

    /// A held reply's shape is known: give its bytes back (a push or subscription reply), or drop them
    /// (the answer to the filter PING at the front).
    fn decide(&mut self, reply: &mut Reply, out: &mut Output) -> Result<(), &'static str> {
        if let Class::Other = reply.shape.class() {
            reply.settled = true;
            if self.attribute_other()? == Some(Owner::Filter) {
                // The held bytes are the start of the filter's reply: kept until it ends.
                reply.filter = true;
                reply.verdict = Verdict::Strip;
                return Ok(());
            }
        }
        out.insert(self.held.as_slice());
        self.held.clear();
        reply.verdict = Verdict::Forward;
        Ok(())
    }

    /// The top-level reply ended; returns whether it answered a filter PING.
    fn end_reply(&mut self, out: &mut Output) -> Result<bool, &'static str> {
        let Some(mut reply) = self.reply.take() else {
            return Ok(false);
        };
        if reply.verdict == Verdict::Hold {
            self.decide(&mut reply, out)?;
        }
        if reply.verdict == Verdict::Strip {
            self.held.clear();
        }
        if !reply.settled {
            let class = reply.shape.class();
            if reply.unowed {
                self.settle_unowed(class)?;
            } else {
                self.settle(class)?;
            }
        }
        if self.given_up && self.owners.filter_owed() == 0 && self.sub.filter_owed == 0 {
            // Nothing left to strip and nothing will be injected again: stop parsing.
            self.blind = true;
            self.sub.clear();
        }
        Ok(reply.filter)
    }

    /// Follows `data`; replies to the filter's PINGs completed are counted in `out`.
    pub(super) fn upstream_feed(&mut self, data: &[u8], out: &mut Output) -> Result<(), &'static str> {
        let mut at = 0usize;
        while let Some(rest) = data.get(at..).filter(|rest| !rest.is_empty()) {
            if self.blind {
                out.forward(rest.len());
                break;
            }
            if self.reply.is_none() {
                let Some(&t) = rest.first() else { break };
                self.begin_reply(t)?;
            }
            let (n, ended) = self.reply_step(rest)?;
            self.emit(rest.get(..n).unwrap_or_default(), out)?;
            at += n;
            if ended {
                if self.end_reply(out)? {
                    out.pong_answered();
                }
            } else if matches!(&self.reply, Some(reply) if reply.verdict == Verdict::Hold && reply.shape.known()) {
                if let Some(mut reply) = self.reply.take() {
                    self.decide(&mut reply, out)?;
                    self.reply = Some(reply);
                }
            }
        }
        Ok(())
    }
}
