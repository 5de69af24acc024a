//! Free loopback ports. Tests run on parallel threads of one process, so every
//! port handed out is remembered and never handed out again in this process;
//! a clash with another process shows up as a bind failure of the server,
//! which the caller retries on a new port.

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::sync::{Mutex, MutexGuard};

static RESERVED: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

/// Offset of the Redis Cluster bus port from the client port.
pub const CLUSTER_BUS_OFFSET: u16 = 10_000;

fn reserved() -> MutexGuard<'static, BTreeSet<u16>> {
    RESERVED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn bindable(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

fn ephemeral() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("cannot bind a loopback port (127.0.0.1:0): {e}"))
}

/// A loopback port that was free a moment ago and that no other test of this
/// process has been given.
pub fn free_port() -> u16 {
    let mut taken = reserved();
    for _ in 0..1000 {
        let port = ephemeral();
        if taken.insert(port) {
            return port;
        }
    }
    panic!("no free loopback port found after 1000 tries")
}

/// Like [`free_port`], and `port + 10000` (the cluster bus port) is free too.
pub fn free_cluster_port() -> u16 {
    let mut taken = reserved();
    for _ in 0..1000 {
        let port = ephemeral();
        let Some(bus) = port.checked_add(CLUSTER_BUS_OFFSET) else {
            continue;
        };
        if taken.contains(&port) || taken.contains(&bus) || !bindable(bus) {
            continue;
        }
        taken.insert(port);
        taken.insert(bus);
        return port;
    }
    panic!("no free loopback port pair (port, port+10000) found after 1000 tries")
}
