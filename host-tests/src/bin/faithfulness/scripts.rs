//! The conversations played on both this host and real Envoy 1.40.

use std::time::Duration;

use heartbeat_host_tests::script::{Script, Step};

/// The filter's example timings (PING after 2 s of upstream silence, then every 1 s, closed after 3 missed) for
/// `protocol`; the scripts' waits are written against them.
fn config(protocol: &str) -> String {
    heartbeat::core::config::Timings::EXAMPLE.config_json(protocol).to_string()
}

fn send_client(b: &str) -> Step {
    Step::ClientSend(b.as_bytes().to_vec())
}

fn send_upstream(b: &str) -> Step {
    Step::UpstreamSend(b.as_bytes().to_vec())
}

fn wait(ms: u64) -> Step {
    Step::Wait(Duration::from_millis(ms))
}

pub fn all() -> Vec<Script> {
    let mut writing_client = vec![send_client("CONNECT {}\r\n"), wait(100), send_upstream("INFO {}\r\n"), wait(500)];
    // PUBs half a second away from the PINGs (due about 2.1 s, 3.1 s, 4.1 s) so the order is not a race.
    for _ in 0..5 {
        writing_client.extend([send_client("PUB a 2\r\nhi\r\n"), wait(1000)]);
    }
    writing_client.push(wait(500));
    vec![
        Script {
            name: "nats: writes from the client do not keep a silent upstream alive".into(),
            configuration: config("nats"),
            steps: writing_client,
        },
        Script {
            name: "nats: PING deferred while a PUB is half sent, sent once it is whole".into(),
            configuration: config("nats"),
            steps: vec![
                send_client("CONNECT {}\r\nPUB foo 10\r\n01234"),
                wait(100),
                send_upstream("INFO {}\r\n"),
                wait(2500),
                send_client("56789\r\n"),
                wait(800),
                send_upstream("PONG\r\n"),
                wait(300),
            ],
        },
        Script {
            name: "nats: silent upstream, 3 PINGs, closed".into(),
            configuration: config("nats"),
            steps: vec![send_client("CONNECT {}\r\n"), wait(100), send_upstream("INFO {}\r\n"), wait(6500)],
        },
        Script {
            name: "nats: PONG stripped, the client's PING answered".into(),
            configuration: config("nats"),
            steps: vec![
                send_client("CONNECT {}\r\n"),
                wait(100),
                send_upstream("INFO {}\r\n"),
                wait(2400),
                send_upstream("PONG\r\n"),
                wait(200),
                send_client("PING\r\n"),
                wait(200),
                send_upstream("PONG\r\nMSG a 1 2\r\nhi\r\n"),
                wait(500),
            ],
        },
        Script {
            name: "redis: no PING while a reply is owed, then one, stripped".into(),
            configuration: config("redis"),
            steps: vec![
                send_client("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"),
                wait(100),
                send_upstream("+OK\r\n"),
                wait(2600),
                send_upstream("$1\r\nv\r\n"),
                wait(2400),
                send_upstream("+PONG\r\n"),
                wait(300),
            ],
        },
        Script {
            name: "half-close both ways: FINs pass, the connection ends".into(),
            configuration: config("nats"),
            steps: vec![
                send_client("CONNECT {}\r\n"),
                wait(100),
                send_upstream("INFO {}\r\n"),
                Step::UpstreamFin,
                wait(300),
                send_client("PUB a 2\r\nhi\r\n"),
                Step::ClientFin,
                wait(500),
            ],
        },
    ]
}
