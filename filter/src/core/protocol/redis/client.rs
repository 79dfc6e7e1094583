//! The client-side command decoder: multibulk and inline commands, read byte by byte, and what each
//! whole command means for who is owed the replies.

use super::number_line::NumberLine;
use super::subscription::{Kind, Pending};
use super::word::Word;
use super::{Owner, Redis, Silence, World, MAX_ARGS, MAX_BULK, MAX_LINE};

// ---------------------------------------------------------------------------------------------------
// Client side.

#[derive(Clone, Copy, Debug)]
pub(super) enum ClientState {
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
    ArgBody { left: u64 },
    /// After an argument's bytes: its CR, then (`lf`) its LF.
    ArgEnd { lf: bool },
}

/// What is kept of the command being read: enough to recognise the few that change reply counting, and
/// the timeout of a blocking command.
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
    pub(super) const fn new() -> Self {
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

impl Redis {
    // ----- client side -----

    /// Reads one piece of the client's stream; returns how many bytes it took (0 only when it changed state).
    pub(super) fn client_step(&mut self, rest: &[u8]) -> Result<usize, &'static str> {
        match self.client {
            ClientState::Boundary => {
                self.command = Command::new();
                if rest.first() == Some(&b'*') {
                    self.client = ClientState::Count(NumberLine::default());
                    Ok(1)
                } else {
                    self.client = ClientState::Inline { len: 0, in_word: false };
                    Ok(0)
                }
            }
            ClientState::Inline { mut len, mut in_word } => {
                for (i, &b) in rest.iter().enumerate() {
                    match b {
                        b'\n' => {
                            if in_word {
                                self.command.argument_done(self.command.argc.saturating_sub(1));
                            }
                            self.client = ClientState::Boundary;
                            // An empty line is no command and gets no reply.
                            if self.command.argc > 0 {
                                self.on_command()?;
                            }
                            return Ok(i + 1);
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
                self.client = ClientState::Inline { len, in_word };
                Ok(rest.len())
            }
            ClientState::Count(mut line) => {
                for (i, &b) in rest.iter().enumerate() {
                    if let Some(n) = line.push(b)? {
                        if n > MAX_ARGS {
                            return Err("invalid multibulk length");
                        }
                        if n <= 0 {
                            // `*0` and `*-1`: no command, no reply.
                            self.client = ClientState::Boundary;
                        } else {
                            self.command.argc = n.unsigned_abs();
                            self.args_left = n.unsigned_abs();
                            self.client = ClientState::ArgStart;
                        }
                        return Ok(i + 1);
                    }
                }
                self.client = ClientState::Count(line);
                Ok(rest.len())
            }
            ClientState::ArgStart => match rest.first() {
                Some(b'$') => {
                    self.client = ClientState::ArgLen(NumberLine::default());
                    Ok(1)
                }
                Some(_) => Err("expected '$' before an argument"),
                None => Ok(0),
            },
            ClientState::ArgLen(mut line) => {
                for (i, &b) in rest.iter().enumerate() {
                    if let Some(n) = line.push(b)? {
                        if !(0..=MAX_BULK).contains(&n) {
                            return Err("invalid bulk length");
                        }
                        self.client = match n.unsigned_abs() {
                            0 => ClientState::ArgEnd { lf: false },
                            left => ClientState::ArgBody { left },
                        };
                        return Ok(i + 1);
                    }
                }
                self.client = ClientState::ArgLen(line);
                Ok(rest.len())
            }
            ClientState::ArgBody { left } => {
                let n = usize::try_from(left).map_or(rest.len(), |left| left.min(rest.len()));
                let body = rest.get(..n).unwrap_or_default();
                self.command.argument_bytes(self.command.argc.saturating_sub(self.args_left), body);
                let left = left.saturating_sub(n as u64);
                self.client = if left == 0 { ClientState::ArgEnd { lf: false } } else { ClientState::ArgBody { left } };
                Ok(n)
            }
            ClientState::ArgEnd { lf } => match (lf, rest.first()) {
                (_, None) => Ok(0),
                (false, Some(b'\r')) => {
                    self.client = ClientState::ArgEnd { lf: true };
                    Ok(1)
                }
                (true, Some(b'\n')) => {
                    self.command.argument_done(self.command.argc.saturating_sub(self.args_left));
                    self.args_left = self.args_left.saturating_sub(1);
                    if self.args_left == 0 {
                        self.client = ClientState::Boundary;
                        self.on_command()?;
                    } else {
                        self.client = ClientState::ArgStart;
                    }
                    Ok(1)
                }
                _ => Err("expected CRLF after an argument"),
            },
        }
    }

    /// A whole command was read: who is owed what for it.
    fn on_command(&mut self) -> Result<(), &'static str> {
        let Command { name, arg1, argc, timeout, .. } = self.command;
        let args = argc.saturating_sub(1);
        if name.is(b"MONITOR") {
            return Err("MONITOR not supported");
        }
        if name.is(b"SYNC") || name.is(b"PSYNC") {
            return Err("replication stream not supported");
        }
        if name.is(b"HELLO") && args >= 1 {
            // The reply to HELLO itself already comes in the new protocol; any other version is refused by the
            // server (-NOPROTO) and changes nothing.
            if arg1.is(b"3") {
                self.resp3 = true;
            } else if arg1.is(b"2") {
                self.resp3 = false;
            }
        }
        if name.is(b"RESET") {
            self.resp3 = false;
        }
        if name.is(b"CLIENT") && arg1.is(b"REPLY") {
            return Err("CLIENT REPLY not supported");
        }
        let kind = Kind::of(&name);
        let args32 = u32::try_from(args).unwrap_or(u32::MAX);
        match self.world {
            World::Normal if self.resp3 && kind.is_some() => {
                // RESP3 confirms (un)subscriptions with push frames, which take no place, but a refused one
                // (wrong arguments, -NOPERM) gets an ordinary reply that does: its replies cannot be counted.
                // Stop injecting; what is owed to the filter is still stripped (it comes first).
                self.given_up = true;
            }
            World::Normal => {
                match kind {
                    Some(kind) if !kind.is_unsubscribe() && args >= 1 => {
                        if self.transaction {
                            return Err("SUBSCRIBE inside MULTI not supported");
                        }
                        // Replies owed so far stay in `owners` and come first; from here on, `sub`.
                        self.world = World::Subscribe;
                        self.sub.push(Pending::Subscription { kind, total: args32, left: args32 });
                    }
                    // Not subscribed: one `*3 unsubscribe <ch> 0` per argument, or one with a nil channel.
                    Some(kind) if kind.is_unsubscribe() && !self.transaction => {
                        for _ in 0..args.max(1) {
                            self.owners.push(Owner::Client);
                        }
                    }
                    _ => self.owners.push(Owner::Client),
                }
                // Inside MULTI a blocking command does not block; outside, its reply may be silent that long.
                if let (Some(silence), false) = (timeout, self.transaction) {
                    self.silence_earned = Some(self.silence_earned.map_or(silence, |s| s.then(silence)));
                    self.silence_through = self.owners.total();
                }
                if name.is(b"MULTI") {
                    self.transaction = true;
                } else if name.is(b"EXEC") || name.is(b"DISCARD") || name.is(b"RESET") {
                    self.transaction = false;
                }
            }
            World::Subscribe => {
                let entry = match kind {
                    _ if name.is(b"PING") && args <= 1 => Pending::Ping { owner: Owner::Client, n: 1 },
                    Some(kind) if args >= 1 => Pending::Subscription { kind, total: args32, left: args32 },
                    Some(kind) if kind.is_unsubscribe() => Pending::UnsubscribeAll { kind },
                    _ => Pending::Other(1),
                };
                if name.is(b"RESET") {
                    // Leaves subscribe mode without any unsubscribe reply.
                    self.given_up = true;
                }
                self.sub.push(entry);
            }
        }
        Ok(())
    }
}
