//! PostgreSQL 15 (Debian) through real Envoy with the filter: tokio-postgres (extended protocol, pipelining,
//! prepared statements, transactions, LISTEN/NOTIFY, COPY) and psql, while the filter injects `Sync`s; a
//! frozen server (SIGSTOP) closed within the bound, idle or with a query in flight (then after
//! `reply_timeout`), while Envoy alone keeps its connection; a slow `pg_sleep` longer than the PING bound
//! left alone.

use super::common;

use futures::{SinkExt, StreamExt};
use heartbeat_envoy_tests::metrics;
use heartbeat_envoy_tests::setup::{envoy_for, Setup};
use heartbeat_envoy_tests::Upstream;
use serde_json::json;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, Client, NoTls};

/// Fast detection: a Sync after 200 ms of upstream silence, then every 100 ms, closed after 3 missed
/// (bound 500 ms); a reply owed may take 3 s.
const READ_IDLE: Duration = Duration::from_millis(200);
const BOUND: Duration = Duration::from_millis(500);
const REPLY_TIMEOUT: Duration = Duration::from_secs(3);
/// Allowance for the filter's tick and a busy 2-core machine.
const SLACK: Duration = Duration::from_millis(1500);

fn fast() -> serde_json::Value {
    json!({"protocol": "postgres", "read_idle_timeout": "200ms", "ping_interval": "100ms",
           "max_missed_pongs": 3, "reply_timeout": "3s"})
}

/// A tokio-postgres client on `addr`; its connection runs on a task that forwards notifications and reports
/// when the connection ends (`Instant`).
async fn connect(
    addr: SocketAddr,
) -> anyhow::Result<(Client, mpsc::UnboundedReceiver<String>, mpsc::UnboundedReceiver<Instant>)> {
    let url = format!("host={} port={} user=postgres dbname=postgres", addr.ip(), addr.port());
    let (client, mut connection) = tokio_postgres::connect(&url, NoTls).await?;
    let (notes_tx, notes) = mpsc::unbounded_channel();
    let (end_tx, ended) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(n)) => {
                    let _ = notes_tx.send(format!("{}:{}", n.channel(), n.payload()));
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
        let _ = end_tx.send(Instant::now());
    });
    Ok((client, notes, ended))
}

async fn idle(d: Duration) {
    tokio::time::sleep(d).await;
}

/// Everything the request names, one after another with idle gaps of several read-idles between them (so the
/// filter's Syncs go in and their Z's come back in the gaps), every result checked exactly.
#[test]
fn queries_prepared_transactions_notify_and_copy_are_exact_while_syncs_are_injected() -> anyhow::Result<()> {
    common::run(queries_case())
}

async fn queries_case() -> anyhow::Result<()> {
    let mode = common::mode().await;
    let pg = Upstream::postgres(mode).await?;
    let envoy = envoy_for(mode, pg.port, &[Setup::Filter], &fast()).await?;
    let addr = envoy.listener(Setup::Filter.listener());
    let gap = READ_IDLE * 4;
    let result: anyhow::Result<()> = async {
        let (c, _, _) = connect(addr).await?;
        let one: i32 = c.query_one("SELECT 1", &[]).await?.get(0);
        assert_eq!(one, 1);
        idle(gap).await;
        let one: i32 = c.query_one("SELECT 1", &[]).await?.get(0);
        assert_eq!(one, 1, "after Syncs were injected");

        // Prepared statements, reused after an idle gap.
        let add = c.prepare("SELECT $1::int4 + 1, $2::text").await?;
        let row = c.query_one(&add, &[&41i32, &"x"]).await?;
        assert_eq!((row.get::<_, i32>(0), row.get::<_, String>(1)), (42, "x".to_string()));
        idle(gap).await;
        let row = c.query_one(&add, &[&1i32, &"y"]).await?;
        assert_eq!((row.get::<_, i32>(0), row.get::<_, String>(1)), (2, "y".to_string()));

        // Pipelining: many extended-query rounds in flight at once.
        let queries = (0..50i32).map(|i| {
            let c = &c;
            let add = &add;
            async move { c.query_one(add, &[&i, &format!("p{i}")]).await }
        });
        let rows = futures::future::try_join_all(queries).await?;
        for (i, row) in rows.iter().enumerate() {
            assert_eq!(row.get::<_, i32>(0), i as i32 + 1, "pipelined row {i}");
            assert_eq!(row.get::<_, String>(1), format!("p{i}"));
        }
        idle(gap).await;

        // A transaction left open while idle: Syncs go in (harmless inside BEGIN), then COMMIT.
        c.batch_execute("CREATE TABLE t (n int4, s text)").await?;
        c.batch_execute("BEGIN").await?;
        c.execute("INSERT INTO t VALUES (1, 'a'), (2, 'b')", &[]).await?;
        idle(gap).await;
        let n: i64 = c.query_one("SELECT count(*) FROM t", &[]).await?.get(0);
        assert_eq!(n, 2, "inside the transaction");
        idle(gap).await;
        c.batch_execute("COMMIT").await?;
        let (c2, _, _) = connect(addr).await?;
        let n: i64 = c2.query_one("SELECT count(*) FROM t", &[]).await?.get(0);
        assert_eq!(n, 2, "committed");

        // COPY FROM STDIN (extended protocol, its Sync ignored by the server) and COPY TO STDOUT.
        let sink = c.copy_in("COPY t FROM STDIN").await?;
        futures::pin_mut!(sink);
        for i in 3..=1000 {
            sink.send(bytes::Bytes::from(format!("{i}\tr{i}\n"))).await?;
        }
        let copied = sink.finish().await?;
        assert_eq!(copied, 998);
        idle(gap).await;
        let out = c.copy_out("COPY (SELECT n FROM t ORDER BY n) TO STDOUT").await?;
        let chunks = collect_copy(out).await?;
        let text: String = chunks.iter().map(|b| String::from_utf8_lossy(b).into_owned()).collect();
        let expected: String = (1..=1000).map(|i| format!("{i}\n")).collect();
        assert_eq!(text, expected, "COPY TO STDOUT");
        idle(gap).await;
        let n: i64 = c.query_one("SELECT count(*) FROM t", &[]).await?.get(0);
        assert_eq!(n, 1000);

        // LISTEN/NOTIFY: the notification arrives unasked, between the filter's Syncs.
        let (listener, mut notes, _) = connect(addr).await?;
        listener.batch_execute("LISTEN chan").await?;
        idle(gap).await;
        for i in 0..5 {
            c2.execute(&format!("NOTIFY chan, 'n{i}'"), &[]).await?;
            idle(READ_IDLE * 2).await;
        }
        for i in 0..5 {
            let note = tokio::time::timeout(Duration::from_secs(5), notes.recv()).await?;
            assert_eq!(note.as_deref(), Some(format!("chan:n{i}").as_str()));
        }
        let one: i32 = listener.query_one("SELECT 1", &[]).await?.get(0);
        assert_eq!(one, 1);
        drop((c, c2, listener));
        Ok(())
    }
    .await;
    result.map_err(|e| envoy.explain(e))?;
    // The clients are gone: every Sync answered or counted unanswered at close.
    let stats = common_stats_settled(&envoy).await?;
    eprintln!("postgres through the filter: stats {stats:?}");
    assert_eq!(metrics::get(&stats, metrics::PROTOCOL_ERRORS)?, 0, "{stats:?}");
    assert_eq!(metrics::get(&stats, metrics::DEAD_CLOSED)?, 0, "{stats:?}");
    assert!(metrics::get(&stats, metrics::PINGS_INJECTED)? >= 10, "too few Syncs injected: {stats:?}");
    assert!(metrics::get(&stats, metrics::PONGS_STRIPPED)? >= 10, "too few Z's stripped: {stats:?}");
    metrics::check_consistent(&stats)?;
    Ok(())
}

/// The filter's stats once no connection is monitored any more (connections end asynchronously).
async fn common_stats_settled(
    envoy: &heartbeat_envoy_tests::Envoy,
) -> anyhow::Result<std::collections::BTreeMap<String, i64>> {
    let start = Instant::now();
    loop {
        let stats = envoy.filter_stats().await?;
        if metrics::get(&stats, metrics::MONITORED)? == 0 || start.elapsed() > Duration::from_secs(10) {
            return Ok(stats);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every chunk of a COPY TO STDOUT.
async fn collect_copy(out: tokio_postgres::CopyOutStream) -> anyhow::Result<Vec<bytes::Bytes>> {
    let mut out = Box::pin(out);
    let mut all = Vec::new();
    while let Some(chunk) = out.next().await {
        all.push(chunk?);
    }
    Ok(all)
}

/// psql from Debian: a query, an idle pause long enough for several Syncs, another query; the output is
/// exactly the two results.
#[test]
fn psql_sees_exactly_its_results_across_an_idle_pause() -> anyhow::Result<()> {
    common::run(psql_case())
}

async fn psql_case() -> anyhow::Result<()> {
    use tokio::io::AsyncWriteExt;
    let mode = common::mode().await;
    let pg = Upstream::postgres(mode).await?;
    let envoy = envoy_for(mode, pg.port, &[Setup::Filter], &fast()).await?;
    let addr = envoy.listener(Setup::Filter.listener());
    let mut psql = tokio::process::Command::new("psql")
        .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", &addr.ip().to_string(), "-p", &addr.port().to_string()])
        .args(["-U", "postgres", "postgres"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| anyhow::anyhow!("psql (Debian's postgresql-client, installed by envoy/bootstrap.sh): {e}"))?;
    let mut stdin = psql.stdin.take().expect("piped");
    stdin.write_all(b"SELECT 'before', 1 + 1;\n").await?;
    stdin.flush().await?;
    idle(READ_IDLE * 6).await;
    stdin.write_all(b"BEGIN;\nSELECT 'inside';\n").await?;
    stdin.flush().await?;
    idle(READ_IDLE * 6).await;
    stdin.write_all(b"COMMIT;\nSELECT 'after', 2 + 2;\n").await?;
    drop(stdin);
    let out = tokio::time::timeout(Duration::from_secs(20), psql.wait_with_output()).await??;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "psql failed: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(stdout, "before|2\nBEGIN\ninside\nCOMMIT\nafter|4\n");
    let stats = common_stats_settled(&envoy).await?;
    eprintln!("psql through the filter: stats {stats:?}");
    assert!(metrics::get(&stats, metrics::PONGS_STRIPPED)? >= 2, "{stats:?}");
    assert_eq!(metrics::get(&stats, metrics::PROTOCOL_ERRORS)?, 0, "{stats:?}");
    metrics::check_consistent(&stats)?;
    Ok(())
}

/// `SELECT pg_sleep(2)`: two seconds with nothing on the wire, four times the PING bound, under the 3 s
/// `reply_timeout`: not closed, and the row arrives.
#[test]
fn a_slow_query_longer_than_the_ping_bound_is_left_alone() -> anyhow::Result<()> {
    common::run(slow_query_case())
}

async fn slow_query_case() -> anyhow::Result<()> {
    let mode = common::mode().await;
    let pg = Upstream::postgres(mode).await?;
    let envoy = envoy_for(mode, pg.port, &[Setup::Filter], &fast()).await?;
    let (c, _, _) = connect(envoy.listener(Setup::Filter.listener())).await?;
    let start = Instant::now();
    let row = c.query_one("SELECT pg_sleep(2)::text, 7", &[]).await.map_err(|e| envoy.explain(e.into()))?;
    let took = start.elapsed();
    assert_eq!((row.get::<_, String>(0), row.get::<_, i32>(1)), (String::new(), 7));
    assert!(took >= Duration::from_secs(2) && took > BOUND * 3, "took {took:?}");
    let stats = envoy.filter_stats().await?;
    eprintln!("pg_sleep(2) through the filter took {took:?}; stats {stats:?}");
    assert_eq!(metrics::get(&stats, metrics::DEAD_CLOSED)?, 0, "{stats:?}");
    Ok(())
}

/// SIGSTOP: with an idle connection the filter closes it within the bound; with a query in flight (a reply
/// owed) after `reply_timeout`; Envoy alone keeps its idle connection.
#[test]
fn a_frozen_server_is_closed_within_the_bound_and_envoy_alone_is_not() -> anyhow::Result<()> {
    common::run(frozen_case())
}

async fn frozen_case() -> anyhow::Result<()> {
    let mode = common::mode().await;
    let pg = Upstream::postgres(mode).await?;
    let envoy = envoy_for(mode, pg.port, &[Setup::Alone, Setup::Filter], &fast()).await?;
    let filter = envoy.listener(Setup::Filter.listener());
    let (idle_client, _, mut idle_ended) = connect(filter).await?;
    let (busy_client, _, mut busy_ended) = connect(filter).await?;
    let (alone_client, _, mut alone_ended) = connect(envoy.listener(Setup::Alone.listener())).await?;
    for c in [&idle_client, &busy_client, &alone_client] {
        let one: i32 = c.query_one("SELECT 1", &[]).await?.get(0);
        assert_eq!(one, 1);
    }
    let frozen_at = Instant::now();
    pg.freeze().await?;
    let in_flight =
        tokio::spawn(async move { busy_client.query_one("SELECT 2", &[]).await.map(|r| r.get::<_, i32>(0)) });
    let idle_at = tokio::time::timeout(BOUND + SLACK + Duration::from_secs(2), idle_ended.recv()).await;
    let busy_at = tokio::time::timeout(REPLY_TIMEOUT + SLACK + Duration::from_secs(2), busy_ended.recv()).await;
    let alone = alone_ended.try_recv();
    let alone_open = !alone_client.is_closed();
    pg.thaw().await?;
    let idle_after = match idle_at {
        Ok(Some(at)) => at - frozen_at,
        other => panic!("the idle client through the filter saw no close ({other:?})\n{}", envoy.log_tail(40)),
    };
    let busy_after = match busy_at {
        Ok(Some(at)) => at - frozen_at,
        other => panic!("the busy client through the filter saw no close ({other:?})\n{}", envoy.log_tail(40)),
    };
    eprintln!(
        "frozen postgres: idle connection closed after {idle_after:?} (bound {BOUND:?}), query in flight closed \
         after {busy_after:?} (reply_timeout {REPLY_TIMEOUT:?}); Envoy alone still open after {:?}: {alone_open}",
        frozen_at.elapsed()
    );
    assert!(idle_after >= READ_IDLE && idle_after <= BOUND + SLACK, "idle closed after {idle_after:?}");
    assert!(
        busy_after >= REPLY_TIMEOUT - Duration::from_millis(200) && busy_after <= REPLY_TIMEOUT + SLACK,
        "query in flight closed after {busy_after:?}"
    );
    assert!(in_flight.await?.is_err(), "the query in flight cannot have been answered");
    assert!(alone.is_err() && alone_open, "Envoy alone closed its connection: the fault was not silent");
    let stats = envoy.filter_stats().await?;
    assert_eq!(metrics::get(&stats, metrics::DEAD_CLOSED)?, 2, "{stats:?}");
    Ok(())
}
