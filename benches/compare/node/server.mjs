// The benchmark scenario server on the reference Socket.IO implementation (socket.io 4.8, default
// options: path /socket.io, WebSocket and HTTP long-polling).
//
// Behaviour on the main namespace "/", the same as bench-server's:
// - on connection the socket joins the room "all";
// - "echo" (...args) → emit "echo" back to the sender with the same arguments;
// - "ack" (...args) → acknowledge with the same arguments;
// - "broadcast" (...args) → io.to("all").emit("broadcast", ...args) (the sender included).
//
// Flags: --port N (default 3000, 0 picks one), --host ADDR (default 127.0.0.1), --recovery (connection state
// recovery with its defaults, for the reconnect storm); --threads N is accepted
// for symmetry with the other servers and ignored (Node runs the server on one thread).
// Prints "listening on http://ADDR" once bound, then serves until killed.

import { createServer } from "node:http";
import { Server } from "socket.io";

function usage() {
  process.stderr.write("usage: node server.mjs [--port N] [--host ADDR] [--threads N] [--recovery]\n");
  process.exit(2);
}

let port = 3000;
let host = "127.0.0.1";
let recovery = false;
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const value = () => {
    const v = argv[++i];
    if (v === undefined) usage();
    return v;
  };
  switch (argv[i]) {
    case "--port":
      port = Number.parseInt(value(), 10);
      if (!Number.isInteger(port) || port < 0 || port > 65535) usage();
      break;
    case "--host":
      host = value();
      break;
    case "--threads":
      value();
      break;
    case "--recovery":
      recovery = true;
      break;
    case "-h":
    case "--help":
      usage();
      break;
    default:
      process.stderr.write(`unknown flag ${argv[i]}\n`);
      usage();
  }
}

const httpServer = createServer();
const io = new Server(httpServer, recovery ? { connectionStateRecovery: {} } : {});

io.on("connection", (socket) => {
  socket.join("all");
  socket.on("echo", (...args) => {
    socket.emit("echo", ...args);
  });
  socket.on("ack", (...args) => {
    const callback = args.at(-1);
    if (typeof callback === "function") {
      callback(...args.slice(0, -1));
    }
  });
  socket.on("broadcast", (...args) => {
    io.to("all").emit("broadcast", ...args);
  });
});

httpServer.listen(port, host, () => {
  const addr = httpServer.address();
  const shown = addr.family === "IPv6" || addr.family === 6 ? `[${addr.address}]` : addr.address;
  process.stdout.write(`listening on http://${shown}:${addr.port}\n`);
});
