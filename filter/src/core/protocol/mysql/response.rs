//! The session: the handshake, the commands the client sent, and where the server is in the response it is
//! sending, so that a command boundary is known exactly. Everything is decided on whole logical packets
//! ([`Packet`]: sequence id, length, first payload bytes); whatever cannot be followed exactly is an error
//! (the connection is passed through), never a guess.

use std::collections::VecDeque;

use super::reader::{Packet, MAX_PAYLOAD};

// Capability flags (HandshakeResponse41 and the server greeting).
/// MariaDB: clear in both greetings when MariaDB's extended capabilities are in use (MySQL's LONG_PASSWORD).
const CLIENT_MYSQL: u64 = 1;
const CLIENT_COMPRESS: u64 = 0x20;
const CLIENT_PROTOCOL_41: u64 = 0x200;
const CLIENT_SSL: u64 = 0x800;
pub(super) const CLIENT_DEPRECATE_EOF: u64 = 1 << 24;
const CLIENT_OPTIONAL_RESULTSET_METADATA: u64 = 1 << 25;
const CLIENT_ZSTD_COMPRESSION: u64 = 1 << 26;
/// MariaDB extended capabilities (bits 32..64).
pub(super) const MARIADB_CLIENT_PROGRESS: u64 = 1 << 32;
pub(super) const MARIADB_CLIENT_CACHE_METADATA: u64 = 1 << 36;

/// Server status flag: another result set follows this one.
const SERVER_MORE_RESULTS_EXISTS: u16 = 0x0008;

const OK: u8 = 0x00;
const ERR: u8 = 0xff;
const EOF: u8 = 0xfe;
const LOCAL_INFILE: u8 = 0xfb;

/// Commands in flight, at most (clients wait for each reply; a few pipeline the odd command).
const MAX_QUEUED: usize = 4096;

/// Where the session is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Phase {
    /// The server speaks first: its greeting is awaited.
    Greeting,
    /// The greeting was seen: the client's HandshakeResponse is awaited.
    Login,
    /// The client logged in: auth exchanges (auth switch, more data) until the server's OK or ERR.
    Auth,
    /// Commands.
    Ready,
}

/// What the client's next packets are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ClientMode {
    Commands,
    /// Auth data (the handshake, or COM_CHANGE_USER), until the server's OK or ERR.
    AuthData,
    /// A LOCAL INFILE upload, until its empty packet.
    Infile,
}

/// The shape of the response a command gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Reply {
    /// One packet, whatever it is (OK, ERR, EOF, a COM_STATISTICS string).
    Single,
    /// OK, ERR, a LOCAL INFILE request, or result sets (COM_QUERY, COM_STMT_EXECUTE).
    Query,
    /// COM_STMT_PREPARE: ERR, or OK with parameter and column definitions.
    Prepare,
    /// COM_FIELD_LIST: column definitions until EOF, or ERR.
    FieldList,
    /// COM_CHANGE_USER: auth exchanges until OK or ERR.
    ChangeUser,
}

/// Who is owed the next response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Expect {
    Client(Reply),
    /// The filter's COM_PING: one packet.
    Filter,
}

/// Where the server is inside a query's response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Query {
    /// The first packet of a result (OK, ERR, LOCAL INFILE request, or a column count).
    Start,
    /// Column definitions still to come.
    Columns(u64),
    /// The EOF after the column definitions (without CLIENT_DEPRECATE_EOF).
    ColumnsEof,
    /// Rows, until EOF / OK(0xFE) or ERR.
    Rows,
    /// The OK or ERR after a LOCAL INFILE upload.
    InfileResult,
}

/// The response in progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Response {
    None,
    Query(Query),
    /// Prepare: definitions left in this part, whether an EOF ends it, definitions of the next part (columns).
    Prepare {
        left: u32,
        eof: bool,
        then: u32,
    },
    FieldList,
    ChangeUser,
}

/// One connection's MySQL session as both directions show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Session {
    pub(super) phase: Phase,
    pub(super) client_mode: ClientMode,
    /// The server's capabilities from its greeting; then the negotiated ones (client's and server's).
    caps: u64,
    queue: VecDeque<Expect>,
    response: Response,
    /// The session is ending (COM_QUIT, an ERR at login, the server's idle-timeout error): nothing is injected.
    pub(super) closing: bool,
}

impl Session {
    pub(super) fn new() -> Self {
        Session {
            phase: Phase::Greeting,
            client_mode: ClientMode::Commands,
            caps: 0,
            queue: VecDeque::new(),
            response: Response::None,
            closing: false,
        }
    }

    pub(super) fn has(&self, cap: u64) -> bool {
        self.caps & cap != 0
    }

    /// Nothing owed by the server, no response in progress, the client sending commands.
    pub(super) fn idle(&self) -> bool {
        self.phase == Phase::Ready
            && self.client_mode == ClientMode::Commands
            && self.queue.is_empty()
            && self.response == Response::None
    }

    /// The next answer the server owes is the client's (including the handshake's and an upload's).
    pub(super) fn reply_owed(&self) -> bool {
        match self.phase {
            Phase::Auth => true,
            Phase::Greeting | Phase::Login => false,
            Phase::Ready => self.response != Response::None || matches!(self.queue.front(), Some(Expect::Client(_))),
        }
    }

    /// The next packet from the server starts the response to the filter's COM_PING.
    pub(super) fn filter_next(&self) -> bool {
        self.phase == Phase::Ready && self.response == Response::None && self.queue.front() == Some(&Expect::Filter)
    }

    pub(super) fn ping_injected(&mut self) {
        self.queue.push_back(Expect::Filter);
    }

    fn push(&mut self, expect: Expect) -> Result<(), &'static str> {
        if self.queue.len() >= MAX_QUEUED {
            return Err("too many commands in flight");
        }
        self.queue.push_back(expect);
        Ok(())
    }

    /// A whole logical packet from the client.
    pub(super) fn on_client_packet(&mut self, p: Packet<'_>) -> Result<(), &'static str> {
        match self.phase {
            Phase::Greeting => Err("the client spoke before the server's greeting"),
            Phase::Login => self.login(p),
            Phase::Auth => Ok(()),
            Phase::Ready => match self.client_mode {
                ClientMode::AuthData => Ok(()),
                ClientMode::Infile => {
                    if p.len == 0 {
                        self.client_mode = ClientMode::Commands;
                    }
                    Ok(())
                }
                ClientMode::Commands => self.command(p),
            },
        }
    }

    /// The HandshakeResponse41 (or SSLRequest): the negotiated capabilities.
    fn login(&mut self, p: Packet<'_>) -> Result<(), &'static str> {
        let low = u64::from(p.u32_at(0).map_err(|_| "handshake response too short")?);
        if low & CLIENT_PROTOCOL_41 == 0 {
            return Err("pre-4.1 handshake: passed through");
        }
        if low & CLIENT_SSL != 0 {
            return Err("TLS (CLIENT_SSL): passed through");
        }
        // MariaDB's extended capabilities, in the filler's last 4 bytes, when neither side claims CLIENT_MYSQL.
        let ext = match (self.caps & CLIENT_MYSQL, low & CLIENT_MYSQL) {
            (0, 0) => u64::from(p.u32_at(28).map_err(|_| "handshake response too short")?) << 32,
            _ => 0,
        };
        self.caps &= low | ext;
        if self.has(CLIENT_COMPRESS | CLIENT_ZSTD_COMPRESSION) {
            return Err("compressed protocol: passed through");
        }
        if self.has(CLIENT_OPTIONAL_RESULTSET_METADATA) {
            return Err("optional result set metadata: passed through");
        }
        self.phase = Phase::Auth;
        self.client_mode = ClientMode::AuthData;
        Ok(())
    }

    /// A command: the response it gets takes its place in the queue.
    fn command(&mut self, p: Packet<'_>) -> Result<(), &'static str> {
        let reply = match p.first().ok_or("empty command")? {
            // COM_QUIT: no reply, the server closes.
            0x01 => {
                self.closing = true;
                return Ok(());
            }
            // INIT_DB, CREATE_DB, DROP_DB, REFRESH, SHUTDOWN, STATISTICS, PROCESS_KILL, DEBUG, PING,
            // REGISTER_SLAVE, STMT_RESET, SET_OPTION, RESET_CONNECTION.
            0x02 | 0x05..=0x09 | 0x0c..=0x0e | 0x15 | 0x1a | 0x1b | 0x1f => Reply::Single,
            // QUERY, PROCESS_INFO, MariaDB's STMT_BULK_EXECUTE.
            0x03 | 0x0a | 0xfa => Reply::Query,
            0x04 => Reply::FieldList,
            0x11 => {
                self.client_mode = ClientMode::AuthData;
                Reply::ChangeUser
            }
            0x16 => Reply::Prepare,
            // STMT_EXECUTE: with a cursor, rows come through COM_STMT_FETCH; not followed.
            0x17 => {
                let flags = p.bytes(5, 1)?.first().copied().unwrap_or(0);
                if flags & 0x07 != 0 {
                    return Err("COM_STMT_EXECUTE with a cursor: passed through");
                }
                Reply::Query
            }
            // STMT_SEND_LONG_DATA, STMT_CLOSE: no reply.
            0x18 | 0x19 => return Ok(()),
            0x12 | 0x1e => return Err("binlog dump: passed through"),
            _ => return Err("a command whose response is not followed: passed through"),
        };
        self.push(Expect::Client(reply))
    }

    /// A whole logical packet from the server. The filter's own reply is recognised by the caller first (it
    /// withholds it); here it only takes its place.
    pub(super) fn on_upstream_packet(&mut self, p: Packet<'_>) -> Result<(), &'static str> {
        match self.phase {
            Phase::Greeting => self.greeting(p),
            Phase::Login => Err("the server spoke before the client's handshake response"),
            Phase::Auth => match p.first() {
                Some(OK) => {
                    self.phase = Phase::Ready;
                    self.client_mode = ClientMode::Commands;
                    Ok(())
                }
                Some(ERR) => {
                    self.closing = true;
                    Ok(())
                }
                // More auth data, an auth switch, the next factor.
                Some(0x01 | EOF | 0x02) => Ok(()),
                _ => Err("unexpected packet during authentication"),
            },
            Phase::Ready => self.response(p),
        }
    }

    fn greeting(&mut self, p: Packet<'_>) -> Result<(), &'static str> {
        match p.first() {
            Some(0x0a) => {}
            Some(ERR) => {
                self.closing = true;
                return Ok(());
            }
            _ => return Err("not a protocol-10 server greeting"),
        }
        let nul = p.head.iter().skip(1).position(|&b| b == 0).ok_or("greeting's version string too long")?;
        // After the version: connection id (4), auth data (8), filler (1), capabilities' low half (2),
        // charset (1), status (2), capabilities' high half (2), auth data length (1), reserved (6), MariaDB's
        // extended capabilities (4).
        let at = nul + 2;
        let low = u64::from(p.u16_at(at + 13)?);
        let len = usize::try_from(p.len).unwrap_or(usize::MAX);
        let field = |offset: usize, size: usize| -> Result<u64, &'static str> {
            if offset + size > len {
                return Ok(0);
            }
            match size {
                2 => p.u16_at(offset).map(u64::from),
                _ => p.u32_at(offset).map(u64::from),
            }
        };
        let high = field(at + 18, 2)?;
        let ext = if low & CLIENT_MYSQL == 0 { field(at + 27, 4)? } else { 0 };
        self.caps = low | (high << 16) | (ext << 32);
        self.phase = Phase::Login;
        Ok(())
    }

    /// The status flags of an OK packet (0x00 or 0xFE header) or of an EOF packet.
    fn status(&self, p: Packet<'_>, eof_packet: bool) -> Result<u16, &'static str> {
        if eof_packet {
            // 0xFE, warnings (2), status (2); the 4.0 EOF is the single byte.
            return if p.len >= 5 { p.u16_at(3) } else { Ok(0) };
        }
        let (_, at) = p.lenenc_at(1)?;
        let (_, at) = p.lenenc_at(at)?;
        p.u16_at(at)
    }

    /// Whether `p` ends rows (or definitions): an EOF packet, or with CLIENT_DEPRECATE_EOF an OK with the 0xFE
    /// header (a row that starts with 0xFE is at least 2^24 bytes long).
    fn is_end(&self, p: Packet<'_>) -> bool {
        let limit = if self.has(CLIENT_DEPRECATE_EOF) { MAX_PAYLOAD } else { 9 };
        p.first() == Some(EOF) && p.len < limit
    }

    /// A MariaDB progress report (ERR with code 0xFFFF), sent while a statement runs.
    fn is_progress(&self, p: Packet<'_>) -> bool {
        self.has(MARIADB_CLIENT_PROGRESS) && p.first() == Some(ERR) && p.u16_at(1) == Ok(0xffff)
    }

    fn done(&mut self) {
        self.queue.pop_front();
        self.response = Response::None;
    }

    /// The end of one result: another follows when the server says so.
    fn result_end(&mut self, status: u16) {
        if status & SERVER_MORE_RESULTS_EXISTS != 0 {
            self.response = Response::Query(Query::Start);
        } else {
            self.done();
        }
    }

    fn response(&mut self, p: Packet<'_>) -> Result<(), &'static str> {
        if self.response == Response::None {
            if p.seq == 0 && p.first() == Some(ERR) {
                // Unasked: the server is closing the connection (MySQL 8.0.24+ after wait_timeout).
                self.closing = true;
                return Ok(());
            }
            self.response = match self.queue.front() {
                None => return Err("a server packet nobody asked for"),
                Some(Expect::Filter) => {
                    self.done();
                    return Ok(());
                }
                Some(Expect::Client(Reply::Single)) => {
                    self.done();
                    return Ok(());
                }
                Some(Expect::Client(Reply::Query)) => Response::Query(Query::Start),
                Some(Expect::Client(Reply::Prepare)) => Response::Prepare { left: 0, eof: false, then: 0 },
                Some(Expect::Client(Reply::FieldList)) => Response::FieldList,
                Some(Expect::Client(Reply::ChangeUser)) => Response::ChangeUser,
            };
            if let Response::Prepare { .. } = self.response {
                return self.prepare_ok(p);
            }
        }
        if self.is_progress(p) {
            return Ok(());
        }
        match self.response {
            Response::None => Ok(()),
            Response::Query(q) => self.query(q, p),
            Response::Prepare { left, eof, then } => self.prepare_defs(left, eof, then, p),
            Response::FieldList => {
                if p.first() == Some(ERR) || self.is_end(p) {
                    self.done();
                }
                Ok(())
            }
            Response::ChangeUser => match p.first() {
                Some(OK | ERR) => {
                    self.client_mode = ClientMode::Commands;
                    self.done();
                    Ok(())
                }
                Some(0x01 | EOF | 0x02) => Ok(()),
                _ => Err("unexpected packet during COM_CHANGE_USER"),
            },
        }
    }

    fn query(&mut self, q: Query, p: Packet<'_>) -> Result<(), &'static str> {
        let first = p.first().ok_or("empty packet in a response")?;
        match q {
            Query::Start => match first {
                OK => {
                    let status = self.status(p, false)?;
                    self.result_end(status);
                }
                ERR => self.done(),
                LOCAL_INFILE => {
                    self.client_mode = ClientMode::Infile;
                    self.response = Response::Query(Query::InfileResult);
                }
                _ => {
                    let (columns, at) = p.lenenc_at(0)?;
                    if columns == 0 {
                        return Err("a result set without columns");
                    }
                    // With MariaDB's metadata cache, a byte says whether the column definitions follow.
                    let definitions = if self.has(MARIADB_CLIENT_CACHE_METADATA) {
                        match p.bytes(at, 1)?.first() {
                            Some(0) => 0,
                            Some(1) => columns,
                            _ => return Err("bad metadata flag in a column count"),
                        }
                    } else {
                        columns
                    };
                    self.response = Response::Query(match (definitions, self.has(CLIENT_DEPRECATE_EOF)) {
                        (0, true) => Query::Rows,
                        (0, false) => Query::ColumnsEof,
                        (n, _) => Query::Columns(n),
                    });
                }
            },
            Query::Columns(left) => {
                let left = left.saturating_sub(1);
                self.response = Response::Query(match (left, self.has(CLIENT_DEPRECATE_EOF)) {
                    (0, true) => Query::Rows,
                    (0, false) => Query::ColumnsEof,
                    (left, _) => Query::Columns(left),
                });
            }
            Query::ColumnsEof => {
                if first != EOF || p.len >= 9 {
                    return Err("no EOF after the column definitions");
                }
                self.response = Response::Query(Query::Rows);
            }
            Query::Rows => {
                if first == ERR {
                    self.done();
                } else if self.is_end(p) {
                    let status = self.status(p, !self.has(CLIENT_DEPRECATE_EOF))?;
                    self.result_end(status);
                }
            }
            Query::InfileResult => match first {
                OK => {
                    let status = self.status(p, false)?;
                    self.client_mode = ClientMode::Commands;
                    self.result_end(status);
                }
                ERR => {
                    self.client_mode = ClientMode::Commands;
                    self.done();
                }
                _ => return Err("unexpected packet after LOCAL INFILE"),
            },
        }
        Ok(())
    }

    /// COM_STMT_PREPARE's first packet: ERR, or OK (0x00, statement id (4), columns (2), parameters (2), ...).
    fn prepare_ok(&mut self, p: Packet<'_>) -> Result<(), &'static str> {
        match p.first() {
            Some(ERR) => {
                self.done();
                Ok(())
            }
            Some(OK) => {
                let columns = u32::from(p.u16_at(5)?);
                let params = u32::from(p.u16_at(7)?);
                self.prepare_next(params, false, columns);
                Ok(())
            }
            _ => Err("unexpected reply to COM_STMT_PREPARE"),
        }
    }

    /// Parameter definitions, then column definitions, each part followed by an EOF unless
    /// CLIENT_DEPRECATE_EOF (an empty part has neither).
    fn prepare_defs(&mut self, left: u32, eof: bool, then: u32, p: Packet<'_>) -> Result<(), &'static str> {
        if left == 0 && eof {
            if p.first() != Some(EOF) || p.len >= 9 {
                return Err("no EOF after the statement's definitions");
            }
            self.prepare_next(0, false, then);
            return Ok(());
        }
        let left = left.saturating_sub(1);
        let eof = left == 0 && !self.has(CLIENT_DEPRECATE_EOF);
        self.prepare_next(left, eof, then);
        Ok(())
    }

    fn prepare_next(&mut self, left: u32, eof: bool, then: u32) {
        self.response = match (left, eof, then) {
            (0, false, 0) => {
                self.done();
                return;
            }
            (0, false, then) => Response::Prepare { left: then, eof: false, then: 0 },
            _ => Response::Prepare { left, eof, then },
        };
    }
}
