// @cachedeck/reader: reads an Analytics Cache V2 cache (the key schema and
// read contract of cachedeck's README) and records hits, misses and query
// time where cachedeck's dashboard reads them.

export { AnalyticsCacheReader, MEMBER_CAP } from "./reader.js";
export type { CacheAnswer, CacheQuery, ReaderOptions } from "./reader.js";
export type { AnyRedisClient } from "./connection.js";
export {
  NULL_TOKEN,
  entryKey,
  entryPrefix,
  epochKey,
  escapeComponent,
  indexKeysOf,
  indexListKey,
  masterKey,
  measureFreqIndexKey,
  metaKey,
  practiceIndexKey,
  providerIndexKey,
  statsHourKey,
  statsMinuteKey,
  statsSinceWarmKey,
} from "./keys.js";
export type { GroupKey } from "./keys.js";
export { HOUR_TTL_SECS, MINUTE_TTL_SECS, recordCommands } from "./stats.js";
