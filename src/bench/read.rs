//! The read benchmark behind BENCHMARKS.md: the worst latency another client
//! (a PING loop on its own connection) sees while one query reads every
//! entry of one measure and frequency, with the bounded reader
//! (`cache::query`: SSCAN steps and MGET chunks) and with the one-script
//! reader it replaced (SMEMBERS + MGET of everything inside one script).

use std::time::Instant;

use serde::Serialize;

use super::probe::PingLoop;
use crate::cache::query::{self, QueryRequest};
use crate::cache::set_scan::SetScan;
use crate::error::{Error, Result};
use crate::keys::{self, DsId, Gen, GroupKey, SecondaryIndex};
use crate::redis_conn::Redis;

/// Datasource id the benchmark writes (kept apart from real ones).
pub const BENCH_READ_DS: DsId = 990_002;

/// Entries written per pipeline while filling.
const FILL_BATCH: usize = 1000;

/// The reader the bounded one replaced: the whole index and every entry in
/// one script.
const ONE_SCRIPT: &str = r"
local keys = redis.call('SMEMBERS', KEYS[1])
table.sort(keys)
local n = 0
for i = 1, #keys, 500 do
  local values = redis.call('MGET', unpack(keys, i, math.min(i + 499, #keys)))
  n = n + #values
end
return n
";

/// What one run measured.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReadBench {
    pub entries: u64,
    pub fill_ms: f64,
    /// The worst PING of the same loop over one second with no query: the
    /// machine's own jitter.
    pub idle_ping_worst_ms: f64,
    /// The bounded reader: its duration and the worst PING beside it.
    pub bounded_query_ms: f64,
    pub bounded_ping_worst_ms: f64,
    /// The one-script reader: its duration and the worst PING beside it.
    pub one_script_ms: f64,
    pub one_script_ping_worst_ms: f64,
}

fn group(i: u64) -> GroupKey {
    GroupKey {
        measure: "Bench".into(),
        practice: i.to_string(),
        provider: Some("1".into()),
        frequency: "Monthly".into(),
    }
}

/// Runs the benchmark with `entries` entries of one measure and frequency
/// in the Redis `redis`; everything it wrote is deleted at the end.
pub async fn run(redis: &Redis, entries: u64) -> Result<ReadBench> {
    let ds = BENCH_READ_DS;
    let index = SecondaryIndex::MeasureFreq {
        measure: "Bench".into(),
        frequency: "Monthly".into(),
    }
    .key(ds, Gen::Live);
    let master = keys::master_index(ds, Gen::Live);
    eprintln!("writing {entries} entries…");
    let t = Instant::now();
    let row = r#"[{"measure":"Bench","practice_uid":1,"provider_uid":1,"frequency":"Monthly","period_start":"2026-01-01","amount":1234.56,"visit_count":42}]"#;
    let mut i = 0;
    while i < entries {
        let end = (i + FILL_BATCH as u64).min(entries);
        let names: Vec<String> = (i..end)
            .map(|n| keys::entry(ds, Gen::Live, &group(n)))
            .collect();
        let mut p = redis::pipe();
        for k in &names {
            p.cmd("SET").arg(k).arg(row).ignore();
        }
        p.cmd("SADD").arg(&master).arg(&names).ignore();
        p.cmd("SADD").arg(&index).arg(&names).ignore();
        redis.pipe::<()>("filling the read benchmark", &p).await?;
        i = end;
    }
    let _: () = redis
        .query(
            "writing meta",
            redis::cmd("HSET")
                .arg(keys::meta(ds))
                .arg("generation")
                .arg(1),
        )
        .await?;
    let fill_ms = t.elapsed().as_secs_f64() * 1000.0;

    eprintln!("idle PING loop…");
    let ping = PingLoop::start(redis).await?;
    let start = Instant::now();
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let idle_ping = ping.finish((start, Instant::now())).await;

    eprintln!("bounded query…");
    let req = QueryRequest {
        datasource: ds,
        measure: "Bench".into(),
        frequency: "Monthly".into(),
        practices: vec![],
        providers: vec![],
    };
    let ping = PingLoop::start(redis).await?;
    let start = Instant::now();
    let res = query::query(redis, &req).await;
    let window = (start, Instant::now());
    let bounded_ping = ping.finish(window).await;
    let res = res?;
    if !res.hit || res.entries as u64 != entries {
        return Err(Error::Invalid(format!(
            "the bounded query answered {} with {} entries",
            if res.hit { "a hit" } else { "a miss" },
            res.entries
        )));
    }
    let bounded_ms = (window.1 - window.0).as_secs_f64() * 1000.0;

    eprintln!("one-script query…");
    let script = redis::Script::new(ONE_SCRIPT);
    let ping = PingLoop::start(redis).await?;
    let start = Instant::now();
    let mut conn = redis.conn();
    let n: redis::RedisResult<u64> = script.key(&index).invoke_async(&mut conn).await;
    let window = (start, Instant::now());
    let one_ping = ping.finish(window).await;
    let n = n.map_err(|e| Error::redis("the one-script query", e))?;
    if n != entries {
        return Err(Error::Invalid(format!(
            "the one-script query read {n} entries"
        )));
    }
    let one_ms = (window.1 - window.0).as_secs_f64() * 1000.0;

    eprintln!("cleaning up…");
    let mut scan = SetScan::new(redis, master.as_str(), "reading the benchmark entries");
    while let Some(batch) = scan.next().await? {
        if !batch.is_empty() {
            let _: u64 = redis
                .query(
                    "deleting benchmark entries",
                    redis::cmd("UNLINK").arg(&batch),
                )
                .await?;
        }
    }
    let _: u64 = redis
        .query(
            "deleting benchmark sets",
            redis::cmd("UNLINK")
                .arg(&master)
                .arg(&index)
                .arg(keys::meta(ds)),
        )
        .await?;
    Ok(ReadBench {
        entries,
        fill_ms,
        idle_ping_worst_ms: idle_ping,
        bounded_query_ms: bounded_ms,
        bounded_ping_worst_ms: bounded_ping,
        one_script_ms: one_ms,
        one_script_ping_worst_ms: one_ping,
    })
}
