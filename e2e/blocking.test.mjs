// The sans-IO crates in another runtime: blocking-server (examples/blocking-server/src/main.rs) is a Socket.IO server
// on std threads built only on engineio-proto and socketio-proto. The npm socket.io-client must connect to it,
// upgrade, and exchange events with binary attachments and acks, as with any server.

import assert from "node:assert/strict";
import path from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";

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

async function client(t, opts) {
  const srv = await startBinary(BIN, ["--port", "0"], "blocking-server", "BLOCKING_SERVER_BIN");
  t.after(() => srv.stop());
  const socket = io(srv.url, { forceNew: true, reconnection: false, ...opts });
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
    const srv = await startBinary(BIN, ["--port", "0"], "blocking-server", "BLOCKING_SERVER_BIN");
    t.after(() => srv.stop());
    const socket = io(srv.url + "/nope", { forceNew: true, reconnection: false });
    t.after(() => socket.disconnect());
    const err = await within(3000, new Promise((resolve) => socket.once("connect_error", resolve)), "connect_error");
    assert.equal(err.message, "Invalid namespace");
  });
});
