// The shared read-contract vectors at the repository root.

import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

import type { Group } from "./seed.js";

export interface QueryCase {
  name: string;
  query: { measure: string; frequency: string; practices: string[]; providers: string[]; nullProvider: boolean };
  entries: string[];
  hit: boolean;
  generation: number;
  rows: Record<string, unknown>[];
  /** Before the query: keys to delete, and members (hex of their bytes) to add to sets. */
  before?: { delete?: string[]; add?: { set: string; memberHex: string }[] };
}

export interface Vectors {
  escape: { value: string | null; escaped: string }[];
  keys: {
    datasource: number;
    measure: string;
    practice: string;
    provider: string | null;
    frequency: string;
    entry: string;
    indexes: { measureFreq: string; practice: string; provider: string };
  }[];
  queries: { datasource: number; generation: number; groups: (Group & { entry: string })[]; cases: QueryCase[] };
}

// build/support/vectors.js → ../../../../tests/vectors
export const VECTORS_PATH = fileURLToPath(new URL("../../../../tests/vectors/read-contract.json", import.meta.url));

// build/support/vectors.js → ../../../../src/cache/lua/query.lua
export const RUST_QUERY_SCRIPT_PATH = fileURLToPath(new URL("../../../../src/cache/lua/query.lua", import.meta.url));

export function loadVectors(): Vectors {
  return JSON.parse(readFileSync(VECTORS_PATH, "utf8")) as Vectors;
}
