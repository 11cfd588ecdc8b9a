// End-to-end tests of the session demo (examples/demo/src/main.rs, examples/demo/src/page.html) in a real browser: Debian's Chromium,
// headless, driven by playwright-core (which never downloads a browser; this file points it at CHROMIUM_BIN, default
// /usr/bin/chromium, and fails with a message if that is missing: `apt-get install chromium`).
//
// A browser context is one cookie jar, so one session: its pages are the tabs of that session. Each test starts its
// own demo (lib/server.mjs, DEMO_BIN) and its own browser, and closes the browser and then stops the demo in its
// `t.after`. Every wait is bounded, so that a misbehaving server or page fails a test with a message (the tab's
// #count and #status, its page errors and the demo's output) instead of hanging it.
//
// The page loads the browser client from the demo's /socket.io.min.js; the demo is started with `--client-js` on the
// copy in e2e/node_modules (socket.io-client, the same pinned version as demo/package.json), so that these tests do
// not depend on `npm install` having been run in examples/demo/.

import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { createServer } from "node:http";
import { createRequire } from "node:module";
import path from "node:path";
import { describe, it } from "node:test";
import { chromium } from "playwright-core";

import { CHROMIUM_ARGS, CHROMIUM_BIN } from "./lib/chromium.mjs";
import { startDemo, startTestServer } from "./lib/server.mjs";
import { sleep } from "./lib/util.mjs";

const T = { timeout: 10_000 };
/** The bound of one wait for something the page shows (connected, a new count, a disconnection). */
const WAIT_MS = 5000;
/** How long a tab of another session is watched for a count it must not get. */
const QUIET_MS = 300;

const CLIENT_JS = path.join(
  path.dirname(createRequire(import.meta.url).resolve("socket.io-client/package.json")),
  "dist/socket.io.min.js",
);
const SCREENSHOT = "/tmp/demo-two-tabs.png";

// ---------------------------------------------------------------------------------------------------------------
// Helpers

/**
 * Starts the demo and a headless Chromium; both are closed in `t.after` (browser first). playwright's `launch` gives
 * the browser a fresh temporary profile (its own --user-data-dir, removed on close).
 */
async function setup(t) {
  assert.ok(existsSync(CHROMIUM_BIN), `Chromium not found at ${CHROMIUM_BIN} (apt-get install chromium, or set CHROMIUM_BIN)`);
  assert.ok(existsSync(CLIENT_JS), `the Socket.IO browser client is missing at ${CLIENT_JS} (npm ci in e2e/)`);
  const demo = await startDemo(["--client-js", CLIENT_JS]);
  const env = { url: `${demo.url}/`, demo, browser: undefined, tabs: [] };
  t.after(async () => {
    await env.browser?.close().catch(() => {});
    await demo.stop();
  });
  env.browser = await chromium.launch({
    executablePath: CHROMIUM_BIN,
    headless: true,
    args: CHROMIUM_ARGS,
    timeout: WAIT_MS,
  });
  /** A new browser context: a new cookie jar, so a new session once its first tab loads the page. */
  env.session = async () => {
    const context = await env.browser.newContext({ viewport: { width: 800, height: 500 } });
    context.setDefaultTimeout(WAIT_MS);
    return context;
  };
  /** A new tab of `context` on the demo page, its page errors and console errors recorded for failure messages. */
  env.tab = async (context, name) => {
    const page = await context.newPage();
    const tab = { name, page, errors: [] };
    page.on("pageerror", (err) => tab.errors.push(`page error: ${err.message}`));
    page.on("console", (msg) => {
      // The demo has no favicon: the browser's own request for it answers 404, which is not the page's doing.
      if (msg.type() === "error" && !msg.location().url.endsWith("/favicon.ico")) {
        tab.errors.push(`console error: ${msg.text()} (${msg.location().url})`);
      }
    });
    page.on("requestfailed", (req) => tab.errors.push(`request failed: ${req.url()} ${req.failure()?.errorText}`));
    const res = await page.goto(env.url, { timeout: WAIT_MS });
    assert.equal(res.status(), 200, `${name}: GET / answered ${res.status()}`);
    env.tabs.push(tab);
    return tab;
  };
  return env;
}

/**
 * What a tab shows now: {count, status} (the trimmed texts of #count and #status), and the transport its socket
 * uses (the page's global `socket`).
 */
async function shown(tab) {
  return tab.page.evaluate(() => ({
    count: document.getElementById("count")?.textContent.trim(),
    status: document.getElementById("status")?.textContent.trim(),
    // eslint-disable-next-line no-undef
    transport: typeof socket === "undefined" ? undefined : socket.io.engine?.transport?.name,
  }));
}

/** Everything about every tab and the demo, for a failure message. */
async function report(env) {
  const lines = [];
  for (const tab of env.tabs) {
    let now;
    try {
      now = JSON.stringify(await shown(tab));
    } catch (err) {
      now = `(unreadable: ${err.message})`;
    }
    lines.push(`  ${tab.name}: ${now}${tab.errors.length ? `\n    ${tab.errors.join("\n    ")}` : ""}`);
  }
  return `tabs:\n${lines.join("\n")}\ndemo ${env.demo.output()}`;
}

/**
 * Waits (at most WAIT_MS) until the trimmed text of `tab`'s #`id` is `text` (or, with `{prefix: true}`, starts with
 * it); fails with what every tab shows otherwise.
 */
async function waitFor(env, tab, id, text, { prefix = false } = {}) {
  const what = `#${id} ${prefix ? "starting with " : ""}${JSON.stringify(text)}`;
  try {
    await tab.page.waitForFunction(
      ([id, text, prefix]) => {
        const now = document.getElementById(id)?.textContent.trim();
        return now !== undefined && (prefix ? now.startsWith(text) : now === text);
      },
      [id, text, prefix],
      { timeout: WAIT_MS, polling: 20 },
    );
  } catch (err) {
    throw new Error(`${tab.name}: timed out after ${WAIT_MS} ms waiting for ${what} (${err.message.split("\n")[0]})\n${await report(env)}`);
  }
}

async function waitConnected(env, tab) {
  await waitFor(env, tab, "status", "connected");
}

/** Waits until the tab's socket has upgraded from HTTP long-polling to WebSocket. */
async function waitWebSocket(env, tab) {
  try {
    // eslint-disable-next-line no-undef
    await tab.page.waitForFunction(() => socket.io.engine?.transport?.name === "websocket", null, {
      timeout: WAIT_MS,
      polling: 20,
    });
  } catch (err) {
    throw new Error(`${tab.name}: no upgrade to WebSocket within ${WAIT_MS} ms (${err.message.split("\n")[0]})\n${await report(env)}`);
  }
}

async function waitCount(env, tab, count) {
  await waitFor(env, tab, "count", String(count));
}

/** Records, in the page, every text #count takes from now on (see `countsSeen`). */
async function watchCount(tab) {
  await tab.page.evaluate(() => {
    const el = document.getElementById("count");
    window.__countsSeen = [];
    new MutationObserver(() => window.__countsSeen.push(el.textContent.trim())).observe(el, {
      childList: true,
      characterData: true,
      subtree: true,
    });
  });
}

async function countsSeen(tab) {
  return tab.page.evaluate(() => window.__countsSeen);
}

/** The count a tab shows once connected, as a number (asserted to be a whole number). */
async function readCount(env, tab) {
  const { count } = await shown(tab);
  assert.match(count, /^\d+$/, `${tab.name}: #count is ${JSON.stringify(count)}\n${await report(env)}`);
  return Number(count);
}

async function noPageErrors(env) {
  for (const tab of env.tabs) {
    const thrown = tab.errors.filter((e) => e.startsWith("page error"));
    assert.deepEqual(thrown, [], `${tab.name} threw\n${await report(env)}`);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Tests

describe("the session demo in Chromium", () => {
  it("two tabs of one session both show the count after an increment in one of them", T, async (t) => {
    const env = await setup(t);
    const session = await env.session();
    const tab1 = await env.tab(session, "session A tab 1");
    const tab2 = await env.tab(session, "session A tab 2");
    await waitConnected(env, tab1);
    await waitConnected(env, tab2);
    // The browser's client starts on long-polling and upgrades: the increment then travels over WebSocket.
    await waitWebSocket(env, tab1);
    await waitWebSocket(env, tab2);

    const before = await readCount(env, tab1);
    assert.equal(await readCount(env, tab2), before, `the two tabs of one session differ\n${await report(env)}`);

    await tab1.page.click("#incr");
    await waitCount(env, tab1, before + 1);
    await waitCount(env, tab2, before + 1);

    await tab2.page.screenshot({ path: SCREENSHOT });
    t.diagnostic(`screenshot of tab 2: ${SCREENSHOT}`);
    await noPageErrors(env);
  });

  it("another session's tab keeps its own count", T, async (t) => {
    const env = await setup(t);
    const sessionA = await env.session();
    const sessionB = await env.session();
    const a = await env.tab(sessionA, "session A tab");
    const b = await env.tab(sessionB, "session B tab");
    await waitConnected(env, a);
    await waitConnected(env, b);

    const countA = await readCount(env, a);
    const countB = await readCount(env, b);
    await watchCount(a);
    await watchCount(b);

    // Session A increments: its tab shows it, and session B's tab shows no new count at all (at most a late repeat
    // of its own, the one the demo emits on connection).
    await a.page.click("#incr");
    await waitCount(env, a, countA + 1);
    await sleep(QUIET_MS);
    const seenByB = await countsSeen(b);
    assert.ok(
      seenByB.every((c) => c === String(countB)),
      `session B's tab showed ${JSON.stringify(seenByB)} after session A's increment, expected only ${countB}\n${await report(env)}`,
    );
    assert.equal(await readCount(env, b), countB, `session B's count changed\n${await report(env)}`);

    // And the other way round: session B increments its own count, session A's tab keeps its own.
    await b.page.click("#incr");
    await waitCount(env, b, countB + 1);
    await sleep(QUIET_MS);
    // Every text session A's tab took since it was watched: its own new count once, after at most a late repeat of
    // the count it had (the one the demo emits on connection). A leak of session B's count would add an entry even
    // where it happens to equal session A's.
    const seenByA = await countsSeen(a);
    const firstNew = seenByA.findIndex((c) => c !== String(countA));
    assert.deepEqual(
      seenByA.slice(firstNew === -1 ? seenByA.length : firstNew),
      [String(countA + 1)],
      `session A's tab showed ${JSON.stringify(seenByA)}, expected only its own ${countA + 1}\n${await report(env)}`,
    );
    assert.equal(await readCount(env, a), countA + 1, `session A's count changed\n${await report(env)}`);
    await noPageErrors(env);
  });

  it("logging out in one tab disconnects every tab of that session", T, async (t) => {
    const env = await setup(t);
    const session = await env.session();
    const tab1 = await env.tab(session, "session A tab 1");
    const tab2 = await env.tab(session, "session A tab 2");
    await waitConnected(env, tab1);
    await waitConnected(env, tab2);
    await tab1.page.click("#incr");
    await waitCount(env, tab2, 1);

    await tab1.page.click("#logout");
    for (const tab of [tab1, tab2]) {
      await waitFor(env, tab, "status", "disconnected", { prefix: true });
      assert.equal(
        (await shown(tab)).status,
        "disconnected: io server disconnect",
        `${tab.name}: wrong disconnect reason\n${await report(env)}`,
      );
    }

    // The session is gone: reloading a tab starts a new session at 0, connected again.
    const res = await tab2.page.reload({ timeout: WAIT_MS });
    assert.equal(res.status(), 200, `reload answered ${res.status()}`);
    await waitConnected(env, tab2);
    assert.equal(await readCount(env, tab2), 0, `after logout a reload still shows the old session\n${await report(env)}`);
    await noPageErrors(env);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// The browser bundle with `forceBase64: true`: binary travels as `b<base64>` text frames both ways on the WebSocket.
// The page comes from a small Node HTTP server on loopback (another origin, as when an application serves its pages
// apart from its Socket.IO server) and the test server allows it with CORS; Chromium's DevTools report every
// WebSocket frame, text (a string) or binary (a Buffer), which is what is checked.

/** Serves an empty page and a browser client (`clientJs`) on 127.0.0.1; resolves to its origin and a `close`. */
async function pageServer(clientJs = CLIENT_JS) {
  const client = readFileSync(clientJs);
  const server = createServer((req, res) => {
    if (req.url === "/socket.io.min.js") {
      res.writeHead(200, { "content-type": "text/javascript" }).end(client);
    } else {
      res.writeHead(200, { "content-type": "text/html" }).end('<!doctype html><script src="/socket.io.min.js"></script>');
    }
  });
  await new Promise((ok) => server.listen(0, "127.0.0.1", ok));
  return { origin: `http://127.0.0.1:${server.address().port}`, close: () => new Promise((ok) => server.close(ok)) };
}

/**
 * A blank page of another origin (the page server, serving `clientJs`) in a fresh Chromium, and the test server
 * started with `args` plus CORS for that origin; all closed in `t.after` (after `cleanup`, if given). Resolves to
 * {page, server, errors} (the page's uncaught errors).
 */
async function crossOriginPage(t, clientJs, args = [], cleanup = () => {}) {
  const pages = await pageServer(clientJs);
  const server = await startTestServer(["--cors", pages.origin, ...args]);
  const browser = await chromium.launch({ executablePath: CHROMIUM_BIN, headless: true, args: CHROMIUM_ARGS, timeout: WAIT_MS });
  t.after(async () => {
    cleanup();
    await browser.close().catch(() => {});
    await server.stop();
    await pages.close();
  });
  const page = await browser.newPage();
  page.setDefaultTimeout(WAIT_MS);
  const errors = [];
  page.on("pageerror", (err) => errors.push(err.message));
  return { page, server, errors, origin: pages.origin };
}

/** Runs one exchange of binary events and acks from a page in Chromium; returns the frames seen and the echo. */
async function binaryExchange(t, { forceBase64, transports }) {
  assert.ok(existsSync(CHROMIUM_BIN), `Chromium not found at ${CHROMIUM_BIN} (apt-get install chromium, or set CHROMIUM_BIN)`);
  assert.ok(existsSync(CLIENT_JS), `the Socket.IO browser client is missing at ${CLIENT_JS} (npm ci in e2e/)`);
  const { page, server, errors, origin } = await crossOriginPage(t, CLIENT_JS);
  const frames = { sent: [], received: [] };
  page.on("websocket", (ws) => {
    ws.on("framesent", ({ payload }) => frames.sent.push(payload));
    ws.on("framereceived", ({ payload }) => frames.received.push(payload));
  });
  await page.goto(`${origin}/`);
  const result = await page.evaluate(
    async ({ url, forceBase64, transports, waitMs }) => {
      const within = (promise, what) =>
        Promise.race([promise, new Promise((_, fail) => setTimeout(() => fail(new Error(`timed out: ${what}`)), waitMs))]);
      // eslint-disable-next-line no-undef
      const socket = io(url, { forceBase64, transports, reconnection: false, withCredentials: true });
      await within(new Promise((ok, fail) => (socket.on("connect", ok), socket.on("connect_error", fail))), "connect");
      const engine = socket.io.engine;
      if (engine.transport.name !== "websocket") await within(new Promise((ok) => engine.once("upgrade", ok)), "upgrade");
      const bytes = (b) => Array.from(new Uint8Array(b));
      const echo = await within(
        new Promise((ok) => {
          socket.once("message-back", (n, b, o) => ok([n, bytes(b), bytes(o.k)]));
          socket.emit("message", 1, new Uint8Array([1, 2]), { k: new Uint8Array([3]) });
        }),
        "message-back",
      );
      const ack = await within(
        new Promise((ok) => socket.emit("message-with-ack", new Uint8Array([255, 0]), (b) => ok(bytes(b)))),
        "ack",
      );
      const transport = engine.transport.name;
      socket.disconnect();
      return { echo, ack, transport };
    },
    { url: server.url, forceBase64, transports, waitMs: WAIT_MS },
  );
  assert.deepEqual(errors, [], "the page threw");
  return { ...result, frames, output: server.output };
}

describe("the browser client with forceBase64 in Chromium", () => {
  for (const transports of [["websocket"], ["polling", "websocket"]]) {
    const name = transports.join(" then ");
    it(`sends and receives binary as b<base64> text frames (${name})`, T, async (t) => {
      const { echo, ack, transport, frames, output } = await binaryExchange(t, { forceBase64: true, transports });
      const why = `frames ${JSON.stringify(frames)}\ntest server ${output()}`;
      assert.equal(transport, "websocket", why);
      assert.deepEqual(echo, [1, [1, 2], [3]], why);
      assert.deepEqual(ack, [255, 0], why);
      for (const [way, seen] of Object.entries(frames)) {
        assert.ok(seen.every((f) => typeof f === "string"), `a binary frame was ${way}: ${why}`);
      }
      assert.deepEqual(frames.sent.filter((f) => f.startsWith("b")), ["bAQI=", "bAw==", "b/wA="], why);
      assert.deepEqual(frames.received.filter((f) => f.startsWith("b")), ["bAQI=", "bAw==", "b/wA="], why);
    });
  }

  it("without forceBase64 the same exchange uses binary frames", T, async (t) => {
    const { echo, ack, frames, output } = await binaryExchange(t, { forceBase64: false, transports: ["websocket"] });
    const why = `frames ${JSON.stringify(frames)}\ntest server ${output()}`;
    assert.deepEqual(echo, [1, [1, 2], [3]], why);
    assert.deepEqual(ack, [255, 0], why);
    const binary = (seen) => seen.filter((f) => typeof f !== "string").map((f) => [...f]);
    assert.deepEqual(binary(frames.sent), [[1, 2], [3], [255, 0]], why);
    assert.deepEqual(binary(frames.received), [[1, 2], [3], [255, 0]], why);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// The Socket.IO 2 browser bundle (socket.io-client 2.5.0's dist/socket.io.js) against the test server with
// --allow-eio3: in a browser the v2 client has XHR2, so long-polling carries binary as binary payloads
// (application/octet-stream both ways), and its WebSocket sends binary frames with their type byte. A socket.io-client
// 4 in Node shares a room with the page.

const CLIENT_V2_JS = path.join(
  path.dirname(createRequire(import.meta.url).resolve("socket.io-client-v2/package.json")),
  "dist/socket.io.js",
);

describe("the Socket.IO 2 browser bundle in Chromium (allow_eio3)", () => {
  for (const [label, clientOpts] of [
    ["polling", { transports: ["polling"] }],
    ["websocket", { transports: ["websocket"] }],
    ["polling then websocket", { transports: ["polling", "websocket"] }],
    // JSONP: script tags for the GETs and a hidden form for the POSTs, binary as base64.
    ["JSONP polling", { transports: ["polling"], forceJSONP: true }],
  ]) {
    const transports = clientOpts.transports;
    it(`connects, exchanges binary and acks, and shares a room with a v4 client (${label})`, T, async (t) => {
      assert.ok(existsSync(CHROMIUM_BIN), `Chromium not found at ${CHROMIUM_BIN} (apt-get install chromium, or set CHROMIUM_BIN)`);
      assert.ok(existsSync(CLIENT_V2_JS), `the Socket.IO 2 browser client is missing at ${CLIENT_V2_JS} (npm ci in e2e/)`);
      let v4;
      const { page, server, errors, origin } = await crossOriginPage(t, CLIENT_V2_JS, ["--allow-eio3"], () => v4?.close());
      const { io } = await import("socket.io-client");
      v4 = io(server.url, { forceNew: true, reconnection: false });
      const polling = [];
      page.on("response", (res) => {
        if (res.url().includes("transport=polling")) {
          const jsonp = new URL(res.url()).searchParams.has("j");
          polling.push({ method: res.request().method(), jsonp, sent: res.request().headers()["content-type"], got: res.headers()["content-type"] });
        }
      });
      const frames = [];
      page.on("websocket", (ws) => ws.on("framereceived", ({ payload }) => frames.push(payload)));
      await page.goto(`${origin}/`);
      const result = await page.evaluate(
        async ({ url, clientOpts, transports, waitMs }) => {
          const within = (promise, what) =>
            Promise.race([promise, new Promise((_, fail) => setTimeout(() => fail(new Error(`timed out: ${what}`)), waitMs))]);
          // eslint-disable-next-line no-undef
          const socket = io(url, { ...clientOpts, reconnection: false, forceNew: true });
          window.v2socket = socket;
          window.roomMessage = new Promise((ok) => socket.on("room-message", (text, b) => ok([text, Array.from(new Uint8Array(b))])));
          await within(new Promise((ok, fail) => (socket.on("connect", ok), socket.on("connect_error", fail))), "connect");
          const engine = socket.io.engine;
          if (transports.includes("websocket") && engine.transport.name !== "websocket") {
            await within(new Promise((ok) => engine.once("upgrade", ok)), "upgrade");
          }
          const bytes = (b) => Array.from(new Uint8Array(b));
          const echo = await within(
            new Promise((ok) => {
              socket.once("message-back", (n, b, o) => ok([n, bytes(b), bytes(o.k)]));
              socket.emit("message", 1, new Uint8Array([1, 2]).buffer, { k: new Uint8Array([3]).buffer });
            }),
            "message-back",
          );
          const ack = await within(
            new Promise((ok) => socket.emit("message-with-ack", new Uint8Array([255, 0]).buffer, (b) => ok(bytes(b)))),
            "ack",
          );
          const rooms = await within(new Promise((ok) => socket.emit("join", "browsers", ok)), "join");
          return { echo, ack, rooms, id: socket.id, engineId: engine.id, transport: engine.transport.name };
        },
        { url: server.url, clientOpts, transports, waitMs: WAIT_MS },
      );
      const why = () => `polling ${JSON.stringify(polling)} frames ${JSON.stringify(frames)}\ntest server ${server.output()}`;
      assert.deepEqual(errors, [], "the page threw");
      assert.equal(result.transport, transports.at(-1), why());
      assert.equal(result.id, result.engineId, "a v2 socket's id on the main namespace is its engine id");
      assert.deepEqual(result.echo, [1, [1, 2], [3]], why());
      assert.deepEqual(result.ack, [255, 0], why());
      assert.ok(result.rooms.includes("browsers"));
      // The v4 client in Node sends to the page's room.
      if (!v4.connected) await new Promise((ok, fail) => (v4.on("connect", ok), v4.on("connect_error", fail)));
      v4.emit("to-room", "browsers", "from v4", Buffer.from([4, 2]));
      const got = await page.evaluate(
        (waitMs) =>
          Promise.race([window.roomMessage, new Promise((_, fail) => setTimeout(() => fail(new Error("timed out: room-message")), waitMs))]),
        WAIT_MS,
      );
      assert.deepEqual(got, ["from v4", [4, 2]], why());
      if (clientOpts.forceJSONP) {
        // Every GET and POST was JSONP, binary went as base64 text.
        assert.ok(polling.length > 0 && polling.every((r) => r.jsonp), why());
        assert.ok(polling.some((r) => r.method === "POST" && r.sent?.startsWith("application/x-www-form-urlencoded")), why());
        assert.ok(polling.every((r) => r.got !== "application/octet-stream"), why());
      } else if (transports.length === 1 && transports[0] === "polling") {
        // XHR2: binary went out and came back as binary payloads.
        assert.ok(polling.some((r) => r.method === "POST" && r.sent === "application/octet-stream"), why());
        assert.ok(polling.some((r) => r.method === "GET" && r.got === "application/octet-stream"), why());
      } else {
        // On the WebSocket, binary frames carry the type byte 4.
        const binary = frames.filter((f) => typeof f !== "string").map((f) => [...f]);
        assert.ok(binary.some((f) => f[0] === 4 && f.length === 3 && f[1] === 1 && f[2] === 2), why());
      }
    });
  }
});
