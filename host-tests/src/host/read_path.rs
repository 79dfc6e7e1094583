//! Client -> upstream: the client's bytes wait in the kernel until Envoy reads (tcp_proxy keeps
//! reading disabled while connecting and above its high watermark), then the filter chain runs
//! over Envoy's read buffer: the wasm filter's `on_downstream_data`, then tcp_proxy, which moves
//! everything in the buffer to the upstream connection.

use super::Host;
use crate::abi::{Action, PeerType, Status};
use crate::conn::Upstream;
use crate::error::{HostError, Result};
use crate::observe::{Chunk, ConnId};
use crate::vm::Callback;

impl Host {
    /// The client sends bytes.
    pub fn client_send(&mut self, id: ConnId, bytes: &[u8]) -> Result<()> {
        let conn = self.conn_mut(id)?;
        if !conn.is_open() {
            return Err(HostError::Usage(format!("client_send on connection {} after it closed", id.0)));
        }
        if conn.client_fin_pending || conn.read_end_stream {
            return Err(HostError::Usage(format!("client_send on connection {} after client_fin", id.0)));
        }
        conn.socket_pending.extend_from_slice(bytes);
        self.pump_read(id)
    }

    /// The client half-closes (FIN). The filter sees `end_of_stream` once Envoy reads it.
    pub fn client_fin(&mut self, id: ConnId) -> Result<()> {
        let conn = self.conn_mut(id)?;
        if !conn.is_open() || conn.client_fin_pending || conn.read_end_stream {
            return Err(HostError::Usage(format!("client_fin on connection {} twice or after close", id.0)));
        }
        conn.client_fin_pending = true;
        self.pump_read(id)
    }

    /// Envoy reads what the client sent, if reading is enabled. When reading is re-enabled with
    /// bytes still in the read buffer (a paused filter), Envoy dispatches them again.
    pub(crate) fn pump_read(&mut self, id: ConnId) -> Result<()> {
        let conn = self.conn_mut(id)?;
        if !conn.reading_enabled() {
            return Ok(());
        }
        let fresh = !conn.socket_pending.is_empty() || conn.client_fin_pending;
        if !fresh && conn.read_buffer.is_empty() {
            return Ok(());
        }
        let pending = std::mem::take(&mut conn.socket_pending);
        conn.read_buffer.extend_from_slice(&pending);
        let eof_now = std::mem::take(&mut conn.client_fin_pending);
        if eof_now {
            conn.read_end_stream = true;
        }
        self.run_read_filters(id)?;
        if eof_now {
            // The read side finished last: Envoy closes as a remote close if the write side is done.
            self.close_if_both_half_closed(id, PeerType::Remote)?;
        }
        Ok(())
    }

    /// `FilterManagerImpl::onContinueReading(nullptr)`: every read filter in order.
    fn run_read_filters(&mut self, id: ConnId) -> Result<()> {
        let conn = self.conn_mut(id)?;
        if !conn.is_open() || (conn.read_buffer.is_empty() && !conn.read_end_stream) {
            return Ok(());
        }
        if conn.context_alive {
            // Context::onData: the buffer is reachable during the call, and after it only if paused.
            conn.read_buffer_exposed = true;
            let (worker, context) = (conn.worker, conn.context_id);
            let size = conn.read_buffer.len() as u32;
            let end_of_stream = conn.read_end_stream;
            let action = self.call_filter(worker, Callback::DownstreamData { context, size, end_of_stream })?;
            let action = Action::from_raw(action.unwrap_or(0));
            let conn = self.conn_mut(id)?;
            if action == Action::Continue {
                conn.read_buffer_exposed = false;
            }
            if action == Action::Pause || !conn.is_open() {
                return Ok(());
            }
        }
        self.tcp_proxy_on_data(id)
    }

    /// The deferred `continueReading()`: the filters after the wasm filter (tcp_proxy) run over
    /// the read buffer as it is now.
    pub(crate) fn continue_reading(&mut self, id: ConnId) -> Result<()> {
        let conn = self.conn(id)?;
        if !conn.is_open() {
            return Ok(());
        }
        if conn.upstream == Upstream::NotStarted {
            // tcp_proxy's onNewConnection runs first and stops the iteration while it connects.
            return self.start_tcp_proxy(id);
        }
        self.tcp_proxy_on_data(id)
    }

    /// tcp_proxy's onData: move the whole read buffer to the upstream connection. Without an
    /// upstream it drains the buffer all the same: those bytes are lost.
    fn tcp_proxy_on_data(&mut self, id: ConnId) -> Result<()> {
        let conn = self.conn_mut(id)?;
        if !conn.is_open() || (conn.read_buffer.is_empty() && !conn.read_end_stream) {
            return Ok(());
        }
        let bytes = std::mem::take(&mut conn.read_buffer);
        let end_stream = conn.read_end_stream;
        if matches!(conn.upstream, Upstream::Connected { .. }) {
            return self.upstream_write(id, bytes, end_stream);
        }
        if !bytes.is_empty() {
            let (worker, context) = (conn.worker, conn.context_id);
            let detail =
                format!("tcp_proxy dropped {} bytes: no upstream connection ({:?})", bytes.len(), conn.upstream);
            self.shared.lock().fault(worker, context, "tcp_proxy", Status::Ok, detail);
        }
        Ok(())
    }

    /// The upstream connection's write: into tcp_proxy's buffer, out to the upstream unless it
    /// is blocked; above the buffer limit, stop reading the client.
    fn upstream_write(&mut self, id: ConnId, bytes: Vec<u8>, end_stream: bool) -> Result<()> {
        let limit = self.options.upstream_buffer_limit;
        let conn = self.conn_mut(id)?;
        if conn.upstream_write_end_stream {
            if !bytes.is_empty() {
                let (worker, context) = (conn.worker, conn.context_id);
                let detail = format!("{} bytes written upstream after end of stream were dropped", bytes.len());
                self.shared.lock().fault(worker, context, "tcp_proxy", Status::Ok, detail);
            }
            return Ok(());
        }
        conn.upstream_write_buffer.extend_from_slice(&bytes);
        conn.upstream_write_end_stream = end_stream;
        self.flush_upstream(id)?;
        let conn = self.conn_mut(id)?;
        if limit > 0 && conn.upstream_write_buffer.len() > limit {
            conn.above_high_watermark = true;
        }
        Ok(())
    }

    /// What tcp_proxy buffered reaches the upstream if it reads; below half the limit the client
    /// is read again.
    pub(crate) fn flush_upstream(&mut self, id: ConnId) -> Result<()> {
        let now = self.now();
        let limit = self.options.upstream_buffer_limit;
        let conn = self.conn_mut(id)?;
        if conn.upstream_blocked || !matches!(conn.upstream, Upstream::Connected { .. }) {
            return Ok(());
        }
        if !conn.upstream_write_buffer.is_empty() {
            let bytes = std::mem::take(&mut conn.upstream_write_buffer);
            conn.upstream_received.push(Chunk { at: now, bytes });
        }
        if conn.upstream_write_end_stream && conn.upstream_saw_fin.is_none() {
            conn.upstream_saw_fin = Some(now);
        }
        if conn.above_high_watermark && conn.upstream_write_buffer.len() < limit / 2 {
            conn.above_high_watermark = false;
            self.pump_read(id)?;
        }
        Ok(())
    }

    /// The upstream stops (true) or resumes (false) reading: bytes pile up in tcp_proxy's buffer.
    pub fn set_upstream_blocked(&mut self, id: ConnId, blocked: bool) -> Result<()> {
        self.conn_mut(id)?.upstream_blocked = blocked;
        if !blocked {
            self.flush_upstream(id)?;
        }
        Ok(())
    }
}
