//! `proxy_log` and `proxy_get_log_level`.

use wasmtime::Linker;

use super::memory::{read, write_u32, Cx};
use crate::abi::{LogLevel, Status};
use crate::vm::state::VmState;

pub(crate) fn add(linker: &mut Linker<VmState>) -> wasmtime::Result<()> {
    linker.func_wrap("env", "proxy_log", proxy_log)?;
    linker.func_wrap("env", "proxy_get_log_level", proxy_get_log_level)?;
    Ok(())
}

fn proxy_log(mut caller: Cx<'_>, level: i32, ptr: i32, len: i32) -> i32 {
    let Some(level) = LogLevel::from_raw(level as u32) else {
        caller.data().fault("proxy_log", Status::BadArgument, format!("log level {level}"));
        return Status::BadArgument.code();
    };
    let Some(bytes) = read(&mut caller, ptr, len) else {
        return Status::InvalidMemoryAccess.code();
    };
    let state = caller.data();
    if level >= state.options.log_level {
        let context = state.acting_context();
        state.shared.lock().log(state.worker, context, level, String::from_utf8_lossy(&bytes).into_owned());
    }
    Status::Ok.code()
}

fn proxy_get_log_level(mut caller: Cx<'_>, out: i32) -> i32 {
    let level = caller.data().options.log_level as u32;
    if write_u32(&mut caller, out, level) {
        Status::Ok.code()
    } else {
        Status::InvalidMemoryAccess.code()
    }
}
