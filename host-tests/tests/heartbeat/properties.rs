//! Property: over random NATS conversations, random chunkings and random idle times, with an
//! upstream that answers every PING,
//! - the upstream receives exactly the client's bytes, plus the filter's `PING\r\n` only at client
//!   frame boundaries;
//! - the client receives exactly the upstream's bytes minus the PONGs that answer the filter's PINGs.
//!
//! The client's own PINGs are written `ping` (NATS is case-insensitive) so that the filter's can be
//! told apart in the upstream's stream.

use proptest::prelude::*;

use heartbeat_host_tests::testkit::TestHost;

use super::common::heartbeat::start;
use super::support::{assert_exercised, ms, run_seeded, split_upstream, upstream_send_in_two, ClientStream};

const FILTER_PING: &[u8] = b"PING\r\n";

#[derive(Clone, Debug)]
enum ClientFrame {
    Pub(Vec<u8>),
    Hpub(Vec<u8>),
    Sub,
    Ping,
    Pong,
}

impl ClientFrame {
    fn bytes(&self) -> Vec<u8> {
        match self {
            Self::Pub(p) => [format!("PUB foo {}\r\n", p.len()).as_bytes(), p, b"\r\n"].concat(),
            Self::Hpub(p) => {
                let headers = b"NATS/1.0\r\nX: y\r\n\r\n";
                let total = headers.len() + p.len();
                [format!("HPUB foo {} {total}\r\n", headers.len()).as_bytes(), headers, p, b"\r\n"].concat()
            }
            Self::Sub => b"SUB foo 1\r\n".to_vec(),
            Self::Ping => b"ping\r\n".to_vec(),
            Self::Pong => b"pong\r\n".to_vec(),
        }
    }
}

#[derive(Clone, Debug)]
enum Event {
    /// The client sends its next `n` bytes.
    ClientSend(usize),
    /// The client sends the rest of its current frame (and the next one if it was at a boundary).
    ClientFinishFrame,
    /// Time passes (ms); then, if set, the server answers what it has (cut at this fraction).
    Idle(u64, Option<u8>),
    /// The server sends a MSG.
    ServerMsg(Vec<u8>),
    /// The server answers every PING it has, its bytes cut at this fraction.
    ServerAnswers(u8),
}

fn payload() -> impl Strategy<Value = Vec<u8>> {
    // Bytes that look like protocol lines, to tempt a parser that reads payloads as commands.
    prop::collection::vec(prop::sample::select(b"PINGO \r\nx".to_vec()), 0..16)
}

fn client_frame() -> impl Strategy<Value = ClientFrame> {
    prop_oneof![
        4 => payload().prop_map(ClientFrame::Pub),
        1 => payload().prop_map(ClientFrame::Hpub),
        1 => Just(ClientFrame::Sub),
        2 => Just(ClientFrame::Ping),
        1 => Just(ClientFrame::Pong),
    ]
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        3 => (1usize..24).prop_map(Event::ClientSend),
        2 => Just(Event::ClientFinishFrame),
        4 => (0u64..3500, prop::option::weighted(0.7, any::<u8>())).prop_map(|(t, a)| Event::Idle(t, a)),
        2 => payload().prop_map(Event::ServerMsg),
        3 => any::<u8>().prop_map(Event::ServerAnswers),
    ]
}

/// For each PING the server saw (the client's or the filter's, in order), whether the filter injected it.
fn decompose(upstream: &[u8], frames: &[Vec<u8>]) -> Result<Vec<bool>, String> {
    let items = split_upstream(upstream, frames, FILTER_PING)?;
    Ok(items
        .into_iter()
        .filter_map(|item| match item {
            None => Some(true),
            Some(f) if frames[f] == b"ping\r\n" => Some(false),
            Some(_) => None,
        })
        .collect())
}

enum ServerFrame {
    Bytes(Vec<u8>),
    /// The PONG answering the server's n-th PING.
    Pong(usize),
}

/// The server answers every PING it received and has not answered, in two writes cut at `cut`/256.
fn answer_all(
    h: &mut TestHost,
    c: heartbeat_host_tests::ConnId,
    frames: &[Vec<u8>],
    server: &mut Vec<ServerFrame>,
    answered: &mut usize,
    cut: u8,
) -> Result<(), TestCaseError> {
    let pings = decompose(&h.upstream_received(c), frames).map_err(TestCaseError::fail)?;
    let batch = b"PONG\r\n".repeat(pings.len() - *answered);
    server.extend((*answered..pings.len()).map(ServerFrame::Pong));
    *answered = pings.len();
    upstream_send_in_two(h, c, &batch, cut);
    Ok(())
}

/// Runs one conversation; returns how many PINGs the filter injected and how many of their PONGs
/// came back.
fn run(frames: Vec<ClientFrame>, events: Vec<Event>) -> Result<(usize, usize), TestCaseError> {
    let frames: Vec<Vec<u8>> =
        std::iter::once(b"CONNECT {}\r\n".to_vec()).chain(frames.iter().map(ClientFrame::bytes)).collect();
    let mut client = ClientStream::new(&frames);
    let mut h: TestHost = start("nats");
    let c = h.connect();
    let mut server: Vec<ServerFrame> = vec![ServerFrame::Bytes(b"INFO {}\r\n".to_vec())];
    h.upstream_send(c, "INFO {}\r\n");
    let mut answered = 0;
    for event in events {
        if h.closed(c).is_some() {
            break;
        }
        match event {
            Event::ClientSend(n) => client.send(&mut h, c, n),
            Event::ClientFinishFrame => client.finish_frame(&mut h, c),
            Event::Idle(t, answer) => {
                h.advance(ms(t));
                if let (Some(cut), None) = (answer, h.closed(c)) {
                    answer_all(&mut h, c, &frames, &mut server, &mut answered, cut)?;
                }
            }
            Event::ServerMsg(p) => {
                let msg = [format!("MSG foo 1 {}\r\n", p.len()).as_bytes(), &p, b"\r\n"].concat();
                h.upstream_send(c, &msg);
                server.push(ServerFrame::Bytes(msg));
            }
            Event::ServerAnswers(cut) => answer_all(&mut h, c, &frames, &mut server, &mut answered, cut)?,
        }
    }
    let pings = decompose(&h.upstream_received(c), &frames).map_err(TestCaseError::fail)?;
    let expected: Vec<u8> = server
        .iter()
        .flat_map(|f| match f {
            ServerFrame::Bytes(b) => b.clone(),
            ServerFrame::Pong(n) if pings[*n] => Vec::new(),
            ServerFrame::Pong(_) => b"PONG\r\n".to_vec(),
        })
        .collect();
    let received = h.client_received(c);
    prop_assert_eq!(String::from_utf8_lossy(&received), String::from_utf8_lossy(&expected));
    let injected = pings.iter().filter(|p| **p).count();
    let stripped = server.iter().filter(|f| matches!(f, ServerFrame::Pong(n) if pings[*n])).count();
    Ok((injected, stripped))
}

#[test]
fn nats_streams_stay_byte_exact_with_pings_only_at_boundaries() {
    let strategy = (prop::collection::vec(client_frame(), 1..12), prop::collection::vec(event(), 1..30));
    let (injected, stripped) = run_seeded(32, strategy, |(frames, events)| run(frames, events));
    assert_exercised("nats", injected, stripped);
}

#[test]
fn decompose_rejects_a_ping_inside_a_frame() {
    let frames = vec![b"PUB foo 2\r\nhi\r\n".to_vec()];
    assert_eq!(decompose(b"PUB foo 2\r\nhi\r\nPING\r\n", &frames), Ok(vec![true]));
    assert_eq!(decompose(b"PUB foo 2\r\nh", &frames), Ok(vec![]), "a frame still on its way");
    assert!(decompose(b"PUB foo 2\r\nPING\r\nhi\r\n", &frames).is_err());
}
