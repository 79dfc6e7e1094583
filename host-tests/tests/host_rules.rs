//! The host itself against Envoy 1.40's measured behaviour, driven by the hand-written WAT probe
//! filter (`src/probe.wat`) whose first configuration byte picks what it does and which reports
//! the statuses it got as stats.

use std::sync::OnceLock;
use std::time::Duration;

use heartbeat_host_tests::testkit::TestHost;
use heartbeat_host_tests::{CloseCause, ConnectOptions, HostError, HostOptions, PeerType, Plugin, Status};

fn probe() -> &'static Plugin {
    static PLUGIN: OnceLock<Plugin> = OnceLock::new();
    PLUGIN.get_or_init(|| heartbeat_host_tests::probe::plugin().unwrap_or_else(|e| panic!("{e}")))
}

fn host(mode: &str) -> TestHost {
    TestHost::with_config(probe(), mode)
}

fn host_with(mode: &str, options: HostOptions) -> TestHost {
    TestHost::start(probe(), HostOptions { plugin_configuration: mode.into(), ..options })
}

const TICK: Duration = Duration::from_millis(100);

#[test]
fn pause_and_continue_forwards_at_once_while_the_buffer_stays_reachable() {
    let mut h = host("p");
    let c = h.connect();
    h.client_send(c, "hello");
    assert_eq!(h.upstream_received(c), b"hello", "the deferred continue ran after the callback");
    assert_eq!(h.metric_value("continue_status"), 0);
    assert_eq!(h.metric_value("len_after_continue"), 5, "inside the callback the buffer still holds the bytes");

    h.advance(TICK);
    assert_eq!(h.metric_value("st_tick_effective"), 0);
    assert_eq!(h.metric_value("st_tick_set"), 0, "append to the paused read buffer from the tick");
    assert_eq!(h.metric_value("st_tick_continue"), 0);
    assert_eq!(h.upstream_received(c), b"helloPING\r\n");
    assert_eq!(h.upstream_chunks(c).unwrap()[1].at, TICK);

    h.upstream_send(c, "PONG\r\nabc");
    assert_eq!(h.client_received(c), b"abc", "the filter removed the first 6 bytes");
    h.assert_no_faults();
}

#[test]
fn continue_clears_the_buffer_so_a_tick_cannot_write() {
    let mut h = host("c");
    let c = h.connect();
    h.client_send(c, "hi");
    h.advance(TICK);
    assert_eq!(h.metric_value("st_tick_set"), Status::BadArgument as u64);
    assert_eq!(h.upstream_received(c), b"hi");
    let faults = h.faults();
    assert!(faults.iter().any(|f| f.call == "proxy_set_buffer_bytes" && f.status == Status::BadArgument), "{faults:?}");
}

#[test]
fn pause_without_continue_keeps_bytes_in_the_read_buffer() {
    let mut h = host("h");
    let c = h.connect();
    h.client_send(c, "abc");
    assert_eq!(h.upstream_received(c), b"");
    assert_eq!(h.read_buffer_len(c).unwrap(), 3);
    h.client_send(c, "de");
    assert_eq!(h.metric_value("last_downstream_size"), 5, "the callback sees the whole read buffer");
    h.advance(TICK);
    assert_eq!(h.upstream_received(c), b"abcdePING\r\n");
    assert_eq!(h.read_buffer_len(c).unwrap(), 0, "tcp_proxy drained the buffer");
}

#[test]
fn set_buffer_prepends_replaces_appends_and_refuses_the_middle() {
    let mut h = host("s");
    let c = h.connect();
    h.client_send(c, "data");
    assert_eq!(h.metric_value("st_prepend"), 0);
    assert_eq!(h.metric_value("st_append"), 0);
    assert_eq!(h.metric_value("st_middle"), Status::BadArgument as u64);
    assert_eq!(h.metric_value("st_replace"), 0);
    assert_eq!(
        h.metric_value("st_upstream_buffer"),
        Status::BadArgument as u64,
        "no write-path buffer on the read path"
    );
    assert_eq!(h.upstream_received(c), b"[data>");
}

#[test]
fn continue_on_the_write_path_is_unimplemented() {
    let mut h = host("u");
    let c = h.connect();
    h.client_send(c, "x");
    assert_eq!(h.metric_value("st_continue_upstream"), Status::Unimplemented as u64);
    assert_eq!(h.upstream_received(c), b"x");
}

fn callback_names(h: &TestHost, c: heartbeat_host_tests::ConnId) -> Vec<&'static str> {
    h.callbacks(c).unwrap().iter().map(|e| e.callback).collect()
}

#[test]
fn close_from_a_tick_closes_the_client_then_the_upstream() {
    for (mode, cause) in [("x", CloseCause::FilterClosedDownstream), ("X", CloseCause::FilterClosedUpstream)] {
        let mut h = host(mode);
        let c = h.connect();
        h.upstream_send(c, "bye");
        h.advance(TICK);
        let closed = h.closed(c).expect("closed by the tick");
        assert_eq!((closed.at, closed.cause, closed.peer), (TICK, cause, PeerType::Local));
        assert_eq!(h.metric_value("st_close"), 0);
        assert_eq!(h.metric_value("close_peer"), PeerType::Local as u64);
        assert_eq!(h.client_received(c), b"bye", "FlushWrite: what was written reaches the client");
        assert_eq!(h.upstream_saw_close(c).unwrap(), Some(TICK));
        let names = callback_names(&h, c);
        assert_eq!(
            names[names.len() - 3..],
            ["proxy_on_downstream_connection_close", "proxy_on_done", "proxy_on_delete"],
            "{names:?}"
        );
        assert_eq!((h.metric_value("done"), h.metric_value("deleted")), (1, 1));
        assert!(matches!(h.0.client_send(c, b"late"), Err(HostError::Usage(_))));
        assert_eq!(h.open_connections(), 0);
    }
}

#[test]
fn ticks_fire_at_their_period_on_the_simulated_clock() {
    let mut h = host("c");
    let start_ms = HostOptions::default().start_unix_nanos / 1_000_000;
    h.advance(Duration::from_secs(1));
    assert_eq!(h.metric_value("ticks"), 10);
    assert_eq!(h.metric_value("tick_time_ms"), start_ms + 1000);
    h.advance(Duration::from_millis(50));
    assert_eq!(h.metric_value("ticks"), 10);
    h.advance(Duration::from_millis(50));
    assert_eq!(h.metric_value("ticks"), 11);
    assert_eq!(h.now(), Duration::from_millis(1100));
    assert_eq!(h.tick_period(0), Some(TICK));
}

#[test]
fn every_worker_has_its_root_tick_and_stats_are_shared_by_name() {
    let mut h = host_with("c", HostOptions::default().workers(2));
    let (a, b) = (h.connect(), h.connect());
    assert_eq!((h.worker_of(a).unwrap(), h.worker_of(b).unwrap()), (0, 1), "round-robin");
    assert_eq!(h.context_id(a).unwrap(), h.context_id(b).unwrap(), "context ids are per VM");
    h.advance(Duration::from_secs(1));
    assert_eq!(h.metric("wasmcustom.ticks"), Some(heartbeat_host_tests::MetricValue::Counter(20)));
}

#[test]
fn a_rejected_configuration_is_an_error_with_the_filters_words() {
    match TestHost::start_err(probe(), HostOptions::with_configuration("r")) {
        HostError::ConfigRejected { logs } => assert!(logs.iter().any(|l| l.text == "bad config: reject"), "{logs:?}"),
        other => panic!("expected ConfigRejected, got {other}"),
    }
}

#[test]
fn an_unimplemented_import_answers_12_and_is_recorded() {
    let mut h = host("i");
    h.advance(TICK);
    assert_eq!(h.metric_value("st_http_call"), Status::Unimplemented as u64);
    assert_eq!(h.unimplemented_calls(), ["env.proxy_http_call"]);
}

#[test]
fn a_trap_comes_back_with_the_wasm_backtrace_and_fails_the_vm() {
    let mut h = host("T");
    match h.0.advance(TICK) {
        Err(HostError::Trap { callback, backtrace, .. }) => {
            assert_eq!(callback, "proxy_on_tick");
            assert!(backtrace.contains("on_tick"), "{backtrace}");
        }
        other => panic!("expected a trap, got {other:?}"),
    }
    assert!(matches!(h.0.advance(TICK), Err(HostError::VmFailed { worker: 0 })));
}

#[test]
fn an_endless_loop_runs_out_of_fuel_instead_of_hanging() {
    let mut h = host_with("L", HostOptions { fuel_per_call: 1_000_000, ..HostOptions::default() });
    match h.0.advance(TICK) {
        Err(HostError::Trap { backtrace, .. }) => assert!(backtrace.contains("fuel"), "{backtrace}"),
        other => panic!("expected a trap, got {other:?}"),
    }
}

#[test]
fn properties_as_envoy_encodes_them() {
    let mut h = host("a");
    let c = h.connect();
    assert_eq!(h.metric_value("st_prop_upstream_at_new"), Status::NotFound as u64, "no upstream yet");
    h.client_send(c, "x");
    assert_eq!(h.metric_value("st_prop_upstream"), 0);
    assert_eq!(h.metric_value("prop_upstream_len"), "127.0.0.1:20000".len() as u64);
    assert_eq!(h.metric_value("st_prop_conn_id"), 0);
    assert_eq!(h.metric_value("prop_conn_id"), c.0, "8-byte little-endian connection id");
    assert_eq!(h.metric_value("st_prop_trailing_nul"), 0, "Envoy stops at the end: a trailing NUL is fine");
    assert_eq!(h.metric_value("st_prop_dotted"), Status::NotFound as u64, "paths are NUL-separated");
}

#[test]
fn client_bytes_wait_until_the_upstream_connects() {
    let mut h = host("c");
    let c = h.connect_with_delay(Duration::from_millis(250));
    h.client_send(c, "early");
    assert!(h.metric("last_downstream_size").is_none(), "the filter has not seen the bytes");
    assert!(!h.client_reading_enabled(c).unwrap());
    h.advance(Duration::from_millis(250));
    assert_eq!(h.upstream_received(c), b"early");
    let data = h.callbacks(c).unwrap().iter().find(|e| e.callback == "proxy_on_downstream_data").cloned().unwrap();
    assert_eq!((data.at, data.args.clone()), (Duration::from_millis(250), vec![5, 0]));
}

#[test]
fn a_failed_upstream_connect_closes_the_client() {
    let mut h = host("c");
    let c = h.connect_with(ConnectOptions { upstream_connect_fails: true, ..ConnectOptions::delay(TICK) });
    h.client_send(c, "lost");
    h.advance(TICK);
    let closed = h.closed(c).unwrap();
    assert_eq!((closed.cause, closed.peer), (CloseCause::UpstreamReset, PeerType::Local));
    assert_eq!(h.upstream_received(c), b"");
}

#[test]
fn upstream_fin_gives_end_of_stream_then_the_upstream_close_callback() {
    let mut h = host("c");
    let c = h.connect();
    h.upstream_send(c, "last");
    h.upstream_fin(c);
    let events = h.callbacks(c).unwrap();
    let tail: Vec<_> = events[events.len() - 2..].iter().map(|e| (e.callback, e.args.clone())).collect();
    assert_eq!(tail, [("proxy_on_upstream_data", vec![0, 1]), ("proxy_on_upstream_connection_close", vec![0])]);
    assert_eq!(h.client_received(c), b"last");
    assert_eq!(h.client_saw_fin(c).unwrap(), Some(Duration::ZERO));
    assert!(h.closed(c).is_none(), "half-closed: the client may still send");
    h.client_send(c, "more");
    h.client_fin(c);
    assert_eq!(h.upstream_received(c), b"more");
    let closed = h.closed(c).unwrap();
    assert_eq!((closed.cause, closed.peer), (CloseCause::BothHalfClosed, PeerType::Remote));
}

#[test]
fn client_fin_reaches_the_filter_and_the_upstream() {
    let mut h = host("c");
    let c = h.connect();
    h.client_send(c, "a");
    h.client_fin(c);
    assert_eq!(h.metric_value("last_downstream_eos"), 1);
    assert_eq!(h.upstream_saw_fin(c).unwrap(), Some(Duration::ZERO));
    assert!(h.closed(c).is_none());
    h.upstream_fin(c);
    let closed = h.closed(c).unwrap();
    assert_eq!((closed.cause, closed.peer), (CloseCause::BothHalfClosed, PeerType::Local));
    assert_eq!(h.metric_value("upstream_close"), 1);
}

#[test]
fn resets_close_the_client_without_an_upstream_close_callback() {
    let mut h = host("c");
    let (a, b) = (h.connect(), h.connect());
    h.client_reset(a);
    let closed = h.closed(a).unwrap();
    assert_eq!((closed.cause, closed.peer), (CloseCause::ClientReset, PeerType::Remote));
    assert_eq!(h.metric_value("close_peer"), PeerType::Remote as u64);
    assert!(h.upstream_saw_close(a).unwrap().is_some());
    h.upstream_reset(b);
    let closed = h.closed(b).unwrap();
    assert_eq!((closed.cause, closed.peer), (CloseCause::UpstreamReset, PeerType::Local));
    assert_eq!(h.metric_value("upstream_close"), 0, "a reset is not an end_stream");
}

#[test]
fn a_blocked_upstream_above_the_limit_stops_reading_the_client() {
    let mut h = host_with("c", HostOptions::default().upstream_buffer_limit(8));
    let c = h.connect();
    h.set_upstream_blocked(c, true);
    h.client_send(c, "0123456789");
    assert_eq!(h.upstream_received(c), b"");
    assert_eq!(h.upstream_buffered(c).unwrap(), 10);
    assert!(!h.client_reading_enabled(c).unwrap());
    h.client_send(c, "ab");
    assert_eq!(h.metric_value("last_downstream_size"), 10, "the filter has not seen \"ab\" yet");
    h.set_upstream_blocked(c, false);
    assert_eq!(h.upstream_received(c), b"0123456789ab");
    assert_eq!(h.metric_value("last_downstream_size"), 2);
}

#[test]
fn pause_on_the_write_path_is_a_fault_and_holds_the_bytes() {
    let mut h = host("q");
    let c = h.connect();
    h.upstream_send(c, "x");
    assert_eq!(h.client_received(c), b"");
    assert!(h.faults().iter().any(|f| f.call == "proxy_on_upstream_data"));
}

#[test]
fn closing_while_upstream_bytes_are_written_loses_them() {
    let mut h = host("Y");
    let c = h.connect();
    h.upstream_send(c, "data");
    assert_eq!(h.client_received(c), b"");
    assert_eq!(h.closed(c).unwrap().cause, CloseCause::FilterClosedDownstream);
}

#[test]
fn a_paused_new_connection_keeps_tcp_proxy_waiting() {
    let mut h = host("w");
    let c = h.connect();
    assert!(!h.upstream_connected(c).unwrap());
    h.client_send(c, "x");
    assert_eq!(h.upstream_received(c), b"");
    h.advance(TICK);
    assert!(h.upstream_connected(c).unwrap());
    assert_eq!(h.upstream_received(c), b"x");
}

#[test]
fn metrics_follow_envoys_rules() {
    let mut h = host("m");
    let c = h.connect();
    h.client_send(c, "x");
    let status = |name: &str| h.metric_value(name);
    assert_eq!(status("st_define_bad"), Status::BadArgument as u64);
    assert_eq!(status("st_counter_inc0"), Status::BadArgument as u64, "a counter only goes up");
    assert_eq!(status("st_counter_inc5"), 0);
    assert_eq!(status("st_counter_record"), 0);
    assert_eq!(status("m_counter_value"), 7, "record adds to a counter");
    assert_eq!(status("st_gauge_dec"), 0);
    assert_eq!(status("m_gauge_value"), 7, "record sets a gauge, increment moves it");
    assert_eq!(status("st_hist_record"), 0);
    assert_eq!(status("st_hist_get"), Status::BadArgument as u64);
    assert_eq!(status("st_hist_inc"), Status::BadArgument as u64);
    assert_eq!(status("st_unknown_metric"), Status::NotFound as u64);
    assert_eq!(h.metric("wasmcustom.m_hist"), Some(heartbeat_host_tests::MetricValue::Histogram(vec![42])));
}

#[test]
fn shared_data_has_compare_and_swap() {
    let mut h = host("d");
    let c = h.connect();
    h.client_send(c, "x");
    assert_eq!(h.metric_value("st_sd_get_missing"), Status::NotFound as u64);
    assert_eq!(h.metric_value("st_sd_set"), 0);
    assert_eq!((h.metric_value("st_sd_get"), h.metric_value("sd_len")), (0, 2));
    assert_eq!(h.metric_value("st_sd_set_stale"), Status::CasMismatch as u64);
    assert_eq!(h.metric_value("st_sd_set_cas"), 0);
    assert_eq!(h.metric_value("sd_len_after"), 3);
}
