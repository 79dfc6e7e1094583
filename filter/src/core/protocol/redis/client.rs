//! The client-side command reader: multibulk and inline commands, read byte by byte as Redis'
//! `processMultibulkBuffer` / `processInlineBuffer` read them. Of each command only the name, the first
//! argument and a blocking command's timeout are kept (a few upper-cased bytes each); argument bodies are
//! counted down, never buffered.

use super::limits::{MAX_ARGS, MAX_BULK, MAX_LINE};
use super::number_line::NumberLine;
use super::word::Word;
use crate::core::protocol::toolkit::{Countdown, LineEnd, LineEndStep, Reader};
use crate::core::protocol::Silence;

#[derive(Clone, Copy, Debug)]
enum ClientState {
    /// Between commands.
    Boundary,
    /// Inside an inline command line; `in_word` while the last byte belonged to an argument.
    Inline { len: u32, in_word: bool },
    /// After `*`: the argument count.
    Count(NumberLine),
    /// Expecting the `$` of the next argument.
    ArgStart,
    /// After `$`: the argument's length.
    ArgLen(NumberLine),
    /// Inside an argument's bytes.
    ArgBody(Countdown),
    /// After an argument's bytes: its CRLF.
    ArgEnd(LineEnd),
}

/// What is kept of a command: enough to recognise the few that change reply counting, and the timeout of a
/// blocking command.
#[derive(Clone, Copy, Debug)]
pub(super) struct Command {
    name: Word<16>,
    arg1: Word<8>,
    /// Arguments including the name.
    argc: u64,
    /// Where this command keeps a timeout, known once the name is read; `None` for every other command,
    /// whose arguments then cost nothing more.
    timeout_at: Option<TimeoutArg>,
    /// The head of the argument being read, while `timeout_at` is set.
    arg: Word<16>,
    /// The previous argument was `BLOCK` (XREAD, XREADGROUP).
    after_block: bool,
    /// The silence the server is entitled to for this command, as read so far.
    timeout: Option<Silence>,
}

impl Command {
    const fn new() -> Self {
        Command {
            name: Word::new(),
            arg1: Word::new(),
            argc: 0,
            timeout_at: None,
            arg: Word::new(),
            after_block: false,
            timeout: None,
        }
    }

    /// The command's name, upper-cased.
    pub(super) fn name(&self) -> &Word<16> {
        &self.name
    }

    /// Its first argument, upper-cased.
    pub(super) fn arg1(&self) -> &Word<8> {
        &self.arg1
    }

    /// How many arguments follow the name.
    pub(super) fn args(&self) -> u64 {
        self.argc.saturating_sub(1)
    }

    /// The silence a blocking command entitles the server to.
    pub(super) fn timeout(&self) -> Option<Silence> {
        self.timeout
    }

    /// Whether the bytes of the argument at `index` are looked at (the name, the first argument, and every
    /// argument of a command that keeps a timeout).
    fn reads_argument(&self, index: u64) -> bool {
        index < 2 || self.timeout_at.is_some()
    }

    /// Bytes of the argument at `index` (0: the name).
    fn argument_bytes(&mut self, index: u64, bytes: &[u8]) {
        match index {
            0 => self.name.extend(bytes),
            1 => self.arg1.extend(bytes),
            _ => {}
        }
        if self.timeout_at.is_some() {
            self.arg.extend(bytes);
        }
    }

    /// The argument at `index` is complete.
    fn argument_done(&mut self, index: u64) {
        if index == 0 {
            self.timeout_at = TimeoutArg::of(&self.name);
            return;
        }
        let Some(at) = self.timeout_at else { return };
        let text = self.arg.whole().unwrap_or(b"too long to read");
        match at {
            TimeoutArg::LastSeconds => self.timeout = Silence::from_seconds(text),
            TimeoutArg::LastMillis => self.timeout = Silence::from_millis(text),
            TimeoutArg::FirstSeconds if index == 1 => self.timeout = Silence::from_seconds(text),
            TimeoutArg::FirstSeconds => {}
            TimeoutArg::AfterBlock => {
                if self.after_block {
                    self.timeout = Silence::from_millis(text);
                }
                self.after_block = self.arg.is(b"BLOCK");
            }
        }
        self.arg = Word::new();
    }
}

/// Where a blocking command keeps its timeout (Redis 7), and in which unit.
#[derive(Clone, Copy, Debug)]
enum TimeoutArg {
    /// `BLPOP key... timeout`, `BRPOP`, `BRPOPLPUSH`, `BLMOVE`, `BZPOPMIN`, `BZPOPMAX`: seconds, last.
    LastSeconds,
    /// `BLMPOP timeout numkeys key...`, `BZMPOP`: seconds, first.
    FirstSeconds,
    /// `XREAD [COUNT n] [BLOCK ms] STREAMS...`, `XREADGROUP`: milliseconds, after `BLOCK` (none without it).
    AfterBlock,
    /// `WAIT numreplicas timeout`, `WAITAOF numlocal numreplicas timeout`: milliseconds, last.
    LastMillis,
}

impl TimeoutArg {
    fn of(name: &Word<16>) -> Option<TimeoutArg> {
        const LAST_SECONDS: [&[u8]; 6] = [b"BLPOP", b"BRPOP", b"BRPOPLPUSH", b"BLMOVE", b"BZPOPMIN", b"BZPOPMAX"];
        if LAST_SECONDS.iter().any(|n| name.is(n)) {
            Some(TimeoutArg::LastSeconds)
        } else if name.is(b"BLMPOP") || name.is(b"BZMPOP") {
            Some(TimeoutArg::FirstSeconds)
        } else if name.is(b"XREAD") || name.is(b"XREADGROUP") {
            Some(TimeoutArg::AfterBlock)
        } else if name.is(b"WAIT") || name.is(b"WAITAOF") {
            Some(TimeoutArg::LastMillis)
        } else {
            None
        }
    }
}

/// Follows the client's stream command by command; a [`Reader`] whose frames are whole [`Command`]s (empty
/// inline lines, `*0` and `*-1` are no command and get no reply).
#[derive(Clone, Copy, Debug)]
pub(super) struct ClientReader {
    state: ClientState,
    command: Command,
    /// Arguments of a multibulk command still to come, the current one included.
    args_left: u64,
}

impl Default for ClientReader {
    fn default() -> Self {
        ClientReader { state: ClientState::Boundary, command: Command::new(), args_left: 0 }
    }
}

impl Reader for ClientReader {
    type Frame = Command;

    fn feed(&mut self, data: &[u8]) -> Result<(usize, Option<Command>), &'static str> {
        let mut at = 0usize;
        while let Some(rest) = data.get(at..).filter(|rest| !rest.is_empty()) {
            let (used, command) = self.step(rest)?;
            at = at.saturating_add(used);
            if command.is_some() {
                return Ok((at, command));
            }
        }
        Ok((at, None))
    }

    fn at_boundary(&self) -> bool {
        matches!(self.state, ClientState::Boundary)
    }

    /// The rest of an argument's body that nothing looks at: `argument_bytes` would do nothing with it.
    fn skippable(&self) -> u64 {
        match self.state {
            ClientState::ArgBody(body) if !self.command.reads_argument(self.index()) => body.left(),
            _ => 0,
        }
    }

    fn skip(&mut self, n: u64) -> u64 {
        let n = n.min(self.skippable());
        let ClientState::ArgBody(mut body) = self.state else { return 0 };
        let counted = body.skip(n);
        self.state = if body.is_done() { ClientState::ArgEnd(LineEnd::CRLF) } else { ClientState::ArgBody(body) };
        counted
    }
}

impl ClientReader {
    /// The argument being read (0: the name).
    fn index(&self) -> u64 {
        self.command.argc.saturating_sub(self.args_left)
    }

    /// Reads one piece of the client's stream; returns how many bytes it took (0 only when it changed state)
    /// and the command, if it ended there.
    fn step(&mut self, rest: &[u8]) -> Result<(usize, Option<Command>), &'static str> {
        match self.state {
            ClientState::Boundary => {
                self.command = Command::new();
                if rest.first() == Some(&b'*') {
                    self.state = ClientState::Count(NumberLine::default());
                    Ok((1, None))
                } else {
                    self.state = ClientState::Inline { len: 0, in_word: false };
                    Ok((0, None))
                }
            }
            ClientState::Inline { len, in_word } => self.inline(rest, len, in_word),
            ClientState::Count(mut line) => {
                for (i, &b) in rest.iter().enumerate() {
                    if let Some(n) = line.push(b)? {
                        if n > MAX_ARGS {
                            return Err("invalid multibulk length");
                        }
                        if n <= 0 {
                            // `*0` and `*-1`: no command, no reply.
                            self.state = ClientState::Boundary;
                        } else {
                            self.command.argc = n.unsigned_abs();
                            self.args_left = n.unsigned_abs();
                            self.state = ClientState::ArgStart;
                        }
                        return Ok((i + 1, None));
                    }
                }
                self.state = ClientState::Count(line);
                Ok((rest.len(), None))
            }
            ClientState::ArgStart => match rest.first() {
                Some(b'$') => {
                    self.state = ClientState::ArgLen(NumberLine::default());
                    Ok((1, None))
                }
                Some(_) => Err("expected '$' before an argument"),
                None => Ok((0, None)),
            },
            ClientState::ArgLen(mut line) => {
                for (i, &b) in rest.iter().enumerate() {
                    if let Some(n) = line.push(b)? {
                        if !(0..=MAX_BULK).contains(&n) {
                            return Err("invalid bulk length");
                        }
                        self.state = match n.unsigned_abs() {
                            0 => ClientState::ArgEnd(LineEnd::CRLF),
                            len => ClientState::ArgBody(Countdown::new(len)),
                        };
                        return Ok((i + 1, None));
                    }
                }
                self.state = ClientState::ArgLen(line);
                Ok((rest.len(), None))
            }
            ClientState::ArgBody(mut body) => {
                let (bytes, _) = body.take(rest);
                self.command.argument_bytes(self.index(), bytes);
                self.state =
                    if body.is_done() { ClientState::ArgEnd(LineEnd::CRLF) } else { ClientState::ArgBody(body) };
                Ok((bytes.len(), None))
            }
            ClientState::ArgEnd(mut end) => {
                let Some(&b) = rest.first() else { return Ok((0, None)) };
                match end.push(b) {
                    LineEndStep::More => {
                        self.state = ClientState::ArgEnd(end);
                        Ok((1, None))
                    }
                    LineEndStep::Ended => {
                        self.command.argument_done(self.index());
                        self.args_left = self.args_left.saturating_sub(1);
                        if self.args_left == 0 {
                            self.state = ClientState::Boundary;
                            Ok((1, Some(self.command)))
                        } else {
                            self.state = ClientState::ArgStart;
                            Ok((1, None))
                        }
                    }
                    LineEndStep::Invalid => Err("expected CRLF after an argument"),
                }
            }
        }
    }

    /// Reads an inline command line as Redis' splitter does (no quoting).
    fn inline(
        &mut self,
        rest: &[u8],
        mut len: u32,
        mut in_word: bool,
    ) -> Result<(usize, Option<Command>), &'static str> {
        for (i, &b) in rest.iter().enumerate() {
            match b {
                b'\n' => {
                    if in_word {
                        self.command.argument_done(self.command.argc.saturating_sub(1));
                    }
                    self.state = ClientState::Boundary;
                    // An empty line is no command and gets no reply.
                    let command = (self.command.argc > 0).then_some(self.command);
                    return Ok((i + 1, command));
                }
                b' ' | b'\t' | b'\r' => {
                    if in_word {
                        self.command.argument_done(self.command.argc.saturating_sub(1));
                    }
                    in_word = false;
                }
                // Redis unquotes (and unescapes) these; a name we cannot read could be MULTI.
                b'"' | b'\'' => return Err("quoted inline command not supported"),
                // Redis' splitter stops at NUL and treats these as spaces only between words.
                0 | 0x0b | 0x0c => return Err("control byte in inline command"),
                _ => {
                    if !in_word {
                        in_word = true;
                        self.command.argc += 1;
                    }
                    self.command.argument_bytes(self.command.argc.saturating_sub(1), &[b]);
                }
            }
            len += 1;
            if len > MAX_LINE {
                return Err("inline command too long");
            }
        }
        self.state = ClientState::Inline { len, in_word };
        Ok((rest.len(), None))
    }
}
