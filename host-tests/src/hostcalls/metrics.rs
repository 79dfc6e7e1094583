//! `proxy_define_metric` and friends with Envoy's semantics (`Context::defineMetric` etc.):
//! stats are named `wasmcustom.<name>` and shared by every worker; ids are per VM, with the kind
//! in the low two bits; a counter cannot be incremented by <= 0; a gauge can go down;
//! `record` adds to a counter, sets a gauge, samples a histogram; a histogram cannot be read.

use wasmtime::Linker;

use super::memory::{read, write_u32, write_u64, Cx};
use crate::abi::{MetricType, Status};
use crate::observe::MetricValue;
use crate::vm::state::VmState;

pub(crate) fn add(linker: &mut Linker<VmState>) -> wasmtime::Result<()> {
    linker.func_wrap("env", "proxy_define_metric", proxy_define_metric)?;
    linker.func_wrap("env", "proxy_increment_metric", proxy_increment_metric)?;
    linker.func_wrap("env", "proxy_record_metric", proxy_record_metric)?;
    linker.func_wrap("env", "proxy_get_metric", proxy_get_metric)?;
    Ok(())
}

/// The `/stats` name of a metric a filter defines.
pub fn stat_name(name: &str) -> String {
    format!("wasmcustom.{name}")
}

fn proxy_define_metric(mut caller: Cx<'_>, kind: i32, name_ptr: i32, name_len: i32, id_ptr: i32) -> i32 {
    let Some(kind) = MetricType::from_raw(kind as u32) else {
        caller.data().fault("proxy_define_metric", Status::BadArgument, format!("metric type {kind}"));
        return Status::BadArgument.code();
    };
    let Some(name) = read(&mut caller, name_ptr, name_len) else {
        return Status::InvalidMemoryAccess.code();
    };
    let stat = stat_name(&String::from_utf8_lossy(&name));
    let state = caller.data_mut();
    state.shared.lock().define_metric(kind, &stat);
    let id = state.alloc_metric_id(kind);
    state.metric_ids.insert(id, (kind, stat));
    if write_u32(&mut caller, id_ptr, id) {
        Status::Ok.code()
    } else {
        Status::InvalidMemoryAccess.code()
    }
}

fn kind_of(id: i32) -> Option<MetricType> {
    MetricType::from_raw(id as u32 & 0x3)
}

fn proxy_increment_metric(caller: Cx<'_>, id: i32, offset: i64) -> i32 {
    const CALL: &str = "proxy_increment_metric";
    let state = caller.data();
    let Some(kind) = kind_of(id).filter(|k| *k != MetricType::Histogram) else {
        state.fault(CALL, Status::BadArgument, format!("metric {id} is not a counter or gauge"));
        return Status::BadArgument.code();
    };
    let Some((_, stat)) = state.metric_ids.get(&(id as u32)) else {
        return Status::NotFound.code();
    };
    if kind == MetricType::Counter && offset <= 0 {
        state.fault(CALL, Status::BadArgument, format!("counter {stat} incremented by {offset}"));
        return Status::BadArgument.code();
    }
    let mut shared = state.shared.lock();
    let underflow = match shared.metrics.get_mut(stat) {
        Some(MetricValue::Counter(v)) => {
            *v = v.wrapping_add(offset.unsigned_abs());
            false
        }
        Some(MetricValue::Gauge(v)) if offset >= 0 => {
            *v = v.wrapping_add(offset.unsigned_abs());
            false
        }
        Some(MetricValue::Gauge(v)) => {
            let (value, underflow) = v.overflowing_sub(offset.unsigned_abs());
            *v = value;
            underflow
        }
        _ => false,
    };
    if underflow {
        // Envoy asserts in debug builds; in release the gauge wraps to a huge value.
        let detail = format!("gauge {stat} went below zero");
        shared.fault(state.worker, state.acting_context(), CALL, Status::Ok, detail);
    }
    Status::Ok.code()
}

fn proxy_record_metric(caller: Cx<'_>, id: i32, value: i64) -> i32 {
    let state = caller.data();
    let Some((_, stat)) = state.metric_ids.get(&(id as u32)) else {
        return Status::NotFound.code();
    };
    let value = value as u64;
    match state.shared.lock().metrics.get_mut(stat) {
        Some(MetricValue::Counter(v)) => *v = v.wrapping_add(value),
        Some(MetricValue::Gauge(v)) => *v = value,
        Some(MetricValue::Histogram(samples)) => samples.push(value),
        None => return Status::NotFound.code(),
    }
    Status::Ok.code()
}

fn proxy_get_metric(mut caller: Cx<'_>, id: i32, out: i32) -> i32 {
    let state = caller.data();
    if kind_of(id).is_none_or(|k| k == MetricType::Histogram) {
        state.fault("proxy_get_metric", Status::BadArgument, format!("metric {id} is not a counter or gauge"));
        return Status::BadArgument.code();
    }
    let Some((_, stat)) = state.metric_ids.get(&(id as u32)) else {
        return Status::NotFound.code();
    };
    let value = match state.shared.lock().metrics.get(stat) {
        Some(MetricValue::Counter(v)) | Some(MetricValue::Gauge(v)) => *v,
        _ => return Status::NotFound.code(),
    };
    if write_u64(&mut caller, out, value) {
        Status::Ok.code()
    } else {
        Status::InvalidMemoryAccess.code()
    }
}
