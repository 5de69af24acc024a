//! Passive observation of reads (issue 15 §3): when the application does
//! not report its hits and misses, how its entries are read is seen from
//! Redis' own per-key access clock, without asking the application for
//! anything and without changing what is observed.
//!
//! Up to [`USAGE_SAMPLE`] random entries of a datasource (SRANDMEMBER of
//! its master set, one bounded reply) are measured in paced pipelines of
//! [`BATCH`]: `OBJECT IDLETIME` (or `OBJECT FREQ` under an LFU
//! `maxmemory-policy`), `MEMORY USAGE` and `PTTL`. None of these touches a
//! key's access time. From them:
//!
//! - the share of entries read within the last hour and day: an entry
//!   counts as read when it was accessed after it was written (its idle
//!   time is shorter than the time since it was written, which its
//!   remaining TTL and the datasource's TTL tell), so a fresh warm that
//!   nobody reads is not mistaken for reads;
//! - the entries not read (nor written) for a day and the memory they hold,
//!   scaled from the sample to the datasource;
//! - the hottest and coldest measures, practices and frequencies, from the
//!   key names ([`keys::parse_observed_entry`]).
//!
//! Limits: any access resets the idle time (another tool's GET too), and
//! LFU counters decay, so under LFU only "read recently" (a counter above
//! the initial value) and "not read for a while" (a counter of 0) are told.

use std::collections::HashMap;
use std::time::Duration;

use serde::Serialize;

use crate::error::Result;
use crate::keys::{self, DsId, Gen, GroupKey};
use crate::redis_conn::Redis;

/// Entries sampled per datasource, at most.
pub const USAGE_SAMPLE: usize = 2_000;
/// Entries measured per pipeline (one round trip, ~3 commands each).
const BATCH: usize = 250;
/// Pause between pipelines, so sampling never crowds out the application.
const PACE: Duration = Duration::from_millis(2);
/// Idle times are kept with about a second of resolution; an entry read
/// within this many seconds of its write is not told apart from the write.
const SLACK_SECS: i64 = 60;
const HOUR_SECS: u64 = 3_600;
const DAY_SECS: u64 = 86_400;
/// The LFU counter of a freshly written key (Redis' LFU_INIT_VAL): a read
/// raises it, time lowers it.
const LFU_INIT: u64 = 5;
/// Groups named in each of the hottest / coldest lists, at most.
const RANKED: usize = 3;

/// Which access clock Redis keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum UsageClock {
    /// `OBJECT IDLETIME`: seconds since the last access (LRU and other
    /// non-LFU policies).
    IdleTime,
    /// `OBJECT FREQ`: a logarithmic, decaying access counter (LFU policies).
    LfuFrequency,
}

/// How the entries of one measure, practice or frequency are read.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupUsage {
    /// The measure, practice or frequency.
    pub value: String,
    /// Sampled entries of it.
    pub sampled: u64,
    /// Percent of them read within the last hour (idle-time clock only).
    pub read_last_hour: Option<f64>,
    /// Percent of them read within the last day (idle-time clock only).
    pub read_last_day: Option<f64>,
    /// Mean LFU counter (LFU clock only).
    pub mean_frequency: Option<f64>,
    /// Percent of them not read for a day (LFU: counter 0).
    pub cold_share: f64,
    /// Memory they hold while not read, scaled to the datasource (bytes).
    pub cold_bytes: u64,
}

/// Hottest or coldest groups per key component.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Ranked {
    /// Measures.
    pub measures: Vec<GroupUsage>,
    /// Practices.
    pub practices: Vec<GroupUsage>,
    /// Frequencies.
    pub frequencies: Vec<GroupUsage>,
}

/// What a sample of a datasource's entries says about its reads. Every
/// figure is sampled: `sampleSize` of `totalEntries`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReadUsage {
    /// Always true: a reader of the JSON sees the figures are sampled.
    pub sampled: bool,
    /// Server time of the sample (ms), for its age and the renewal.
    pub sampled_at_ms: i64,
    /// Entries measured (still existing when measured).
    pub sample_size: u64,
    /// SCARD of the master set when sampled: what the sample is scaled to.
    pub total_entries: u64,
    /// The access clock read.
    pub clock: UsageClock,
    /// `maxmemory-policy`, when CONFIG GET was permitted.
    pub policy: Option<String>,
    /// What limits these figures (policy unreadable, write time unknown…).
    pub notes: Vec<String>,
    /// Percent of entries read within the last hour (idle-time clock only).
    pub read_last_hour: Option<f64>,
    /// Percent of entries read within the last day (idle-time clock only).
    pub read_last_day: Option<f64>,
    /// Percent of entries not read (nor written) for a day; LFU: counter 0.
    pub cold_share: f64,
    /// Memory of all entries, scaled from the sample (bytes).
    pub entries_bytes: u64,
    /// Memory of the entries not read for a day, scaled (bytes).
    pub cold_bytes: u64,
    /// Most read first.
    pub hottest: Ranked,
    /// Least read first.
    pub coldest: Ranked,
    /// Measures holding the most cold memory, largest first.
    pub cold_measures: Vec<GroupUsage>,
    /// Some sampled entry was read after it was written, recently: the
    /// application reads this cache (whether or not it reports it).
    pub read_activity: bool,
}

impl ReadUsage {
    /// The cost–benefit sentence: "38 % of this datasource's 420 MB of
    /// entries was not read in 24 h (sampled: 2,000 of 9,000 entries);
    /// mostly these measures: A (120 MB), B (30 MB)".
    pub fn cold_sentence(&self) -> String {
        let what = match self.clock {
            UsageClock::IdleTime => "was not read in 24 h",
            UsageClock::LfuFrequency => "has an LFU counter of 0 (not read lately)",
        };
        let mut s = format!(
            "{:.0} % of this datasource's {} of entries {what} (sampled: {} of {} entries)",
            self.cold_share,
            human_bytes(self.entries_bytes),
            self.sample_size,
            self.total_entries
        );
        if !self.cold_measures.is_empty() {
            let names: Vec<String> = self
                .cold_measures
                .iter()
                .map(|g| format!("{} ({})", g.value, human_bytes(g.cold_bytes)))
                .collect();
            s.push_str("; mostly these measures: ");
            s.push_str(&names.join(", "));
        }
        s
    }
}

/// "420 MB", "12.3 KB".
pub fn human_bytes(b: u64) -> String {
    let b = b as f64;
    if b >= 1024.0 * 1024.0 * 1024.0 {
        format!("{:.1} GB", b / (1024.0 * 1024.0 * 1024.0))
    } else if b >= 1024.0 * 1024.0 {
        format!("{:.1} MB", b / (1024.0 * 1024.0))
    } else if b >= 1024.0 {
        format!("{:.1} KB", b / 1024.0)
    } else {
        format!("{b:.0} B")
    }
}

/// One measured entry.
#[derive(Debug, Clone)]
struct Measured {
    /// Its key components; `None` for a name that is not an entry key.
    group: Option<GroupKey>,
    /// `OBJECT IDLETIME` seconds (idle clock).
    idle: Option<u64>,
    /// `OBJECT FREQ` (LFU clock).
    freq: Option<u64>,
    /// `MEMORY USAGE` bytes.
    bytes: u64,
    /// Seconds since it was written, from its remaining TTL; `None` when
    /// that cannot be told (no TTL, or more left than the datasource's).
    written_ago: Option<i64>,
}

impl Measured {
    /// Accessed after its write (unknown write time: any access counts).
    fn read_since_write(&self) -> bool {
        match (self.idle, self.written_ago) {
            (Some(i), Some(w)) => (i as i64) + SLACK_SECS < w,
            (Some(_), None) => true,
            _ => false,
        }
    }

    fn read_within(&self, secs: u64) -> bool {
        self.read_since_write() && self.idle.is_some_and(|i| i < secs)
    }

    fn cold(&self) -> bool {
        match (self.idle, self.freq) {
            (Some(i), _) => i >= DAY_SECS,
            (None, Some(f)) => f == 0,
            _ => false,
        }
    }

    fn read_recently(&self) -> bool {
        match (self.idle, self.freq) {
            (Some(_), _) => self.read_within(DAY_SECS),
            (None, Some(f)) => f > LFU_INIT,
            _ => false,
        }
    }
}

/// Reads `maxmemory-policy`; `None` when CONFIG is not permitted.
async fn policy(redis: &Redis) -> Option<String> {
    let reply: redis::Value = redis
        .query(
            "reading maxmemory-policy",
            redis::cmd("CONFIG").arg("GET").arg("maxmemory-policy"),
        )
        .await
        .ok()?;
    let text = |v: &redis::Value| match v {
        redis::Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        redis::Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    };
    match reply {
        redis::Value::Array(a) => a.get(1).and_then(text),
        redis::Value::Map(m) => m.first().and_then(|(_, v)| text(v)),
        _ => None,
    }
}

fn as_i64(v: Option<&redis::Value>) -> Option<i64> {
    match v {
        Some(redis::Value::Int(n)) => Some(*n),
        _ => None,
    }
}

/// Measures one batch with `OBJECT <sub>`, MEMORY USAGE and PTTL.
async fn measure(
    redis: &Redis,
    ds: DsId,
    names: &[String],
    sub: &str,
    ttl_secs: i64,
) -> Result<Vec<Measured>> {
    let mut p = redis::pipe();
    for n in names {
        p.cmd("OBJECT").arg(sub).arg(n);
        p.cmd("MEMORY").arg("USAGE").arg(n);
        p.cmd("PTTL").arg(n);
    }
    let replies: Vec<redis::Value> = redis
        .pipe("sampling how the entries are read (OBJECT)", &p)
        .await?;
    let mut out = Vec::with_capacity(names.len());
    for (i, n) in names.iter().enumerate() {
        let clock = as_i64(replies.get(3 * i)).filter(|v| *v >= 0);
        let Some(bytes) = as_i64(replies.get(3 * i + 1)).filter(|v| *v >= 0) else {
            continue; // gone since it was sampled
        };
        let pttl = as_i64(replies.get(3 * i + 2)).unwrap_or(-2);
        let written_ago = (ttl_secs > 0 && pttl > 0 && pttl <= ttl_secs * 1000 + 1000)
            .then(|| (ttl_secs * 1000 - pttl).max(0) / 1000);
        let clock = clock.map(|c| c as u64);
        out.push(Measured {
            group: keys::parse_observed_entry(ds, n),
            idle: clock.filter(|_| sub == "IDLETIME"),
            freq: clock.filter(|_| sub == "FREQ"),
            bytes: bytes as u64,
            written_ago,
        });
    }
    Ok(out)
}

/// Samples the reads of datasource `ds` (TTL `ttl_secs`) whose master set
/// holds `entries` members; `None` when it has none.
pub async fn sample_usage(
    redis: &Redis,
    ds: DsId,
    ttl_secs: i64,
    entries: u64,
    now_ms: i64,
) -> Result<Option<ReadUsage>> {
    let master = keys::master_index(ds, Gen::Live);
    let names: Vec<String> = redis
        .query(
            "sampling the entries whose reads are observed",
            redis::cmd("SRANDMEMBER").arg(&master).arg(USAGE_SAMPLE),
        )
        .await?;
    if names.is_empty() {
        return Ok(None);
    }
    let mut notes = Vec::new();
    let policy = policy(redis).await;
    let mut clock = match &policy {
        Some(p) if p.contains("lfu") => UsageClock::LfuFrequency,
        Some(_) => UsageClock::IdleTime,
        None => {
            notes.push(
                "maxmemory-policy could not be read (CONFIG GET not permitted): \
                 idle times were read"
                    .to_string(),
            );
            UsageClock::IdleTime
        }
    };
    let mut measured = Vec::with_capacity(names.len());
    for (i, chunk) in names.chunks(BATCH).enumerate() {
        if i > 0 {
            tokio::time::sleep(PACE).await;
        }
        let sub = match clock {
            UsageClock::IdleTime => "IDLETIME",
            UsageClock::LfuFrequency => "FREQ",
        };
        match measure(redis, ds, chunk, sub, ttl_secs).await {
            Ok(m) => measured.extend(m),
            // The policy was not readable and is LFU: Redis says so.
            Err(e) if clock == UsageClock::IdleTime && e.to_string().contains("LFU") => {
                clock = UsageClock::LfuFrequency;
                notes.push("Redis keeps LFU counters here: access frequencies were read".into());
                measured.extend(measure(redis, ds, chunk, "FREQ", ttl_secs).await?);
            }
            Err(e) => return Err(e),
        }
    }
    if clock == UsageClock::IdleTime && measured.iter().any(|m| m.written_ago.is_none()) {
        notes.push(
            "some entries have no TTL (or a longer one than the datasource's): \
             any access since their write counts as a read"
                .into(),
        );
    }
    Ok(Some(derive(
        &measured, clock, policy, notes, entries, now_ms,
    )))
}

fn pct(n: usize, of: usize) -> f64 {
    if of == 0 {
        0.0
    } else {
        (n as f64 * 1000.0 / of as f64).round() / 10.0
    }
}

/// The figures of a measured sample.
fn derive(
    measured: &[Measured],
    clock: UsageClock,
    policy: Option<String>,
    notes: Vec<String>,
    entries: u64,
    now_ms: i64,
) -> ReadUsage {
    let n = measured.len();
    // Bytes of the sample → bytes of the datasource.
    let scale = if n == 0 {
        0.0
    } else {
        entries.max(n as u64) as f64 / n as f64
    };
    let scaled = |b: u64| (b as f64 * scale).round() as u64;
    let idle = clock == UsageClock::IdleTime;
    let count = |f: &dyn Fn(&Measured) -> bool| measured.iter().filter(|m| f(m)).count();
    let cold_bytes: u64 = measured.iter().filter(|m| m.cold()).map(|m| m.bytes).sum();
    let all_bytes: u64 = measured.iter().map(|m| m.bytes).sum();

    let by = |part: fn(&GroupKey) -> &str| groups(measured, part, clock, scale);
    let (mut hottest, mut coldest) = (Ranked::default(), Ranked::default());
    for (part, h, c) in [
        (
            (|g: &GroupKey| g.measure.as_str()) as fn(&GroupKey) -> &str,
            &mut hottest.measures,
            &mut coldest.measures,
        ),
        (
            |g| g.practice.as_str(),
            &mut hottest.practices,
            &mut coldest.practices,
        ),
        (
            |g| g.frequency.as_str(),
            &mut hottest.frequencies,
            &mut coldest.frequencies,
        ),
    ] {
        let ranked = by(part);
        // Never the same group in both lists: each takes at most half.
        let k = (ranked.len() / 2).clamp(1, RANKED).min(ranked.len());
        *h = ranked.iter().take(k).cloned().collect();
        *c = ranked.iter().rev().take(k).cloned().collect();
    }
    let mut cold_measures: Vec<GroupUsage> = by(|g| g.measure.as_str())
        .into_iter()
        .filter(|g| g.cold_bytes > 0)
        .collect();
    cold_measures.sort_by(|a, b| b.cold_bytes.cmp(&a.cold_bytes).then(a.value.cmp(&b.value)));
    cold_measures.truncate(RANKED);

    ReadUsage {
        sampled: true,
        sampled_at_ms: now_ms,
        sample_size: n as u64,
        total_entries: entries,
        clock,
        policy,
        notes,
        read_last_hour: idle.then(|| pct(count(&|m| m.read_within(HOUR_SECS)), n)),
        read_last_day: idle.then(|| pct(count(&|m| m.read_within(DAY_SECS)), n)),
        cold_share: pct(count(&|m| m.cold()), n),
        entries_bytes: scaled(all_bytes),
        cold_bytes: scaled(cold_bytes),
        hottest,
        coldest,
        cold_measures,
        read_activity: measured.iter().any(Measured::read_recently),
    }
}

/// Per value of one key component, hottest first.
fn groups(
    measured: &[Measured],
    part: fn(&GroupKey) -> &str,
    clock: UsageClock,
    scale: f64,
) -> Vec<GroupUsage> {
    let mut by: HashMap<&str, Vec<&Measured>> = HashMap::new();
    for m in measured {
        if let Some(g) = &m.group {
            by.entry(part(g)).or_default().push(m);
        }
    }
    let mut out: Vec<(f64, GroupUsage)> = by
        .into_iter()
        .map(|(value, ms)| {
            let n = ms.len();
            let read_day = pct(ms.iter().filter(|m| m.read_within(DAY_SECS)).count(), n);
            let read_hour = pct(ms.iter().filter(|m| m.read_within(HOUR_SECS)).count(), n);
            let cold = pct(ms.iter().filter(|m| m.cold()).count(), n);
            let mean_freq = ms.iter().filter_map(|m| m.freq).sum::<u64>() as f64 / n as f64;
            let cold_bytes: u64 = ms.iter().filter(|m| m.cold()).map(|m| m.bytes).sum();
            // How hot: reads in the day, then in the hour, then not cold.
            let heat = match clock {
                UsageClock::IdleTime => read_day * 1e6 + read_hour * 1e3 + (100.0 - cold),
                UsageClock::LfuFrequency => mean_freq,
            };
            let g = GroupUsage {
                value: value.to_string(),
                sampled: n as u64,
                read_last_hour: (clock == UsageClock::IdleTime).then_some(read_hour),
                read_last_day: (clock == UsageClock::IdleTime).then_some(read_day),
                mean_frequency: (clock == UsageClock::LfuFrequency)
                    .then_some((mean_freq * 10.0).round() / 10.0),
                cold_share: cold,
                cold_bytes: (cold_bytes as f64 * scale).round() as u64,
            };
            (heat, g)
        })
        .collect();
    out.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.value.cmp(&b.1.value)));
    out.into_iter().map(|(_, g)| g).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(measure: &str, idle: u64, written_ago: Option<i64>, bytes: u64) -> Measured {
        Measured {
            group: Some(GroupKey {
                measure: measure.into(),
                practice: "1".into(),
                provider: None,
                frequency: "Monthly".into(),
            }),
            idle: Some(idle),
            freq: None,
            bytes,
            written_ago,
        }
    }

    #[test]
    fn reads_after_the_write_count_and_cold_memory_is_scaled() {
        let day = 26 * 3600;
        let sample = vec![
            m("Hot", 5, Some(day), 100),
            m("Hot", 10, Some(day), 100),
            m("Warm", 7200, Some(day), 100),
            m("Cold", 90_000, Some(day), 300),
            // Written a minute ago and never read since: not a read.
            m("Fresh", 30, Some(40), 100),
        ];
        let u = derive(&sample, UsageClock::IdleTime, None, vec![], 50, 0);
        assert_eq!(u.read_last_hour, Some(40.0));
        assert_eq!(u.read_last_day, Some(60.0));
        assert_eq!(u.cold_share, 20.0);
        assert_eq!(u.entries_bytes, 7000, "700 bytes × 50/5");
        assert_eq!(u.cold_bytes, 3000);
        assert_eq!(u.hottest.measures[0].value, "Hot");
        assert_eq!(u.coldest.measures[0].value, "Cold");
        assert_eq!(u.cold_measures[0].value, "Cold");
        assert!(u.read_activity);
        let s = u.cold_sentence();
        assert!(s.starts_with("20 % of this datasource's 6.8 KB"), "{s}");
        assert!(
            s.contains("sampled: 5 of 50") && s.contains("Cold (2.9 KB)"),
            "{s}"
        );
        // Only fresh, unread entries: no read activity.
        let fresh = derive(&sample[4..], UsageClock::IdleTime, None, vec![], 1, 0);
        assert!(!fresh.read_activity);
        assert_eq!(fresh.read_last_hour, Some(0.0));
    }
}
