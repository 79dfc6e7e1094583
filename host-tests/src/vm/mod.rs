//! One worker's VM: a wasmtime store and instance of the filter, the callbacks it exports, and
//! calls into it that meter fuel and turn a trap into an error carrying the wasm backtrace.

pub(crate) mod state;

use std::collections::HashMap;

use wasmtime::{ExternType, Instance, Linker, Store, TypedFunc, WasmParams, WasmResults};

use crate::error::{HostError, Result};
use crate::hostcalls;
use crate::plugin::Plugin;
use state::VmState;

/// A callback into the filter, with its arguments.
#[derive(Copy, Clone, Debug)]
pub(crate) enum Callback {
    ContextCreate { context: u32, parent: u32 },
    VmStart { context: u32, size: u32 },
    Configure { context: u32, size: u32 },
    Tick { context: u32 },
    NewConnection { context: u32 },
    DownstreamData { context: u32, size: u32, end_of_stream: bool },
    UpstreamData { context: u32, size: u32, end_of_stream: bool },
    DownstreamConnectionClose { context: u32, peer: u32 },
    UpstreamConnectionClose { context: u32, peer: u32 },
    Done { context: u32 },
    Log { context: u32 },
    Delete { context: u32 },
}

impl Callback {
    pub fn name(&self) -> &'static str {
        match self {
            Self::ContextCreate { .. } => "proxy_on_context_create",
            Self::VmStart { .. } => "proxy_on_vm_start",
            Self::Configure { .. } => "proxy_on_configure",
            Self::Tick { .. } => "proxy_on_tick",
            Self::NewConnection { .. } => "proxy_on_new_connection",
            Self::DownstreamData { .. } => "proxy_on_downstream_data",
            Self::UpstreamData { .. } => "proxy_on_upstream_data",
            Self::DownstreamConnectionClose { .. } => "proxy_on_downstream_connection_close",
            Self::UpstreamConnectionClose { .. } => "proxy_on_upstream_connection_close",
            Self::Done { .. } => "proxy_on_done",
            Self::Log { .. } => "proxy_on_log",
            Self::Delete { .. } => "proxy_on_delete",
        }
    }

    pub fn context(&self) -> u32 {
        match *self {
            Self::ContextCreate { context, .. }
            | Self::VmStart { context, .. }
            | Self::Configure { context, .. }
            | Self::Tick { context }
            | Self::NewConnection { context }
            | Self::DownstreamData { context, .. }
            | Self::UpstreamData { context, .. }
            | Self::DownstreamConnectionClose { context, .. }
            | Self::UpstreamConnectionClose { context, .. }
            | Self::Done { context }
            | Self::Log { context }
            | Self::Delete { context } => context,
        }
    }

    /// The arguments after the context id, for the callback record.
    pub fn args(&self) -> Vec<i64> {
        match *self {
            Self::ContextCreate { parent, .. } => vec![i64::from(parent)],
            Self::VmStart { size, .. } | Self::Configure { size, .. } => vec![i64::from(size)],
            Self::DownstreamData { size, end_of_stream, .. } | Self::UpstreamData { size, end_of_stream, .. } => {
                vec![i64::from(size), i64::from(end_of_stream)]
            }
            Self::DownstreamConnectionClose { peer, .. } | Self::UpstreamConnectionClose { peer, .. } => {
                vec![i64::from(peer)]
            }
            _ => Vec::new(),
        }
    }
}

type F1 = TypedFunc<i32, ()>;
type F1R = TypedFunc<i32, i32>;
type F2 = TypedFunc<(i32, i32), ()>;
type F2R = TypedFunc<(i32, i32), i32>;
type F3R = TypedFunc<(i32, i32, i32), i32>;

/// The callbacks the module exports; a missing one behaves as Envoy does (no call, default answer).
struct Exports {
    on_context_create: Option<F2>,
    on_vm_start: Option<F2R>,
    on_configure: Option<F2R>,
    on_tick: Option<F1>,
    on_new_connection: Option<F1R>,
    on_downstream_data: Option<F3R>,
    on_upstream_data: Option<F3R>,
    on_downstream_connection_close: Option<F2>,
    on_upstream_connection_close: Option<F2>,
    on_done: Option<F1R>,
    on_log: Option<F1>,
    on_delete: Option<F1>,
}

pub(crate) struct Vm {
    pub store: Store<VmState>,
    exports: Exports,
    pub failed: bool,
    /// Fuel the last call of each callback burned.
    pub last_fuel: HashMap<&'static str, u64>,
}

fn typed<P: WasmParams, R: WasmResults>(
    instance: &Instance,
    store: &mut Store<VmState>,
    name: &str,
) -> Result<Option<TypedFunc<P, R>>> {
    match instance.get_func(&mut *store, name) {
        None => Ok(None),
        Some(func) => func
            .typed::<P, R>(&*store)
            .map(Some)
            .map_err(|e| HostError::Load(format!("export {name} has an unexpected signature: {e}"))),
    }
}

impl Vm {
    pub fn instantiate(plugin: &Plugin, state: VmState) -> Result<Self> {
        let load = |e: wasmtime::Error| HostError::Load(format!("{e:?}"));
        let mut linker = Linker::new(&plugin.engine);
        hostcalls::add_all(&mut linker).map_err(load)?;
        let mut store = Store::new(&plugin.engine, state);
        for import in plugin.module.imports() {
            if linker.get_by_import(&mut store, &import).is_some() {
                continue;
            }
            match import.ty() {
                ExternType::Func(ty) => {
                    hostcalls::stubs::add(&mut linker, import.module(), import.name(), ty).map_err(load)?
                }
                other => {
                    return Err(HostError::Load(format!(
                        "the module imports {}.{} ({other:?}), which the host does not provide",
                        import.module(),
                        import.name()
                    )))
                }
            }
        }
        store.set_fuel(store.data().options.fuel_per_call).map_err(load)?;
        let instance = linker.instantiate(&mut store, &plugin.module).map_err(load)?;
        if ["proxy_abi_version_0_2_1", "proxy_abi_version_0_2_0"]
            .iter()
            .all(|abi| instance.get_export(&mut store, abi).is_none())
        {
            return Err(HostError::Load("not a proxy-wasm 0.2.x module (no proxy_abi_version_0_2_* export)".into()));
        }
        let memory = instance.get_memory(&mut store, "memory");
        let malloc = match typed::<i32, i32>(&instance, &mut store, "proxy_on_memory_allocate")? {
            Some(f) => Some(f),
            None => typed::<i32, i32>(&instance, &mut store, "malloc")?,
        };
        store.data_mut().memory = memory;
        store.data_mut().malloc = malloc;
        let exports = Exports {
            on_context_create: typed(&instance, &mut store, "proxy_on_context_create")?,
            on_vm_start: typed(&instance, &mut store, "proxy_on_vm_start")?,
            on_configure: typed(&instance, &mut store, "proxy_on_configure")?,
            on_tick: typed(&instance, &mut store, "proxy_on_tick")?,
            on_new_connection: typed(&instance, &mut store, "proxy_on_new_connection")?,
            on_downstream_data: typed(&instance, &mut store, "proxy_on_downstream_data")?,
            on_upstream_data: typed(&instance, &mut store, "proxy_on_upstream_data")?,
            on_downstream_connection_close: typed(&instance, &mut store, "proxy_on_downstream_connection_close")?,
            on_upstream_connection_close: typed(&instance, &mut store, "proxy_on_upstream_connection_close")?,
            on_done: typed(&instance, &mut store, "proxy_on_done")?,
            on_log: typed(&instance, &mut store, "proxy_on_log")?,
            on_delete: typed(&instance, &mut store, "proxy_on_delete")?,
        };
        let mut vm = Self { store, exports, failed: false, last_fuel: HashMap::new() };
        // Reactor modules (wasip1) initialise in `_initialize`; commands in `_start`.
        for init in ["_initialize", "_start"] {
            if let Some(f) = typed::<(), ()>(&instance, &mut vm.store, init)? {
                vm.invoke(init, 0, |store| f.call(store, ()))?;
                break;
            }
        }
        Ok(vm)
    }

    /// Calls the callback; None when the module does not export it.
    pub fn call(&mut self, callback: Callback) -> Result<Option<i32>> {
        let e = &self.exports;
        let ctx = callback.context() as i32;
        let name = callback.name();
        macro_rules! run {
            ($f:expr, $args:expr) => {
                match $f {
                    None => Ok(None),
                    Some(f) => {
                        let f = f.clone();
                        self.invoke(name, callback.context(), move |store| f.call(store, $args))
                            .map(|r| Some(r.into_i32()))
                    }
                }
            };
        }
        match callback {
            Callback::ContextCreate { parent, .. } => run!(&e.on_context_create, (ctx, parent as i32)),
            Callback::VmStart { size, .. } => run!(&e.on_vm_start, (ctx, size as i32)),
            Callback::Configure { size, .. } => run!(&e.on_configure, (ctx, size as i32)),
            Callback::Tick { .. } => run!(&e.on_tick, ctx),
            Callback::NewConnection { .. } => run!(&e.on_new_connection, ctx),
            Callback::DownstreamData { size, end_of_stream, .. } => {
                run!(&e.on_downstream_data, (ctx, size as i32, i32::from(end_of_stream)))
            }
            Callback::UpstreamData { size, end_of_stream, .. } => {
                run!(&e.on_upstream_data, (ctx, size as i32, i32::from(end_of_stream)))
            }
            Callback::DownstreamConnectionClose { peer, .. } => {
                run!(&e.on_downstream_connection_close, (ctx, peer as i32))
            }
            Callback::UpstreamConnectionClose { peer, .. } => run!(&e.on_upstream_connection_close, (ctx, peer as i32)),
            Callback::Done { .. } => run!(&e.on_done, ctx),
            Callback::Log { .. } => run!(&e.on_log, ctx),
            Callback::Delete { .. } => run!(&e.on_delete, ctx),
        }
    }

    /// Enters the VM for `context`: fresh effective context, a full fuel tank, and on a trap an
    /// error with the backtrace (the VM is then failed, as Envoy fails it).
    fn invoke<R>(
        &mut self,
        name: &'static str,
        context: u32,
        f: impl FnOnce(&mut Store<VmState>) -> wasmtime::Result<R>,
    ) -> Result<R> {
        let worker = self.store.data().worker;
        if self.failed {
            return Err(HostError::VmFailed { worker });
        }
        let budget = self.store.data().options.fuel_per_call;
        let data = self.store.data_mut();
        let saved = (data.current_context, data.effective_context.take());
        data.current_context = context;
        let result = self.store.set_fuel(budget).and_then(|()| f(&mut self.store));
        let left = self.store.get_fuel().unwrap_or(0);
        self.last_fuel.insert(name, budget.saturating_sub(left));
        let data = self.store.data_mut();
        data.current_context = saved.0;
        data.effective_context = saved.1;
        result.map_err(|e| {
            self.failed = true;
            let shared = self.store.data().shared.lock();
            let mut last_logs: Vec<_> = shared
                .logs
                .iter()
                .rev()
                .filter(|l| l.worker == worker && l.level >= crate::abi::LogLevel::Error)
                .take(5)
                .cloned()
                .collect();
            last_logs.reverse();
            HostError::Trap {
                worker,
                callback: name.to_string(),
                context_id: context,
                backtrace: format!("{e:?}"),
                last_logs,
            }
        })
    }

    /// Current size of the VM's linear memory in bytes.
    pub fn memory_bytes(&self) -> usize {
        self.store.data().memory.map_or(0, |m| m.data_size(&self.store))
    }
}

/// Results of the callbacks as the i32 the host inspects (unit results become 0).
trait IntoI32 {
    fn into_i32(self) -> i32;
}

impl IntoI32 for () {
    fn into_i32(self) -> i32 {
        0
    }
}

impl IntoI32 for i32 {
    fn into_i32(self) -> i32 {
        self
    }
}
