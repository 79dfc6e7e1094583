//! One simulated downstream connection with its upstream: Envoy's read buffer (which the filter
//! can reach while it pauses), the client bytes still in the kernel, tcp_proxy's upstream write
//! buffer, and what each side has received.

use crate::observe::{CallbackEvent, Chunk, Closed, ConnId, SimTime};

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Upstream {
    /// tcp_proxy has not been reached yet (the filter paused `on_new_connection`).
    NotStarted,
    Connecting,
    Connected {
        at: SimTime,
    },
    /// Reset, failed to connect, or closed after the downstream closed.
    Gone,
}

#[derive(Debug)]
pub(crate) struct Conn {
    pub id: ConnId,
    pub worker: usize,
    pub context_id: u32,
    pub opened_at: SimTime,
    pub source_address: String,
    pub upstream_address: String,
    pub connect_delay: SimTime,
    pub connect_fails: bool,

    /// `proxy_on_context_create` ran and the context was not deleted yet.
    pub context_alive: bool,

    // --- read path (client -> upstream) ---
    /// Client bytes Envoy has not read yet (reading is disabled while connecting or above the
    /// upstream high watermark).
    pub socket_pending: Vec<u8>,
    /// The client's FIN, not read yet.
    pub client_fin_pending: bool,
    /// Envoy's read buffer for this connection.
    pub read_buffer: Vec<u8>,
    /// Envoy read the client's FIN (`read_end_stream_`); passed to every later filter call.
    pub read_end_stream: bool,
    /// Envoy keeps `network_downstream_data_buffer_` only while the last `on_downstream_data`
    /// returned Pause: then the filter can reach `read_buffer` from any context.
    pub read_buffer_exposed: bool,
    pub above_high_watermark: bool,

    // --- upstream side ---
    pub upstream: Upstream,
    /// tcp_proxy's write buffer towards the upstream (holds bytes while the upstream is blocked).
    pub upstream_write_buffer: Vec<u8>,
    /// tcp_proxy forwarded the client's end of stream (later writes are dropped by Envoy).
    pub upstream_write_end_stream: bool,
    pub upstream_blocked: bool,
    pub upstream_received: Vec<Chunk>,
    pub upstream_saw_fin: Option<SimTime>,
    /// The upstream saw its connection closed by Envoy (after the downstream closed).
    pub upstream_saw_close: Option<SimTime>,
    /// The upstream sent FIN (`upstream_fin`).
    pub upstream_sent_fin: bool,

    // --- write path (upstream -> client) ---
    /// The buffer `on_upstream_data` works on; held here (not delivered) after the filter
    /// wrongly returned Pause, and re-delivered with the next upstream bytes.
    pub write_buffer: Vec<u8>,
    pub write_buffer_exposed: bool,
    /// The downstream's write side is shut (FIN sent to the client).
    pub client_saw_fin: Option<SimTime>,
    pub client_received: Vec<Chunk>,

    pub closed: Option<Closed>,
    pub callbacks: Vec<CallbackEvent>,
}

impl Conn {
    pub fn new(id: ConnId, worker: usize, context_id: u32, now: SimTime) -> Self {
        Self {
            id,
            worker,
            context_id,
            opened_at: now,
            source_address: String::new(),
            upstream_address: String::new(),
            connect_delay: SimTime::ZERO,
            connect_fails: false,
            context_alive: false,
            socket_pending: Vec::new(),
            client_fin_pending: false,
            read_buffer: Vec::new(),
            read_end_stream: false,
            read_buffer_exposed: false,
            above_high_watermark: false,
            upstream: Upstream::NotStarted,
            upstream_write_buffer: Vec::new(),
            upstream_write_end_stream: false,
            upstream_blocked: false,
            upstream_received: Vec::new(),
            upstream_saw_fin: None,
            upstream_saw_close: None,
            upstream_sent_fin: false,
            write_buffer: Vec::new(),
            write_buffer_exposed: false,
            client_saw_fin: None,
            client_received: Vec::new(),
            closed: None,
            callbacks: Vec::new(),
        }
    }

    pub fn is_open(&self) -> bool {
        self.closed.is_none()
    }

    /// Envoy reads from the client only when tcp_proxy has an upstream and is not above its
    /// high watermark.
    pub fn reading_enabled(&self) -> bool {
        self.is_open() && matches!(self.upstream, Upstream::Connected { .. }) && !self.above_high_watermark
    }
}
