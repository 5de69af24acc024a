// Hits, misses and query time land in cachedeck's statistics keys with the
// README's names, fields and expiries; recording never delays or fails a query.

import assert from "node:assert/strict";
import { test } from "node:test";

import {
  AnalyticsCacheReader,
  type AnyRedisClient,
  HOUR_TTL_SECS,
  MINUTE_TTL_SECS,
  statsHourKey,
  statsMinuteKey,
  statsSinceWarmKey,
} from "../dist/index.js";
import { rawCommand } from "./support/servers.js";
import { type Group, writeGroups } from "./support/seed.js";
import { type Topology, eachTopology } from "./support/topology.js";

const ds = 21;
const groups: Group[] = [
  { measure: "Charges", practice: "114", provider: "5", frequency: "Monthly", rows: [{ amount: 1 }] },
  { measure: "Charges", practice: "115", provider: null, frequency: "Monthly", rows: [{ amount: 2 }] },
];

function fields(reply: unknown): Record<string, number> {
  const out: Record<string, number> = {};
  const list = (reply as unknown[]).map((v) => String(v));
  for (let i = 0; i + 1 < list.length; i += 2) out[list[i]!] = Number(list[i + 1]);
  return out;
}

/** Sums hits, misses and queryUs over buckets (a query may cross a minute boundary). */
async function sum(t: Topology, keys: string[]): Promise<Record<string, number>> {
  const total: Record<string, number> = { hits: 0, misses: 0, queryUs: 0 };
  for (const k of new Set(keys)) {
    const h = fields(await t.cmd(["HGETALL", k]));
    for (const f of Object.keys(total)) total[f]! += h[f] ?? 0;
  }
  return total;
}

/** The test's client, except that HINCRBY never gets an answer. */
function statsNeverAnswer(t: Topology): AnyRedisClient {
  const target = t.client as any;
  const send = (...a: any[]) => {
    const args: string[] = t.kind === "cluster" ? a[2] : a[0];
    if (String(args[0]).toUpperCase() === "HINCRBY") return new Promise(() => {});
    return target.sendCommand(...a);
  };
  return new Proxy(target, {
    get(obj, prop) {
      if (prop === "sendCommand") return send;
      const v = Reflect.get(obj, prop, obj);
      return typeof v === "function" ? v.bind(obj) : v;
    },
  });
}

eachTopology("reader statistics", (t) => {
  test("a hit and a miss are counted in the minute, hour and since-warm keys", async () => {
    await writeGroups(t(), ds, groups, 1);
    const reader = new AnalyticsCacheReader(t().client);
    const before = Date.now();
    const hit = await reader.query({ datasourceId: ds, measure: "Charges", frequency: "Monthly" });
    await t().cmd(["DEL", `cache:{ds:${ds}}:m:Charges:p:115:prov:%N:freq:Monthly`]);
    const miss = await reader.query({ datasourceId: ds, measure: "Charges", frequency: "Monthly", nullProvider: true });
    await reader.flushStats();
    const after = Date.now();
    assert.equal(hit.hit, true);
    assert.equal(miss.hit, false);

    const minutes = [statsMinuteKey(ds, Math.floor(before / 60_000)), statsMinuteKey(ds, Math.floor(after / 60_000))];
    const hours = [statsHourKey(ds, Math.floor(before / 3_600_000)), statsHourKey(ds, Math.floor(after / 3_600_000))];
    assert.equal(minutes[0], `cachedeck:stats:{ds:${ds}}:m:${Math.floor(before / 60_000)}`);
    assert.equal(hours[0], `cachedeck:stats:{ds:${ds}}:h:${Math.floor(before / 3_600_000)}`);
    assert.equal(statsSinceWarmKey(ds), `cachedeck:stats:{ds:${ds}}:since_warm`);
    for (const keys of [minutes, hours, [statsSinceWarmKey(ds)]]) {
      const s = await sum(t(), keys);
      assert.equal(s.hits, 1, keys[0]);
      assert.equal(s.misses, 1, keys[0]);
      assert.ok(s.queryUs! > 0 && s.queryUs! < (after - before + 1) * 1000, `${keys[0]} queryUs ${s.queryUs}`);
    }
    const minuteTtl = Number(await t().cmd(["TTL", minutes[1]!]));
    const hourTtl = Number(await t().cmd(["TTL", hours[1]!]));
    assert.ok(minuteTtl > MINUTE_TTL_SECS - 60 && minuteTtl <= MINUTE_TTL_SECS, `minute TTL ${minuteTtl}`);
    assert.ok(hourTtl > HOUR_TTL_SECS - 60 && hourTtl <= HOUR_TTL_SECS, `hour TTL ${hourTtl}`);
    assert.equal(MINUTE_TTL_SECS, 172800);
    assert.equal(HOUR_TTL_SECS, 7776000);
    assert.equal(Number(await t().cmd(["TTL", statsSinceWarmKey(ds)])), -1, "since_warm has no expiry");
  });

  test("the answer does not wait for the statistics", async () => {
    const reader = new AnalyticsCacheReader(statsNeverAnswer(t()));
    const answer = await reader.query({ datasourceId: ds, measure: "Charges", frequency: "Monthly" });
    assert.equal(answer.generation, 1);
  });

  test("a failed recording reaches onStatsError and the query still answers", async () => {
    await writeGroups(t(), ds, groups, 1);
    // A user that may read everything but not HINCRBY, on every node.
    for (const port of t().ports) {
      const ok = await rawCommand(port, "ACL SETUSER statsless on >pw ~* &* +@all -hincrby");
      assert.match(ok, /^\+OK/, `ACL SETUSER on ${port}: ${ok}`);
    }
    const client = await t().newClient({ username: "statsless", password: "pw" });
    const errors: unknown[] = [];
    const reader = new AnalyticsCacheReader(client, { onStatsError: (e) => errors.push(e) });
    const answer = await reader.query({ datasourceId: ds, measure: "Charges", frequency: "Monthly" });
    assert.deepEqual(answer, { hit: true, rows: [{ amount: 1 }, { amount: 2 }], generation: 1 });
    await reader.flushStats();
    assert.ok(errors.length >= 1, "onStatsError was called");
    assert.match(String(errors[0]), /NOPERM|permission/i);

    // Without a callback the error is dropped: no unhandled rejection.
    const quiet = new AnalyticsCacheReader(client);
    assert.equal((await quiet.query({ datasourceId: ds, measure: "Charges", frequency: "Monthly" })).hit, true);
    await quiet.flushStats();
  });

  test("recordStats: false sends nothing", async () => {
    const reader = new AnalyticsCacheReader(t().client, { recordStats: false });
    const since = statsSinceWarmKey(ds + 1);
    await reader.query({ datasourceId: ds + 1, measure: "Charges", frequency: "Monthly" });
    await reader.flushStats();
    assert.equal(await t().cmd(["EXISTS", since]), 0);
  });
});
