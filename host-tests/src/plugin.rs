//! A compiled filter: the wasmtime engine (fuel metering and symbolicated backtraces on) and
//! the module. Compile once, start many hosts from it (it is cheap to clone and thread-safe).

use std::path::Path;

use wasmtime::{Config, Engine, Module, WasmBacktraceDetails};

use crate::error::{HostError, Result};

#[derive(Clone)]
pub struct Plugin {
    pub(crate) engine: Engine,
    pub(crate) module: Module,
}

impl Plugin {
    /// Compiles a `.wasm` file (or `.wat` text).
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| HostError::Load(format!("{}: {e}", path.display())))?;
        Self::from_bytes(&bytes)
    }

    /// Compiles wasm bytes or WAT text (handy for small hand-written test modules).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let mut config = Config::new();
        config.consume_fuel(true);
        // file:line frames in trap messages when the module carries DWARF.
        config.wasm_backtrace_details(WasmBacktraceDetails::Enable);
        let engine = Engine::new(&config).map_err(|e| HostError::Load(format!("{e:?}")))?;
        let module = Module::new(&engine, bytes).map_err(|e| HostError::Load(format!("{e:?}")))?;
        Ok(Self { engine, module })
    }

    /// Names of the functions the module imports, as `module.name`.
    pub fn imports(&self) -> Vec<String> {
        self.module.imports().map(|i| format!("{}.{}", i.module(), i.name())).collect()
    }
}
