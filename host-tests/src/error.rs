//! Everything that can go wrong while driving a filter. A trap carries the wasm backtrace and the
//! filter's last log lines (the SDK logs a panic's message at Critical just before it traps).

use std::fmt;

use crate::observe::{ConnId, LogLine};

#[derive(Debug)]
pub enum HostError {
    /// The module could not be read, compiled, linked or is not a proxy-wasm module.
    Load(String),
    /// `proxy_on_vm_start` returned false.
    VmStartFailed {
        logs: Vec<LogLine>,
    },
    /// `proxy_on_configure` returned false: Envoy refuses the configuration. `logs` holds
    /// what the filter said, which is what an operator would see.
    ConfigRejected {
        logs: Vec<LogLine>,
    },
    /// The filter trapped (a Rust panic ends in `unreachable`) or ran out of fuel. Envoy marks
    /// the VM failed: every connection on that worker loses the filter.
    Trap {
        worker: usize,
        callback: String,
        context_id: u32,
        /// Wasmtime's message with the wasm backtrace (function names, file:line with debug info).
        backtrace: String,
        /// The filter's log lines at Error and above, newest last (the panic message is here).
        last_logs: Vec<LogLine>,
    },
    /// An earlier trap failed this worker's VM.
    VmFailed {
        worker: usize,
    },
    /// The test asked for something the model cannot do (unknown connection, send after close...).
    Usage(String),
    UnknownConnection(ConnId),
}

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Load(msg) => write!(f, "cannot load the wasm module: {msg}"),
            Self::VmStartFailed { logs } => {
                write!(f, "proxy_on_vm_start returned false")?;
                write_logs(f, logs)
            }
            Self::ConfigRejected { logs } => {
                write!(f, "proxy_on_configure returned false (configuration rejected)")?;
                write_logs(f, logs)
            }
            Self::Trap { worker, callback, context_id, backtrace, last_logs } => {
                write!(f, "the filter trapped in {callback}(context {context_id}) on worker {worker}")?;
                write_logs(f, last_logs)?;
                write!(f, "\n{backtrace}")
            }
            Self::VmFailed { worker } => write!(f, "worker {worker}'s VM failed earlier (trap)"),
            Self::Usage(msg) => write!(f, "{msg}"),
            Self::UnknownConnection(id) => write!(f, "no connection {}", id.0),
        }
    }
}

fn write_logs(f: &mut fmt::Formatter<'_>, logs: &[LogLine]) -> fmt::Result {
    for line in logs {
        write!(f, "\n  [{:?}] {}", line.level, line.text)?;
    }
    Ok(())
}

impl std::error::Error for HostError {}

pub type Result<T, E = HostError> = std::result::Result<T, E>;
