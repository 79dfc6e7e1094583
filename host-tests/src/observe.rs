//! What a test can look at after driving the host: bytes each side received (with the simulated
//! time they arrived), how a connection ended, log lines, metrics, and host-call faults.

use std::time::Duration;

use crate::abi::{LogLevel, PeerType, Status};

/// Simulated time since the host started.
pub type SimTime = Duration;

/// Identifies one downstream connection; also what the filter reads as `connection.id`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnId(pub u64);

/// Bytes that reached one side, in one write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chunk {
    pub at: SimTime,
    pub bytes: Vec<u8>,
}

/// Why the downstream connection closed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CloseCause {
    /// The filter called `proxy_close_stream(Downstream)`.
    FilterClosedDownstream,
    /// The filter called `proxy_close_stream(Upstream)` (Envoy closes the same downstream connection).
    FilterClosedUpstream,
    /// The client reset or closed its socket.
    ClientReset,
    /// The upstream reset (or failed to connect); tcp_proxy closed the client's connection.
    UpstreamReset,
    /// Both sides sent FIN; Envoy closes once both directions are shut.
    BothHalfClosed,
}

/// How and when the downstream connection ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Closed {
    pub at: SimTime,
    pub cause: CloseCause,
    /// What the filter got in `proxy_on_downstream_connection_close`.
    pub peer: PeerType,
}

/// One `proxy_log` line (or a WASI stdout/stderr write).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogLine {
    pub at: SimTime,
    pub worker: usize,
    /// The context the filter was running in (effective context if one was set).
    pub context_id: u32,
    pub level: LogLevel,
    pub text: String,
}

/// A host call that did not do what the filter probably wanted, or Envoy behaviour a filter
/// should not rely on. Tests assert on these ("no faults") to catch misuse Envoy would hide.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fault {
    pub at: SimTime,
    pub worker: usize,
    pub context_id: u32,
    /// The host call or callback concerned, e.g. `proxy_set_buffer_bytes`.
    pub call: String,
    /// The status returned to the filter (Ok when the call "worked" but did nothing useful).
    pub status: Status,
    pub detail: String,
}

/// A callback the host made into the filter for one connection, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallbackEvent {
    pub at: SimTime,
    /// The export's name, e.g. `proxy_on_downstream_data`.
    pub callback: &'static str,
    /// Arguments after the context id, e.g. `[data_size, end_of_stream]`.
    pub args: Vec<i64>,
    /// What the callback returned (None for callbacks without a result).
    pub returned: Option<i64>,
}

/// A metric as Envoy's `/stats` would show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MetricValue {
    Counter(u64),
    Gauge(u64),
    /// Every recorded value, in order.
    Histogram(Vec<u64>),
}

impl MetricValue {
    /// Counter or gauge value; the number of samples for a histogram.
    pub fn value(&self) -> u64 {
        match self {
            Self::Counter(v) | Self::Gauge(v) => *v,
            Self::Histogram(samples) => samples.len() as u64,
        }
    }
}
