//! Line ends: the `\r\n` that must follow a body, and the end of a line skipped without looking at it.

/// What a byte did to a [`LineEnd`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineEndStep {
    /// The `\r`: the `\n` is still to come.
    More,
    /// The line ended.
    Ended,
    /// Not a line end: the stream is not the protocol.
    Invalid,
}

/// The line end expected right after a body, fed byte by byte (it may be split across chunks).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LineEnd {
    cr: bool,
    /// A `\n` alone also ends the line (NATS servers accept it; Redis does not).
    bare_lf: bool,
}

impl LineEnd {
    /// Exactly `\r\n`.
    pub const CRLF: LineEnd = LineEnd { cr: false, bare_lf: false };
    /// `\r\n` or a bare `\n`.
    pub const CRLF_OR_LF: LineEnd = LineEnd { cr: false, bare_lf: true };

    pub fn push(&mut self, b: u8) -> LineEndStep {
        match (self.cr, b) {
            (false, b'\r') => {
                self.cr = true;
                LineEndStep::More
            }
            (true, b'\n') => LineEndStep::Ended,
            (false, b'\n') if self.bare_lf => LineEndStep::Ended,
            _ => LineEndStep::Invalid,
        }
    }
}

/// Where the `\n` ending a skipped line is, searching no further than `budget` bytes (a line may not grow
/// past the protocol's limit, so garbage without a line end fails fast instead of being read forever).
/// `Err(searched)`: no line end in the first `searched` bytes.
pub fn find_line_end(data: &[u8], budget: usize) -> Result<usize, usize> {
    let window = data.get(..budget).unwrap_or(data);
    window.iter().position(|&b| b == b'\n').ok_or(window.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(mut end: LineEnd, bytes: &[u8]) -> Vec<LineEndStep> {
        bytes.iter().map(|&b| end.push(b)).collect()
    }

    #[test]
    fn crlf_only() {
        use LineEndStep::*;
        assert_eq!(feed(LineEnd::CRLF, b"\r\n"), [More, Ended]);
        assert_eq!(feed(LineEnd::CRLF, b"\n"), [Invalid]);
        assert_eq!(feed(LineEnd::CRLF, b"\rx"), [More, Invalid]);
        assert_eq!(feed(LineEnd::CRLF, b"\r\r"), [More, Invalid]);
        assert_eq!(feed(LineEnd::CRLF, b"x"), [Invalid]);
    }

    #[test]
    fn crlf_or_a_bare_lf() {
        use LineEndStep::*;
        assert_eq!(feed(LineEnd::CRLF_OR_LF, b"\r\n"), [More, Ended]);
        assert_eq!(feed(LineEnd::CRLF_OR_LF, b"\n"), [Ended]);
        assert_eq!(feed(LineEnd::CRLF_OR_LF, b"\r\r"), [More, Invalid]);
    }

    #[test]
    fn the_search_stops_at_the_budget() {
        assert_eq!(find_line_end(b"abc\ndef", 10), Ok(3));
        assert_eq!(find_line_end(b"abc\ndef", 3), Err(3));
        assert_eq!(find_line_end(b"abc", 10), Err(3));
        assert_eq!(find_line_end(b"", 10), Err(0));
    }
}
