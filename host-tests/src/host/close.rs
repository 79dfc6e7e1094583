//! Resets from either side, and closing the client's connection: the wasm filter's connection callback runs first
//! (`proxy_on_downstream_connection_close`, then `proxy_on_done`, `proxy_on_log`,
//! `proxy_on_delete`), then tcp_proxy closes the upstream (FlushWrite: buffered bytes still go out
//! if the upstream reads).

use super::Host;
use crate::abi::PeerType;
use crate::conn::Upstream;
use crate::error::{HostError, Result};
use crate::observe::{CloseCause, Closed, ConnId};
use crate::vm::Callback;

impl Host {
    /// The client resets (or closes) its connection.
    pub fn client_reset(&mut self, id: ConnId) -> Result<()> {
        if !self.conn(id)?.is_open() {
            return Err(HostError::Usage(format!("client_reset on connection {} after it closed", id.0)));
        }
        self.close_downstream(id, CloseCause::ClientReset, PeerType::Remote)
    }

    /// The upstream resets its connection (or the host behind it vanishes with an RST):
    /// tcp_proxy closes the client's connection. No upstream-close callback: no end_stream was seen.
    pub fn upstream_reset(&mut self, id: ConnId) -> Result<()> {
        let conn = self.conn_mut(id)?;
        if !conn.is_open() || matches!(conn.upstream, Upstream::Gone | Upstream::NotStarted) {
            return Err(HostError::Usage(format!("upstream_reset on connection {} without an upstream", id.0)));
        }
        conn.upstream = Upstream::Gone;
        conn.upstream_write_buffer.clear();
        self.close_downstream(id, CloseCause::UpstreamReset, PeerType::Local)
    }

    pub(crate) fn close_downstream(&mut self, id: ConnId, cause: CloseCause, peer: PeerType) -> Result<()> {
        let now = self.now();
        let conn = self.conn_mut(id)?;
        if !conn.is_open() {
            return Ok(());
        }
        conn.closed = Some(Closed { at: now, cause, peer });
        if conn.context_alive {
            let (worker, context) = (conn.worker, conn.context_id);
            self.call_filter(worker, Callback::DownstreamConnectionClose { context, peer: peer as u32 })?;
            // Context::onCloseTCP
            self.call_filter(worker, Callback::Done { context })?;
            self.call_filter(worker, Callback::Log { context })?;
            self.call_filter(worker, Callback::Delete { context })?;
            self.conn_mut(id)?.context_alive = false;
            let state = self.vm_state_mut(worker)?;
            state.contexts.remove(&context);
            state.properties.retain(|(ctx, _), _| *ctx != context);
        }
        let conn = self.conn_mut(id)?;
        match conn.upstream {
            Upstream::Connected { .. } => {
                if !conn.upstream_blocked && !conn.upstream_write_buffer.is_empty() {
                    let bytes = std::mem::take(&mut conn.upstream_write_buffer);
                    conn.upstream_received.push(crate::observe::Chunk { at: now, bytes });
                }
                conn.upstream_saw_close = Some(now);
                conn.upstream = Upstream::Gone;
            }
            Upstream::Connecting | Upstream::NotStarted => conn.upstream = Upstream::Gone,
            Upstream::Gone => {}
        }
        Ok(())
    }

    /// Envoy closes a half-closed connection once both directions are shut; `peer` is the side
    /// that finished last.
    pub(crate) fn close_if_both_half_closed(&mut self, id: ConnId, peer: PeerType) -> Result<()> {
        let conn = self.conn(id)?;
        if conn.is_open() && conn.read_end_stream && conn.client_saw_fin.is_some() {
            return self.close_downstream(id, CloseCause::BothHalfClosed, peer);
        }
        Ok(())
    }
}
