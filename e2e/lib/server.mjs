// Starts the Rust example servers for the interop tests: the Engine.IO echo server (engineio-server/examples/echo.rs),
// the Socket.IO test server (e2e/testserver/src/main.rs) and the session demo (examples/demo/src/main.rs).
//
// The echo binary is taken from the env variable ECHO_BIN, else ../target/debug/examples/echo relative to the e2e
// folder; the test server from TESTSERVER_BIN, else ../target/debug/testserver; the demo from DEMO_BIN,
// else ../target/debug/demo. They are never built from here: build the workspace first.

import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const e2eDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

export const ECHO_BIN = process.env.ECHO_BIN
  ? path.resolve(process.env.ECHO_BIN)
  : path.resolve(e2eDir, "../target/debug/examples/echo");

export const TESTSERVER_BIN = process.env.TESTSERVER_BIN
  ? path.resolve(process.env.TESTSERVER_BIN)
  : path.resolve(e2eDir, "../target/debug/testserver");

export const DEMO_BIN = process.env.DEMO_BIN
  ? path.resolve(process.env.DEMO_BIN)
  : path.resolve(e2eDir, "../target/debug/demo");

const STARTUP_TIMEOUT_MS = 4000;

// Every child still running, so that none outlives the test process even if a test forgot to stop it.
const running = new Set();
process.on("exit", () => {
  for (const child of running) child.kill("SIGKILL");
});

/**
 * Spawns the echo server with the given flags (`--port 0` is added unless a port is given) and resolves once it
 * printed `listening on http://HOST:PORT`.
 *
 * @param {string[]} args
 * @returns {Promise<{url: string, port: number, stop: () => Promise<void>, output: () => string}>}
 */
export function startServer(args = []) {
  return startBinary(ECHO_BIN, args, "echo server", "ECHO_BIN");
}

/** Like `startServer`, for the Socket.IO test server. */
export function startTestServer(args = []) {
  return startBinary(TESTSERVER_BIN, args, "test server", "TESTSERVER_BIN");
}

/** Like `startServer`, for the session demo (it prints `listening on http://localhost:PORT (sessions in …)`). */
export function startDemo(args = []) {
  return startBinary(DEMO_BIN, args, "demo", "DEMO_BIN");
}

/**
 * Spawns `bin` with the given flags (`--port 0` is added unless a port is given) and resolves once it printed
 * `listening on http://HOST:PORT`.
 *
 * @param {string} bin
 * @param {string[]} args
 * @param {string} name how the server is called in error messages
 * @param {string} envVar the env variable that overrides the binary's path, for error messages
 * @returns {Promise<{url: string, port: number, stop: () => Promise<void>, terminate: (ms?: number) => Promise<object>,
 *   output: () => string}>}
 */
export function startBinary(bin, args = [], name = path.basename(bin), envVar = undefined) {
  if (!existsSync(bin)) {
    const hint = envVar ? ` or set ${envVar}` : "";
    return Promise.reject(new Error(`${name} binary not found at ${bin} (build the workspace${hint})`));
  }
  const fullArgs = args.includes("--port") ? [...args] : ["--port", "0", ...args];
  const child = spawn(bin, fullArgs, { stdio: ["ignore", "pipe", "pipe"] });
  running.add(child);

  let stdout = "";
  let stderr = "";
  let exited = false;
  const exitPromise = new Promise((resolve) => {
    child.once("exit", (code, signal) => {
      exited = true;
      running.delete(child);
      resolve({ code, signal });
    });
  });
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (chunk) => {
    stderr += chunk;
  });

  const output = () => `stdout:\n${stdout}\nstderr:\n${stderr}`;

  const stop = async () => {
    if (!exited) {
      child.kill("SIGKILL");
      await exitPromise;
    }
  };

  /** A graceful stop: SIGTERM, then the exit (SIGKILL after `ms`); resolves {code, signal, graceful}. */
  const terminate = async (ms = 5000) => {
    if (exited) return { ...(await exitPromise), graceful: false };
    child.kill("SIGTERM");
    let timer;
    const late = new Promise((resolve) => {
      timer = setTimeout(() => resolve(null), ms);
    });
    const done = await Promise.race([exitPromise, late]);
    clearTimeout(timer);
    if (done) return { ...done, graceful: true };
    await stop();
    return { ...(await exitPromise), graceful: false };
  };

  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      stop();
      reject(
        new Error(
          `${name} ${bin} ${fullArgs.join(" ")} did not print "listening on" within ${STARTUP_TIMEOUT_MS} ms\n${output()}`,
        ),
      );
    }, STARTUP_TIMEOUT_MS);

    child.once("error", (err) => {
      clearTimeout(timer);
      running.delete(child);
      reject(new Error(`could not spawn ${bin}: ${err.message}`));
    });

    exitPromise.then(({ code, signal }) => {
      clearTimeout(timer);
      // A no-op once resolved; otherwise the server died before binding.
      reject(new Error(`${name} exited early (code ${code}, signal ${signal}) with args ${fullArgs.join(" ")}\n${output()}`));
    });

    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (chunk) => {
      stdout += chunk;
      const match = /listening on (http:\/\/(?:[^\s:]+|\[[^\]]+\]):(\d+))/.exec(stdout);
      if (match) {
        clearTimeout(timer);
        resolve({ url: match[1], port: Number(match[2]), stop, terminate, output });
      }
    });
  });
}
