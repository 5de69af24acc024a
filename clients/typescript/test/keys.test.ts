// Key names from the shared vectors, and hostile component values written in
// the seed's format and read back through the reader.

import assert from "node:assert/strict";
import { test } from "node:test";

import {
  AnalyticsCacheReader,
  entryKey,
  escapeComponent,
  indexKeysOf,
  masterKey,
  measureFreqIndexKey,
  metaKey,
  practiceIndexKey,
} from "../dist/index.js";
import { type Group, removeGroups, writeGroups } from "./support/seed.js";
import { eachTopology } from "./support/topology.js";
import { loadVectors } from "./support/vectors.js";

const vectors = loadVectors();

test("components escape exactly as the shared vectors say", () => {
  assert.ok(vectors.escape.length >= 20);
  for (const c of vectors.escape) {
    assert.equal(escapeComponent(c.value), c.escaped, `escaping ${JSON.stringify(c.value)}`);
  }
  // Numbers are written as their decimal text.
  assert.equal(escapeComponent(114), "114");
});

test("entry and index keys are exactly the shared vectors' names", () => {
  for (const c of vectors.keys) {
    assert.equal(entryKey(c.datasource, c), c.entry);
    const [mf, practice, provider] = indexKeysOf(c.datasource, c);
    assert.equal(mf, c.indexes.measureFreq);
    assert.equal(practice, c.indexes.practice);
    assert.equal(provider, c.indexes.provider);
  }
});

eachTopology("hostile component values round-trip", (t) => {
  test("every vector group is found by measure, practice, provider or NULL provider", async () => {
    const reader = new AnalyticsCacheReader(t().client);
    for (const [i, c] of vectors.keys.entries()) {
      const ds = 100 + i;
      const group: Group = {
        ...c,
        rows: [{ measure: c.measure, practice_uid: c.practice, provider_uid: c.provider, frequency: c.frequency, n: i, text: "é:{x}*\u0001" }],
      };
      await writeGroups(t(), ds, [group], 1);
      const base = { datasourceId: ds, measure: c.measure, frequency: c.frequency };
      const asked = [
        base,
        { ...base, practices: [c.practice] },
        c.provider === null ? { ...base, nullProvider: true } : { ...base, providers: [c.provider] },
        c.provider === null
          ? { ...base, practices: [c.practice], nullProvider: true }
          : { ...base, practices: [c.practice], providers: [c.provider] },
      ];
      for (const q of asked) {
        const got = await reader.query(q);
        assert.deepEqual(got, { hit: true, rows: group.rows, generation: 1 }, `${JSON.stringify(q)}`);
      }
      // A NULL provider and the text "%N" are different providers.
      const other = await reader.query({ ...base, ...(c.provider === null ? { providers: ["%N"] } : { nullProvider: true }) });
      assert.deepEqual(other, { hit: true, rows: [], generation: 1 });
      await removeGroups(t(), ds, [group]);
    }
    await reader.flushStats();
  });

  test("binary entry names and values pass through byte for byte", async () => {
    const ds = 300;
    const names = [
      Buffer.concat([Buffer.from("cache:{ds:300}:bin:"), Buffer.from([0xff, 0x00, 0xfe, 0x80])]),
      Buffer.concat([Buffer.from("cache:{ds:300}:bin:"), Buffer.from([0x7f])]),
      Buffer.concat([Buffer.from("cache:{ds:300}:bin:"), Buffer.from([0xc3, 0xa9])]),
    ];
    const index = measureFreqIndexKey(ds, "Bin", "Monthly");
    const practice = practiceIndexKey(ds, "Bin", "1", "Monthly");
    for (const [i, name] of names.entries()) {
      await t().cmd(["SET", name, JSON.stringify([{ i, s: "\u00e9\u{1F600}" }])]);
      await t().cmd(["SADD", masterKey(ds), name]);
      await t().cmd(["SADD", index, name]);
      await t().cmd(["SADD", practice, name]);
    }
    await t().cmd(["HSET", metaKey(ds), "generation", "4"]);
    const reader = new AnalyticsCacheReader(t().client);
    const expected = {
      hit: true,
      // Bytewise order of the names: 0x7f < 0xc3 < 0xff.
      rows: [{ i: 1, s: "\u00e9\u{1F600}" }, { i: 2, s: "\u00e9\u{1F600}" }, { i: 0, s: "\u00e9\u{1F600}" }],
      generation: 4,
    };
    assert.deepEqual(await reader.query({ datasourceId: ds, measure: "Bin", frequency: "Monthly" }), expected);
    assert.deepEqual(
      await reader.query({ datasourceId: ds, measure: "Bin", frequency: "Monthly", practices: [1] }),
      expected,
    );
    await reader.flushStats();
  });
});
