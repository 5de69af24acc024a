// The shared query vectors, written in the seed's format and read through the
// reader on a standalone server and a cluster.

import assert from "node:assert/strict";
import { test } from "node:test";

import { readFileSync } from "node:fs";

import { AnalyticsCacheReader, epochKey, metaKey } from "../dist/index.js";
import { QUERY_SCRIPT, QUERY_SCRIPT_SHA } from "../dist/script.js";
import { removeGroups, writeGroups } from "./support/seed.js";
import { type Topology, eachTopology } from "./support/topology.js";
import { type QueryCase, RUST_QUERY_SCRIPT_PATH, loadVectors } from "./support/vectors.js";

const { queries } = loadVectors();
const ds = queries.datasource;

/** Applies a case's `before`: deletes keys, adds members (given as hex bytes) to sets. */
async function prepare(t: Topology, c: QueryCase): Promise<void> {
  for (const k of c.before?.delete ?? []) await t.cmd(["DEL", k]);
  for (const a of c.before?.add ?? []) await t.cmd(["SADD", a.set, Buffer.from(a.memberHex, "hex")]);
}

test("the read script is cachedeck's own src/cache/lua/query.lua, byte for byte", () => {
  assert.equal(QUERY_SCRIPT, readFileSync(RUST_QUERY_SCRIPT_PATH, "utf8"));
  assert.match(QUERY_SCRIPT_SHA, /^[0-9a-f]{40}$/);
});

test("the vectors plant foreign members that are not UTF-8, of another datasource and of other prefixes", () => {
  const planted = queries.cases.flatMap((c) => c.before?.add ?? []).map((a) => Buffer.from(a.memberHex, "hex"));
  const prefix = Buffer.from(`cache:{ds:${ds}}:`);
  assert.ok(planted.length > 0);
  assert.ok(planted.every((m) => !m.subarray(0, prefix.length).equals(prefix)));
  assert.ok(planted.some((m) => !Buffer.from(m.toString("utf8"), "utf8").equals(m)), "a member that is not UTF-8");
  assert.ok(planted.some((m) => m.toString().startsWith(`cache:{ds:${ds * 10}}:`)), "another datasource's entry");
  assert.ok(queries.cases.some((c) => c.before?.add && c.hit && c.rows.length > 0));
});

eachTopology("query vectors", (t) => {
  for (const c of queries.cases) {
    test(c.name, async () => {
      await writeGroups(t(), ds, queries.groups, queries.generation);
      try {
        await prepare(t(), c);
        const reader = new AnalyticsCacheReader(t().client);
        const got = await reader.query({ datasourceId: ds, ...c.query });
        assert.deepEqual(got, { hit: c.hit, rows: c.rows, generation: c.generation });
        await reader.flushStats();
      } finally {
        // Also after a failure, so one failing case does not fail the next ones.
        await removeGroups(t(), ds, queries.groups);
        for (const a of c.before?.add ?? []) await t().cmd(["UNLINK", a.set]);
      }
    });
  }

  test("the vectors' groups are distinct and their entry names are the reader's", () => {
    assert.equal(new Set(queries.groups.map((g) => g.entry)).size, queries.groups.length);
    assert.ok(queries.cases.some((c) => !c.hit) && queries.cases.some((c) => c.hit && c.rows.length === 0));
  });

  test("a RESP3 client and a type-mapped client read the same answers", async () => {
    await writeGroups(t(), ds, queries.groups, queries.generation);
    const resp3 = await t().newClient({ RESP: 3 });
    const mapped = (t().client as any).withTypeMapping({});
    for (const client of [resp3, mapped]) {
      const reader = new AnalyticsCacheReader(client);
      for (const c of queries.cases.filter((c) => !c.before)) {
        assert.deepEqual(await reader.query({ datasourceId: ds, ...c.query }), {
          hit: c.hit,
          rows: c.rows,
          generation: c.generation,
        });
      }
      await reader.flushStats();
    }
    await removeGroups(t(), ds, queries.groups);
  });

  test("practices and providers may be numbers", async () => {
    await writeGroups(t(), ds, queries.groups, queries.generation);
    const reader = new AnalyticsCacheReader(t().client);
    const asText = await reader.query({ datasourceId: ds, measure: "Charges", frequency: "Monthly", practices: ["114"], providers: ["5"] });
    const asNumbers = await reader.query({ datasourceId: ds, measure: "Charges", frequency: "Monthly", practices: [114], providers: [5] });
    assert.equal(asText.hit, true);
    assert.ok(asText.rows.length > 0);
    assert.deepEqual(asNumbers, asText);
    await reader.flushStats();
    await removeGroups(t(), ds, queries.groups);
  });

  test("a full invalidation (master moved aside) is a miss; a new generation is read as such", async () => {
    await writeGroups(t(), ds, queries.groups, queries.generation);
    const reader = new AnalyticsCacheReader(t().client);
    const q = { datasourceId: ds, measure: "Charges", frequency: "Monthly" };
    assert.equal((await reader.query(q)).hit, true);
    await t().cmd(["INCR", epochKey(ds)]);
    await t().cmd(["RENAME", `idx:{ds:${ds}}:master`, `idx:{ds:${ds}}:trash:1:master`]);
    assert.deepEqual(await reader.query(q), { hit: false, rows: [], generation: queries.generation });
    await t().cmd(["UNLINK", `idx:{ds:${ds}}:trash:1:master`]);
    await writeGroups(t(), ds, queries.groups, queries.generation + 1);
    const again = await reader.query(q);
    assert.equal(again.hit, true);
    assert.equal(again.generation, queries.generation + 1);
    await reader.flushStats();
    await removeGroups(t(), ds, queries.groups);
  });

  test("an entry that is not JSON rows is a miss, not an exception", async () => {
    await writeGroups(t(), ds, queries.groups, queries.generation);
    const first = queries.cases[0]!;
    await t().cmd(["SET", first.entries[0]!, "{not json"]);
    const reader = new AnalyticsCacheReader(t().client);
    assert.deepEqual(await reader.query({ datasourceId: ds, ...first.query }), {
      hit: false,
      rows: [],
      generation: queries.generation,
    });
    await reader.flushStats();
    await removeGroups(t(), ds, queries.groups);
  });

  test("a cold datasource (nothing written) is a miss with generation 0", async () => {
    const reader = new AnalyticsCacheReader(t().client, { recordStats: false });
    assert.deepEqual(await reader.query({ datasourceId: 999, measure: "Charges", frequency: "Monthly" }), {
      hit: false,
      rows: [],
      generation: 0,
    });
    assert.equal(await t().cmd(["EXISTS", metaKey(999)]), 0);
  });

  test("bad input is refused before anything is sent", async () => {
    const reader = new AnalyticsCacheReader(t().client);
    await assert.rejects(reader.query({ datasourceId: 1.5, measure: "a", frequency: "b" }), TypeError);
    await assert.rejects(reader.query({ datasourceId: 1, measure: 3 as unknown as string, frequency: "b" }), TypeError);
    await assert.rejects(
      reader.query({ datasourceId: 1, measure: "a", frequency: "b", practices: [{}] as unknown as string[] }),
      TypeError,
    );
  });
});
