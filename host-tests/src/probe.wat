;; A probe network filter for testing the host itself. The first byte of the plugin
;; configuration picks what it does; what it observes it reports as stats (status codes and
;; lengths as gauges), so a test can compare them with what Envoy answers.
(module
  (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
  (import "env" "proxy_get_buffer_bytes" (func $get_buffer (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_set_buffer_bytes" (func $set_buffer (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_continue_stream" (func $continue (param i32) (result i32)))
  (import "env" "proxy_close_stream" (func $close (param i32) (result i32)))
  (import "env" "proxy_set_effective_context" (func $set_effective (param i32) (result i32)))
  (import "env" "proxy_set_tick_period_milliseconds" (func $set_tick (param i32) (result i32)))
  (import "env" "proxy_get_current_time_nanoseconds" (func $now (param i32) (result i32)))
  (import "env" "proxy_define_metric" (func $define (param i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_record_metric" (func $record (param i32 i64) (result i32)))
  (import "env" "proxy_increment_metric" (func $increment (param i32 i64) (result i32)))
  (import "env" "proxy_get_property" (func $get_property (param i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_get_metric" (func $get_metric (param i32 i32) (result i32)))
  (import "env" "proxy_get_shared_data" (func $get_shared (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_set_shared_data" (func $set_shared (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_http_call" (func $http_call (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (global $heap (mut i32) (i32.const 65536))
  (global $mode (mut i32) (i32.const 0))
  (global $last_ctx (mut i32) (i32.const 0))
  ;; One PING per connection: the number of ticks in a window depends on the tick's phase.
  (global $injected (mut i32) (i32.const 0))

  (func (export "proxy_abi_version_0_2_1"))

  ;; Bump allocator: enough for short tests.
  (func (export "proxy_on_memory_allocate") (param $size i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $heap))
    (if (i32.gt_u (i32.add (local.get $p) (local.get $size)) (i32.mul (memory.size) (i32.const 65536)))
      (then (drop (memory.grow (i32.add (i32.shr_u (local.get $size) (i32.const 16)) (i32.const 1))))))
    (global.set $heap (i32.add (local.get $p) (local.get $size)))
    (local.get $p))

  ;; gauge <name> = value (defining again yields a new id for the same stat, as in Envoy)
  (func $gauge (param $name i32) (param $len i32) (param $value i64)
    (drop (call $define (i32.const 1) (local.get $name) (local.get $len) (i32.const 0)))
    (drop (call $record (i32.load (i32.const 0)) (local.get $value))))
  (func $count (param $name i32) (param $len i32)
    (drop (call $define (i32.const 0) (local.get $name) (local.get $len) (i32.const 0)))
    (drop (call $increment (i32.load (i32.const 0)) (i64.const 1))))

  (func (export "proxy_on_context_create") (param $ctx i32) (param $parent i32)
    (if (local.get $parent) (then (global.set $last_ctx (local.get $ctx)))))

  (func (export "proxy_on_vm_start") (param $ctx i32) (param $size i32) (result i32)
    (i32.const 1))

  (func (export "proxy_on_configure") (param $ctx i32) (param $size i32) (result i32)
    (drop (call $get_buffer (i32.const 7) (i32.const 0) (local.get $size) (i32.const 16) (i32.const 20)))
    (if (i32.eqz (i32.load (i32.const 16))) (then (return (i32.const 0))))
    (global.set $mode (i32.load8_u (i32.load (i32.const 16))))
    (if (i32.eq (global.get $mode) (i32.const 114)) ;; 'r'
      (then
        (drop (call $log (i32.const 4) @"bad config: reject"))
        (return (i32.const 0))))
    (drop (call $set_tick (i32.const 100)))
    (i32.const 1))

  (func (export "proxy_on_new_connection") (param $ctx i32) (result i32)
    (if (i32.eq (global.get $mode) (i32.const 97)) ;; 'a': properties before the upstream exists
      (then (call $gauge @"st_prop_upstream_at_new"
        (i64.extend_i32_u (call $get_property @"upstream\00address" (i32.const 24) (i32.const 28))))))
    (if (i32.eq (global.get $mode) (i32.const 119)) ;; 'w': pause until a tick continues
      (then (return (i32.const 1))))
    (i32.const 0))

  (func (export "proxy_on_downstream_data") (param $ctx i32) (param $size i32) (param $eos i32) (result i32)
    (call $gauge @"last_downstream_size" (i64.extend_i32_u (local.get $size)))
    (call $gauge @"last_downstream_eos" (i64.extend_i32_u (local.get $eos)))
    ;; 'p': the injection technique: continue (deferred) and pause
    (if (i32.eq (global.get $mode) (i32.const 112))
      (then
        (call $gauge @"continue_status" (i64.extend_i32_u (call $continue (i32.const 2))))
        (i32.store (i32.const 28) (i32.const 0))
        (drop (call $get_buffer (i32.const 2) (i32.const 0) (local.get $size) (i32.const 24) (i32.const 28)))
        (call $gauge @"len_after_continue" (i64.extend_i32_u (i32.load (i32.const 28))))
        (return (i32.const 1))))
    ;; 'h': pause without continue
    (if (i32.eq (global.get $mode) (i32.const 104)) (then (return (i32.const 1))))
    ;; 's': set-buffer rules, then Continue
    (if (i32.eq (global.get $mode) (i32.const 115))
      (then
        (call $gauge @"st_prepend" (i64.extend_i32_u (call $set_buffer (i32.const 2) (i32.const 0) (i32.const 0) @"<")))
        (call $gauge @"st_append" (i64.extend_i32_u (call $set_buffer (i32.const 2) (i32.add (local.get $size) (i32.const 1)) (i32.const 0) @">")))
        (call $gauge @"st_middle" (i64.extend_i32_u (call $set_buffer (i32.const 2) (i32.const 1) (i32.const 0) @"|")))
        (call $gauge @"st_replace" (i64.extend_i32_u (call $set_buffer (i32.const 2) (i32.const 0) (i32.const 1) @"[")))
        (call $gauge @"st_upstream_buffer" (i64.extend_i32_u (call $set_buffer (i32.const 3) (i32.const 0) (i32.const 0) @"x")))
        (return (i32.const 0))))
    ;; 'u': continue on the write path
    (if (i32.eq (global.get $mode) (i32.const 117))
      (then (call $gauge @"st_continue_upstream" (i64.extend_i32_u (call $continue (i32.const 3))))))
    ;; 'm': metric rules
    (if (i32.eq (global.get $mode) (i32.const 109))
      (then
        (call $gauge @"st_define_bad" (i64.extend_i32_u (call $define (i32.const 3) @"m_bad" (i32.const 48))))
        (drop (call $define (i32.const 0) @"m_counter" (i32.const 48)))
        (call $gauge @"st_counter_inc0" (i64.extend_i32_u (call $increment (i32.load (i32.const 48)) (i64.const 0))))
        (call $gauge @"st_counter_inc5" (i64.extend_i32_u (call $increment (i32.load (i32.const 48)) (i64.const 5))))
        (call $gauge @"st_counter_record" (i64.extend_i32_u (call $record (i32.load (i32.const 48)) (i64.const 2))))
        (drop (call $get_metric (i32.load (i32.const 48)) (i32.const 40)))
        (call $gauge @"m_counter_value" (i64.load (i32.const 40)))
        (drop (call $define (i32.const 1) @"m_gauge" (i32.const 52)))
        (drop (call $record (i32.load (i32.const 52)) (i64.const 10)))
        (call $gauge @"st_gauge_dec" (i64.extend_i32_u (call $increment (i32.load (i32.const 52)) (i64.const -3))))
        (drop (call $get_metric (i32.load (i32.const 52)) (i32.const 40)))
        (call $gauge @"m_gauge_value" (i64.load (i32.const 40)))
        (drop (call $define (i32.const 2) @"m_hist" (i32.const 56)))
        (call $gauge @"st_hist_record" (i64.extend_i32_u (call $record (i32.load (i32.const 56)) (i64.const 42))))
        (call $gauge @"st_hist_get" (i64.extend_i32_u (call $get_metric (i32.load (i32.const 56)) (i32.const 40))))
        (call $gauge @"st_hist_inc" (i64.extend_i32_u (call $increment (i32.load (i32.const 56)) (i64.const 1))))
        (call $gauge @"st_unknown_metric" (i64.extend_i32_u (call $increment (i32.const 4000) (i64.const 1))))))
    ;; 'd': shared data with compare-and-swap
    (if (i32.eq (global.get $mode) (i32.const 100))
      (then
        (call $gauge @"st_sd_get_missing" (i64.extend_i32_u (call $get_shared @"probe-key" (i32.const 24) (i32.const 28) (i32.const 32))))
        (call $gauge @"st_sd_set" (i64.extend_i32_u (call $set_shared @"probe-key" @"v1" (i32.const 0))))
        (call $gauge @"st_sd_get" (i64.extend_i32_u (call $get_shared @"probe-key" (i32.const 24) (i32.const 28) (i32.const 32))))
        (call $gauge @"sd_len" (i64.extend_i32_u (i32.load (i32.const 28))))
        (call $gauge @"st_sd_set_stale" (i64.extend_i32_u (call $set_shared @"probe-key" @"v2" (i32.add (i32.load (i32.const 32)) (i32.const 1)))))
        (call $gauge @"st_sd_set_cas" (i64.extend_i32_u (call $set_shared @"probe-key" @"v22" (i32.load (i32.const 32)))))
        (drop (call $get_shared @"probe-key" (i32.const 24) (i32.const 28) (i32.const 32)))
        (call $gauge @"sd_len_after" (i64.extend_i32_u (i32.load (i32.const 28))))))
    ;; 'a': properties once the upstream is connected
    (if (i32.eq (global.get $mode) (i32.const 97))
      (then
        (call $gauge @"st_prop_upstream" (i64.extend_i32_u (call $get_property @"upstream\00address" (i32.const 24) (i32.const 28))))
        (call $gauge @"prop_upstream_len" (i64.extend_i32_u (i32.load (i32.const 28))))
        (call $gauge @"st_prop_conn_id" (i64.extend_i32_u (call $get_property @"connection\00id" (i32.const 24) (i32.const 28))))
        (call $gauge @"prop_conn_id" (i64.load (i32.load (i32.const 24))))
        (call $gauge @"st_prop_trailing_nul" (i64.extend_i32_u (call $get_property @"upstream\00address\00" (i32.const 24) (i32.const 28))))
        (call $gauge @"st_prop_dotted" (i64.extend_i32_u (call $get_property @"upstream.address" (i32.const 24) (i32.const 28))))))
    (i32.const 0))

  (func (export "proxy_on_upstream_data") (param $ctx i32) (param $size i32) (param $eos i32) (result i32)
    (call $gauge @"last_upstream_size" (i64.extend_i32_u (local.get $size)))
    ;; 'e' (and 'p'): strip a leading PONG\r\n
    (if (i32.and
          (i32.or (i32.eq (global.get $mode) (i32.const 101)) (i32.eq (global.get $mode) (i32.const 112)))
          (i32.ge_u (local.get $size) (i32.const 6)))
      (then (call $gauge @"st_strip" (i64.extend_i32_u (call $set_buffer (i32.const 3) (i32.const 0) (i32.const 6) (i32.const 0) (i32.const 0))))))
    ;; 'q': Pause on the write path (unsupported by Envoy)
    (if (i32.eq (global.get $mode) (i32.const 113)) (then (return (i32.const 1))))
    ;; 'Y': close while the upstream's bytes are being written
    (if (i32.eq (global.get $mode) (i32.const 89)) (then (drop (call $close (i32.const 2)))))
    (i32.const 0))

  (func $on_tick (export "proxy_on_tick") (param $root i32)
    (call $count @"ticks")
    (drop (call $now (i32.const 8)))
    (call $gauge @"tick_time_ms" (i64.div_u (i64.load (i32.const 8)) (i64.const 1000000)))
    (if (i32.eq (global.get $mode) (i32.const 84)) (then unreachable)) ;; 'T'
    (if (i32.eq (global.get $mode) (i32.const 76)) (then (loop $spin (br $spin)))) ;; 'L'
    (if (i32.eq (global.get $mode) (i32.const 105)) ;; 'i'
      (then (call $gauge @"st_http_call" (i64.extend_i32_u (call $http_call
        (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)
        (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0))))))
    (if (i32.eqz (global.get $last_ctx)) (then (return)))
    (call $gauge @"st_tick_effective" (i64.extend_i32_u (call $set_effective (global.get $last_ctx))))
    ;; 'p' 'h' 'c': inject a PING into the read buffer and continue, once
    (if (i32.and (i32.eqz (global.get $injected))
          (i32.or (i32.or (i32.eq (global.get $mode) (i32.const 112)) (i32.eq (global.get $mode) (i32.const 104)))
                  (i32.eq (global.get $mode) (i32.const 99))))
      (then
        (global.set $injected (i32.const 1))
        (call $gauge @"st_tick_set" (i64.extend_i32_u (call $set_buffer (i32.const 2) (i32.const 1073741824) (i32.const 0) @"PING\0d\0a")))
        (call $gauge @"st_tick_continue" (i64.extend_i32_u (call $continue (i32.const 2))))))
    (if (i32.eq (global.get $mode) (i32.const 120)) ;; 'x': close Downstream
      (then
        (call $gauge @"st_close" (i64.extend_i32_u (call $close (i32.const 2))))
        (global.set $last_ctx (i32.const 0))))
    (if (i32.eq (global.get $mode) (i32.const 88)) ;; 'X': close Upstream
      (then
        (call $gauge @"st_close" (i64.extend_i32_u (call $close (i32.const 3))))
        (global.set $last_ctx (i32.const 0))))
    (if (i32.eq (global.get $mode) (i32.const 119)) ;; 'w': let tcp_proxy start
      (then (drop (call $continue (i32.const 2))) (global.set $last_ctx (i32.const 0)))))

  (func (export "proxy_on_downstream_connection_close") (param $ctx i32) (param $peer i32)
    (call $gauge @"close_peer" (i64.extend_i32_u (local.get $peer))))
  (func (export "proxy_on_upstream_connection_close") (param $ctx i32) (param $peer i32)
    (call $count @"upstream_close")
    (call $gauge @"upstream_close_peer" (i64.extend_i32_u (local.get $peer))))
  (func (export "proxy_on_done") (param $ctx i32) (result i32)
    (call $count @"done")
    (i32.const 1))
  (func (export "proxy_on_delete") (param $ctx i32)
    (call $count @"deleted"))
)
