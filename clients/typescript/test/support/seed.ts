// Writes groups the way the seed's application (and a cachedeck swap) leaves
// a live generation: each entry a JSON array of rows, the master set, the
// three secondary indexes, the index list and the meta generation.

import { entryKey, indexKeysOf, indexListKey, masterKey, metaKey, type GroupKey } from "../../dist/index.js";
import type { Topology } from "./topology.js";

export interface Group extends GroupKey {
  rows: Record<string, unknown>[];
}

export async function writeGroups(t: Topology, ds: number, groups: Group[], generation: number): Promise<void> {
  const writes: Promise<unknown>[] = [];
  for (const g of groups) {
    const entry = entryKey(ds, g);
    writes.push(t.cmd(["SET", entry, JSON.stringify(g.rows)]));
    writes.push(t.cmd(["SADD", masterKey(ds), entry]));
    for (const idx of indexKeysOf(ds, g)) {
      writes.push(t.cmd(["SADD", idx, entry]));
      writes.push(t.cmd(["SADD", indexListKey(ds), idx]));
    }
  }
  writes.push(t.cmd(["HSET", metaKey(ds), "generation", String(generation)]));
  await Promise.all(writes);
}

/** Deletes what writeGroups wrote (UNLINK of exactly those keys). */
export async function removeGroups(t: Topology, ds: number, groups: GroupKey[]): Promise<void> {
  const keys = new Set<string>([masterKey(ds), indexListKey(ds), metaKey(ds)]);
  for (const g of groups) {
    keys.add(entryKey(ds, g));
    for (const idx of indexKeysOf(ds, g)) keys.add(idx);
  }
  await Promise.all([...keys].map((k) => t.cmd(["UNLINK", k])));
}
