// One standalone server or one 3-master cluster per test file, with a
// connected node-redis client of the matching kind.

import { after, before, describe } from "node:test";
import { createClient, createCluster } from "redis";

import type { AnyRedisClient } from "../../dist/index.js";
import { RedisCluster, RedisServer } from "./servers.js";

export type Kind = "standalone" | "cluster";
export type Arg = string | Buffer;

export interface Topology {
  kind: Kind;
  /** A connected client for the reader under test. */
  client: AnyRedisClient;
  /** What cachedeck's `--redis-url` / CACHEDECK_REDIS_URL takes (comma-separated nodes). */
  urlArg: string;
  /** One raw command for setup and checks, routed by its first key (args[1]). */
  cmd(args: Arg[]): Promise<any>;
  /** Another connected client of the same kind (closed by stop()), optionally as an ACL user. */
  newClient(auth?: Auth): Promise<AnyRedisClient>;
  /** Loopback ports of the server or of every master. */
  ports: number[];
  stop(): Promise<void>;
}

export interface Auth {
  username?: string;
  password?: string;
  /** Speak RESP3 instead of RESP2. */
  RESP?: 3;
}

export async function startTopology(kind: Kind): Promise<Topology> {
  const clients: AnyRedisClient[] = [];
  let urls: string[];
  let stopServers: () => Promise<void>;
  let ports: number[];
  let connectOne: (auth?: Auth) => Promise<AnyRedisClient>;
  if (kind === "standalone") {
    const server = await RedisServer.start();
    urls = [server.url];
    ports = [server.port];
    stopServers = () => server.stop();
    connectOne = async (auth) => {
      const c = createClient({ url: server.url, ...auth });
      c.on("error", () => {});
      await c.connect();
      return c;
    };
  } else {
    const cluster = await RedisCluster.start();
    urls = cluster.urls;
    ports = cluster.nodes.map((n) => n.port);
    stopServers = () => cluster.stop();
    connectOne = async (auth) => {
      const { RESP, ...login } = auth ?? {};
      const c = createCluster({ rootNodes: cluster.urls.map((url) => ({ url })), defaults: { ...login }, ...(RESP ? { RESP } : {}) });
      c.on("error", () => {});
      await c.connect();
      return c;
    };
  }
  const newClient = async (auth?: Auth) => {
    const c = await connectOne(auth);
    clients.push(c);
    return c;
  };
  const client = await newClient();
  const cmd = (args: Arg[]): Promise<any> => {
    const c = client as any;
    return kind === "cluster" ? c.sendCommand(args[1], false, args) : c.sendCommand(args);
  };
  return {
    kind,
    client,
    urlArg: urls.join(","),
    ports,
    cmd,
    newClient,
    async stop() {
      for (const c of clients) {
        try {
          (c as any).destroy();
        } catch {
          // already closed
        }
      }
      await stopServers();
    },
  };
}

/** Runs `body` in a describe block once on a standalone server and once on a cluster. */
export function eachTopology(title: string, body: (t: () => Topology) => void): void {
  for (const kind of ["standalone", "cluster"] as Kind[]) {
    describe(`${title} (${kind})`, () => {
      let topology: Topology | undefined;
      before(async () => {
        topology = await startTopology(kind);
      });
      after(async () => {
        await topology?.stop();
      });
      body(() => {
        if (!topology) throw new Error(`the ${kind} Redis did not start`);
        return topology;
      });
    });
  }
}
