//! `proxy_get_buffer_bytes` / `proxy_set_buffer_bytes` with Envoy 1.40's rules
//! (`source/extensions/common/wasm/context.cc`, `Buffer::copyFrom` and `Context::getBuffer`):
//! - the network data buffers exist only while Envoy holds a pointer to them: during the data
//!   callback, and for the read buffer after `on_downstream_data` returned Pause;
//! - without one, get answers Ok with no bytes and set answers BadArgument;
//! - set `(0, 0, x)` prepends, `(0, n, x)` replaces the first n bytes, `start >= len` appends,
//!   `0 < start < len` is BadArgument;
//! - the plugin configuration is readable only inside `proxy_on_configure`.

use wasmtime::Linker;

use super::memory::{copy_out, read, Cx};
use crate::abi::{BufferType, Status};
use crate::vm::state::VmState;

pub(crate) fn add(linker: &mut Linker<VmState>) -> wasmtime::Result<()> {
    linker.func_wrap("env", "proxy_get_buffer_bytes", proxy_get_buffer_bytes)?;
    linker.func_wrap("env", "proxy_set_buffer_bytes", proxy_set_buffer_bytes)?;
    Ok(())
}

/// What `getBuffer` yields for reading: Err(NotFound) when Envoy returns no buffer object,
/// Ok(bytes) otherwise (empty when the object wraps nothing).
fn readable(state: &VmState, buffer: BufferType) -> Result<Vec<u8>, Status> {
    match buffer {
        BufferType::DownstreamData => Ok(match state.acting_conn().and_then(|id| state.conns.get(&id)) {
            Some(conn) if conn.read_buffer_exposed => conn.read_buffer.clone(),
            _ => Vec::new(),
        }),
        BufferType::UpstreamData => Ok(match state.acting_conn().and_then(|id| state.conns.get(&id)) {
            Some(conn) if conn.write_buffer_exposed => conn.write_buffer.clone(),
            _ => Vec::new(),
        }),
        BufferType::VmConfiguration => Ok(state.options.vm_configuration.clone()),
        BufferType::PluginConfiguration if state.configuring => Ok(state.options.plugin_configuration.clone()),
        BufferType::PluginConfiguration | BufferType::HttpCallResponseBody | BufferType::CallData => {
            Err(Status::NotFound)
        }
        BufferType::HttpRequestBody | BufferType::HttpResponseBody | BufferType::GrpcReceiveBuffer => Ok(Vec::new()),
    }
}

fn proxy_get_buffer_bytes(
    mut caller: Cx<'_>,
    buffer: i32,
    start: i32,
    max: i32,
    ptr_ptr: i32,
    size_ptr: i32,
) -> wasmtime::Result<i32> {
    const CALL: &str = "proxy_get_buffer_bytes";
    let Some(kind) = BufferType::from_raw(buffer as u32) else {
        caller.data().fault(CALL, Status::BadArgument, format!("buffer type {buffer}"));
        return Ok(Status::BadArgument.code());
    };
    let bytes = match readable(caller.data(), kind) {
        Ok(bytes) => bytes,
        Err(status) => return Ok(status.code()),
    };
    let (start, max) = (start as u32 as usize, max as u32 as usize);
    if start > bytes.len() {
        // Envoy computes `size - start` unsigned here; the result is garbage, not a defined answer.
        caller.data().fault(
            CALL,
            Status::InvalidMemoryAccess,
            format!("{kind:?}: start {start} beyond length {}", bytes.len()),
        );
        return Ok(Status::InvalidMemoryAccess.code());
    }
    let end = start.saturating_add(max).min(bytes.len());
    let slice = bytes.get(start..end).unwrap_or_default();
    if slice.is_empty() {
        // Envoy returns Ok without touching the out-pointers: the SDK sees a null pointer.
        return Ok(Status::Ok.code());
    }
    if copy_out(&mut caller, slice, ptr_ptr, size_ptr)? {
        Ok(Status::Ok.code())
    } else {
        Ok(Status::InvalidMemoryAccess.code())
    }
}

fn proxy_set_buffer_bytes(
    mut caller: Cx<'_>,
    buffer: i32,
    start: i32,
    length: i32,
    data_ptr: i32,
    data_size: i32,
) -> i32 {
    const CALL: &str = "proxy_set_buffer_bytes";
    let Some(kind) = BufferType::from_raw(buffer as u32) else {
        caller.data().fault(CALL, Status::BadArgument, format!("buffer type {buffer}"));
        return Status::BadArgument.code();
    };
    if matches!(kind, BufferType::HttpCallResponseBody | BufferType::CallData)
        || (kind == BufferType::PluginConfiguration && !caller.data().configuring)
    {
        return Status::NotFound.code();
    }
    let Some(data) = read(&mut caller, data_ptr, data_size) else {
        return Status::InvalidMemoryAccess.code();
    };
    let (start, length) = (start as u32 as usize, length as u32 as usize);
    let state = caller.data_mut();
    let target = match kind {
        BufferType::DownstreamData => {
            state.acting_conn_mut().filter(|c| c.read_buffer_exposed).map(|c| &mut c.read_buffer)
        }
        BufferType::UpstreamData => {
            state.acting_conn_mut().filter(|c| c.write_buffer_exposed).map(|c| &mut c.write_buffer)
        }
        _ => None,
    };
    let Some(target) = target else {
        let why = match kind {
            BufferType::DownstreamData | BufferType::UpstreamData => {
                "no buffer: outside its data callback (or on_downstream_data did not return Pause)"
            }
            _ => "buffer is read-only",
        };
        state.fault(CALL, Status::BadArgument, format!("{kind:?}: {why}"));
        return Status::BadArgument.code();
    };
    let len = target.len();
    if start == 0 {
        if length > len {
            // Envoy's drain() stops at the end of the buffer (and asserts in debug builds).
            target.clear();
            let detail = format!("{kind:?}: replacing {length} bytes of a {len}-byte buffer");
            target.extend_from_slice(&data);
            state.fault(CALL, Status::Ok, detail);
            return Status::Ok.code();
        }
        target.splice(0..length, data);
        Status::Ok.code()
    } else if start >= len {
        target.extend_from_slice(&data);
        Status::Ok.code()
    } else {
        state.fault(
            CALL,
            Status::BadArgument,
            format!("{kind:?}: start {start} inside a {len}-byte buffer (Envoy cannot insert in the middle)"),
        );
        Status::BadArgument.code()
    }
}
