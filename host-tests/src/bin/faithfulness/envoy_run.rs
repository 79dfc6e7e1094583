//! Plays a script through a real Envoy process: the heartbeat filter in front of tcp_proxy, a
//! scripted upstream socket and a scripted client socket, both recorded with arrival times.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use heartbeat_host_tests::script::{Script, Step, Transcript};

pub type Error = Box<dyn std::error::Error>;

fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn bootstrap(listen: u16, upstream: u16, admin: u16, wasm: &Path, configuration: &str) -> String {
    format!(
        r#"{{"admin":{{"address":{{"socket_address":{{"address":"127.0.0.1","port_value":{admin}}}}}}},
"static_resources":{{"listeners":[{{"name":"l","address":{{"socket_address":{{"address":"127.0.0.1","port_value":{listen}}}}},
"filter_chains":[{{"filters":[
{{"name":"envoy.filters.network.wasm","typed_config":{{"@type":"type.googleapis.com/envoy.extensions.filters.network.wasm.v3.Wasm",
"config":{{"name":"heartbeat","root_id":"heartbeat","configuration":{{"@type":"type.googleapis.com/google.protobuf.StringValue","value":{config}}},
"vm_config":{{"runtime":"envoy.wasm.runtime.v8","code":{{"local":{{"filename":{wasm}}}}}}}}}}}}},
{{"name":"envoy.filters.network.tcp_proxy","typed_config":{{"@type":"type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy","stat_prefix":"up","cluster":"up"}}}}]}}]}}],
"clusters":[{{"name":"up","type":"STATIC","connect_timeout":"1s","load_assignment":{{"cluster_name":"up","endpoints":[{{"lb_endpoints":[{{"endpoint":{{"address":{{"socket_address":{{"address":"127.0.0.1","port_value":{upstream}}}}}}}}}]}}]}}}}]}}}}"#,
        config = json_string(configuration),
        wasm = json_string(&wasm.display().to_string()),
    )
}

fn free_port() -> Result<u16, Error> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Bytes a socket read, and when it read end of stream.
#[derive(Default)]
struct Recording {
    bytes: Vec<u8>,
    eof_at: Option<Duration>,
}

fn record(mut stream: TcpStream, start: Instant) -> Arc<Mutex<Recording>> {
    let rec = Arc::new(Mutex::new(Recording::default()));
    let out = rec.clone();
    thread::spawn(move || {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => {
                    out.lock().unwrap_or_else(|p| p.into_inner()).eof_at = Some(start.elapsed());
                    return;
                }
                Ok(n) => out.lock().unwrap_or_else(|p| p.into_inner()).bytes.extend_from_slice(&buf[..n]),
            }
        }
    });
    rec
}

struct Envoy(Child);

impl Drop for Envoy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_ready(admin: u16, log: &Path) -> Result<(), Error> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", admin)) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
            let _ = s.write_all(b"GET /ready HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n");
            let mut answer = String::new();
            let _ = s.read_to_string(&mut answer);
            if answer.contains("LIVE") {
                return Ok(());
            }
        }
        thread::sleep(Duration::from_millis(100));
    }
    Err(format!("Envoy did not become ready; see {}", log.display()).into())
}

/// The `wasmcustom.*` stats from the admin endpoint.
fn custom_stats(admin: u16) -> Result<BTreeMap<String, u64>, Error> {
    let mut s = TcpStream::connect(("127.0.0.1", admin))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(b"GET /stats?filter=%5Ewasmcustom%5C. HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n")?;
    let mut answer = String::new();
    s.read_to_string(&mut answer)?;
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
    Ok(body
        .lines()
        .filter_map(|line| {
            let (name, value) = line.split_once(": ")?;
            Some((name.to_string(), value.trim().parse().ok()?))
        })
        .collect())
}

/// What a run produced: the transcript and the filter's stats at the end.
pub struct Run {
    pub transcript: Transcript,
    pub stats: BTreeMap<String, u64>,
}

pub fn run(envoy_bin: &Path, wasm: &Path, script: &Script, scratch: &Path) -> Result<Run, Error> {
    let upstream_listener = TcpListener::bind("127.0.0.1:0")?;
    let upstream_port = upstream_listener.local_addr()?.port();
    let (listen, admin) = (free_port()?, free_port()?);
    let config_path = scratch.join("envoy.json");
    std::fs::write(&config_path, bootstrap(listen, upstream_port, admin, wasm, &script.configuration))?;
    let log_path: PathBuf = scratch.join("envoy.log");
    let log = std::fs::File::create(&log_path)?;
    let child = Command::new(envoy_bin)
        .arg("-c")
        .arg(&config_path)
        .args(["--concurrency", "1", "--disable-hot-restart", "-l", "info"])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()?;
    let _envoy = Envoy(child);
    wait_ready(admin, &log_path)?;

    let start = Instant::now();
    let mut client = TcpStream::connect(("127.0.0.1", listen))?;
    let (mut upstream, _) = upstream_listener.accept()?;
    let client_rec = record(client.try_clone()?, start);
    let upstream_rec = record(upstream.try_clone()?, start);
    for step in &script.steps {
        // Writes after the connection closed fail; the host ignores them too.
        match step {
            Step::ClientSend(b) => drop(client.write_all(b)),
            Step::UpstreamSend(b) => drop(upstream.write_all(b)),
            Step::ClientFin => drop(client.shutdown(Shutdown::Write)),
            Step::UpstreamFin => drop(upstream.shutdown(Shutdown::Write)),
            Step::Wait(d) => thread::sleep(*d),
        }
    }
    let take = |r: &Arc<Mutex<Recording>>| {
        let r = r.lock().unwrap_or_else(|p| p.into_inner());
        (r.bytes.clone(), r.eof_at)
    };
    let (client_received, client_eof_at) = take(&client_rec);
    let (upstream_received, upstream_eof_at) = take(&upstream_rec);
    let stats = custom_stats(admin)?;
    Ok(Run { transcript: Transcript { upstream_received, client_received, client_eof_at, upstream_eof_at }, stats })
}
