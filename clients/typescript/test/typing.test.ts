// The reader takes node-redis clients as createClient / createCluster make
// them, with no cast (this file fails to compile otherwise).

import assert from "node:assert/strict";
import { test } from "node:test";
import { createClient, createCluster, RESP_TYPES } from "redis";

import { AnalyticsCacheReader } from "../dist/index.js";

test("standalone, cluster, RESP3 and type-mapped clients are accepted", () => {
  const plain = createClient({ url: "redis://127.0.0.1:1" });
  const resp3 = createClient({ url: "redis://127.0.0.1:1", RESP: 3 });
  const mapped = plain.withTypeMapping({ [RESP_TYPES.BLOB_STRING]: Buffer });
  const cluster = createCluster({ rootNodes: [{ url: "redis://127.0.0.1:1" }] });
  for (const c of [plain, resp3, mapped, cluster]) {
    assert.ok(new AnalyticsCacheReader(c));
  }
  assert.throws(() => new AnalyticsCacheReader({} as never), TypeError);
});
