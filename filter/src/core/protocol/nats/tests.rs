//! The NATS decoder on hand-written conversations: every split of every stream, the limits nats-server
//! keeps, malformed streams, and bodies skipped by counting.

use super::*;
use crate::core::protocol::{check_skipping, client_view, frame_ends};

fn publish(subject: &str, payload: &[u8]) -> Vec<u8> {
    let mut frame = format!("PUB {subject} {}\r\n", payload.len()).into_bytes();
    frame.extend_from_slice(payload);
    frame.extend_from_slice(b"\r\n");
    frame
}

fn message(verb: &str, subject: &str, headers: &[u8], payload: &[u8]) -> Vec<u8> {
    let total = headers.len() + payload.len();
    let mut frame = if verb.starts_with('H') {
        format!("{verb} {subject} {} {total}\r\n", headers.len()).into_bytes()
    } else {
        format!("{verb} {subject} {total}\r\n").into_bytes()
    };
    frame.extend_from_slice(headers);
    frame.extend_from_slice(payload);
    frame.extend_from_slice(b"\r\n");
    frame
}

/// Client frames covering every op, payloads that look like control lines, odd case and line ends.
fn client_frames() -> Vec<Vec<u8>> {
    vec![
        b"CONNECT {\"verbose\":false,\"pedantic\":false,\"headers\":true}\r\n".to_vec(),
        publish("foo.bar", b"PING\r\nPONG\r\n\r\n"),
        message("HPUB", "foo reply.1", b"NATS/1.0\r\nX: PING\r\n\r\n", b"PONG\r\nbody"),
        b"SUB foo 1\r\n".to_vec(),
        b"PING\r\n".to_vec(),
        publish("empty", b""),
        b"pub\tlower\tinbox 5\r\nab\r\nc\r\n".to_vec(),
        b"ping\n".to_vec(),
        b"UNSUB 1 10\r\n".to_vec(),
        b"PONG\r\n".to_vec(),
        message("HPUB", "only.headers", b"NATS/1.0\r\n\r\n", b""),
    ]
}

const CLIENT_PINGS: u64 = 2;

#[test]
fn client_boundaries_after_every_byte() {
    let frames = client_frames();
    let ends = frame_ends(&frames);
    let stream = frames.concat();
    let mut nats = Nats::new();
    assert_eq!(nats.can_inject(), Err(Defer::Handshake));
    for (at, byte) in stream.iter().enumerate() {
        nats.on_client_bytes(std::slice::from_ref(byte)).unwrap();
        let fed = at + 1;
        let expected = if fed < ends[0] {
            Err(Defer::Handshake)
        } else if ends.contains(&fed) {
            Ok(())
        } else {
            Err(Defer::MidFrame)
        };
        assert_eq!(nats.can_inject(), expected, "after {fed} bytes");
    }
    assert_eq!(nats.pairing.owners().total(), CLIENT_PINGS);
}

#[test]
fn client_split_at_every_position() {
    let frames = client_frames();
    let ends = frame_ends(&frames);
    let stream = frames.concat();
    for cut in 0..=stream.len() {
        let mut nats = Nats::new();
        nats.on_client_bytes(&stream[..cut]).unwrap();
        let at_boundary = nats.can_inject().is_ok();
        assert_eq!(at_boundary, ends.contains(&cut), "cut at {cut}");
        nats.on_client_bytes(&stream[cut..]).unwrap();
        assert_eq!(nats.can_inject(), Ok(()));
        assert_eq!(nats.pairing.owners().total(), CLIENT_PINGS);
    }
}

/// The server's side of a conversation, with owners queued as: Filter, Client, Filter, Filter.
/// Each frame says whether the client must receive it.
fn server_frames() -> Vec<(Vec<u8>, bool)> {
    vec![
        (b"INFO {\"server_id\":\"x\",\"max_payload\":1048576}\r\n".to_vec(), true),
        (b"+OK\r\n".to_vec(), true),
        (message("MSG", "foo 1", b"", b"PONG\r\n"), true),
        (b"PONG\r\n".to_vec(), false),
        (message("MSG", "foo 1 reply.2", b"", b"PING\r\nPO"), true),
        (b"PING\r\n".to_vec(), true),
        (b"PONG\r\n".to_vec(), true),
        (message("HMSG", "foo 1", b"NATS/1.0\r\nA: PONG\r\n\r\n", b"P"), true),
        (b"PONG\r\n".to_vec(), false),
        (b"-ERR 'Unknown Subject'\r\n".to_vec(), true),
        (b"pong\n".to_vec(), false),
        (b"PONG\r\n".to_vec(), true),
        (b"+OK\r\n".to_vec(), true),
    ]
}

fn connected_with_owners() -> Nats {
    let mut nats = Nats::new();
    nats.on_client_bytes(b"CONNECT {}\r\n").unwrap();
    nats.on_ping_injected();
    nats.on_client_bytes(b"PING\r\n").unwrap();
    nats.on_ping_injected();
    nats.on_ping_injected();
    nats
}

fn server_stream_and_expected() -> (Vec<u8>, Vec<u8>) {
    let frames = server_frames();
    let stream = frames.iter().flat_map(|(f, _)| f.clone()).collect();
    let expected = frames.iter().filter(|(_, keep)| *keep).flat_map(|(f, _)| f.clone()).collect();
    (stream, expected)
}

#[test]
fn strips_filter_pongs_at_every_split() {
    let (stream, expected) = server_stream_and_expected();
    for cut in 0..=stream.len() {
        let mut nats = connected_with_owners();
        let (seen, answered) = client_view(&mut nats, &[&stream[..cut], &stream[cut..]]);
        assert_eq!(seen, expected, "cut at {cut}");
        assert_eq!(answered, 3, "cut at {cut}");
        assert!(nats.pairing.owners().is_empty());
    }
}

#[test]
fn strips_filter_pongs_at_every_pair_of_splits() {
    let (stream, expected) = server_stream_and_expected();
    for a in 0..=stream.len() {
        for b in a..=stream.len() {
            let mut nats = connected_with_owners();
            let (seen, answered) = client_view(&mut nats, &[&stream[..a], &stream[a..b], &stream[b..]]);
            assert!(seen == expected && answered == 3, "cuts at {a}, {b}");
        }
    }
}

#[test]
fn strips_filter_pongs_byte_by_byte() {
    let (stream, expected) = server_stream_and_expected();
    let chunks: Vec<&[u8]> = stream.chunks(1).collect();
    let mut nats = connected_with_owners();
    assert_eq!(client_view(&mut nats, &chunks), (expected, 3));
}

#[test]
fn held_pong_start_is_given_back() {
    let mut nats = connected_with_owners();
    let mut out = Output::new();
    assert_eq!(nats.on_upstream_bytes(b"+OK\r\nPON", &mut out).unwrap(), 0);
    assert_eq!(out.apply(b"+OK\r\nPON").unwrap(), b"+OK\r\n");
    out.clear();
    nats.release_held(&mut out);
    assert_eq!(out.apply(&[]).unwrap(), b"PON");
    // Once given back, the rest of that line is not stripped either, though it answers the filter.
    // The second PONG answers the client's PING, the third the filter's.
    out.clear();
    assert_eq!(nats.on_upstream_bytes(b"G\r\nPONG\r\nPONG\r\n", &mut out).unwrap(), 2);
    assert_eq!(out.apply(b"G\r\nPONG\r\nPONG\r\n").unwrap(), b"G\r\nPONG\r\n");
}

#[test]
fn server_ping_is_not_held_past_its_second_byte() {
    let mut nats = connected_with_owners();
    let mut out = Output::new();
    nats.on_upstream_bytes(b"P", &mut out).unwrap();
    assert_eq!(out.apply(b"P").unwrap(), b"");
    out.clear();
    nats.on_upstream_bytes(b"ING\r\n", &mut out).unwrap();
    assert_eq!(out.apply(b"ING\r\n").unwrap(), b"PING\r\n");
}

#[test]
fn lines_seen_whole_are_not_edited_while_a_pong_is_owed() {
    let mut nats = connected_with_owners();
    let mut out = Output::new();
    assert_eq!(
        nats.on_upstream_bytes(b"PING\r\nPONGS\r\nPO", &mut out),
        Err(ProtocolError::upstream("unknown operation"))
    );
    assert_eq!(out.apply(b"PING\r\nPONGS\r\nPO"), None, "PING forwarded without an edit");
    let mut nats = connected_with_owners();
    out.clear();
    assert_eq!(nats.on_upstream_bytes(b"PING\r\n+OK\r\nPONG \r\n", &mut out), Ok(1));
    assert!(!out.is_changed(), "a PONG with trailing blanks is counted, not stripped");
}

#[test]
fn unsolicited_and_client_pongs_are_forwarded() {
    let mut nats = Nats::new();
    nats.on_client_bytes(b"CONNECT {}\r\nPING\r\n").unwrap();
    let stream: &[u8] = b"PONG\r\nPONG\r\n";
    assert_eq!(client_view(&mut nats, &[stream]), (stream.to_vec(), 0));
}

#[test]
fn bad_verb_after_held_prefix_gives_bytes_back_and_fails() {
    let mut nats = connected_with_owners();
    let mut out = Output::new();
    nats.on_upstream_bytes(b"PON", &mut out).unwrap();
    assert_eq!(out.apply(b"PON").unwrap(), b"");
    out.clear();
    let err = nats.on_upstream_bytes(b"X\r\n", &mut out).unwrap_err();
    assert_eq!(err, ProtocolError::upstream("unknown operation"));
    assert_eq!(out.apply(b"X\r\n").unwrap(), b"PONX\r\n");
    out.clear();
    assert!(nats.on_upstream_bytes(b"PONG\r\n", &mut out).is_err(), "errors are sticky");
}

fn client_error(stream: &[u8]) -> &'static str {
    let mut nats = Nats::new();
    nats.on_client_bytes(stream).unwrap_err().reason
}

fn upstream_error(stream: &[u8]) -> &'static str {
    let mut nats = connected_with_owners();
    nats.on_upstream_bytes(stream, &mut Output::new()).unwrap_err().reason
}

#[test]
fn malformed_client_streams_are_errors() {
    assert_eq!(client_error(b"\x16\x03\x01\x02\x00\x01\x00"), "unknown operation");
    assert_eq!(client_error(b"\r\n"), "unknown operation");
    assert_eq!(client_error(b"CONNECTX {}\r\n"), "unknown operation");
    assert_eq!(client_error(b"MSG foo 1 2\r\nab\r\n"), "unknown operation");
    assert_eq!(client_error(b"PUB\r\n"), "missing payload size");
    assert_eq!(client_error(b"PUB 5\r\n"), "wrong number of arguments");
    assert_eq!(client_error(b"PUB a b c 5\r\n"), "wrong number of arguments");
    assert_eq!(client_error(b"PUB foo five\r\n"), "payload size is not a number");
    assert_eq!(client_error(b"PUB foo -1\r\n"), "payload size is not a number");
    assert_eq!(client_error(b"PUB foo 67108865\r\n"), "payload size exceeds 64 MiB");
    assert_eq!(client_error(b"PUB foo 184467440737095516160\r\n"), "payload size exceeds 64 MiB");
    assert_eq!(client_error(b"HPUB foo 10 5\r\n"), "header size larger than total size");
    assert_eq!(client_error(b"PUB foo 3\r\nabcX"), "payload not followed by CRLF");
    assert_eq!(client_error(b"PUB foo 3\r\nabc\rX"), "payload not followed by CRLF");
    let long = [b"SUB ".as_slice(), &[b'a'; 5000], b" 1\r\n"].concat();
    assert_eq!(client_error(&long), "control line too long");
    let long_pub = [b"PUB ".as_slice(), &[b'a'; 5000], b" 1\r\n"].concat();
    assert_eq!(client_error(&long_pub), "control line too long");
    let huge_connect = [b"CONNECT {\"jwt\":\"".as_slice(), &[b'a'; 70_000], b"\"}\r\n"].concat();
    assert_eq!(client_error(&huge_connect), "control line too long");
}

#[test]
fn limits_accept_what_nats_server_accepts() {
    let mut nats = Nats::new();
    let connect = [b"CONNECT {\"jwt\":\"".as_slice(), &[b'a'; 10_000], b"\"}\r\n"].concat();
    nats.on_client_bytes(&connect).unwrap();
    let sub = [b"SUB ".as_slice(), &[b'a'; 4090], b" 1\r\n"].concat();
    nats.on_client_bytes(&sub).unwrap();
    nats.on_client_bytes(b"PUB foo 67108864\r\n").unwrap();
    assert_eq!(nats.can_inject(), Err(Defer::MidFrame));
}

#[test]
fn malformed_server_streams_are_errors() {
    assert_eq!(upstream_error(b"HTTP/1.1 400 Bad Request\r\n"), "unknown operation");
    assert_eq!(upstream_error(b"PUB foo 1\r\n"), "unknown operation");
    assert_eq!(upstream_error(b"MSG foo 5\r\n"), "wrong number of arguments");
    assert_eq!(upstream_error(b"HMSG foo 1 9 8\r\n"), "header size larger than total size");
    assert_eq!(upstream_error(b"MSG foo 1 1\r\nab"), "payload not followed by CRLF");
    let long_info = [b"INFO {".as_slice(), &[b' '; 70_000]].concat();
    assert_eq!(upstream_error(&long_info), "control line too long");
}

#[test]
fn client_errors_are_sticky() {
    let mut nats = Nats::new();
    assert!(nats.on_client_bytes(b"XYZ\r\n").is_err());
    assert!(nats.on_client_bytes(b"CONNECT {}\r\n").is_err());
    assert_eq!(nats.can_inject(), Err(Defer::MidFrame));
}

const TEN_MB: usize = 10 * 1024 * 1024;

/// A payload made of lines that look like control lines, so skipping it by counting is what is tested.
fn tricky_payload(len: usize) -> Vec<u8> {
    b"PONG\r\nPING\r\nMSG x 1 2\r\n".iter().copied().cycle().take(len).collect()
}

#[test]
fn ten_megabyte_message_passes_through_unchanged() {
    let mut nats = connected_with_owners();
    let mut stream = format!("MSG big 1 {TEN_MB}\r\n").into_bytes();
    stream.extend(tricky_payload(TEN_MB));
    stream.extend_from_slice(b"\r\n");
    let mut out = Output::new();
    for chunk in stream.chunks(64 * 1024) {
        out.clear();
        assert_eq!(nats.on_upstream_bytes(chunk, &mut out), Ok(0));
        assert!(!out.is_changed());
        assert_eq!(out.accounted(), chunk.len());
    }
    assert!(nats.upstream.at_boundary());
    out.clear();
    assert_eq!(nats.on_upstream_bytes(b"PONG\r\n", &mut out), Ok(1));
    assert_eq!(out.apply(b"PONG\r\n").unwrap(), b"");
}

#[test]
fn ten_megabyte_publish_is_one_frame() {
    let mut nats = Nats::new();
    nats.on_client_bytes(b"CONNECT {}\r\n").unwrap();
    nats.on_client_bytes(format!("PUB big {TEN_MB}\r\n").as_bytes()).unwrap();
    for chunk in tricky_payload(TEN_MB).chunks(64 * 1024) {
        nats.on_client_bytes(chunk).unwrap();
        assert_eq!(nats.can_inject(), Err(Defer::MidFrame));
    }
    nats.on_client_bytes(b"\r\n").unwrap();
    assert_eq!(nats.can_inject(), Ok(()));
    assert_eq!(nats.pairing.owners().total(), 0, "PINGs inside the payload are not PINGs");
}

#[test]
fn skipping_what_may_be_skipped_is_feeding_it() {
    let server: Vec<u8> = server_frames().into_iter().flat_map(|(frame, _)| frame).collect();
    let (client, upstream) = check_skipping(connected_with_owners, &client_frames().concat(), &server);
    assert!(client > 0 && upstream > 0, "payloads were skippable: {client}, {upstream}");
    let mut nats = connected_with_owners();
    nats.on_client_bytes(b"PUB a 10\r\nPING\r\n").unwrap();
    assert_eq!(nats.client_skippable(), 4, "the whole payload");
    assert_eq!(nats.skip_client(9), 4);
    nats.on_client_bytes(b"\r\n").unwrap();
    assert_eq!(nats.can_inject(), Ok(()));
    assert_eq!(nats.pairing.owners().total(), 4, "no PING counted inside the payload");
}
