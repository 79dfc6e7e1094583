//! Upstream -> client: tcp_proxy writes what the upstream sent to the client's connection, whose
//! write filter chain gives the wasm filter `on_upstream_data` over that buffer; the client
//! receives the buffer as the filter left it. End of stream from the upstream also produces
//! `on_upstream_connection_close` (Envoy has no other signal for it).

use super::Host;
use crate::abi::{Action, PeerType, Status};
use crate::conn::Upstream;
use crate::error::{HostError, Result};
use crate::observe::{Chunk, ConnId};
use crate::vm::Callback;

impl Host {
    /// The upstream sends bytes towards the client.
    pub fn upstream_send(&mut self, id: ConnId, bytes: &[u8]) -> Result<()> {
        self.check_upstream_can_send(id, "upstream_send")?;
        self.downstream_write(id, bytes, false)
    }

    /// The upstream half-closes (FIN).
    pub fn upstream_fin(&mut self, id: ConnId) -> Result<()> {
        self.check_upstream_can_send(id, "upstream_fin")?;
        self.conn_mut(id)?.upstream_sent_fin = true;
        self.downstream_write(id, &[], true)
    }

    fn check_upstream_can_send(&self, id: ConnId, what: &str) -> Result<()> {
        let conn = self.conn(id)?;
        if !conn.is_open() {
            return Err(HostError::Usage(format!("{what} on connection {} after it closed", id.0)));
        }
        if !matches!(conn.upstream, Upstream::Connected { .. }) {
            return Err(HostError::Usage(format!(
                "{what} on connection {}: upstream not connected ({:?})",
                id.0, conn.upstream
            )));
        }
        if conn.upstream_sent_fin {
            return Err(HostError::Usage(format!("{what} on connection {} after upstream_fin", id.0)));
        }
        Ok(())
    }

    /// `ConnectionImpl::write` on the client's connection, through the write filter chain.
    fn downstream_write(&mut self, id: ConnId, bytes: &[u8], end_stream: bool) -> Result<()> {
        let conn = self.conn_mut(id)?;
        if conn.client_saw_fin.is_some() {
            return Ok(());
        }
        // Bytes held by an earlier (unsupported) Pause come first, as in Envoy's upstream read buffer.
        conn.write_buffer.extend_from_slice(bytes);
        if conn.context_alive {
            conn.write_buffer_exposed = true;
            let (worker, context) = (conn.worker, conn.context_id);
            let size = conn.write_buffer.len() as u32;
            let action =
                self.call_filter(worker, Callback::UpstreamData { context, size, end_of_stream: end_stream })?;
            let paused = Action::from_raw(action.unwrap_or(0)) == Action::Pause;
            let conn = self.conn_mut(id)?;
            if paused {
                let detail =
                    "returned Pause: Envoy has no continue on the write path; the bytes stay stuck until more arrive";
                let (worker, context) = (conn.worker, conn.context_id);
                self.shared.lock().fault(worker, context, "proxy_on_upstream_data", Status::Ok, detail.into());
            } else {
                conn.write_buffer_exposed = false;
            }
            let conn = self.conn(id)?;
            if end_stream && conn.context_alive {
                let context = conn.context_id;
                let peer = PeerType::Unknown as u32;
                self.call_filter(worker, Callback::UpstreamConnectionClose { context, peer })?;
            }
            if paused {
                return Ok(());
            }
        }
        let now = self.now();
        let conn = self.conn_mut(id)?;
        let bytes = std::mem::take(&mut conn.write_buffer);
        if !conn.is_open() {
            // The filter closed the connection during this write: the socket is gone before the
            // bytes reach Envoy's write buffer.
            if !bytes.is_empty() {
                let (worker, context) = (conn.worker, conn.context_id);
                let detail =
                    format!("{} upstream bytes lost: the connection closed while they were being written", bytes.len());
                self.shared.lock().fault(worker, context, "proxy_on_upstream_data", Status::Ok, detail);
            }
            return Ok(());
        }
        if !bytes.is_empty() {
            conn.client_received.push(Chunk { at: now, bytes });
        }
        if end_stream {
            conn.client_saw_fin = Some(now);
            // The write side finished last: Envoy closes as a local close if the read side is done.
            self.close_if_both_half_closed(id, PeerType::Local)?;
        }
        Ok(())
    }
}
