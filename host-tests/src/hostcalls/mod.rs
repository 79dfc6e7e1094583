//! The host functions (imports) a proxy-wasm network filter calls, one file per area.

pub(crate) mod buffers;
pub(crate) mod log;
pub(crate) mod memory;
pub(crate) mod metrics;
pub(crate) mod properties;
pub(crate) mod shared_data;
pub(crate) mod streams;
pub(crate) mod stubs;
pub(crate) mod time;
pub(crate) mod wasi;

use wasmtime::Linker;

use crate::vm::state::VmState;

/// Defines every implemented import; the rest are stubbed per module at instantiation.
pub(crate) fn add_all(linker: &mut Linker<VmState>) -> wasmtime::Result<()> {
    log::add(linker)?;
    time::add(linker)?;
    buffers::add(linker)?;
    streams::add(linker)?;
    properties::add(linker)?;
    metrics::add(linker)?;
    shared_data::add(linker)?;
    wasi::add(linker)?;
    Ok(())
}
