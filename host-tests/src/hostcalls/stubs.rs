//! Imports the host does not implement: each becomes a function of the declared type that
//! records the call (so a test can see it was used) and answers Unimplemented (12), or ENOSYS
//! for WASI, instead of failing instantiation the way an unresolved import would.

use wasmtime::{FuncType, Linker, Val, ValType};

use crate::abi::Status;
use crate::vm::state::VmState;

const WASI_ENOSYS: i32 = 52;

pub(crate) fn add(linker: &mut Linker<VmState>, module: &str, name: &str, ty: FuncType) -> wasmtime::Result<()> {
    let qualified = format!("{module}.{name}");
    let answer = if module.starts_with("wasi") { WASI_ENOSYS } else { Status::Unimplemented.code() };
    let results: Vec<ValType> = ty.results().collect();
    linker.func_new(module, name, ty, move |caller, _params, out| {
        let state = caller.data();
        let context = state.acting_context();
        let mut shared = state.shared.lock();
        shared.unimplemented.push(qualified.clone());
        shared.fault(state.worker, context, &qualified, Status::Unimplemented, "not implemented by the host".into());
        for (slot, ty) in out.iter_mut().zip(&results) {
            *slot = match ty {
                ValType::I32 => Val::I32(answer),
                ValType::I64 => Val::I64(i64::from(answer)),
                ValType::F32 => Val::F32(0),
                ValType::F64 => Val::F64(0),
                _ => Val::null_extern_ref(),
            };
        }
        Ok(())
    })?;
    Ok(())
}
