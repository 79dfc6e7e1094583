//! Numbers of the proxy-wasm ABI 0.2.1 as the Rust SDK 0.2.5 (`src/types.rs`) and Envoy
//! (`proxy-wasm-cpp-host` `include/proxy-wasm/wasm_api_impl.h`) use them on the wire.

/// `WasmResult` as returned by every host call.
#[repr(u32)]
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    Ok = 0,
    NotFound = 1,
    BadArgument = 2,
    SerializationFailure = 3,
    ParseFailure = 4,
    BadExpression = 5,
    InvalidMemoryAccess = 6,
    Empty = 7,
    CasMismatch = 8,
    ResultMismatch = 9,
    InternalFailure = 10,
    BrokenConnection = 11,
    Unimplemented = 12,
}

impl Status {
    pub fn code(self) -> i32 {
        self as i32
    }
}

/// `proxy_get_buffer_bytes` / `proxy_set_buffer_bytes` buffer selector.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum BufferType {
    HttpRequestBody,
    HttpResponseBody,
    DownstreamData,
    UpstreamData,
    HttpCallResponseBody,
    GrpcReceiveBuffer,
    VmConfiguration,
    PluginConfiguration,
    CallData,
}

impl BufferType {
    /// `None` for a number above `WasmBufferType::MAX` (Envoy answers BadArgument).
    pub fn from_raw(raw: u32) -> Option<Self> {
        Some(match raw {
            0 => Self::HttpRequestBody,
            1 => Self::HttpResponseBody,
            2 => Self::DownstreamData,
            3 => Self::UpstreamData,
            4 => Self::HttpCallResponseBody,
            5 => Self::GrpcReceiveBuffer,
            6 => Self::VmConfiguration,
            7 => Self::PluginConfiguration,
            8 => Self::CallData,
            _ => return None,
        })
    }
}

/// `proxy_continue_stream` / `proxy_close_stream` selector.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum StreamType {
    HttpRequest,
    HttpResponse,
    Downstream,
    Upstream,
}

impl StreamType {
    pub fn from_raw(raw: u32) -> Option<Self> {
        Some(match raw {
            0 => Self::HttpRequest,
            1 => Self::HttpResponse,
            2 => Self::Downstream,
            3 => Self::Upstream,
            _ => return None,
        })
    }
}

/// `proxy_define_metric` kind. Envoy keeps the kind in the low two bits of the metric id.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum MetricType {
    Counter = 0,
    Gauge = 1,
    Histogram = 2,
}

impl MetricType {
    pub fn from_raw(raw: u32) -> Option<Self> {
        Some(match raw {
            0 => Self::Counter,
            1 => Self::Gauge,
            2 => Self::Histogram,
            _ => return None,
        })
    }
}

/// What a data or new-connection callback returns (`FilterStatus`).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    Continue,
    /// `StopIteration`: the chain stops at this filter.
    Pause,
}

impl Action {
    /// Envoy maps anything but 1 to Continue (`convertNetworkFilterStatus`).
    pub fn from_raw(raw: i32) -> Self {
        if raw == 1 {
            Self::Pause
        } else {
            Self::Continue
        }
    }
}

/// `proxy_log` level; Envoy rejects a level above Critical with BadArgument.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    Trace = 0,
    Debug = 1,
    Info = 2,
    Warn = 3,
    Error = 4,
    Critical = 5,
}

impl LogLevel {
    pub fn from_raw(raw: u32) -> Option<Self> {
        Some(match raw {
            0 => Self::Trace,
            1 => Self::Debug,
            2 => Self::Info,
            3 => Self::Warn,
            4 => Self::Error,
            5 => Self::Critical,
            _ => return None,
        })
    }
}

/// Which side closed, as passed to `proxy_on_{downstream,upstream}_connection_close`.
/// Envoy's `CloseType`: Local for a close Envoy initiated (the filter's close_stream,
/// tcp_proxy reacting to the upstream), Remote for the client going away; the upstream
/// close callback always gets Unknown because Envoy derives it from end_stream on the write path.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum PeerType {
    Unknown = 0,
    Local = 1,
    Remote = 2,
}
