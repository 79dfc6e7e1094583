//! The plugin configuration: arbitrary bytes, and JSON assembled from field choices with a prediction.
//!
//! Any input gives `Ok` or an error with a non-empty reason, never a panic. An accepted configuration keeps the
//! documented limits (timers 10 ms to 24 h, `max_missed_pongs` 1 to 100, a tick between 10 ms and 1 s, a framed
//! PING and PONG that differ, are one frame each, and are recognised as such by the decoder).

use std::time::Duration;

use heartbeat::core::config::{Config, ConfigError, ProtocolSpec};
use heartbeat::core::protocol::framed::{Framed, FramedConfig};
use heartbeat::core::protocol::{Output, Protocol};

use crate::{hex, layouts, Bytes, UpstreamResult};

const MIN_TIMER: Duration = Duration::from_millis(10);
const MAX_TIMER: Duration = Duration::from_secs(24 * 3600);

/// The documented limits of an accepted configuration.
pub fn check_accepted(config: &Config) {
    for (name, timer) in [("read_idle_timeout", config.read_idle_timeout), ("ping_interval", config.ping_interval)]
        .into_iter()
        .chain(config.write_idle_keepalive.map(|k| ("write_idle_keepalive", k)))
    {
        assert!((MIN_TIMER..=MAX_TIMER).contains(&timer), "{name} {timer:?} accepted");
    }
    assert!((1..=100).contains(&config.max_missed_pongs), "max_missed_pongs {} accepted", config.max_missed_pongs);
    let tick = config.tick_period();
    assert!((Duration::from_millis(10)..=Duration::from_secs(1)).contains(&tick), "tick {tick:?}");
    assert!(config.detection_bound() >= config.read_idle_timeout);
    if let ProtocolSpec::Framed(spec) = &config.protocol {
        let (ping, pong) = (spec.ping().to_vec(), spec.pong().to_vec());
        assert!(!ping.is_empty() && ping.len() <= 64 && !pong.is_empty() && pong.len() <= 64);
        assert_ne!(ping, pong);
        // The PING is one frame: after the client sent one, a PING may follow. It takes the first place in the
        // queue (the client's own), the filter's the second: the first PONG goes to the client, the second
        // is stripped.
        let mut framed = Framed::new(spec.clone());
        assert!(framed.on_client_bytes(&ping).is_ok(), "the configured PING does not parse");
        assert_eq!(framed.can_inject(), Ok(()), "not at a boundary after the configured PING");
        framed.on_ping_injected();
        let mut out = Output::new();
        for expect_stripped in [false, true] {
            out.clear();
            let (count, error) = framed.on_upstream_bytes(&pong, &mut out).into_parts();
            assert!(error.is_none(), "the configured PONG does not parse");
            assert_eq!(out.accounted(), pong.len());
            assert_eq!(count.unwrap_or_else(|| out.pongs()), u32::from(expect_stripped));
            let seen = out.apply(&pong).unwrap_or_else(|| pong.clone());
            assert_eq!(seen.is_empty(), expect_stripped, "the PONG's owner");
        }
    }
}

fn check_refused(error: &ConfigError) {
    assert!(!error.reason.is_empty(), "an error without a reason: {error:?}");
    assert!(!error.to_string().is_empty());
}

/// Arbitrary bytes as the configuration.
pub fn raw(data: &[u8]) {
    match Config::from_json(data) {
        Ok(config) => check_accepted(&config),
        Err(error) => check_refused(&error),
    }
}

/// The fields the prediction knows about.
const KNOWN_FIELDS: [&str; 7] = [
    "protocol",
    "read_idle_timeout",
    "ping_interval",
    "max_missed_pongs",
    "write_idle_keepalive",
    "framed",
    "ping_intervall",
];

/// What the structured input should give.
#[derive(Debug)]
struct Prediction {
    /// Fields whose value is wrong (a refusal must name one of them when there is exactly one).
    bad: Vec<&'static str>,
    /// Something whose outcome is not predicted (a field the filter may have gained, `null`).
    unknown: bool,
    read_idle_ms: Option<u64>,
    interval_ms: Option<u64>,
    keepalive_ms: Option<u64>,
    missed: Option<u32>,
}

/// A duration's text, and its milliseconds when it is well formed.
fn duration(input: &mut Bytes) -> (String, Option<u64>) {
    let n = u64::from(input.u16());
    match input.pick(12) {
        0 => (format!("{n}ms"), Some(n)),
        1 => (format!("{n}s"), Some(n * 1000)),
        2 => (format!("{}m", n % 2000), Some(n % 2000 * 60_000)),
        3 => (format!("{}h", n % 50), Some(n % 50 * 3_600_000)),
        4 => (format!("{}.{}s", n % 100, n % 10), Some(n % 100 * 1000 + n % 10 * 100)),
        5 => (format!(".{:03}s", n % 1000), Some(n % 1000)),
        6 => (format!(" {}s ", n % 60), Some(n % 60 * 1000)),
        7 => (format!("{}.25m", n % 100), Some(n % 100 * 60_000 + 15_000)),
        8 => (format!("{n}"), None),
        9 => (
            ["5d", "-1s", "1e3s", "0.5ms", "", "1.0005s", "99999999999999999999s", "1,5s", "s", "1.5.2s", "10 s"]
                [input.pick(11)]
            .to_string(),
            None,
        ),
        10 => (format!("{n}\u{b5}s"), None),
        _ => (format!("{}.{:03}s", n % 30, n % 1000), Some(n % 30 * 1000 + n % 1000)),
    }
}

/// A duration field: absent, a string, a number, or `null`.
fn duration_field(input: &mut Bytes, name: &'static str, fields: &mut Vec<String>, p: &mut Prediction) -> Option<u64> {
    match input.pick(8) {
        0..=2 => None,
        3..=6 => {
            let (text, ms) = duration(input);
            fields.push(format!("\"{name}\": \"{text}\""));
            match ms {
                Some(ms) if (10..=86_400_000).contains(&ms) => Some(ms),
                _ => {
                    p.bad.push(name);
                    None
                }
            }
        }
        _ => {
            if input.u8() & 1 == 0 {
                fields.push(format!("\"{name}\": {}", input.u16()));
                p.bad.push(name);
            } else {
                fields.push(format!("\"{name}\": null"));
                p.unknown = true;
            }
            None
        }
    }
}

fn framed_json(config: &FramedConfig) -> String {
    let endian = match config.length_endian {
        heartbeat::core::protocol::framed::Endian::Big => "big",
        heartbeat::core::protocol::framed::Endian::Little => "little",
    };
    let shorts: Vec<String> = config.short_frames.iter().map(|s| format!("\"{s}\"")).collect();
    format!(
        r#"{{"header_size": {}, "length_offset": {}, "length_size": {}, "length_endian": "{endian}", "length_adjust": {}, "max_frame": {}, "short_frames": [{}], "ping": "{}", "pong": "{}"}}"#,
        config.header_size,
        config.length_offset,
        config.length_size,
        config.length_adjust,
        config.max_frame,
        shorts.join(", "),
        config.ping,
        config.pong
    )
}

/// JSON assembled from field choices, with a prediction of the outcome.
pub fn structured(data: &[u8]) {
    let mut input = Bytes::new(data);
    let mut p = Prediction {
        bad: Vec::new(),
        unknown: false,
        read_idle_ms: None,
        interval_ms: None,
        keepalive_ms: None,
        missed: None,
    };
    let mut fields = Vec::new();
    let protocol = input.pick(8);
    match protocol {
        0 | 5 => fields.push(r#""protocol": "nats""#.to_string()),
        1 | 6 => fields.push(r#""protocol": "redis""#.to_string()),
        2 | 7 => fields.push(r#""protocol": "framed""#.to_string()),
        3 => {
            fields.push([r#""protocol": "mqtt""#, r#""protocol": "NATS""#, r#""protocol": 5"#][input.pick(3)].into());
            p.bad.push("protocol");
        }
        _ => p.bad.push("protocol"), // missing
    }
    let framed_protocol = matches!(protocol, 2 | 7);
    p.read_idle_ms = duration_field(&mut input, "read_idle_timeout", &mut fields, &mut p);
    p.interval_ms = duration_field(&mut input, "ping_interval", &mut fields, &mut p);
    p.keepalive_ms = duration_field(&mut input, "write_idle_keepalive", &mut fields, &mut p);
    match input.pick(10) {
        0..=3 => {}
        4..=6 => {
            let n = u32::from(input.u8());
            fields.push(format!("\"max_missed_pongs\": {n}"));
            if (1..=100).contains(&n) {
                p.missed = Some(n);
            } else {
                p.bad.push("max_missed_pongs");
            }
        }
        _ => {
            fields.push(format!(
                "\"max_missed_pongs\": {}",
                ["-1", "1.5", "\"3\"", "4294967296", "[]", "true"][input.pick(6)]
            ));
            p.bad.push("max_missed_pongs");
        }
    }
    // The framed section: absent, a fixed layout, one derived from the input (built here to know whether it is
    // valid), or something that is not a layout.
    let framed_choice = input.pick(6);
    let framed_present = framed_choice != 0;
    match framed_choice {
        0 => {}
        1 | 2 => fields.push(format!("\"framed\": {}", layouts::FIXED[input.pick(3)])),
        3 | 4 => {
            let config = layouts::derived(&mut input);
            let mut config = config;
            if input.u8() & 1 == 1 {
                // Now and then a broken PING or PONG, or short frames with the same first byte.
                match input.pick(3) {
                    0 => config.ping = hex(input.take(3)),
                    1 => config.pong = config.ping.clone(),
                    _ => config.short_frames = vec!["f0".into(), "f0aa".into()],
                }
            }
            if framed_protocol && config.build().is_err() {
                p.bad.push("framed");
            }
            fields.push(format!("\"framed\": {}", framed_json(&config)));
        }
        _ => {
            fields.push(
                ["\"framed\": {}", "\"framed\": \"x\"", "\"framed\": {\"header_size\": 4}"][input.pick(3)].into(),
            );
            p.bad.push("framed");
        }
    }
    if framed_protocol != framed_present && !p.bad.contains(&"protocol") {
        p.bad.push("framed");
    }
    match input.pick(6) {
        0 => {
            // A field the filter may have gained since (a colleague's `reply_timeout`): not predicted.
            let (text, _) = duration(&mut input);
            fields.push(format!("\"reply_timeout\": \"{text}\""));
            p.unknown = true;
        }
        1 => {
            fields.push(r#""ping_intervall": "1s""#.into());
            p.bad.push("ping_intervall");
        }
        _ => {}
    }
    let rotate = input.pick(fields.len().max(1));
    fields.rotate_left(rotate);
    let json = format!("{{{}}}", fields.join(", "));
    let result = Config::from_json(json.as_bytes());
    match &result {
        Ok(config) => check_accepted(config),
        Err(error) => check_refused(error),
    }
    if p.unknown {
        return;
    }
    if let Err(error) = &result {
        if !KNOWN_FIELDS.iter().any(|f| error.field.starts_with(f)) && !error.field.is_empty() && error.field != "." {
            // Refused for a field this harness does not know (one added since, such as `reply_timeout`, whose
            // default may conflict with the timers chosen here): not predicted.
            return;
        }
    }
    match result {
        Ok(config) => {
            assert!(p.bad.is_empty(), "{json} was accepted, expected a refusal for {:?}", p.bad);
            let ms = |d: Duration| d.as_millis() as u64;
            assert_eq!(ms(config.read_idle_timeout), p.read_idle_ms.unwrap_or(10_000), "{json}");
            assert_eq!(ms(config.ping_interval), p.interval_ms.unwrap_or(2_000), "{json}");
            assert_eq!(config.write_idle_keepalive.map(ms), p.keepalive_ms, "{json}");
            assert_eq!(config.max_missed_pongs, p.missed.unwrap_or(3), "{json}");
        }
        Err(error) => {
            assert!(!p.bad.is_empty(), "{json} was refused: {error}");
            if let [only] = p.bad.as_slice() {
                if *only != "protocol" || fields.iter().any(|f| f.starts_with("\"protocol\"")) {
                    assert!(error.field.starts_with(only), "{json}: refused for {error}, expected the field {only}");
                }
            }
        }
    }
}
