// Starts a real, throw-away `redis-server` for the session tests: on a free loopback port, without persistence
// (`--save '' --appendonly no`, working directory a fresh temporary folder), killed by `stop()` (and, as a last resort,
// when the test process exits).
//
// The binary is taken from the env variable REDIS_SERVER_BIN, else `redis-server` on the PATH (scripts/test.sh installs
// it on machines that lack it).

import { execFile, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";

export const REDIS_SERVER_BIN = process.env.REDIS_SERVER_BIN || "redis-server";
/** redis-cli, which comes with redis-server (REDIS_CLI_BIN overrides it): it makes the cluster of startRedisCluster. */
export const REDIS_CLI_BIN = process.env.REDIS_CLI_BIN || "redis-cli";

const STARTUP_TIMEOUT_MS = 4000;
const ATTEMPTS = 3;

const running = new Set();
process.on("exit", () => {
  for (const child of running) child.kill("SIGKILL");
});

/** A port that was free on 127.0.0.1 a moment ago (the OS picked it; there is a small window for a race). */
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Sends PING over a raw connection; resolves true on `+PONG`. Bounded by `ms`. */
function ping(port, ms = 500) {
  return new Promise((resolve) => {
    const sock = net.connect({ host: "127.0.0.1", port });
    let buf = "";
    const done = (ok) => {
      clearTimeout(timer);
      sock.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), ms);
    sock.once("error", () => done(false));
    sock.on("connect", () => sock.write("PING\r\n"));
    sock.on("data", (chunk) => {
      buf += chunk.toString("latin1");
      if (buf.includes("\r\n")) done(buf.startsWith("+PONG"));
    });
  });
}

function startOnce(port, extraArgs = []) {
  const dir = mkdtempSync(path.join(os.tmpdir(), "e2e-redis-"));
  const args = ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir, ...extraArgs];
  const child = spawn(REDIS_SERVER_BIN, args, { stdio: ["ignore", "pipe", "pipe"] });
  running.add(child);
  let log = "";
  let exited = false;
  const exitPromise = new Promise((resolve) => {
    child.once("exit", (code, signal) => {
      exited = true;
      running.delete(child);
      rmSync(dir, { recursive: true, force: true });
      resolve({ code, signal });
    });
  });
  child.stdout.setEncoding("utf8");
  child.stderr.setEncoding("utf8");
  child.stdout.on("data", (c) => (log += c));
  child.stderr.on("data", (c) => (log += c));

  const stop = async () => {
    if (!exited) {
      child.kill("SIGKILL");
      await exitPromise;
    }
  };
  const output = () => log;

  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      stop();
      reject(new Error(`${REDIS_SERVER_BIN} ${args.join(" ")} was not ready within ${STARTUP_TIMEOUT_MS} ms\n${log}`));
    }, STARTUP_TIMEOUT_MS);
    child.once("error", (err) => {
      clearTimeout(timer);
      running.delete(child);
      reject(new Error(`could not spawn ${REDIS_SERVER_BIN} (install redis-server or set REDIS_SERVER_BIN): ${err.message}`));
    });
    exitPromise.then(({ code, signal }) => {
      clearTimeout(timer);
      const err = new Error(`redis-server exited early (code ${code}, signal ${signal}) on port ${port}\n${log}`);
      err.addressInUse = /address already in use/i.test(log);
      reject(err);
    });
    const onData = async () => {
      if (!/Ready to accept connections/.test(log)) return;
      child.stdout.off("data", onData);
      // The log line comes right before the event loop starts; PING confirms it really answers.
      for (let i = 0; i < 20 && !exited; i++) {
        if (await ping(port)) {
          clearTimeout(timer);
          resolve({ url: `redis://127.0.0.1:${port}`, port, stop, output });
          return;
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    child.stdout.on("data", onData);
  });
}

/**
 * Starts redis-server on `port` (default: a free loopback port); resolves {url, port, stop, output} once it
 * answers PING. A free port taken in the meantime is replaced by another; a given port still held (a server
 * restarted at the same address) is tried again after a pause.
 */
export async function startRedis({ port, extraArgs = [] } = {}) {
  let lastErr;
  for (let i = 0; i < ATTEMPTS + 2; i++) {
    try {
      const args = typeof extraArgs === "function" ? await extraArgs() : extraArgs;
      return await startOnce(port ?? (await freePort()), args);
    } catch (err) {
      lastErr = err;
      if (!err.addressInUse) throw err;
      if (port !== undefined) await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw lastErr;
}

function run(bin, args, ms = 10_000) {
  return new Promise((resolve, reject) => {
    execFile(bin, args, { timeout: ms }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${bin} ${args.join(" ")} failed: ${err.message}\n${stdout}${stderr}`));
      else resolve(stdout);
    });
  });
}

/**
 * Starts a Redis Cluster of `masters` redis-server processes (no replicas) on free loopback ports, each with its
 * cluster bus on a port of its own (`cluster-port`), joins them with `redis-cli --cluster create`, and resolves once
 * every node reports `cluster_state:ok`: {url, nodes, stop}, `url` being a `redis-cluster://` URL that names every
 * node (the form the Rust adapters take).
 */
export async function startRedisCluster(masters = 3) {
  const nodes = [];
  try {
    for (let i = 0; i < masters; i++) {
      const clusterArgs = async () => [
        "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "5000",
        "--cluster-port", String(await freePort()),
      ];
      nodes.push(await startRedis({ extraArgs: clusterArgs }));
    }
    const addrs = nodes.map((n) => `127.0.0.1:${n.port}`);
    // Joining takes a few gossip rounds, usually a second or two; a machine busy with other work can stretch
    // that well past it, so the wait is generous (a cluster that never joins still fails here).
    await run(REDIS_CLI_BIN, ["--cluster", "create", ...addrs, "--cluster-replicas", "0", "--cluster-yes"], 60_000);
    const deadline = Date.now() + 30_000;
    for (const n of nodes) {
      while (!/cluster_state:ok/.test(await run(REDIS_CLI_BIN, ["-p", String(n.port), "cluster", "info"]))) {
        if (Date.now() > deadline) throw new Error(`the cluster did not become ready: ${addrs.join(" ")}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  } catch (err) {
    await Promise.all(nodes.map((n) => n.stop()));
    throw err;
  }
  const [first, ...rest] = nodes;
  const url = `redis-cluster://127.0.0.1:${first.port}?${rest.map((n) => `node=127.0.0.1:${n.port}`).join("&")}`;
  return { url, nodes, stop: () => Promise.all(nodes.map((n) => n.stop())).then(() => {}) };
}
