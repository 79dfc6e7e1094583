//! The simulated clock (`proxy_get_current_time_nanoseconds`) and the root tick period.

use wasmtime::Linker;

use super::memory::{write_u64, Cx};
use crate::abi::Status;
use crate::vm::state::VmState;

pub(crate) fn add(linker: &mut Linker<VmState>) -> wasmtime::Result<()> {
    linker.func_wrap("env", "proxy_get_current_time_nanoseconds", proxy_get_current_time_nanoseconds)?;
    linker.func_wrap("env", "proxy_set_tick_period_milliseconds", proxy_set_tick_period_milliseconds)?;
    Ok(())
}

/// Wall-clock nanoseconds: the configured start plus simulated time.
pub(crate) fn now_unix_nanos(state: &VmState) -> u64 {
    let now = state.shared.lock().now;
    let since_start = u64::try_from(now.as_nanos()).unwrap_or(u64::MAX);
    state.options.start_unix_nanos.saturating_add(since_start)
}

fn proxy_get_current_time_nanoseconds(mut caller: Cx<'_>, out: i32) -> i32 {
    let now = now_unix_nanos(caller.data());
    if write_u64(&mut caller, out, now) {
        Status::Ok.code()
    } else {
        Status::InvalidMemoryAccess.code()
    }
}

/// Envoy sets the timer of the root context whichever context calls; 0 stops it. The host
/// re-arms its timer when the current VM call returns (time does not move inside a call).
fn proxy_set_tick_period_milliseconds(mut caller: Cx<'_>, period_ms: i32) -> i32 {
    caller.data_mut().tick_request = Some(period_ms as u32);
    Status::Ok.code()
}
