// The sans-IO crates in another runtime: blocking-server (examples/blocking-server/src/main.rs) is a Socket.IO server
// on std threads built only on engineio-proto and socketio-proto (the endpoint, the Engine.IO session and the
// Socket.IO connection state machine). The npm socket.io-client must connect to it, upgrade, and exchange events
// with binary attachments and acks both ways (with the server's ack timeout), join and leave namespaces, be
// refused with data, and a connection that joins nothing must be closed at the connect timeout: over polling,
// WebSocket and the upgrade.

import assert from "node:assert/strict";
import path from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";

import { Socket as EngineSocket } from "engine.io-client";
import { io } from "socket.io-client";

import { startBinary } from "./lib/server.mjs";

const BIN =
  process.env.BLOCKING_SERVER_BIN ||
  path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../target/debug/blocking-server");
const T = { timeout: 8000 };

function within(ms, promise, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function server(t, flags = []) {
  const srv = await startBinary(BIN, ["--port", "0", ...flags], "blocking-server", "BLOCKING_SERVER_BIN");
  t.after(() => srv.stop());
  return srv;
}

async function client(t, opts, nsp = "", srv = null) {
  srv = srv || (await server(t));
  const socket = io(srv.url + nsp, { forceNew: true, reconnection: false, ...opts });
  t.after(() => socket.disconnect());
  await within(4000, new Promise((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("connect_error", reject);
  }), "connect");
  return socket;
}

async function roundTrips(socket) {
  const bin = Buffer.from([0, 1, 2, 254, 255]);
  const back = new Promise((resolve) => socket.once("message-back", (...args) => resolve(args)));
  socket.emit("message", 1, "two", bin, { nested: { b: Buffer.from([9]) } });
  const args = await within(3000, back, "message-back");
  assert.equal(args[0], 1);
  assert.equal(args[1], "two");
  assert.ok(Buffer.from(args[2]).equals(bin), "binary attachment intact");
  assert.ok(Buffer.from(args[3].nested.b).equals(Buffer.from([9])), "nested binary intact");
  const acked = await within(3000, socket.timeout(2000).emitWithAck("anything", "x", Buffer.from([7])), "the ack");
  assert.equal(acked, "x");
}

describe("blocking-server: the proto crates on std threads", () => {
  it("polling then upgrade to WebSocket, events with binary and acks", T, async (t) => {
    const socket = await client(t, {});
    if (socket.io.engine.transport.name !== "websocket") {
      await within(4000, new Promise((r) => socket.io.engine.once("upgrade", r)), "the upgrade");
    }
    assert.equal(socket.io.engine.transport.name, "websocket");
    await roundTrips(socket);
  });

  it("long-polling only", T, async (t) => {
    const socket = await client(t, { transports: ["polling"] });
    assert.equal(socket.io.engine.transport.name, "polling");
    await roundTrips(socket);
  });

  it("WebSocket only", T, async (t) => {
    const socket = await client(t, { transports: ["websocket"] });
    await roundTrips(socket);
  });

  it("an unknown namespace is refused", T, async (t) => {
    const srv = await server(t);
    const socket = io(srv.url + "/nope", { forceNew: true, reconnection: false });
    t.after(() => socket.disconnect());
    const err = await within(3000, new Promise((resolve) => socket.once("connect_error", resolve)), "connect_error");
    assert.equal(err.message, "Invalid namespace");
  });

  for (const transports of [["polling"], ["websocket"], ["polling", "websocket"]]) {
    const name = transports.join(" then ");

    it(`two namespaces on one connection, refusal with data, leave (${name})`, T, async (t) => {
      const srv = await server(t);
      const main = await client(t, { transports }, "", srv);
      // A second namespace on the same Manager: the same Engine.IO connection.
      const chat = main.io.socket("/chat");
      t.after(() => chat.disconnect());
      chat.connect();
      await within(3000, new Promise((r) => chat.once("connect", r)), "/chat connect");
      assert.notEqual(chat.id, main.id);
      const back = new Promise((r) => chat.once("message-back", (...args) => r(args)));
      chat.emit("message", "in chat", Buffer.from([5]));
      const args = await within(3000, back, "message-back on /chat");
      assert.equal(args[0], "in chat");
      assert.ok(Buffer.from(args[1]).equals(Buffer.from([5])));
      // A refused CONNECT carries the server's message and data.
      const other = io(srv.url + "/chat", { forceNew: true, reconnection: false, transports, auth: { refuse: true } });
      t.after(() => other.disconnect());
      const err = await within(3000, new Promise((r) => other.once("connect_error", r)), "connect_error");
      assert.equal(err.message, "refused");
      assert.deepEqual(err.data, { reason: "asked" });
      // The server disconnects /chat: the client hears "io server disconnect", / stays.
      const left = new Promise((r) => chat.once("disconnect", r));
      chat.emit("leave");
      assert.equal(await within(3000, left, "the server's disconnect"), "io server disconnect");
      const stillThere = new Promise((r) => main.once("message-back", (...a) => r(a)));
      main.emit("message", "still here");
      assert.deepEqual(await within(3000, stillThere, "/ after /chat left"), ["still here"]);
    });

    it(`the server's acks: answered in time, or timed out (${name})`, T, async (t) => {
      const socket = await client(t, { transports });
      // The client answers the server's question: the server reports the answer.
      socket.once("question", (q, ack) => ack(`answer to ${q}`, Buffer.from([1, 2])));
      const answered = new Promise((r) => socket.once("answered", (...a) => r(a)));
      socket.emit("ask", "q1");
      const [text, bin] = await within(3000, answered, "answered");
      assert.equal(text, "answer to q1");
      assert.ok(Buffer.from(bin).equals(Buffer.from([1, 2])));
      // No answer: the server's 500 ms timeout fires.
      socket.once("question", () => {});
      const timedOut = new Promise((r) => socket.once("ask-timeout", r));
      const asked = Date.now();
      socket.emit("ask", "q2");
      await within(3000, timedOut, "ask-timeout");
      assert.ok(Date.now() - asked >= 450, "not before the timeout");
    });
  }

  it("a connection that joins no namespace is closed at the connect timeout", T, async (t) => {
    const srv = await server(t, ["--connect-timeout", "300"]);
    for (const transports of [["polling"], ["websocket"]]) {
      // An Engine.IO connection that never sends a Socket.IO CONNECT.
      const eio = new EngineSocket(srv.url, { path: "/socket.io/", transports });
      t.after(() => eio.close());
      await within(3000, new Promise((r) => eio.once("open", r)), "open");
      const opened = Date.now();
      const reason = await within(3000, new Promise((r) => eio.once("close", r)), "the close");
      const waited = Date.now() - opened;
      assert.ok(waited >= 250 && waited < 2500, `closed after ${waited} ms (${transports})`);
      assert.ok(reason === "transport close" || reason === "transport error", `${reason}`);
    }
  });
});
