// socket.io-client helpers of the cluster tests: sockets that record what they receive, bounded waits, acks.

import { io } from "socket.io-client";

/** Resolves like `promise`, or rejects with `what` in the message once `ms` elapsed. */
export function within(ms, promise, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Every binary value (Buffer, ArrayBuffer, typed array), at any depth, as a plain Buffer copy. */
export function norm(value) {
  if (Buffer.isBuffer(value)) return Buffer.from(value);
  if (value instanceof ArrayBuffer) return Buffer.from(new Uint8Array(value));
  if (ArrayBuffer.isView(value)) return Buffer.from(new Uint8Array(value.buffer, value.byteOffset, value.byteLength));
  if (Array.isArray(value)) return value.map(norm);
  if (value && typeof value === "object" && !(value instanceof Error)) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, norm(v)]));
  }
  return value;
}

/** A readable rendering of event arguments (buffers as <hex>, errors as their message). */
export function show(value) {
  return JSON.stringify(value, (k, v) => {
    if (v && v.type === "Buffer" && Array.isArray(v.data)) {
      const hex = Buffer.from(v.data).toString("hex");
      return `<Buffer ${hex.length > 40 ? `${hex.slice(0, 40)}… (${v.data.length} bytes)` : hex}>`;
    }
    if (v instanceof Error) return `<Error ${v.message}>`;
    if (typeof v === "function") return "<fn>";
    return v;
  });
}

/**
 * A socket.io-client socket (its own Manager, no reconnection unless asked) on `url`, with `label` for messages,
 * that records every incoming event and connect / connect_error / disconnect from the start:
 * - `s.w.events`: [{name, args, at}] in order of arrival (binary normalised to Buffers; a trailing ack callback of
 *   an incoming event is not part of args);
 * - `s.w.all(name)`, `s.w.count(name)`;
 * - `s.w.waitFor(name, pred, ms)`: the first recorded event `name` whose args satisfy `pred` (waiting, bounded).
 */
export function makeClient(url, label, opts = {}) {
  const socket = io(url, { forceNew: true, reconnection: false, ...opts });
  socket.label = label;
  const events = [];
  const waiters = new Set();
  const push = (name, args) => {
    events.push({ name, args, at: Date.now() });
    for (const w of [...waiters]) w();
  };
  socket.onAny((name, ...args) => {
    if (args.length && typeof args[args.length - 1] === "function") args = args.slice(0, -1);
    push(name, norm(args));
  });
  for (const name of ["connect", "connect_error", "disconnect"]) socket.on(name, (...args) => push(name, args));
  const list = (name) => events.filter((e) => e.name === name);
  socket.w = {
    events,
    all: (name) => list(name).map((e) => e.args),
    count: (name) => list(name).length,
    waitFor(name, pred = () => true, ms = 3000, what = `"${name}"`) {
      const find = () => list(name).find((e) => pred(e.args));
      const now = find();
      if (now) return Promise.resolve(now.args);
      let waiter;
      const p = new Promise((resolve) => {
        waiter = () => {
          const e = find();
          if (e) resolve(e.args);
        };
        waiters.add(waiter);
      });
      return within(ms, p, `${what} on client ${label} (received: ${show(events.map((e) => [e.name, ...e.args]))})`).finally(
        () => waiters.delete(waiter),
      );
    },
  };
  return socket;
}

/** Resolves once `socket` is connected; rejects on connect_error, disconnect, or after `ms`. */
export function connected(socket, ms = 4000) {
  if (socket.connected) return Promise.resolve(socket);
  let cleanup;
  const p = new Promise((resolve, reject) => {
    const onConnect = () => resolve(socket);
    const onError = (err) => reject(new Error(`connect_error on client ${socket.label}: ${err.message} ${show(err.description ?? err.data ?? "")}`));
    const onClose = (reason) => reject(new Error(`client ${socket.label} closed before "connect": ${reason}`));
    socket.once("connect", onConnect);
    socket.once("connect_error", onError);
    socket.once("disconnect", onClose);
    cleanup = () => {
      socket.off("connect", onConnect);
      socket.off("connect_error", onError);
      socket.off("disconnect", onClose);
    };
  });
  return within(ms, p, `"connect" of client ${socket.label}`).finally(() => cleanup());
}

/** Resolves once the socket's engine runs over WebSocket (waits for the upgrade); rejects on upgradeError. */
export function upgraded(socket, ms = 4000) {
  const engine = socket.io.engine;
  if (engine.transport.name === "websocket") return Promise.resolve();
  let cleanup;
  const p = new Promise((resolve, reject) => {
    const onUpgrade = () => resolve();
    const onFail = (err) => reject(new Error(`upgrade of client ${socket.label} failed: ${err?.message ?? err}`));
    engine.on("upgrade", onUpgrade);
    engine.on("upgradeError", onFail);
    cleanup = () => {
      engine.off("upgrade", onUpgrade);
      engine.off("upgradeError", onFail);
    };
  });
  return within(ms, p, `the upgrade to websocket of client ${socket.label}`).finally(() => cleanup());
}

/** Emits `event` with an ack and resolves with the ack's arguments (binary normalised); bounded by `ms`. */
export function ackOf(socket, ms, event, ...args) {
  return new Promise((resolve, reject) => {
    socket.timeout(ms).emit(event, ...args, (err, ...res) => {
      if (err) reject(new Error(`client ${socket.label}: no ack for "${event}" ${show(args)} within ${ms} ms`));
      else resolve(norm(res));
    });
  });
}
