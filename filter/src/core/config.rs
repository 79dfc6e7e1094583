//! The plugin configuration: parsed and checked once per worker by the root context, shared by every
//! connection. A bad configuration is refused with a message that names the field and the reason.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use super::duration;
use super::protocol::framed::FramedConfig;
pub use super::protocol::registry::ProtocolSpec;
use super::protocol::registry::{ProtocolName, Sections};

/// Defaults, documented in the README: a dead upstream is closed within 10 s + 3 x 2 s = 16 s.
pub const DEFAULT_READ_IDLE_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_PING_INTERVAL: Duration = Duration::from_secs(2);
pub const DEFAULT_MAX_MISSED_PONGS: u32 = 3;
/// How long a server that owes the client a reply may stay silent. Long enough for slow commands (most
/// client libraries give up on a command sooner: 2 to 60 s), short enough that a server hung under a request
/// is not left for the kernel's 15 minutes.
pub const DEFAULT_REPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// The three timings that set how fast a dead upstream is closed: `read_idle_timeout + max_missed_pongs x
/// ping_interval` (+ one tick).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timings {
    pub read_idle_timeout: Duration,
    pub ping_interval: Duration,
    pub max_missed_pongs: u32,
}

impl Timings {
    /// A configuration's timings when it sets none: closed within 10 s + 3 x 2 s = 16 s.
    pub const DEFAULT: Timings = Timings {
        read_idle_timeout: DEFAULT_READ_IDLE_TIMEOUT,
        ping_interval: DEFAULT_PING_INTERVAL,
        max_missed_pongs: DEFAULT_MAX_MISSED_PONGS,
    };

    /// The example timings, short enough to watch the filter work: the README's example bound, `make demo`,
    /// and the configuration every test suite of this repository uses unless a case is about another one.
    /// PING after 2 s of upstream silence, then every 1 s, closed after 3 missed: within 2 s + 3 x 1 s = 5 s.
    pub const EXAMPLE: Timings = Timings {
        read_idle_timeout: Duration::from_secs(2),
        ping_interval: Duration::from_secs(1),
        max_missed_pongs: 3,
    };

    /// The longest a silently dead upstream that owes the client nothing stays open, before the tick.
    pub fn detection_bound(&self) -> Duration {
        self.read_idle_timeout.saturating_add(self.ping_interval.saturating_mul(self.max_missed_pongs))
    }

    /// A plugin configuration with these timings for `protocol` (`"nats"`, `"redis"`, `"framed"`), e.g.
    /// `{"protocol": "nats", "read_idle_timeout": "2s", "ping_interval": "1s", "max_missed_pongs": 3}`.
    /// Insert further fields (`write_idle_keepalive`, `reply_timeout`, the `framed` section) as needed.
    pub fn config_json(&self, protocol: &str) -> serde_json::Value {
        let mut fields = serde_json::Map::new();
        fields.insert("protocol".into(), protocol.into());
        fields.insert("read_idle_timeout".into(), duration::format(self.read_idle_timeout).into());
        fields.insert("ping_interval".into(), duration::format(self.ping_interval).into());
        fields.insert("max_missed_pongs".into(), self.max_missed_pongs.into());
        serde_json::Value::Object(fields)
    }
}

/// Timers finer than this cost ticks for no benefit; coarser than a day are a typo.
const MIN_TIMER: Duration = Duration::from_millis(10);
const MAX_TIMER: Duration = Duration::from_secs(24 * 3600);
const MAX_MISSED_PONGS: u32 = 100;

#[derive(Clone, Debug)]
pub struct Config {
    pub protocol: ProtocolSpec,
    /// Silence from the upstream after which the first PING goes out.
    pub read_idle_timeout: Duration,
    /// Time between PINGs while none is answered; each one unanswered for this long is a miss.
    pub ping_interval: Duration,
    /// Misses after which the connection is closed.
    pub max_missed_pongs: u32,
    /// Quiet towards the upstream after which a keepalive PING is sent (off when `None`).
    pub write_idle_keepalive: Option<Duration>,
    /// Silence allowed to an upstream that is entitled to take its time: it owes the client a reply (a slow
    /// query), or its client may be holding it back by not reading. At least `read_idle_timeout`.
    pub reply_timeout: Duration,
}

/// A configuration that was refused: which field, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub field: String,
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() || self.field == "." {
            write!(f, "{}", self.reason)
        } else {
            write!(f, "{}: {}", self.field, self.reason)
        }
    }
}

impl std::error::Error for ConfigError {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    protocol: ProtocolName,
    #[serde(default, deserialize_with = "some_duration")]
    read_idle_timeout: Option<Duration>,
    #[serde(default, deserialize_with = "some_duration")]
    ping_interval: Option<Duration>,
    #[serde(default)]
    max_missed_pongs: Option<u32>,
    #[serde(default, deserialize_with = "some_duration")]
    write_idle_keepalive: Option<Duration>,
    #[serde(default, deserialize_with = "some_duration")]
    reply_timeout: Option<Duration>,
    #[serde(default)]
    framed: Option<FramedConfig>,
}

fn some_duration<'de, D: Deserializer<'de>>(de: D) -> Result<Option<Duration>, D::Error> {
    let text = String::deserialize(de)?;
    duration::parse(&text).map(Some).map_err(serde::de::Error::custom)
}

fn field_error(field: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError { field: field.to_string(), reason: reason.into() }
}

fn check_timer(field: &str, value: Duration) -> Result<Duration, ConfigError> {
    if value < MIN_TIMER {
        return Err(field_error(field, format!("{value:?} is below the minimum of {MIN_TIMER:?}")));
    }
    if value > MAX_TIMER {
        return Err(field_error(field, format!("{value:?} is above the maximum of {MAX_TIMER:?}")));
    }
    Ok(value)
}

impl Config {
    /// Parses the plugin configuration (the JSON in Envoy's `configuration` StringValue).
    pub fn from_json(bytes: &[u8]) -> Result<Config, ConfigError> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(field_error("protocol", "missing: the configuration is empty (e.g. {\"protocol\": \"nats\"})"));
        }
        let de = &mut serde_json::Deserializer::from_slice(bytes);
        let raw: Raw = serde_path_to_error::deserialize(de).map_err(|e| {
            let field = e.path().to_string();
            ConfigError { field, reason: e.into_inner().to_string() }
        })?;

        let read_idle_timeout =
            check_timer("read_idle_timeout", raw.read_idle_timeout.unwrap_or(DEFAULT_READ_IDLE_TIMEOUT))?;
        let ping_interval = check_timer("ping_interval", raw.ping_interval.unwrap_or(DEFAULT_PING_INTERVAL))?;
        let write_idle_keepalive =
            raw.write_idle_keepalive.map(|d| check_timer("write_idle_keepalive", d)).transpose()?;
        let reply_timeout = check_timer("reply_timeout", raw.reply_timeout.unwrap_or(DEFAULT_REPLY_TIMEOUT))?;
        if reply_timeout < read_idle_timeout {
            // The timer heap is re-armed lazily, only ever later: a reply deadline before the read-idle one
            // could be missed. And a reply the server may take less time for than an idle gap makes no sense.
            return Err(field_error(
                "reply_timeout",
                format!("{reply_timeout:?} is shorter than read_idle_timeout ({read_idle_timeout:?})"),
            ));
        }
        let max_missed_pongs = raw.max_missed_pongs.unwrap_or(DEFAULT_MAX_MISSED_PONGS);
        if !(1..=MAX_MISSED_PONGS).contains(&max_missed_pongs) {
            return Err(field_error(
                "max_missed_pongs",
                format!("{max_missed_pongs} is outside 1..={MAX_MISSED_PONGS}"),
            ));
        }

        let sections = Sections { framed: raw.framed };
        let protocol = ProtocolSpec::from_config(raw.protocol, sections)
            .map_err(|refused| field_error(&refused.field, refused.reason))?;

        Ok(Config { protocol, read_idle_timeout, ping_interval, max_missed_pongs, write_idle_keepalive, reply_timeout })
    }

    /// The longest a silently dead upstream stays open while it owes nothing to the client: read idle, then
    /// every PING unanswered. The filter adds at most one tick to it. While a reply is owed (or the client
    /// may be holding the upstream back), the bound is `reply_timeout` after the upstream's last byte.
    pub fn detection_bound(&self) -> Duration {
        self.timings().detection_bound()
    }

    /// The timings this configuration closes a dead upstream with.
    pub fn timings(&self) -> Timings {
        Timings {
            read_idle_timeout: self.read_idle_timeout,
            ping_interval: self.ping_interval,
            max_missed_pongs: self.max_missed_pongs,
        }
    }

    /// The root tick period: a tenth of the shortest timer, between 10 ms and 1 s, so that deadlines are
    /// met within a small fraction of their length; ticks with nothing due cost almost nothing.
    pub fn tick_period(&self) -> Duration {
        let shortest = [Some(self.read_idle_timeout), Some(self.ping_interval), self.write_idle_keepalive]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(DEFAULT_PING_INTERVAL);
        (shortest / 10).clamp(Duration::from_millis(10), Duration::from_secs(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(json: &str) -> ConfigError {
        match Config::from_json(json.as_bytes()) {
            Ok(_) => panic!("{json} was accepted"),
            Err(e) => e,
        }
    }

    #[test]
    fn defaults_fill_everything_but_the_protocol() {
        let c = Config::from_json(br#"{"protocol": "redis"}"#).unwrap();
        assert!(matches!(c.protocol, ProtocolSpec::Redis));
        assert_eq!(c.read_idle_timeout, DEFAULT_READ_IDLE_TIMEOUT);
        assert_eq!(c.ping_interval, DEFAULT_PING_INTERVAL);
        assert_eq!(c.max_missed_pongs, DEFAULT_MAX_MISSED_PONGS);
        assert_eq!(c.write_idle_keepalive, None);
        assert_eq!(c.reply_timeout, DEFAULT_REPLY_TIMEOUT);
        assert_eq!(c.detection_bound(), Duration::from_secs(16));
        assert_eq!(c.tick_period(), Duration::from_millis(200));
    }

    #[test]
    fn the_timings_as_json_parse_back_to_themselves() {
        for (timings, bound) in [(Timings::EXAMPLE, 5), (Timings::DEFAULT, 16)] {
            let json = timings.config_json("nats").to_string();
            let c = Config::from_json(json.as_bytes()).unwrap();
            assert_eq!(c.timings(), timings, "{json}");
            assert_eq!(c.detection_bound(), Duration::from_secs(bound));
        }
        let c = Config::from_json(br#"{"protocol": "redis"}"#).unwrap();
        assert_eq!(c.timings(), Timings::DEFAULT);
        let json = Timings::EXAMPLE.config_json("redis").to_string();
        assert!(json.contains(r#""read_idle_timeout":"2s""#) && json.contains(r#""ping_interval":"1s""#), "{json}");
    }

    #[test]
    fn the_documented_example_parses() {
        let c = Config::from_json(
            br#"{"protocol": "nats", "read_idle_timeout": "10s", "ping_interval": "1.5s", "max_missed_pongs": 3,
                 "write_idle_keepalive": "500ms"}"#,
        )
        .unwrap();
        assert!(matches!(c.protocol, ProtocolSpec::Nats));
        assert_eq!(c.ping_interval, Duration::from_millis(1500));
        assert_eq!(c.write_idle_keepalive, Some(Duration::from_millis(500)));
        assert_eq!(c.tick_period(), Duration::from_millis(50));
    }

    #[test]
    fn both_documented_framed_protocols_parse() {
        let netty_chat = r#"{"protocol": "framed", "framed": {"header_size": 5, "length_offset": 1, "length_size": 4,
            "short_frames": ["01", "02"], "ping": "01", "pong": "02"}}"#;
        let u32_prefixed = r#"{"protocol": "framed", "framed": {"header_size": 4, "length_size": 4,
            "ping": "0000000450494e47", "pong": "00000004504f4e47"}}"#;
        for json in [netty_chat, u32_prefixed] {
            let c = Config::from_json(json.as_bytes()).unwrap();
            assert_eq!(c.protocol.name(), "framed");
        }
    }

    #[test]
    fn errors_name_the_field() {
        let unknown = err(r#"{"protocol": "nats", "ping_intervall": "1s"}"#);
        assert_eq!(unknown.field, "ping_intervall");
        assert!(unknown.reason.starts_with("unknown field"), "{unknown}");
        assert_eq!(err(r#"{"protocol": "mqtt"}"#).field, "protocol");
        assert_eq!(err(r#"{"protocol": "nats", "ping_interval": 5}"#).field, "ping_interval");
        assert_eq!(err(r#"{"protocol": "nats", "ping_interval": "5"}"#).field, "ping_interval");
        assert_eq!(err(r#"{"protocol": "nats", "read_idle_timeout": "0s"}"#).field, "read_idle_timeout");
        assert_eq!(err(r#"{"protocol": "nats", "read_idle_timeout": "48h"}"#).field, "read_idle_timeout");
        assert_eq!(err(r#"{"protocol": "nats", "max_missed_pongs": 0}"#).field, "max_missed_pongs");
        assert_eq!(err(r#"{"protocol": "nats", "max_missed_pongs": -1}"#).field, "max_missed_pongs");
        assert_eq!(err(r#"{"protocol": "nats", "max_missed_pongs": 1000}"#).field, "max_missed_pongs");
        assert_eq!(err(r#"{"protocol": "nats", "write_idle_keepalive": "1ms"}"#).field, "write_idle_keepalive");
        assert_eq!(err(r#"{"protocol": "nats", "reply_timeout": "1s"}"#).field, "reply_timeout");
        assert_eq!(err(r#"{"protocol": "nats", "reply_timeout": "25h"}"#).field, "reply_timeout");
        assert_eq!(err(r#"{"protocol": "framed"}"#).field, "framed");
        let framed =
            r#"{"protocol": "framed", "framed": {"header_size": 4, "length_size": 3, "ping": "00", "pong": "01"}}"#;
        assert_eq!(err(framed).field, "framed.length_size");
        assert_eq!(err(r#"{"protocol": "framed", "framed": {"header_size": 4}}"#).field, "framed");
        assert_eq!(err(r#"{"protocol": "redis", "framed": {}}"#).field, "framed");
        assert!(err(r#"{"read_idle_timeout": "1s"}"#).reason.starts_with("missing field `protocol`"));
        assert_eq!(err("").field, "protocol");
        assert!(!err("{").reason.is_empty());
        assert!(!err("[1,2]").reason.is_empty());
        assert!(!err("\u{0}\u{1}").reason.is_empty());
    }
}
