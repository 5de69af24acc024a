//! The slow log and the latency monitor of every master: `SLOWLOG GET`
//! (commands shown with their passwords masked and long arguments cut),
//! `LATENCY LATEST` with each event's recent history, and `SLOWLOG RESET`
//! as an audited write.

use redis::Value;
use serde::Serialize;

use crate::actor::Actor;
use crate::error::{Error, Result};
use crate::governance::audit::actions;
use crate::keys;
use crate::redis_conn::{NodeConn, Redis, is_noperm};

/// Entries read from each node at most (Redis keeps 128 by default).
pub const DEFAULT_COUNT: usize = 128;
/// A command argument longer than this many characters is cut.
const ARG_CHARS: usize = 64;
/// A whole command line longer than this many characters is cut.
const LINE_CHARS: usize = 400;
/// History points kept per latency event (Redis keeps up to 160).
const HISTORY_POINTS: usize = 160;

/// One slow command, as one node recorded it.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SlowEntry {
    /// `host:port` of the node that logged it.
    pub node: String,
    /// The node's id for the entry (unique per node, grows).
    pub id: i64,
    /// When it ran (Unix milliseconds, second precision), to sort and plot.
    pub at_ms: i64,
    /// The same time as ISO-8601, as cachedeck prints times.
    pub at: String,
    /// How long it ran, in microseconds.
    pub duration_us: i64,
    /// The command line: passwords masked, long arguments cut.
    pub command: String,
    /// The client's `ip:port`, when the server records it.
    pub client: Option<String>,
    /// The client's name (CLIENT SETNAME), when it set one.
    pub client_name: Option<String>,
}

/// One latency event of one node (`LATENCY LATEST`) and its history.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LatencyEvent {
    /// `host:port` of the node.
    pub node: String,
    /// Event name (`command`, `fast-command`, `expire-cycle`, …).
    pub event: String,
    /// When it last went over the threshold (Unix milliseconds).
    pub latest_at_ms: i64,
    /// Its latest latency, in milliseconds.
    pub latest_ms: i64,
    /// The worst latency recorded since the node started or was reset.
    pub max_ms: i64,
    /// `(Unix ms, latency ms)` points, oldest first (`LATENCY HISTORY`).
    pub history: Vec<(i64, i64)>,
}

/// What one node answered, or why it could not.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NodeSlowlog {
    /// `host:port` of the node.
    pub node: String,
    /// Entries the node holds (`SLOWLOG LEN`), of which up to `count` are shown.
    pub length: Option<i64>,
    /// `slowlog-log-slower-than` in microseconds (negative: logging is
    /// off), when CONFIG GET is permitted.
    pub slower_than_us: Option<i64>,
    /// `latency-monitor-threshold` in ms (0: the monitor is off), when
    /// CONFIG GET is permitted.
    pub latency_threshold_ms: Option<i64>,
    /// Why this node's figures are missing (a refused command), if they are.
    pub note: Option<String>,
}

/// The slow log of every master (or one), newest first.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SlowLog {
    /// Slow commands of every node read, newest first.
    pub entries: Vec<SlowEntry>,
    /// Latency events of every node read, worst first.
    pub latency: Vec<LatencyEvent>,
    /// Per-node settings and refusals.
    pub nodes: Vec<NodeSlowlog>,
}

/// What `SLOWLOG RESET` cleared.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SlowlogReset {
    /// Nodes whose slow log was cleared.
    pub nodes: Vec<String>,
    /// Entries they held just before.
    pub entries_cleared: i64,
}

/// Reads up to `count` slow log entries and the latency events of every
/// master, or only of the master whose address is `node`.
pub async fn slowlog(redis: &Redis, count: usize, node: Option<&str>) -> Result<SlowLog> {
    let count = if count == 0 { DEFAULT_COUNT } else { count };
    let mut out = SlowLog {
        entries: Vec::new(),
        latency: Vec::new(),
        nodes: Vec::new(),
    };
    for mut n in pick(redis, node).await? {
        let (entries, status) = read_node(&mut n, count).await?;
        out.entries.extend(entries);
        out.latency.extend(latency(&mut n).await?);
        out.nodes.push(status);
    }
    out.entries
        .sort_by(|a, b| b.at_ms.cmp(&a.at_ms).then(b.id.cmp(&a.id)));
    out.latency.sort_by_key(|l| std::cmp::Reverse(l.max_ms));
    Ok(out)
}

/// Clears the slow log of every master (or of `node`): a write, so it needs
/// write permission and leaves an audit row (`slowlog_reset`).
pub async fn reset(redis: &Redis, actor: &Actor, node: Option<&str>) -> Result<SlowlogReset> {
    actor.require_write("reset the slow log")?;
    let nodes = pick(redis, node).await?;
    let params = serde_json::json!({
        "nodes": nodes.iter().map(|n| n.addr.clone()).collect::<Vec<_>>(),
    });
    let intent =
        super::audit_begin(actor, actions::SLOWLOG_RESET, "reset the slow log", &params).await?;
    // Filled as nodes are cleared, so a failure on a later node still
    // audits the ones already cleared.
    let mut done = SlowlogReset {
        nodes: Vec::new(),
        entries_cleared: 0,
    };
    let result = async {
        for mut n in nodes {
            let len: i64 = redis::cmd("SLOWLOG")
                .arg("LEN")
                .query_async(&mut n.conn)
                .await
                .map_err(|e| node_error(&n.addr, "SLOWLOG LEN", e))?;
            let () = redis::cmd("SLOWLOG")
                .arg("RESET")
                .query_async(&mut n.conn)
                .await
                .map_err(|e| node_error(&n.addr, "SLOWLOG RESET", e))?;
            done.entries_cleared += len;
            done.nodes.push(n.addr);
        }
        Ok(())
    }
    .await;
    let mut params = params;
    if let serde_json::Value::Object(m) = &mut params {
        m.insert("nodesCleared".into(), done.nodes.clone().into());
        m.insert("entriesCleared".into(), done.entries_cleared.into());
    }
    super::audit(intent, actor, params, false, &result).await;
    result.map(|()| done)
}

/// The masters to read: all, or the one named (an unknown name is an error
/// listing the known ones).
async fn pick(redis: &Redis, node: Option<&str>) -> Result<Vec<NodeConn>> {
    let masters = redis.masters().await?;
    let Some(want) = node else {
        return Ok(masters);
    };
    let known: Vec<String> = masters.iter().map(|n| n.addr.clone()).collect();
    let picked: Vec<NodeConn> = masters.into_iter().filter(|n| n.addr == want).collect();
    if picked.is_empty() {
        return Err(Error::Invalid(format!(
            "no master node {want} (nodes: {})",
            known.join(", ")
        )));
    }
    Ok(picked)
}

fn node_error(addr: &str, what: &str, e: redis::RedisError) -> Error {
    Error::redis(format!("{what} on {addr}"), e)
}

/// One node's entries and settings; a refused SLOWLOG is a note, not an error.
async fn read_node(n: &mut NodeConn, count: usize) -> Result<(Vec<SlowEntry>, NodeSlowlog)> {
    let mut status = NodeSlowlog {
        node: n.addr.clone(),
        length: None,
        slower_than_us: config_int(n, "slowlog-log-slower-than").await,
        latency_threshold_ms: config_int(n, "latency-monitor-threshold").await,
        note: None,
    };
    let got: redis::RedisResult<Value> = redis::cmd("SLOWLOG")
        .arg("GET")
        .arg(count)
        .query_async(&mut n.conn)
        .await;
    let reply = match got {
        Ok(v) => v,
        Err(e) if is_noperm(&e) => {
            status.note = Some("SLOWLOG not permitted for this Redis user".into());
            return Ok((Vec::new(), status));
        }
        Err(e) => return Err(node_error(&n.addr, "SLOWLOG GET", e)),
    };
    status.length = redis::cmd("SLOWLOG")
        .arg("LEN")
        .query_async(&mut n.conn)
        .await
        .ok();
    let entries = match reply {
        Value::Array(items) => items
            .into_iter()
            .filter_map(|v| entry(&n.addr, v))
            .collect(),
        _ => Vec::new(),
    };
    Ok((entries, status))
}

/// `CONFIG GET name` as a number; `None` when refused or absent.
async fn config_int(n: &mut NodeConn, name: &str) -> Option<i64> {
    let pairs: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg(name)
        .query_async(&mut n.conn)
        .await
        .ok()?;
    pairs.get(1)?.trim().parse().ok()
}

/// The latency events of one node with their history; none when refused.
async fn latency(n: &mut NodeConn) -> Result<Vec<LatencyEvent>> {
    let latest: redis::RedisResult<Vec<Value>> = redis::cmd("LATENCY")
        .arg("LATEST")
        .query_async(&mut n.conn)
        .await;
    let latest = match latest {
        Ok(v) => v,
        Err(e) if is_noperm(&e) => return Ok(Vec::new()),
        Err(e) => return Err(node_error(&n.addr, "LATENCY LATEST", e)),
    };
    let mut out = Vec::new();
    for row in latest {
        let Value::Array(f) = row else { continue };
        let (Some(event), Some(at), Some(last), Some(max)) = (
            f.first().and_then(text),
            f.get(1).and_then(int),
            f.get(2).and_then(int),
            f.get(3).and_then(int),
        ) else {
            continue;
        };
        let history: Vec<Value> = redis::cmd("LATENCY")
            .arg("HISTORY")
            .arg(&event)
            .query_async(&mut n.conn)
            .await
            .unwrap_or_default();
        let mut points: Vec<(i64, i64)> = history
            .into_iter()
            .filter_map(|p| match p {
                Value::Array(p) => Some((int(p.first()?)? * 1000, int(p.get(1)?)?)),
                _ => None,
            })
            .collect();
        points.sort_unstable();
        let skip = points.len().saturating_sub(HISTORY_POINTS);
        out.push(LatencyEvent {
            node: n.addr.clone(),
            event,
            latest_at_ms: at * 1000,
            latest_ms: last,
            max_ms: max,
            history: points.split_off(skip),
        });
    }
    Ok(out)
}

/// One `SLOWLOG GET` entry: `[id, unix s, µs, [args…], client, name]`
/// (the last two since Redis 4).
fn entry(node: &str, v: Value) -> Option<SlowEntry> {
    let Value::Array(f) = v else { return None };
    let id = int(f.first()?)?;
    let secs = int(f.get(1)?)?;
    let duration_us = int(f.get(2)?)?;
    let args: Vec<String> = match f.get(3)? {
        Value::Array(a) => a.iter().filter_map(bytes).map(|b| show_arg(&b)).collect(),
        _ => Vec::new(),
    };
    let non_empty = |v: Option<&Value>| v.and_then(text).filter(|s| !s.is_empty());
    Some(SlowEntry {
        node: node.to_string(),
        id,
        at_ms: secs * 1000,
        at: crate::jobs::iso(secs * 1000),
        duration_us,
        command: command_line(&args),
        client: non_empty(f.get(4)),
        client_name: non_empty(f.get(5)),
    })
}

/// The printable form of one argument, cut to [`ARG_CHARS`].
fn show_arg(b: &[u8]) -> String {
    let shown = keys::display_bytes(b);
    cut(&shown, ARG_CHARS)
}

/// Arguments joined into one line with passwords masked, cut to
/// [`LINE_CHARS`].
pub fn command_line(args: &[String]) -> String {
    let masked = crate::redact::redact_args(args);
    cut(&masked.join(" "), LINE_CHARS)
}

fn cut(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}… ({} chars)", &s[..i], s.chars().count()),
        None => s.to_string(),
    }
}

fn int(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        Value::BulkString(b) => std::str::from_utf8(b).ok()?.parse().ok(),
        Value::SimpleString(s) => s.parse().ok(),
        _ => None,
    }
}

fn bytes(v: &Value) -> Option<Vec<u8>> {
    match v {
        Value::BulkString(b) => Some(b.clone()),
        Value::SimpleString(s) => Some(s.as_bytes().to_vec()),
        Value::Int(i) => Some(i.to_string().into_bytes()),
        _ => None,
    }
}

fn text(v: &Value) -> Option<String> {
    bytes(v).map(|b| String::from_utf8_lossy(&b).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &[&str]) -> Vec<String> {
        s.iter().map(|a| a.to_string()).collect()
    }

    /// Passwords in logged commands are masked; other arguments stay.
    #[test]
    fn command_lines_hide_passwords() {
        assert_eq!(command_line(&args(&["AUTH", "s3cret"])), "AUTH ***");
        assert_eq!(
            command_line(&args(&["CONFIG", "SET", "requirepass", "s3cret"])),
            "CONFIG SET requirepass ***"
        );
        assert_eq!(
            command_line(&args(&["HELLO", "3", "AUTH", "admin", "s3cret"])),
            "HELLO 3 AUTH admin ***"
        );
        assert_eq!(command_line(&args(&["GET", "k"])), "GET k");
    }

    /// Long lines are cut and say how long they were.
    #[test]
    fn long_lines_are_cut() {
        let long = "x".repeat(1000);
        let line = command_line(&args(&["SET", "k", &long]));
        assert!(line.len() < LINE_CHARS + 40, "{line}");
        assert!(line.ends_with("(1006 chars)"), "{line}");
        assert_eq!(show_arg(&[b'a'; 100]).chars().count(), ARG_CHARS + 1 + 12);
    }

    /// A Redis 7 entry parses with client and name; a name-less one too.
    #[test]
    fn entries_parse() {
        let v = Value::Array(vec![
            Value::Int(7),
            Value::Int(1_700_000_000),
            Value::Int(12_345),
            Value::Array(vec![
                Value::BulkString(b"AUTH".to_vec()),
                Value::BulkString(b"pw".to_vec()),
            ]),
            Value::BulkString(b"127.0.0.1:5000".to_vec()),
            Value::BulkString(Vec::new()),
        ]);
        let e = entry("n:1", v).expect("entry");
        assert_eq!(e.id, 7);
        assert_eq!(e.at_ms, 1_700_000_000_000);
        assert_eq!(e.duration_us, 12_345);
        assert_eq!(e.command, "AUTH ***");
        assert_eq!(e.client.as_deref(), Some("127.0.0.1:5000"));
        assert_eq!(e.client_name, None);
    }
}
