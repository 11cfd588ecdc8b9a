// Interoperability tests: the npm engine.io-client (and raw HTTP / `ws` requests) against the Rust echo example.
//
// Each test starts its own server (lib/server.mjs) and stops it when done. Every wait is bounded so that a
// misbehaving server fails a test with a message instead of hanging it.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { WebSocket } from "ws";

import { startServer } from "./lib/server.mjs";
import {
  createClient,
  describeError,
  endpoint,
  nextEvent,
  parseSetCookie,
  rawHandshake,
  rawWebSocket,
  sleep,
  waitForUnknownSid,
  within,
} from "./lib/util.mjs";

const T = { timeout: 5000 };
const SID = /^[A-Za-z0-9_-]{20}$/;

async function server(t, args = []) {
  const srv = await startServer(args);
  t.after(() => srv.stop());
  return srv;
}

async function openClient(t, url, opts) {
  const c = createClient(url, opts, t);
  await within(3000, c.opened, `"open" with ${JSON.stringify(opts)}`);
  return c;
}

async function echoes(c, message, what = JSON.stringify(message)) {
  c.socket.send(message);
  const got = await c.inbox.next(2000, `the echo of ${what}`);
  assert.deepEqual(got, message, `echo of ${what}`);
}

// A raw GET with the session id must (soon) answer 400 {"code":1,"message":"Session ID unknown"}.
async function assertSessionGone(url, sid) {
  const last = await waitForUnknownSid(url, sid);
  assert.equal(last?.status, 400, `raw GET sid=${sid}: ${JSON.stringify(last)}`);
  assert.deepEqual(JSON.parse(last.body), { code: 1, message: "Session ID unknown" });
}

function bytes(data) {
  assert.ok(
    Buffer.isBuffer(data) || data instanceof ArrayBuffer || ArrayBuffer.isView(data),
    `expected binary data, got ${typeof data}: ${JSON.stringify(String(data)).slice(0, 80)}`,
  );
  return Buffer.from(data instanceof ArrayBuffer ? new Uint8Array(data) : data);
}

describe("1. handshake over polling", () => {
  it("opens with a 20-char id over polling and echoes text", T, async (t) => {
    const { url } = await server(t);
    const c = await openClient(t, url, { transports: ["polling"] });
    assert.match(c.socket.id, SID);
    assert.equal(c.socket.transport.name, "polling");
    await echoes(c, "hello over polling");
    await echoes(c, "héllo ✓ unicode");
    assert.equal(c.socket.transport.name, "polling");
  });
});

describe("2. websocket only", () => {
  it("opens over websocket and echoes text", T, async (t) => {
    const { url } = await server(t);
    const c = await openClient(t, url, { transports: ["websocket"] });
    assert.match(c.socket.id, SID);
    assert.equal(c.socket.transport.name, "websocket");
    await echoes(c, "hello over websocket");
    await echoes(c, "héllo ✓ unicode");
  });
});

describe("3. upgrade", () => {
  it("upgrades polling to websocket and keeps messages in order across it", T, async (t) => {
    const { url } = await server(t);
    const c = createClient(url, {}, t);
    const upgraded = nextEvent(c.socket, "upgrade", 3000);
    upgraded.catch(() => {});
    await within(3000, c.opened, '"open"');
    assert.equal(c.socket.transport.name, "polling");
    const before = ["a1", "a2", "a3", "a4", "a5"];
    for (const m of before) c.socket.send(m);
    const [transport] = await upgraded;
    assert.equal(transport.name, "websocket");
    assert.equal(c.socket.transport.name, "websocket");
    const after = ["b1", "b2", "b3", "b4", "b5"];
    for (const m of after) c.socket.send(m);
    const got = await c.inbox.take(10, 3000, "the 10 echoes");
    assert.deepEqual(got, [...before, ...after]);
    assert.equal(c.socket.transport.name, "websocket");
    assert.equal(c.socket.readyState, "open");
  });
});

describe("4. binary both ways", () => {
  for (const transport of ["polling", "websocket"]) {
    it(`echoes binary and answers binary:5 over ${transport}`, T, async (t) => {
      const { url } = await server(t);
      const c = await openClient(t, url, { transports: [transport] });
      const sent = Uint8Array.from([0, 1, 2, 127, 128, 254, 255, 10, 30, 0]);
      c.socket.send(sent);
      const echoed = bytes(await c.inbox.next(2000, "the binary echo"));
      assert.deepEqual([...echoed], [...sent]);

      const all = Buffer.alloc(256);
      for (let i = 0; i < 256; i++) all[i] = i;
      c.socket.send(all);
      assert.deepEqual([...bytes(await c.inbox.next(2000, "the 256-byte echo"))], [...all]);

      c.socket.send("binary:5");
      const five = bytes(await c.inbox.next(2000, "the reply to binary:5"));
      assert.deepEqual([...five], [0, 1, 2, 3, 4]);

      // text still comes back as text after binary
      await echoes(c, "text after binary");
    });
  }

  // `forceBase64`: the client sends binary as `b` + base64 (text frames on WebSocket, query b64=1) and the
  // server must answer the same way; before, the server refused the `b` frame and closed.
  for (const [label, transports] of [["polling", ["polling"]], ["websocket", ["websocket"]], ["the upgrade", ["polling", "websocket"]]]) {
    it(`echoes binary with forceBase64 over ${label}`, T, async (t) => {
      const { url } = await server(t);
      const c = await openClient(t, url, { transports, forceBase64: true });
      if (transports.length > 1 && c.socket.transport.name !== "websocket") {
        await within(3000, new Promise((resolve) => c.socket.once("upgrade", resolve)), "the upgrade");
      }
      assert.equal(c.socket.transport.name, transports.at(-1));
      const sent = Uint8Array.from([0, 1, 2, 127, 128, 254, 255]);
      c.socket.send(sent);
      assert.deepEqual([...bytes(await c.inbox.next(2000, "the binary echo"))], [...sent]);
      c.socket.send("binary:5");
      assert.deepEqual([...bytes(await c.inbox.next(2000, "the reply to binary:5"))], [0, 1, 2, 3, 4]);
      await echoes(c, "text after binary");
      assert.equal(c.socket.readyState, "open");
    });
  }
});

describe("5. large messages (--max-http-buffer-size 1000)", () => {
  const ARGS = ["--max-http-buffer-size", "1000"];

  for (const transport of ["websocket", "polling"]) {
    it(`echoes a 900-byte text message over ${transport}`, T, async (t) => {
      const { url } = await server(t, ARGS);
      const c = await openClient(t, url, { transports: [transport] });
      assert.equal(c.socket._maxPayload, 1000, "maxPayload advertised in the handshake");
      await echoes(c, "y".repeat(900), "a 900-byte message");
    });
  }

  it("closes the websocket with 1009 when an engine.io-client sends 5000 bytes", T, async (t) => {
    const { url } = await server(t, ARGS);
    const c = await openClient(t, url, { transports: ["websocket"] });
    const ws = c.socket.transport.ws;
    assert.ok(ws, "underlying ws WebSocket");
    const wsClosed = new Promise((resolve) => ws.on("close", (code, reason) => resolve({ code, reason: String(reason) })));
    c.socket.send("z".repeat(5000));
    const closed = await within(2000, c.closed, 'the client "close" after a 5000-byte message');
    assert.ok(
      ["transport close", "transport error"].includes(closed.reason),
      `close reason ${closed.reason} (${describeError(closed.description)})`,
    );
    const { code } = await within(2000, wsClosed, "the ws close event");
    assert.equal(code, 1009, "WebSocket close code");
  });

  it("closes a raw websocket with 1009 on a 5000-byte message packet", T, async (t) => {
    const { url } = await server(t, ARGS);
    const raw = await rawWebSocket(url);
    t.after(() => raw.ws.terminate());
    assert.equal(raw.open.maxPayload, 1000);
    raw.ws.send("4" + "q".repeat(5000));
    const { code } = await within(2000, raw.closed, "the raw websocket close");
    assert.equal(code, 1009, "WebSocket close code");
  });

  it("answers 413 to a 5000-byte polling POST", T, async (t) => {
    const { url } = await server(t, ARGS);
    const { open } = await rawHandshake(url);
    assert.match(open.sid, SID);
    assert.equal(open.maxPayload, 1000);
    const res = await within(
      2000,
      fetch(endpoint(url, { transport: "polling", sid: open.sid }), {
        method: "POST",
        headers: { "content-type": "text/plain;charset=UTF-8" },
        body: "4" + "p".repeat(5000),
      }),
      "the POST response",
    );
    await res.arrayBuffer();
    assert.equal(res.status, 413);
  });

  it("closes an engine.io-client sending 5000 bytes over polling (HTTP 413)", T, async (t) => {
    const { url } = await server(t, ARGS);
    const c = await openClient(t, url, { transports: ["polling"] });
    c.socket.send("p".repeat(5000));
    const closed = await within(2000, c.closed, 'the client "close" after a 5000-byte POST');
    assert.equal(closed.reason, "transport error", `close reason (${describeError(closed.description)})`);
    assert.ok(c.errors.length >= 1, "an error event");
    assert.equal(c.errors[0].message, "xhr post error");
    assert.equal(c.errors[0].description, 413, "HTTP status of the POST");
  });
});

describe("6. heartbeat (--ping-interval 200 --ping-timeout 300)", () => {
  const ARGS = ["--ping-interval", "200", "--ping-timeout", "300"];

  for (const transport of ["websocket", "polling"]) {
    it(`server closes a ${transport} client that never answers pings`, T, async (t) => {
      const { url } = await server(t, ARGS);
      const c = createClient(url, { transports: [transport] }, t);
      const send = c.socket._sendPacket;
      assert.equal(typeof send, "function", "engine.io-client Socket#_sendPacket");
      let dropped = 0;
      c.socket._sendPacket = function (type, ...rest) {
        if (type === "pong") {
          dropped += 1;
          return;
        }
        return send.call(this, type, ...rest);
      };
      await within(3000, c.opened, '"open"');
      const sid = c.socket.id;
      assert.equal(c.socket._pingInterval, 200);
      assert.equal(c.socket._pingTimeout, 300);
      const closed = await within(1500, c.closed, "the server to close the client that sends no pong");
      const elapsed = closed.at - c.openedAt;
      assert.ok(dropped >= 1, "at least one ping was received (and its pong dropped)");
      // the client would close by itself with "ping timeout" at ~700 ms; the server must close first (~500 ms)
      assert.equal(closed.reason, "transport close", `close reason after ${elapsed} ms (${describeError(closed.description)})`);
      assert.ok(elapsed >= 350, `closed after ${elapsed} ms, before the ping timeout could elapse`);
      assert.ok(elapsed <= 1000, `closed after ${elapsed} ms`);
      await assertSessionGone(url, sid);
    });

    it(`a ${transport} client answering pings stays connected`, T, async (t) => {
      const { url } = await server(t, ARGS);
      const c = await openClient(t, url, { transports: [transport] });
      await echoes(c, "before");
      await sleep(1500);
      assert.equal(c.socket.readyState, "open", "still open after 1.5 s");
      assert.ok(c.pings >= 2, `"ping" fired ${c.pings} times in 1.5 s`);
      await echoes(c, "after 1.5 s");
    });
  }
});

describe("7. server close", () => {
  for (const transport of ["websocket", "polling"]) {
    it(`message "close" makes the server close a ${transport} session`, T, async (t) => {
      const { url } = await server(t);
      const c = await openClient(t, url, { transports: [transport] });
      const sid = c.socket.id;
      c.socket.send("close");
      const closed = await within(2000, c.closed, 'the client "close" after sending "close"');
      assert.equal(closed.reason, "transport close", `close reason (${describeError(closed.description)})`);
      await assertSessionGone(url, sid);
    });
  }
});

describe("8. client close", () => {
  for (const transport of ["websocket", "polling"]) {
    it(`socket.close() over ${transport} ends the server session`, T, async (t) => {
      const { url } = await server(t);
      const c = await openClient(t, url, { transports: [transport] });
      await echoes(c, "ping-pong");
      const sid = c.socket.id;
      c.socket.close();
      const closed = await within(1000, c.closed, 'the client "close"');
      assert.equal(closed.reason, "forced close");
      await assertSessionGone(url, sid);
    });
  }
});

describe("9. cookies", () => {
  it("--cookie: the polling handshake sets io=<sid>; Path=/; HttpOnly; SameSite=Lax", T, async (t) => {
    const { url } = await server(t, ["--cookie"]);
    const { res, open } = await rawHandshake(url);
    assert.equal(res.status, 200);
    const cookies = res.headers.getSetCookie();
    assert.equal(cookies.length, 1, `Set-Cookie headers: ${JSON.stringify(cookies)}`);
    const { nameValue, attrs } = parseSetCookie(cookies[0]);
    assert.equal(nameValue, `io=${open.sid}`);
    assert.deepEqual(attrs, new Set(["Path=/", "HttpOnly", "SameSite=Lax"]), `Set-Cookie: ${cookies[0]}`);
  });

  it("--cookie: engine.io-client with withCredentials keeps io=<id> in its cookie jar", T, async (t) => {
    const { url } = await server(t, ["--cookie"]);
    const c = await openClient(t, url, { transports: ["polling"], withCredentials: true });
    const jar = c.socket._cookieJar;
    assert.ok(jar, "engine.io-client Socket#_cookieJar (created when withCredentials is true)");
    const cookies = Object.fromEntries([...jar.cookies].map(([name, cookie]) => [name, cookie.value]));
    assert.deepEqual(cookies, { io: c.socket.id });
    await echoes(c, "with cookie");
  });

  it("custom cookie options appear in the Set-Cookie attributes", T, async (t) => {
    const { url } = await server(t, [
      "--cookie-name",
      "sticky",
      "--cookie-secure",
      "--cookie-same-site-none",
      "--cookie-max-age",
      "3600",
      "--cookie-domain",
      "example.com",
    ]);
    const { res, open } = await rawHandshake(url);
    assert.equal(res.status, 200);
    const cookies = res.headers.getSetCookie();
    assert.equal(cookies.length, 1, `Set-Cookie headers: ${JSON.stringify(cookies)}`);
    const { nameValue, attrs } = parseSetCookie(cookies[0]);
    assert.equal(nameValue, `sticky=${open.sid}`);
    for (const attr of ["Path=/", "HttpOnly", "Secure", "SameSite=None", "Max-Age=3600", "Domain=example.com"]) {
      assert.ok(attrs.has(attr), `${attr} missing from Set-Cookie: ${cookies[0]}`);
    }
    const sameSite = [...attrs].filter((a) => a.toLowerCase().startsWith("samesite"));
    assert.deepEqual(sameSite, ["SameSite=None"], `Set-Cookie: ${cookies[0]}`);
  });

  it("a websocket handshake carries no io cookie; --set-cookie is on the polling handshake and on the 101", T, async (t) => {
    const { url } = await server(t, ["--cookie", "--set-cookie", "app=1"]);

    const { res, open } = await rawHandshake(url);
    const polling = res.headers.getSetCookie();
    assert.ok(polling.includes("app=1"), `polling handshake Set-Cookie: ${JSON.stringify(polling)}`);
    const io = polling.filter((c) => c.startsWith("io="));
    assert.equal(io.length, 1, `polling handshake Set-Cookie: ${JSON.stringify(polling)}`);
    assert.equal(parseSetCookie(io[0]).nameValue, `io=${open.sid}`);

    const raw = await rawWebSocket(url);
    t.after(() => raw.ws.terminate());
    assert.ok(raw.upgradeRes, "the 101 response");
    assert.equal(raw.upgradeRes.statusCode, 101);
    const ws = raw.upgradeRes.headers["set-cookie"] ?? [];
    assert.ok(ws.includes("app=1"), `101 Set-Cookie: ${JSON.stringify(ws)}`);
    assert.deepEqual(
      ws.filter((c) => c.startsWith("io=")),
      [],
      `101 Set-Cookie: ${JSON.stringify(ws)}`,
    );
    assert.match(raw.open.sid, SID);
  });
});

describe("10. allow_request (--require-token secret)", () => {
  const ARGS = ["--require-token", "secret"];

  it("a polling client without the token gets an error and never opens", T, async (t) => {
    const { url } = await server(t, ARGS);
    const c = createClient(url, { transports: ["polling"] }, t);
    let opened = false;
    c.socket.on("open", () => {
      opened = true;
    });
    const [err] = await nextEvent(c.socket, "error", 2000, 'the "error" event');
    assert.equal(err.message, "xhr poll error", describeError(err));
    assert.equal(err.description, 403, "HTTP status of the handshake");
    const closed = await within(1000, c.closed, '"close"');
    assert.equal(closed.reason, "transport error");
    await sleep(200);
    assert.equal(opened, false, "never opens");
  });

  it("a raw polling handshake without the token gets 403 invalid token", T, async (t) => {
    const { url } = await server(t, ARGS);
    const { res, body } = await rawHandshake(url);
    assert.equal(res.status, 403);
    assert.deepEqual(JSON.parse(body), { code: 4, message: "invalid token" });
    const wrong = await rawHandshake(url, { token: "wrong" });
    assert.equal(wrong.res.status, 403);
    assert.deepEqual(JSON.parse(wrong.body), { code: 4, message: "invalid token" });
  });

  it("a websocket client without the token gets an error and never opens", T, async (t) => {
    const { url } = await server(t, ARGS);
    const c = createClient(url, { transports: ["websocket"] }, t);
    let opened = false;
    c.socket.on("open", () => {
      opened = true;
    });
    const [err] = await nextEvent(c.socket, "error", 2000, 'the "error" event');
    assert.equal(err.message, "websocket error", describeError(err));
    assert.match(String(err.description?.message), /Unexpected server response: 400/);
    await within(1000, c.closed, '"close"');
    await sleep(200);
    assert.equal(opened, false, "never opens");
  });

  it("a raw websocket handshake without the token gets HTTP 400", T, async (t) => {
    const { url } = await server(t, ARGS);
    const ws = new WebSocket(endpoint(url.replace(/^http/, "ws"), { transport: "websocket" }));
    t.after(() => ws.terminate());
    ws.on("error", () => {});
    const status = await within(
      2000,
      new Promise((resolve, reject) => {
        ws.once("unexpected-response", (req, res) => {
          resolve(res.statusCode);
          req.destroy();
        });
        ws.once("open", () => reject(new Error("the websocket opened without the token")));
      }),
      "the handshake response",
    );
    assert.equal(status, 400);
  });

  for (const transports of [["polling"], ["websocket"], undefined]) {
    const name = transports ? transports[0] : "polling upgraded to websocket";
    it(`with query token=secret, ${name} opens and echoes`, T, async (t) => {
      const { url } = await server(t, ARGS);
      const opts = { query: { token: "secret" } };
      if (transports) opts.transports = transports;
      const c = createClient(url, opts, t);
      const upgraded = transports ? null : nextEvent(c.socket, "upgrade", 3000);
      upgraded?.catch(() => {});
      await within(3000, c.opened, '"open" with the token');
      assert.match(c.socket.id, SID);
      await echoes(c, "authorized");
      if (upgraded) {
        await upgraded;
        assert.equal(c.socket.transport.name, "websocket");
        await echoes(c, "authorized after upgrade");
      }
    });
  }
});

describe("11. initial packet (--initial-packet hello)", () => {
  for (const transport of ["polling", "websocket"]) {
    it(`the first message over ${transport} is "hello"`, T, async (t) => {
      const { url } = await server(t, ["--initial-packet", "hello"]);
      const c = createClient(url, { transports: [transport] }, t);
      await within(3000, c.opened, '"open"');
      const first = await c.inbox.next(2000, "the initial packet");
      assert.equal(first, "hello");
      await echoes(c, "after hello");
    });
  }
});

describe("12. permessage-deflate (--per-message-deflate)", () => {
  it("is negotiated with engine.io-client and large messages echo intact both ways", T, async (t) => {
    const { url } = await server(t, ["--per-message-deflate"]);
    const c = await openClient(t, url, { transports: ["websocket"] });
    // engine.io-client offers permessage-deflate through `ws`; the server accepts the offer.
    assert.equal(c.socket.transport.ws.extensions, "permessage-deflate");
    const big = "compress me ".repeat(800);
    await echoes(c, big, "a 9600-character message");
    await echoes(c, "small", "a message under the threshold");
    const bin = Buffer.alloc(20000, 7);
    c.socket.send(bin);
    assert.deepEqual(bytes(await c.inbox.next(2000, "the binary echo")), bin);
  });

  it("works with engine.io-client when the server asks for no context takeover both ways", T, async (t) => {
    const { url } = await server(t, ["--deflate-no-context-takeover"]);
    const c = await openClient(t, url, { transports: ["websocket"] });
    // `ws` accepts both parameters the server added to its response (the negotiated parameters are kept on
    // its extension object), and then compresses each message on its own.
    const ws = c.socket.transport.ws;
    assert.equal(ws.extensions, "permessage-deflate");
    const params = ws._extensions["permessage-deflate"].params;
    assert.equal(params.server_no_context_takeover, true);
    assert.equal(params.client_no_context_takeover, true);
    const big = "compress me ".repeat(800);
    for (let i = 0; i < 3; i++) await echoes(c, big, `a 9600-character message (${i + 1})`);
    await echoes(c, "small", "a message under the threshold");
  });

  it("is not negotiated when the option is off", T, async (t) => {
    const { url } = await server(t);
    const c = await openClient(t, url, { transports: ["websocket"] });
    assert.equal(c.socket.transport.ws.extensions, "");
    await echoes(c, "x".repeat(5000), "a 5000-character message");
  });
});
