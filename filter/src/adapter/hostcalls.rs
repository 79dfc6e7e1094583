//! The few proxy-wasm host calls the filter makes, with every status handled.
//!
//! The SDK's wrappers (`set_buffer`, `resume_downstream`, `close_downstream`, `get_property`, ...) panic on a
//! status they do not expect, and a panic traps the VM: every connection on the worker loses the filter.
//! Envoy does return such statuses (BadArgument for a buffer that is gone, Unimplemented = 12, which the SDK's
//! `Status` enum cannot even represent), so these imports return the raw number and callers decide.

use std::ptr::null_mut;

/// `WasmResult::Ok`.
pub const OK: u32 = 0;

const DOWNSTREAM_DATA: u32 = 2;
const UPSTREAM_DATA: u32 = 3;
const PLUGIN_CONFIGURATION: u32 = 7;
const STREAM_DOWNSTREAM: u32 = 2;
const METRIC_COUNTER: u32 = 0;
const METRIC_GAUGE: u32 = 1;

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_get_buffer_bytes(buffer: u32, start: usize, max: usize, data: *mut *mut u8, size: *mut usize) -> u32;
    fn proxy_set_buffer_bytes(buffer: u32, start: usize, size: usize, data: *const u8, data_size: usize) -> u32;
    fn proxy_continue_stream(stream: u32) -> u32;
    fn proxy_close_stream(stream: u32) -> u32;
    fn proxy_set_effective_context(context_id: u32) -> u32;
    fn proxy_get_property(path: *const u8, path_size: usize, data: *mut *mut u8, size: *mut usize) -> u32;
    fn proxy_get_current_time_nanoseconds(time: *mut u64) -> u32;
    fn proxy_set_tick_period_milliseconds(period: u32) -> u32;
    fn proxy_define_metric(kind: u32, name: *const u8, name_size: usize, id: *mut u32) -> u32;
    fn proxy_increment_metric(id: u32, offset: i64) -> u32;
}

/// Takes ownership of bytes the host allocated in our memory through `proxy_on_memory_allocate`.
fn take_host_bytes(data: *mut u8, size: usize) -> Vec<u8> {
    if data.is_null() || size == 0 {
        return Vec::new();
    }
    // SAFETY: the host allocated exactly `size` bytes with the SDK's `proxy_on_memory_allocate` (a boxed
    // slice of that length) and hands them over to us.
    unsafe { Vec::from_raw_parts(data, size, size) }
}

fn get_buffer(buffer: u32, start: usize, max: usize) -> Result<Vec<u8>, u32> {
    let mut data = null_mut();
    let mut size = 0;
    // SAFETY: plain host call with valid out-pointers.
    let status = unsafe { proxy_get_buffer_bytes(buffer, start, max, &mut data, &mut size) };
    match status {
        OK => Ok(take_host_bytes(data, size)),
        other => Err(other),
    }
}

/// The client's bytes of the current `on_downstream_data` call.
pub fn downstream_data(size: usize) -> Result<Vec<u8>, u32> {
    get_buffer(DOWNSTREAM_DATA, 0, size)
}

/// The upstream's bytes of the current `on_upstream_data` call.
pub fn upstream_data(size: usize) -> Result<Vec<u8>, u32> {
    get_buffer(UPSTREAM_DATA, 0, size)
}

pub fn plugin_configuration() -> Result<Vec<u8>, u32> {
    get_buffer(PLUGIN_CONFIGURATION, 0, usize::MAX)
}

/// Replaces the first `len` bytes of the upstream chunk (the whole chunk: Envoy edits no middle).
pub fn replace_upstream_data(len: usize, bytes: &[u8]) -> u32 {
    // SAFETY: `bytes` is a valid slice for the duration of the call; the host copies it.
    unsafe { proxy_set_buffer_bytes(UPSTREAM_DATA, 0, len, bytes.as_ptr(), bytes.len()) }
}

/// Appends to the client's read buffer (a start at or past its end appends, in Envoy).
pub fn append_downstream_data(bytes: &[u8]) -> u32 {
    // SAFETY: as above.
    unsafe { proxy_set_buffer_bytes(DOWNSTREAM_DATA, usize::MAX, 0, bytes.as_ptr(), bytes.len()) }
}

/// Lets the client's read buffer through the rest of the filter chain (deferred by Envoy until the VM
/// call returns).
pub fn continue_downstream() -> u32 {
    // SAFETY: plain host call.
    unsafe { proxy_continue_stream(STREAM_DOWNSTREAM) }
}

/// Closes the connection (Envoy closes the client side with FlushWrite; tcp_proxy then the upstream).
pub fn close_downstream() -> u32 {
    // SAFETY: plain host call.
    unsafe { proxy_close_stream(STREAM_DOWNSTREAM) }
}

/// Makes later calls act on connection `context_id` (from the root context, on a tick).
pub fn set_effective_context(context_id: u32) -> u32 {
    // SAFETY: plain host call.
    unsafe { proxy_set_effective_context(context_id) }
}

/// A property of the effective context, e.g. `["upstream", "address"]`; `None` if absent or refused.
pub fn property(path: &[&str]) -> Option<Vec<u8>> {
    // The ABI's path encoding: each segment followed by a NUL byte.
    let mut encoded = Vec::new();
    for segment in path {
        encoded.extend_from_slice(segment.as_bytes());
        encoded.push(0);
    }
    let mut data = null_mut();
    let mut size = 0;
    // SAFETY: valid input slice and out-pointers.
    let status = unsafe { proxy_get_property(encoded.as_ptr(), encoded.len(), &mut data, &mut size) };
    (status == OK).then(|| take_host_bytes(data, size))
}

/// The host's clock in nanoseconds (0 if the host refuses, which Envoy never does).
pub fn now_nanos() -> u64 {
    let mut t = 0u64;
    // SAFETY: valid out-pointer.
    let status = unsafe { proxy_get_current_time_nanoseconds(&mut t) };
    if status == OK {
        t
    } else {
        0
    }
}

pub fn set_tick_period_millis(ms: u32) -> u32 {
    // SAFETY: plain host call.
    unsafe { proxy_set_tick_period_milliseconds(ms) }
}

pub fn define_metric(gauge: bool, name: &str) -> Result<u32, u32> {
    let kind = if gauge { METRIC_GAUGE } else { METRIC_COUNTER };
    let mut id = 0;
    // SAFETY: valid name slice and out-pointer.
    let status = unsafe { proxy_define_metric(kind, name.as_ptr(), name.len(), &mut id) };
    if status == OK {
        Ok(id)
    } else {
        Err(status)
    }
}

pub fn increment_metric(id: u32, offset: i64) -> u32 {
    // SAFETY: plain host call.
    unsafe { proxy_increment_metric(id, offset) }
}
