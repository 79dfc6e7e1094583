use super::*;

/// Feeds client bytes that must parse.
fn client(redis: &mut Redis, bytes: &[u8]) {
    redis.on_client_bytes(bytes).expect("client bytes parse");
}

/// Feeds upstream chunks; returns what the client receives and how many filter PINGs were answered.
fn upstream(redis: &mut Redis, chunks: &[&[u8]]) -> (Vec<u8>, u32) {
    let mut seen = Vec::new();
    let mut answered = 0;
    for chunk in chunks {
        let mut out = Output::new();
        answered += redis.on_upstream_bytes(chunk, &mut out).expect("reply parses");
        assert_eq!(out.accounted(), chunk.len(), "every byte accounted for");
        seen.extend(out.apply(chunk).unwrap_or_else(|| chunk.to_vec()));
    }
    (seen, answered)
}

/// The same stream cut in two at every position, and fed byte by byte: always the same result.
fn at_every_split(make: impl Fn() -> Redis, stream: &[u8], expect: &[u8], expect_answered: u32) {
    at_every_split_then(make, stream, expect, expect_answered, |_| {});
}

/// `at_every_split`, then `after` checks the decoder's state at the end of every feeding.
pub(super) fn at_every_split_then(
    make: impl Fn() -> Redis,
    stream: &[u8],
    expect: &[u8],
    expect_answered: u32,
    after: impl Fn(&Redis),
) {
    for cut in 0..=stream.len() {
        let mut redis = make();
        let (head, tail) = stream.split_at(cut);
        let (seen, answered) = upstream(&mut redis, &[head, tail]);
        assert_eq!(seen, expect, "cut at {cut}");
        assert_eq!(answered, expect_answered, "cut at {cut}");
        after(&redis);
    }
    let mut redis = make();
    let bytes: Vec<&[u8]> = stream.chunks(1).collect();
    let (seen, answered) = upstream(&mut redis, &bytes);
    assert_eq!(seen, expect, "byte by byte");
    assert_eq!(answered, expect_answered, "byte by byte");
    after(&redis);
}

fn concat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

const OK: &[u8] = b"+OK\r\n";
const PONG: &[u8] = b"+PONG\r\n";

#[test]
fn per_connection_state_is_small() {
    let size = std::mem::size_of::<Redis>();
    println!("Redis decoder: {size} bytes per connection (plus queue entries while replies are owed)");
    assert!(size <= 512, "{size} bytes");
}

#[test]
fn ping_is_a_multibulk_command() {
    let redis = Redis::new();
    assert_eq!(redis.ping(), b"*1\r\n$4\r\nPING\r\n");
    assert_eq!(redis.can_inject(), Ok(()));
}

#[test]
fn every_command_is_owed_one_reply() {
    let mut redis = Redis::new();
    client(&mut redis, b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\nGET k\r\nPING\n");
    assert_eq!(redis.pairing.owed_in_order(), 3);
    assert_eq!(redis.can_inject(), Err(Defer::RepliesOutstanding));
    assert_eq!(upstream(&mut redis, &[b"+OK\r\n$1\r\nv\r\n", b"+PONG\r\n"]).0, b"+OK\r\n$1\r\nv\r\n+PONG\r\n");
    assert_eq!(redis.can_inject(), Ok(()));
}

#[test]
fn empty_commands_get_no_reply() {
    let mut redis = Redis::new();
    client(&mut redis, b"\r\n\n   \r\n*0\r\n*-1\r\n");
    assert_eq!(redis.pairing.owed_in_order(), 0);
    assert_eq!(redis.can_inject(), Ok(()));
}

/// The state after `SET k v` was answered, a PING injected, and four more commands pipelined.
fn pipelined_after_ping() -> Redis {
    let mut redis = Redis::new();
    client(&mut redis, b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n");
    assert_eq!(upstream(&mut redis, &[OK]).0, OK);
    assert_eq!(redis.can_inject(), Ok(()));
    redis.on_ping_injected();
    assert_eq!(redis.can_inject(), Err(Defer::RepliesOutstanding));
    client(&mut redis, b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\nLRANGE l 0 -1\r\nINCR n\r\n*1\r\n$4\r\nPING\r\n");
    redis
}

#[test]
fn injected_pong_is_stripped_from_pipelined_replies_split_anywhere() {
    let replies: &[&[u8]] = &[b"$1\r\nv\r\n", b"*3\r\n*1\r\n:1\r\n$-1\r\n*-1\r\n", b":7\r\n", PONG];
    let stream = concat(&[&[PONG], replies].concat());
    at_every_split(pipelined_after_ping, &stream, &concat(replies), 1);
    let mut redis = pipelined_after_ping();
    upstream(&mut redis, &[&stream]);
    assert_eq!(redis.can_inject(), Ok(()));
}

#[test]
fn any_reply_to_the_filter_ping_is_stripped_whole() {
    let make = || {
        let mut redis = Redis::new();
        redis.on_ping_injected();
        client(&mut redis, b"GET k\r\n");
        redis
    };
    let stream = concat(&[b"-NOAUTH Authentication required.\r\n", b"$3\r\nabc\r\n"]);
    at_every_split(make, &stream, b"$3\r\nabc\r\n", 1);
}

#[test]
fn unsolicited_reply_is_forwarded() {
    let mut redis = Redis::new();
    assert_eq!(upstream(&mut redis, &[b"-ERR bye\r\n"]), (b"-ERR bye\r\n".to_vec(), 0));
}

#[test]
fn client_command_split_anywhere_is_mid_frame_until_whole() {
    for command in [&b"*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n"[..], b"GET key\r\n", b"*1\r\n$0\r\n\r\n"] {
        for cut in 0..=command.len() {
            let mut redis = Redis::new();
            let (head, tail) = command.split_at(cut);
            client(&mut redis, head);
            let expect = if cut == 0 {
                Ok(())
            } else if cut == command.len() {
                Err(Defer::RepliesOutstanding)
            } else {
                Err(Defer::MidFrame)
            };
            assert_eq!(redis.can_inject(), expect, "{command:?} cut at {cut}");
            client(&mut redis, tail);
            assert_eq!(redis.can_inject(), Err(Defer::RepliesOutstanding), "{command:?} cut at {cut}");
            assert_eq!(redis.pairing.owed_in_order(), 1);
        }
    }
}

#[test]
fn large_argument_is_counted_down_not_buffered() {
    let mut redis = Redis::new();
    client(&mut redis, b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$10485760\r\n");
    let body = vec![b'x'; 64 * 1024];
    for _ in 0..160 {
        client(&mut redis, &body);
        assert_eq!(redis.can_inject(), Err(Defer::MidFrame));
    }
    client(&mut redis, b"\r\n");
    assert_eq!(redis.can_inject(), Err(Defer::RepliesOutstanding));
}

#[test]
fn multi_defers_until_exec_or_discard() {
    let mut redis = Redis::new();
    client(&mut redis, b"MULTI\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n");
    assert_eq!(redis.can_inject(), Err(Defer::Transaction));
    upstream(&mut redis, &[b"+OK\r\n+QUEUED\r\n"]);
    assert_eq!(redis.can_inject(), Err(Defer::Transaction));
    client(&mut redis, b"*1\r\n$4\r\nexec\r\n");
    assert_eq!(redis.can_inject(), Err(Defer::RepliesOutstanding));
    assert_eq!(upstream(&mut redis, &[b"*1\r\n+OK\r\n"]).0, b"*1\r\n+OK\r\n");
    assert_eq!(redis.can_inject(), Ok(()));
    client(&mut redis, b"multi\r\nDISCARD\r\n");
    assert_eq!(redis.can_inject(), Err(Defer::RepliesOutstanding));
    upstream(&mut redis, &[b"+OK\r\n+OK\r\n"]);
    assert_eq!(redis.can_inject(), Ok(()));
}

#[test]
fn ten_megabyte_bulk_reply_passes_unchanged() {
    let mut redis = Redis::new();
    client(&mut redis, b"GET big\r\n");
    let mut stream = b"$10485760\r\n".to_vec();
    stream.resize(stream.len() + 10 * 1024 * 1024, b'x');
    stream.extend_from_slice(b"\r\n");
    for chunk in stream.chunks(64 * 1024) {
        let mut out = Output::new();
        assert_eq!(redis.on_upstream_bytes(chunk, &mut out), Ok(0));
        assert!(!out.is_changed());
        assert_eq!(out.apply(chunk), None);
    }
    assert_eq!(redis.can_inject(), Ok(()));
}

#[test]
fn commands_with_uncountable_replies_are_refused() {
    for command in [
        &b"MONITOR\r\n"[..],
        b"CLIENT REPLY OFF\r\n",
        b"client reply skip\r\n",
        b"PSYNC ? -1\r\n",
        b"MULTI\r\nSUBSCRIBE ch\r\n",
    ] {
        let mut redis = Redis::new();
        let error = redis.on_client_bytes(command).expect_err("refused");
        assert_eq!(error.side, super::super::Side::Client, "{command:?}");
        assert_eq!(redis.can_inject(), Err(Defer::Mode));
        assert_eq!(redis.on_client_bytes(b"PING\r\n"), Err(error), "sticky");
    }
    let mut redis = Redis::new();
    client(&mut redis, b"HELLO 2\r\nHELLO\r\nCLIENT SETNAME x\r\n");
    assert_eq!(redis.pairing.owed_in_order(), 3);
}

#[test]
fn garbage_is_an_error_never_a_panic() {
    for bytes in [
        &b"*x\r\n"[..],
        b"*1\r\nGET\r\n",
        b"*1\r\n$3\r\nGETX\r\n",
        b"*01\r\n",
        b"*1\r\n$-5\r\n",
        b"*1\r\n$536870913\r\n",
        b"*99999999999999999999\r\n",
        b"GET \"k\"\r\n",
        b"GET\x00\r\n",
    ] {
        let mut redis = Redis::new();
        assert!(redis.on_client_bytes(bytes).is_err(), "client {bytes:?}");
    }
    let mut long = vec![b'a'; 70 * 1024];
    long.push(b'\n');
    assert!(Redis::new().on_client_bytes(&long).is_err());

    let deep = b"*1\r\n".repeat(17);
    let mut long_line = b"+".to_vec();
    long_line.resize(70 * 1024, b'a');
    for bytes in [
        &b"hello\r\n"[..],
        b"+OK\n",
        b"+OK\rx",
        b"$3\r\nabcd\r\n",
        b"$-2\r\n",
        b"*2000000\r\n",
        b":1a\r\n",
        b"$536870913\r\n",
        &deep,
        &long_line,
    ] {
        let mut redis = Redis::new();
        let mut out = Output::new();
        let error = redis.on_upstream_bytes(bytes, &mut out).expect_err("garbage");
        assert_eq!(error.side, super::super::Side::Upstream, "{bytes:?}");
        assert_eq!(redis.can_inject(), Err(Defer::Mode));
        assert_eq!(out.apply(bytes).unwrap_or_else(|| bytes.to_vec()), bytes, "nothing lost");
    }
    let mut redis = Redis::new();
    let mut out = Output::new();
    assert!(redis.on_upstream_bytes(&b"*1\r\n".repeat(16), &mut out).is_ok(), "16 levels are fine");
}

// ----- subscribe mode -----

const SUBSCRIBED_NEWS: &[u8] = b"*3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n";
const EMPTY_PONG: &[u8] = b"*2\r\n$4\r\npong\r\n$0\r\n\r\n";
const MESSAGE: &[u8] = b"*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$5\r\nhello\r\n";
const PMESSAGE: &[u8] = b"*4\r\n$8\r\npmessage\r\n$2\r\nn*\r\n$4\r\nnews\r\n$3\r\nbye\r\n";

fn subscribed() -> Redis {
    let mut redis = Redis::new();
    client(&mut redis, b"*2\r\n$9\r\nSUBSCRIBE\r\n$4\r\nnews\r\n");
    assert_eq!(redis.can_inject(), Err(Defer::Mode), "not confirmed yet");
    assert_eq!(upstream(&mut redis, &[SUBSCRIBED_NEWS]).0, SUBSCRIBED_NEWS);
    assert_eq!(redis.can_inject(), Ok(()));
    redis
}

#[test]
fn subscribe_waits_for_replies_owed_from_before() {
    let mut redis = Redis::new();
    client(&mut redis, b"GET k\r\n");
    redis.on_ping_injected(); // replies are owed, so `can_inject` would defer: as if a PING had gone in first
    client(&mut redis, b"SUBSCRIBE news\r\n");
    let stream = concat(&[b"$1\r\nv\r\n", PONG, SUBSCRIBED_NEWS]);
    assert_eq!(upstream(&mut redis, &[&stream]), (concat(&[b"$1\r\nv\r\n", SUBSCRIBED_NEWS]), 1));
    assert_eq!(redis.can_inject(), Ok(()));
}

/// Subscribed; the filter PINGs, the client PINGs twice (once with an argument), the filter PINGs again.
fn pings_in_subscribe_mode() -> Redis {
    let mut redis = subscribed();
    redis.on_ping_injected();
    client(&mut redis, b"PING\r\n*2\r\n$4\r\nPING\r\n$2\r\nhi\r\n");
    assert_eq!(redis.can_inject(), Ok(()));
    redis.on_ping_injected();
    redis
}

#[test]
fn filter_pongs_are_stripped_among_messages_and_client_pongs() {
    let client_pong_hi: &[u8] = b"*2\r\n$4\r\npong\r\n$2\r\nhi\r\n";
    let stream =
        concat(&[MESSAGE, EMPTY_PONG, PMESSAGE, EMPTY_PONG, MESSAGE, client_pong_hi, MESSAGE, EMPTY_PONG, MESSAGE]);
    let expect = concat(&[MESSAGE, PMESSAGE, EMPTY_PONG, MESSAGE, client_pong_hi, MESSAGE, MESSAGE]);
    at_every_split(pings_in_subscribe_mode, &stream, &expect, 2);
}

#[test]
fn error_answering_the_filter_ping_in_subscribe_mode_is_stripped() {
    let make = || {
        let mut redis = subscribed();
        redis.on_ping_injected();
        client(&mut redis, b"GET k\r\n");
        redis
    };
    let not_allowed: &[u8] = b"-ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n";
    let stream = concat(&[MESSAGE, b"-BUSY Redis is busy running a script.\r\n", MESSAGE, not_allowed]);
    at_every_split(make, &stream, &concat(&[MESSAGE, MESSAGE, not_allowed]), 1);
}

#[test]
fn more_subscriptions_keep_pairing_exact() {
    let make = || {
        let mut redis = subscribed();
        client(&mut redis, b"PSUBSCRIBE n* m*\r\nSUBSCRIBE\r\n");
        assert_eq!(redis.can_inject(), Ok(()));
        redis.on_ping_injected();
        redis
    };
    let psub_n: &[u8] = b"*3\r\n$10\r\npsubscribe\r\n$2\r\nn*\r\n:2\r\n";
    let psub_m: &[u8] = b"*3\r\n$10\r\npsubscribe\r\n$2\r\nm*\r\n:3\r\n";
    let arity: &[u8] = b"-ERR wrong number of arguments for 'subscribe' command\r\n";
    let stream = concat(&[psub_n, MESSAGE, psub_m, arity, EMPTY_PONG]);
    at_every_split(make, &stream, &concat(&[psub_n, MESSAGE, psub_m, arity]), 1);
    let mut redis = make();
    upstream(&mut redis, &[&stream]);
    assert_eq!(redis.pairing.subscription_counts(), (1, 2));
}

#[test]
fn unsubscribe_defers_until_answered_and_all_replies_are_counted() {
    let mut redis = subscribed();
    client(&mut redis, b"PSUBSCRIBE n*\r\nSUBSCRIBE sport\r\n");
    upstream(
        &mut redis,
        &[b"*3\r\n$10\r\npsubscribe\r\n$2\r\nn*\r\n:2\r\n", b"*3\r\n$9\r\nsubscribe\r\n$5\r\nsport\r\n:3\r\n"],
    );
    // Unsubscribes from both channels: two replies; the pattern keeps the server in subscribe mode.
    client(&mut redis, b"UNSUBSCRIBE\r\n");
    assert_eq!(redis.can_inject(), Err(Defer::Mode));
    upstream(&mut redis, &[b"*3\r\n$11\r\nunsubscribe\r\n$4\r\nnews\r\n:2\r\n"]);
    assert_eq!(redis.can_inject(), Err(Defer::Mode), "one reply still to come");
    upstream(&mut redis, &[b"*3\r\n$11\r\nunsubscribe\r\n$5\r\nsport\r\n:1\r\n"]);
    assert_eq!(redis.can_inject(), Ok(()));
    redis.on_ping_injected();
    assert_eq!(upstream(&mut redis, &[EMPTY_PONG, PMESSAGE]), (PMESSAGE.to_vec(), 1));
}

#[test]
fn leaving_subscribe_mode_stops_injection_for_good() {
    let mut redis = subscribed();
    redis.on_ping_injected();
    client(&mut redis, b"UNSUBSCRIBE news\r\nGET k\r\n");
    assert_eq!(redis.can_inject(), Err(Defer::Mode));
    let unsubscribed: &[u8] = b"*3\r\n$11\r\nunsubscribe\r\n$4\r\nnews\r\n:0\r\n";
    let stream = concat(&[EMPTY_PONG, unsubscribed, b"$1\r\nv\r\n"]);
    assert_eq!(upstream(&mut redis, &[&stream]), (concat(&[unsubscribed, b"$1\r\nv\r\n"]), 1));
    assert_eq!(redis.can_inject(), Err(Defer::Mode));
    client(&mut redis, b"SUBSCRIBE news\r\n");
    upstream(&mut redis, &[SUBSCRIBED_NEWS]);
    assert_eq!(redis.can_inject(), Err(Defer::Mode), "for good");
}

#[test]
fn reset_in_subscribe_mode_stops_injection_but_strips_what_is_owed() {
    let mut redis = subscribed();
    redis.on_ping_injected();
    client(&mut redis, b"RESET\r\nGET k\r\n");
    assert_eq!(redis.can_inject(), Err(Defer::Mode));
    let stream = concat(&[MESSAGE, EMPTY_PONG, b"+RESET\r\n$1\r\nv\r\n"]);
    assert_eq!(upstream(&mut redis, &[&stream]), (concat(&[MESSAGE, b"+RESET\r\n$1\r\nv\r\n"]), 1));
    assert_eq!(redis.can_inject(), Err(Defer::Mode));
}

#[test]
fn failed_subscribe_stops_injection_for_good() {
    let mut redis = Redis::new();
    client(&mut redis, b"SUBSCRIBE secret\r\nPING\r\n");
    let denied: &[u8] = b"-NOPERM No permissions to access a channel\r\n";
    assert_eq!(upstream(&mut redis, &[denied, PONG]).0, concat(&[denied, PONG]));
    assert_eq!(redis.can_inject(), Err(Defer::Mode));
}

#[test]
fn shard_channels_count_apart() {
    let mut redis = Redis::new();
    client(&mut redis, b"SSUBSCRIBE s1\r\nSUBSCRIBE news\r\nSUNSUBSCRIBE s1\r\n");
    upstream(
        &mut redis,
        &[
            b"*3\r\n$10\r\nssubscribe\r\n$2\r\ns1\r\n:1\r\n",
            SUBSCRIBED_NEWS,
            b"*3\r\n$12\r\nsunsubscribe\r\n$2\r\ns1\r\n:0\r\n",
        ],
    );
    assert_eq!(redis.can_inject(), Ok(()), "still subscribed to a channel");
}

#[test]
fn held_pong_is_given_back_at_end_of_stream() {
    let mut redis = subscribed();
    redis.on_ping_injected();
    let mut out = Output::new();
    redis.on_upstream_bytes(b"*3\r\n$7\r\nmes", &mut out).expect("parses");
    assert_eq!(out.apply(b"*3\r\n$7\r\nmes").as_deref(), Some(&b""[..]), "held while undecided");
    let mut out = Output::new();
    redis.release_held(&mut out);
    assert_eq!(out.apply(b"").as_deref(), Some(&b"*3\r\n$7\r\nmes"[..]));
}

// ----- conversations recorded from redis-server 7.0.15 -----

/// One step of a recorded conversation, and the reply bytes that arrived after it.
enum Segment {
    Client(&'static [u8]),
    /// The filter's PING was sent: what arrived after it is its answer.
    Inject,
    /// Another connection published a message.
    Publish,
}

const PIPELINE: &[(Segment, &[u8])] = &[
    (Segment::Client(b"FLUSHALL\r\n"), b"+OK\r\n"),
    (Segment::Client(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n"), b"+OK\r\n"),
    (Segment::Inject, b"+PONG\r\n"),
    (Segment::Client(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\nRPUSH l a b\r\nLRANGE l 0 -1\r\nPING\r\nINCR k\r\nGET missing\r\n"), b"$1\r\nv\r\n:2\r\n*2\r\n$1\r\na\r\n$1\r\nb\r\n+PONG\r\n-ERR value is not an integer or out of range\r\n$-1\r\n"),
    (Segment::Inject, b"+PONG\r\n"),
    (Segment::Client(b"MULTI\r\nSET k 1\r\nINCR k\r\nEXEC\r\n"), b"+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n+OK\r\n:2\r\n"),
    (Segment::Inject, b"+PONG\r\n"),
    (Segment::Client(b"AUTH nobody nothing\r\nECHO PONG\r\n"), b"-WRONGPASS invalid username-password pair or user is disabled.\r\n$4\r\nPONG\r\n"),
];
const SUBSCRIBE: &[(Segment, &[u8])] = &[
    (Segment::Client(b"SUBSCRIBE a b\r\n"), b"*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n*3\r\n$9\r\nsubscribe\r\n$1\r\nb\r\n:2\r\n"),
    (Segment::Inject, b"*2\r\n$4\r\npong\r\n$0\r\n\r\n"),
    (Segment::Client(b"PING\r\nPING hi\r\n"), b"*2\r\n$4\r\npong\r\n$0\r\n\r\n*2\r\n$4\r\npong\r\n$2\r\nhi\r\n"),
    (Segment::Inject, b"*2\r\n$4\r\npong\r\n$0\r\n\r\n"),
    (Segment::Publish, b"*3\r\n$7\r\nmessage\r\n$1\r\na\r\n$5\r\nhello\r\n"),
    (Segment::Client(b"GET k\r\n"), b"-ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n"),
    (Segment::Inject, b"*2\r\n$4\r\npong\r\n$0\r\n\r\n"),
    (Segment::Client(b"PSUBSCRIBE p*\r\n"), b"*3\r\n$10\r\npsubscribe\r\n$2\r\np*\r\n:3\r\n"),
    (Segment::Publish, b"*4\r\n$8\r\npmessage\r\n$2\r\np*\r\n$2\r\npx\r\n$2\r\nhi\r\n"),
    (Segment::Inject, b"*2\r\n$4\r\npong\r\n$0\r\n\r\n"),
    (Segment::Client(b"UNSUBSCRIBE\r\n"), b"*3\r\n$11\r\nunsubscribe\r\n$1\r\na\r\n:2\r\n*3\r\n$11\r\nunsubscribe\r\n$1\r\nb\r\n:1\r\n"),
    (Segment::Inject, b"*2\r\n$4\r\npong\r\n$0\r\n\r\n"),
    (Segment::Publish, b"*4\r\n$8\r\npmessage\r\n$2\r\np*\r\n$2\r\npx\r\n$5\r\nagain\r\n"),
    (Segment::Client(b"PUNSUBSCRIBE\r\nPING\r\nGET k\r\n"), b"*3\r\n$12\r\npunsubscribe\r\n$2\r\np*\r\n:0\r\n+PONG\r\n$1\r\n2\r\n"),
];

/// Replays a recorded conversation, injecting where it was recorded, with replies in `piece`-byte chunks.
fn replay(conversation: &[(Segment, &[u8])], piece: usize) -> Redis {
    let mut redis = Redis::new();
    for (step, (segment, replies)) in conversation.iter().enumerate() {
        let expect: &[u8] = match segment {
            Segment::Client(bytes) => {
                client(&mut redis, bytes);
                replies
            }
            Segment::Inject => {
                assert_eq!(redis.can_inject(), Ok(()), "step {step}");
                redis.on_ping_injected();
                b""
            }
            Segment::Publish => replies,
        };
        let chunks: Vec<&[u8]> = replies.chunks(piece).collect();
        let answered = u32::from(matches!(segment, Segment::Inject));
        assert_eq!(upstream(&mut redis, &chunks), (expect.to_vec(), answered), "step {step}");
    }
    redis
}

#[test]
fn recorded_pipeline_with_pings_between_commands() {
    for piece in [1, 3, 1000] {
        let redis = replay(PIPELINE, piece);
        assert_eq!(redis.can_inject(), Ok(()));
    }
}

#[test]
fn recorded_subscribe_mode_until_it_is_left() {
    for piece in [1, 5, 1000] {
        let redis = replay(SUBSCRIBE, piece);
        assert_eq!(redis.can_inject(), Err(Defer::Mode), "left subscribe mode: for good");
    }
}
