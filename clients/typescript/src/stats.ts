import type { Arg } from "./connection.js";
import { statsHourKey, statsMinuteKey, statsSinceWarmKey } from "./keys.js";

/** Minute buckets expire after 2 days. */
export const MINUTE_TTL_SECS = 2 * 24 * 3600;
/** Hour buckets expire after 90 days. */
export const HOUR_TTL_SECS = 90 * 24 * 3600;

/**
 * The commands that record one query of datasource `ds` (README, "Recording
 * hits and misses"): `hits` or `misses` +1 and `queryUs` + the duration on
 * the minute bucket, the hour bucket and `since_warm`, with the buckets'
 * expiries. Sent as one pipeline after the answer is returned.
 */
export function recordCommands(ds: number, hit: boolean, queryUs: number, nowMs: number): Arg[][] {
  const field = hit ? "hits" : "misses";
  const us = String(Math.max(0, Math.round(queryUs)));
  const minute = statsMinuteKey(ds, Math.floor(nowMs / 60_000));
  const hour = statsHourKey(ds, Math.floor(nowMs / 3_600_000));
  const since = statsSinceWarmKey(ds);
  return [
    ["HINCRBY", minute, field, "1"],
    ["HINCRBY", minute, "queryUs", us],
    ["EXPIRE", minute, String(MINUTE_TTL_SECS)],
    ["HINCRBY", hour, field, "1"],
    ["HINCRBY", hour, "queryUs", us],
    ["EXPIRE", hour, String(HOUR_TTL_SECS)],
    ["HINCRBY", since, field, "1"],
    ["HINCRBY", since, "queryUs", us],
  ];
}
