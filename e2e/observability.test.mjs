// What an operator sees: the test server's log (tracing's fmt output on stderr, RUST_LOG=info) for the
// events the log must report, each with its fields: a refused handshake (warn, its code and reason), a ping
// timeout (info: sid, transport, remote address), a client that does not take its data (warn "buffer
// full"), and a socket's connect and disconnect (namespace, id, session). At `debug` the same lines are
// inside the session's and the socket's spans.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { WebSocket } from "ws";

import { startTestServer } from "./lib/server.mjs";
import { sleep, within } from "./lib/util.mjs";

process.env.RUST_LOG = "info";
const T = { timeout: 10000 };

async function server(t, args = []) {
  const srv = await startTestServer(args);
  t.after(() => srv.stop());
  return srv;
}

/** Waits (at most `ms`) until a line of the server's stderr matches `re`; returns the match. */
async function logLine(srv, re, ms = 3000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const line = srv.output().split("\n").find((l) => re.test(l));
    if (line) return line;
    if (Date.now() > deadline) assert.fail(`no log line matches ${re} within ${ms} ms\n${srv.output()}`);
    await sleep(50);
  }
}

const base = (srv) => `${srv.url}/socket.io/`;

describe("the log", () => {
  it("reports a refused handshake at warn with its code, reason and request", T, async (t) => {
    const srv = await server(t);
    const res = await fetch(`${base(srv)}?EIO=3&transport=polling`);
    assert.equal(res.status, 400);
    await res.text();
    const line = await logLine(srv, /WARN engineio_server::request: request refused/);
    assert.match(line, /code=5/);
    assert.match(line, /reason="?Unsupported protocol version/);
    assert.match(line, /method=GET path="\/socket.io\/" remote=127\.0\.0\.1:\d+/);
  });

  it("reports a ping timeout at info in the session's span", T, async (t) => {
    const srv = await server(t, ["--ping-interval", "200", "--ping-timeout", "200"]);
    // A raw WebSocket that never answers the server's pings.
    const ws = new WebSocket(`${base(srv).replace(/^http/, "ws")}?EIO=4&transport=websocket`);
    const open = await within(2000, new Promise((resolve) => ws.once("message", (d) => resolve(JSON.parse(d.toString().slice(1))))), "open packet");
    const closed = new Promise((resolve) => ws.once("close", resolve));
    await within(3000, closed, "the server closing the silent session");
    const opened = await logLine(srv, new RegExp(`engineio_server::session: session opened sid="${open.sid}" transport="websocket" remote=127\\.0\\.0\\.1:\\d+`));
    assert.match(opened, / INFO /);
    const line = await logLine(srv, new RegExp(`engineio_server::session: session closed sid="${open.sid}" reason="ping timeout"`));
    assert.match(line, / INFO /);
  });

  it("reports a client that does not take its data at warn (buffer full), and its socket's lifecycle", T, async (t) => {
    const srv = await server(t);
    // A polling session that joins "/", asks for a flood, and never polls for it.
    const hs = await fetch(`${base(srv)}?EIO=4&transport=polling`);
    const { sid } = JSON.parse((await hs.text()).slice(1));
    const path = `${base(srv)}?EIO=4&transport=polling&sid=${sid}`;
    assert.equal((await fetch(path, { method: "POST", body: "40" })).status, 200);
    const connected = await logLine(srv, new RegExp(`socketio_server::socket: socket connected ns="/" id="[\\w-]+" sid="${sid}"`));
    assert.match(connected, / INFO /);
    const post = await fetch(path, { method: "POST", body: '42["flood",20000]' });
    await post.text();
    const full = await logLine(srv, new RegExp(`engineio_server::session: session closed: the client did not take its data sid="${sid}" reason="buffer full"`));
    assert.match(full, / WARN /);
    const id = connected.match(/ id="([\w-]+)"/)[1];
    await logLine(srv, new RegExp(`socketio_server::socket: socket disconnected ns="/" id="${id}" reason=`));
  });

  it("stays at a few lines per connection at info: nothing per message", T, async (t) => {
    const srv = await server(t);
    const ws = new WebSocket(`${base(srv).replace(/^http/, "ws")}?EIO=4&transport=websocket`);
    const frames = [];
    ws.on("message", (d) => frames.push(d.toString()));
    await within(2000, new Promise((r) => ws.once("open", r)), "open");
    ws.send("40");
    await within(2000, (async () => { while (!frames.some((f) => f.startsWith("40{"))) await sleep(10); })(), "CONNECT reply");
    const before = srv.output().split("\n").length;
    for (let i = 0; i < 200; i++) ws.send(`42["message",${i}]`);
    await within(3000, (async () => { while (frames.filter((f) => f.startsWith('42["message-back"')).length < 200) await sleep(10); })(), "200 echoes");
    ws.close();
    await logLine(srv, /socket disconnected/);
    const lines = srv.output().split("\n").length - before;
    assert.ok(lines <= 4, `200 events added ${lines} lines at info:\n${srv.output()}`);
  });
});
