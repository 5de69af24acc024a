import { RESP_TYPES } from "redis";
import type { RedisClientType, RedisClusterType } from "redis";

/**
 * A connected node-redis client: a standalone client (`createClient`, a
 * pool's client) or a cluster client (`createCluster`), with any modules,
 * scripts, RESP version or type mapping. Typed by what the reader uses, so
 * every variant of `RedisClientType` / `RedisClusterType` fits.
 */
export type AnyRedisClient =
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  | Pick<RedisClientType<any, any, any, any, any>, "sendCommand">
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  | Pick<RedisClusterType<any, any, any, any, any>, "sendCommand" | "masters">;

/** One command word or argument; Buffers pass binary members through untouched. */
export type Arg = string | Buffer;

/** A reply as node-redis decodes it with every bulk string mapped to a Buffer. */
export type Reply = Buffer | number | null | Reply[];

// Bulk strings come back as Buffers, so binary members and values are neither
// re-encoded nor mangled and sort bytewise.
const BUFFERS = { typeMapping: { [RESP_TYPES.BLOB_STRING]: Buffer } };

interface StandaloneSend {
  sendCommand(args: readonly Arg[], options?: object): Promise<unknown>;
}

interface ClusterSend {
  sendCommand(firstKey: Arg | undefined, isReadonly: boolean | undefined, args: readonly Arg[], options?: object): Promise<unknown>;
}

/** True for a `createCluster` client (it knows its masters). */
function isCluster(client: AnyRedisClient): boolean {
  // A standalone client has no `masters`; a cluster client always does.
  return typeof client === "object" && client !== null && "masters" in client;
}

/**
 * Sends raw commands to either kind of client. On a cluster every command is
 * routed by `slotKey` (all keys of a datasource share the `{ds:N}` hash tag,
 * so one key names the slot of all of them) and goes to the master, so every
 * step of a read sees the same node.
 */
export class Connection {
  private readonly send: (slotKey: Arg, args: readonly Arg[]) => Promise<unknown>;

  constructor(client: AnyRedisClient) {
    if (isCluster(client)) {
      const c = client as unknown as ClusterSend;
      this.send = (slotKey, args) => c.sendCommand(slotKey, false, args, BUFFERS);
    } else {
      const c = client as unknown as StandaloneSend;
      if (typeof c?.sendCommand !== "function") {
        throw new TypeError("AnalyticsCacheReader needs a node-redis client (createClient or createCluster)");
      }
      this.send = (_slotKey, args) => c.sendCommand(args, BUFFERS);
    }
  }

  /** One command; bulk strings come back as Buffers. */
  async call(slotKey: Arg, args: readonly Arg[]): Promise<Reply> {
    return (await this.send(slotKey, args)) as Reply;
  }

  /**
   * Several commands written together (node-redis pipelines the commands
   * issued in one tick into one write); replies in order.
   */
  pipeline(slotKey: Arg, commands: readonly (readonly Arg[])[]): Promise<Reply[]> {
    return Promise.all(commands.map((args) => this.call(slotKey, args)));
  }
}
