//! Envoy's admin endpoint over plain HTTP/1.1 (Connection: close) on loopback (no HTTP client crate needed for GET /stats).

use std::collections::BTreeMap;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// GET `path` on 127.0.0.1:`port`; (status code, body).
pub async fn get(port: u16, path: &str) -> anyhow::Result<(u16, String)> {
    let fut = async {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        s.write_all(format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").as_bytes()).await?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await?;
        let text = String::from_utf8_lossy(&buf).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((text.as_str(), ""));
        let code = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
        let chunked = head.to_ascii_lowercase().contains("transfer-encoding: chunked");
        anyhow::Ok((code, if chunked { dechunk(body) } else { body.to_string() }))
    };
    tokio::time::timeout(Duration::from_secs(5), fut).await?
}

/// Decodes an HTTP/1.1 chunked body (sizes in hex, each chunk followed by CRLF, a 0-size chunk ends it).
fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16).unwrap_or(0);
        if n == 0 || after.len() < n {
            break;
        }
        out.push_str(after.get(..n).unwrap_or(""));
        rest = after.get(n..).unwrap_or("").trim_start_matches("\r\n");
    }
    out
}

/// `/stats` as name → value (counters and gauges; histogram lines are skipped).
pub fn parse_stats(body: &str) -> BTreeMap<String, i64> {
    body.lines()
        .filter_map(|line| {
            let (name, value) = line.split_once(": ")?;
            Some((name.trim().to_string(), value.trim().parse::<i64>().ok()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_counters_and_skips_histograms() {
        let s = super::parse_stats(
            "wasmcustom.heartbeat_pings_injected: 7\ncluster.up.upstream_cx_total: 2\nx.hist: P0(nan,1) P25(nan,2)\n",
        );
        assert_eq!(s.get("wasmcustom.heartbeat_pings_injected"), Some(&7));
        assert_eq!(s.get("cluster.up.upstream_cx_total"), Some(&2));
        assert_eq!(s.len(), 2);
    }

    #[test]
    fn decodes_chunked_bodies() {
        assert_eq!(super::dechunk("5\r\nhello\r\n7\r\n world!\r\n0\r\n\r\n"), "hello world!");
    }
}
