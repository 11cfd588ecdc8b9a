// The infrastructure of the cluster tests, each piece started by a test and stopped in its `t.after`:
// - a real `redis-server` on a loopback port, without persistence, that can be killed and started again on the
//   same port;
// - cluster members: the Rust test server (e2e/testserver/src/main.rs, binary target/debug/testserver, or the env
//   variable CLUSTER_TESTSERVER_BIN) and the Node server beside this file (node-server.mjs), both through
//   `startBinary` of ../lib/server.mjs (resolve once they print `listening on`);
// - a real HAProxy (`haproxy -f <cfg> -db`, or the env variable HAPROXY_BIN) whose configuration is made from the
//   documented templates in docs/ (haproxy-cookie.cfg, haproxy-source.cfg) with free loopback ports put in place of
//   their `${…}` placeholders.
// Every child process is also killed when the test process exits, should a test not stop it.

import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { createClient, createCluster } from "redis";

import { startBinary } from "../lib/server.mjs";

const clusterDir = path.dirname(fileURLToPath(import.meta.url));
const repoDir = path.resolve(clusterDir, "../..");

export const RUST_BIN = process.env.CLUSTER_TESTSERVER_BIN
  ? path.resolve(process.env.CLUSTER_TESTSERVER_BIN)
  : path.join(repoDir, "target/debug/testserver");
export const NODE_SERVER = path.join(clusterDir, "node-server.mjs");
export const HAPROXY_BIN = process.env.HAPROXY_BIN || "haproxy";
export const DOCS_DIR = path.join(repoDir, "docs");

const children = new Set();
process.on("exit", () => {
  for (const child of children) child.kill("SIGKILL");
});

/** A port that was free on 127.0.0.1 a moment ago (picked by the OS; another process may take it meanwhile). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Resolves true once a TCP connection to 127.0.0.1:port succeeds, false after `ms`. */
export async function waitForPort(port, ms = 3000) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const ok = await new Promise((resolve) => {
      const sock = net.connect({ host: "127.0.0.1", port });
      const done = (v) => {
        sock.destroy();
        resolve(v);
      };
      sock.once("connect", () => done(true));
      sock.once("error", () => done(false));
      sock.setTimeout(300, () => done(false));
    });
    if (ok) return true;
    await sleep(25);
  }
  return false;
}

/**
 * Spawns `bin args` and resolves {child, stop, output, exited} once `ready(log)` returns true for its output so far
 * (or, without `ready`, at once); rejects when it exits first or `ms` elapse. `stop()` kills it (SIGKILL) and waits.
 */
function spawnChild(bin, args, { what, ready, ms = 4000, cwd } = {}) {
  const child = spawn(bin, args, { stdio: ["ignore", "pipe", "pipe"], cwd });
  children.add(child);
  let log = "";
  let exited = false;
  const exitedPromise = new Promise((resolve) => {
    child.once("exit", (code, signal) => {
      exited = true;
      children.delete(child);
      resolve({ code, signal });
    });
  });
  for (const stream of [child.stdout, child.stderr]) {
    stream.setEncoding("utf8");
    stream.on("data", (c) => {
      log += c;
      check();
    });
  }
  const stop = async () => {
    if (!exited) {
      child.kill("SIGKILL");
      await exitedPromise;
    }
  };
  const output = () => log;
  let resolveReady;
  let rejectReady;
  const readyPromise = new Promise((resolve, reject) => {
    resolveReady = resolve;
    rejectReady = reject;
  });
  let settled = false;
  function check() {
    if (settled || !ready) return;
    Promise.resolve(ready(log)).then((ok) => {
      if (ok && !settled) {
        settled = true;
        resolveReady();
      }
    });
  }
  child.once("error", (err) => {
    settled = true;
    children.delete(child);
    rejectReady(new Error(`could not spawn ${what} (${bin}): ${err.message}`));
  });
  exitedPromise.then(({ code, signal }) => {
    if (settled) return;
    settled = true;
    rejectReady(Object.assign(new Error(`${what} exited early (code ${code}, signal ${signal})\n${log}`), { log }));
  });
  const timer = setTimeout(() => {
    if (settled) return;
    settled = true;
    stop();
    rejectReady(new Error(`${what} was not ready within ${ms} ms\n${log}`));
  }, ms);
  if (!ready) {
    settled = true;
    resolveReady();
  }
  return readyPromise.finally(() => clearTimeout(timer)).then(() => ({ child, stop, output, exited: exitedPromise }));
}

// redis-server itself is started by the shared helper (it also restarts one at a fixed port).
export { startRedis, startRedisCluster } from "../lib/redis.mjs";

/** The node URLs of a `redis-cluster://host:port?node=host:port&…` URL. */
export function clusterNodes(url) {
  const u = new URL(url.replace(/^redis-cluster:/, "http:"));
  return [`redis://${u.host}`, ...u.searchParams.getAll("node").map((n) => `redis://${n}`)];
}

/**
 * Runs `fn(client)` with a node-redis client on `url`, closed afterwards; for a `redis-cluster://` URL a cluster
 * client, whose `sendCommand(key, readonly, args)` goes to the node owning `key`.
 */
export async function withRedis(url, fn) {
  const client = url.startsWith("redis-cluster:")
    ? createCluster({ rootNodes: clusterNodes(url).map((u) => ({ url: u })) })
    : createClient({ url });
  if (url.startsWith("redis-cluster:")) clustered.add(client);
  client.on("error", () => {});
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.disconnect().catch(() => {});
  }
}

/**
 * Waits until `n` servers are subscribed to the request channel of namespace `nsp` (PUBSUB NUMSUB, which is how
 * the adapters count the servers), i.e. every node has joined the cluster bus. Bounded by `ms`.
 */
export async function waitForServers(url, n, { nsp = "/", key = "socket.io", ms = 3000, sharded = false, streams = false } = {}) {
  // The sharded and streams adapters count the servers on their namespace channel (PUBSUB SHARDNUMSUB / NUMSUB).
  const channel = sharded || streams ? `${key}#${nsp}#` : `${key}-request#${nsp}#`;
  return withRedis(url, async (client) => {
    const deadline = Date.now() + ms;
    let count;
    for (;;) {
      count = sharded
        ? Number((await shardCommand(client, channel, ["PUBSUB", "SHARDNUMSUB", channel]))[1])
        : await numSub(client, channel);
      if (count === n) return;
      if (Date.now() > deadline) throw new Error(`${channel} has ${count} subscribers after ${ms} ms, expected ${n}`);
      await sleep(20);
    }
  });
}

/**
 * The subscribers of the Pub/Sub channel `channel`: on a Redis Cluster each node counts its own, so the sum over the
 * masters (as the streams adapter counts the servers).
 */
export async function numSub(client, channel) {
  if (!clustered.has(client)) return (await client.pubSubNumSub(channel))[channel];
  let total = 0;
  for (const master of client.masters) {
    const node = await client.nodeClient(master);
    total += Number((await node.sendCommand(["PUBSUB", "NUMSUB", channel]))[1]);
  }
  return total;
}

/** The cluster clients made by withRedis. */
const clustered = new WeakSet();

/** Sends `args` about the shard channel `channel`: on a cluster, to the node that owns its slot. */
export function shardCommand(client, channel, args) {
  return clustered.has(client) ? client.sendCommand(channel, true, args) : client.sendCommand(args);
}

/** Starts the Rust test server with `args`; resolves {url, port, stop, output, kind: "rust"}. */
export async function startRustNode(args = []) {
  const srv = await startBinary(RUST_BIN, args, "rust testserver", "CLUSTER_TESTSERVER_BIN");
  return { ...srv, url: `http://127.0.0.1:${srv.port}`, kind: "rust" };
}

/** Starts node-server.mjs with `args` (the Rust server's flags); resolves {url, port, stop, output, kind: "node"}. */
export async function startNodeNode(args = []) {
  const srv = await startBinary(process.execPath, [NODE_SERVER, "--port", "0", ...args], "node server");
  return { ...srv, url: `http://127.0.0.1:${srv.port}`, kind: "node" };
}

/** The text of docs/<name>. */
export function docTemplate(name) {
  return readFileSync(path.join(DOCS_DIR, name), "utf8");
}

/** The line of haproxy-cookie.cfg that makes the sessions sticky; the control test runs without it. */
export const COOKIE_LINE = /^[ \t]*cookie io prefix nocache[ \t]*\n/m;

/**
 * An HAProxy configuration from the documented template `docName`: every `${NAME}` replaced by `vars[NAME]`
 * (a placeholder without a value is an error), and, with `dropCookieLine`, the `cookie io prefix nocache` line
 * removed (it must be there exactly once).
 */
export function haproxyConfig(docName, vars, { dropCookieLine = false } = {}) {
  let text = docTemplate(docName);
  if (dropCookieLine) {
    const matches = text.match(new RegExp(COOKIE_LINE.source, "gm")) ?? [];
    if (matches.length !== 1) throw new Error(`${docName} has ${matches.length} "cookie io prefix nocache" lines, expected 1`);
    text = text.replace(COOKIE_LINE, "");
  }
  text = text.replace(/\$\{([A-Z0-9_]+)\}/g, (_, name) => {
    if (vars[name] === undefined) throw new Error(`${docName}: no value for the placeholder \${${name}}`);
    return String(vars[name]);
  });
  return text;
}

/**
 * Runs HAProxy on the configuration `makeConfig(lbPort)` (written to a fresh temporary folder) on a free loopback
 * port; resolves {url, port, stop, output, config} once the port accepts connections. Retried on another port when
 * HAProxy cannot bind.
 */
export async function startHaproxy(makeConfig) {
  let lastErr;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const dir = mkdtempSync(path.join(os.tmpdir(), "cluster-haproxy-"));
    const cfgPath = path.join(dir, "haproxy.cfg");
    const config = makeConfig(port);
    writeFileSync(cfgPath, config);
    let proc;
    try {
      proc = await spawnChild(HAPROXY_BIN, ["-f", cfgPath, "-db"], { what: `haproxy -f ${cfgPath}`, cwd: dir });
      const up = await Promise.race([waitForPort(port, 4000), proc.exited.then(() => false)]);
      if (!up) {
        await proc.stop();
        const log = proc.output();
        throw Object.assign(new Error(`haproxy did not listen on ${port}\n${log}\nconfig:\n${config}`), { log });
      }
      proc.exited.then(() => rmSync(dir, { recursive: true, force: true }));
      return { url: `http://127.0.0.1:${port}`, port, stop: proc.stop, output: proc.output, config };
    } catch (err) {
      rmSync(dir, { recursive: true, force: true });
      lastErr = err;
      if (!/cannot bind|Address already in use/i.test(err.log ?? err.message)) throw err;
    }
  }
  throw lastErr;
}
