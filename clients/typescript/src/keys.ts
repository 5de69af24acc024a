// Key names of an Analytics Cache V2 datasource, exactly as cachedeck's
// src/keys.rs writes them (README, "The cache, for readers in other languages").
// Every key of datasource N carries the hash tag {ds:N}, so one datasource
// lives in one Redis Cluster slot.

/** The component that stands for a SQL NULL provider; escaping never produces it. */
export const NULL_TOKEN = "%N";

const HEX = "0123456789ABCDEF";

function needsEscape(b: number): boolean {
  switch (b) {
    case 0x3a: // :
    case 0x7b: // {
    case 0x7d: // }
    case 0x2a: // *
    case 0x3f: // ?
    case 0x5b: // [
    case 0x5d: // ]
    case 0x5c: // \
    case 0x25: // %
    case 0x20: // space
      return true;
    default:
      return b < 0x20 || b >= 0x7f;
  }
}

/**
 * Escapes one key component (measure, practice, provider or frequency): each
 * UTF-8 byte of `:` `{` `}` `*` `?` `[` `]` `\` `%`, space, a control
 * character or a non-ASCII character becomes `%XX` (upper-case hex). `null`
 * (SQL NULL, only meaningful for a provider) becomes `%N`.
 */
export function escapeComponent(value: string | number | null): string {
  if (value === null) return NULL_TOKEN;
  const bytes = Buffer.from(String(value), "utf8");
  let out = "";
  for (const b of bytes) {
    out += needsEscape(b) ? "%" + HEX[b >> 4] + HEX[b & 15] : String.fromCharCode(b);
  }
  return out;
}

function tag(ds: number): string {
  return `{ds:${ds}}`;
}

/** One group of rows: what a cache entry holds. */
export interface GroupKey {
  measure: string;
  practice: string | number;
  /** `null` for rows whose provider is NULL. */
  provider: string | number | null;
  frequency: string;
}

/** `cache:{ds:N}:m:<m>:p:<p>:prov:<prov>:freq:<f>`: a cache entry (JSON array of rows). */
export function entryKey(ds: number, g: GroupKey): string {
  return (
    `cache:${tag(ds)}:m:${escapeComponent(g.measure)}:p:${escapeComponent(g.practice)}` +
    `:prov:${escapeComponent(g.provider)}:freq:${escapeComponent(g.frequency)}`
  );
}

/**
 * `cache:{ds:N}:`: the start of every live entry key of datasource N. A reader
 * reads only index members that start with it; anything else in an index set
 * was written by something else and is ignored.
 */
export function entryPrefix(ds: number): string {
  return `cache:${tag(ds)}:`;
}

/** `idx:{ds:N}:master`: the set of every live entry key. */
export function masterKey(ds: number): string {
  return `idx:${tag(ds)}:master`;
}

/** `idx:{ds:N}:indexes`: the set naming every live secondary index. */
export function indexListKey(ds: number): string {
  return `idx:${tag(ds)}:indexes`;
}

/** `cache:meta:{ds:N}`: the hash the last swap wrote (generation, …). */
export function metaKey(ds: number): string {
  return `cache:meta:${tag(ds)}`;
}

/** `cache:meta:{ds:N}:epoch`: incremented by every invalidation. */
export function epochKey(ds: number): string {
  return `cache:meta:${tag(ds)}:epoch`;
}

/** `idx:{ds:N}:m:<m>:freq:<f>`: entries of a measure and frequency. */
export function measureFreqIndexKey(ds: number, measure: string, frequency: string): string {
  return `idx:${tag(ds)}:m:${escapeComponent(measure)}:freq:${escapeComponent(frequency)}`;
}

/** `idx:{ds:N}:m:<m>:p:<p>:freq:<f>`: entries of a measure, practice and frequency. */
export function practiceIndexKey(
  ds: number,
  measure: string,
  practice: string | number,
  frequency: string,
): string {
  return (
    `idx:${tag(ds)}:m:${escapeComponent(measure)}:p:${escapeComponent(practice)}` +
    `:freq:${escapeComponent(frequency)}`
  );
}

/** `idx:{ds:N}:m:<m>:prov:<prov>:freq:<f>`: entries of a measure, provider (or NULL) and frequency. */
export function providerIndexKey(
  ds: number,
  measure: string,
  provider: string | number | null,
  frequency: string,
): string {
  return (
    `idx:${tag(ds)}:m:${escapeComponent(measure)}:prov:${escapeComponent(provider)}` +
    `:freq:${escapeComponent(frequency)}`
  );
}

/** The three secondary indexes an entry belongs to: measure+frequency, practice, provider. */
export function indexKeysOf(ds: number, g: GroupKey): [string, string, string] {
  return [
    measureFreqIndexKey(ds, g.measure, g.frequency),
    practiceIndexKey(ds, g.measure, g.practice, g.frequency),
    providerIndexKey(ds, g.measure, g.provider, g.frequency),
  ];
}

/** Minute bucket of reader statistics: `cachedeck:stats:{ds:N}:m:<unix-minute>`. */
export function statsMinuteKey(ds: number, unixMinute: number): string {
  return `cachedeck:stats:${tag(ds)}:m:${unixMinute}`;
}

/** Hour bucket of reader statistics: `cachedeck:stats:{ds:N}:h:<unix-hour>`. */
export function statsHourKey(ds: number, unixHour: number): string {
  return `cachedeck:stats:${tag(ds)}:h:${unixHour}`;
}

/** Counters since the last swap: `cachedeck:stats:{ds:N}:since_warm`. */
export function statsSinceWarmKey(ds: number): string {
  return `cachedeck:stats:${tag(ds)}:since_warm`;
}
