//! Configuration: a bad one is refused with the field and the reason in the filter's log; a
//! good one sets the tick to a tenth of the shortest timer.

use heartbeat_host_tests::testkit::TestHost;
use heartbeat_host_tests::{HostError, HostOptions};

use super::common::heartbeat::*;
use super::support::ms;

#[track_caller]
fn refused(configuration: &str, names: &str) {
    match TestHost::start_err(plugin(), HostOptions::with_configuration(configuration)) {
        HostError::ConfigRejected { logs } => {
            assert!(
                logs.iter().any(|l| l.text.contains(names)),
                "{configuration}: no log line names {names:?}: {logs:#?}"
            )
        }
        other => panic!("{configuration}: expected a refusal, got {other}"),
    }
}

#[test]
fn bad_configurations_are_refused_naming_the_field() {
    refused(r#"{"protocol":"nats","max_missed_pongs":0}"#, "max_missed_pongs");
    refused(r#"{"protocol":"nats","ping_interval":"0s"}"#, "ping_interval");
    refused(r#"{"protocol":"nats","read_idle_timeout":5}"#, "read_idle_timeout");
    refused(r#"{"protocol":"nats","read_idle_timeout":"ten seconds"}"#, "read_idle_timeout");
    refused(r#"{"protocol":"nats","write_idle_keepalive":"1000d"}"#, "write_idle_keepalive");
    refused(r#"{"protocol":"nats","pingInterval":"1s"}"#, "pingInterval");
    refused(r#"{"protocol":"http"}"#, "protocol");
    refused(r#"{"read_idle_timeout":"1s"}"#, "protocol");
    refused(r#"{"protocol":"framed"}"#, "framed");
    refused(
        r#"{"protocol":"framed","framed":{"header_size":4,"length_size":3,"ping":"00","pong":"01"}}"#,
        "length_size",
    );
    refused("not json", "invalid configuration");
    refused("", "invalid configuration");
}

#[test]
fn defaults_apply_and_the_tick_follows_the_shortest_timer() {
    let h = TestHost::with_config(plugin(), r#"{"protocol":"redis"}"#);
    assert_eq!(h.tick_period(0), Some(ms(200)), "min(10 s, 2 s) / 10");
    let h = TestHost::with_config(plugin(), &config("nats"));
    assert_eq!(h.tick_period(0), Some(ms(100)));
}
