//! MySQL through real Envoy with the filter: MariaDB 10.11 from Debian, the mysql_async client and the `mariadb`
//! command-line client; a server hung with SIGSTOP.

use super::common;

use heartbeat_envoy_tests::metrics;
use heartbeat_envoy_tests::probe::{mysql_login, mysql_query, watch_close};
use heartbeat_envoy_tests::setup::{envoy_for, Setup};
use heartbeat_envoy_tests::{Envoy, Upstream};
use mysql_async::prelude::*;
use serde_json::json;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;

/// PINGs after 200 ms of upstream silence, every 100 ms, closed after 3 missed (bound 0.5 s); a reply owed
/// to the client may take 2 s.
fn fast(reply_timeout: &str) -> serde_json::Value {
    json!({"protocol": "mysql", "read_idle_timeout": "200ms", "ping_interval": "100ms", "max_missed_pongs": 3,
           "reply_timeout": reply_timeout})
}

const BOUND: Duration = Duration::from_millis(500);
/// The filter's tick and a busy 2-core machine.
const SLACK: Duration = Duration::from_millis(1500);

async fn connect(addr: SocketAddr) -> anyhow::Result<mysql_async::Conn> {
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname(addr.ip().to_string())
        .tcp_port(addr.port())
        .user(Some("root"))
        // mysql_async would otherwise move a connection to 127.0.0.1 onto the server's Unix socket, past Envoy.
        .prefer_socket(false);
    Ok(mysql_async::Conn::new(opts).await?)
}

/// Waits until no connection is watched any more, then checks that the PING counters add up.
async fn consistent_after_close(envoy: &Envoy) -> anyhow::Result<std::collections::BTreeMap<String, i64>> {
    let stats = common::wait_stats(envoy, Duration::from_secs(10), |s| s.get(metrics::MONITORED) == Some(&0)).await?;
    assert_eq!(metrics::get(&stats, metrics::MONITORED)?, 0, "connections still watched: {stats:?}");
    metrics::check_consistent(&stats)?;
    Ok(stats)
}

/// mysql_async through the filter: plain queries, a prepared statement and a transaction held open across
/// idle gaps in which the filter injects COM_PINGs; every row comes back exactly.
#[test]
fn idle_connections_are_pinged_and_queries_prepared_statements_and_transactions_keep_working() -> anyhow::Result<()> {
    common::run(idle_case())
}

async fn idle_case() -> anyhow::Result<()> {
    let mode = common::mode().await;
    let db = Upstream::mariadb(mode).await?;
    let envoy = envoy_for(mode, db.port, &[Setup::Filter], &fast("2s")).await?;
    let mut conn = connect(envoy.listener(Setup::Filter.listener())).await.map_err(|e| envoy.explain(e))?;
    let idle = Duration::from_millis(700);

    conn.query_drop("CREATE DATABASE hb").await?;
    conn.query_drop("CREATE TABLE hb.t (id INT PRIMARY KEY, name VARCHAR(64), note TEXT)").await?;
    conn.query_drop("INSERT INTO hb.t VALUES (1, 'one', NULL), (2, 'two', REPEAT('x', 3000)), (3, 'three', '')")
        .await?;
    tokio::time::sleep(idle).await;
    let rows: Vec<(i32, String, Option<String>)> = conn.query("SELECT id, name, note FROM hb.t ORDER BY id").await?;
    assert_eq!(
        rows,
        [(1, "one".into(), None), (2, "two".into(), Some("x".repeat(3000))), (3, "three".into(), Some(String::new()))]
    );

    // A prepared statement used across idle gaps.
    let stmt = conn.prep("SELECT name FROM hb.t WHERE id = ?").await?;
    for id in [3, 1, 2] {
        tokio::time::sleep(idle).await;
        let name: Option<String> = conn.exec_first(&stmt, (id,)).await?;
        assert_eq!(name.as_deref(), Some(["one", "two", "three"][id as usize - 1]));
    }

    // A transaction left open while idle.
    conn.query_drop("BEGIN").await?;
    conn.exec_drop("INSERT INTO hb.t VALUES (?, ?, ?)", (4, "four", "in a transaction")).await?;
    tokio::time::sleep(idle).await;
    let inside: Vec<i64> = conn.query("SELECT COUNT(*) FROM hb.t").await?;
    assert_eq!(inside, [4]);
    tokio::time::sleep(idle).await;
    conn.query_drop("COMMIT").await?;
    let names: Vec<String> = conn.exec(&stmt, (4,)).await?;
    assert_eq!(names, ["four"]);

    // Several result sets in one round trip.
    let mut result = conn.query_iter("SELECT 1; SELECT 'a', 'b' UNION ALL SELECT 'c', 'd'").await?;
    let first: Vec<i64> = result.collect().await?;
    let second: Vec<(String, String)> = result.collect().await?;
    drop(result);
    assert_eq!(first, [1]);
    assert_eq!(second, [("a".into(), "b".into()), ("c".into(), "d".into())]);
    tokio::time::sleep(idle).await;

    let stats = envoy.filter_stats().await?;
    eprintln!("mysql_async through the filter: stats {stats:?}");
    assert!(metrics::get(&stats, metrics::PINGS_INJECTED)? >= 6, "too few COM_PINGs in the idle gaps: {stats:?}");
    assert!(metrics::get(&stats, metrics::PONGS_STRIPPED)? >= 6, "{stats:?}");
    assert_eq!(metrics::get(&stats, metrics::PROTOCOL_ERRORS)?, 0, "{stats:?}");
    assert_eq!(metrics::get(&stats, metrics::DEAD_CLOSED)?, 0, "{stats:?}");
    conn.disconnect().await?;
    consistent_after_close(&envoy).await?;
    Ok(())
}

/// Debian's `mariadb` client (libmariadb, MariaDB's own capabilities) through the filter, statements written
/// to its stdin with idle gaps: its output is exactly the rows, and the filter pinged in the gaps.
#[test]
fn the_mariadb_client_gets_exactly_its_rows_while_pings_are_injected() -> anyhow::Result<()> {
    common::run(cli_case())
}

async fn cli_case() -> anyhow::Result<()> {
    let mode = common::mode().await;
    let db = Upstream::mariadb(mode).await?;
    let envoy = envoy_for(mode, db.port, &[Setup::Filter], &fast("2s")).await?;
    let addr = envoy.listener(Setup::Filter.listener());
    let mut cli = tokio::process::Command::new("mariadb")
        .args(["-h", "127.0.0.1", "-P", &addr.port().to_string(), "-u", "root", "--batch", "--skip-column-names"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| anyhow::anyhow!("cannot run mariadb (envoy/bootstrap.sh installs it): {e}"))?;
    let mut stdin = cli.stdin.take().ok_or_else(|| anyhow::anyhow!("no stdin"))?;
    let statements = [
        "CREATE DATABASE hb;",
        "CREATE TABLE hb.t (id INT PRIMARY KEY, name VARCHAR(64));",
        "INSERT INTO hb.t VALUES (1, 'one'), (2, 'two');",
        "SELECT id, name FROM hb.t ORDER BY id;",
        "BEGIN;",
        "INSERT INTO hb.t VALUES (3, 'three');",
        "SELECT COUNT(*) FROM hb.t;",
        "COMMIT;",
        "PREPARE s FROM 'SELECT name FROM hb.t WHERE id = ?';",
        "SET @i = 3;",
        "EXECUTE s USING @i;",
        "SELECT SLEEP(0.3), 'slept';",
        "SELECT name FROM hb.t ORDER BY id DESC;",
    ];
    for s in statements {
        stdin.write_all(s.as_bytes()).await?;
        stdin.write_all(b"\n").await?;
        stdin.flush().await?;
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    drop(stdin);
    let out = tokio::time::timeout(Duration::from_secs(20), cli.wait_with_output()).await??;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "mariadb failed: {}{}", stdout, String::from_utf8_lossy(&out.stderr));
    assert_eq!(stdout, "1\tone\n2\ttwo\n3\nthree\n0\tslept\nthree\ntwo\none\n");
    let stats = consistent_after_close(&envoy).await?;
    eprintln!("mariadb client through the filter: stats {stats:?}");
    assert_eq!(metrics::get(&stats, metrics::PROTOCOL_ERRORS)?, 0, "passed through: {stats:?}");
    assert!(metrics::get(&stats, metrics::PINGS_INJECTED)? >= 6, "too few COM_PINGs in the idle gaps: {stats:?}");
    assert!(metrics::get(&stats, metrics::PONGS_STRIPPED)? >= 6, "{stats:?}");
    assert_eq!(metrics::get(&stats, metrics::DEAD_CLOSED)?, 0, "{stats:?}");
    Ok(())
}

/// `SELECT SLEEP(3)`: three seconds with nothing on the wire, six times the bound; the reply is owed, so the
/// server is judged on `reply_timeout` (5 s) and the query returns its row.
#[test]
fn a_query_slower_than_the_bound_is_not_closed() -> anyhow::Result<()> {
    common::run(slow_query_case())
}

async fn slow_query_case() -> anyhow::Result<()> {
    let mode = common::mode().await;
    let db = Upstream::mariadb(mode).await?;
    let envoy = envoy_for(mode, db.port, &[Setup::Filter], &fast("5s")).await?;
    let mut conn = connect(envoy.listener(Setup::Filter.listener())).await.map_err(|e| envoy.explain(e))?;
    let start = Instant::now();
    let row: Vec<(i64, String)> = conn.query("SELECT SLEEP(3), 'awake'").await.map_err(|e| envoy.explain(e.into()))?;
    let took = start.elapsed();
    assert_eq!(row, [(0, "awake".to_string())]);
    assert!(took >= Duration::from_secs(3), "SLEEP(3) took {took:?}");
    tokio::time::sleep(Duration::from_millis(600)).await;
    let after: Vec<i64> = conn.query("SELECT 41 + 1").await?;
    assert_eq!(after, [42]);
    let stats = envoy.filter_stats().await?;
    eprintln!("SELECT SLEEP(3) through the filter (bound 0.5 s, reply_timeout 5 s) took {took:?}; stats {stats:?}");
    assert_eq!(metrics::get(&stats, metrics::DEAD_CLOSED)?, 0, "{stats:?}");
    assert!(metrics::get(&stats, metrics::PONGS_STRIPPED)? >= 1, "pinged after the query: {stats:?}");
    conn.disconnect().await?;
    consistent_after_close(&envoy).await?;
    Ok(())
}

/// The server hangs (SIGSTOP; its kernel keeps ACKing). Through the filter, an idle connection is closed within
/// the bound and one with a query in flight within `reply_timeout` of the query; through Envoy alone the same
/// two connections are still open long after.
#[test]
fn a_hung_server_is_closed_within_the_bound_or_the_reply_timeout_and_envoy_alone_stays_open() -> anyhow::Result<()> {
    common::run(hung_case())
}

async fn hung_case() -> anyhow::Result<()> {
    let mode = common::mode().await;
    let db = Upstream::mariadb(mode).await?;
    let reply_timeout = Duration::from_secs(2);
    let envoy = envoy_for(mode, db.port, &[Setup::Filter, Setup::Alone], &fast("2s")).await?;
    let (with, alone) = (envoy.listener(Setup::Filter.listener()), envoy.listener(Setup::Alone.listener()));
    let mut idle_with = mysql_login(with).await.map_err(|e| envoy.explain(e))?;
    let mut idle_alone = mysql_login(alone).await?;
    let mut busy_with = mysql_login(with).await?;
    let mut busy_alone = mysql_login(alone).await?;
    // Pinged while the server is healthy: the idle connection stays open.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let stats = envoy.filter_stats().await?;
    assert!(metrics::get(&stats, metrics::PONGS_STRIPPED)? >= 2, "no COM_PING answered before the freeze: {stats:?}");
    assert_eq!(metrics::get(&stats, metrics::DEAD_CLOSED)?, 0);

    // A query that runs for a minute, then the freeze.
    let query = mysql_query("SELECT SLEEP(60)");
    busy_with.write_all(&query).await?;
    busy_alone.write_all(&query).await?;
    let queried = Instant::now();
    tokio::time::sleep(Duration::from_millis(100)).await;
    db.freeze().await?;
    let frozen = Instant::now();
    let watch = Duration::from_secs(6);
    let (idle_with, busy_with, idle_alone, busy_alone) = tokio::join!(
        watch_close(&mut idle_with, frozen, watch),
        watch_close(&mut busy_with, queried, watch),
        watch_close(&mut idle_alone, frozen, watch),
        watch_close(&mut busy_alone, queried, watch),
    );
    let (idle_with, busy_with, idle_alone, busy_alone) =
        (idle_with.closed_after, busy_with.closed_after, idle_alone.closed_after, busy_alone.closed_after);
    db.thaw().await?;
    eprintln!(
        "hung mariadbd: through the filter the idle connection closed {idle_with:?} after the freeze (bound {BOUND:?}), \
         the busy one {busy_with:?} after its query (reply_timeout {reply_timeout:?}); through Envoy alone: \
         {idle_alone:?} / {busy_alone:?} after {watch:?}"
    );
    let idle = idle_with.ok_or_else(|| envoy.explain(anyhow::anyhow!("the idle connection was never closed")))?;
    assert!(idle <= BOUND + SLACK, "idle connection closed {idle:?} after the freeze, bound {BOUND:?}");
    let busy = busy_with.ok_or_else(|| envoy.explain(anyhow::anyhow!("the busy connection was never closed")))?;
    assert!(busy >= reply_timeout, "closed {busy:?} after its query, before reply_timeout: a slow query is not dead");
    assert!(busy <= reply_timeout + SLACK, "busy connection closed {busy:?} after its query");
    assert_eq!(idle_alone, None, "Envoy alone closed the idle connection: the fault was not silent");
    assert_eq!(busy_alone, None, "Envoy alone closed the busy connection");
    let stats = consistent_after_close(&envoy).await?;
    assert_eq!(metrics::get(&stats, metrics::DEAD_CLOSED)?, 2, "{stats:?}");
    Ok(())
}
