import { performance } from "node:perf_hooks";

import { type AnyRedisClient, type Arg, Connection, type Reply } from "./connection.js";
import {
  entryPrefix,
  epochKey,
  indexListKey,
  masterKey,
  measureFreqIndexKey,
  metaKey,
  practiceIndexKey,
  providerIndexKey,
} from "./keys.js";
import { QUERY_SCRIPT, QUERY_SCRIPT_SHA } from "./script.js";
import { recordCommands } from "./stats.js";

/** What to read: one measure and frequency, optionally narrowed. */
export interface CacheQuery {
  /** The datasource id, the `N` of `{ds:N}`. */
  datasourceId: number;
  measure: string;
  frequency: string;
  /** Any of these practices (none: every practice). */
  practices?: (string | number)[];
  /** Any of these providers (none and no `nullProvider`: every provider). */
  providers?: (string | number)[];
  /** Also the rows whose provider is NULL (a provider filter of its own). */
  nullProvider?: boolean;
}

/** The answer to one query. */
export interface CacheAnswer {
  /** True when the cache answered; false: cold, invalidated or an entry is gone (read the database). */
  hit: boolean;
  /** On a hit, the rows of every selected entry, entries in bytewise key order; empty on a miss. */
  rows: Record<string, unknown>[];
  /**
   * The generation the answer was read from (0 when none is recorded, and on
   * the miss after three bounded reads that each saw a swap or invalidation).
   */
  generation: number;
}

export interface ReaderOptions {
  /** Record hits, misses and query time for cachedeck (default true). */
  recordStats?: boolean;
  /**
   * Called when recording a query's statistics fails. Recording never delays
   * or fails a query; without this callback its errors are dropped.
   */
  onStatsError?: (error: unknown) => void;
}

/** Selections with more index members than this are read in bounded steps. */
export const MEMBER_CAP = 1000;
/** Keys per MGET. */
const MGET_CHUNK = 500;
/** MGETs in flight at once on the bounded path. */
const MGET_PARALLEL = 8;
/** SSCAN COUNT on the bounded path. */
const SCAN_COUNT = "1000";
/** Reads of a large selection that may find the generation changed underneath. */
const ATTEMPTS = 3;

/** The index sets a query reads. */
interface Selection {
  ds: number;
  /** `cache:{ds:N}:`, as bytes: only members starting with it are read. */
  prefix: Buffer;
  master: string;
  /** `idx:{ds:N}:indexes`: names every live index set. */
  indexList: string;
  meta: string;
  epoch: string;
  measureFreq: string;
  practiceIndexes: string[];
  providerIndexes: string[];
}

/** What one attempt found. */
interface Read {
  hit: boolean;
  generation: string;
  rows: Record<string, unknown>[];
}

function text(r: Reply | undefined): string {
  if (Buffer.isBuffer(r)) return r.toString("utf8");
  if (typeof r === "number") return String(r);
  return "";
}

function unique(values: string[]): string[] {
  return [...new Set(values)];
}

function selection(q: CacheQuery): Selection {
  if (typeof q !== "object" || q === null) throw new TypeError("query: expected an object");
  const ds = q.datasourceId;
  if (!Number.isSafeInteger(ds)) throw new TypeError(`query: datasourceId must be an integer, got ${String(ds)}`);
  if (typeof q.measure !== "string") throw new TypeError("query: measure must be a string");
  if (typeof q.frequency !== "string") throw new TypeError("query: frequency must be a string");
  const list = (name: string, v: unknown): (string | number)[] => {
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v) || v.some((x) => typeof x !== "string" && typeof x !== "number")) {
      throw new TypeError(`query: ${name} must be an array of strings or numbers`);
    }
    return [...v];
  };
  const practices = list("practices", q.practices);
  const providers: (string | number | null)[] = list("providers", q.providers);
  if (q.nullProvider) providers.push(null);
  return {
    ds,
    prefix: Buffer.from(entryPrefix(ds), "utf8"),
    master: masterKey(ds),
    indexList: indexListKey(ds),
    meta: metaKey(ds),
    epoch: epochKey(ds),
    measureFreq: measureFreqIndexKey(ds, q.measure, q.frequency),
    practiceIndexes: unique(practices.map((p) => practiceIndexKey(ds, q.measure, p, q.frequency))),
    providerIndexes: unique(providers.map((p) => providerIndexKey(ds, q.measure, p, q.frequency))),
  };
}

/** Orders keys bytewise, as the contract does (not by locale or UTF-16). */
function byBytes(a: Buffer, b: Buffer): number {
  return Buffer.compare(a, b);
}

/** True when `b` begins with the bytes of `prefix`. */
function startsWith(b: Buffer, prefix: Buffer): boolean {
  return b.length >= prefix.length && b.subarray(0, prefix.length).equals(prefix);
}

/**
 * Parses the entries' values (JSON arrays of rows) into rows, in the given
 * order; null when a value is missing or not an array of rows.
 */
function rowsOf(values: (Buffer | null)[]): Record<string, unknown>[] | null {
  const rows: Record<string, unknown>[] = [];
  for (const v of values) {
    if (!Buffer.isBuffer(v)) return null;
    let parsed: unknown;
    try {
      parsed = JSON.parse(v.toString("utf8"));
    } catch {
      return null;
    }
    if (!Array.isArray(parsed)) return null;
    for (const row of parsed) rows.push(row as Record<string, unknown>);
  }
  return rows;
}

/**
 * Reads an Analytics Cache V2 cache the way cachedeck's own reader does: one
 * generation per query, a miss when the cache is cold, invalidated or an
 * indexed entry is gone, and the query's hit or miss and time recorded in
 * cachedeck's statistics (after the answer, never delaying it).
 */
export class AnalyticsCacheReader {
  private readonly conn: Connection;
  private readonly recordStats: boolean;
  private readonly onStatsError?: (error: unknown) => void;
  /** Statistics pipelines still in flight, for flushStats(). */
  private readonly pending = new Set<Promise<void>>();

  constructor(client: AnyRedisClient, options: ReaderOptions = {}) {
    this.conn = new Connection(client);
    this.recordStats = options.recordStats ?? true;
    this.onStatsError = options.onStatsError;
  }

  /** Reads one selection. Rejects only when Redis cannot be read. */
  async query(q: CacheQuery): Promise<CacheAnswer> {
    const started = performance.now();
    const sel = selection(q);
    let read: Read = { hit: false, generation: "0", rows: [] };
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      const reply = await this.runScript(sel);
      const status = text(reply[0]);
      const generation = text(reply[1]) || "0";
      const epoch = text(reply[2]) || "0";
      if (status !== "large") {
        read = this.small(status, generation, reply);
        break;
      }
      const large = await this.large(sel, generation, epoch);
      if (large) {
        read = large;
        break;
      }
      // The generation or epoch changed while the selection was read: start
      // over. After the last attempt the answer is a miss read from no
      // generation (0), as cachedeck's own reader answers.
      read = { hit: false, generation: "0", rows: [] };
    }
    const queryUs = (performance.now() - started) * 1000;
    this.record(sel.ds, read.hit, queryUs);
    return {
      hit: read.hit,
      rows: read.hit ? read.rows : [],
      generation: Number(read.generation) || 0,
    };
  }

  /** Waits until the statistics of the queries answered so far are sent (or failed). */
  async flushStats(): Promise<void> {
    while (this.pending.size > 0) await Promise.all([...this.pending]);
  }

  private async runScript(sel: Selection): Promise<Reply[]> {
    // The index list goes last: a listed index set that is missing
    // (evicted, deleted) is a miss, never a shorter answer.
    const keys = [
      sel.master,
      sel.meta,
      sel.epoch,
      sel.measureFreq,
      ...sel.practiceIndexes,
      ...sel.providerIndexes,
      sel.indexList,
    ];
    const tail = [
      String(keys.length),
      ...keys,
      String(sel.practiceIndexes.length),
      String(sel.providerIndexes.length),
      String(MEMBER_CAP),
    ];
    let reply: Reply;
    try {
      reply = await this.conn.call(sel.master, ["EVALSHA", QUERY_SCRIPT_SHA, ...tail]);
    } catch (e) {
      if (!(e instanceof Error) || !e.message.startsWith("NOSCRIPT")) throw e;
      reply = await this.conn.call(sel.master, ["EVAL", QUERY_SCRIPT, ...tail]);
    }
    if (!Array.isArray(reply) || reply.length < 3) {
      throw new Error(`reading the cache: unexpected script reply ${JSON.stringify(reply)}`);
    }
    return reply;
  }

  /**
   * The script's own answer: {status, gen, epoch, n, keys…, values…}, keys
   * already in bytewise order and only the datasource's own entry keys.
   */
  private small(status: string, generation: string, reply: Reply[]): Read {
    const n = Number(text(reply[3])) || 0;
    const pairs: [Buffer, Buffer | null][] = [];
    for (let i = 0; i < n; i++) {
      const key = reply[4 + i];
      const value = reply[4 + n + i];
      if (!Buffer.isBuffer(key)) return { hit: false, generation, rows: [] };
      pairs.push([key, Buffer.isBuffer(value) ? value : null]);
    }
    if (status !== "hit") return { hit: false, generation, rows: [] };
    // The script sorts bytewise itself (not by the server's collation); sorting
    // again here keeps the contract's order whatever script answered.
    pairs.sort((a, b) => byBytes(a[0], b[0]));
    const rows = rowsOf(pairs.map((p) => p[1]));
    return rows ? { hit: true, generation, rows } : { hit: false, generation, rows: [] };
  }

  /**
   * A selection above the cap, in bounded steps: SSCAN of each set, MGET in
   * chunks, then one check that the master still exists and the generation
   * and epoch are the script's. Null when the generation or epoch changed
   * (read again); a miss when the master is gone meanwhile.
   */
  private async large(sel: Selection, generation: string, epoch: string): Promise<Read | null> {
    let members: Map<string, Buffer>;
    if (sel.practiceIndexes.length === 0 && sel.providerIndexes.length === 0) {
      members = await this.union(sel, [sel.measureFreq]);
    } else if (sel.practiceIndexes.length > 0 && sel.providerIndexes.length > 0) {
      const a = await this.union(sel, sel.practiceIndexes);
      const b = await this.union(sel, sel.providerIndexes);
      members = new Map([...a].filter(([k]) => b.has(k)));
    } else {
      members = await this.union(sel, sel.practiceIndexes.length > 0 ? sel.practiceIndexes : sel.providerIndexes);
    }
    const keys = [...members.values()].sort(byBytes);
    const values: (Buffer | null)[] = [];
    const chunks: Buffer[][] = [];
    for (let i = 0; i < keys.length; i += MGET_CHUNK) chunks.push(keys.slice(i, i + MGET_CHUNK));
    for (let i = 0; i < chunks.length; i += MGET_PARALLEL) {
      const replies = await Promise.all(
        chunks.slice(i, i + MGET_PARALLEL).map((c) => this.conn.call(sel.master, ["MGET", ...c])),
      );
      for (const r of replies) {
        for (const v of Array.isArray(r) ? r : []) values.push(Buffer.isBuffer(v) ? v : null);
      }
    }
    // Every set read must still exist unless the index list does not name
    // it (a value the source never had): one that vanished would make the
    // answer shorter.
    const read =
      sel.practiceIndexes.length === 0 && sel.providerIndexes.length === 0
        ? [sel.measureFreq]
        : [...sel.practiceIndexes, ...sel.providerIndexes];
    const checks: Arg[][] = [
      ["EXISTS", sel.master],
      ["HGET", sel.meta, "generation"],
      ["GET", sel.epoch],
    ];
    for (const k of read) {
      checks.push(["EXISTS", k], ["SISMEMBER", sel.indexList, k]);
    }
    const replies = await this.conn.pipeline(sel.master, checks);
    const [exists, genNow, epochNow] = replies;
    if ((text(genNow) || "0") !== generation || (text(epochNow) || "0") !== epoch) {
      return null;
    }
    const vanished = read.some((_, i) => replies[3 + 2 * i] === 0 && replies[4 + 2 * i] === 1);
    const rows =
      exists === 1 && !vanished && values.length === keys.length ? rowsOf(values) : null;
    return rows ? { hit: true, generation, rows } : { hit: false, generation, rows: [] };
  }

  /**
   * Every member of the sets that starts with the datasource's entry prefix,
   * deduplicated by its exact bytes. Anything else (another datasource's key,
   * another prefix, bytes that are no key name) is skipped, as the script
   * skips it: it is no cached group of this query.
   */
  private async union(sel: Selection, sets: string[]): Promise<Map<string, Buffer>> {
    const out = new Map<string, Buffer>();
    for (const set of sets) {
      let cursor: Arg = "0";
      do {
        const reply = await this.conn.call(sel.master, ["SSCAN", set, cursor, "COUNT", SCAN_COUNT]);
        if (!Array.isArray(reply) || reply.length !== 2 || !Array.isArray(reply[1])) {
          throw new Error(`reading index ${set}: unexpected SSCAN reply`);
        }
        cursor = text(reply[0]);
        for (const m of reply[1]) {
          if (Buffer.isBuffer(m) && startsWith(m, sel.prefix)) out.set(m.toString("latin1"), m);
        }
      } while (cursor !== "0" && cursor !== "");
    }
    return out;
  }

  /** Sends the statistics pipeline without waiting for it. */
  private record(ds: number, hit: boolean, queryUs: number): void {
    if (!this.recordStats) return;
    const commands = recordCommands(ds, hit, queryUs, Date.now());
    const sent: Promise<void> = this.conn.pipeline(masterKey(ds), commands).then(
      () => undefined,
      (error: unknown) => {
        try {
          this.onStatsError?.(error);
        } catch {
          // A throwing callback must not become an unhandled rejection.
        }
      },
    );
    const tracked = sent.finally(() => this.pending.delete(tracked));
    this.pending.add(tracked);
  }
}
