//! `proxy_get_property` / `proxy_set_property`. Paths arrive as the SDK sends them: segments
//! joined by NUL (`["upstream", "address"]` -> `upstream\0address`), or each NUL-terminated. Values are encoded as
//! Envoy encodes them: addresses as strings, ports and `connection.id` as 8-byte little-endian
//! integers. Unknown paths, and connection properties from the root context, are NotFound.

use wasmtime::Linker;

use super::memory::{copy_out, read, Cx};
use crate::abi::Status;
use crate::conn::{Conn, Upstream};
use crate::vm::state::VmState;

pub(crate) fn add(linker: &mut Linker<VmState>) -> wasmtime::Result<()> {
    linker.func_wrap("env", "proxy_get_property", proxy_get_property)?;
    linker.func_wrap("env", "proxy_set_property", proxy_set_property)?;
    Ok(())
}

fn port_of(address: &str) -> Option<Vec<u8>> {
    let port: i64 = address.rsplit_once(':')?.1.parse().ok()?;
    Some(port.to_le_bytes().to_vec())
}

fn connection_property(state: &VmState, conn: &Conn, path: &[&[u8]]) -> Option<Vec<u8>> {
    let upstream_known = matches!(conn.upstream, Upstream::Connected { .. });
    match path {
        [b"connection", b"id"] => Some(conn.id.0.to_le_bytes().to_vec()),
        [b"source", b"address"] => Some(conn.source_address.clone().into_bytes()),
        [b"source", b"port"] => port_of(&conn.source_address),
        [b"destination", b"address"] => Some(state.options.listener_address.clone().into_bytes()),
        [b"destination", b"port"] => port_of(&state.options.listener_address),
        [b"upstream", b"address"] if upstream_known => Some(conn.upstream_address.clone().into_bytes()),
        [b"upstream", b"port"] if upstream_known => port_of(&conn.upstream_address),
        [b"xds", b"cluster_name"] if conn.upstream != Upstream::NotStarted => {
            Some(state.options.cluster_name.clone().into_bytes())
        }
        _ => None,
    }
}

fn lookup(state: &VmState, raw_path: &[u8]) -> Option<Vec<u8>> {
    // Envoy walks NUL-separated segments and stops at the end, so a trailing NUL (each segment
    // NUL-terminated) reads the same as the SDK's NUL-joined form.
    let trimmed = raw_path.strip_suffix(&[0]).unwrap_or(raw_path);
    let path: Vec<&[u8]> = trimmed.split(|b| *b == 0).collect();
    match path.as_slice() {
        [b"plugin_name"] => return Some(state.options.plugin_name.clone().into_bytes()),
        [b"plugin_root_id"] => return Some(state.options.root_id.clone().into_bytes()),
        [b"plugin_vm_id"] => return Some(state.options.vm_id.clone().into_bytes()),
        _ => {}
    }
    if let Some(value) = state.properties.get(&(state.acting_context(), raw_path.to_vec())) {
        return Some(value.clone());
    }
    let conn = state.acting_conn().and_then(|id| state.conns.get(&id))?;
    connection_property(state, conn, &path)
}

fn proxy_get_property(
    mut caller: Cx<'_>,
    path_ptr: i32,
    path_len: i32,
    ptr_ptr: i32,
    size_ptr: i32,
) -> wasmtime::Result<i32> {
    let Some(path) = read(&mut caller, path_ptr, path_len) else {
        return Ok(Status::InvalidMemoryAccess.code());
    };
    let Some(value) = lookup(caller.data(), &path) else {
        return Ok(Status::NotFound.code());
    };
    if copy_out(&mut caller, &value, ptr_ptr, size_ptr)? {
        Ok(Status::Ok.code())
    } else {
        Ok(Status::InvalidMemoryAccess.code())
    }
}

/// Envoy stores the value as filter state of the connection; a root context has none.
fn proxy_set_property(mut caller: Cx<'_>, path_ptr: i32, path_len: i32, value_ptr: i32, value_len: i32) -> i32 {
    let (Some(path), Some(value)) = (read(&mut caller, path_ptr, path_len), read(&mut caller, value_ptr, value_len))
    else {
        return Status::InvalidMemoryAccess.code();
    };
    let state = caller.data_mut();
    if state.acting_conn().is_none() {
        return Status::NotFound.code();
    }
    let context = state.acting_context();
    state.properties.insert((context, path), value);
    Status::Ok.code()
}
