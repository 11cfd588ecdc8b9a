// Differential conformance harness: the reference JavaScript parsers behind a JSON-lines protocol.
//
// Driven by the `conformance` crate (`cargo run -p conformance`). One request per stdin line, one response
// per stdout line, in order. Every request is `{"id": N, "op": "...", ...}`; every response is
// `{"id": N, "ok": true, "result": {...}}`, or `{"id": N, "ok": false, "error": "..."}` when the harness
// itself failed (a malformed request, an encoder that threw): a parser *rejecting* its input is a normal
// result (`accepted: false`), not a harness failure.
//
// Shapes (binary always travels as base64):
//   Blob        {"text": string} | {"bin": base64}
//   EioPacket   {"type": "open"|"close"|"ping"|"pong"|"message"|"upgrade"|"noop", "data"?: Blob}
//               ("data" is left out when the reference has none, or has the empty string: both encode the
//               same way, `PACKET_TYPES[type] + (data || "")`)
//   SioPacket   {"type": 0..6, "nsp": string, "id"?: number | {"$num": string}, "data"?: Data}
//               (an id that is not a safe integer, NaN included, is written {"$num": String(id)})
//   Data        JSON where binary (Buffer, ArrayBuffer, typed arrays) is {"$bin": base64}, a Date is its
//               ISO string (what JSON.stringify writes), undefined in an array is null and in an object is
//               left out, and a non-finite number is null: what the application would see through JSON.
//               Arrays and objects nested deeper than 64 levels are {"$deep": depth of the subtree}.
//               A string with lone surrogates is {"$lone": string with U+FFFD}, an object key with them
//               "$lone:" + that string.
//
// Operations:
//   eio.decodePacket   {input: Blob}                        -> {accepted, packet?, error?}
//   eio.encodePacket   {packet: EioPacket, supportsBinary}  -> {encoded: Blob}
//   eio.decodePayload  {input: base64}                      -> {accepted, packets, error?}
//                      (the body bytes are turned into a string as a server reads a text body: UTF-8,
//                      with U+FFFD for invalid sequences; `packets` are those before the error packet)
//   eio.encodePayload  {packets: [EioPacket]}               -> {encoded: {text}}
//   eio3.decodePayload {input: base64, binary}              -> {accepted, packets, error?}
//                      (Engine.IO v3, engine.io-parser 2: a text payload, or with `binary` a binary payload,
//                      as the reference server reads a POST of that content type; `packets` are those before
//                      the first error packet, leaving out packets of no known type, which the server ignores)
//   eio3.encodePayload {packets: [EioPacket], supportsBinary} -> {encoded: Blob} (text, or a binary payload)
//   sio.decode         {messages: [Blob]}                   -> {accepted, packets, pending, error?}
//                      (one Decoder fed every message in order; stops at the first throw; `pending` is
//                      whether a binary packet still waits for attachments)
//   sio.encode         {packet: SioPacket}                  -> {messages: [Blob]}
//   msgpack.decode     {input: base64}                      -> {accepted, packet?, error?}
//   msgpack.encode     {packet: SioPacket}                  -> {encoded: base64}
//   ping               {}                                   -> {versions: {...}}

import { createInterface } from "node:readline";
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as eio from "engine.io-parser";
import * as sio from "socket.io-parser";

const require = createRequire(import.meta.url);
const msgpack = require("socket.io-msgpack-parser");
const eio3 = require("engine.io-parser-v2");

// (read from node_modules directly: engine.io-parser's "exports" hides its package.json)
const here = dirname(fileURLToPath(import.meta.url));
const versionOf = (name) => JSON.parse(readFileSync(join(here, "node_modules", name, "package.json"), "utf8")).version;
const versions = {
  "engine.io-parser": versionOf("engine.io-parser"),
  "engine.io-parser (v3)": versionOf("engine.io-parser-v2"),
  "socket.io-parser": versionOf("socket.io-parser"),
  "socket.io-msgpack-parser": versionOf("socket.io-msgpack-parser"),
  "notepack.io": versionOf("notepack.io"),
  node: process.versions.node,
};

// ---- values in and out ----

const b64 = (buf) => Buffer.from(buf).toString("base64");

function isBinaryValue(v) {
  return Buffer.isBuffer(v) || v instanceof ArrayBuffer || ArrayBuffer.isView(v);
}

function binToBase64(v) {
  if (v instanceof ArrayBuffer) return Buffer.from(v).toString("base64");
  if (ArrayBuffer.isView(v)) return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString("base64");
  return v.toString("base64");
}

/** A string with lone surrogates (which JSON.parse accepts from `\ud800` escapes) cannot cross to Rust as a
 * string: it is written {"$lone": the string with U+FFFD in their place}. */
function wellFormed(s) {
  return s.isWellFormed() ? s : { $lone: s.toWellFormed() };
}

/** Nesting deeper than this is written {"$deep": depth of the subtree} (the Rust side does the same), so that
 * responses stay within serde_json's recursion limit. */
const MAX_DEPTH = 64;

function depthOf(v) {
  if (Array.isArray(v)) return 1 + v.reduce((m, x) => Math.max(m, depthOf(x)), 0);
  if (v && typeof v === "object" && !isBinaryValue(v) && !(v instanceof Date)) {
    return 1 + Object.values(v).reduce((m, x) => Math.max(m, depthOf(x)), 0);
  }
  return 0;
}

/** Normalizes a decoded value (see Data above). */
function norm(v, depth = 0) {
  if (depth >= MAX_DEPTH && depthOf(v) > 0) return { $deep: depthOf(v) };
  if (v === null || v === undefined) return null;
  if (typeof v === "number") return Number.isFinite(v) ? v : null;
  if (typeof v === "string") return wellFormed(v);
  if (typeof v === "boolean") return v;
  if (typeof v === "bigint") return { $num: v.toString() };
  if (isBinaryValue(v)) return { $bin: binToBase64(v) };
  if (v instanceof Date) return Number.isNaN(v.getTime()) ? null : v.toISOString();
  if (Array.isArray(v)) return v.map((x) => (x === undefined ? null : norm(x, depth + 1)));
  if (typeof v === "object") {
    // Object.fromEntries defines own properties, so a "__proto__" key (JSON.parse makes it an own
    // property) stays a key instead of setting the prototype.
    const entries = [];
    for (const k of Object.keys(v)) {
      if (v[k] === undefined || typeof v[k] === "function") continue;
      entries.push([k.isWellFormed() ? k : "$lone:" + k.toWellFormed(), norm(v[k], depth + 1)]);
    }
    return Object.fromEntries(entries);
  }
  return null;
}

/** The inverse of norm for request data: {"$bin": b64} becomes a Buffer. */
function revive(v) {
  if (Array.isArray(v)) return v.map(revive);
  if (v && typeof v === "object") {
    const keys = Object.keys(v);
    if (keys.length === 1 && keys[0] === "$bin" && typeof v.$bin === "string") return Buffer.from(v.$bin, "base64");
    return Object.fromEntries(keys.map((k) => [k, revive(v[k])]));
  }
  return v;
}

function normId(id) {
  if (id === undefined) return undefined;
  if (Number.isSafeInteger(id)) return id;
  return { $num: String(id) };
}

function reviveId(id) {
  if (id && typeof id === "object" && typeof id.$num === "string") return Number(id.$num);
  return id;
}

function blobIn(blob) {
  if (typeof blob.text === "string") return blob.text;
  return Buffer.from(blob.bin, "base64");
}

function blobOut(v) {
  if (typeof v === "string") return { text: v.toWellFormed() };
  return { bin: binToBase64(v) };
}

function eioPacketOut(p) {
  const out = { type: p.type };
  if (p.data !== undefined && p.data !== "") out.data = blobOut(p.data);
  return out;
}

function eioPacketIn(p) {
  const out = { type: p.type };
  if (p.data) out.data = blobIn(p.data);
  return out;
}

function sioPacketOut(p) {
  const out = { type: p.type, nsp: typeof p.nsp === "string" ? wellFormed(p.nsp) : norm(p.nsp) };
  const id = normId(p.id);
  if (id !== undefined) out.id = id;
  if (p.data !== undefined) out.data = norm(p.data);
  return out;
}

/** A request packet as a JavaScript packet object, keys in the order {type, data, nsp, id}. */
function sioPacketIn(p) {
  const out = { type: p.type };
  if (p.data !== undefined) out.data = revive(p.data);
  out.nsp = p.nsp;
  if (p.id !== undefined) out.id = reviveId(p.id);
  return out;
}

const errText = (e) => (e && e.message) || String(e);

// ---- operations ----

const ops = {
  ping: () => ({ versions }),

  "eio.decodePacket": ({ input }) => {
    const p = eio.decodePacket(blobIn(input));
    if (p.type === "error") return { accepted: false, error: String(p.data) };
    return { accepted: true, packet: eioPacketOut(p) };
  },

  "eio.encodePacket": ({ packet, supportsBinary }) => {
    let encoded;
    eio.encodePacket(eioPacketIn(packet), supportsBinary !== false, (e) => (encoded = e));
    return { encoded: blobOut(encoded) };
  },

  "eio.decodePayload": ({ input }) => {
    const text = Buffer.from(input, "base64").toString("utf8");
    const packets = eio.decodePayload(text);
    const last = packets[packets.length - 1];
    if (last && last.type === "error") {
      return { accepted: false, packets: packets.slice(0, -1).map(eioPacketOut), error: String(last.data) };
    }
    return { accepted: true, packets: packets.map(eioPacketOut) };
  },

  "eio.encodePayload": ({ packets }) => {
    let encoded;
    eio.encodePayload(packets.map(eioPacketIn), (e) => (encoded = e));
    return { encoded: { text: encoded } };
  },

  "eio3.decodePayload": ({ input, binary }) => {
    const bytes = Buffer.from(input, "base64");
    const packets = [];
    let error;
    const onPacket = (p) => {
      if (error !== undefined) return false;
      if (p.type === "error") {
        error = String(p.data);
        return false;
      }
      if (p.type !== undefined) packets.push(eioPacketOut(p));
    };
    if (binary) eio3.decodePayloadAsBinary(bytes, onPacket);
    else eio3.decodePayload(bytes.toString("utf8"), onPacket);
    return error === undefined ? { accepted: true, packets } : { accepted: false, packets, error };
  },

  "eio3.encodePayload": ({ packets, supportsBinary }) => {
    let encoded;
    eio3.encodePayload(packets.map(eioPacketIn), supportsBinary, (e) => (encoded = e));
    return { encoded: blobOut(encoded) };
  },

  "sio.decode": ({ messages }) => {
    const decoder = new sio.Decoder();
    const packets = [];
    decoder.on("decoded", (p) => packets.push(sioPacketOut(p)));
    try {
      for (const m of messages) decoder.add(blobIn(m));
    } catch (e) {
      return { accepted: false, packets, pending: !!decoder.reconstructor, error: errText(e) };
    }
    return { accepted: true, packets, pending: !!decoder.reconstructor };
  },

  "sio.encode": ({ packet }) => {
    const encoder = new sio.Encoder();
    return { messages: encoder.encode(sioPacketIn(packet)).map(blobOut) };
  },

  "msgpack.decode": ({ input }) => {
    const decoder = new msgpack.Decoder();
    let packet;
    decoder.on("decoded", (p) => (packet = p));
    try {
      decoder.add(Buffer.from(input, "base64"));
    } catch (e) {
      return { accepted: false, error: errText(e) };
    }
    return { accepted: true, packet: sioPacketOut(packet) };
  },

  "msgpack.encode": ({ packet }) => {
    const encoder = new msgpack.Encoder();
    const [bytes] = encoder.encode(sioPacketIn(packet));
    return { encoded: b64(bytes) };
  },
};

// ---- the loop ----

const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
const out = [];
let scheduled = false;
function send(obj) {
  out.push(JSON.stringify(obj));
  if (!scheduled) {
    scheduled = true;
    setImmediate(() => {
      scheduled = false;
      process.stdout.write(out.join("\n") + "\n");
      out.length = 0;
    });
  }
}

rl.on("line", (line) => {
  if (!line.trim()) return;
  let req;
  try {
    req = JSON.parse(line);
  } catch (e) {
    send({ id: null, ok: false, error: "bad request line: " + errText(e) });
    return;
  }
  const op = ops[req.op];
  if (!op) {
    send({ id: req.id, ok: false, error: "unknown op " + req.op });
    return;
  }
  try {
    send({ id: req.id, ok: true, result: op(req) });
  } catch (e) {
    send({ id: req.id, ok: false, error: "harness: " + errText(e) });
  }
});
