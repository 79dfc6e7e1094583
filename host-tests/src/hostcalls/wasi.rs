//! The few WASI calls a proxy-wasm module built for `wasm32-wasip1` makes, answered the way
//! proxy-wasm-cpp-host does: stdout/stderr become log lines (Info/Error), the clocks read the
//! simulated clock, no arguments and no environment, deterministic "random" bytes.

use wasmtime::Linker;

use super::memory::{read, write, write_u32, write_u64, Cx};
use super::time::now_unix_nanos;
use crate::abi::LogLevel;
use crate::vm::state::VmState;

const M: &str = "wasi_snapshot_preview1";
const SUCCESS: i32 = 0;
const EBADF: i32 = 8;
const EFAULT: i32 = 21;
const ENOTSUP: i32 = 58;

pub(crate) fn add(linker: &mut Linker<VmState>) -> wasmtime::Result<()> {
    linker.func_wrap(M, "fd_write", fd_write)?;
    linker.func_wrap(M, "clock_time_get", clock_time_get)?;
    linker.func_wrap(M, "random_get", random_get)?;
    linker.func_wrap(M, "environ_sizes_get", zero_sizes)?;
    linker.func_wrap(M, "args_sizes_get", zero_sizes)?;
    linker.func_wrap(M, "environ_get", |_: Cx<'_>, _: i32, _: i32| SUCCESS)?;
    linker.func_wrap(M, "args_get", |_: Cx<'_>, _: i32, _: i32| SUCCESS)?;
    linker.func_wrap(M, "sched_yield", |_: Cx<'_>| SUCCESS)?;
    linker.func_wrap(M, "proc_exit", |_: Cx<'_>, code: i32| -> wasmtime::Result<()> {
        Err(wasmtime::Error::msg(format!("the module called proc_exit({code})")))
    })?;
    Ok(())
}

fn fd_write(mut caller: Cx<'_>, fd: i32, iovs: i32, iovs_len: i32, nwritten: i32) -> i32 {
    let level = match fd {
        1 => LogLevel::Info,
        2 => LogLevel::Error,
        _ => return EBADF,
    };
    let mut text = Vec::new();
    for i in 0..iovs_len.max(0) {
        let Some(iov) = iovs.checked_add(i.saturating_mul(8)).and_then(|at| read(&mut caller, at, 8)) else {
            return EFAULT;
        };
        let ptr = i32::from_le_bytes([iov[0], iov[1], iov[2], iov[3]]);
        let len = i32::from_le_bytes([iov[4], iov[5], iov[6], iov[7]]);
        let Some(bytes) = read(&mut caller, ptr, len) else { return EFAULT };
        text.extend_from_slice(&bytes);
    }
    let written = text.len() as u32;
    if text.last() == Some(&b'\n') {
        text.pop();
    }
    if !text.is_empty() {
        let state = caller.data();
        let context = state.acting_context();
        state.shared.lock().log(state.worker, context, level, String::from_utf8_lossy(&text).into_owned());
    }
    if write_u32(&mut caller, nwritten, written) {
        SUCCESS
    } else {
        EFAULT
    }
}

fn clock_time_get(mut caller: Cx<'_>, clock: i32, _precision: i64, out: i32) -> i32 {
    let now = match clock {
        0 => now_unix_nanos(caller.data()),
        1 => u64::try_from(caller.data().shared.lock().now.as_nanos()).unwrap_or(u64::MAX),
        _ => return ENOTSUP,
    };
    if write_u64(&mut caller, out, now) {
        SUCCESS
    } else {
        EFAULT
    }
}

fn random_get(mut caller: Cx<'_>, buf: i32, len: i32) -> i32 {
    // Reproducible runs matter more here than entropy.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let bytes: Vec<u8> = (0..len.max(0))
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    if write(&mut caller, buf, &bytes) {
        SUCCESS
    } else {
        EFAULT
    }
}

fn zero_sizes(mut caller: Cx<'_>, count: i32, size: i32) -> i32 {
    if write_u32(&mut caller, count, 0) && write_u32(&mut caller, size, 0) {
        SUCCESS
    } else {
        EFAULT
    }
}
