// End-to-end tests of the session bridge (session-bridge/, through the session demo examples/demo/src/main.rs) against the real
// npm packages it claims to be compatible with: cookie-signature and express-session (the signed `connect.sid`
// cookie), connect-redis with the `redis` client (the `sess:<id>` format in a real redis-server), and socket.io-client
// (4.8.4; in Node it sends cookies and Origin with `extraHeaders` on polling and websocket alike).
//
// a. Signatures and cookies: cookie-signature's `sign` for (value, secret) vectors, a cookie issued by a real
//    express-session app, forged variants of it, secret rotation, and the demo's own Set-Cookie. The Rust bridge only
//    accepts a cookie whose session exists in its store, and the demo's memory store cannot hold a session made by
//    Node: so these tests start the demo on a real Redis (`--redis`) and put the sessions there (as connect-redis
//    writes them), so that accepting or refusing a cookie depends on its signature alone. Every verdict is also asked
//    of express-session itself (an in-process express app with a MemoryStore holding the same sessions) so that the
//    expectation is the npm package's, not ours.
// b. The demo with its memory store: counts shared by the tabs of one session, isolation of other sessions, logout,
//    expiry found by the periodic check, tampered cookies, CORS with credentials.
// c. Interop with the "second demo" (express-app.mjs: Express + express-session + connect-redis owning the login):
//    a session made in Node is used and changed by the Rust demo and the other way round, and a logout in Node
//    disconnects the Rust demo's sockets of that session. The Express app runs in this process (its exported
//    `createExpressApp`, the same app `node express-app.mjs` serves): a fresh Node process loading express takes
//    seconds on a loaded machine.
//
// Each test starts its own servers (redis-server via lib/redis.mjs, the Rust demo via lib/server.mjs, express apps in
// this process) and, in its `t.after`, closes every client it made and then stops every server. Every wait is bounded.

import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { describe, it } from "node:test";

import express from "express";
import session from "express-session";
import { createClient } from "redis";
import { Manager } from "socket.io-client";

import { createExpressApp } from "./express-app.mjs";
import { startRedis } from "./lib/redis.mjs";
import { startDemo } from "./lib/server.mjs";
import { sleep, within } from "./lib/util.mjs";

const require = createRequire(import.meta.url);
const signature = require("cookie-signature");

const T = { timeout: 8000 };
const SECRET = "keyboard cat";
/** How long a client that must not get an event is watched for it. */
const QUIET_MS = 300;
const SID = /^[A-Za-z0-9_-]{32}$/;
const TRANSPORTS = ["polling", "websocket"];

// ---------------------------------------------------------------------------------------------------------------
// Helpers

/** Per-test resources, released in reverse order of acquisition in `t.after` (so clients go before servers). */
function resources(t) {
  const cleanups = [];
  t.after(async () => {
    for (const fn of cleanups.reverse()) {
      try {
        await fn();
      } catch {
        // Keep releasing the rest.
      }
    }
  });
  return {
    defer(fn) {
      cleanups.push(fn);
    },
    async redis() {
      const srv = await startRedis();
      cleanups.push(srv.stop);
      return srv;
    },
    /** A connected npm `redis` client. */
    async redisClient(url) {
      const client = createClient({ url });
      client.on("error", () => {});
      await within(2000, client.connect(), `the redis client connecting to ${url}`);
      cleanups.push(() => client.disconnect());
      return client;
    },
    async demo(args) {
      const srv = await startDemo(args);
      cleanups.push(srv.stop);
      return srv;
    },
    /**
     * The second demo (express-app.mjs), in this process on 127.0.0.1 and a free port: the same app as
     * `node express-app.mjs`, without a Node start-up (which alone can take seconds on a loaded machine).
     */
    async expressApp(redisUrl, secret) {
      const { app, client } = await within(3000, createExpressApp({ redisUrl, secrets: secret.split(",") }), "the Express app's Redis client");
      cleanups.push(() => client.disconnect());
      const server = await new Promise((resolve, reject) => {
        const s = app.listen(0, "127.0.0.1", () => resolve(s));
        s.once("error", reject);
      });
      cleanups.push(
        () =>
          new Promise((resolve) => {
            server.close(() => resolve());
            server.closeAllConnections();
          }),
      );
      return { url: `http://127.0.0.1:${server.address().port}` };
    },
    /** The in-process express-session app with a MemoryStore (see `memoryExpress`). */
    async memoryExpress(secrets) {
      const app = await memoryExpress(secrets);
      cleanups.push(app.stop);
      return app;
    },
    /**
     * A socket.io-client socket on "/" of `url` (own Manager, no reconnection) sending `cookie` (a whole Cookie
     * header) and `origin` as headers, over one `transport` or the default polling-then-websocket. Recorded from the
     * start (see `recorded`).
     */
    client(url, { cookie, origin, transport } = {}) {
      const extraHeaders = {};
      if (cookie !== undefined) extraHeaders.cookie = cookie;
      if (origin !== undefined) extraHeaders.origin = origin;
      const manager = new Manager(url, {
        reconnection: false,
        timeout: 3000,
        ...(transport ? { transports: [transport] } : {}),
        extraHeaders,
      });
      cleanups.push(() => manager.disconnect());
      return recorded(manager.socket("/"), `client ${transport ?? "default"} ${cookie ?? "(no cookie)"}`);
    },
  };
}

/**
 * Records what a socket.io-client socket emits locally (incoming events through onAny, and connect,
 * connect_error, disconnect) as `socket.rec`:
 * - `next(name, ms)`: the arguments of the next not yet handed out event `name` (bounded wait);
 * - `first(names, ms)`: the first recorded event (from the start) whose name is in `names`, as {name, args, at};
 * - `all(name)`: the arguments of every event `name` so far.
 */
function recorded(socket, label) {
  const events = [];
  const waiters = new Set();
  const cursors = new Map();
  const push = (name, args) => {
    events.push({ name, args, at: Date.now() });
    for (const w of [...waiters]) w();
  };
  socket.onAny((name, ...args) => push(name, args));
  for (const name of ["connect", "connect_error", "disconnect"]) socket.on(name, (...args) => push(name, args));

  const history = () =>
    JSON.stringify(events.map((e) => [e.name, ...e.args.map((a) => (a instanceof Error ? `Error: ${a.message}` : a))]));
  const wait = (find, ms, what) => {
    const now = find();
    if (now) return Promise.resolve(now);
    let waiter;
    const p = new Promise((resolve) => {
      waiter = () => {
        const e = find();
        if (e) resolve(e);
      };
      waiters.add(waiter);
    });
    return within(ms, p, `${what} on ${label} (got so far: ${history()})`).finally(() => waiters.delete(waiter));
  };
  socket.rec = {
    events,
    history,
    all: (name) => events.filter((e) => e.name === name).map((e) => e.args),
    async next(name, ms = 2000) {
      const take = () => {
        const i = cursors.get(name) ?? 0;
        const e = events.filter((x) => x.name === name)[i];
        if (e) cursors.set(name, i + 1);
        return e;
      };
      return (await wait(take, ms, `"${name}"`)).args;
    },
    first(names, ms = 2000) {
      return wait(() => events.find((e) => names.includes(e.name)), ms, names.map((n) => `"${n}"`).join(" or "));
    },
  };
  return socket;
}

/** Waits for "connect" (failing with the connect_error if that comes first). */
async function connected(socket, ms = 3000) {
  const e = await socket.rec.first(["connect", "connect_error"], ms);
  if (e.name === "connect_error") {
    throw new Error(`expected "connect", got connect_error: ${e.args[0]?.message} (events: ${socket.rec.history()})`);
  }
  assert.equal(socket.connected, true);
}

/** Waits for connect_error and checks its message (failing if "connect" comes first). */
async function refused(socket, message, what, ms = 3000) {
  const e = await socket.rec.first(["connect", "connect_error"], ms);
  assert.equal(e.name, "connect_error", `${what}: expected connect_error, got "connect" (events: ${socket.rec.history()})`);
  const err = e.args[0];
  assert.ok(err instanceof Error, `${what}: connect_error argument ${err}`);
  if (message !== undefined) assert.equal(err.message, message, `${what}: connect_error message`);
  assert.equal(socket.connected, false, `${what}: socket.connected`);
  return err;
}

/**
 * Connects with `cookie` over `transport` and tells whether the Rust demo accepted it: resolves {accepted: true,
 * count} (the "current count" it sends on connection) or {accepted: false, message} (the connect_error).
 */
async function verdictOfDemo(env, url, cookie, transport) {
  const s = env.client(url, { cookie, transport });
  const e = await s.rec.first(["connect", "connect_error"], 3000);
  if (e.name === "connect_error") return { accepted: false, message: e.args[0]?.message };
  const [count] = await s.rec.next("current count", 2000);
  s.disconnect();
  return { accepted: true, count };
}

/** The `connect.sid` value set by a response, or undefined. */
function setCookieValue(res, name = "connect.sid") {
  for (const line of res.headers.getSetCookie()) {
    const [nameValue] = line.split(";");
    const eq = nameValue.indexOf("=");
    if (nameValue.slice(0, eq).trim() === name) return nameValue.slice(eq + 1).trim();
  }
  return undefined;
}

/** The session id in a `connect.sid` value, as express-session reads it (false if the signature is wrong). */
function unsignCookie(value, secret) {
  const decoded = decodeURIComponent(value);
  assert.ok(decoded.startsWith("s:"), `cookie value ${value} does not start with s: (URI-encoded s%3A)`);
  return signature.unsign(decoded.slice(2), secret);
}

/** The cookie value express-session sets for `sid` (its `setcookie`: `s:` + signed id, URI-encoded). */
function cookieFor(sid, secret) {
  return encodeURIComponent(`s:${signature.sign(sid, secret)}`);
}

/** express-session's stored form of a session with `fields`, expiring in `maxAgeMs`. */
function sessionObject(fields, maxAgeMs = 3_600_000) {
  return {
    cookie: { originalMaxAge: maxAgeMs, expires: new Date(Date.now() + maxAgeMs).toISOString(), httpOnly: true, path: "/" },
    ...fields,
  };
}

/** Writes a session into Redis exactly as connect-redis does (`SET sess:<id> <json> EX <ttl>`). */
async function putRedisSession(client, sid, sess) {
  const ttl = Math.ceil((Date.parse(sess.cookie.expires) - Date.now()) / 1000);
  await client.set(`sess:${sid}`, JSON.stringify(sess), { EX: ttl });
}

async function httpJson(url, { method = "GET", cookie } = {}) {
  const res = await within(
    3000,
    fetch(url, { method, headers: cookie === undefined ? {} : { cookie } }),
    `${method} ${url}`,
  );
  const text = await res.text();
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    body = text;
  }
  return { res, status: res.status, body };
}

/**
 * An express app with express-session and its MemoryStore, in this process, on 127.0.0.1 and a free port:
 * POST /login?user=U&count=N (sets both, answers {sid}), GET /whoami ({user, count}, 401 without a session).
 * `put(sid, sess)` stores a session directly.
 */
async function memoryExpress(secrets) {
  const store = new session.MemoryStore();
  const app = express();
  app.use(session({ secret: secrets, store, resave: false, saveUninitialized: false, cookie: { maxAge: 3_600_000 } }));
  app.post("/login", (req, res, next) => {
    req.session.user = String(req.query.user);
    req.session.count = Number(req.query.count ?? 0);
    req.session.save((err) => (err ? next(err) : res.json({ sid: req.sessionID })));
  });
  app.get("/whoami", (req, res) => {
    if (req.session.user === undefined) res.status(401).json({ error: "no session" });
    else res.json({ user: req.session.user, count: req.session.count });
  });
  const server = await new Promise((resolve, reject) => {
    const s = app.listen(0, "127.0.0.1", () => resolve(s));
    s.once("error", reject);
  });
  const url = `http://127.0.0.1:${server.address().port}`;
  return {
    url,
    store,
    put: (sid, sess) => new Promise((resolve, reject) => store.set(sid, sess, (err) => (err ? reject(err) : resolve()))),
    get: (sid) => new Promise((resolve, reject) => store.get(sid, (err, s) => (err ? reject(err) : resolve(s)))),
    /** Whether express-session recognises the session of this Cookie header: {accepted, count}. */
    async verdict(cookie) {
      const { status, body } = await httpJson(`${url}/whoami`, { cookie });
      assert.ok(status === 200 || status === 401, `express /whoami answered ${status} ${JSON.stringify(body)}`);
      return status === 200 ? { accepted: true, count: body.count } : { accepted: false };
    },
    stop: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

const BASE64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/** `s` with the character at `i` replaced by another base64 character. */
function flipAt(s, i) {
  return s.slice(0, i) + (s[i] === "A" ? "B" : "A") + s.slice(i + 1);
}

/** A signed value `v.sig` with a different but valid signature character in the middle of the signature. */
function tamperSignature(signed) {
  const dot = signed.lastIndexOf(".");
  return flipAt(signed, dot + 1 + Math.floor((signed.length - dot - 1) / 2));
}

/**
 * The same signature written non-canonically: 32 bytes take 43 base64 characters whose last one carries 2 unused
 * bits; setting one of them gives text that a lenient decoder maps to the same bytes.
 */
function nonCanonical(signed) {
  const last = BASE64.indexOf(signed[signed.length - 1]);
  assert.equal(last & 3, 0, "the last character of a canonical 32-byte signature has its 2 low bits clear");
  return signed.slice(0, -1) + BASE64[last | 1];
}

// ---------------------------------------------------------------------------------------------------------------
// a. Signatures and cookies

describe("a. connect.sid signatures and cookies, against cookie-signature and express-session", () => {
  it("accepts cookies signed by cookie-signature for tricky (value, secret) pairs, and no other secret's", T, async (t) => {
    const env = resources(t);
    const redisSrv = await env.redis();
    const redis = await env.redisClient(redisSrv.url);

    // The empty value has a test of its own below (express-session takes an empty id for no session at all).
    const values = [" ", "0", ".", "...", "a.b.c", "x.", "s:nested", "50%off", "sessão-ü-日本", "mTuZFnadTwy3rovktnI_bV_bUAvjeSiN"];
    const secrets = ["keyboard cat", "ключ 🔑 секрет", "é", "x".repeat(150), "s3cr3t;=%+/ \"'\\"];

    // Every value is a stored session (in Redis for the demo, in the MemoryStore for express-session), with a
    // count of its own so that a connection shows which session it got.
    const sessions = values.map((value, i) => ({ value, count: 100 + i, sess: sessionObject({ user: `u${i}`, count: 100 + i }) }));
    for (const { value, sess } of sessions) await putRedisSession(redis, value, sess);

    for (const secret of secrets) {
      const demo = await env.demo(["--redis", redisSrv.url, "--secret", secret]);
      const node = await env.memoryExpress([secret]);
      for (const { value, sess } of sessions) await node.put(value, sess);

      await Promise.all(
        sessions.map(async ({ value, count }) => {
          const what = `value ${JSON.stringify(value)}, secret ${JSON.stringify(secret)}`;
          const signed = signature.sign(value, secret);
          assert.equal(signature.unsign(signed, secret), value, `cookie-signature round trip for ${what}`);
          const cookie = `connect.sid=${encodeURIComponent(`s:${signed}`)}`;

          const expected = { accepted: true, count };
          assert.deepEqual(await node.verdict(cookie), expected, `express-session's verdict for ${what}`);
          const got = await verdictOfDemo(env, demo.url, cookie, "websocket");
          assert.deepEqual(got, expected, `the demo's verdict for ${what} (cookie ${cookie}), expected the same as express-session's`);

          const otherSecret = `${secret}!`;
          const wrong = `connect.sid=${encodeURIComponent(`s:${signature.sign(value, otherSecret)}`)}`;
          assert.equal(signature.unsign(signature.sign(value, otherSecret), secret), false);
          assert.deepEqual(await node.verdict(wrong), { accepted: false }, `express-session, ${what} signed with another secret`);
          assert.deepEqual(
            await verdictOfDemo(env, demo.url, wrong, "websocket"),
            { accepted: false, message: "session required" },
            `the demo must refuse ${what} signed with another secret (cookie ${wrong})`,
          );
        }),
      );
    }
  });

  it("takes a validly signed empty session id for no session, like express-session", T, async (t) => {
    // express-session's getcookie yields "" for `s:` + sign("", secret), and `if (!req.sessionID)` it starts a new
    // session instead of loading one: an empty id never names a session, even if the store has one under it.
    const env = resources(t);
    const redisSrv = await env.redis();
    const redis = await env.redisClient(redisSrv.url);
    const demo = await env.demo(["--redis", redisSrv.url, "--secret", SECRET]);
    const node = await env.memoryExpress([SECRET]);
    const sess = sessionObject({ user: "nobody", count: 42 });
    await putRedisSession(redis, "", sess);
    await node.put("", sess);
    const signed = signature.sign("", SECRET);
    assert.equal(signature.unsign(signed, SECRET), "", "cookie-signature signs and unsigns the empty value");
    const cookie = `connect.sid=${encodeURIComponent(`s:${signed}`)}`;
    assert.deepEqual(await node.verdict(cookie), { accepted: false }, "express-session's verdict");
    for (const transport of TRANSPORTS) {
      assert.deepEqual(
        await verdictOfDemo(env, demo.url, cookie, transport),
        { accepted: false, message: "session required" },
        `the demo over ${transport}, Cookie: ${cookie} (key "sess:" exists in Redis), expected express-session's verdict`,
      );
    }
  });

  it("accepts the cookie of a real express-session app and refuses forged variants, like express-session", T, async (t) => {
    const env = resources(t);
    const redisSrv = await env.redis();
    const redis = await env.redisClient(redisSrv.url);
    const node = await env.memoryExpress([SECRET]);
    const demo = await env.demo(["--redis", redisSrv.url, "--secret", SECRET]);

    const login = await httpJson(`${node.url}/login?user=alice&count=7`, { method: "POST" });
    assert.equal(login.status, 200);
    const value = setCookieValue(login.res);
    assert.ok(value, `express-session set no connect.sid: ${login.res.headers.getSetCookie()}`);
    const sid = login.body.sid;
    assert.match(sid, SID, "express-session's session id (uid-safe, 24 bytes)");
    assert.equal(unsignCookie(value, SECRET), sid);
    assert.equal(value, cookieFor(sid, SECRET), "express-session's cookie value is encodeURIComponent('s:' + sign(id))");

    // The session, as express-session stored it, goes to Redis in connect-redis's format.
    const stored = await node.get(sid);
    assert.equal(stored.count, 7);
    await putRedisSession(redis, sid, JSON.parse(JSON.stringify(stored)));
    // Another stored session, so that a cookie naming it with the original signature is refused for its signature.
    const otherSid = flipAt(sid, 0);
    await putRedisSession(redis, otherSid, sessionObject({ user: "mallory", count: 99 }));
    await node.put(otherSid, sessionObject({ user: "mallory", count: 99 }));

    const decoded = decodeURIComponent(value); // s:<sid>.<sig>
    const signed = decoded.slice(2);
    const sig = signed.slice(signed.lastIndexOf(".") + 1);
    assert.equal(sig.length, 43, "HMAC-SHA256 in base64 without padding");
    const enc = (s) => encodeURIComponent(s);
    const variants = [
      { name: "as issued", cookie: `connect.sid=${value}`, accepted: true },
      { name: "not URI-encoded", cookie: `connect.sid=${decoded}`, accepted: true },
      { name: "quoted", cookie: `connect.sid="${value}"`, accepted: true },
      { name: "among other cookies", cookie: `a=1; connect.sid=${value}; b=2`, accepted: true },
      { name: "the bare id", cookie: `connect.sid=${sid}`, accepted: false },
      { name: "s: and the id, no signature", cookie: `connect.sid=${enc(`s:${sid}`)}`, accepted: false },
      { name: "s: and the id and a dot", cookie: `connect.sid=${enc(`s:${sid}.`)}`, accepted: false },
      { name: "signed with another secret", cookie: `connect.sid=${enc(`s:${signature.sign(sid, "not the secret")}`)}`, accepted: false },
      { name: "signed without the s: prefix", cookie: `connect.sid=${enc(signed)}`, accepted: false },
      { name: "a signature character flipped", cookie: `connect.sid=${enc(`s:${tamperSignature(signed)}`)}`, accepted: false },
      { name: "the signature truncated", cookie: `connect.sid=${enc(`s:${signed.slice(0, -1)}`)}`, accepted: false },
      { name: "the signature with = padding", cookie: `connect.sid=${enc(`s:${signed}=`)}`, accepted: false },
      { name: "the signature in base64url", cookie: `connect.sid=${enc(`s:${sid}.${sig.replace(/\+/g, "-").replace(/\//g, "_")}`)}`, accepted: !/[+/]/.test(sig) },
      { name: "the signature non-canonical", cookie: `connect.sid=${enc(`s:${nonCanonical(signed)}`)}`, accepted: false },
      { name: "another stored id with this signature", cookie: `connect.sid=${enc(`s:${otherSid}.${sig}`)}`, accepted: false },
      { name: "a forged connect.sid before the real one", cookie: `connect.sid=${enc(`s:${otherSid}.${sig}`)}; connect.sid=${value}`, accepted: false },
      { name: "under another cookie name", cookie: `connect.sidx=${value}`, accepted: false },
    ];

    for (const v of variants) {
      const expected = v.accepted ? { accepted: true, count: 7 } : { accepted: false };
      assert.deepEqual(await node.verdict(v.cookie), expected, `express-session's verdict for the cookie ${v.name}: ${v.cookie}`);
    }
    await Promise.all(
      variants.flatMap((v) =>
        TRANSPORTS.map(async (transport) => {
          const got = await verdictOfDemo(env, demo.url, v.cookie, transport);
          const expected = v.accepted ? { accepted: true, count: 7 } : { accepted: false, message: "session required" };
          assert.deepEqual(got, expected, `the demo over ${transport}, cookie ${v.name}: Cookie: ${v.cookie}`);
        }),
      ),
    );
  });

  it("rotates secrets: --secret new,old accepts cookies signed with old and signs new cookies with new", T, async (t) => {
    const env = resources(t);
    const redisSrv = await env.redis();
    const redis = await env.redisClient(redisSrv.url);
    const sid = "rotationSessionId_0123456789abcd";
    await putRedisSession(redis, sid, sessionObject({ user: "rot", count: 5 }));
    const rotating = await env.demo(["--redis", redisSrv.url, "--secret", "new,old"]);
    const newOnly = await env.demo(["--redis", redisSrv.url, "--secret", "new"]);
    const node = await env.memoryExpress(["new", "old"]);
    await node.put(sid, sessionObject({ user: "rot", count: 5 }));

    const byOld = `connect.sid=${cookieFor(sid, "old")}`;
    const byNew = `connect.sid=${cookieFor(sid, "new")}`;
    const byOther = `connect.sid=${cookieFor(sid, "other")}`;
    assert.deepEqual(await node.verdict(byOld), { accepted: true, count: 5 }, "express-session with secret [new, old]");
    assert.deepEqual(await node.verdict(byOther), { accepted: false });
    for (const transport of TRANSPORTS) {
      assert.deepEqual(await verdictOfDemo(env, rotating.url, byOld, transport), { accepted: true, count: 5 }, `--secret new,old, cookie signed with old, over ${transport}`);
      assert.deepEqual(await verdictOfDemo(env, rotating.url, byNew, transport), { accepted: true, count: 5 }, `--secret new,old, cookie signed with new, over ${transport}`);
      assert.deepEqual(await verdictOfDemo(env, rotating.url, byOther, transport), { accepted: false, message: "session required" }, `--secret new,old, cookie signed with other, over ${transport}`);
      assert.deepEqual(await verdictOfDemo(env, newOnly.url, byOld, transport), { accepted: false, message: "session required" }, `--secret new, cookie signed with old, over ${transport}`);
    }

    // The HTTP routes take the old cookie too, and a new session's cookie is signed with the first secret.
    const incr = await httpJson(`${rotating.url}/incr`, { method: "POST", cookie: byOld });
    assert.equal(incr.status, 200, `POST /incr with the old-secret cookie: ${JSON.stringify(incr.body)}`);
    assert.deepEqual(incr.body, { count: 6 });
    const page = await within(3000, fetch(`${rotating.url}/`), "GET /");
    await page.text();
    const fresh = setCookieValue(page);
    assert.ok(fresh, `GET / without a cookie must set connect.sid; Set-Cookie: ${page.headers.getSetCookie()}`);
    const freshSid = unsignCookie(fresh, "new");
    assert.match(String(freshSid), SID, `the new cookie ${fresh} must be signed with the first secret, "new"`);
    assert.equal(unsignCookie(fresh, "old"), false, "the new cookie must not be signed with old");
  });

  it("sets a cookie that cookie-signature unsigns to a 32-character base64url id, which express-session accepts", T, async (t) => {
    const env = resources(t);
    const demo = await env.demo(["--secret", SECRET, "--max-age-secs", "600"]);
    const before = Date.now();
    const page = await within(3000, fetch(`${demo.url}/`), "GET /");
    assert.equal(page.status, 200);
    await page.text();
    const lines = page.headers.getSetCookie();
    assert.equal(lines.length, 1, `one Set-Cookie: ${JSON.stringify(lines)}`);
    const value = setCookieValue(page);
    assert.ok(value, `Set-Cookie is not connect.sid: ${lines[0]}`);
    assert.ok(value.startsWith("s%3A"), `the value is URI-encoded s:…: ${value}`);
    const sid = signature.unsign(decodeURIComponent(value).slice(2), SECRET);
    assert.notEqual(sid, false, `cookie-signature cannot unsign ${value} with ${JSON.stringify(SECRET)}`);
    assert.match(sid, SID, "the session id: 32 base64url characters (express-session's uid-safe of 24 bytes)");
    assert.equal(value, cookieFor(sid, SECRET), "the value, byte for byte, is what express-session would set for this id");
    assert.equal(signature.unsign(decodeURIComponent(value).slice(2), "another secret"), false);

    const attrs = lines[0].split(";").slice(1).map((a) => a.trim());
    assert.ok(attrs.includes("Path=/"), `Path=/ in ${lines[0]}`);
    assert.ok(attrs.includes("HttpOnly"), `HttpOnly in ${lines[0]}`);
    const expires = attrs.find((a) => a.startsWith("Expires="));
    assert.ok(expires, `Expires in ${lines[0]}`);
    const at = Date.parse(expires.slice("Expires=".length));
    assert.ok(at >= before + 598_000 && at <= Date.now() + 601_000, `Expires ${expires} must be ~600 s ahead`);

    // The same cookie again: the session is found, no new cookie.
    const again = await within(3000, fetch(`${demo.url}/`, { headers: { cookie: `connect.sid=${value}` } }), "GET / again");
    await again.text();
    assert.deepEqual(again.headers.getSetCookie(), [], "GET / with a valid cookie must not set another");

    // express-session, given the same session, takes the Rust cookie as its own.
    const node = await env.memoryExpress([SECRET]);
    await node.put(sid, sessionObject({ user: "from-rust", count: 3 }));
    assert.deepEqual(await node.verdict(`connect.sid=${value}`), { accepted: true, count: 3 });
  });
});

// ---------------------------------------------------------------------------------------------------------------
// b. The demo, sessions in memory

/** GET / on the demo: a new session's cookie header (`connect.sid=…`). */
async function newSession(url) {
  const res = await within(3000, fetch(`${url}/`), "GET /");
  assert.equal(res.status, 200);
  await res.text();
  const value = setCookieValue(res);
  assert.ok(value, `GET / set no connect.sid: ${JSON.stringify(res.headers.getSetCookie())}`);
  return `connect.sid=${value}`;
}

describe("b. the demo with sessions in memory", () => {
  it("sends the new count to every client of the session, and to no other session's", T, async (t) => {
    const env = resources(t);
    const demo = await env.demo(["--secret", SECRET]);
    const a = await newSession(demo.url);
    const b = await newSession(demo.url);
    assert.notEqual(a, b);

    const a1 = env.client(demo.url, { cookie: a, transport: "polling" });
    const a2 = env.client(demo.url, { cookie: a, transport: "websocket" });
    const b1 = env.client(demo.url, { cookie: b });
    for (const s of [a1, a2, b1]) {
      await connected(s);
      assert.deepEqual(await s.rec.next("current count"), [0], "the count on connection");
    }

    const incr = await httpJson(`${demo.url}/incr`, { method: "POST", cookie: a });
    assert.equal(incr.status, 200);
    assert.deepEqual(incr.body, { count: 1 });
    assert.deepEqual(await a1.rec.next("current count"), [1], "first client of the session (polling)");
    assert.deepEqual(await a2.rec.next("current count"), [1], "second client of the session (websocket)");
    await sleep(QUIET_MS);
    assert.deepEqual(b1.rec.all("current count"), [[0]], "the other session's client must not get the count");

    const incrB = await httpJson(`${demo.url}/incr`, { method: "POST", cookie: b });
    assert.deepEqual(incrB.body, { count: 1 }, "the other session has its own count");
    assert.deepEqual(await b1.rec.next("current count"), [1]);
    const incrA = await httpJson(`${demo.url}/incr`, { method: "POST", cookie: a });
    assert.deepEqual(incrA.body, { count: 2 });
    assert.deepEqual(await a1.rec.next("current count"), [2]);
    assert.deepEqual(await a2.rec.next("current count"), [2]);
    await sleep(QUIET_MS);
    assert.deepEqual(a1.rec.all("current count"), [[0], [1], [2]]);
    assert.deepEqual(a2.rec.all("current count"), [[0], [1], [2]]);
    assert.deepEqual(b1.rec.all("current count"), [[0], [1]]);

    // A later client of the session starts from the stored count.
    const a3 = env.client(demo.url, { cookie: a });
    await connected(a3);
    assert.deepEqual(await a3.rec.next("current count"), [2]);
  });

  it("logout disconnects every client of the session (io server disconnect) and refuses its cookie after", T, async (t) => {
    const env = resources(t);
    const demo = await env.demo(["--secret", SECRET]);
    const a = await newSession(demo.url);
    const b = await newSession(demo.url);
    const a1 = env.client(demo.url, { cookie: a, transport: "polling" });
    const a2 = env.client(demo.url, { cookie: a, transport: "websocket" });
    const b1 = env.client(demo.url, { cookie: b });
    for (const s of [a1, a2, b1]) await connected(s);

    const out = await httpJson(`${demo.url}/logout`, { method: "POST", cookie: a });
    assert.equal(out.status, 200);
    assert.deepEqual(out.body, { ok: true });
    const cleared = out.res.headers.getSetCookie().find((l) => l.startsWith("connect.sid="));
    assert.ok(cleared, `logout must clear the cookie: ${JSON.stringify(out.res.headers.getSetCookie())}`);
    assert.match(cleared, /^connect\.sid=;/);

    for (const [label, s] of [["polling", a1], ["websocket", a2]]) {
      assert.equal((await s.rec.next("disconnect", 2000))[0], "io server disconnect", `the ${label} client of the session`);
      assert.equal(s.connected, false);
    }
    await sleep(QUIET_MS);
    assert.equal(b1.connected, true, `the other session's client must stay connected (events: ${b1.rec.history()})`);
    assert.equal(b1.rec.all("disconnect").length, 0);
    const incrB = await httpJson(`${demo.url}/incr`, { method: "POST", cookie: b });
    assert.deepEqual(incrB.body, { count: 1 });
    assert.deepEqual(await b1.rec.next("current count"), [0]);
    assert.deepEqual(await b1.rec.next("current count"), [1]);

    for (const transport of TRANSPORTS) {
      const again = env.client(demo.url, { cookie: a, transport });
      await refused(again, "session required", `a new ${transport} connection with the logged-out cookie`);
    }
    const incrA = await httpJson(`${demo.url}/incr`, { method: "POST", cookie: a });
    assert.equal(incrA.status, 401, `POST /incr with the logged-out cookie: ${JSON.stringify(incrA.body)}`);
  });

  it("disconnects the clients of an expired session at the next periodic check", T, async (t) => {
    const env = resources(t);
    const demo = await env.demo(["--secret", SECRET, "--max-age-secs", "2", "--check-interval-ms", "300"]);
    const created = Date.now();
    const a = await newSession(demo.url);
    const a1 = env.client(demo.url, { cookie: a, transport: "polling" });
    const a2 = env.client(demo.url, { cookie: a, transport: "websocket" });
    await connected(a1);
    await connected(a2);

    await sleep(Math.max(0, created + 1500 - Date.now()));
    for (const s of [a1, a2]) {
      assert.equal(s.connected, true, `still connected 1.5 s into a 2 s session (events: ${s.rec.history()})`);
    }
    for (const [label, s] of [["polling", a1], ["websocket", a2]]) {
      const [reason] = await s.rec.next("disconnect", Math.max(1, created + 4000 - Date.now()));
      assert.equal(reason, "io server disconnect", `the ${label} client`);
      const at = s.rec.events.find((e) => e.name === "disconnect").at;
      // The session expires 2 s after GET / (which came after `created`); the check runs every 300 ms.
      assert.ok(at - created >= 1950, `the ${label} client was disconnected ${at - created} ms after GET /, before expiry`);
    }

    for (const transport of TRANSPORTS) {
      await refused(env.client(demo.url, { cookie: a, transport }), "session required", `a ${transport} connection with the expired cookie`);
    }
    const incr = await httpJson(`${demo.url}/incr`, { method: "POST", cookie: a });
    assert.equal(incr.status, 401, `POST /incr with the expired cookie: ${JSON.stringify(incr.body)}`);
  });

  it("refuses a cookie with a tampered signature on polling and websocket, and takes the genuine one on both", T, async (t) => {
    const env = resources(t);
    const demo = await env.demo(["--secret", SECRET]);
    const a = await newSession(demo.url);
    const value = a.slice("connect.sid=".length);
    const tampered = `connect.sid=${encodeURIComponent(`s:${tamperSignature(decodeURIComponent(value).slice(2))}`)}`;
    assert.notEqual(tampered, a);
    assert.equal(unsignCookie(tampered.slice("connect.sid=".length), SECRET), false, "cookie-signature refuses the tampered value");

    for (const transport of TRANSPORTS) {
      await refused(env.client(demo.url, { cookie: tampered, transport }), "session required", `tampered cookie over ${transport}`);
      const genuine = env.client(demo.url, { cookie: a, transport });
      await connected(genuine);
      assert.deepEqual(await genuine.rec.next("current count"), [0], `genuine cookie over ${transport}`);
      await refused(env.client(demo.url, { transport }), "session required", `no cookie over ${transport}`);
    }
    const incr = await httpJson(`${demo.url}/incr`, { method: "POST", cookie: tampered });
    assert.equal(incr.status, 401, `POST /incr with the tampered cookie: ${JSON.stringify(incr.body)}`);
  });

  it("serves a cross-origin front end with credentials (--cors-origin) and refuses other origins", T, async (t) => {
    const env = resources(t);
    const APP = "http://app.example";
    const EVIL = "http://evil.example";
    const demo = await env.demo(["--secret", SECRET, "--cors-origin", APP]);
    const endpoint = `${demo.url}/socket.io/?EIO=4&transport=polling`;

    const preflight = await within(
      3000,
      fetch(endpoint, {
        method: "OPTIONS",
        headers: { origin: APP, "access-control-request-method": "POST", "access-control-request-headers": "content-type" },
      }),
      "the preflight",
    );
    await preflight.text();
    assert.ok(preflight.status >= 200 && preflight.status < 300, `preflight status ${preflight.status}`);
    assert.equal(preflight.headers.get("access-control-allow-origin"), APP);
    assert.equal(preflight.headers.get("access-control-allow-credentials"), "true");

    const evilPreflight = await within(
      3000,
      fetch(endpoint, { method: "OPTIONS", headers: { origin: EVIL, "access-control-request-method": "POST" } }),
      "the evil preflight",
    );
    await evilPreflight.text();
    const evilAcao = evilPreflight.headers.get("access-control-allow-origin");
    assert.ok(evilAcao !== EVIL && evilAcao !== "*", `a preflight from ${EVIL} must not be allowed (ACAO ${evilAcao})`);

    const a = await newSession(demo.url);
    // The handshake response itself carries the credentialed CORS headers.
    const handshake = await within(3000, fetch(endpoint, { headers: { origin: APP, cookie: a } }), "the polling handshake");
    const body = await handshake.text();
    assert.equal(handshake.status, 200, `handshake: ${body}`);
    assert.equal(handshake.headers.get("access-control-allow-origin"), APP);
    assert.equal(handshake.headers.get("access-control-allow-credentials"), "true");

    for (const transport of TRANSPORTS) {
      const ok = env.client(demo.url, { cookie: a, origin: APP, transport });
      await connected(ok);
      assert.deepEqual(await ok.rec.next("current count"), [0], `Origin ${APP} over ${transport}`);
      const evil = env.client(demo.url, { cookie: a, origin: EVIL, transport });
      const err = await refused(evil, undefined, `Origin ${EVIL} over ${transport}`);
      assert.notEqual(err.message, "session required", `Origin ${EVIL} must be refused by the Origin check`);
    }
  });
});

// ---------------------------------------------------------------------------------------------------------------
// c. Express + connect-redis owns the login, the Rust demo serves the realtime side

describe("c. the Express app (express-session + connect-redis) and the Rust demo share sessions in Redis", () => {
  it("uses a Node session from Rust and back, in connect-redis's format, and disconnects on a Node logout", T, async (t) => {
    const env = resources(t);
    const redisSrv = await env.redis();
    const [node, demo, redis] = await Promise.all([
      env.expressApp(redisSrv.url, SECRET),
      env.demo(["--redis", redisSrv.url, "--secret", SECRET, "--check-interval-ms", "300"]),
      env.redisClient(redisSrv.url),
    ]);

    const login = await httpJson(`${node.url}/login?user=alice`, { method: "POST" });
    assert.equal(login.status, 200, `POST /login: ${JSON.stringify(login.body)}`);
    assert.deepEqual(login.body, { user: "alice", count: 0 });
    const value = setCookieValue(login.res);
    assert.ok(value, `the Express app set no connect.sid: ${JSON.stringify(login.res.headers.getSetCookie())}`);
    const cookie = `connect.sid=${value}`;
    const sid = unsignCookie(value, SECRET);
    assert.match(String(sid), SID);
    // express-session reads the new cookie's originalMaxAge back from its expiry, so a busy machine may store
    // 3599999 for its 1 hour: what Node stored here is what every later save must keep.
    const madeByNode = JSON.parse(await redis.get(`sess:${sid}`));
    const originalMaxAge = madeByNode.cookie?.originalMaxAge;
    assert.ok(originalMaxAge > 3_599_000 && originalMaxAge <= 3_600_000, `Node's originalMaxAge: ${JSON.stringify(madeByNode)}`);

    const s = env.client(demo.url, { cookie });
    await connected(s);
    assert.deepEqual(await s.rec.next("current count"), [0], "the count of the Node-made session");

    const incr1 = await httpJson(`${demo.url}/incr`, { method: "POST", cookie });
    assert.equal(incr1.status, 200, `POST /incr on the demo: ${JSON.stringify(incr1.body)}`);
    assert.deepEqual(incr1.body, { count: 1 });
    assert.deepEqual(await s.rec.next("current count"), [1]);
    const seen = await httpJson(`${node.url}/session`, { cookie });
    assert.equal(seen.status, 200, `GET /session on Node after the Rust save: ${JSON.stringify(seen.body)}`);
    assert.deepEqual(seen.body, { user: "alice", count: 1 }, "Node sees the count saved by Rust");

    const bump = await httpJson(`${node.url}/bump`, { method: "POST", cookie });
    assert.equal(bump.status, 200);
    assert.deepEqual(bump.body, { count: 2 });
    const incr2 = await httpJson(`${demo.url}/incr`, { method: "POST", cookie });
    assert.deepEqual(incr2.body, { count: 3 }, "Rust sees the count saved by Node");
    assert.deepEqual(await s.rec.next("current count"), [3]);

    const raw = await redis.get(`sess:${sid}`);
    assert.ok(raw, `Redis has no key sess:${sid} (keys: ${JSON.stringify(await redis.keys("*"))})`);
    const stored = JSON.parse(raw);
    assert.equal(stored.user, "alice");
    assert.equal(stored.count, 3);
    assert.equal(stored.cookie?.originalMaxAge, originalMaxAge, `cookie.originalMaxAge (Node's 1 hour, as Node stored it) in ${raw}`);
    assert.equal(typeof stored.cookie?.expires, "string", `cookie.expires in ${raw}`);
    const expires = Date.parse(stored.cookie.expires);
    assert.ok(expires > Date.now() && expires <= Date.now() + 3_600_000 + 1000, `cookie.expires ${stored.cookie.expires}`);
    const ttl = await redis.ttl(`sess:${sid}`);
    assert.ok(ttl > 0 && ttl <= 3600, `TTL of sess:${sid} is ${ttl}, expected in (0, 3600]`);

    const out = await httpJson(`${node.url}/logout`, { method: "POST", cookie });
    assert.deepEqual(out.body, { ok: true });
    assert.equal(await redis.exists(`sess:${sid}`), 0, "connect-redis deletes the session on destroy");
    assert.equal((await s.rec.next("disconnect", 2000))[0], "io server disconnect", "the demo's socket after the Node logout");
    for (const transport of TRANSPORTS) {
      await refused(env.client(demo.url, { cookie, transport }), "session required", `a ${transport} connection after the Node logout`);
    }
    const incr3 = await httpJson(`${demo.url}/incr`, { method: "POST", cookie });
    assert.equal(incr3.status, 401, `POST /incr on the demo after the Node logout: ${JSON.stringify(incr3.body)}`);
    const gone = await httpJson(`${node.url}/session`, { cookie });
    assert.equal(gone.status, 401);
  });
});
