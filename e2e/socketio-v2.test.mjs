// Socket.IO 2 clients (`allow_eio3`): the npm socket.io-client 2 (Engine.IO v3, Socket.IO protocol 4) against the Rust
// test server (e2e/testserver/src/main.rs, started with --allow-eio3), alone and in the same rooms as socket.io-client
// 4 clients: connect on each transport, events with binary, acks both ways, namespaces with a query (the v2 auth),
// middleware and namespace refusals (the v2 `error` event), broadcasts across versions, server disconnects.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import ioV2 from "socket.io-client-v2";
import { io as ioV4 } from "socket.io-client";

import { startTestServer } from "./lib/server.mjs";
import { nextEvent, within } from "./lib/util.mjs";

const T = { timeout: 8000 };

const TRANSPORTS = [
  { label: "polling", opts: { transports: ["polling"] }, final: "polling" },
  { label: "websocket", opts: { transports: ["websocket"] }, final: "websocket" },
  { label: "polling then upgrade", opts: {}, final: "websocket" },
];

/** Starts the test server with --allow-eio3; clients made through `v2`/`v4` are closed before it stops. */
async function setup(t, args = ["--allow-eio3"]) {
  const srv = await startTestServer(args);
  const sockets = [];
  t.after(async () => {
    for (const s of sockets) s.close();
    await srv.stop();
  });
  return {
    srv,
    /** A socket.io-client 2 socket on `nsp` (its own connection, no reconnection). */
    v2(nsp = "/", opts = {}) {
      const s = ioV2(srv.url + nsp, { forceNew: true, reconnection: false, ...opts });
      sockets.push(s);
      return s;
    },
    v4(nsp = "/", opts = {}) {
      const s = ioV4(srv.url + nsp, { forceNew: true, reconnection: false, ...opts });
      sockets.push(s);
      return s;
    },
  };
}

const once = (socket, event, what) => nextEvent(socket, event, 3000, what ?? `"${event}" on ${socket.nsp}`);

/** Emits with an ack and resolves with the ack's arguments. */
function ask(socket, event, ...args) {
  return within(3000, new Promise((resolve) => socket.emit(event, ...args, (...a) => resolve(a))), `the ack of ${event}`);
}

const asBuffer = (data) => (Buffer.isBuffer(data) ? Buffer.from(data) : Buffer.from(new Uint8Array(data)));

describe("Socket.IO 2 clients (allow_eio3)", () => {
  for (const { label, opts, final } of TRANSPORTS) {
    it(`connect over ${label}: id, events with binary, acks both ways`, T, async (t) => {
      const env = await setup(t);
      const s = env.v2("/", opts);
      const auth = once(s, "auth");
      await once(s, "connect");
      // The main namespace is joined without a CONNECT from the client; its socket id is the engine's id.
      assert.equal(s.id, s.io.engine.id);
      assert.deepEqual((await auth)[0], {});
      if (final === "websocket" && s.io.engine.transport.name !== "websocket") await once(s.io.engine, "upgrade");
      assert.equal(s.io.engine.transport.name, final);

      const back = once(s, "message-back");
      s.emit("message", "h\u00e9llo", 42, { nested: [Buffer.from([1, 2, 3])] }, Buffer.from([255, 0]));
      const [text, n, obj, bin] = await back;
      assert.equal(text, "h\u00e9llo");
      assert.equal(n, 42);
      assert.deepEqual(asBuffer(obj.nested[0]), Buffer.from([1, 2, 3]));
      assert.deepEqual(asBuffer(bin), Buffer.from([255, 0]));

      const acked = await ask(s, "message-with-ack", "a", Buffer.from([7]));
      assert.equal(acked[0], "a");
      assert.deepEqual(asBuffer(acked[1]), Buffer.from([7]));

      // The server asks the client with an ack, and gets its answer.
      s.on("ask", (...args) => args.pop()("answer", ...args));
      const result = once(s, "ack-result");
      s.emit("request-ack", 2000, "q", 1);
      assert.deepEqual((await result)[0], { ok: ["answer", "q", 1] });

      const ids = await ask(s, "fetch-sockets");
      assert.ok(ids[0].includes(s.id), `${JSON.stringify(ids[0])} has ${s.id}`);
    });
  }

  it("a namespace's query is its auth; middleware and unknown namespaces refuse with the error event", T, async (t) => {
    const env = await setup(t);
    const custom = env.v2("/custom?token=abc&x=a%20b");
    const auth = once(custom, "auth");
    await once(custom, "connect");
    assert.deepEqual((await auth)[0], { token: "abc", x: "a b" });
    assert.equal(custom.id, `/custom#${custom.io.engine.id}`);

    const refused = env.v2("/private");
    const [error] = await once(refused, "error");
    assert.deepEqual(error, { code: 401 }, "the data of the middleware's error, alone");
    assert.equal(refused.connected, false);

    const allowed = env.v2("/private?token=secret");
    await once(allowed, "connect");

    const unknown = env.v2("/nope");
    const [invalid] = await once(unknown, "error");
    assert.deepEqual(invalid, { message: "Invalid namespace" });
  });

  it("v2 and v4 clients in one room reach each other, with binary, on both transports", T, async (t) => {
    const env = await setup(t);
    const old = env.v2("/", { transports: ["polling"] });
    const oldWs = env.v2("/", { transports: ["websocket"] });
    const cur = env.v4("/");
    await Promise.all([once(old, "connect"), once(oldWs, "connect"), once(cur, "connect")]);
    for (const s of [old, oldWs, cur]) {
      const [rooms] = await ask(s, "join", "mixed");
      assert.ok(rooms.includes("mixed"));
    }
    let got = [old, oldWs, cur].map((s) => once(s, "room-message"));
    cur.emit("to-room", "mixed", "from v4", Buffer.from([4]));
    for (const [text, bin] of await Promise.all(got)) {
      assert.equal(text, "from v4");
      assert.deepEqual(asBuffer(bin), Buffer.from([4]));
    }
    got = [old, oldWs, cur].map((s) => once(s, "room-message"));
    old.emit("to-room", "mixed", "from v2", Buffer.from([2]));
    for (const [text, bin] of await Promise.all(got)) {
      assert.equal(text, "from v2");
      assert.deepEqual(asBuffer(bin), Buffer.from([2]));
    }
    // A broadcast from a v2 client reaches the others but not itself.
    const others = [oldWs, cur].map((s) => once(s, "broadcast"));
    let self = false;
    old.on("broadcast", () => (self = true));
    old.emit("broadcast", "all but me");
    for (const [text] of await Promise.all(others)) assert.equal(text, "all but me");
    await ask(old, "join", "sync");
    assert.equal(self, false);
    // A server-side emit with acks to the room collects the v2 clients' answers too.
    for (const s of [old, oldWs, cur]) s.on("question", (ack) => ack(s === cur ? "v4" : "v2"));
    const [answers] = await ask(cur, "broadcast-with-ack", "mixed", 2000);
    assert.deepEqual(answers.responses.map((r) => r[0]).sort(), ["v2", "v2", "v4"]);
  });

  it("server disconnects and client disconnects", T, async (t) => {
    const env = await setup(t);
    const s = env.v2("/");
    await once(s, "connect");
    const gone = once(s, "disconnect");
    s.emit("disconnect-me");
    assert.equal((await gone)[0], "io server disconnect");

    // The test server reports every disconnect of a namespace to its room "observers".
    const observer = env.v4("/custom");
    await once(observer, "connect");
    await ask(observer, "join", "observers");
    const c = env.v2("/custom");
    await once(c, "connect");
    const id = c.id;
    const seen = once(observer, "disconnected");
    c.close();
    assert.deepEqual(await seen, [id, "client namespace disconnect"]);
  });

  it("without allow_eio3, a v2 client cannot connect", T, async (t) => {
    const env = await setup(t, []);
    const s = env.v2("/", { transports: ["polling"] });
    const [err] = await once(s, "connect_error");
    assert.match(String(err && (err.message ?? err)), /xhr poll error/);
  });
});
