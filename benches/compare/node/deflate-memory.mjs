// Server memory per WebSocket connection with permessage-deflate negotiated, measured with the real Node
// client: N socket.io-client connections (over `ws`, which offers permessage-deflate), each exchanging one
// echo of SIZE characters (0: none), then idle for 3 s; prints one JSON line with the server's RSS per
// connection, and its RSS 3 s after the clients left.
//
//   bench-server --port 3000 --per-message-deflate &
//   node benches/compare/node/deflate-memory.mjs http://127.0.0.1:3000 SERVER_PID 1000 100000
//
// socket.io-client comes from the e2e project's packages (`npm ci` in e2e/ first).
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";
const require = createRequire(new URL("../../../e2e/package.json", import.meta.url));
const { io } = require("socket.io-client");
const [url, pid, n, size] = [process.argv[2], process.argv[3], +process.argv[4], +process.argv[5]];
const rss = () => +readFileSync(`/proc/${pid}/status`, "utf8").match(/VmRSS:\s+(\d+)/)[1];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let x = 1;
const payload = Array.from({ length: size }, () => String.fromCharCode(97 + ((x = (x * 1103515245 + 12345) >>> 0) % 26))).join("");
const before = rss();
const sockets = [];
for (let i = 0; i < n; i += 50) {
  await Promise.all(Array.from({ length: Math.min(50, n - i) }, () => new Promise((res, rej) => {
    const s = io(url, { transports: ["websocket"], forceNew: true });
    sockets.push(s);
    s.on("connect_error", rej);
    s.on("connect", () => {
      if (!size) return res();
      s.once("echo", (m) => (m.length === size ? res() : rej(new Error("bad echo"))));
      s.emit("echo", payload);
    });
  })));
}
await sleep(3000);
const idle = rss();
const ext = sockets[0].io.engine.transport.ws?._extensions ? Object.keys(sockets[0].io.engine.transport.ws._extensions) : "?";
for (const s of sockets) s.close();
await sleep(3000);
console.log(JSON.stringify({ n, size, extensions: ext, bytes_per_conn: Math.round(((idle - before) * 1024) / n), rss_before_kb: before, rss_idle_kb: idle, rss_left_kb: rss() }));
process.exit(0);
