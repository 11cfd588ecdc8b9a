// Small helpers shared by the interop tests: bounded waits, a message inbox for engine.io-client sockets, and raw
// Engine.IO v4 requests (fetch for HTTP long-polling, the `ws` package for WebSocket).

import { setTimeout as sleep } from "node:timers/promises";
import { WebSocket } from "ws";
import { Socket } from "engine.io-client";

export { sleep };

/** Resolves like `promise`, or rejects with a clear message once `ms` elapsed. */
export function within(ms, promise, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** The arguments of the next `event` emitted by `emitter` (component-emitter or EventEmitter), bounded by `ms`. */
export function nextEvent(emitter, event, ms, what = `"${event}" event`) {
  let listener;
  const p = new Promise((resolve) => {
    listener = (...args) => resolve(args);
    emitter.once(event, listener);
  });
  return within(ms, p, what).finally(() => {
    (emitter.off ?? emitter.removeListener).call(emitter, event, listener);
  });
}

/**
 * Creates an engine.io-client Socket with listeners attached at once, so that nothing is missed:
 * - `inbox.next(ms)` resolves with the next message (in order of arrival);
 * - `opened` resolves on "open" and rejects on "error" or "close" before it;
 * - `closed` resolves with {reason, description, at} on "close";
 * - `errors` lists every "error" event; `pings` counts "ping" events; `openedAt` is the time of "open".
 * The socket is closed by `t.after` when `t` is given.
 */
export function createClient(url, opts = {}, t) {
  const socket = new Socket(url, opts);
  const messages = [];
  const waiters = [];
  const state = { errors: [], pings: 0, openedAt: undefined, socket };
  socket.on("message", (data) => {
    const waiter = waiters.shift();
    if (waiter) waiter(data);
    else messages.push(data);
  });
  socket.on("ping", () => {
    state.pings += 1;
  });
  socket.on("error", (err) => {
    state.errors.push(err);
  });
  state.opened = new Promise((resolve, reject) => {
    socket.once("open", () => {
      state.openedAt = Date.now();
      resolve();
    });
    socket.once("error", (err) => reject(new Error(`client error before open: ${describeError(err)}`)));
    socket.once("close", (reason, description) =>
      reject(new Error(`client closed before open: ${reason} ${describeError(description)}`)),
    );
  });
  state.opened.catch(() => {});
  state.closed = new Promise((resolve) => {
    socket.once("close", (reason, description) => resolve({ reason, description, at: Date.now() }));
  });
  state.inbox = {
    next(ms = 2000, what = "a message") {
      if (messages.length) return Promise.resolve(messages.shift());
      let waiter;
      const p = new Promise((resolve) => {
        waiter = resolve;
        waiters.push(waiter);
      });
      return within(ms, p, what).catch((err) => {
        const i = waiters.indexOf(waiter);
        if (i !== -1) waiters.splice(i, 1);
        throw err;
      });
    },
    async take(n, ms = 2000, what = `${n} messages`) {
      const deadline = Date.now() + ms;
      const out = [];
      while (out.length < n) {
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`timed out after ${ms} ms waiting for ${what}; got ${out.length}: ${preview(out)}`);
        try {
          out.push(await this.next(left, what));
        } catch (err) {
          throw new Error(`${err.message}; got ${out.length}: ${preview(out)}`);
        }
      }
      return out;
    },
    pending: messages,
  };
  if (t) {
    t.after(() => {
      socket.close();
    });
  }
  return state;
}

export function describeError(err) {
  if (err === undefined || err === null) return String(err);
  if (err instanceof Error) {
    return `${err.message}${err.description !== undefined ? ` (description: ${describeError(err.description)})` : ""}`;
  }
  if (typeof err === "object") {
    const parts = [];
    if ("description" in err) parts.push(`description: ${describeError(err.description)}`);
    if (err.context && typeof err.context === "object" && "code" in err.context) parts.push(`close code ${err.context.code}`);
    if (err.message) parts.push(err.message);
    return parts.length ? parts.join(", ") : JSON.stringify(err);
  }
  return String(err);
}

function preview(list) {
  return JSON.stringify(list.map((m) => (typeof m === "string" ? m.slice(0, 40) : `<${m.length} bytes>`)));
}

/** The Engine.IO endpoint URL for a raw request. */
export function endpoint(base, query) {
  const qs = new URLSearchParams({ EIO: "4", ...query }).toString();
  return `${base}/engine.io/?${qs}`;
}

/** Splits a v4 polling payload into its packets (separator 0x1e). */
export function splitPayload(body) {
  return body.split("\x1e");
}

/** A raw polling handshake with fetch: returns {res, body, open} where `open` is the parsed open packet. */
export async function rawHandshake(base, query = {}, init = {}) {
  const res = await within(2000, fetch(endpoint(base, { transport: "polling", ...query }), init), "the polling handshake response");
  const body = await res.text();
  let open;
  if (res.status === 200) {
    const first = splitPayload(body)[0];
    if (first[0] !== "0") throw new Error(`handshake response does not start with an open packet: ${JSON.stringify(body)}`);
    open = JSON.parse(first.slice(1));
  }
  return { res, body, open };
}

/** Polls a raw GET on a session until the server answers 400 Session ID unknown (the close is asynchronous). */
export async function waitForUnknownSid(base, sid, ms = 2000) {
  const deadline = Date.now() + ms;
  let last;
  while (Date.now() < deadline) {
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), 300);
    try {
      const res = await fetch(endpoint(base, { transport: "polling", sid }), { signal: ac.signal });
      last = { status: res.status, body: await res.text() };
      if (res.status === 400 && last.body.includes('"code":1')) return last;
    } catch (err) {
      // A GET on a live polling session waits for data: aborted after 300 ms, try again.
      last = { error: err.name };
    } finally {
      clearTimeout(timer);
    }
    await sleep(50);
  }
  return last;
}

/** Opens a raw `ws` WebSocket; resolves {ws, upgradeRes, open, firstPackets} once the open packet arrived. */
export function rawWebSocket(base, query = {}, options = {}) {
  const url = endpoint(base.replace(/^http/, "ws"), { transport: "websocket", ...query });
  const ws = new WebSocket(url, options);
  const frames = [];
  const errors = [];
  let upgradeRes;
  ws.on("error", (err) => errors.push(err));
  ws.on("upgrade", (res) => {
    upgradeRes = res;
  });
  ws.on("message", (data, isBinary) => {
    frames.push(isBinary ? data : data.toString());
  });
  const closed = new Promise((resolve) => {
    ws.on("close", (code, reason) => resolve({ code, reason: reason.toString() }));
  });
  const opened = new Promise((resolve, reject) => {
    ws.once("error", reject);
    ws.once("unexpected-response", (req, res) => {
      req.destroy();
      reject(new Error(`unexpected response ${res.statusCode}`));
    });
    const check = () => {
      if (frames.length) {
        ws.off("message", check);
        resolve();
      }
    };
    ws.on("message", check);
  });
  return within(2000, opened, "the raw websocket open packet").catch((err) => {
    ws.terminate();
    throw err;
  }).then(() => {
    const first = frames[0];
    if (typeof first !== "string" || first[0] !== "0") {
      throw new Error(`first websocket frame is not an open packet: ${JSON.stringify(String(first))}`);
    }
    return { ws, upgradeRes, open: JSON.parse(first.slice(1)), frames, closed, errors };
  });
}

/** Parses a Set-Cookie value into {nameValue, attrs: Set of the attributes as written}. */
export function parseSetCookie(value) {
  const [nameValue, ...attrs] = value.split(";").map((s) => s.trim());
  return { nameValue, attrs: new Set(attrs) };
}
