//! The one place that formats or parses Redis key names (DESIGN.md, "Redis keys").
//!
//! Every key of datasource `N` carries the Redis Cluster hash tag `{ds:N}`, so a
//! datasource's live entries, shadow generation, indexes, meta, lock and stats all
//! sit in one slot and the swap can be a single script.
//!
//! Components (measure, practice, provider, frequency) are escaped: plain values
//! stay as they are, while `:` `{` `}` `*` `?` `[` `]` `\` `%`, space, control
//! characters and every non-ASCII byte become `%XX` (upper-case hex of each UTF-8
//! byte). A SQL NULL is the token `%N`, which escaping can never produce because an
//! escape is always `%` followed by two hex digits.

use std::fmt::Write as _;

/// Datasource id as stored in the registry.
pub type DsId = i64;

/// The token that stands for a NULL component.
pub const NULL_TOKEN: &str = "%N";

/// Escapes one key component so it cannot forge a separator, a hash tag or a
/// SCAN glob. `None` (SQL NULL) becomes [`NULL_TOKEN`].
pub fn escape(value: Option<&str>) -> String {
    let Some(value) = value else {
        return NULL_TOKEN.to_string();
    };
    let mut out = String::with_capacity(value.len());
    for &b in value.as_bytes() {
        if needs_escape(b) {
            let _ = write!(out, "%{b:02X}");
        } else {
            out.push(b as char);
        }
    }
    out
}

fn needs_escape(b: u8) -> bool {
    matches!(
        b,
        b':' | b'{' | b'}' | b'*' | b'?' | b'[' | b']' | b'\\' | b'%' | b' '
    ) || !(0x20..0x7f).contains(&b)
}

/// Reverses [`escape`]. Returns `None` for text that escaping cannot produce.
pub fn unescape(text: &str) -> Option<Option<String>> {
    if text == NULL_TOKEN {
        return Some(None);
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            if !hex
                .bytes()
                .all(|c| c.is_ascii_digit() || (b'A'..=b'F').contains(&c))
            {
                return None;
            }
            let v = u8::from_str_radix(hex, 16).ok()?;
            if !needs_escape(v) {
                return None;
            }
            out.push(v);
            i += 3;
        } else if needs_escape(b) {
            return None;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).ok().map(Some)
}

/// The group key of one cache entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupKey {
    pub measure: String,
    pub practice: String,
    /// `None` when the source row's provider_uid is NULL.
    pub provider: Option<String>,
    pub frequency: String,
}

/// A fencing number: every acquisition of a datasource's warm lock gets the
/// next one (`lock:shadow:warm:{ds:N}:fence`), and the warm that holds it
/// writes its shadow generation under names that carry it, so a warm that
/// lost its lease can never write or delete what the next holder warms.
pub type Fence = u64;

/// Which generation a key belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gen {
    Live,
    /// The shadow generation written under this fencing number.
    Shadow(Fence),
}

fn tag(ds: DsId) -> String {
    format!("{{ds:{ds}}}")
}

/// `cache:{ds:N}:` or `cache:shadow:{ds:N}:<fence>:`: the prefix of every
/// entry key.
pub fn entry_prefix(ds: DsId, generation: Gen) -> String {
    match generation {
        Gen::Live => format!("cache:{}:", tag(ds)),
        Gen::Shadow(f) => format!("cache:shadow:{}:{f}:", tag(ds)),
    }
}

/// `idx:{ds:N}:` or `idx:shadow:{ds:N}:<fence>:`: the prefix of every index
/// key.
pub fn index_prefix(ds: DsId, generation: Gen) -> String {
    match generation {
        Gen::Live => format!("idx:{}:", tag(ds)),
        Gen::Shadow(f) => format!("idx:shadow:{}:{f}:", tag(ds)),
    }
}

/// One cache entry: `cache:{ds:N}:m:<m>:p:<p>:prov:<prov>:freq:<f>`.
pub fn entry(ds: DsId, generation: Gen, g: &GroupKey) -> String {
    format!(
        "{}m:{}:p:{}:prov:{}:freq:{}",
        entry_prefix(ds, generation),
        escape(Some(&g.measure)),
        escape(Some(&g.practice)),
        escape(g.provider.as_deref()),
        escape(Some(&g.frequency))
    )
}

/// The set of every entry key of a generation.
pub fn master_index(ds: DsId, generation: Gen) -> String {
    format!("{}master", index_prefix(ds, generation))
}

/// The set naming every secondary index of a generation.
pub fn index_list(ds: DsId, generation: Gen) -> String {
    format!("{}indexes", index_prefix(ds, generation))
}

/// A secondary index over the entries of one datasource.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SecondaryIndex {
    MeasureFreq {
        measure: String,
        frequency: String,
    },
    Practice {
        measure: String,
        practice: String,
        frequency: String,
    },
    Provider {
        measure: String,
        provider: Option<String>,
        frequency: String,
    },
}

impl SecondaryIndex {
    /// The three secondary indexes an entry belongs to.
    pub fn for_group(g: &GroupKey) -> [SecondaryIndex; 3] {
        [
            SecondaryIndex::MeasureFreq {
                measure: g.measure.clone(),
                frequency: g.frequency.clone(),
            },
            SecondaryIndex::Practice {
                measure: g.measure.clone(),
                practice: g.practice.clone(),
                frequency: g.frequency.clone(),
            },
            SecondaryIndex::Provider {
                measure: g.measure.clone(),
                provider: g.provider.clone(),
                frequency: g.frequency.clone(),
            },
        ]
    }

    /// The key name of this index.
    pub fn key(&self, ds: DsId, generation: Gen) -> String {
        let p = index_prefix(ds, generation);
        match self {
            SecondaryIndex::MeasureFreq { measure, frequency } => format!(
                "{p}m:{}:freq:{}",
                escape(Some(measure)),
                escape(Some(frequency))
            ),
            SecondaryIndex::Practice {
                measure,
                practice,
                frequency,
            } => format!(
                "{p}m:{}:p:{}:freq:{}",
                escape(Some(measure)),
                escape(Some(practice)),
                escape(Some(frequency))
            ),
            SecondaryIndex::Provider {
                measure,
                provider,
                frequency,
            } => format!(
                "{p}m:{}:prov:{}:freq:{}",
                escape(Some(measure)),
                escape(provider.as_deref()),
                escape(Some(frequency))
            ),
        }
    }
}

/// The shadow entry key, in the generation of `fence`, of a live entry key
/// (index members name live keys).
pub fn shadow_of_entry(ds: DsId, fence: Fence, live_key: &str) -> Option<String> {
    shadow_of(ds, fence, live_key, "cache:", "cache:shadow:")
}

/// The shadow name, in the generation of `fence`, of a live secondary index
/// key.
pub fn shadow_of_index(ds: DsId, fence: Fence, live_key: &str) -> Option<String> {
    shadow_of(ds, fence, live_key, "idx:", "idx:shadow:")
}

/// `<live_head>{ds:N}:rest` → `<shadow_head>{ds:N}:<fence>:rest`, in one
/// allocation (the swap names up to millions of keys this way).
fn shadow_of(
    ds: DsId,
    fence: Fence,
    live_key: &str,
    live_head: &str,
    shadow_head: &str,
) -> Option<String> {
    let mut digits = itoa::Buffer::new();
    let id = digits.format(ds);
    let rest = live_key
        .strip_prefix(live_head)?
        .strip_prefix("{ds:")?
        .strip_prefix(id)?
        .strip_prefix("}:")?;
    let mut fence_digits = itoa::Buffer::new();
    let f = fence_digits.format(fence);
    let mut out =
        String::with_capacity(shadow_head.len() + live_key.len() - live_head.len() + f.len() + 1);
    out.push_str(shadow_head);
    out.push_str("{ds:");
    out.push_str(id);
    out.push_str("}:");
    out.push_str(f);
    out.push(':');
    out.push_str(rest);
    Some(out)
}

/// `idx:{ds:N}:shadows`: sorted set of the fencing numbers whose shadow
/// generation may still have keys, scored by that generation's absolute
/// expiry (ms). Every warm registers its own before writing; whoever next
/// holds the lock removes what is listed, so a crashed warm's leftovers are
/// found without a SCAN of the keyspace.
pub fn shadow_registry(ds: DsId) -> String {
    format!("idx:{}:shadows", tag(ds))
}

/// Where a full invalidation moves the master index and the index list
/// before deleting their members in batches, so readers see a cold cache at
/// once. `what` is `master` or `indexes`.
pub fn trash(ds: DsId, epoch: i64, what: &str) -> String {
    format!("idx:{}:trash:{epoch}:{what}", tag(ds))
}

/// `idx:{ds:N}:swap:diff:<fence>:<what>`: a scratch set of the swap's
/// comparison of the live generation with the shadow generation of `fence`
/// (SDIFFSTORE), deleted by the swap and given a short expiry in case it
/// never finishes. `what` is `removed:master`, `removed:indexes`,
/// `added:master` or `added:indexes`.
pub fn swap_diff(ds: DsId, fence: Fence, what: &str) -> String {
    format!("idx:{}:swap:diff:{fence}:{what}", tag(ds))
}

/// `cache:meta:{ds:N}:last_warm`: ISO-8601 time of the last completed swap.
pub fn last_warm(ds: DsId) -> String {
    format!("cache:meta:{}:last_warm", tag(ds))
}

/// `cache:meta:{ds:N}`: the meta hash written by the swap.
pub fn meta(ds: DsId) -> String {
    format!("cache:meta:{}", tag(ds))
}

/// `cache:meta:{ds:N}:epoch`: incremented by every invalidation, never deleted.
pub fn epoch(ds: DsId) -> String {
    format!("cache:meta:{}:epoch", tag(ds))
}

/// `cache:meta:{ds:N}:invalidated`: entry keys a selective invalidation
/// deleted while keeping them listed in the master and secondary index sets,
/// so every reader of them sees a miss until the next swap, which deletes
/// this set. The health check counts them as waiting for a warm.
pub fn invalidated(ds: DsId) -> String {
    format!("cache:meta:{}:invalidated", tag(ds))
}

/// `lock:shadow:warm:{ds:N}`: the warm lease; its value is the holder's job id.
pub fn warm_lock(ds: DsId) -> String {
    format!("lock:shadow:warm:{}", tag(ds))
}

/// `lock:shadow:warm:<N>`: the warm lock of the seed's application, with no
/// hash tag (so in a cluster it lives in another slot than the datasource's
/// keys). cachedeck never writes it; a warm refuses to start or swap while
/// it is held.
pub fn app_warm_lock(ds: DsId) -> String {
    format!("lock:shadow:warm:{ds}")
}

/// Whether `key` is a shadow key of datasource `ds` in the seed
/// application's form (`cache:shadow:{ds:N}:m:…`, `idx:shadow:{ds:N}:master`,
/// `idx:shadow:{ds:N}:m:…`), not in cachedeck's fenced form
/// (`…{ds:N}:<fence>:…`).
pub fn is_app_shadow(ds: DsId, key: &str) -> bool {
    let t = tag(ds);
    let rest = ["cache:shadow:", "idx:shadow:"].iter().find_map(|head| {
        key.strip_prefix(head)?
            .strip_prefix(t.as_str())?
            .strip_prefix(':')
    });
    let Some(rest) = rest else {
        return false;
    };
    // cachedeck's: a fencing number, then ':'.
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    !(digits > 0 && rest.as_bytes().get(digits) == Some(&b':'))
}

/// Whether `key` (under `idx:{ds:N}:`) is one of cachedeck's own bookkeeping
/// keys of `ds` rather than an index set: the master set, the index list,
/// the shadow registry, the swap's scratch sets, the trash of an
/// invalidation.
pub fn is_index_bookkeeping(ds: DsId, key: &str) -> bool {
    let Some(rest) = key.strip_prefix(&index_prefix(ds, Gen::Live)) else {
        return false;
    };
    matches!(rest, "master" | "indexes" | "shadows")
        || rest.starts_with("swap:")
        || rest.starts_with("trash:")
}

/// `lock:shadow:warm:{ds:N}:fence`: incremented by every acquisition of the
/// warm lock (the holder's [`Fence`]); never deleted. The swap WATCHes it
/// instead of the lock, whose lease the holder keeps renewing.
pub fn warm_fence(ds: DsId) -> String {
    format!("lock:shadow:warm:{}:fence", tag(ds))
}

/// A minute or hour bucket of reader statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    Minute(i64),
    Hour(i64),
}

/// `cachedeck:stats:{ds:N}:m:<unix-minute>` / `…:h:<unix-hour>`.
pub fn stats_bucket(ds: DsId, bucket: Bucket) -> String {
    match bucket {
        Bucket::Minute(m) => format!("cachedeck:stats:{}:m:{m}", tag(ds)),
        Bucket::Hour(h) => format!("cachedeck:stats:{}:h:{h}", tag(ds)),
    }
}

/// `cachedeck:stats:{ds:N}:since_warm`: counters since the last swap.
pub fn stats_since_warm(ds: DsId) -> String {
    format!("cachedeck:stats:{}:since_warm", tag(ds))
}

/// `cachedeck:trend:{ds:N}`: bounded samples of memory and entries.
pub fn trend(ds: DsId) -> String {
    format!("cachedeck:trend:{}", tag(ds))
}

/// Jobs, queue and slots share the `{jobs}` hash tag so the claim script can
/// touch all of them in one Redis Cluster slot.
pub fn job(job_id: &str) -> String {
    format!("cachedeck:{{jobs}}:job:{}", escape(Some(job_id)))
}

/// Prefix of [`job`] keys, handed to scripts that derive job keys from ids.
pub fn job_prefix() -> &'static str {
    "cachedeck:{jobs}:job:"
}

/// Set of jobs that are queued or running (not yet ended).
pub fn jobs_live() -> &'static str {
    "cachedeck:{jobs}:live"
}

/// The one global warm queue: sorted set of job ids scored by enqueue time.
pub fn jobs_queue() -> &'static str {
    "cachedeck:{jobs}:queue"
}

/// Running jobs with their slot lease deadline (the global concurrency limit).
pub fn jobs_slots() -> &'static str {
    "cachedeck:{jobs}:slots"
}

/// Jobs submitted for any worker (`cachedeck warm --detach`, the window)
/// that no worker took yet: sorted set of job ids scored by submit time.
pub fn jobs_pending() -> &'static str {
    "cachedeck:{jobs}:pending"
}

/// Registered workers (agents): sorted set of instance names scored by
/// their last heartbeat (Redis time, ms).
pub fn workers() -> &'static str {
    "cachedeck:{jobs}:workers"
}

/// One worker's registration (JSON), expiring unless renewed.
pub fn worker(instance: &str) -> String {
    format!("cachedeck:{{jobs}}:worker:{}", escape(Some(instance)))
}

/// `cachedeck:ratelimit:<action>:<identity>`: sliding-window sorted set.
pub fn rate_limit(action: &str, identity: &str) -> String {
    format!(
        "cachedeck:ratelimit:{}:{}",
        escape(Some(action)),
        escape(Some(identity))
    )
}

/// Scheduler leader lease.
pub fn leader() -> &'static str {
    "cachedeck:leader"
}

/// Once-per-tick claim of a schedule.
pub fn tick(schedule_id: i64, unix_minute: i64) -> String {
    format!("cachedeck:tick:{schedule_id}:{unix_minute}")
}

/// A key name parsed back into what it means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParsedKey {
    Entry {
        ds: DsId,
        generation: Gen,
        group: GroupKey,
    },
    Master {
        ds: DsId,
        generation: Gen,
    },
    IndexList {
        ds: DsId,
        generation: Gen,
    },
    Secondary {
        ds: DsId,
        generation: Gen,
        index: SecondaryIndex,
    },
    Meta {
        ds: DsId,
    },
    LastWarm {
        ds: DsId,
    },
    Epoch {
        ds: DsId,
    },
    Invalidated {
        ds: DsId,
    },
    Lock {
        ds: DsId,
    },
    Stats {
        ds: DsId,
    },
    Trend {
        ds: DsId,
    },
}

impl ParsedKey {
    /// The datasource a key belongs to.
    pub fn datasource(&self) -> DsId {
        match self {
            ParsedKey::Entry { ds, .. }
            | ParsedKey::Master { ds, .. }
            | ParsedKey::IndexList { ds, .. }
            | ParsedKey::Secondary { ds, .. }
            | ParsedKey::Meta { ds }
            | ParsedKey::LastWarm { ds }
            | ParsedKey::Epoch { ds }
            | ParsedKey::Invalidated { ds }
            | ParsedKey::Lock { ds }
            | ParsedKey::Stats { ds }
            | ParsedKey::Trend { ds } => *ds,
        }
    }
}

/// Splits `{ds:N}rest` into `(N, rest)`.
fn take_tag(s: &str) -> Option<(DsId, &str)> {
    let s = s.strip_prefix("{ds:")?;
    let end = s.find('}')?;
    let id: DsId = s[..end].parse().ok()?;
    Some((id, &s[end + 1..]))
}

/// Parses `name1:v1:name2:v2…` against the expected field names.
fn fields<'a>(rest: &'a str, names: &[&str]) -> Option<Vec<&'a str>> {
    let parts: Vec<&str> = rest.split(':').collect();
    if parts.len() != names.len() * 2 {
        return None;
    }
    let mut values = Vec::with_capacity(names.len());
    for (pair, name) in parts.chunks(2).zip(names) {
        if pair[0] != *name {
            return None;
        }
        values.push(pair[1]);
    }
    Some(values)
}

/// For a shadow key, splits `<fence>:rest` (the fence in canonical decimal)
/// into its generation and `rest`; a live key's `rest` is all of it.
fn take_generation(shadow: bool, rest: &str) -> Option<(Gen, &str)> {
    if !shadow {
        return Some((Gen::Live, rest));
    }
    let (digits, rest) = rest.split_once(':')?;
    let fence: Fence = digits.parse().ok()?;
    (itoa::Buffer::new().format(fence) == digits).then_some((Gen::Shadow(fence), rest))
}

fn value(text: &str) -> Option<String> {
    unescape(text)?
}

/// Parses a key name produced by this module. Anything else gives `None`.
pub fn parse(key: &str) -> Option<ParsedKey> {
    if let Some(rest) = key.strip_prefix("cache:meta:") {
        let (ds, rest) = take_tag(rest)?;
        return match rest {
            "" => Some(ParsedKey::Meta { ds }),
            ":last_warm" => Some(ParsedKey::LastWarm { ds }),
            ":epoch" => Some(ParsedKey::Epoch { ds }),
            ":invalidated" => Some(ParsedKey::Invalidated { ds }),
            _ => None,
        };
    }
    if let Some(rest) = key.strip_prefix("lock:shadow:warm:") {
        let (ds, rest) = take_tag(rest)?;
        return rest.is_empty().then_some(ParsedKey::Lock { ds });
    }
    if let Some(rest) = key.strip_prefix("cachedeck:stats:") {
        let (ds, _) = take_tag(rest)?;
        return Some(ParsedKey::Stats { ds });
    }
    if let Some(rest) = key.strip_prefix("cachedeck:trend:") {
        let (ds, rest) = take_tag(rest)?;
        return rest.is_empty().then_some(ParsedKey::Trend { ds });
    }
    if let Some(rest) = key.strip_prefix("cache:") {
        let (shadow, rest) = match rest.strip_prefix("shadow:") {
            Some(r) => (true, r),
            None => (false, rest),
        };
        let (ds, rest) = take_tag(rest)?;
        let (generation, rest) = take_generation(shadow, rest.strip_prefix(':')?)?;
        let v = fields(rest, &["m", "p", "prov", "freq"])?;
        let group = GroupKey {
            measure: value(v[0])?,
            practice: value(v[1])?,
            provider: unescape(v[2])?,
            frequency: value(v[3])?,
        };
        return Some(ParsedKey::Entry {
            ds,
            generation,
            group,
        });
    }
    if let Some(rest) = key.strip_prefix("idx:") {
        let (shadow, rest) = match rest.strip_prefix("shadow:") {
            Some(r) => (true, r),
            None => (false, rest),
        };
        let (ds, rest) = take_tag(rest)?;
        let (generation, rest) = take_generation(shadow, rest.strip_prefix(':')?)?;
        match rest {
            "master" => return Some(ParsedKey::Master { ds, generation }),
            "indexes" => return Some(ParsedKey::IndexList { ds, generation }),
            _ => {}
        }
        let index = if let Some(v) = fields(rest, &["m", "freq"]) {
            SecondaryIndex::MeasureFreq {
                measure: value(v[0])?,
                frequency: value(v[1])?,
            }
        } else if let Some(v) = fields(rest, &["m", "p", "freq"]) {
            SecondaryIndex::Practice {
                measure: value(v[0])?,
                practice: value(v[1])?,
                frequency: value(v[2])?,
            }
        } else {
            let v = fields(rest, &["m", "prov", "freq"])?;
            SecondaryIndex::Provider {
                measure: value(v[0])?,
                provider: unescape(v[1])?,
                frequency: value(v[2])?,
            }
        };
        return Some(ParsedKey::Secondary {
            ds,
            generation,
            index,
        });
    }
    None
}

/// Parses a live entry key of datasource `ds` written by another tool (an
/// application's own warmer), leniently: a component that escaping could not
/// have produced is taken as written, and a provider written as `null`,
/// `NULL`, an empty component or [`NULL_TOKEN`] is SQL NULL. Used only to
/// observe caches cachedeck did not write; [`parse`] stays strict and
/// [`entry`] formats keys as before. `None` when the name does not have the
/// entry shape (`m:…:p:…:prov:…:freq:…` after the datasource's tag).
pub fn parse_observed_entry(ds: DsId, key: &str) -> Option<GroupKey> {
    let rest = key.strip_prefix(&entry_prefix(ds, Gen::Live))?;
    let v = fields(rest, &["m", "p", "prov", "freq"])?;
    let lenient = |t: &str| match unescape(t) {
        Some(Some(v)) => v,
        _ => t.to_string(),
    };
    let provider = match v[2] {
        "" | "null" | "NULL" | NULL_TOKEN => None,
        t => Some(lenient(t)),
    };
    Some(GroupKey {
        measure: lenient(v[0]),
        practice: lenient(v[1]),
        provider,
        frequency: lenient(v[3]),
    })
}

/// Escapes raw key bytes for display: printable ASCII stays, everything else is
/// `\xNN`. `keyHex` in JSON carries the exact bytes.
pub fn display_bytes(key: &[u8]) -> String {
    match std::str::from_utf8(key) {
        Ok(s) if !s.chars().any(char::is_control) => s.to_string(),
        _ => {
            let mut out = String::with_capacity(key.len());
            for &b in key {
                if (0x20..0x7f).contains(&b) && b != b'\\' {
                    out.push(b as char);
                } else {
                    let _ = write!(out, "\\x{b:02x}");
                }
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observed_entries_parse_leniently_and_know_every_null_form() {
        let k = |prov: &str| format!("cache:{{ds:7}}:m:Charges:p:114:prov:{prov}:freq:Monthly");
        for null in ["null", "NULL", "", "%N"] {
            let g = parse_observed_entry(7, &k(null)).expect(null);
            assert_eq!(g.provider, None, "{null:?}");
            assert_eq!(g.measure, "Charges");
        }
        let g = parse_observed_entry(7, &k("5")).expect("plain");
        assert_eq!(g.provider.as_deref(), Some("5"));
        // Escaped as cachedeck does: decoded; not escapable: taken as written.
        let g = parse_observed_entry(7, "cache:{ds:7}:m:a%3Ab:p:1 2:prov:x:freq:%C3%A9").unwrap();
        assert_eq!((g.measure.as_str(), g.practice.as_str()), ("a:b", "1 2"));
        assert_eq!(g.frequency, "é");
        // Another datasource, a shadow key or another shape: not an entry.
        assert_eq!(
            parse_observed_entry(7, &k("5").replace("{ds:7}", "{ds:71}")),
            None
        );
        assert_eq!(
            parse_observed_entry(7, "cache:shadow:{ds:7}:m:a:p:1:prov:2:freq:M"),
            None
        );
        assert_eq!(parse_observed_entry(7, "cache:{ds:7}:m:a:p:1:freq:M"), None);
        // cachedeck's own keys read the same as the strict parser reads them.
        let own = g_for_test();
        assert_eq!(
            parse_observed_entry(3, &entry(3, Gen::Live, &own)),
            Some(own)
        );
    }

    fn g_for_test() -> GroupKey {
        GroupKey {
            measure: "Net Charges".into(),
            practice: "a:b".into(),
            provider: None,
            frequency: "Monthly".into(),
        }
    }

    #[test]
    fn shadow_names_follow_live_names_of_the_same_datasource_only() {
        let g = GroupKey {
            measure: "M:x".into(),
            practice: "1".into(),
            provider: None,
            frequency: "Monthly".into(),
        };
        let live = entry(12, Gen::Live, &g);
        assert_eq!(
            shadow_of_entry(12, 7, &live),
            Some(entry(12, Gen::Shadow(7), &g))
        );
        // {ds:1} is a prefix of {ds:12} as text, not as a tag.
        assert_eq!(shadow_of_entry(1, 7, &live), None);
        let idx = SecondaryIndex::for_group(&g)[1].clone();
        assert_eq!(
            shadow_of_index(12, 40, &idx.key(12, Gen::Live)),
            Some(idx.key(12, Gen::Shadow(40)))
        );
        assert_eq!(shadow_of_index(12, 7, &live), None);
        assert_eq!(shadow_of_entry(12, 7, &idx.key(12, Gen::Live)), None);
    }

    fn g(m: &str, p: &str, prov: Option<&str>, f: &str) -> GroupKey {
        GroupKey {
            measure: m.into(),
            practice: p.into(),
            provider: prov.map(Into::into),
            frequency: f.into(),
        }
    }

    #[test]
    fn seed_keys_are_unchanged() {
        let k = entry(1, Gen::Live, &g("Charges", "114", Some("5"), "Monthly"));
        assert_eq!(k, "cache:{ds:1}:m:Charges:p:114:prov:5:freq:Monthly");
        let s = entry(
            1,
            Gen::Shadow(9),
            &g("Charges", "114", Some("5"), "Monthly"),
        );
        assert_eq!(
            s,
            "cache:shadow:{ds:1}:9:m:Charges:p:114:prov:5:freq:Monthly"
        );
        assert_eq!(
            master_index(1, Gen::Shadow(9)),
            "idx:shadow:{ds:1}:9:master"
        );
        let i = SecondaryIndex::MeasureFreq {
            measure: "Charges".into(),
            frequency: "Monthly".into(),
        };
        assert_eq!(i.key(1, Gen::Live), "idx:{ds:1}:m:Charges:freq:Monthly");
        assert_eq!(last_warm(1), "cache:meta:{ds:1}:last_warm");
        assert_eq!(invalidated(7), "cache:meta:{ds:7}:invalidated");
        assert_eq!(
            parse(&invalidated(7)),
            Some(ParsedKey::Invalidated { ds: 7 })
        );
    }

    #[test]
    fn shadow_names_carry_their_fence() {
        let group = g("Charges", "114", None, "Monthly");
        for generation in [Gen::Shadow(0), Gen::Shadow(123)] {
            let k = entry(4, generation, &group);
            assert_eq!(
                parse(&k),
                Some(ParsedKey::Entry {
                    ds: 4,
                    generation,
                    group: group.clone()
                })
            );
            assert_eq!(
                parse(&index_list(4, generation)),
                Some(ParsedKey::IndexList { ds: 4, generation })
            );
        }
        // Only the canonical decimal is a fence; a name without one is foreign.
        assert_eq!(parse("idx:shadow:{ds:4}:07:master"), None);
        assert_eq!(parse("idx:shadow:{ds:4}:+7:master"), None);
        assert_eq!(parse("idx:shadow:{ds:4}:master"), None);
        assert_eq!(warm_fence(4), "lock:shadow:warm:{ds:4}:fence");
        assert_eq!(shadow_registry(4), "idx:{ds:4}:shadows");
        assert_eq!(parse(&shadow_registry(4)), None);
    }

    #[test]
    fn hostile_values_are_escaped() {
        assert_eq!(escape(Some("a:b")), "a%3Ab");
        assert_eq!(escape(Some("*")), "%2A");
        assert_eq!(escape(Some("100%")), "100%25");
        assert_eq!(escape(Some("é")), "%C3%A9");
        assert_eq!(escape(None), "%N");
        assert_ne!(escape(Some("%N")), escape(None));
    }

    #[test]
    fn null_provider_round_trips() {
        let group = g("Visits", "7", None, "Weekly");
        let k = entry(3, Gen::Live, &group);
        assert_eq!(
            parse(&k),
            Some(ParsedKey::Entry {
                ds: 3,
                generation: Gen::Live,
                group
            })
        );
    }

    #[test]
    fn foreign_keys_do_not_parse() {
        assert_eq!(parse("session:abc"), None);
        assert_eq!(parse("cache:{ds:x}:m:a:p:b:prov:c:freq:d"), None);
        assert_eq!(parse("cache:{ds:1}:m:a:b:p:b:prov:c:freq:d"), None);
        assert_eq!(parse("cache:{ds:1}:m:%zz:p:b:prov:c:freq:d"), None);
    }

    #[test]
    fn binary_keys_display_escaped() {
        assert_eq!(display_bytes(b"plain:key"), "plain:key");
        assert_eq!(display_bytes(b"a\xff\x00b"), "a\\xff\\x00b");
    }
}

#[cfg(test)]
mod adoption_tests {
    use super::*;

    #[test]
    fn the_applications_shadow_keys_are_told_from_cachedecks() {
        assert!(is_app_shadow(
            1,
            "cache:shadow:{ds:1}:m:Charges:p:114:prov:5:freq:Monthly"
        ));
        assert!(is_app_shadow(1, "idx:shadow:{ds:1}:master"));
        assert!(is_app_shadow(1, "idx:shadow:{ds:1}:m:Charges:freq:Monthly"));
        assert!(!is_app_shadow(
            1,
            "cache:shadow:{ds:1}:7:m:Charges:p:1:prov:5:freq:M"
        ));
        assert!(!is_app_shadow(1, "idx:shadow:{ds:1}:7:master"));
        assert!(!is_app_shadow(2, "idx:shadow:{ds:1}:master"));
        assert!(!is_app_shadow(
            1,
            "cache:{ds:1}:m:Charges:p:1:prov:5:freq:M"
        ));
        assert_eq!(app_warm_lock(7), "lock:shadow:warm:7");
    }

    #[test]
    fn bookkeeping_keys_are_not_index_sets() {
        for k in [
            "idx:{ds:3}:master",
            "idx:{ds:3}:indexes",
            "idx:{ds:3}:shadows",
            "idx:{ds:3}:swap:diff:4:removed:master",
            "idx:{ds:3}:trash:2:master",
        ] {
            assert!(is_index_bookkeeping(3, k), "{k}");
        }
        assert!(!is_index_bookkeeping(
            3,
            "idx:{ds:3}:m:Charges:freq:Monthly"
        ));
        assert!(!is_index_bookkeeping(3, "idx:{ds:3}:legacy"));
    }
}
