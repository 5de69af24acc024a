// Real redis-servers for the tests, like cachedeck's Rust harness
// (tests/support/redis_server.rs, cluster.rs): one standalone server or a
// 3-master cluster on free loopback ports, nothing persisted, killed after.
// A missing redis-server fails the tests; they never skip.

import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, connect } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";

const START_TIMEOUT_MS = 10_000;
const CLUSTER_READY_TIMEOUT_MS = 30_000;
const CLUSTER_BUS_OFFSET = 10_000;

const live = new Set<ChildProcess>();
process.on("exit", () => {
  for (const c of live) c.kill("SIGKILL");
});

/** Throws with what to install when `tool` is not on PATH. */
export function requireTool(tool: string): void {
  const dirs = (process.env.PATH ?? "").split(delimiter).filter(Boolean);
  if (!dirs.some((d) => existsSync(join(d, tool)))) {
    throw new Error(
      `${tool} not found on PATH: install redis-server (apt-get install redis-server), ` +
        "or run scripts/test.sh, which installs it. The tests never skip for a missing server.",
    );
  }
}

/** Ports handed out in this process, never handed out twice. */
const handedOut = new Set<number>();

function ephemeral(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once("error", () => resolve(false));
    srv.listen(port, "127.0.0.1", () => srv.close(() => resolve(true)));
  });
}

async function freePort(cluster: boolean): Promise<number> {
  for (let i = 0; i < 1000; i++) {
    const port = await ephemeral();
    if (handedOut.has(port)) continue;
    if (cluster) {
      const bus = port + CLUSTER_BUS_OFFSET;
      if (bus > 65535 || handedOut.has(bus) || !(await bindable(bus))) continue;
      handedOut.add(bus);
    }
    handedOut.add(port);
    return port;
  }
  throw new Error("no free loopback port found after 1000 tries");
}

/** Sends one inline command over a fresh socket and returns the raw reply text. */
export function rawCommand(port: number, command: string, timeoutMs = 1000): Promise<string> {
  return new Promise((resolve) => {
    const sock = connect(port, "127.0.0.1");
    let data = "";
    const done = (text: string) => {
      clearTimeout(timer);
      sock.destroy();
      resolve(text);
    };
    const timer = setTimeout(() => done(data), timeoutMs);
    sock.on("error", () => done(""));
    sock.on("connect", () => sock.write(command + "\r\n"));
    sock.on("data", (chunk) => {
      data += chunk.toString("utf8");
      // A bulk reply is complete when its announced length has arrived.
      const m = /^\$(\d+)\r\n/.exec(data);
      if (!m || data.length >= m[0].length + Number(m[1]) + 2) done(data);
    });
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** One redis-server process. */
export class RedisServer {
  private constructor(
    readonly port: number,
    readonly dir: string,
    private child: ChildProcess | null,
  ) {}

  /** Starts a server on a free loopback port (retrying when the port was taken meanwhile). */
  static async start(extra: string[] = [], cluster = false): Promise<RedisServer> {
    requireTool("redis-server");
    const dir = mkdtempSync(join(tmpdir(), "cachedeck-ts-redis-"));
    for (let attempt = 0; attempt < 8; attempt++) {
      const port = await freePort(cluster);
      const child = await spawnReady(port, dir, extra);
      if (child) return new RedisServer(port, dir, child);
    }
    throw new Error("redis-server could not bind a free loopback port in 8 tries");
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get addr(): string {
    return `127.0.0.1:${this.port}`;
  }

  log(): string {
    try {
      return readFileSync(join(this.dir, "redis.log"), "utf8");
    } catch {
      return "";
    }
  }

  /** Kills the server and removes its directory. */
  async stop(): Promise<void> {
    const child = this.child;
    this.child = null;
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGKILL");
      await exited;
    }
    if (child) live.delete(child);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * Spawns redis-server on `port` and waits for PING from that very process;
 * null when the port turned out to be taken.
 */
async function spawnReady(port: number, dir: string, extra: string[]): Promise<ChildProcess | null> {
  const logFile = join(dir, "redis.log");
  const args = [
    "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
    "--daemonize", "no", "--protected-mode", "yes", "--dir", dir, "--logfile", logFile,
    ...extra,
  ];
  const child = spawn("redis-server", args, { stdio: "ignore" });
  live.add(child);
  let spawnError: Error | null = null;
  child.once("error", (e) => (spawnError = e));
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (spawnError) throw new Error(`cannot run redis-server: ${String(spawnError)}: install redis-server (apt-get install redis-server)`);
    if (child.exitCode !== null || child.signalCode !== null) {
      live.delete(child);
      const text = existsSync(logFile) ? readFileSync(logFile, "utf8") : "";
      if (text.includes("already in use")) return null;
      throw new Error(`redis-server on port ${port} exited at start; its log:\n${text.slice(-3000)}`);
    }
    const info = await rawCommand(port, "INFO server", 500);
    if (info.includes(`process_id:${child.pid}`)) return child;
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      live.delete(child);
      throw new Error(`redis-server on port ${port} did not answer within ${START_TIMEOUT_MS} ms`);
    }
    await sleep(20);
  }
}

/** Three cluster-enabled masters joined with `redis-cli --cluster create`. */
export class RedisCluster {
  private constructor(readonly nodes: RedisServer[]) {}

  static async start(): Promise<RedisCluster> {
    requireTool("redis-server");
    requireTool("redis-cli");
    let lastError = "";
    for (let attempt = 0; attempt < 3; attempt++) {
      const nodes: RedisServer[] = [];
      for (let i = 0; i < 3; i++) {
        nodes.push(
          await RedisServer.start(
            ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "5000"],
            true,
          ),
        );
      }
      const created = spawnSync(
        "redis-cli",
        ["--cluster", "create", ...nodes.map((n) => n.addr), "--cluster-replicas", "0", "--cluster-yes"],
        { encoding: "utf8", timeout: 60_000 },
      );
      const output = `${created.stdout ?? ""}${created.stderr ?? ""}`;
      if (created.status === 0 && output.includes("All 16384 slots covered")) {
        const cluster = new RedisCluster(nodes);
        await cluster.waitReady();
        return cluster;
      }
      lastError = `redis-cli --cluster create failed (${created.status ?? created.error}):\n${output}`;
      await Promise.all(nodes.map((n) => n.stop()));
    }
    throw new Error(`could not create a 3-master Redis Cluster in 3 tries; last error:\n${lastError}`);
  }

  get urls(): string[] {
    return this.nodes.map((n) => n.url);
  }

  private async waitReady(): Promise<void> {
    const deadline = Date.now() + CLUSTER_READY_TIMEOUT_MS;
    for (const node of this.nodes) {
      for (;;) {
        const info = await rawCommand(node.port, "CLUSTER INFO", 1000);
        if (/cluster_state:ok/.test(info)) break;
        if (Date.now() > deadline) {
          throw new Error(`the test cluster did not reach cluster_state:ok; ${node.addr} says:\n${info}\n${node.log()}`);
        }
        await sleep(50);
      }
    }
  }

  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.stop()));
  }
}
