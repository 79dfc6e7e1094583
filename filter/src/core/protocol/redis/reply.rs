//! The server-side reply reader: every RESP2 and RESP3 reply type, nested aggregates tracked with a small
//! stack of element counts still to come, bulk bodies counted down; and the [`Shape`] of the top-level reply,
//! read as it streams by.

use super::limits::{MAX_ARRAY, MAX_BULK, MAX_DEPTH, MAX_LINE};
use super::number_line::NumberLine;
use super::shape::Shape;
use crate::core::protocol::toolkit::{Countdown, LineEnd, LineEndStep};

#[derive(Clone, Copy, Debug)]
enum ReplyState {
    /// The next byte is a type byte.
    Type,
    /// Inside a line of text: `+`, `-`; RESP3 `_` (null), `,` (double), `#` (boolean), `(` (big number).
    Text { len: u32, cr: bool },
    /// Inside a number line: `:`; a length: `$`, RESP3 `!` (blob error), `=` (verbatim string); an element
    /// count: `*`, RESP3 `~` (set), `%` (map: twice as many elements), `>` (push).
    Number { kind: u8, line: NumberLine },
    /// Inside a bulk string's bytes.
    Body(Countdown),
    /// After a bulk string's bytes: its CRLF.
    BodyEnd(LineEnd),
}

/// Follows the upstream's stream value by value.
#[derive(Clone, Copy, Debug)]
pub(super) struct ReplyReader {
    state: ReplyState,
    /// Elements still to come in each open aggregate, outermost first.
    open: [u32; MAX_DEPTH],
    depth: usize,
    /// The shape of the current (or last) top-level reply.
    shape: Shape,
}

impl Default for ReplyReader {
    fn default() -> Self {
        ReplyReader { state: ReplyState::Type, open: [0; MAX_DEPTH], depth: 0, shape: Shape::new() }
    }
}

impl ReplyReader {
    /// No byte of the next top-level reply has been seen.
    pub(super) fn at_boundary(&self) -> bool {
        matches!(self.state, ReplyState::Type) && self.depth == 0
    }

    /// How the current top-level reply looks so far.
    pub(super) fn shape(&self) -> &Shape {
        &self.shape
    }

    /// The rest of a bulk string's body that the shape does not read: `step` would only count it down.
    pub(super) fn skippable(&self) -> u64 {
        match self.state {
            ReplyState::Body(body) if !self.shape.reads_body(self.depth) => body.left(),
            _ => 0,
        }
    }

    /// Counts up to `n` bytes (no more than [`ReplyReader::skippable`]) as `step` would read them; returns how
    /// many.
    pub(super) fn skip(&mut self, n: u64) -> u64 {
        let n = n.min(self.skippable());
        let ReplyState::Body(mut body) = self.state else { return 0 };
        let counted = body.skip(n);
        self.state = if body.is_done() { ReplyState::BodyEnd(LineEnd::CRLF) } else { ReplyState::Body(body) };
        counted
    }

    /// Reads one piece of a reply (at least one byte of a non-empty `rest`); returns how many bytes it took
    /// and whether the top-level reply ended.
    pub(super) fn step(&mut self, rest: &[u8]) -> Result<(usize, bool), &'static str> {
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
                if level == 0 {
                    self.shape = Shape::new();
                }
                self.shape.on_type(level, t);
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
                        self.shape.on_number(level, kind, n);
                        let ended = self.number_done(kind, n)?;
                        return Ok((i + 1, ended));
                    }
                }
                self.state = ReplyState::Number { kind, line };
                Ok((rest.len(), false))
            }
            ReplyState::Body(mut body) => {
                let (bytes, _) = body.take(rest);
                self.shape.on_body(level, bytes);
                self.state = if body.is_done() { ReplyState::BodyEnd(LineEnd::CRLF) } else { ReplyState::Body(body) };
                Ok((bytes.len(), false))
            }
            ReplyState::BodyEnd(mut end) => {
                let Some(&b) = rest.first() else { return Ok((0, false)) };
                match end.push(b) {
                    LineEndStep::More => {
                        self.state = ReplyState::BodyEnd(end);
                        Ok((1, false))
                    }
                    LineEndStep::Ended => {
                        self.shape.on_bulk_end(level);
                        Ok((1, self.value_end()))
                    }
                    LineEndStep::Invalid => Err("expected CRLF after a bulk string"),
                }
            }
        }
    }

    /// A number line was read; returns whether the top-level reply ended.
    fn number_done(&mut self, kind: u8, n: i64) -> Result<bool, &'static str> {
        match kind {
            b':' => Ok(self.value_end()),
            b'$' | b'!' | b'=' => match n {
                -1 => Ok(self.value_end()),
                0 => {
                    self.state = ReplyState::BodyEnd(LineEnd::CRLF);
                    Ok(false)
                }
                1..=MAX_BULK => {
                    self.state = ReplyState::Body(Countdown::new(n.unsigned_abs()));
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

    /// A value ended: close the aggregates it completes. Returns whether that was the whole reply.
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
}
