// End to end with the real cachedeck binary: a SQLite source and store,
// `cachedeck warm` writes the cache, the TypeScript reader answers with the
// source's rows, and `cachedeck stats --json` shows the reader's hits.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";

import { AnalyticsCacheReader, entryKey } from "../dist/index.js";
import { eachTopology } from "./support/topology.js";

// build/e2e.test.js → clients/typescript → repository root
const REPO = fileURLToPath(new URL("../../../", import.meta.url));
const BIN = process.env.CACHEDECK_BIN ? resolve(process.env.CACHEDECK_BIN) : join(REPO, "target", "debug", "cachedeck");
const DS = 5;
const ROWS = 300;

// The source: ROWS rows over three measures (one hostile), ten practices,
// six providers and NULL, two frequencies, from SQLite itself (no table).
const SOURCE_SQL = `WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ${ROWS - 1})
SELECT CASE i % 3 WHEN 0 THEN 'Charges' WHEN 1 THEN 'Payments' ELSE 'a:b é 100%' END AS measure,
       'P' || (i % 10) AS practice_uid,
       CASE WHEN i % 4 = 0 THEN NULL ELSE 'prov ' || (i % 6) END AS provider_uid,
       CASE WHEN i % 5 = 0 THEN 'Weekly' ELSE 'Monthly' END AS frequency,
       i AS n,
       i * 1.5 AS amount
FROM n`;

interface SourceRow {
  measure: string;
  practice_uid: string;
  provider_uid: string | null;
  frequency: string;
  n: number;
  amount: number;
}

/** What SOURCE_SQL returns, in its order. */
const SOURCE: SourceRow[] = Array.from({ length: ROWS }, (_, i) => ({
  measure: ["Charges", "Payments", "a:b é 100%"][i % 3]!,
  practice_uid: `P${i % 10}`,
  provider_uid: i % 4 === 0 ? null : `prov ${i % 6}`,
  frequency: i % 5 === 0 ? "Weekly" : "Monthly",
  n: i,
  amount: i * 1.5,
}));

/** The rows a query must answer: its groups in bytewise entry-key order, rows in source order. */
function expected(
  measure: string,
  frequency: string,
  practices: string[] = [],
  providers: (string | null)[] = [],
): SourceRow[] {
  const chosen = SOURCE.filter(
    (r) =>
      r.measure === measure &&
      r.frequency === frequency &&
      (practices.length === 0 || practices.includes(r.practice_uid)) &&
      (providers.length === 0 || providers.includes(r.provider_uid)),
  );
  const key = (r: SourceRow) =>
    Buffer.from(
      entryKey(DS, { measure: r.measure, practice: r.practice_uid, provider: r.provider_uid, frequency: r.frequency }),
    );
  // A stable sort keeps source order within a group.
  return [...chosen].sort((a, b) => Buffer.compare(key(a), key(b)));
}

/** Runs the cachedeck binary with its own config dir, SQLite store and the test's Redis. */
class Cachedeck {
  readonly dir = mkdtempSync(join(tmpdir(), "cachedeck-ts-e2e-"));

  constructor(private readonly redisUrl: string) {}

  /**
   * The source database. cachedeck opens a SQLite source read-only and never
   * creates it, so an empty file (a valid empty database) is made first; the
   * source query itself needs no table.
   */
  get sourceUrl(): string {
    const file = join(this.dir, "source.db");
    if (!existsSync(file)) writeFileSync(file, "");
    return `sqlite://${file}`;
  }

  run(args: string[]): string {
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) {
      if (!k.startsWith("CACHEDECK_") && k !== "RUST_LOG") env[k] = v;
    }
    Object.assign(env, {
      CACHEDECK_CONFIG_DIR: join(this.dir, "config"),
      CACHEDECK_DATA_DIR: join(this.dir, "data"),
      CACHEDECK_REDIS_URL: this.redisUrl,
      CACHEDECK_DATABASE_URL: `sqlite://${join(this.dir, "store.db")}?mode=rwc`,
      CACHEDECK_WARM_RATE_LIMIT: "0",
      CACHEDECK_INVALIDATE_RATE_LIMIT: "0",
      NO_COLOR: "1",
    });
    const out = spawnSync(BIN, args, { env, encoding: "utf8", timeout: 180_000, stdio: ["ignore", "pipe", "pipe"] });
    if (out.status !== 0) {
      throw new Error(
        `\`cachedeck ${args.join(" ")}\` exited ${out.status ?? out.signal ?? out.error}\n` +
          `--- stdout:\n${out.stdout}\n--- stderr:\n${out.stderr}`,
      );
    }
    return out.stdout;
  }

  json(args: string[]): any {
    const text = this.run([...args, "--json"]);
    try {
      return JSON.parse(text);
    } catch {
      throw new Error(`\`cachedeck ${args.join(" ")} --json\` printed no JSON:\n${text}`);
    }
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

test("the cachedeck binary is built", () => {
  assert.ok(
    existsSync(BIN),
    `cachedeck binary not found at ${BIN}: run \`cargo build\` in the repository root first ` +
      "(or set CACHEDECK_BIN to the binary)",
  );
});

eachTopology("a cache warmed by cachedeck", (t) => {
  let cd: Cachedeck;
  before(() => {
    if (!existsSync(BIN)) {
      throw new Error(`cachedeck binary not found at ${BIN}: run \`cargo build\` first (or set CACHEDECK_BIN)`);
    }
    cd = new Cachedeck(t().urlArg);
  });
  after(() => cd?.remove());

  test("is read with the source's rows, and stats show the reader's hits and misses", async () => {
    cd.run(["datasource", "add", "--id", String(DS), "--name", "TS reader e2e", "--source-url", cd.sourceUrl, "--sql", SOURCE_SQL]);
    const warm = cd.json(["warm", "--datasource", String(DS)]);
    assert.equal(warm.jobs?.[0]?.state, "succeeded", JSON.stringify(warm));
    assert.equal(warm.jobs[0].rowsProcessed, ROWS);

    const reader = new AnalyticsCacheReader(t().client);
    const asked: [Parameters<AnalyticsCacheReader["query"]>[0], SourceRow[]][] = [
      [{ datasourceId: DS, measure: "Charges", frequency: "Monthly" }, expected("Charges", "Monthly")],
      [{ datasourceId: DS, measure: "Payments", frequency: "Weekly", practices: ["P0", "P7"] }, expected("Payments", "Weekly", ["P0", "P7"])],
      [
        { datasourceId: DS, measure: "a:b é 100%", frequency: "Monthly", providers: ["prov 2"], nullProvider: true },
        expected("a:b é 100%", "Monthly", [], ["prov 2", null]),
      ],
      [
        { datasourceId: DS, measure: "Charges", frequency: "Monthly", practices: ["P3", "P6"], providers: ["prov 3"] },
        expected("Charges", "Monthly", ["P3", "P6"], ["prov 3"]),
      ],
    ];
    let generation = 0;
    for (const [q, rows] of asked) {
      assert.ok(rows.length > 0, `the source has rows for ${JSON.stringify(q)}`);
      const got = await reader.query(q);
      assert.equal(got.hit, true, JSON.stringify(q));
      assert.deepEqual(got.rows, rows, JSON.stringify(q));
      assert.ok(got.generation > 0);
      generation = got.generation;
    }
    // cachedeck's own reader agrees on the generation and the rows.
    const cli = cd.json(["query", "--datasource", String(DS), "--measure", "Charges", "--frequency", "Monthly"]);
    assert.equal(cli.hit, true);
    assert.equal(cli.generation, generation);
    assert.deepEqual(cli.rows, expected("Charges", "Monthly"));
    await reader.flushStats();

    const stats = cd.json(["stats"]);
    const mine = stats.datasources.find((d: any) => d.datasourceId === DS);
    assert.ok(mine, JSON.stringify(stats));
    // Four TS queries and one CLI query since the warm, all hits.
    assert.equal(mine.totalQueries, asked.length + 1, JSON.stringify(mine));
    assert.equal(mine.cacheHitRate, 100);
    assert.ok(mine.avgQueryTimeMs > 0);

    // After an invalidation the reader misses, and stats count the miss.
    cd.json(["invalidate", "--datasource", String(DS)]);
    const miss = await reader.query({ datasourceId: DS, measure: "Charges", frequency: "Monthly" });
    assert.deepEqual(miss, { hit: false, rows: [], generation: 0 });
    await reader.flushStats();
    const afterInvalidate = cd.json(["stats"]).datasources.find((d: any) => d.datasourceId === DS);
    // An invalidation does not reset the counters since the warm: the miss
    // is counted beside the earlier hits.
    assert.equal(afterInvalidate.totalQueries, asked.length + 2, JSON.stringify(afterInvalidate));
    assert.ok(afterInvalidate.cacheHitRate < 100, JSON.stringify(afterInvalidate));
  });
});
