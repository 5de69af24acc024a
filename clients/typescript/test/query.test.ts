// The shared query vectors, written in the seed's format and read through the
// reader on a standalone server and a cluster.

import assert from "node:assert/strict";
import { test } from "node:test";

import { AnalyticsCacheReader, epochKey, metaKey } from "../dist/index.js";
import { removeGroups, writeGroups } from "./support/seed.js";
import { eachTopology } from "./support/topology.js";
import { loadVectors } from "./support/vectors.js";

const { queries } = loadVectors();
const ds = queries.datasource;

eachTopology("query vectors", (t) => {
  for (const c of queries.cases) {
    test(c.name, async () => {
      await writeGroups(t(), ds, queries.groups, queries.generation);
      for (const k of c.before?.delete ?? []) await t().cmd(["DEL", k]);
      const reader = new AnalyticsCacheReader(t().client);
      const got = await reader.query({ datasourceId: ds, ...c.query });
      assert.deepEqual(got, { hit: c.hit, rows: c.rows, generation: c.generation });
      await reader.flushStats();
      await removeGroups(t(), ds, queries.groups);
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
