//! The key inspector: type, TTL, encoding, memory and a page of the value of
//! any key, by its exact bytes. Values are never loaded whole: a string is
//! read by range (256 KiB at a time), a collection one page at a time. Each
//! element of a list, hash, set or sorted set is cut to [`ELEMENT_CAP`]
//! bytes inside Redis by a read-only script (`inspect_page.lua`) that sends
//! the cut bytes with the full length, so a collection mixing small and
//! 10 MB elements sends at most the cap per element; each call is bounded
//! by elements and by bytes, and a page stops at [`PAGE_READ_BUDGET`] bytes.
//! Stream entries are read a few at a time when they are big (MEMORY USAGE
//! ÷ length) and cut as they arrive.

use std::sync::LazyLock;

use redis::{Script, Value};
use serde::Serialize;

use super::KeyInfo;
use crate::error::{Error, Result};
use crate::keys::{self, Gen, ParsedKey, SecondaryIndex};
use crate::redis_conn::Redis;

/// How much of a string one page reads.
pub const STRING_PAGE_BYTES: u64 = 256 * 1024;
/// Largest number of elements one page asks for.
pub const MAX_PAGE_COUNT: usize = 10_000;
/// One script call makes at most this many HSCAN/SSCAN calls even when it
/// has not yet collected the elements asked for, so a sparse table never
/// makes one call slow.
const MAX_SCAN_CALLS: usize = 8;
/// A page makes at most this many script calls (a sparse table: the page
/// ends early, its cursor goes on).
const MAX_CALLS_PER_PAGE: usize = 64;
/// Bytes of one collection element shown; the rest is cut, its full length
/// stated ([`Blob::full_length`]).
pub const ELEMENT_CAP: usize = 64 * 1024;
/// Bytes one call may bring back: the script's budget for cut elements, and
/// for streams the raw size judged from the average element size.
const CALL_READ_BUDGET: u64 = 1024 * 1024;
/// A page stops asking for more once its calls have brought back this much.
pub const PAGE_READ_BUDGET: u64 = 4 * 1024 * 1024;

/// Which part of the value to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    /// The `nextCursor` of the previous page, or `None` for the first page.
    /// It is opaque to the caller: a byte offset for strings, an index for
    /// lists and sorted sets, a SCAN cursor for hashes and sets, the last
    /// entry id for streams.
    pub cursor: Option<String>,
    /// Elements per page (strings always read [`STRING_PAGE_BYTES`]); 0 means
    /// 100, at most [`MAX_PAGE_COUNT`].
    pub count: usize,
}

impl Default for PageRequest {
    fn default() -> Self {
        PageRequest {
            cursor: None,
            count: 100,
        }
    }
}

/// Some bytes of a value, readable and exact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Blob {
    /// The bytes as text: the UTF-8 text itself when they are UTF-8,
    /// otherwise [`keys::display_bytes`] escaping (`\xNN`).
    pub text: String,
    /// Lower-case hex of the exact bytes, present only when they are not
    /// UTF-8 (then `text` is an escaped rendering).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hex: Option<String>,
    /// The element's whole length in bytes, present only when it was longer
    /// than [`ELEMENT_CAP`] and `text`/`hex` hold its beginning only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub full_length: Option<u64>,
}

impl Blob {
    /// Renders `bytes`.
    pub fn new(bytes: &[u8]) -> Blob {
        match std::str::from_utf8(bytes) {
            Ok(s) => Blob {
                text: s.to_string(),
                hex: None,
                full_length: None,
            },
            Err(_) => Blob {
                text: keys::display_bytes(bytes),
                hex: Some(hex::encode(bytes)),
                full_length: None,
            },
        }
    }

    /// Renders at most the first [`ELEMENT_CAP`] bytes of a collection
    /// element (cut back to a character boundary when it is text), stating
    /// its full length when cut.
    pub fn capped(bytes: &[u8]) -> Blob {
        if bytes.len() <= ELEMENT_CAP {
            return Blob::new(bytes);
        }
        Blob {
            full_length: Some(bytes.len() as u64),
            ..Blob::capped_prefix(&bytes[..ELEMENT_CAP])
        }
    }

    /// Renders the beginning of a longer element: `prefix` cut back to a
    /// character boundary when it is text cut inside a character.
    fn capped_prefix(prefix: &[u8]) -> Blob {
        let mut take = prefix.len();
        if let Err(e) = std::str::from_utf8(prefix)
            && e.error_len().is_none()
            && e.valid_up_to() + 4 > take
        {
            take = e.valid_up_to();
        }
        Blob::new(&prefix[..take])
    }
}

/// How many elements one call should ask for, so that it brings back about
/// [`CALL_READ_BUDGET`] bytes: from the key's memory per element, or a few
/// when the memory is unknown.
fn batch_size(memory: Option<u64>, length: u64, count: usize) -> usize {
    let per = match memory {
        Some(m) if length > 0 => (m / length).max(1),
        _ => 64 * 1024,
    };
    ((CALL_READ_BUDGET / per) as usize).clamp(1, count.max(1))
}

/// A hash field, or a stream entry field, with its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FieldValue {
    /// Field name.
    pub field: Blob,
    /// Field value.
    pub value: Blob,
}

/// A sorted-set member with its score.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScoredMember {
    /// The member.
    pub member: Blob,
    /// The score as Redis prints it (`"1.5"`, `"inf"`): exact, and JSON has
    /// no infinity.
    pub score: String,
}

/// One stream entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamEntry {
    /// Entry id (`<ms>-<seq>`).
    pub id: String,
    /// The entry's fields in order.
    pub fields: Vec<FieldValue>,
}

/// One page of a value, by type.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(
    tag = "kind",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum ValuePage {
    /// A range of a string.
    String {
        /// Byte offset of `value` within the string.
        offset: u64,
        /// The bytes read (at most [`STRING_PAGE_BYTES`], cut back to a UTF-8
        /// character boundary when the value is text).
        value: Blob,
        /// More bytes follow this range.
        truncated: bool,
        /// For a cache entry read whole: the JSON pretty-printed, so people
        /// can read the rows.
        #[serde(skip_serializing_if = "Option::is_none")]
        pretty_json: Option<String>,
        /// For a cache entry read whole: how many rows its JSON array holds.
        #[serde(skip_serializing_if = "Option::is_none")]
        json_rows: Option<usize>,
    },
    /// Hash fields from HSCAN.
    Hash {
        /// The fields of this page.
        fields: Vec<FieldValue>,
    },
    /// List items from LRANGE.
    List {
        /// Index of the first item.
        offset: u64,
        /// The items of this page.
        items: Vec<Blob>,
    },
    /// Set members from SSCAN.
    Set {
        /// The members of this page.
        members: Vec<Blob>,
    },
    /// Sorted-set members from ZRANGE … WITHSCORES, lowest score first.
    Zset {
        /// Rank of the first member.
        offset: u64,
        /// The members of this page.
        members: Vec<ScoredMember>,
    },
    /// Stream entries from XRANGE, oldest first.
    Stream {
        /// The entries of this page.
        entries: Vec<StreamEntry>,
    },
    /// A module type the inspector cannot page.
    Unsupported {
        /// What to do instead.
        note: String,
    },
}

/// What a key name means in the Analytics Cache V2 schema ([`keys::parse`]).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyMeaning {
    /// `entry`, `masterIndex`, `indexList`, `secondaryIndex`, `meta`,
    /// `lastWarm`, `epoch`, `lock`, `stats` or `trend`.
    pub kind: String,
    /// The datasource the key belongs to.
    pub datasource: i64,
    /// `live` or `shadow` for entries and indexes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generation: Option<String>,
    /// Decoded measure of an entry or index.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub measure: Option<String>,
    /// Decoded practice of an entry or practice index.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub practice: Option<String>,
    /// Decoded provider of an entry or provider index (absent when NULL; see
    /// `providerIsNull`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// The provider component is SQL NULL (distinct from any text).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub provider_is_null: bool,
    /// Decoded frequency of an entry or index.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frequency: Option<String>,
    /// For index keys: how many entry keys the index names (SCARD).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub member_count: Option<u64>,
}

/// Everything the inspector shows about one key.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Inspection {
    /// The key: printable `key` and exact `keyHex`.
    #[serde(flatten)]
    pub key: KeyInfo,
    /// False when the key does not exist (or expired meanwhile); the other
    /// fields are then empty.
    pub exists: bool,
    /// Redis type (`string`, `hash`, `list`, `set`, `zset`, `stream`, a
    /// module type, or `none`).
    #[serde(rename = "type")]
    pub key_type: String,
    /// Milliseconds until it expires (PTTL); `null` for a key without expiry.
    pub ttl_ms: Option<i64>,
    /// OBJECT ENCODING (`listpack`, `hashtable`, `intset`, …): tells whether
    /// Redis keeps it compact.
    pub encoding: Option<String>,
    /// MEMORY USAGE … SAMPLES 5, in bytes (an estimate for big collections).
    pub memory_bytes: Option<u64>,
    /// Length: bytes of a string (STRLEN), elements of a collection
    /// (HLEN/LLEN/SCARD/ZCARD/XLEN).
    pub length: Option<u64>,
    /// The requested page of the value.
    pub value: Option<ValuePage>,
    /// Pass this back in [`PageRequest::cursor`] for the next page; `null`
    /// when this page reached the end.
    pub next_cursor: Option<String>,
    /// The decoded meaning of a cachedeck key name.
    pub parsed: Option<KeyMeaning>,
}

fn gen_name(g: Gen) -> String {
    match g {
        Gen::Live => "live".into(),
        Gen::Shadow(_) => "shadow".into(),
    }
}

/// Decodes the key name, when it is one of ours.
fn meaning(key: &[u8]) -> Option<(KeyMeaning, bool)> {
    let parsed = keys::parse(std::str::from_utf8(key).ok()?)?;
    let mut m = KeyMeaning {
        datasource: parsed.datasource(),
        ..KeyMeaning::default()
    };
    let mut is_index = false;
    match parsed {
        ParsedKey::Entry {
            generation, group, ..
        } => {
            m.kind = "entry".into();
            m.generation = Some(gen_name(generation));
            m.measure = Some(group.measure);
            m.practice = Some(group.practice);
            m.provider_is_null = group.provider.is_none();
            m.provider = group.provider;
            m.frequency = Some(group.frequency);
        }
        ParsedKey::Master { generation, .. } => {
            m.kind = "masterIndex".into();
            m.generation = Some(gen_name(generation));
            is_index = true;
        }
        ParsedKey::IndexList { generation, .. } => {
            m.kind = "indexList".into();
            m.generation = Some(gen_name(generation));
            is_index = true;
        }
        ParsedKey::Secondary {
            generation, index, ..
        } => {
            m.kind = "secondaryIndex".into();
            m.generation = Some(gen_name(generation));
            is_index = true;
            match index {
                SecondaryIndex::MeasureFreq { measure, frequency } => {
                    m.measure = Some(measure);
                    m.frequency = Some(frequency);
                }
                SecondaryIndex::Practice {
                    measure,
                    practice,
                    frequency,
                } => {
                    m.measure = Some(measure);
                    m.practice = Some(practice);
                    m.frequency = Some(frequency);
                }
                SecondaryIndex::Provider {
                    measure,
                    provider,
                    frequency,
                } => {
                    m.measure = Some(measure);
                    m.provider_is_null = provider.is_none();
                    m.provider = provider;
                    m.frequency = Some(frequency);
                }
            }
        }
        ParsedKey::Meta { .. } => m.kind = "meta".into(),
        ParsedKey::LastWarm { .. } => m.kind = "lastWarm".into(),
        ParsedKey::Epoch { .. } => m.kind = "epoch".into(),
        ParsedKey::Invalidated { .. } => m.kind = "invalidated".into(),
        ParsedKey::Lock { .. } => m.kind = "lock".into(),
        ParsedKey::Stats { .. } => m.kind = "stats".into(),
        ParsedKey::Trend { .. } => m.kind = "trend".into(),
    }
    Some((m, is_index))
}

fn bad_cursor(cursor: &str) -> Error {
    Error::Invalid(format!(
        "`{cursor}` is not a page cursor of this key (start again without one)"
    ))
}

fn parse_num(cursor: &Option<String>) -> Result<u64> {
    match cursor {
        None => Ok(0),
        Some(c) => c.parse().map_err(|_| bad_cursor(c)),
    }
}

/// Reads TYPE, PTTL, OBJECT ENCODING, MEMORY USAGE, the length and one page
/// of the value of `key` (exact bytes). A missing key is not an error: the
/// answer says `exists: false`.
pub async fn inspect(redis: &Redis, key: &[u8], page: &PageRequest) -> Result<Inspection> {
    let count = match page.count {
        0 => 100,
        n => n.min(MAX_PAGE_COUNT),
    };
    let info = KeyInfo::new(key.to_vec());
    let ctx = |what: &str| format!("{what} {}", info.display);
    let parsed = meaning(key);

    let key_type: String = redis
        .query(&ctx("TYPE"), redis::cmd("TYPE").arg(key))
        .await?;
    let mut out = Inspection {
        key: info.clone(),
        exists: key_type != "none",
        key_type: key_type.clone(),
        ttl_ms: None,
        encoding: None,
        memory_bytes: None,
        length: None,
        value: None,
        next_cursor: None,
        parsed: parsed.as_ref().map(|(m, _)| m.clone()),
    };
    if !out.exists {
        return Ok(out);
    }

    let pttl_cmd = redis::cmd("PTTL").arg(key).to_owned();
    let enc_cmd = redis::cmd("OBJECT").arg("ENCODING").arg(key).to_owned();
    let mem_cmd = redis::cmd("MEMORY")
        .arg("USAGE")
        .arg(key)
        .arg("SAMPLES")
        .arg(5)
        .to_owned();
    let (c1, c2, c3) = (ctx("PTTL"), ctx("OBJECT ENCODING"), ctx("MEMORY USAGE"));
    let (pttl, encoding, memory): (i64, Option<String>, Option<u64>) = futures::try_join!(
        redis.query(&c1, &pttl_cmd),
        redis.query(&c2, &enc_cmd),
        redis.query(&c3, &mem_cmd),
    )?;
    if pttl == -2 {
        // Expired between TYPE and PTTL.
        out.exists = false;
        out.key_type = "none".into();
        return Ok(out);
    }
    out.ttl_ms = (pttl >= 0).then_some(pttl);
    out.encoding = encoding;
    out.memory_bytes = memory;

    let len_cmd = match key_type.as_str() {
        "string" => Some("STRLEN"),
        "hash" => Some("HLEN"),
        "list" => Some("LLEN"),
        "set" => Some("SCARD"),
        "zset" => Some("ZCARD"),
        "stream" => Some("XLEN"),
        _ => None,
    };
    if let Some(c) = len_cmd {
        out.length = Some(redis.query(&ctx(c), redis::cmd(c).arg(key)).await?);
    }
    let length = out.length.unwrap_or(0);
    let is_index = parsed.as_ref().is_some_and(|(_, index)| *index);
    if is_index
        && key_type == "set"
        && let Some(p) = out.parsed.as_mut()
    {
        p.member_count = Some(length);
    }

    let (value, next) = match key_type.as_str() {
        "string" => {
            let offset = parse_num(&page.cursor)?;
            let is_entry = parsed.as_ref().is_some_and(|(m, _)| m.kind == "entry");
            string_page(redis, key, offset, length, is_entry, &ctx("GETRANGE")).await?
        }
        "hash" => {
            let (items, next) =
                capped_read(redis, Kind::Hash, key, &page.cursor, count, &ctx("HSCAN")).await?;
            let fields = items
                .chunks_exact(2)
                .map(|p| FieldValue {
                    field: p[0].0.clone(),
                    value: p[1].0.clone(),
                })
                .collect();
            (ValuePage::Hash { fields }, next)
        }
        "set" => {
            let (items, next) =
                capped_read(redis, Kind::Set, key, &page.cursor, count, &ctx("SSCAN")).await?;
            let members = items.into_iter().map(|(b, _)| b).collect();
            (ValuePage::Set { members }, next)
        }
        "list" => {
            let offset = parse_num(&page.cursor)?;
            let (items, next) =
                capped_read(redis, Kind::List, key, &page.cursor, count, &ctx("LRANGE")).await?;
            let items = items.into_iter().map(|(b, _)| b).collect();
            (ValuePage::List { offset, items }, next)
        }
        "zset" => {
            let offset = parse_num(&page.cursor)?;
            let (items, next) =
                capped_read(redis, Kind::Zset, key, &page.cursor, count, &ctx("ZRANGE")).await?;
            let members = items
                .into_iter()
                .map(|(member, score)| ScoredMember {
                    member,
                    score: score.unwrap_or_default(),
                })
                .collect();
            (ValuePage::Zset { offset, members }, next)
        }
        "stream" => {
            let batch = batch_size(out.memory_bytes, length, count);
            stream_page(redis, key, &page.cursor, batch, &ctx("XRANGE")).await?
        }
        other => (
            ValuePage::Unsupported {
                note: format!("values of type `{other}` cannot be shown here; use redis-cli"),
            },
            None,
        ),
    };
    out.value = Some(value);
    out.next_cursor = next;
    Ok(out)
}

/// One GETRANGE page of a string.
async fn string_page(
    redis: &Redis,
    key: &[u8],
    offset: u64,
    length: u64,
    is_entry: bool,
    context: &str,
) -> Result<(ValuePage, Option<String>)> {
    let bytes: Vec<u8> = if offset >= length {
        Vec::new()
    } else {
        redis
            .query(
                context,
                redis::cmd("GETRANGE")
                    .arg(key)
                    .arg(offset)
                    .arg(offset + STRING_PAGE_BYTES - 1),
            )
            .await?
    };
    let mut take = bytes.len();
    let more = offset + (bytes.len() as u64) < length;
    if more && let Err(e) = std::str::from_utf8(&bytes) {
        // A page that ends inside a UTF-8 character: stop before it, so text
        // stays text; the next page starts with that character.
        if e.error_len().is_none() && e.valid_up_to() + 4 > bytes.len() && e.valid_up_to() > 0 {
            take = e.valid_up_to();
        }
    }
    let slice = &bytes[..take];
    let end = offset + take as u64;
    let whole = offset == 0 && end >= length;
    let (pretty_json, json_rows) = if whole && is_entry {
        match serde_json::from_slice::<serde_json::Value>(slice) {
            Ok(v) => (
                serde_json::to_string_pretty(&v).ok(),
                v.as_array().map(Vec::len),
            ),
            Err(_) => (None, None),
        }
    } else {
        (None, None)
    };
    let truncated = end < length;
    Ok((
        ValuePage::String {
            offset,
            value: Blob::new(slice),
            truncated,
            pretty_json,
            json_rows,
        },
        truncated.then(|| end.to_string()),
    ))
}

/// The collections [`PAGE_SCRIPT`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// LRANGE by index.
    List,
    /// ZRANGE … WITHSCORES by rank.
    Zset,
    /// HSCAN: fields and values in turn.
    Hash,
    /// SSCAN.
    Set,
}

impl Kind {
    /// The name the script takes.
    fn name(self) -> &'static str {
        match self {
            Kind::List => "list",
            Kind::Zset => "zset",
            Kind::Hash => "hash",
            Kind::Set => "set",
        }
    }
}

/// Reads collection elements inside Redis and sends back only the first
/// [`ELEMENT_CAP`] bytes of each with its full length (read-only script,
/// one key, so it runs on a cluster as on one server).
static PAGE_SCRIPT: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("inspect_page.lua")));

/// An element's bytes as the script sent them, with its full length.
fn cut_blob(bytes: &[u8], full: u64) -> Blob {
    if full <= bytes.len() as u64 {
        return Blob::new(bytes);
    }
    Blob {
        full_length: Some(full),
        ..Blob::capped_prefix(bytes)
    }
}

fn int(v: &Value) -> Option<u64> {
    match v {
        Value::Int(n) => u64::try_from(*n).ok(),
        other => bulk(other).and_then(|b| std::str::from_utf8(&b).ok()?.parse().ok()),
    }
}

/// Up to `count` elements of a collection from `cursor` (an index for
/// lists and sorted sets, a SCAN cursor for hashes and sets), each cut to
/// [`ELEMENT_CAP`] inside Redis. Calls are bounded by elements and by
/// [`CALL_READ_BUDGET`] bytes sent; the page stops at [`PAGE_READ_BUDGET`]
/// bytes. Hash fields and values come as two items in turn; a sorted-set
/// member carries its score.
async fn capped_read(
    redis: &Redis,
    kind: Kind,
    key: &[u8],
    cursor: &Option<String>,
    count: usize,
    context: &str,
) -> Result<(Vec<(Blob, Option<String>)>, Option<String>)> {
    let mut cur = parse_num(cursor)?.to_string();
    let per = if kind == Kind::Hash { 2 } else { 1 };
    let mut items: Vec<(Blob, Option<String>)> = Vec::new();
    let mut sent = 0u64;
    let bad = || Error::Invalid(format!("{context}: unexpected reply shape"));
    let mut conn = redis.conn();
    for _ in 0..MAX_CALLS_PER_PAGE {
        let want = count - items.len() / per;
        let reply: Vec<Value> = PAGE_SCRIPT
            .key(key)
            .arg(kind.name())
            .arg(&cur)
            .arg(want)
            .arg(ELEMENT_CAP)
            .arg(CALL_READ_BUDGET)
            .arg(MAX_SCAN_CALLS)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| Error::redis(context, e))?;
        let mut it = reply.iter();
        let next = it.next().and_then(bulk).ok_or_else(bad)?;
        let width = if kind == Kind::Zset { 3 } else { 2 };
        let rest: Vec<&Value> = it.collect();
        if !rest.len().is_multiple_of(width) {
            return Err(bad());
        }
        for e in rest.chunks_exact(width) {
            let bytes = bulk(e[0]).ok_or_else(bad)?;
            let full = int(e[1]).ok_or_else(bad)?;
            sent += bytes.len() as u64;
            let score = match e.get(2) {
                Some(s) => Some(String::from_utf8_lossy(&bulk(s).ok_or_else(bad)?).into_owned()),
                None => None,
            };
            items.push((cut_blob(&bytes, full), score));
        }
        if next.is_empty() {
            return Ok((items, None));
        }
        cur = String::from_utf8(next).map_err(|_| bad())?;
        if items.len() / per >= count || sent >= PAGE_READ_BUDGET {
            break;
        }
    }
    Ok((items, Some(cur)))
}

fn bulk(v: &Value) -> Option<Vec<u8>> {
    match v {
        Value::BulkString(b) => Some(b.clone()),
        Value::SimpleString(s) => Some(s.as_bytes().to_vec()),
        _ => None,
    }
}

/// One XRANGE page; the cursor is the last id returned (exclusive start).
async fn stream_page(
    redis: &Redis,
    key: &[u8],
    cursor: &Option<String>,
    count: usize,
    context: &str,
) -> Result<(ValuePage, Option<String>)> {
    let start = match cursor {
        None => "-".to_string(),
        Some(id) => {
            let ok = id
                .split_once('-')
                .is_some_and(|(ms, seq)| ms.parse::<u64>().is_ok() && seq.parse::<u64>().is_ok());
            if !ok {
                return Err(bad_cursor(id));
            }
            format!("({id}")
        }
    };
    let reply: Value = redis
        .query(
            context,
            redis::cmd("XRANGE")
                .arg(key)
                .arg(start)
                .arg("+")
                .arg("COUNT")
                .arg(count),
        )
        .await?;
    let bad = || Error::Invalid(format!("{context}: unexpected reply shape"));
    let Value::Array(rows) = reply else {
        return Err(bad());
    };
    let mut entries = Vec::with_capacity(rows.len());
    for row in &rows {
        let Value::Array(parts) = row else {
            return Err(bad());
        };
        let [id, fields] = parts.as_slice() else {
            return Err(bad());
        };
        let id = bulk(id).ok_or_else(bad)?;
        let flat: Vec<Vec<u8>> = match fields {
            Value::Array(f) => f
                .iter()
                .map(|x| bulk(x).ok_or_else(bad))
                .collect::<Result<_>>()?,
            Value::Map(m) => m
                .iter()
                .flat_map(|(a, b)| [bulk(a), bulk(b)])
                .map(|x| x.ok_or_else(bad))
                .collect::<Result<_>>()?,
            _ => return Err(bad()),
        };
        entries.push(StreamEntry {
            id: String::from_utf8_lossy(&id).into_owned(),
            fields: flat
                .chunks_exact(2)
                .map(|p| FieldValue {
                    field: Blob::capped(&p[0]),
                    value: Blob::capped(&p[1]),
                })
                .collect(),
        });
    }
    let next = (entries.len() == count)
        .then(|| entries.last().map(|e| e.id.clone()))
        .flatten();
    Ok((ValuePage::Stream { entries }, next))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_keys_are_decoded() {
        let g = keys::GroupKey {
            measure: "Charges".into(),
            practice: "1:4".into(),
            provider: None,
            frequency: "Monthly".into(),
        };
        let (m, is_index) = meaning(keys::entry(7, Gen::Shadow(3), &g).as_bytes()).unwrap();
        assert!(!is_index);
        assert_eq!(m.kind, "entry");
        assert_eq!(m.datasource, 7);
        assert_eq!(m.generation.as_deref(), Some("shadow"));
        assert_eq!(m.practice.as_deref(), Some("1:4"));
        assert!(m.provider_is_null);
        assert!(meaning(b"session:1").is_none());
        let (m, is_index) = meaning(keys::master_index(7, Gen::Live).as_bytes()).unwrap();
        assert!(is_index);
        assert_eq!(m.kind, "masterIndex");
    }

    #[test]
    fn big_elements_are_capped_and_read_few_at_a_time() {
        let small = Blob::capped(b"abc");
        assert_eq!((small.text.as_str(), small.full_length), ("abc", None));
        let big = "é".repeat(ELEMENT_CAP); // 2 bytes each
        let b = Blob::capped(big.as_bytes());
        assert_eq!(b.full_length, Some(2 * ELEMENT_CAP as u64));
        assert_eq!(b.text.len(), ELEMENT_CAP, "cut on a character boundary");
        assert!(b.hex.is_none());
        let bin = vec![0xffu8; ELEMENT_CAP + 10];
        let b = Blob::capped(&bin);
        assert_eq!(b.hex.as_deref().map(str::len), Some(2 * ELEMENT_CAP));
        // 10 MB elements: one per call; tiny ones: the whole page at once.
        assert_eq!(batch_size(Some(30_000_000), 3, 100), 1);
        assert_eq!(batch_size(Some(10_000), 100, 100), 100);
        assert_eq!(batch_size(None, 100, 100), 16);
    }

    #[test]
    fn elements_cut_by_the_script_state_their_full_length() {
        let whole = cut_blob(b"abc", 3);
        assert_eq!((whole.text.as_str(), whole.full_length), ("abc", None));
        // The script cuts at the cap, inside a two-byte character here.
        let text = "é".repeat(ELEMENT_CAP);
        let b = cut_blob(&text.as_bytes()[..ELEMENT_CAP + 1], 2 * ELEMENT_CAP as u64);
        assert_eq!(b.full_length, Some(2 * ELEMENT_CAP as u64));
        assert_eq!(b.text.len(), ELEMENT_CAP);
        assert!(b.hex.is_none());
    }

    #[test]
    fn blobs_keep_text_and_flag_binary() {
        assert_eq!(Blob::new("é\n".as_bytes()).hex, None);
        let b = Blob::new(b"\xff\x00");
        assert_eq!(b.text, "\\xff\\x00");
        assert_eq!(b.hex.as_deref(), Some("ff00"));
    }
}
