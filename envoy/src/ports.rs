//! Free loopback ports. The OS picks a port, we release it and hand the number to a server; a port handed
//! out once is never handed out again by this process, which keeps concurrent cases apart.

use std::collections::HashSet;
use std::net::TcpListener;
use std::sync::Mutex;

static USED: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

pub fn free_port() -> anyhow::Result<u16> {
    for _ in 0..100 {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let mut used = USED.lock().unwrap_or_else(|e| e.into_inner());
        if used.get_or_insert_with(HashSet::new).insert(port) {
            return Ok(port);
        }
    }
    anyhow::bail!("no free loopback port after 100 tries")
}
