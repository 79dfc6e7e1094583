//! Property tests for the Redis decoder: random conversations with a model server, cut into random chunks.
//!
//! The model server answers each command when its last byte arrives, in order, and (in subscribe mode)
//! pushes messages between replies. The filter injects a PING whenever `can_inject` says so. The client
//! must receive the server's bytes minus exactly the replies to the filter's PINGs, and every filter PING
//! must be reported answered once.

use heartbeat::core::protocol::redis::Redis;
use heartbeat::core::protocol::{Defer, Output, Protocol};
use proptest::prelude::*;

mod common;
use common::bench_ratio;

/// Drives one decoder: client bytes in, server bytes out, and what the client should see.
struct Harness {
    redis: Redis,
    /// Everything the server has written so far.
    server: Vec<u8>,
    /// Everything the client must receive (the server's bytes minus the filter's replies).
    expect: Vec<u8>,
    /// What the client received so far.
    seen: Vec<u8>,
    delivered: usize,
    injected: u32,
    answered: u32,
    cuts: Vec<usize>,
    next_cut: usize,
}

impl Harness {
    fn new(cuts: Vec<usize>) -> Self {
        Harness {
            redis: Redis::new(),
            server: Vec::new(),
            expect: Vec::new(),
            seen: Vec::new(),
            delivered: 0,
            injected: 0,
            answered: 0,
            cuts,
            next_cut: 0,
        }
    }

    fn cut(&mut self) -> usize {
        let cut = self.cuts.get(self.next_cut % self.cuts.len().max(1)).copied().unwrap_or(7);
        self.next_cut += 1;
        cut.max(1)
    }

    /// The client sends one whole command, in chunks; no PING may go in before its last byte.
    fn send(&mut self, command: &[u8]) {
        let mut at = 0;
        while at < command.len() {
            let end = (at + self.cut()).min(command.len());
            self.redis.on_client_bytes(&command[at..end]).expect("valid command parses");
            at = end;
            if at < command.len() {
                // Mode wins once subscribe mode was left for good (the client side is no longer parsed).
                let defer = self.redis.can_inject();
                assert!(defer == Err(Defer::MidFrame) || defer == Err(Defer::Mode), "inside {command:?}: {defer:?}");
            }
        }
    }

    /// The server writes `bytes`; the client must receive them unless they answer the filter.
    fn reply(&mut self, bytes: &[u8], to_client: bool) {
        self.server.extend_from_slice(bytes);
        if to_client {
            self.expect.extend_from_slice(bytes);
        }
    }

    fn try_inject(&mut self) -> bool {
        if self.redis.can_inject().is_ok() {
            self.redis.on_ping_injected();
            self.injected += 1;
            true
        } else {
            false
        }
    }

    /// Delivers a share (in quarters) of what the server wrote and the client has not received yet.
    fn deliver(&mut self, quarters: usize) {
        let upto = self.delivered + (self.server.len() - self.delivered) * quarters.min(4) / 4;
        while self.delivered < upto {
            let end = (self.delivered + self.cut()).min(upto);
            let chunk = self.server[self.delivered..end].to_vec();
            let mut out = Output::new();
            self.answered += self.redis.on_upstream_bytes(&chunk, &mut out).expect("valid reply parses");
            assert_eq!(out.accounted(), chunk.len());
            self.seen.extend(out.apply(&chunk).unwrap_or(chunk));
            self.delivered = end;
        }
    }

    fn finish(mut self) {
        self.deliver(4);
        assert_eq!(self.seen, self.expect);
        assert_eq!(self.answered, self.injected);
    }
}

fn bulk(bytes: &[u8]) -> Vec<u8> {
    [format!("${}\r\n", bytes.len()).as_bytes(), bytes, b"\r\n"].concat()
}

fn array(items: &[Vec<u8>]) -> Vec<u8> {
    [format!("*{}\r\n", items.len()).into_bytes(), items.concat()].concat()
}

fn multibulk(args: &[Vec<u8>]) -> Vec<u8> {
    array(&args.iter().map(|a| bulk(a)).collect::<Vec<_>>())
}

/// A RESP3 aggregate whose header is `kind` and `len`.
fn aggregate(kind: char, len: usize, items: &[Vec<u8>]) -> Vec<u8> {
    [format!("{kind}{len}\r\n").into_bytes(), items.concat()].concat()
}

/// Any RESP2 or RESP3 reply, nested aggregates included; PONG-looking ones on purpose. (The decoder reads
/// RESP3 types whatever the client sent: a RESP2 server never sends them.)
fn reply_value() -> impl Strategy<Value = Vec<u8>> {
    let leaf = prop_oneof![
        Just(b"+PONG\r\n".to_vec()),
        Just(b"+OK\r\n".to_vec()),
        "[ -~]{0,12}".prop_map(|s| format!("+{s}\r\n").into_bytes()),
        "[ -~]{0,12}".prop_map(|s| format!("-ERR {s}\r\n").into_bytes()),
        any::<i64>().prop_map(|n| format!(":{n}\r\n").into_bytes()),
        prop::collection::vec(any::<u8>(), 0..40).prop_map(|b| bulk(&b)),
        Just(b"$4\r\nPONG\r\n".to_vec()),
        Just(b"$-1\r\n".to_vec()),
        Just(b"*-1\r\n".to_vec()),
        Just(b"*0\r\n".to_vec()),
        (1usize..200_000).prop_map(|n| bulk(&vec![b'\r'; n])),
        Just(b"_\r\n".to_vec()),
        any::<f64>().prop_map(|d| format!(",{d}\r\n").into_bytes()),
        prop::bool::ANY.prop_map(|b| if b { b"#t\r\n".to_vec() } else { b"#f\r\n".to_vec() }),
        "-?[0-9]{1,40}".prop_map(|n| format!("({n}\r\n").into_bytes()),
        prop::collection::vec(any::<u8>(), 0..30).prop_map(|b| [&b"!"[..], &bulk(&b)[1..]].concat()),
        "[ -~]{0,20}".prop_map(|t| [&b"="[..], &bulk(format!("txt:{t}").as_bytes())[1..]].concat()),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 1..4).prop_map(|items| array(&items)),
            prop::collection::vec(inner.clone(), 0..4).prop_map(|items| aggregate('~', items.len(), &items)),
            prop::collection::vec((inner.clone(), inner), 0..3).prop_map(|pairs| {
                let items: Vec<Vec<u8>> = pairs.iter().flat_map(|(k, v)| [k.clone(), v.clone()]).collect();
                aggregate('%', pairs.len(), &items)
            }),
        ]
    })
}

/// A RESP3 push frame: a pub/sub message or a client-side caching invalidation, sent at any time.
fn push_frame() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..20).prop_map(|m| aggregate(
            '>',
            3,
            &[bulk(b"message"), bulk(b"ch"), bulk(&m)]
        )),
        "[a-z]{1,8}".prop_map(|k| aggregate('>', 2, &[bulk(b"invalidate"), array(&[bulk(k.as_bytes())])])),
    ]
}

/// A command name that is none of the ones the decoder treats specially.
fn plain_name() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"GET".to_vec()),
        Just(b"set".to_vec()),
        Just(b"LRANGE".to_vec()),
        Just(b"PING".to_vec()),
        Just(b"ECHO".to_vec()),
        Just(b"BLPOP".to_vec()),
        "x[a-z]{0,6}[0-9]".prop_map(String::into_bytes),
    ]
}

/// A command in multibulk or inline form.
fn command() -> impl Strategy<Value = Vec<u8>> {
    let multibulk_form = (plain_name(), prop::collection::vec(prop::collection::vec(any::<u8>(), 0..30), 0..4))
        .prop_map(|(name, args)| multibulk(&[vec![name], args].concat()));
    let inline_form = (plain_name(), prop::collection::vec("[a-zA-Z0-9_:.-]{1,10}", 0..4), prop::bool::ANY).prop_map(
        |(name, args, crlf)| {
            let mut line = name;
            for arg in args {
                line.push(b' ');
                line.extend(arg.into_bytes());
            }
            line.extend_from_slice(if crlf { b"\r\n" } else { b"\n" });
            line
        },
    );
    prop_oneof![3 => multibulk_form, 1 => inline_form]
}

fn filter_reply() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        6 => Just(b"+PONG\r\n".to_vec()),
        1 => Just(b"-NOAUTH Authentication required.\r\n".to_vec()),
        1 => Just(b"-LOADING Redis is loading the dataset in memory\r\n".to_vec()),
    ]
}

#[derive(Clone, Debug)]
enum Step {
    /// A command and its reply.
    Command(Vec<u8>, Vec<u8>),
    /// MULTI, queued commands, then EXEC or DISCARD, with their replies.
    Transaction(Vec<Vec<u8>>, bool),
    /// Try to inject; the server's answer if it happens.
    Inject(Vec<u8>),
    /// Deliver a share of the server's output.
    Deliver(usize),
    /// The server sends a RESP3 push between replies: out of band, the client gets it.
    Push(Vec<u8>),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (command(), reply_value()).prop_map(|(c, r)| Step::Command(c, r)),
        1 => push_frame().prop_map(Step::Push),
        1 => (prop::collection::vec(command(), 0..3), prop::bool::ANY)
            .prop_map(|(queued, exec)| Step::Transaction(queued, exec)),
        3 => filter_reply().prop_map(Step::Inject),
        3 => (0usize..=4).prop_map(Step::Deliver),
    ]
}

fn cuts() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(prop_oneof![4 => 1usize..12, 1 => 12usize..70_000], 1..8)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn normal_mode_strips_exactly_the_filter_replies(steps in prop::collection::vec(step(), 0..40), cuts in cuts()) {
        let mut h = Harness::new(cuts);
        for step in steps {
            match step {
                Step::Command(command, reply) => {
                    h.send(&command);
                    h.reply(&reply, true);
                }
                Step::Transaction(queued, exec) => {
                    h.send(b"MULTI\r\n");
                    h.reply(b"+OK\r\n", true);
                    for command in &queued {
                        h.send(command);
                        h.reply(b"+QUEUED\r\n", true);
                        assert_eq!(h.redis.can_inject(), Err(Defer::Transaction));
                    }
                    assert_eq!(h.redis.can_inject(), Err(Defer::Transaction));
                    if exec {
                        h.send(b"*1\r\n$4\r\nEXEC\r\n");
                        h.reply(&array(&vec![b"+OK\r\n".to_vec(); queued.len()]), true);
                    } else {
                        h.send(b"discard\r\n");
                        h.reply(b"+OK\r\n", true);
                    }
                }
                Step::Inject(answer) => {
                    if h.try_inject() {
                        h.reply(&answer, false);
                    }
                }
                Step::Deliver(quarters) => h.deliver(quarters),
                Step::Push(frame) => h.reply(&frame, true),
            }
        }
        h.finish();
    }
}

// ----- subscribe mode -----

#[derive(Clone, Debug)]
enum SubStep {
    /// The client PINGs, with an argument or not.
    Ping(Option<Vec<u8>>),
    /// The client subscribes to `n` new channels (or patterns, or shard channels).
    Subscribe(u8, usize),
    /// The client unsubscribes from its oldest channel of that kind, or from all of that kind.
    Unsubscribe(u8, bool),
    /// A command subscribe mode does not allow.
    Other(Vec<u8>),
    /// The server pushes a message.
    Push(Vec<u8>),
    Inject(bool),
    Deliver(usize),
}

fn sub_step() -> impl Strategy<Value = SubStep> {
    prop_oneof![
        3 => prop::option::of(prop::collection::vec(any::<u8>(), 0..12)).prop_map(SubStep::Ping),
        1 => (0u8..3, 1usize..3).prop_map(|(k, n)| SubStep::Subscribe(k, n)),
        1 => (0u8..3, prop::bool::weighted(0.3)).prop_map(|(k, all)| SubStep::Unsubscribe(k, all)),
        1 => command().prop_map(SubStep::Other),
        4 => prop::collection::vec(any::<u8>(), 0..50).prop_map(SubStep::Push),
        3 => prop::bool::weighted(0.2).prop_map(SubStep::Inject),
        3 => (0usize..=4).prop_map(SubStep::Deliver),
    ]
}

/// The model server's subscriptions, per kind (channels, patterns, shard channels).
#[derive(Default)]
struct Subscriptions {
    names: [Vec<String>; 3],
    made: usize,
}

impl Subscriptions {
    const SUBSCRIBE: [&'static str; 3] = ["subscribe", "psubscribe", "ssubscribe"];
    const UNSUBSCRIBE: [&'static str; 3] = ["unsubscribe", "punsubscribe", "sunsubscribe"];

    /// The count a reply of kind `k` reports: channels + patterns, or shard channels.
    fn count(&self, k: usize) -> usize {
        if k == 2 {
            self.names[2].len()
        } else {
            self.names[0].len() + self.names[1].len()
        }
    }

    fn subscribed(&self) -> bool {
        self.names.iter().any(|n| !n.is_empty())
    }

    fn notice(&self, kind: &str, name: Option<&str>, k: usize) -> Vec<u8> {
        let name = name.map_or(b"$-1\r\n".to_vec(), |n| bulk(n.as_bytes()));
        array(&[bulk(kind.as_bytes()), name, format!(":{}\r\n", self.count(k)).into_bytes()])
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn subscribe_mode_strips_exactly_the_filter_replies(
        steps in prop::collection::vec(sub_step(), 0..40),
        cuts in cuts(),
    ) {
        let mut h = Harness::new(cuts);
        let mut subs = Subscriptions::default();
        let pong = |arg: &[u8]| array(&[bulk(b"pong"), bulk(arg)]);
        for step in steps {
            match step {
                SubStep::Ping(arg) => {
                    let mut args = vec![b"PING".to_vec()];
                    args.extend(arg.clone());
                    h.send(&multibulk(&args));
                    let answer = if subs.subscribed() {
                        pong(arg.as_deref().unwrap_or(b""))
                    } else {
                        arg.map_or(b"+PONG\r\n".to_vec(), |a| bulk(&a))
                    };
                    h.reply(&answer, true);
                }
                SubStep::Subscribe(k, n) => {
                    let k = usize::from(k);
                    let names: Vec<String> = (0..n).map(|i| format!("c{}", subs.made + i)).collect();
                    subs.made += n;
                    let mut args = vec![Subscriptions::SUBSCRIBE[k].as_bytes().to_vec()];
                    args.extend(names.iter().map(|n| n.clone().into_bytes()));
                    h.send(&multibulk(&args));
                    for name in names {
                        subs.names[k].push(name.clone());
                        let notice = subs.notice(Subscriptions::SUBSCRIBE[k], Some(&name), k);
                        h.reply(&notice, true);
                    }
                }
                SubStep::Unsubscribe(k, all) => {
                    let k = usize::from(k);
                    let verb = Subscriptions::UNSUBSCRIBE[k];
                    if all {
                        h.send(format!("{verb}\r\n").as_bytes());
                        if subs.names[k].is_empty() {
                            let notice = subs.notice(verb, None, k);
                            h.reply(&notice, true);
                        }
                        while let Some(name) = subs.names[k].pop() {
                            let notice = subs.notice(verb, Some(&name), k);
                            h.reply(&notice, true);
                        }
                    } else {
                        let name = if subs.names[k].is_empty() { "gone".to_string() } else { subs.names[k].remove(0) };
                        h.send(format!("{verb} {name}\r\n").as_bytes());
                        let notice = subs.notice(verb, Some(&name), k);
                        h.reply(&notice, true);
                    }
                }
                SubStep::Other(command) => {
                    h.send(&command);
                    let answer = if subs.subscribed() {
                        b"-ERR Can't execute 'x': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n".to_vec()
                    } else {
                        b"$1\r\nv\r\n".to_vec()
                    };
                    h.reply(&answer, true);
                }
                SubStep::Push(payload) => {
                    if let Some(channel) = subs.names[0].first() {
                        let push = array(&[bulk(b"message"), bulk(channel.as_bytes()), bulk(&payload)]);
                        h.reply(&push, true);
                    } else if let Some(pattern) = subs.names[1].first() {
                        let push = array(&[bulk(b"pmessage"), bulk(pattern.as_bytes()), bulk(b"ch"), bulk(&payload)]);
                        h.reply(&push, true);
                    } else if let Some(shard) = subs.names[2].first() {
                        let push = array(&[bulk(b"smessage"), bulk(shard.as_bytes()), bulk(&payload)]);
                        h.reply(&push, true);
                    }
                }
                SubStep::Inject(busy) => {
                    if h.try_inject() {
                        let answer = if busy {
                            b"-BUSY Redis is busy running a script.\r\n".to_vec()
                        } else if subs.subscribed() {
                            pong(b"")
                        } else {
                            b"+PONG\r\n".to_vec()
                        };
                        h.reply(&answer, false);
                    }
                }
                SubStep::Deliver(quarters) => h.deliver(quarters),
            }
        }
        h.finish();
    }
}

proptest! {
    #[test]
    fn any_bytes_on_either_side_never_panic(
        client in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 0..8),
        server in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 0..8),
        inject_at in prop::collection::vec(prop::bool::ANY, 8),
    ) {
        let mut redis = Redis::new();
        for (i, (c, s)) in client.iter().zip(server.iter().chain(std::iter::repeat(&Vec::new()))).enumerate() {
            let _ = redis.on_client_bytes(c);
            if inject_at.get(i).copied().unwrap_or(false) && redis.can_inject().is_ok() {
                redis.on_ping_injected();
            }
            let mut out = Output::new();
            let _ = redis.on_upstream_bytes(s, &mut out);
            let _ = out.apply(s);
        }
        let mut out = Output::new();
        redis.release_held(&mut out);
    }

    #[test]
    fn any_bytes_after_a_valid_prefix_never_panic(
        prefix in prop::sample::select(vec![
            &b"SUBSCRIBE a\r\n"[..], b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", b"MULTI\r\n", b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\n",
        ]),
        reply_prefix in prop::sample::select(vec![
            &b""[..], b"*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n", b"*3\r\n$7\r\n", b"*2\r\n*1\r\n", b"$10\r\nab",
        ]),
        client in prop::collection::vec(any::<u8>(), 0..200),
        server in prop::collection::vec(any::<u8>(), 0..200),
    ) {
        let mut redis = Redis::new();
        let _ = redis.on_client_bytes(prefix);
        let mut out = Output::new();
        let _ = redis.on_upstream_bytes(reply_prefix, &mut out);
        if redis.can_inject().is_ok() {
            redis.on_ping_injected();
        }
        let _ = redis.on_client_bytes(&client);
        let mut out = Output::new();
        let _ = redis.on_upstream_bytes(&server, &mut out);
        let _ = out.apply(&server);
    }
}

/// Decoder speed against copying the same bytes once, the least any filter that looks at them costs; printed,
/// never asserted: `cargo test --release -p heartbeat --test protocol_redis -- --ignored --nocapture`.
#[test]
#[ignore]
fn throughput() {
    fn measure(name: &str, client: &[u8], server: &[u8], chunk: usize) {
        let decode = || {
            let mut redis = Redis::new();
            for piece in client.chunks(chunk) {
                redis.on_client_bytes(piece).expect("parses");
            }
            let mut out = Output::new();
            for piece in server.chunks(chunk) {
                out.clear();
                redis.on_upstream_bytes(piece, &mut out).expect("parses");
                assert!(!out.is_changed());
            }
        };
        let mut sink = vec![0u8; chunk];
        let copy = || {
            for piece in client.chunks(chunk).chain(server.chunks(chunk)) {
                sink[..piece.len()].copy_from_slice(piece);
                std::hint::black_box(&sink);
            }
        };
        bench_ratio(name, "copy", client.len() + server.len(), decode, copy);
    }
    let n = 20_000;
    let gets = b"*2\r\n$3\r\nGET\r\n$10\r\nkey:000001\r\n".repeat(n);
    let small = bulk(&[b'v'; 32]).repeat(n);
    measure("GET key / 32-byte value, pipelined", &gets, &small, 16 * 1024);
    let oks = b"+OK\r\n".repeat(n * 4);
    let sets = multibulk(&[b"SET".to_vec(), b"key:000001".to_vec(), vec![b'v'; 16]]).repeat(n * 4);
    measure("SET key 16 bytes / +OK, pipelined", &sets, &oks, 16 * 1024);
    let big = bulk(&vec![b'x'; 1 << 20]).repeat(20);
    let big_gets = b"GET big\r\n".repeat(20);
    measure("GET / 1 MiB values", &big_gets, &big, 64 * 1024);
    let arrays = array(&vec![bulk(b"member:0001"); 100]).repeat(n / 10);
    let lrange = b"LRANGE l 0 99\r\n".repeat(n / 10);
    measure("LRANGE / 100-element arrays", &lrange, &arrays, 16 * 1024);
}
