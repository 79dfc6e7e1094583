//! Calling into the filter the way proxy-wasm-cpp-host does: after the VM call returns, run the
//! actions the filter deferred (continue, close) in FIFO order, then re-arm the tick if asked.

use super::Host;
use crate::error::Result;
use crate::observe::CallbackEvent;
use crate::vm::state::{AfterCall, ContextKind};
use crate::vm::Callback;

impl Host {
    /// One callback plus everything Envoy does right after it. Returns the callback's result
    /// (None when the module does not export it).
    pub(crate) fn call_filter(&mut self, worker: usize, callback: Callback) -> Result<Option<i32>> {
        let record = self.options.record_callbacks;
        let conn = match self.worker(worker)?.vm.store.data().contexts.get(&callback.context()) {
            Some(ContextKind::Stream(id)) => Some(*id),
            _ => None,
        };
        let returned = self.worker_mut(worker)?.vm.call(callback)?;
        // A callback the module does not export was not made: nothing to record.
        if let (true, Some(id), true) = (record, conn, returned.is_some()) {
            let at = self.now();
            let event = CallbackEvent {
                at,
                callback: callback.name(),
                args: callback.args(),
                returned: returned.map(i64::from),
            };
            self.conn_mut(id)?.callbacks.push(event);
        }
        self.apply_tick_request(worker)?;
        self.run_after_call_actions(worker)?;
        Ok(returned)
    }

    /// Envoy's `doAfterVmCallActions`: a per-VM queue drained by whichever call returns; an
    /// action that calls into the VM again drains the rest of the queue itself.
    fn run_after_call_actions(&mut self, worker: usize) -> Result<()> {
        while let Some(action) = self.vm_state_mut(worker)?.actions.pop_front() {
            match action {
                AfterCall::ContinueReading(id) => self.continue_reading(id)?,
                AfterCall::Close(id, cause) => self.close_downstream(id, cause, crate::abi::PeerType::Local)?,
            }
        }
        Ok(())
    }
}
