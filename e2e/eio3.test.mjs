// Engine.IO v3 (`allow_eio3`): the Rust echo server (engineio-server/examples/echo.rs) with its v3 clients, the npm
// engine.io-client 3 (the engine of socket.io-client 2) on both transports and the upgrade, and raw v3 requests for
// what a client library hides (payload framing, binary payloads and their content type, the heartbeat's direction).

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import eioV3 from "engine.io-client-v3";

import { startServer } from "./lib/server.mjs";
import { nextEvent, sleep, within } from "./lib/util.mjs";

const T = { timeout: 8000 };

/** The URL of a raw v3 request (EIO=3) to the echo server's endpoint. */
function v3url(base, query) {
  return `${base}/engine.io/?${new URLSearchParams({ EIO: "3", ...query })}`;
}

/** Splits a v3 text payload (`<length>:<packet>`…, lengths in UTF-16 code units, as JavaScript counts them). */
function splitV3(body) {
  const packets = [];
  let i = 0;
  while (i < body.length) {
    const colon = body.indexOf(":", i);
    assert.ok(colon > i, `a length at ${i} of ${JSON.stringify(body)}`);
    const n = Number(body.slice(i, colon));
    packets.push(body.slice(colon + 1, colon + 1 + n));
    i = colon + 1 + n;
  }
  return packets;
}

/** Splits a v3 binary payload into [{text}|{binary}] entries. */
function splitBinaryV3(buf) {
  const out = [];
  let i = 0;
  while (i < buf.length) {
    const isText = buf[i] === 0;
    i += 1;
    let digits = "";
    while (buf[i] !== 0xff) digits += String(buf[i++]);
    i += 1;
    const n = Number(digits);
    const body = buf.subarray(i, i + n);
    out.push(isText ? { text: body.toString("utf8") } : { binary: Buffer.from(body) });
    i += n;
  }
  return out;
}

/** A v3 polling handshake: {sid, open, res}. */
async function handshakeV3(base, query = {}) {
  const res = await within(2000, fetch(v3url(base, { transport: "polling", ...query })), "the v3 handshake");
  const body = await res.text();
  assert.equal(res.status, 200, body);
  const [first] = splitV3(body);
  assert.equal(first[0], "0");
  const open = JSON.parse(first.slice(1));
  return { sid: open.sid, open, res };
}

async function get(base, sid, query = {}) {
  const res = await within(3000, fetch(v3url(base, { transport: "polling", sid, ...query })), "a v3 long-poll");
  return { res, body: Buffer.from(await res.arrayBuffer()) };
}

async function post(base, sid, body, contentType = "text/plain;charset=UTF-8") {
  const res = await fetch(v3url(base, { transport: "polling", sid }), {
    method: "POST",
    body,
    headers: { "content-type": contentType },
  });
  return { status: res.status, text: await res.text() };
}

/** An engine.io-client 3 socket whose messages are queued for `next()`; closed by t.after. */
function v3client(t, url, opts) {
  const socket = eioV3(url, opts);
  const queue = [];
  const waiters = [];
  const counts = { pong: 0 };
  socket.on("message", (data) => {
    const w = waiters.shift();
    if (w) w(data);
    else queue.push(data);
  });
  socket.on("pong", () => (counts.pong += 1));
  t.after(() => socket.close());
  return {
    socket,
    counts,
    opened: nextEvent(socket, "open", 3000),
    next: () =>
      within(
        2000,
        new Promise((resolve) => (queue.length ? resolve(queue.shift()) : waiters.push(resolve))),
        "an echoed message",
      ),
  };
}

const asBuffer = (data) => (Buffer.isBuffer(data) ? Buffer.from(data) : Buffer.from(new Uint8Array(data)));

describe("Engine.IO v3 clients (allow_eio3)", () => {
  it("are refused with code 5 unless allow_eio3 is on", T, async (t) => {
    const off = await startServer();
    t.after(() => off.stop());
    const res = await fetch(v3url(off.url, { transport: "polling" }));
    assert.equal(res.status, 400);
    assert.deepEqual(await res.json(), { code: 5, message: "Unsupported protocol version" });

    const on = await startServer(["--allow-eio3"]);
    t.after(() => on.stop());
    const { open, res: ok } = await handshakeV3(on.url);
    assert.equal(ok.headers.get("content-type"), "text/plain; charset=UTF-8");
    assert.deepEqual(open.upgrades, ["websocket"]);
    assert.equal(open.pingInterval, 25000);
    assert.equal(open.pingTimeout, 20000);
    // A v4 request on the v3 session is a protocol mismatch (code 3), as from the reference.
    const mismatch = await fetch(`${on.url}/engine.io/?EIO=4&transport=polling&sid=${open.sid}`);
    assert.equal(mismatch.status, 400);
    assert.equal((await mismatch.json()).code, 3);
  });

  it("polling: length-prefixed text payloads, b4 base64 or binary payloads as the client asked", T, async (t) => {
    const srv = await startServer(["--allow-eio3"]);
    t.after(() => srv.stop());

    // A client with binary support (no b64).
    const { sid } = await handshakeV3(srv.url);
    assert.deepEqual(await post(srv.url, sid, "6:4hello6:4h\u00e9\u{1F600}!"), { status: 200, text: "ok" });
    let { res, body } = await get(srv.url, sid);
    assert.equal(res.headers.get("content-type"), "text/plain; charset=UTF-8");
    // The echo comes back in one payload, the length of the second counting the emoji as two units.
    assert.equal(body.toString("utf8"), "6:4hello6:4h\u00e9\u{1F600}!");
    assert.deepEqual(await post(srv.url, sid, "9:4binary:3"), { status: 200, text: "ok" });
    ({ res, body } = await get(srv.url, sid));
    assert.equal(res.headers.get("content-type"), "application/octet-stream");
    assert.deepEqual(splitBinaryV3(body), [{ binary: Buffer.from([4, 0, 1, 2]) }]);
    // A binary payload POSTed, as browsers and python-engineio 3 send them: a text and a binary packet.
    const payload = Buffer.concat([
      Buffer.from([0, 3, 0xff]),
      Buffer.from("4hi"),
      Buffer.from([1, 4, 0xff, 4, 9, 8, 7]),
    ]);
    assert.deepEqual(await post(srv.url, sid, payload, "application/octet-stream"), { status: 200, text: "ok" });
    ({ res, body } = await get(srv.url, sid));
    assert.equal(res.headers.get("content-type"), "application/octet-stream");
    assert.deepEqual(splitBinaryV3(body), [{ text: "4hi" }, { binary: Buffer.from([4, 9, 8, 7]) }]);

    // A client without binary support (b64=1, as engine.io-client 3 in Node): binary as b4 + base64 in text.
    const b64 = await handshakeV3(srv.url, { b64: "1" });
    await post(srv.url, b64.sid, "9:4binary:3");
    ({ res, body } = await get(srv.url, b64.sid, { b64: "1" }));
    assert.equal(res.headers.get("content-type"), "text/plain; charset=UTF-8");
    assert.deepEqual(splitV3(body.toString("utf8")), ["b4AAEC"]);
  });

  it("the client pings and the server answers; a client that stops pinging is closed", T, async (t) => {
    const srv = await startServer(["--allow-eio3", "--ping-interval", "300", "--ping-timeout", "200"]);
    t.after(() => srv.stop());
    const { sid, open } = await handshakeV3(srv.url);
    assert.equal(open.pingInterval, 300);
    assert.deepEqual(await post(srv.url, sid, "1:2"), { status: 200, text: "ok" });
    const { body } = await get(srv.url, sid);
    assert.deepEqual(splitV3(body.toString("utf8")), ["3"]);
    // No ping from the server, and none from us: the session ends pingInterval + pingTimeout after the last ping.
    const started = Date.now();
    const pending = await get(srv.url, sid);
    const waited = Date.now() - started;
    assert.deepEqual(splitV3(pending.body.toString("utf8")), ["1"], "the pending GET gets the close packet");
    assert.ok(waited >= 350 && waited < 2000, `closed after ${waited} ms`);
    const after = await fetch(v3url(srv.url, { transport: "polling", sid }));
    assert.equal(after.status, 400);
    assert.equal((await after.json()).code, 1);
  });

  it("JSONP polling (a j parameter): responses call the callback with the payload, POSTs are forms", T, async (t) => {
    const srv = await startServer(["--allow-eio3"]);
    t.after(() => srv.stop());
    /** The payload inside a JSONP response `___eio[<j>]("...");`. */
    const unwrap = async (res, j) => {
      assert.equal(res.status, 200);
      const text = await res.text();
      const head = `___eio[${j}](`;
      assert.ok(text.startsWith(head) && text.endsWith(");"), text);
      return JSON.parse(text.slice(head.length, -2));
    };
    const hs = await fetch(v3url(srv.url, { transport: "polling", j: "3", b64: "1" }));
    const [open] = splitV3(await unwrap(hs, 3));
    const { sid } = JSON.parse(open.slice(1));
    // As engine.io-client 3 writes its form: a `\n` already in the data doubled, then newlines as `\n`.
    const escape = (d) => d.replace(/\\n/g, "\\\n").replace(/\n/g, "\\n");
    const message = '4two\nlines, a "quote", a \\n and \u2028 \u{1F600}';
    const form = (payload) =>
      fetch(v3url(srv.url, { transport: "polling", sid, j: "3" }), {
        method: "POST",
        body: new URLSearchParams({ d: escape(payload) }),
      });
    const posted = await form(`${message.length}:${message}9:4binary:3`);
    assert.equal(posted.status, 200);
    assert.equal(await posted.text(), "ok");
    const echoed = await unwrap(await fetch(v3url(srv.url, { transport: "polling", sid, j: "3" })), 3);
    assert.deepEqual(splitV3(echoed), [message, "b4AAEC"]);
    // The line separator is escaped in the JavaScript itself, as JavaScript before 2019 ends a line there.
    await form(`${message.length}:${message}`);
    const raw = await (await fetch(v3url(srv.url, { transport: "polling", sid, j: "3" }))).text();
    assert.ok(raw.includes("\\u2028") && !raw.includes("\u2028"), raw);
  });

  for (const [label, opts, final] of [
    ["polling", { transports: ["polling"] }, "polling"],
    ["websocket", { transports: ["websocket"] }, "websocket"],
    ["polling then upgrade", {}, "websocket"],
    ["websocket with forceBase64", { transports: ["websocket"], forceBase64: true }, "websocket"],
  ]) {
    it(`engine.io-client 3 over ${label}: text and binary echo, and the heartbeat keeps it open`, T, async (t) => {
      const srv = await startServer(["--allow-eio3", "--ping-interval", "250", "--ping-timeout", "500"]);
      t.after(() => srv.stop());
      const c = v3client(t, srv.url, opts);
      await c.opened;
      if (final === "websocket" && c.socket.transport.name !== "websocket") {
        await nextEvent(c.socket, "upgrade", 3000);
      }
      assert.equal(c.socket.transport.name, final);
      c.socket.send("h\u00e9llo \u{1F600}");
      assert.equal(await c.next(), "h\u00e9llo \u{1F600}");
      c.socket.send(Buffer.from([1, 2, 3, 255]));
      assert.deepEqual(asBuffer(await c.next()), Buffer.from([1, 2, 3, 255]));
      c.socket.send("binary:5");
      assert.deepEqual(asBuffer(await c.next()), Buffer.from([0, 1, 2, 3, 4]));
      // Several ping intervals pass: the client pings, the server answers, nobody closes.
      let closed = false;
      c.socket.on("close", () => (closed = true));
      await sleep(1100);
      assert.equal(closed, false, "the session stayed open");
      assert.ok(c.counts.pong >= 3, `${c.counts.pong} pongs`);
      c.socket.send("still here");
      assert.equal(await c.next(), "still here");
    });
  }

  it("a close from the server reaches engine.io-client 3", T, async (t) => {
    const srv = await startServer(["--allow-eio3"]);
    t.after(() => srv.stop());
    for (const opts of [{ transports: ["polling"] }, { transports: ["websocket"] }]) {
      const c = v3client(t, srv.url, opts);
      await c.opened;
      const closed = nextEvent(c.socket, "close", 3000);
      c.socket.send("close");
      const [reason] = await closed;
      assert.ok(["transport close", "forced close"].includes(reason), reason);
    }
  });
});
