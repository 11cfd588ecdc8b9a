// Differential WebSocket harness: the `ws` package's server-side frame parser (its Receiver, with
// permessage-deflate when asked) behind a JSON-lines protocol, driven by the `conformance` crate's WebSocket
// family (e2e/conformance/src/websocket.rs).
//
// One request per stdin line, one response per stdout line, in order, shaped as harness.mjs's:
//   {"id": N, "op": "ws.decode", "input": base64, "max": maxPayload, "deflate": bool}
//   -> {"id": N, "ok": true, "result": {"events": [Event], "error": null | {"code": close code, "message"}}}
// where Event is {"text": string} | {"binary": base64} | {"ping": base64} | {"pong": base64} |
// {"close": code, "reason": base64} (ws reports a close frame without a status as code 1005).
// The whole input is written to a fresh Receiver at once; the answer comes once ws has parsed all it can
// (inflating included). Input that ends inside a frame is not an error: ws waits for more, as ours does.
// `{"op": "ping"}` answers {"versions": {...}}; a failure of the harness itself is {"id", "ok": false, "error"}.

import { createRequire } from "node:module";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const require = createRequire(import.meta.url);
const { Receiver } = require("ws");
// Not in the package's exports; loaded by its file path.
const wsDir = dirname(require.resolve("ws"));
const PerMessageDeflate = require(join(wsDir, "lib", "permessage-deflate.js"));

const here = dirname(fileURLToPath(import.meta.url));
const versions = {
  ws: JSON.parse(readFileSync(join(here, "node_modules", "ws", "package.json"), "utf8")).version,
  node: process.versions.node,
};

const b64 = (buf) => Buffer.from(buf).toString("base64");

/** The close code ws attaches to its errors (under a symbol the package does not export). */
function statusCode(err) {
  const sym = Object.getOwnPropertySymbols(err).find((s) => s.description === "status-code");
  return sym ? err[sym] : null;
}

function decode(req) {
  return new Promise((resolve) => {
    const extensions = {};
    if (req.deflate) {
      // As a server that accepted a bare offer: the defaults, context takeover both ways.
      const pmd = new PerMessageDeflate({}, true, req.max);
      pmd.accept([{}]);
      extensions[PerMessageDeflate.extensionName] = pmd;
    }
    const receiver = new Receiver({ isServer: true, maxPayload: req.max, extensions });
    const events = [];
    let error = null;
    receiver.on("message", (data, isBinary) => {
      const buf = Buffer.isBuffer(data) ? data : Buffer.concat(data);
      events.push(isBinary ? { binary: b64(buf) } : { text: buf.toString("utf8") });
    });
    receiver.on("ping", (data) => events.push({ ping: b64(data) }));
    receiver.on("pong", (data) => events.push({ pong: b64(data) }));
    receiver.on("conclude", (code, reason) => events.push({ close: code, reason: b64(reason) }));
    receiver.on("error", (err) => {
      error ??= { code: statusCode(err), message: err.message };
    });
    receiver.write(Buffer.from(req.input, "base64"), (err) => {
      if (err) error ??= { code: statusCode(err), message: err.message };
      // Events of the last inflated message may follow the callback by a tick.
      setImmediate(() => {
        if (req.deflate) receiver._extensions[PerMessageDeflate.extensionName].cleanup();
        resolve({ events, error });
      });
    });
  });
}

const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
let chain = Promise.resolve();
rl.on("line", (line) => {
  if (!line.trim()) return;
  chain = chain.then(async () => {
    let req;
    try {
      req = JSON.parse(line);
      const result = req.op === "ping" ? { versions } : await decode(req);
      process.stdout.write(JSON.stringify({ id: req.id, ok: true, result }) + "\n");
    } catch (e) {
      process.stdout.write(JSON.stringify({ id: req?.id ?? null, ok: false, error: String(e?.stack ?? e) }) + "\n");
    }
  });
});
