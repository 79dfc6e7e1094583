//! Reading and writing the guest's linear memory from a host call, and handing bytes to the
//! guest the way Envoy does: allocate with the module's allocator, copy, write pointer and size.

use wasmtime::Caller;

use crate::vm::state::VmState;

pub(crate) type Cx<'a> = Caller<'a, VmState>;

/// A copy of `len` bytes at `ptr`; None when the range is outside memory.
pub(crate) fn read(caller: &mut Cx<'_>, ptr: i32, len: i32) -> Option<Vec<u8>> {
    let memory = caller.data().memory?;
    let start = ptr as u32 as usize;
    let end = start.checked_add(len as u32 as usize)?;
    memory.data(&*caller).get(start..end).map(<[u8]>::to_vec)
}

pub(crate) fn write(caller: &mut Cx<'_>, ptr: i32, bytes: &[u8]) -> bool {
    let Some(memory) = caller.data().memory else { return false };
    let start = ptr as u32 as usize;
    let Some(end) = start.checked_add(bytes.len()) else { return false };
    match memory.data_mut(&mut *caller).get_mut(start..end) {
        Some(dst) => {
            dst.copy_from_slice(bytes);
            true
        }
        None => false,
    }
}

pub(crate) fn write_u32(caller: &mut Cx<'_>, ptr: i32, value: u32) -> bool {
    write(caller, ptr, &value.to_le_bytes())
}

pub(crate) fn write_u64(caller: &mut Cx<'_>, ptr: i32, value: u64) -> bool {
    write(caller, ptr, &value.to_le_bytes())
}

/// Envoy's `copyToPointerSize`: an empty value writes a null pointer and size 0 without
/// allocating. Ok(false) when the guest's pointers are bad; Err when its allocator trapped.
pub(crate) fn copy_out(caller: &mut Cx<'_>, bytes: &[u8], ptr_ptr: i32, size_ptr: i32) -> wasmtime::Result<bool> {
    let mut pointer: i32 = 0;
    if !bytes.is_empty() {
        let Some(malloc) = caller.data().malloc.clone() else { return Ok(false) };
        let Ok(size) = i32::try_from(bytes.len()) else { return Ok(false) };
        pointer = malloc.call(&mut *caller, size)?;
        if pointer == 0 || !write(caller, pointer, bytes) {
            return Ok(false);
        }
    }
    Ok(write_u32(caller, ptr_ptr, pointer as u32) && write_u32(caller, size_ptr, bytes.len() as u32))
}
