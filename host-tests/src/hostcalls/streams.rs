//! `proxy_continue_stream`, `proxy_close_stream`, `proxy_set_effective_context`, `proxy_done`.
//! Continue and close are deferred: Envoy queues them (`addAfterVmCallAction`) and runs them when
//! the current call into the VM returns, so inside the callback nothing has moved yet.

use wasmtime::Linker;

use super::memory::Cx;
use crate::abi::{Status, StreamType};
use crate::observe::CloseCause;
use crate::vm::state::{AfterCall, ContextKind, VmState};

pub(crate) fn add(linker: &mut Linker<VmState>) -> wasmtime::Result<()> {
    linker.func_wrap("env", "proxy_continue_stream", proxy_continue_stream)?;
    linker.func_wrap("env", "proxy_close_stream", proxy_close_stream)?;
    linker.func_wrap("env", "proxy_set_effective_context", proxy_set_effective_context)?;
    linker.func_wrap("env", "proxy_done", proxy_done)?;
    Ok(())
}

fn proxy_continue_stream(mut caller: Cx<'_>, stream: i32) -> i32 {
    const CALL: &str = "proxy_continue_stream";
    let state = caller.data_mut();
    match StreamType::from_raw(stream as u32) {
        None => {
            state.fault(CALL, Status::BadArgument, format!("stream type {stream}"));
            Status::BadArgument.code()
        }
        Some(StreamType::Downstream) => {
            match state.acting_conn() {
                Some(id) => state.actions.push_back(AfterCall::ContinueReading(id)),
                None => {
                    state.fault(CALL, Status::Ok, "Downstream from the root context: no connection, nothing continues")
                }
            }
            Status::Ok.code()
        }
        Some(StreamType::Upstream) => {
            state.fault(CALL, Status::Unimplemented, "Envoy has no continue on the write path");
            Status::Unimplemented.code()
        }
        Some(other) => {
            state.fault(CALL, Status::Ok, format!("{other:?} on a network filter does nothing"));
            Status::Ok.code()
        }
    }
}

/// Downstream and Upstream both close the downstream connection (FlushWrite): a network filter's
/// read and write callbacks belong to the same connection; tcp_proxy then closes the upstream.
fn proxy_close_stream(mut caller: Cx<'_>, stream: i32) -> i32 {
    const CALL: &str = "proxy_close_stream";
    let state = caller.data_mut();
    let cause = match StreamType::from_raw(stream as u32) {
        None => {
            state.fault(CALL, Status::BadArgument, format!("stream type {stream}"));
            return Status::BadArgument.code();
        }
        Some(StreamType::Downstream) => CloseCause::FilterClosedDownstream,
        Some(StreamType::Upstream) => CloseCause::FilterClosedUpstream,
        Some(other) => {
            state.fault(CALL, Status::Ok, format!("{other:?} on a network filter does nothing"));
            return Status::Ok.code();
        }
    };
    match state.acting_conn() {
        Some(id) => state.actions.push_back(AfterCall::Close(id, cause)),
        None => state.fault(CALL, Status::Ok, "from the root context without an effective context: nothing closes"),
    }
    Status::Ok.code()
}

fn proxy_set_effective_context(mut caller: Cx<'_>, context_id: i32) -> i32 {
    let state = caller.data_mut();
    let id = context_id as u32;
    if state.contexts.contains_key(&id) {
        state.effective_context = Some(id);
        Status::Ok.code()
    } else {
        state.fault("proxy_set_effective_context", Status::BadArgument, format!("no context {id} on this VM"));
        Status::BadArgument.code()
    }
}

/// Only meaningful while the VM is shutting down (a root context that returned false from
/// `proxy_on_done`); the host does not model shutdown, so there is never anything pending.
fn proxy_done(caller: Cx<'_>) -> i32 {
    let state = caller.data();
    let is_root = matches!(state.contexts.get(&state.acting_context()), Some(ContextKind::Root));
    state.fault("proxy_done", Status::NotFound, if is_root { "no shutdown pending" } else { "not a root context" });
    Status::NotFound.code()
}
