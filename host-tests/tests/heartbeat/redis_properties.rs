//! Property: over random Redis RESP2 pipelines (multibulk and inline commands, bulk arguments
//! holding CRLF), random chunkings, idle times, and a server that answers some or all of the
//! commands it has in order,
//! - the upstream receives exactly the client's bytes plus the filter's `*1 PING` only at command
//!   boundaries;
//! - the client receives exactly the replies to its own commands, in order: the `+PONG` to each
//!   filter PING is gone, every other reply (`+PONG` to the client's own `ping` too) is there.

use proptest::prelude::*;

use heartbeat_host_tests::testkit::TestHost;
use heartbeat_host_tests::ConnId;

use super::common::heartbeat::start;
use super::support::{assert_exercised, ms, run_seeded, split_upstream, upstream_send_in_two, ClientStream};

const FILTER_PING: &[u8] = b"*1\r\n$4\r\nPING\r\n";

#[derive(Clone, Debug)]
enum Command {
    Set(Vec<u8>),
    Get,
    Incr,
    Lrange,
    Ping,
    EchoPong,
}

fn multibulk(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

impl Command {
    fn bytes(&self) -> Vec<u8> {
        match self {
            Self::Set(v) => multibulk(&[b"SET", b"k", v]),
            Self::Get => multibulk(&[b"GET", b"k"]),
            Self::Incr => b"INCR n\r\n".to_vec(),
            Self::Lrange => multibulk(&[b"LRANGE", b"l", b"0", b"-1"]),
            Self::Ping => b"ping\r\n".to_vec(),
            Self::EchoPong => multibulk(&[b"ECHO", b"+PONG\r\n"]),
        }
    }

    fn reply(&self) -> &'static [u8] {
        match self {
            Self::Set(_) => b"+OK\r\n",
            Self::Get => b"$5\r\nhe\r\nl\r\n",
            Self::Incr => b":1\r\n",
            Self::Lrange => b"*2\r\n$1\r\na\r\n$4\r\nb\r\nc\r\n",
            Self::Ping => b"+PONG\r\n",
            Self::EchoPong => b"$7\r\n+PONG\r\n\r\n",
        }
    }
}

#[derive(Clone, Debug)]
enum Event {
    ClientSend(usize),
    ClientFinishCommand,
    /// Time passes (ms); then, if set, the server answers (see `ServerAnswers`).
    Idle(u64, Option<(u8, u8)>),
    /// The server answers the first share (/256, at least one) of the commands it owes a reply,
    /// its bytes cut in two writes at the second number (/256).
    ServerAnswers(u8, u8),
}

fn command() -> impl Strategy<Value = Command> {
    prop_oneof![
        3 => prop::collection::vec(prop::sample::select(b"+PONG\r\n*$1".to_vec()), 0..12).prop_map(Command::Set),
        2 => Just(Command::Get),
        1 => Just(Command::Incr),
        1 => Just(Command::Lrange),
        2 => Just(Command::Ping),
        1 => Just(Command::EchoPong),
    ]
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        3 => (1usize..24).prop_map(Event::ClientSend),
        2 => Just(Event::ClientFinishCommand),
        4 => (0u64..3500, prop::option::weighted(0.7, (any::<u8>(), any::<u8>()))).prop_map(|(t, a)| Event::Idle(t, a)),
        3 => (any::<u8>(), any::<u8>()).prop_map(|(share, cut)| Event::ServerAnswers(share, cut)),
    ]
}

struct Server {
    /// Upstream items answered so far.
    answered: usize,
    /// What the client must receive: the replies to its commands, in order.
    expected: Vec<u8>,
    injected_answered: usize,
}

impl Server {
    fn answer(
        &mut self,
        h: &mut TestHost,
        c: ConnId,
        commands: &[Command],
        wire: &[Vec<u8>],
        share: u8,
        cut: u8,
    ) -> Result<(), TestCaseError> {
        let items = split_upstream(&h.upstream_received(c), wire, FILTER_PING).map_err(TestCaseError::fail)?;
        let owed = items.len() - self.answered;
        if owed == 0 {
            return Ok(());
        }
        let n = (owed * usize::from(share) / 256).max(1);
        let mut batch = Vec::new();
        for item in &items[self.answered..self.answered + n] {
            match item {
                Some(i) => {
                    batch.extend_from_slice(commands[*i].reply());
                    self.expected.extend_from_slice(commands[*i].reply());
                }
                None => {
                    batch.extend_from_slice(b"+PONG\r\n");
                    self.injected_answered += 1;
                }
            }
        }
        self.answered += n;
        upstream_send_in_two(h, c, &batch, cut);
        Ok(())
    }
}

fn run(commands: Vec<Command>, events: Vec<Event>) -> Result<(usize, usize), TestCaseError> {
    let wire: Vec<Vec<u8>> = commands.iter().map(Command::bytes).collect();
    let mut client = ClientStream::new(&wire);
    let mut h = start("redis");
    let c = h.connect();
    let mut server = Server { answered: 0, expected: Vec::new(), injected_answered: 0 };
    for event in events {
        if h.closed(c).is_some() {
            break;
        }
        match event {
            Event::ClientSend(n) => client.send(&mut h, c, n),
            Event::ClientFinishCommand => client.finish_frame(&mut h, c),
            Event::Idle(t, answer) => {
                h.advance(ms(t));
                if let (Some((share, cut)), None) = (answer, h.closed(c)) {
                    server.answer(&mut h, c, &commands, &wire, share, cut)?;
                }
            }
            Event::ServerAnswers(share, cut) => server.answer(&mut h, c, &commands, &wire, share, cut)?,
        }
    }
    let items = split_upstream(&h.upstream_received(c), &wire, FILTER_PING).map_err(TestCaseError::fail)?;
    let received = h.client_received(c);
    prop_assert_eq!(String::from_utf8_lossy(&received), String::from_utf8_lossy(&server.expected));
    Ok((items.iter().filter(|i| i.is_none()).count(), server.injected_answered))
}

#[test]
fn redis_pipelines_get_every_reply_in_order_and_no_filter_pong() {
    let strategy = (prop::collection::vec(command(), 1..14), prop::collection::vec(event(), 1..30));
    let (injected, stripped) = run_seeded(32, strategy, |(commands, events)| run(commands, events));
    assert_exercised("redis", injected, stripped);
}
