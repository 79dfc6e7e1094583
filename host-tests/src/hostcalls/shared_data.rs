//! `proxy_get_shared_data` / `proxy_set_shared_data`: one key-value store for all workers, with
//! compare-and-swap tokens (a set with a stale non-zero cas answers CasMismatch).

use wasmtime::Linker;

use super::memory::{copy_out, read, write_u32, Cx};
use crate::abi::Status;
use crate::vm::state::VmState;

pub(crate) fn add(linker: &mut Linker<VmState>) -> wasmtime::Result<()> {
    linker.func_wrap("env", "proxy_get_shared_data", proxy_get_shared_data)?;
    linker.func_wrap("env", "proxy_set_shared_data", proxy_set_shared_data)?;
    Ok(())
}

fn proxy_get_shared_data(
    mut caller: Cx<'_>,
    key_ptr: i32,
    key_len: i32,
    ptr_ptr: i32,
    size_ptr: i32,
    cas_ptr: i32,
) -> wasmtime::Result<i32> {
    let Some(key) = read(&mut caller, key_ptr, key_len) else {
        return Ok(Status::InvalidMemoryAccess.code());
    };
    let Some((value, cas)) = caller.data().shared.lock().shared_data.get(&key).cloned() else {
        return Ok(Status::NotFound.code());
    };
    if copy_out(&mut caller, &value, ptr_ptr, size_ptr)? && write_u32(&mut caller, cas_ptr, cas) {
        Ok(Status::Ok.code())
    } else {
        Ok(Status::InvalidMemoryAccess.code())
    }
}

fn proxy_set_shared_data(
    mut caller: Cx<'_>,
    key_ptr: i32,
    key_len: i32,
    value_ptr: i32,
    value_len: i32,
    cas: i32,
) -> i32 {
    let (Some(key), Some(value)) = (read(&mut caller, key_ptr, key_len), read(&mut caller, value_ptr, value_len))
    else {
        return Status::InvalidMemoryAccess.code();
    };
    let mut shared = caller.data().shared.lock();
    let cas = cas as u32;
    if let Some((_, current)) = shared.shared_data.get(&key) {
        if cas != 0 && cas != *current {
            return Status::CasMismatch.code();
        }
    }
    let next = shared.next_cas();
    shared.shared_data.insert(key, (value, next));
    Status::Ok.code()
}
