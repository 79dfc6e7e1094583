//! Scripts: one conversation written once and played on this host or, by a harness, on real
//! Envoy, so that the two can be compared ("where Envoy and the host disagree, the host is wrong").
//! A [`Transcript`] is what each side received and when each saw its end of stream.

use std::time::Duration;

use crate::error::Result;
use crate::host::Host;
use crate::observe::{ConnId, SimTime};
use crate::options::HostOptions;
use crate::plugin::Plugin;

#[derive(Clone, Debug)]
pub enum Step {
    ClientSend(Vec<u8>),
    UpstreamSend(Vec<u8>),
    ClientFin,
    UpstreamFin,
    Wait(Duration),
}

#[derive(Clone, Debug)]
pub struct Script {
    pub name: String,
    /// The filter's plugin configuration.
    pub configuration: String,
    /// Played from the moment the client's connection is accepted.
    pub steps: Vec<Step>,
}

impl Script {
    /// Total time the steps wait.
    pub fn duration(&self) -> Duration {
        self.steps.iter().map(|s| if let Step::Wait(d) = s { *d } else { Duration::ZERO }).sum()
    }
}

/// What a run produced, with times measured from the client's connect.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Transcript {
    pub upstream_received: Vec<u8>,
    pub client_received: Vec<u8>,
    /// When the client read end of stream (a FIN passed on, or its connection closed).
    pub client_eof_at: Option<SimTime>,
    /// When the upstream read end of stream.
    pub upstream_eof_at: Option<SimTime>,
}

/// Plays the script on this host (one worker, default options) and records the transcript.
pub fn run_on_host(plugin: &Plugin, script: &Script) -> Result<Transcript> {
    let mut host = Host::start(plugin, HostOptions::with_configuration(script.configuration.as_bytes()))?;
    let c = play(&mut host, script)?;
    transcript(&host, c)
}

/// Opens a connection on `host` and plays the script on it.
pub fn play(host: &mut Host, script: &Script) -> Result<ConnId> {
    let c = host.connect()?;
    for step in &script.steps {
        // Once the connection is closed, the peers' writes go nowhere (Envoy would reset them).
        let open = host.closed(c)?.is_none();
        match step {
            Step::ClientSend(bytes) if open => host.client_send(c, bytes)?,
            Step::UpstreamSend(bytes) if open => host.upstream_send(c, bytes)?,
            Step::ClientFin if open => host.client_fin(c)?,
            Step::UpstreamFin if open => host.upstream_fin(c)?,
            Step::Wait(d) => host.advance(*d)?,
            _ => {}
        }
    }
    Ok(c)
}

/// What each side of connection `c` received and when it saw end of stream.
pub fn transcript(host: &Host, c: ConnId) -> Result<Transcript> {
    let closed_at = host.closed(c)?.map(|closed| closed.at);
    let earliest = |a: Option<SimTime>, b: Option<SimTime>| match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    Ok(Transcript {
        upstream_received: host.upstream_received(c)?,
        client_received: host.client_received(c)?,
        client_eof_at: earliest(host.client_saw_fin(c)?, closed_at),
        upstream_eof_at: earliest(host.upstream_saw_fin(c)?, host.upstream_saw_close(c)?),
    })
}

/// The differences between two transcripts: bytes must be equal; end-of-stream times may differ
/// by `tolerance` (the root tick's phase and scheduling differ between runs).
pub fn differences(expected: &Transcript, actual: &Transcript, tolerance: Duration) -> Vec<String> {
    let mut out = Vec::new();
    let show = |b: &[u8]| String::from_utf8_lossy(b).escape_debug().to_string();
    if expected.upstream_received != actual.upstream_received {
        out.push(format!(
            "upstream received {:?} vs {:?}",
            show(&expected.upstream_received),
            show(&actual.upstream_received)
        ));
    }
    if expected.client_received != actual.client_received {
        out.push(format!(
            "client received {:?} vs {:?}",
            show(&expected.client_received),
            show(&actual.client_received)
        ));
    }
    for (what, a, b) in [
        ("client end of stream", expected.client_eof_at, actual.client_eof_at),
        ("upstream end of stream", expected.upstream_eof_at, actual.upstream_eof_at),
    ] {
        let agree = match (a, b) {
            (Some(a), Some(b)) => a.abs_diff(b) <= tolerance,
            (None, None) => true,
            _ => false,
        };
        if !agree {
            out.push(format!("{what} at {a:?} vs {b:?}"));
        }
    }
    out
}
