// Selections above the member cap (1000) are read in bounded steps (SSCAN,
// MGET in chunks, then a generation check) and answer exactly what a small
// read would.

import assert from "node:assert/strict";
import { test } from "node:test";

import {
  AnalyticsCacheReader,
  type AnyRedisClient,
  entryKey,
  epochKey,
  indexKeysOf,
  MEMBER_CAP,
  masterKey,
  metaKey,
} from "../dist/index.js";
import { type Group, removeGroups, writeGroups } from "./support/seed.js";
import { type Topology, eachTopology } from "./support/topology.js";

const ds = 11;
const N = 1500;
const groups: Group[] = Array.from({ length: N }, (_, i) => ({
  measure: "Big",
  practice: `p${i}`,
  provider: i % 5 === 0 ? null : String(i % 7),
  frequency: "Monthly",
  rows: [{ i, practice_uid: `p${i}` }, ...(i % 3 === 0 ? [{ i, second: true }] : [])],
}));

/** The rows a selection must answer: its groups in bytewise entry-key order. */
function expectedRows(chosen: Group[]): Record<string, unknown>[] {
  return [...chosen]
    .sort((a, b) => Buffer.compare(Buffer.from(entryKey(ds, a)), Buffer.from(entryKey(ds, b))))
    .flatMap((g) => g.rows);
}

/**
 * The test's client with one hook: after each of the first `times` runs of
 * the read script, another client runs `change` before the reader sees the
 * script's answer (a generation or epoch moving on while a large selection
 * is being read). Redis itself is real.
 */
function changingDuring(t: Topology, times: number, change: string[]): { client: AnyRedisClient; left: () => number } {
  let left = times;
  const target = t.client as any;
  const send = (...a: any[]) => {
    const args: string[] = t.kind === "cluster" ? a[2] : a[0];
    const word = String(args[0]).toUpperCase();
    if ((word === "EVALSHA" || word === "EVAL") && left > 0) {
      left--;
      return target.sendCommand(...a).then(async (reply: unknown) => {
        await t.cmd(change);
        return reply;
      });
    }
    return target.sendCommand(...a);
  };
  const client = new Proxy(target, {
    get(obj, prop) {
      if (prop === "sendCommand") return send;
      const v = Reflect.get(obj, prop, obj);
      return typeof v === "function" ? v.bind(obj) : v;
    },
  });
  return { client, left: () => left };
}

/**
 * Reads past the foreign members planted by the test below: over the cap (the
 * bounded read) and under it (the script), always the groups' own rows.
 */
async function readsPastForeign(t: Topology): Promise<void> {
  const reader = new AnalyticsCacheReader(t.client);
  const all = await reader.query({ datasourceId: ds, measure: "Big", frequency: "Monthly" });
  assert.deepEqual(all, { hit: true, rows: expectedRows(groups), generation: 2 });

  // Over the cap through the practice indexes, intersected with providers:
  // the foreign members are in both sides of the intersection.
  const practices = groups.slice(0, 1100).map((g) => g.practice);
  const narrowed = await reader.query({
    datasourceId: ds, measure: "Big", frequency: "Monthly", practices,
    providers: [groups[3]!.provider!], nullProvider: true,
  });
  const chosen = groups.slice(0, 1100).filter((g) => g.provider === groups[3]!.provider || g.provider === null);
  assert.deepEqual(narrowed, { hit: true, rows: expectedRows(chosen), generation: 2 });

  // Under the cap (the script's own read): the same members skipped.
  const few = await reader.query({
    datasourceId: ds, measure: "Big", frequency: "Monthly", practices: [groups[3]!.practice, groups[10]!.practice],
    providers: [groups[3]!.provider!], nullProvider: true,
  });
  assert.deepEqual(few, { hit: true, rows: expectedRows([groups[3]!, groups[10]!]), generation: 2 });
  await reader.flushStats();
}

eachTopology("large selections", (t) => {
  test("more members than the cap: the same rows, in bytewise key order", async () => {
    assert.equal(MEMBER_CAP, 1000);
    await writeGroups(t(), ds, groups, 2);
    const reader = new AnalyticsCacheReader(t().client);
    const all = await reader.query({ datasourceId: ds, measure: "Big", frequency: "Monthly" });
    assert.equal(all.hit, true);
    assert.equal(all.generation, 2);
    assert.deepEqual(all.rows, expectedRows(groups));

    // 1,100 practice indexes (over the cap) intersected with two providers.
    const practices = groups.slice(0, 1100).map((g) => g.practice);
    const narrowed = await reader.query({
      datasourceId: ds, measure: "Big", frequency: "Monthly", practices, providers: ["3"], nullProvider: true,
    });
    const chosen = groups.slice(0, 1100).filter((g) => g.provider === "3" || g.provider === null);
    assert.equal(narrowed.hit, true);
    assert.deepEqual(narrowed.rows, expectedRows(chosen));

    // Under the cap, the script answers by itself: the same rows either way.
    const few = await reader.query({ datasourceId: ds, measure: "Big", frequency: "Monthly", practices: practices.slice(0, 30) });
    assert.deepEqual(few.rows, expectedRows(groups.slice(0, 30)));

    // Providers alone: the NULL provider's index holds 300 entries, "1" about 170.
    const byProvider = await reader.query({ datasourceId: ds, measure: "Big", frequency: "Monthly", providers: ["1"], nullProvider: true });
    assert.deepEqual(byProvider.rows, expectedRows(groups.filter((g) => g.provider === "1" || g.provider === null)));
    await reader.flushStats();
  });

  test("a missing entry in a large selection is a miss", async () => {
    await writeGroups(t(), ds, groups, 2);
    await t().cmd(["DEL", entryKey(ds, groups[777]!)]);
    const reader = new AnalyticsCacheReader(t().client);
    assert.deepEqual(await reader.query({ datasourceId: ds, measure: "Big", frequency: "Monthly" }), {
      hit: false, rows: [], generation: 2,
    });
    await reader.flushStats();
  });

  test("a generation swapped in while reading: read again, and a miss after three tries", async () => {
    await writeGroups(t(), ds, groups, 2);
    const once = changingDuring(t(), 1, ["HINCRBY", metaKey(ds), "generation", "1"]);
    const reader = new AnalyticsCacheReader(once.client);
    const q = { datasourceId: ds, measure: "Big", frequency: "Monthly" };
    const again = await reader.query(q);
    assert.equal(once.left(), 0);
    assert.equal(again.hit, true);
    assert.equal(again.generation, 3, "the answer names the generation it was read from");
    assert.deepEqual(again.rows, expectedRows(groups));

    // After three tries the miss is read from no generation, as cachedeck answers.
    const always = changingDuring(t(), 3, ["INCR", epochKey(ds)]);
    const unlucky = new AnalyticsCacheReader(always.client);
    assert.deepEqual(await unlucky.query(q), { hit: false, rows: [], generation: 0 });
    assert.equal(always.left(), 0);
    // The invalidations are over: the next query answers.
    assert.equal((await unlucky.query(q)).hit, true);
    await reader.flushStats();
    await unlucky.flushStats();
    await removeGroups(t(), ds, groups);
  });

  test("foreign members in the master and the index sets are skipped by the bounded read", async () => {
    await writeGroups(t(), ds, groups, 2);
    // Not UTF-8, another datasource's entry (same first bytes, another slot),
    // and other prefixes of this datasource's slot, some of them existing keys.
    const foreign = [
      Buffer.from([0xff, 0xfe, 0x00, 0x63]),
      Buffer.from(entryKey(ds * 10, groups[3]!)),
      Buffer.from(entryKey(ds, groups[3]!).replace("cache:", "cache:shadow:")),
      Buffer.from(metaKey(ds)),
      Buffer.from(masterKey(ds)),
      Buffer.from(`cache:{ds:${ds}}`),
    ];
    // Every set the queries below read, plus the master.
    const sets = new Set<string>([masterKey(ds)]);
    for (const g of [groups[3]!, groups[5]!, groups[10]!]) for (const k of indexKeysOf(ds, g)) sets.add(k);
    for (const set of sets) await t().cmd(["SADD", set, ...foreign]);
    try {
      await readsPastForeign(t());
    } finally {
      // Also after a failure: a foreign member of another slot would fail the next tests.
      await removeGroups(t(), ds, groups);
    }
  });

  test("the master gone between the steps of a bounded read is a miss, not a retry", async () => {
    await writeGroups(t(), ds, groups, 2);
    // The master disappears but neither generation nor epoch moves: read once, miss.
    const gone = changingDuring(t(), 3, ["UNLINK", masterKey(ds)]);
    const reader = new AnalyticsCacheReader(gone.client);
    assert.deepEqual(await reader.query({ datasourceId: ds, measure: "Big", frequency: "Monthly" }), {
      hit: false, rows: [], generation: 2,
    });
    assert.equal(gone.left(), 2, "the script ran once");
    await reader.flushStats();
    await removeGroups(t(), ds, groups);
  });
});
