//! [`TestHost`]: the same host for tests, whose driving methods panic with the full error (a
//! trap's wasm backtrace and the filter's last log lines) instead of returning it. Observations
//! are reached through `Deref` ([`Host`]'s methods).

use std::ops::{Deref, DerefMut};
use std::time::Duration;

use crate::error::{HostError, Result};
use crate::host::Host;
use crate::observe::{ConnId, Fault};
use crate::options::{ConnectOptions, HostOptions};
use crate::plugin::Plugin;

pub struct TestHost(pub Host);

#[track_caller]
fn ok<T>(result: Result<T>) -> T {
    result.unwrap_or_else(|e| panic!("{e}"))
}

impl TestHost {
    #[track_caller]
    pub fn start(plugin: &Plugin, options: HostOptions) -> Self {
        Self(ok(Host::start(plugin, options)))
    }

    /// Starts with this plugin configuration and otherwise default options.
    #[track_caller]
    pub fn with_config(plugin: &Plugin, configuration: &str) -> Self {
        Self::start(plugin, HostOptions::with_configuration(configuration))
    }

    /// The error `Host::start` returns (e.g. a rejected configuration); panics if it starts.
    #[track_caller]
    pub fn start_err(plugin: &Plugin, options: HostOptions) -> HostError {
        match Host::start(plugin, options) {
            Ok(_) => panic!("the host started, an error was expected"),
            Err(e) => e,
        }
    }

    #[track_caller]
    pub fn connect(&mut self) -> ConnId {
        ok(self.0.connect())
    }

    #[track_caller]
    pub fn connect_with_delay(&mut self, delay: Duration) -> ConnId {
        ok(self.0.connect_with_delay(delay))
    }

    #[track_caller]
    pub fn connect_with(&mut self, options: ConnectOptions) -> ConnId {
        ok(self.0.connect_with(options))
    }

    #[track_caller]
    pub fn client_send(&mut self, id: ConnId, bytes: impl AsRef<[u8]>) {
        ok(self.0.client_send(id, bytes.as_ref()))
    }

    #[track_caller]
    pub fn client_fin(&mut self, id: ConnId) {
        ok(self.0.client_fin(id))
    }

    #[track_caller]
    pub fn client_reset(&mut self, id: ConnId) {
        ok(self.0.client_reset(id))
    }

    #[track_caller]
    pub fn upstream_send(&mut self, id: ConnId, bytes: impl AsRef<[u8]>) {
        ok(self.0.upstream_send(id, bytes.as_ref()))
    }

    #[track_caller]
    pub fn upstream_fin(&mut self, id: ConnId) {
        ok(self.0.upstream_fin(id))
    }

    #[track_caller]
    pub fn upstream_reset(&mut self, id: ConnId) {
        ok(self.0.upstream_reset(id))
    }

    #[track_caller]
    pub fn set_upstream_blocked(&mut self, id: ConnId, blocked: bool) {
        ok(self.0.set_upstream_blocked(id, blocked))
    }

    #[track_caller]
    pub fn advance(&mut self, by: Duration) {
        ok(self.0.advance(by))
    }

    #[track_caller]
    pub fn advance_ms(&mut self, ms: u64) {
        self.advance(Duration::from_millis(ms))
    }

    #[track_caller]
    pub fn upstream_received(&self, id: ConnId) -> Vec<u8> {
        ok(self.0.upstream_received(id))
    }

    #[track_caller]
    pub fn client_received(&self, id: ConnId) -> Vec<u8> {
        ok(self.0.client_received(id))
    }

    #[track_caller]
    pub fn closed(&self, id: ConnId) -> Option<crate::observe::Closed> {
        ok(self.0.closed(id)).cloned()
    }

    /// Panics listing the faults if the filter misused any host call.
    #[track_caller]
    pub fn assert_no_faults(&self) {
        let faults: Vec<Fault> = self.0.faults();
        assert!(faults.is_empty(), "host-call faults: {faults:#?}");
    }
}

impl Deref for TestHost {
    type Target = Host;
    fn deref(&self) -> &Host {
        &self.0
    }
}

impl DerefMut for TestHost {
    fn deref_mut(&mut self) -> &mut Host {
        &mut self.0
    }
}
