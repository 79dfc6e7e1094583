//! One connection's liveness state machine: bytes and time in, decisions out.
//!
//! The first rule is never to close a healthy connection, so the upstream is judged only on evidence about
//! the upstream:
//! - Any byte from the upstream proves life: it resets the read-idle clock and the miss count. Bytes towards
//!   the upstream never do (a write to a dead peer "succeeds" for 15 minutes).
//! - After `read_idle_timeout` of upstream silence, and then every `ping_interval`, the connection sends a
//!   PING if the client's stream is at a safe point. A PING that goes unanswered for an interval is a miss;
//!   so is every interval at whose start one of the filter's PINGs (probe or keepalive) is still unanswered. After
//!   `max_missed_pongs` misses, each given a full `ping_interval`, the upstream is dead.
//! - What the client does is no evidence against the upstream. A probe deferred because the client is in
//!   the middle of a frame (a slow upload, a value streamed from a slow source, a pause) counts nothing: the
//!   filter tries again an interval later. The bound for a client stuck mid-frame behind a dead upstream
//!   (its window full, so Envoy stops reading from the client) comes from the kernel: `TCP_USER_TIMEOUT` on
//!   Envoy's upstream sockets, recommended in the example configuration.
//! - An upstream entitled to take its time is judged on `reply_timeout` instead: after the last upstream byte
//!   (or the request, if later), it may stay silent that long. It is entitled when it owes the client a
//!   reply (a slow query, a Redis command), and when its client may be holding it back: once Envoy holds
//!   more bytes for a client than the client reads, tcp_proxy stops reading from the upstream, and the answer
//!   to the filter's PING waits behind them. The filter cannot see Envoy's buffers, so a connection whose
//!   upstream delivered [`HOLD_BACK_BYTES`] within one `reply_timeout`, ending less than `reply_timeout`
//!   before it went silent, counts as possibly held back.
//! - A blocking command (Redis `BLPOP list 5`) entitles the upstream to silence until its timeout runs out:
//!   read-idle counts from the later of the last upstream byte and that moment (timeouts of pipelined blocking
//!   commands add up; timeout 0 suspends probing until the reply starts). The allowance only postpones the
//!   first probe: once probing started, a new command never stops it.
//! - After `write_idle_keepalive` of quiet towards the upstream, a keepalive PING goes out (deferred to the
//!   next interval when unsafe, never counted as a miss: the read side judges liveness).
//!
//! Monitoring starts with the client's first bytes: only then does Envoy give the filter a buffer it can
//! write into later (see the adapter), and only then is the upstream connected (tcp_proxy reads nothing
//! from the client before).

use std::time::Duration;

use super::config::Config;
use super::protocol::{Defer, Output, Protocol, ProtocolError, Silence};
use super::time::Instant;

/// Why a PING goes out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PingKind {
    /// Read-idle probe: the upstream has been silent.
    Probe,
    /// Write-idle keepalive: nothing went to the upstream for a while.
    Keepalive,
}

/// Upstream bytes within `reply_timeout` that make a silence possibly Envoy's back-pressure rather than the
/// upstream's: tcp_proxy stops reading from the upstream only once more than the downstream connection's
/// buffer limit (1 MiB by default) waits for the client, on top of the kernel's socket buffers; a quarter of
/// a mebibyte is below that for every buffer limit worth having.
pub const HOLD_BACK_BYTES: u32 = 256 * 1024;

/// What the evidence against the upstream was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Evidence {
    /// The filter's PINGs went unanswered for `max_missed_pongs` intervals.
    PingsUnanswered,
    /// The upstream owed a reply (or may have been held back by its client) and stayed silent for
    /// `reply_timeout`.
    ReplyOverdue,
}

/// The verdict on a connection whose upstream stopped answering.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dead {
    pub evidence: Evidence,
    /// Time since the last byte from the upstream.
    pub silent_for: Duration,
    /// Probe intervals that passed with one of the filter's PINGs unanswered.
    pub missed: u32,
    /// The filter's PINGs on this connection still unanswered.
    pub pings_unanswered: u32,
}

impl Dead {
    /// Why, for the close log line: what was silent for how long, and what that was measured against.
    pub fn describe(&self, config: &Config) -> String {
        match self.evidence {
            Evidence::PingsUnanswered => format!(
                "silent for {:.1}s, {} PINGs unanswered, {} of {} intervals missed",
                self.silent_for.as_secs_f64(),
                self.pings_unanswered,
                self.missed,
                config.max_missed_pongs
            ),
            Evidence::ReplyOverdue => format!(
                "silent for {:.1}s while a reply was owed (reply_timeout {:.1}s), {} PINGs unanswered",
                self.silent_for.as_secs_f64(),
                config.reply_timeout.as_secs_f64(),
                self.pings_unanswered
            ),
        }
    }
}

/// What a due timer asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timeout {
    /// Nothing is due (the true deadline moved on).
    Nothing,
    /// Append `Connection::ping()` to the client's stream, then report with `ping_written`/`ping_failed`.
    Inject(PingKind),
    /// A PING was due but the stream is not at a safe point.
    Deferred(PingKind, Defer),
    /// Close the connection.
    Dead(Dead),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// The client has sent nothing yet: nothing to write into, nothing to watch.
    Waiting,
    /// Watching: timers run, PINGs go out, PONGs are stripped.
    Monitoring,
    /// A protocol error was seen: both directions forwarded untouched from now on.
    PassThrough,
    /// End of stream from either side, or closed as dead: no more PINGs.
    Ended,
}

/// What the adapter does with a client chunk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientData {
    /// Keep the read buffer (pause, then continue at once) so that a PING can be written into it later.
    pub keep_buffer: bool,
    /// The chunk broke the protocol (first time only).
    pub error: Option<ProtocolError>,
}

/// What the upstream chunk did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UpstreamData {
    /// Replies to the filter's PINGs completed (and stripped) in this chunk.
    pub pongs: u32,
    /// The chunk broke the protocol (first time only).
    pub error: Option<ProtocolError>,
    /// The read deadline may have moved earlier: the timer must be re-armed.
    pub rearm: bool,
}

pub struct Connection {
    protocol: Box<dyn Protocol>,
    phase: Phase,
    last_read: Instant,
    /// The upstream may stay silent until then (a blocking command's timeout); in the past when it may not.
    quiet_until: Instant,
    last_write: Instant,
    /// When the last counted probe interval started (a PING sent, or an interval with one still unanswered).
    last_probe: Instant,
    /// A probe that was deferred without evidence is tried again no sooner than this.
    probe_retry: Instant,
    /// Since when the upstream owes the client a reply, if it does.
    owed_since: Option<Instant>,
    /// Upstream bytes counted in blocks of [`HOLD_BACK_BYTES`]: those of the current block and when it began,
    /// and the last full block (when it began, when it ended).
    flow_bytes: u32,
    flow_from: Instant,
    heavy: Option<(Instant, Instant)>,
    /// A deferred keepalive is retried no sooner than this.
    keepalive_retry: Instant,
    misses: u32,
    pings_owed: u32,
    /// The deadline the worker's timer heap holds for this connection, if any.
    pub(crate) scheduled: Option<Instant>,
}

impl Connection {
    pub fn new(protocol: Box<dyn Protocol>, now: Instant) -> Self {
        Connection {
            protocol,
            phase: Phase::Waiting,
            last_read: now,
            quiet_until: Instant::default(),
            last_write: now,
            last_probe: now,
            probe_retry: Instant::default(),
            owed_since: None,
            flow_bytes: 0,
            flow_from: now,
            heavy: None,
            keepalive_retry: now,
            misses: 0,
            pings_owed: 0,
            scheduled: None,
        }
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The filter's PINGs sent on this connection and not answered yet.
    pub fn pings_owed(&self) -> u32 {
        self.pings_owed
    }

    /// The bytes of a PING, for `Timeout::Inject`.
    pub fn ping(&self) -> &[u8] {
        self.protocol.ping()
    }

    /// Bytes from the client towards the upstream.
    pub fn on_client_data(&mut self, data: &[u8], end_of_stream: bool, now: Instant) -> ClientData {
        let mut error = None;
        if matches!(self.phase, Phase::Waiting | Phase::Monitoring) && !data.is_empty() {
            if self.phase == Phase::Waiting {
                // Monitoring starts now: the upstream is connected and the filter has a buffer to write into.
                self.phase = Phase::Monitoring;
                self.last_read = now;
                self.last_probe = now;
            }
            self.last_write = now;
            match self.protocol.on_client_bytes(data) {
                Ok(()) => {
                    self.follow_reply_owed(now);
                    if let Some(silence) = self.protocol.take_allowed_silence() {
                        // Lazily re-armed: this only moves the read deadline later.
                        let from = self.quiet_until.max(now);
                        self.quiet_until = match silence {
                            Silence::For(d) => from.after(d),
                            Silence::Unbounded => Instant::NEVER,
                        };
                    }
                }
                Err(e) => {
                    self.phase = Phase::PassThrough;
                    error = Some(e);
                }
            }
        }
        if end_of_stream && self.phase != Phase::PassThrough {
            self.phase = Phase::Ended;
        }
        ClientData { keep_buffer: self.phase == Phase::Monitoring, error }
    }

    /// Bytes from the upstream towards the client. `out` receives the edits to apply to the chunk.
    pub fn on_upstream_data(
        &mut self,
        data: &[u8],
        end_of_stream: bool,
        now: Instant,
        out: &mut Output,
    ) -> UpstreamData {
        let mut result = UpstreamData::default();
        if !data.is_empty() {
            self.last_read = now;
            let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
            if self.flow_bytes == 0 {
                self.flow_from = now;
            }
            self.flow_bytes = self.flow_bytes.saturating_add(len);
            if self.flow_bytes >= HOLD_BACK_BYTES {
                self.flow_bytes = 0;
                self.heavy = Some((self.flow_from, now));
            }
            // With misses counted, the deadline was a probe interval; it now goes back to read-idle,
            // which can be sooner.
            result.rearm = self.misses > 0;
            self.misses = 0;
        }
        if matches!(self.phase, Phase::PassThrough) {
            // Bytes held back before a client-side error come first, then everything as it is.
            self.protocol.release_held(out);
            out.forward(data.len());
            return result;
        }
        let read = self.protocol.on_upstream_bytes(data, out);
        // Counted from `out` whatever the result: PONGs completed before an error in the same chunk were
        // stripped, so they were answered.
        result.pongs = out.pongs().min(self.pings_owed);
        self.pings_owed -= result.pongs;
        if let Err(e) = read {
            // Give back anything the decoder held (it came earlier in the stream), then forward what it did
            // not account for: from now on the client gets the upstream's bytes untouched.
            self.protocol.release_held(out);
            out.forward(data.len().saturating_sub(out.accounted()));
            self.phase = Phase::PassThrough;
            result.error = Some(e);
            return result;
        }
        self.follow_reply_owed(now);
        if self.quiet_until > now && !self.protocol.silence_owed() {
            // The blocking command was answered before its timeout: read-idle counts from now, which is
            // sooner than the deadline the timer holds.
            self.quiet_until = Instant::default();
            result.rearm = true;
        }
        if end_of_stream {
            self.protocol.release_held(out);
            self.phase = Phase::Ended;
        }
        result
    }

    /// Notes when the upstream started to owe the client the next reply (a request sent, or the filter's
    /// PONG ahead of it arrived), and forgets it once answered.
    fn follow_reply_owed(&mut self, now: Instant) {
        match (self.owed_since, self.protocol.reply_owed()) {
            (None, true) => self.owed_since = Some(now),
            (Some(_), false) => self.owed_since = None,
            _ => {}
        }
    }

    /// The end of the connection's watch (closed, or its upstream half-closed without data).
    pub fn end(&mut self) {
        if self.phase != Phase::PassThrough {
            self.phase = Phase::Ended;
        }
    }

    /// When the read side next needs a probe (or a verdict): read-idle after the last upstream byte (or after
    /// the silence a blocking command allows), then an interval after each probe.
    fn read_due(&self, config: &Config) -> Instant {
        if self.misses == 0 {
            self.last_read.max(self.quiet_until).after(config.read_idle_timeout).max(self.probe_retry)
        } else {
            self.last_probe.after(config.ping_interval)
        }
    }

    /// When the upstream's silence stops being its right, if it is entitled to take its time: it owes the
    /// client a reply, or its client may be holding it back (see [`HOLD_BACK_BYTES`]).
    fn reply_due(&self, config: &Config) -> Option<Instant> {
        let silent_since = self.last_read.max(self.quiet_until);
        let owed = self.owed_since.map(|since| since.max(silent_since));
        // A block of HOLD_BACK_BYTES that took at most reply_timeout and ended less than reply_timeout before
        // the silence began.
        let held_back = self
            .heavy
            .filter(|(from, to)| {
                to.since(*from) <= config.reply_timeout && to.after(config.reply_timeout) > self.last_read
            })
            .map(|_| self.last_read);
        owed.max(held_back).map(|since| since.after(config.reply_timeout))
    }

    /// When this connection next needs attention, if it is being watched.
    pub fn deadline(&self, config: &Config) -> Option<Instant> {
        if self.phase != Phase::Monitoring {
            return None;
        }
        let mut due = self.read_due(config);
        if let Some(reply) = self.reply_due(config) {
            due = due.min(reply);
        }
        if let Some(keepalive) = config.write_idle_keepalive {
            due = due.min(self.last_write.after(keepalive).max(self.keepalive_retry));
        }
        Some(due)
    }

    fn dead(&mut self, evidence: Evidence, now: Instant) -> Timeout {
        self.phase = Phase::Ended;
        Timeout::Dead(Dead {
            evidence,
            silent_for: now.since(self.last_read),
            missed: self.misses,
            pings_unanswered: self.pings_owed,
        })
    }

    /// A timer came due: decide what to do at `now`.
    pub fn on_timeout(&mut self, now: Instant, config: &Config) -> Timeout {
        if self.phase != Phase::Monitoring {
            return Timeout::Nothing;
        }
        let reply_due = self.reply_due(config);
        if reply_due.is_some_and(|due| now >= due) {
            return self.dead(Evidence::ReplyOverdue, now);
        }
        if now >= self.read_due(config) {
            if self.misses >= config.max_missed_pongs {
                if reply_due.is_none() {
                    return self.dead(Evidence::PingsUnanswered, now);
                }
                // Enough PINGs are out; the upstream may take until `reply_due` to get to them.
                self.last_probe = now;
                return Timeout::Nothing;
            }
            return match self.protocol.can_inject() {
                Ok(()) => {
                    self.misses += 1;
                    self.last_probe = now;
                    Timeout::Inject(PingKind::Probe)
                }
                Err(defer) => {
                    if self.pings_owed > 0 {
                        // One of the filter's PINGs (a probe, or a keepalive) is already out and answered in
                        // order: the upstream is as well placed as if this probe had gone now, so the interval
                        // counts against it even though no new PING can go (Redis cannot queue one behind
                        // another filter PING's reply).
                        self.misses += 1;
                        self.last_probe = now;
                    } else {
                        // No evidence either way (the client is mid-frame, or owes the upstream its handshake).
                        self.probe_retry = now.after(config.ping_interval);
                        self.last_probe = now;
                    }
                    Timeout::Deferred(PingKind::Probe, defer)
                }
            };
        }
        if let Some(keepalive) = config.write_idle_keepalive {
            if now >= self.last_write.after(keepalive) && now >= self.keepalive_retry {
                return match self.protocol.can_inject() {
                    Ok(()) => Timeout::Inject(PingKind::Keepalive),
                    Err(defer) => {
                        self.keepalive_retry = now.after(config.ping_interval);
                        Timeout::Deferred(PingKind::Keepalive, defer)
                    }
                };
            }
        }
        Timeout::Nothing
    }

    /// The PING asked for by `Timeout::Inject` was appended to the client's stream.
    pub fn ping_written(&mut self, now: Instant) {
        self.protocol.on_ping_injected();
        self.pings_owed = self.pings_owed.saturating_add(1);
        self.last_write = now;
    }

    /// The PING could not be written (Envoy had no buffer for the connection): try again an interval later.
    /// A probe that did not go is no evidence: its miss is taken back.
    pub fn ping_failed(&mut self, kind: PingKind, now: Instant, config: &Config) {
        match kind {
            PingKind::Keepalive => self.keepalive_retry = now.after(config.ping_interval),
            PingKind::Probe => {
                self.misses = self.misses.saturating_sub(1);
                self.probe_retry = now.after(config.ping_interval);
            }
        }
    }
}

#[cfg(test)]
#[path = "connection_tests.rs"]
mod tests;
