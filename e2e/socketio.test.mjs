// Interoperability tests: the npm socket.io-client (4.8.4, plus socket.io-msgpack-parser) against the Rust Socket.IO
// test server (e2e/testserver/src/main.rs, see its doc comment for the events it handles).
//
// Each test starts its own server (lib/server.mjs) and, in its `t.after`, closes every client it made and then
// stops the server. Every wait is bounded so that a misbehaving server fails a test with a message instead of hanging
// it. Tests marked "over <transport>" run for polling only, websocket only, and the default (polling, then upgrade to
// websocket; the test waits for the upgrade so that the rest of it runs over the upgraded connection).

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { WebSocket } from "ws";
import { Socket as EngineSocket } from "engine.io-client";
import { io, Manager } from "socket.io-client";
import msgpackParser from "socket.io-msgpack-parser";

import { startTestServer } from "./lib/server.mjs";
import { sleep, within } from "./lib/util.mjs";

const T = { timeout: 6000 };
const ID = /^[A-Za-z0-9_-]{20}$/;

const TRANSPORTS = [
  { label: "polling", opts: { transports: ["polling"] }, final: "polling" },
  { label: "websocket", opts: { transports: ["websocket"] }, final: "websocket" },
  { label: "polling then upgrade", opts: {}, final: "websocket" },
];
const WS = TRANSPORTS[1];

// ---------------------------------------------------------------------------------------------------------------
// Helpers

/**
 * Starts the test server with `args` and returns {url, client, manager, watch}. Clients made through it are closed
 * (their managers disconnected) in `t.after`, before the server is stopped.
 */
async function setup(t, args = []) {
  const srv = await startTestServer(args);
  const managers = new Set();
  t.after(async () => {
    for (const m of managers) m.disconnect();
    await srv.stop();
  });
  const env = {
    url: srv.url,
    output: srv.output,
    /** A new Manager (no reconnection unless asked for) on this server; closed in t.after. */
    manager(opts = {}) {
      const m = new Manager(srv.url, { reconnection: false, ...opts });
      managers.add(m);
      return m;
    },
    /** A socket on namespace `nsp` with its own Manager, watched from the start. */
    client(nsp = "/", opts = {}) {
      const { auth, ...managerOpts } = opts;
      const m = env.manager(managerOpts);
      return watched(m.socket(nsp, auth ? { auth } : {}));
    },
    /** Registers a socket made elsewhere (e.g. by `io()`) so that its manager is closed in t.after. */
    adopt(socket) {
      managers.add(socket.io);
      return socket;
    },
  };
  return env;
}

/** Turns every binary value (Buffer, ArrayBuffer, typed array), at any depth, into a plain Buffer copy. */
function norm(value) {
  if (Buffer.isBuffer(value)) return Buffer.from(value);
  if (value instanceof ArrayBuffer) return Buffer.from(new Uint8Array(value));
  if (ArrayBuffer.isView(value)) return Buffer.from(new Uint8Array(value.buffer, value.byteOffset, value.byteLength));
  if (Array.isArray(value)) return value.map(norm);
  if (value && typeof value === "object") {
    const out = {};
    for (const [k, v] of Object.entries(value)) out[k] = norm(v);
    return out;
  }
  return value;
}

/** A readable rendering of event arguments (buffers shown as <hex>). */
function show(value) {
  return JSON.stringify(value, (k, v) => {
    if (v && v.type === "Buffer" && Array.isArray(v.data)) return `<Buffer ${Buffer.from(v.data).toString("hex")}>`;
    if (typeof v === "function") return "<ack fn>";
    return v;
  });
}

/**
 * Records everything a socket.io-client socket emits locally, from the moment it is called: every incoming event
 * (through onAny; a trailing ack callback is kept apart as `ack`) and the reserved connect / connect_error /
 * disconnect events. Per event name, `next(name)` hands out the events in order of arrival, waiting (bounded) when
 * none is left; `all(name)` lists them all.
 */
function watched(socket) {
  const events = [];
  const cursors = new Map();
  const waiters = new Set();
  const push = (name, rawArgs, reserved) => {
    let args = rawArgs;
    let ack;
    if (!reserved && args.length && typeof args[args.length - 1] === "function") {
      ack = args[args.length - 1];
      args = args.slice(0, -1);
    }
    events.push({ name, args: reserved ? args : norm(args), ack, at: Date.now() });
    for (const w of [...waiters]) w();
  };
  socket.onAny((name, ...args) => push(name, args, false));
  for (const name of ["connect", "connect_error", "disconnect"]) {
    socket.on(name, (...args) => push(name, args, true));
  }
  const list = (name) => events.filter((e) => e.name === name);

  socket.w = {
    events,
    all: (name) => list(name).map((e) => e.args),
    count: (name) => list(name).length,
    /** The next not yet handed out event `name` as {args, ack, at}. */
    nextEvent(name, ms = 2000, what = `"${name}"`) {
      const take = () => {
        const i = cursors.get(name) ?? 0;
        const e = list(name)[i];
        if (e) cursors.set(name, i + 1);
        return e;
      };
      const now = take();
      if (now) return Promise.resolve(now);
      let waiter;
      const p = new Promise((resolve) => {
        waiter = () => {
          const e = take();
          if (e) {
            waiters.delete(waiter);
            resolve(e);
          }
        };
        waiters.add(waiter);
      });
      return within(ms, p, `${what} on ${socket.nsp} (got so far: ${show(events.map((e) => [e.name, ...e.args]))})`)
        .finally(() => waiters.delete(waiter));
    },
    /** The arguments of the next event `name`. */
    async next(name, ms, what) {
      return (await socket.w.nextEvent(name, ms, what)).args;
    },
    /** The arguments of the next `n` events `name`. */
    async take(name, n, ms = 2000) {
      const out = [];
      const deadline = Date.now() + ms;
      for (let i = 0; i < n; i++) out.push(await socket.w.next(name, Math.max(1, deadline - Date.now()), `"${name}" #${i + 1} of ${n}`));
      return out;
    },
  };
  return socket;
}

/** Resolves once `socket` is connected; rejects with the error on connect_error. */
function connected(socket, ms = 3000) {
  if (socket.connected) return Promise.resolve(socket);
  let onConnect;
  let onError;
  let onClose;
  const p = new Promise((resolve, reject) => {
    onConnect = () => resolve(socket);
    onError = (err) => reject(new Error(`connect_error on ${socket.nsp}: ${err.message} ${show(err.data)}`));
    onClose = (reason, description) =>
      reject(new Error(`connection closed before "connect" on ${socket.nsp}: ${reason} ${description?.description ?? ""}`));
    socket.once("connect", onConnect);
    socket.once("connect_error", onError);
    socket.once("disconnect", onClose);
  });
  return within(ms, p, `"connect" on ${socket.nsp}`).finally(() => {
    socket.off("connect", onConnect);
    socket.off("connect_error", onError);
    socket.off("disconnect", onClose);
  });
}

/** Resolves once the manager's engine uses `name` ("websocket" waits for the upgrade). */
async function onTransport(manager, name, ms = 3000) {
  const engine = manager.engine;
  if (engine.transport.name === name) return;
  assert.equal(name, "websocket", `transport is ${engine.transport.name}, expected ${name}`);
  let onUpgrade;
  let onFail;
  const p = new Promise((resolve, reject) => {
    onUpgrade = resolve;
    onFail = (err) => reject(new Error(`upgrade failed: ${err?.message ?? err}`));
    engine.on("upgrade", onUpgrade);
    engine.on("upgradeError", onFail);
  });
  try {
    await within(ms, p, "the upgrade to websocket");
  } finally {
    engine.off("upgrade", onUpgrade);
    engine.off("upgradeError", onFail);
  }
  assert.equal(engine.transport.name, "websocket");
}

/** Connects the socket and, for the upgrading mode, waits for the upgrade. */
async function ready(socket, tr) {
  await connected(socket);
  await onTransport(socket.io, tr.final);
  return socket;
}

/** Emits with an ack and resolves with all the ack's arguments (binary normalised); rejects on ack timeout. */
function ackOf(socket, ms, event, ...args) {
  return new Promise((resolve, reject) => {
    socket.timeout(ms).emit(event, ...args, (err, ...res) => {
      if (err) reject(new Error(`no ack for "${event}" within ${ms} ms: ${err.message}`));
      else resolve(norm(res));
    });
  });
}

/** Joins `room` and checks the ack (the socket's sorted rooms). */
async function join(socket, room, expectedRooms) {
  const [rooms] = await ackOf(socket, 2000, "join", room);
  if (expectedRooms) assert.deepEqual(rooms, [...expectedRooms].sort(), `rooms of ${socket.id} after joining ${room}`);
  return rooms;
}

/**
 * A barrier: `from` asks the server to `io.emit("all", token)`; resolves once every socket of `sockets` received
 * it. Since a connection delivers packets in order, anything the server sent before is then received too.
 */
async function barrier(from, sockets, token = `barrier-${Math.random()}`) {
  from.emit("emit-all", token);
  await Promise.all(
    sockets.map(async (s) => {
      for (;;) {
        const [got] = await s.w.next("all", 2000, `barrier "${token}"`);
        if (got === token) return;
      }
    }),
  );
}

const MIXED_ARGS = () => [1, "two", Buffer.from([1, 2, 3]), { nested: { bin: Buffer.from([4]) }, arr: [Buffer.from([5]), 6] }];

// ---------------------------------------------------------------------------------------------------------------
// 1. Connection to namespaces

describe("1. connect and multiplex namespaces", () => {
  for (const tr of TRANSPORTS) {
    it(`connects to / and /custom on one Manager over ${tr.label}`, T, async (t) => {
      const env = await setup(t);
      // io() without forceNew caches the Manager per host:port, so the second io() call multiplexes on it.
      const root = watched(env.adopt(io(env.url, { ...tr.opts, reconnection: false })));
      await connected(root);
      assert.match(root.id, ID, "socket.id of /");
      assert.equal(root.connected, true);
      assert.deepEqual(await root.w.next("auth"), [{}], "auth payload echoed to /");

      const custom = watched(env.adopt(io(`${env.url}/custom`, { auth: { token: "abc" } })));
      assert.equal(custom.io, root.io, "/custom must share the Manager of /");
      await connected(custom);
      assert.match(custom.id, ID, "socket.id of /custom");
      assert.notEqual(custom.id, root.id);
      assert.deepEqual(await custom.w.next("auth"), [{ token: "abc" }], "auth payload echoed to /custom");

      await onTransport(root.io, tr.final);
      // Both namespaces work over the one engine connection, each sees only its own sockets.
      assert.deepEqual(await ackOf(root, 2000, "fetch-sockets"), [[root.id]]);
      assert.deepEqual(await ackOf(custom, 2000, "fetch-sockets"), [[custom.id]]);
      root.emit("message", "on /");
      custom.emit("message", "on /custom");
      assert.deepEqual(await root.w.next("message-back"), ["on /"]);
      assert.deepEqual(await custom.w.next("message-back"), ["on /custom"]);
      assert.equal(root.w.count("message-back"), 1, "/ must not get the /custom echo");
      assert.equal(root.io.engine.transport.name, tr.final);
    });
  }
});

describe("2. dynamic namespaces", () => {
  it("connects to /dyn-42 (welcome) and refuses /nope with Invalid namespace", T, async (t) => {
    const env = await setup(t);
    const dyn = env.client("/dyn-42");
    await connected(dyn);
    assert.match(dyn.id, ID);
    assert.deepEqual(await dyn.w.next("welcome"), ["/dyn-42"]);
    dyn.emit("message", "dyn", Buffer.from([42]));
    assert.deepEqual(await dyn.w.next("message-back"), ["dyn", Buffer.from([42])]);

    const nope = env.client("/nope");
    const [err] = await nope.w.next("connect_error");
    assert.ok(err instanceof Error, `connect_error argument: ${show(err)}`);
    assert.equal(err.message, "Invalid namespace");
    assert.equal(nope.connected, false);
    assert.equal(nope.active, false, "a CONNECT_ERROR must leave the socket inactive (no retry)");
    assert.equal(nope.w.count("connect"), 0);
  });
});

describe("3. namespace middleware", () => {
  it("refuses /private without the token with {message, data} and accepts it with the token", T, async (t) => {
    const env = await setup(t);
    for (const auth of [undefined, { token: "wrong" }]) {
      const refused = env.client("/private", auth ? { auth } : {});
      const [err] = await refused.w.next("connect_error", 2000, `connect_error with auth ${show(auth)}`);
      assert.equal(err.message, "not authorized", `auth ${show(auth)}`);
      assert.deepEqual(err.data, { code: 401 }, `auth ${show(auth)}`);
      assert.equal(refused.connected, false);
      assert.equal(refused.active, false);
    }

    const ok = env.client("/private", { auth: { token: "secret" } });
    await connected(ok);
    assert.match(ok.id, ID);
    assert.deepEqual(await ok.w.next("auth"), [{ token: "secret" }]);
    assert.equal(ok.w.count("connect_error"), 0);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// 4. and 5. Events and acknowledgements

describe("4. events with binary and JSON arguments", () => {
  for (const tr of TRANSPORTS) {
    it(`echoes mixed binary/JSON arguments both ways over ${tr.label}`, T, async (t) => {
      const env = await setup(t);
      const s = env.client("/", tr.opts);
      await connected(s);
      // Sent at once after connect: for the upgrading mode this usually crosses the upgrade.
      s.emit("message", ...MIXED_ARGS());
      assert.deepEqual(await s.w.next("message-back"), MIXED_ARGS());
      await onTransport(s.io, tr.final);
      s.emit("message", ...MIXED_ARGS());
      s.emit("message", Buffer.alloc(0), Buffer.from("ünïcødé"), "\u2028\u{1F600}", null, true, -1.5, [], {});
      assert.deepEqual(await s.w.next("message-back"), MIXED_ARGS());
      assert.deepEqual(await s.w.next("message-back"), [Buffer.alloc(0), Buffer.from("ünïcødé"), "\u2028\u{1F600}", null, true, -1.5, [], {}]);
    });

    // The client option forceBase64: attachments travel as `b` + base64 text frames both ways on WebSocket.
    it(`echoes mixed binary/JSON arguments with forceBase64 over ${tr.label}`, T, async (t) => {
      const env = await setup(t);
      const s = env.client("/", { ...tr.opts, forceBase64: true });
      await connected(s);
      s.emit("message", ...MIXED_ARGS());
      assert.deepEqual(await s.w.next("message-back"), MIXED_ARGS());
      await onTransport(s.io, tr.final);
      s.emit("message", ...MIXED_ARGS());
      assert.deepEqual(await s.w.next("message-back"), MIXED_ARGS());
      assert.equal(s.connected, true);
    });
  }
});

describe("5. acknowledgements", () => {
  for (const tr of TRANSPORTS) {
    it(`acks both ways, with binary, and times out server-side over ${tr.label}`, T, async (t) => {
      const env = await setup(t);
      const s = env.client("/", tr.opts);
      let answerAsk = true;
      s.on("ask", (...args) => {
        const cb = args[args.length - 1];
        if (answerAsk && typeof cb === "function") cb("pong", Buffer.from([7]));
      });
      await ready(s, tr);

      // client → server
      assert.deepEqual(await ackOf(s, 2000, "message-with-ack", 1, { a: Buffer.from([9]) }), [1, { a: Buffer.from([9]) }]);
      assert.deepEqual(norm(await s.timeout(2000).emitWithAck("message-with-ack", { a: Buffer.from([9]) })), { a: Buffer.from([9]) });
      assert.deepEqual(await ackOf(s, 2000, "message-with-ack"), [], "an ack without arguments");

      // server → client, answered
      s.emit("request-ack", 500, "hello");
      const ask = await s.w.nextEvent("ask");
      assert.deepEqual(ask.args, ["hello"]);
      assert.equal(typeof ask.ack, "function", "the server's ask must carry an ack id");
      assert.deepEqual(await s.w.next("ack-result"), [{ ok: ["pong", [7]] }], "the binary ack argument as JSON");

      // server → client, never answered: the server's 200 ms timeout fires
      answerAsk = false;
      const sent = Date.now();
      s.emit("request-ack", 200, "hello");
      assert.deepEqual(await s.w.next("ask"), ["hello"]);
      const result = await s.w.nextEvent("ack-result");
      assert.deepEqual(result.args, [{ err: "operation has timed out" }]);
      assert.ok(result.at - sent >= 180, `timed out after ${result.at - sent} ms, expected ≥ 200 ms`);
      assert.ok(result.at - sent < 2000, `timed out after ${result.at - sent} ms, expected about 200 ms`);
    });
  }
});

// ---------------------------------------------------------------------------------------------------------------
// 6. to 8. Rooms and broadcasts

describe("6. rooms and broadcasts", () => {
  it("joins, to-room, broadcast, except, leave, sockets-join/leave, fetch-sockets, disconnect-room", T, async (t) => {
    const env = await setup(t);
    const [a, b, c, d] = [0, 1, 2, 3].map(() => env.client("/", WS.opts));
    await Promise.all([a, b, c, d].map((s) => connected(s)));
    const everyone = [a, b, c, d];

    await join(a, "r1", [a.id, "r1"]);
    await join(b, "r1", [b.id, "r1"]);
    await join(b, "r1", [b.id, "r1"]); // a second join of the same room changes nothing
    await join(c, "r2", [c.id, "r2"]);

    // to-room: members only (sender included), each exactly once
    a.emit("to-room", "r1", "hello", Buffer.from([1]));
    assert.deepEqual(await a.w.next("room-message"), ["hello", Buffer.from([1])]);
    assert.deepEqual(await b.w.next("room-message"), ["hello", Buffer.from([1])]);
    await barrier(d, everyone);
    assert.deepEqual(everyone.map((s) => s.w.count("room-message")), [1, 1, 0, 0], "room-message counts (a, b, c, d)");

    // broadcast: everyone but the sender
    a.emit("broadcast", "b", 2);
    for (const s of [b, c, d]) assert.deepEqual(await s.w.next("broadcast"), ["b", 2]);
    await barrier(d, everyone);
    assert.deepEqual(everyone.map((s) => s.w.count("broadcast")), [0, 1, 1, 1], "broadcast counts (a, b, c, d)");

    // except r1: everyone outside r1, the sender included
    d.emit("except", "r1", "e");
    for (const s of [c, d]) assert.deepEqual(await s.w.next("broadcast"), ["e"]);
    await barrier(d, everyone);
    assert.deepEqual(everyone.map((s) => s.w.count("broadcast")), [0, 1, 2, 2], "broadcast counts after except (a, b, c, d)");

    // leave
    assert.deepEqual(await ackOf(b, 2000, "leave", "r1"), [[b.id]]);
    assert.deepEqual(await ackOf(b, 2000, "leave", "not-joined"), [[b.id]]);
    c.emit("to-room", "r1", "after leave");
    assert.deepEqual(await a.w.next("room-message"), ["after leave"]);
    await barrier(d, everyone);
    assert.deepEqual(everyone.map((s) => s.w.count("room-message")), [2, 1, 0, 0], "room-message counts after leave");

    // sockets-join / sockets-leave act on every socket of the namespace
    assert.deepEqual(await ackOf(c, 2000, "sockets-join", "all-room"), []);
    assert.deepEqual(await join(d, "r3"), [d.id, "all-room", "r3"].sort());
    c.emit("to-room", "all-room", "sj");
    for (const s of everyone) assert.deepEqual(await s.w.next("room-message"), ["sj"]);
    assert.deepEqual(await ackOf(c, 2000, "sockets-leave", "all-room"), []);
    assert.deepEqual(await ackOf(d, 2000, "leave", "r3"), [[d.id]]);
    c.emit("to-room", "all-room", "nobody");
    await barrier(d, everyone);
    assert.deepEqual(everyone.map((s) => s.w.count("room-message")), [3, 2, 1, 1], "room-message counts after sockets-leave");

    // fetch-sockets lists every connected socket of /
    assert.deepEqual(await ackOf(a, 2000, "fetch-sockets"), [everyone.map((s) => s.id).sort()]);

    // disconnect-room r2 disconnects c only
    const cId = c.id;
    a.emit("disconnect-room", "r2");
    const [reason] = await c.w.next("disconnect");
    assert.equal(reason, "io server disconnect");
    assert.deepEqual(await ackOf(a, 2000, "fetch-sockets"), [[a.id, b.id, d.id].sort()]);
    assert.ok(!(await ackOf(a, 2000, "fetch-sockets"))[0].includes(cId));
    for (const s of [a, b, d]) assert.equal(s.connected, true);
    assert.equal(a.w.count("disconnect") + b.w.count("disconnect") + d.w.count("disconnect"), 0);
  });
});

describe("7. broadcast with acknowledgements", () => {
  it("collects one response per room member, and times out when one does not answer", T, async (t) => {
    const env = await setup(t);
    const members = [0, 1, 2].map(() => env.client("/", WS.opts));
    const requester = env.client("/", WS.opts);
    let silent;
    const questions = [];
    for (const m of members) {
      m.on("question", (...args) => {
        const cb = typeof args[args.length - 1] === "function" ? args.pop() : undefined;
        questions.push({ args, withAck: !!cb });
        if (m !== silent && cb) cb(m.id);
      });
    }
    await Promise.all([...members, requester].map((s) => connected(s)));
    for (const m of members) await join(m, "q", [m.id, "q"]);

    let sent = Date.now();
    const [all] = await ackOf(requester, 3000, "broadcast-with-ack", "q", 1000);
    const took = Date.now() - sent;
    assert.deepEqual(Object.keys(all).sort(), ["responses"], `result ${show(all)}`);
    assert.deepEqual([...all.responses].sort(), members.map((m) => [m.id]).sort());
    assert.ok(took < 900, `the ack took ${took} ms although every member answered at once (timeout 1000 ms)`);
    assert.deepEqual(questions, Array(3).fill({ args: [], withAck: true }), "question carries no arguments and an ack id");
    assert.equal(requester.w.count("question"), 0, "the requester is not in q");

    silent = members[2];
    sent = Date.now();
    const [partial] = await ackOf(requester, 3000, "broadcast-with-ack", "q", 300);
    const tookPartial = Date.now() - sent;
    assert.equal(partial.err, "operation has timed out", `result ${show(partial)}`);
    assert.deepEqual([...partial.responses].sort(), [[members[0].id], [members[1].id]].sort());
    assert.ok(tookPartial >= 280, `timed out after ${tookPartial} ms, expected ≥ 300 ms`);
  });
});

describe("8. volatile", () => {
  it("delivers a volatile event to a connected websocket client", T, async (t) => {
    const env = await setup(t);
    const s = env.client("/", WS.opts);
    await connected(s);
    s.emit("volatile", "v", 1);
    assert.deepEqual(await s.w.next("volatile"), ["v", 1]);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// 9. Disconnect reasons

/** An observer socket (websocket) in room `observers` of `nsp`: it receives `disconnected` (id, reason). */
async function observer(env, nsp = "/") {
  const o = env.client(nsp, WS.opts);
  await connected(o);
  await join(o, "observers");
  return o;
}

/** Resolves once the manager's engine is closed. */
async function engineClosed(manager) {
  const engine = manager.engine;
  if (engine.readyState === "closed") return;
  await within(2000, new Promise((resolve) => engine.once("close", resolve)), `the engine close (readyState ${engine.readyState})`);
}

/** The observer's next `disconnected` must be (id, reason); with recovery on, events carry a trailing offset. */
async function expectReported(o, id, reason, withOffset = false) {
  const args = await o.w.next("disconnected", 2000, `"disconnected" for ${id}`);
  if (withOffset) {
    assert.equal(args.length, 3, `disconnected ${show(args)} with an offset`);
    assert.equal(typeof args[2], "string", `disconnected ${show(args)} with an offset`);
    assert.deepEqual(args.slice(0, 2), [id, reason]);
  } else {
    assert.deepEqual(args, [id, reason]);
  }
}

describe("9. disconnect reasons", () => {
  for (const tr of TRANSPORTS) {
    it(`server disconnect(false) keeps the engine for /custom over ${tr.label}`, T, async (t) => {
      const env = await setup(t);
      const o = await observer(env);
      const m = env.manager(tr.opts);
      const root = watched(m.socket("/"));
      const custom = watched(m.socket("/custom"));
      await ready(root, tr);
      await connected(custom);
      const id = root.id;
      const engineId = m.engine.id;

      root.emit("disconnect-me", false);
      assert.equal((await root.w.next("disconnect"))[0], "io server disconnect");
      await expectReported(o, id, "server namespace disconnect");
      assert.equal(root.active, false, "no automatic reconnection after a server disconnect");
      // The engine connection is left open for /custom.
      custom.emit("message", "still here");
      assert.deepEqual(await custom.w.next("message-back"), ["still here"]);
      assert.equal(custom.connected, true);
      assert.equal(custom.w.count("disconnect"), 0);
      assert.equal(m.engine.readyState, "open");
      assert.equal(m.engine.id, engineId);

      // The namespace can be joined again on the same engine connection.
      root.connect();
      await connected(root);
      assert.notEqual(root.id, id);
      assert.equal(m.engine.id, engineId);
      root.emit("message", "back");
      assert.deepEqual(await root.w.next("message-back"), ["back"]);
    });

    it(`client disconnect is "io client disconnect" / "client namespace disconnect" over ${tr.label}`, T, async (t) => {
      const env = await setup(t);
      const o = await observer(env);
      const m = env.manager(tr.opts);
      const root = watched(m.socket("/"));
      const custom = watched(m.socket("/custom"));
      await ready(root, tr);
      await connected(custom);
      const id = root.id;

      root.disconnect();
      assert.equal((await root.w.next("disconnect"))[0], "io client disconnect");
      await expectReported(o, id, "client namespace disconnect");
      custom.emit("message", "still here");
      assert.deepEqual(await custom.w.next("message-back"), ["still here"]);
      assert.equal(m.engine.readyState, "open");

      // The last namespace leaving closes the engine on the client side: the server sees the namespace disconnect
      // first (DISCONNECT packet), not the transport close.
      const o2 = await observer(env, "/custom");
      const customId = custom.id;
      custom.disconnect();
      assert.equal((await custom.w.next("disconnect"))[0], "io client disconnect");
      await expectReported(o2, customId, "client namespace disconnect");
    });

    it(`server disconnect(true) is "io server disconnect" over ${tr.label}`, T, async (t) => {
      const env = await setup(t);
      const o = await observer(env);
      const s = env.client("/", tr.opts);
      await ready(s, tr);
      const id = s.id;
      s.emit("disconnect-me", true);
      assert.equal((await s.w.next("disconnect"))[0], "io server disconnect");
      await expectReported(o, id, "server namespace disconnect");
      assert.equal(s.active, false);
      await engineClosed(s.io);
    });

    it(`server disconnect(true) disconnects every namespace and closes the connection over ${tr.label}`, T, async (t) => {
      const env = await setup(t);
      const o = await observer(env);
      const o2 = await observer(env, "/custom");
      const m = env.manager(tr.opts);
      const root = watched(m.socket("/"));
      const custom = watched(m.socket("/custom"));
      await ready(root, tr);
      await connected(custom);
      const [id, customId] = [root.id, custom.id];

      root.emit("disconnect-me", true);
      assert.equal((await root.w.next("disconnect"))[0], "io server disconnect");
      await expectReported(o, id, "server namespace disconnect");
      // Like the reference server (client._disconnect()), every namespace of the connection gets a DISCONNECT.
      assert.equal((await custom.w.next("disconnect"))[0], "io server disconnect", "/custom on the same connection");
      await expectReported(o2, customId, "server namespace disconnect");
      assert.equal(root.active, false);
      assert.equal(custom.active, false);
      await engineClosed(m);
    });

    it(`closing the engine is "transport close" on the server over ${tr.label}`, T, async (t) => {
      const env = await setup(t);
      const o = await observer(env);
      const s = env.client("/", tr.opts);
      await ready(s, tr);
      const id = s.id;
      s.io.engine.close();
      assert.equal((await s.w.next("disconnect"))[0], "forced close", "client-side reason for engine.close()");
      await expectReported(o, id, "transport close");
      assert.deepEqual(await ackOf(o, 2000, "fetch-sockets"), [[o.id]]);
    });
  }

  it("disconnect-me over a raw websocket: false sends 41 and keeps the connection, true sends 41 then closes", T, async (t) => {
    const env = await setup(t);
    const ws = new WebSocket(`${env.url.replace(/^http/, "ws")}/socket.io/?EIO=4&transport=websocket`);
    t.after(() => ws.terminate());
    const frames = [];
    let notify = () => {};
    ws.on("message", (data, isBinary) => {
      frames.push(isBinary ? data : data.toString());
      notify();
    });
    const closed = new Promise((resolve) => ws.on("close", (code) => resolve({ code, at: Date.now() })));
    const nextFrame = async (what) => {
      const deadline = Date.now() + 2000;
      while (!frames.length) {
        if (Date.now() > deadline) throw new Error(`no frame for ${what}`);
        await within(deadline - Date.now() + 10, new Promise((r) => (notify = r)), what).catch(() => {});
      }
      return frames.shift();
    };
    assert.match(await nextFrame("open"), /^0\{/);
    ws.send("40");
    assert.match(await nextFrame("connect"), /^40\{"sid":"[A-Za-z0-9_-]{20}"\}$/);
    assert.equal(await nextFrame("auth"), '42["auth",{}]');

    ws.send('42["disconnect-me",false]');
    assert.equal(await nextFrame("disconnect"), "41");
    ws.send("40");
    assert.match(await nextFrame("reconnect to /"), /^40\{"sid":"[A-Za-z0-9_-]{20}"\}$/, "the connection stays usable");
    assert.equal(await nextFrame("auth"), '42["auth",{}]');

    ws.send('42["disconnect-me",true]');
    assert.equal(await nextFrame("disconnect"), "41");
    const { code } = await within(2000, closed, "the websocket close after disconnect(true)");
    assert.ok(code === 1000 || code === 1005 || code === 1006, `close code ${code}`);
    // Nothing after the DISCONNECT packet but, perhaps, an Engine.IO close packet.
    assert.ok(frames.length === 0 || (frames.length === 1 && frames[0] === "1"), `frames after 41: ${show(frames)}`);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// 10. to 12. Catch-all listeners, per-packet middleware, socket data

describe("10. catch-all listeners", () => {
  it("counts incoming and outgoing events exactly", T, async (t) => {
    const env = await setup(t);
    const s = env.client("/", WS.opts);
    await connected(s);
    for (let i = 0; i < 3; i++) s.emit("message", i);
    assert.deepEqual(await s.w.take("message-back", 3), [[0], [1], [2]]);
    // Incoming: the 3 messages and any-counts itself (onAny runs before the handler). Outgoing: the 3
    // message-back; "auth" is emitted by the connection handler before the listeners are registered, and acks are
    // not events.
    assert.deepEqual(await ackOf(s, 2000, "any-counts"), [{ incoming: 4, outgoing: 3 }]);
    assert.deepEqual(await ackOf(s, 2000, "any-counts"), [{ incoming: 5, outgoing: 3 }]);
  });
});

describe("11. per-packet middleware", () => {
  it("refuses the forbidden event with middleware-error and keeps the socket", T, async (t) => {
    const env = await setup(t);
    const s = env.client("/", WS.opts);
    await connected(s);
    s.emit("forbidden", 1, 2);
    assert.deepEqual(await s.w.next("middleware-error"), ["forbidden event"]);
    s.emit("message", "after");
    assert.deepEqual(await s.w.next("message-back"), ["after"]);
    assert.equal(s.connected, true);
    assert.equal(s.w.count("middleware-error"), 1);
  });
});

describe("12. socket data", () => {
  it("stores per-socket data", T, async (t) => {
    const env = await setup(t);
    const s = env.client("/", WS.opts);
    const other = env.client("/", WS.opts);
    await Promise.all([connected(s), connected(other)]);
    assert.deepEqual(await ackOf(s, 2000, "set-data", { a: 1 }), []);
    assert.deepEqual(await ackOf(s, 2000, "fetch-sockets"), [[s.id, other.id].sort()]);
    assert.deepEqual(await ackOf(s, 2000, "get-data"), [{ a: 1 }]);
    assert.deepEqual(await ackOf(s, 2000, "set-data", { b: [1, "x", null] }), []);
    assert.deepEqual(await ackOf(s, 2000, "get-data"), [{ b: [1, "x", null] }]);
    const [otherData] = await ackOf(other, 2000, "get-data");
    assert.notDeepEqual(otherData, { b: [1, "x", null] }, "data is per socket");
  });
});

// ---------------------------------------------------------------------------------------------------------------
// 13. Connection state recovery

/**
 * Connects a websocket client that reconnects 1 s after a loss, records its CONNECT packets, joins r1, sets data,
 * then closes its engine; meanwhile another client emits 3 `all` events. Returns what the test checks.
 */
async function loseAndReconnect(env, recovery) {
  const o = await observer(env);
  const s = env.client("/", { ...WS.opts, reconnection: true, reconnectionDelay: 1000, randomizationFactor: 0 });
  const connectPackets = [];
  s.io.on("packet", (p) => {
    if (p.type === 0 && p.nsp === "/") connectPackets.push(p.data);
  });
  await s.w.next("connect", 3000);
  const first = { id: s.id, recovered: s.recovered };
  await join(s, "r1", [s.id, "r1"]);
  assert.deepEqual(await ackOf(s, 2000, "set-data", { k: "v" }), []);

  s.io.engine.close();
  assert.equal((await s.w.next("disconnect"))[0], "forced close");
  await expectReported(o, first.id, "transport close", recovery);
  for (let i = 1; i <= 3; i++) o.emit("emit-all", "x", i);
  const seenByObserver = await o.w.take("all", 3);
  const emittedAt = Date.now();

  await s.w.next("connect", 3000, "the automatic reconnection");
  assert.ok(
    s.w.events.filter((e) => e.name === "connect")[1].at >= emittedAt,
    "test timing: the client reconnected before the missed events were emitted",
  );
  return { o, s, first, connectPackets, seenByObserver };
}

describe("13. connection state recovery", () => {
  it("with --recovery: same id, recovered, missed events, rooms and data restored", T, async (t) => {
    const env = await setup(t, ["--recovery"]);
    const { o, s, first, connectPackets, seenByObserver } = await loseAndReconnect(env, true);

    assert.equal(first.recovered, false, "socket.recovered on the first connection");
    assert.equal(connectPackets.length, 2);
    assert.equal(connectPackets[0].sid, first.id);
    assert.equal(typeof connectPackets[0].pid, "string", `first CONNECT ${show(connectPackets[0])} carries a pid`);
    assert.ok(connectPackets[0].pid.length > 0);
    assert.deepEqual(connectPackets[1], connectPackets[0], "the recovered CONNECT repeats sid and pid");

    assert.equal(s.recovered, true, "socket.recovered after the reconnection");
    assert.equal(s.id, first.id, "same socket.id after recovery");
    // Every event carries its offset as a last string argument when recovery is on.
    for (const [i, args] of seenByObserver.entries()) {
      assert.equal(args.length, 3, `observer's all #${i + 1}: ${show(args)}`);
      assert.deepEqual(args.slice(0, 2), ["x", i + 1]);
      assert.equal(typeof args[2], "string");
    }
    assert.deepEqual(s.w.all("all"), seenByObserver, "the missed events, with the same offsets, once each");

    await barrier(o, [o, s]);
    assert.equal(s.w.all("all").filter((a) => a[0] === "x").length, 3, "no duplicate after the barrier");
    assert.deepEqual(await join(s, "r9"), [s.id, "r1", "r9"].sort(), "rooms restored");
    assert.deepEqual(await ackOf(s, 2000, "get-data"), [{ k: "v" }], "data restored");
    o.emit("to-room", "r1", "to r1");
    assert.equal((await s.w.next("room-message"))[0], "to r1");
  });

  it("without --recovery: new id, not recovered, missed events lost", T, async (t) => {
    const env = await setup(t);
    const { o, s, first, connectPackets, seenByObserver } = await loseAndReconnect(env, false);

    // socket.io-client sets `recovered = pid && ...`: undefined without a pid.
    assert.equal(first.recovered, undefined);
    assert.deepEqual(seenByObserver, [["x", 1], ["x", 2], ["x", 3]], "no offsets without recovery");
    assert.equal(connectPackets.length, 2);
    assert.deepEqual(Object.keys(connectPackets[0]), ["sid"], `first CONNECT ${show(connectPackets[0])}`);
    assert.deepEqual(Object.keys(connectPackets[1]), ["sid"]);
    assert.equal(s.recovered, undefined);
    assert.match(s.id, ID);
    assert.notEqual(s.id, first.id, "a new socket.id");
    await barrier(o, [o, s]);
    assert.deepEqual(s.w.all("all").filter((a) => a[0] === "x"), [], "missed events are not replayed");
    assert.deepEqual(await join(s, "r9"), [s.id, "r9"].sort(), "rooms not restored");
  });
});

// ---------------------------------------------------------------------------------------------------------------
// 14. msgpack parser

describe("14. msgpack parser", () => {
  // socket.io-client sends CONNECT as {type: 0, data: this.auth, nsp}: without `auth`, notepack.io encodes the
  // undefined `data` as the fixext 1 (type 0) value d4 00 00, which the reference decoder reads as undefined.
  for (const tr of [WS, TRANSPORTS[0]]) {
    it(`connects without auth (CONNECT data = msgpack undefined) over ${tr.label}`, T, async (t) => {
      const env = await setup(t, ["--msgpack"]);
      const s = env.client("/", { ...tr.opts, parser: msgpackParser });
      await connected(s);
      assert.match(s.id, ID);
      assert.deepEqual(await s.w.next("auth"), [{}]);
    });
  }

  for (const tr of TRANSPORTS) {
    it(`connects with auth, echoes binary and acks with socket.io-msgpack-parser over ${tr.label}`, T, async (t) => {
      const env = await setup(t, ["--msgpack"]);
      const s = env.client("/", { ...tr.opts, parser: msgpackParser, auth: { token: "root" } });
      s.on("ask", (arg, cb) => cb("pong", Buffer.from([7])));
      await ready(s, tr);
      assert.match(s.id, ID);
      assert.deepEqual(await s.w.next("auth"), [{ token: "root" }]);

      s.emit("message", ...MIXED_ARGS());
      assert.deepEqual(await s.w.next("message-back"), MIXED_ARGS());
      assert.deepEqual(await ackOf(s, 2000, "message-with-ack", 1, { a: Buffer.from([9]) }), [1, { a: Buffer.from([9]) }]);
      s.emit("request-ack", 500, "hello");
      assert.deepEqual(await s.w.next("ask"), ["hello"]);
      assert.deepEqual(await s.w.next("ack-result"), [{ ok: ["pong", [7]] }]);

      const custom = watched(s.io.socket("/custom", { auth: { token: "abc" } }));
      await connected(custom);
      assert.deepEqual(await custom.w.next("auth"), [{ token: "abc" }]);
      const refused = watched(s.io.socket("/private", { auth: { token: "wrong" } }));
      const [err] = await refused.w.next("connect_error");
      assert.equal(err.message, "not authorized");
      assert.deepEqual(err.data, { code: 401 });
      const nope = watched(s.io.socket("/nope", { auth: {} }));
      assert.equal((await nope.w.next("connect_error"))[0].message, "Invalid namespace");
      s.emit("message", "still connected");
      assert.deepEqual(await s.w.next("message-back"), ["still connected"]);
    });
  }
});

// ---------------------------------------------------------------------------------------------------------------
// 15. Connect timeout

describe("15. connect timeout", () => {
  const base = (url) => `${url}/socket.io/?EIO=4&transport=polling`;

  it("closes a polling connection that never sends CONNECT after --connect-timeout", T, async (t) => {
    const env = await setup(t, ["--connect-timeout", "300"]);
    const start = Date.now();
    const res = await within(2000, fetch(base(env.url)), "the handshake");
    const body = await res.text();
    assert.equal(res.status, 200, body);
    assert.equal(body[0], "0", body);
    const { sid } = JSON.parse(body.slice(1));

    const ac = new AbortController();
    t.after(() => ac.abort());
    const poll = await within(2000, fetch(`${base(env.url)}&sid=${sid}`, { signal: ac.signal }), "the pending GET");
    const pollBody = await poll.text();
    const elapsed = Date.now() - start;
    assert.equal(poll.status, 200);
    assert.equal(pollBody, "1", "the pending GET receives the close packet");
    assert.ok(elapsed >= 280, `closed ${elapsed} ms after the handshake, expected ≥ 300 ms`);
    assert.ok(elapsed < 1500, `closed ${elapsed} ms after the handshake, expected about 300 ms`);

    const after = await within(2000, fetch(`${base(env.url)}&sid=${sid}`), "the GET after the close");
    assert.equal(after.status, 400);
    assert.deepEqual(await after.json(), { code: 1, message: "Session ID unknown" });
  });

  it("closes a websocket engine.io-client connection that never sends CONNECT", T, async (t) => {
    const env = await setup(t, ["--connect-timeout", "300"]);
    const engine = new EngineSocket(env.url, { path: "/socket.io/", transports: ["websocket"] });
    t.after(() => engine.close());
    const start = Date.now();
    const closed = new Promise((resolve) => engine.on("close", (reason) => resolve({ reason, at: Date.now() })));
    await within(2000, new Promise((resolve) => engine.on("open", resolve)), "engine open");
    const { reason, at } = await within(2000, closed, "the engine close");
    assert.equal(reason, "transport close");
    assert.ok(at - start >= 280, `closed after ${at - start} ms`);
    assert.ok(at - start < 1500, `closed after ${at - start} ms`);
  });

  it("keeps a connection that sent CONNECT in time", T, async (t) => {
    const env = await setup(t, ["--connect-timeout", "300"]);
    const s = env.client("/", { transports: ["polling"] });
    await connected(s);
    await sleep(700);
    assert.equal(s.connected, true);
    assert.equal(s.w.count("disconnect"), 0);
    s.emit("message", "alive");
    assert.deepEqual(await s.w.next("message-back"), ["alive"]);
  });
});
