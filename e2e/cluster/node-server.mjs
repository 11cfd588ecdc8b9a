// A Node Socket.IO server (the npm `socket.io` package) that joins a cluster through the reference Redis adapter
// (`@socket.io/redis-adapter`, node-redis v4 clients), so that the cluster tests can mix it with the Rust test server
// (e2e/testserver/src/main.rs) on one Redis. It handles the same events as the Rust test server, with the same
// arguments and the same ack shapes, so that a test can drive either kind of node identically:
//
// - `message` → emit `message-back` with the same arguments; `message-with-ack` → ack with the arguments.
// - `join` (room) / `leave` (room) → ack with the socket's rooms, sorted.
// - `to-room` (room, ...args) → `nsp.to(room).emit("room-message", ...args)` (sender included if member).
// - `broadcast` (...args) → `socket.broadcast.emit("broadcast", ...args)`; `emit-all` (...args) → `nsp.emit("all", ...)`.
// - `fetch-sockets` → ack with the sorted ids of `nsp.fetchSockets()` (every node of the cluster).
// - `sockets-join` (room) / `sockets-leave` (room) → `nsp.socketsJoin` / `nsp.socketsLeave`, then ack.
// - `disconnect-room` (room) → `nsp.in(room).disconnectSockets(false)`.
// - `broadcast-with-ack` (room, timeout ms) → `nsp.to(room).timeout(t).emit("question", cb)`; ack with
//   `{responses: [...], err?: message}`, every response as the list of the client's ack arguments (as the Rust
//   server reports them: `[[id], [id], …]`).
// - `whoami` → ack with this node's name.
// - `server-side-emit` (timeout ms) → `nsp.serverSideEmitWithAck("ping-node")`; ack with `{answers: [[name], …]}`
//   (one per other node, each as the list of its answer's arguments, like the Rust server) or `{err: message}`.
//   The adapter has no per-call timeout (it waits `requestsTimeout`), so the timeout is enforced here.
// - `server-side-emit-no-ack` (...args) → `nsp.serverSideEmit("note", ...args)`; every other node then runs
//   `io.local.emit("server-note", ...args)` (like the Rust server: to its own sockets).
// - Server events from the other nodes: `ping-node` (cb) → cb(name); `note` (...args) →
//   `io.local.emit("server-note")`.
// - On connection, emit `auth` with the handshake's auth payload (as the Rust server does).
//
// Flags (as the Rust test server's; each falls back to an env variable): `--port N` (PORT, default 0: any free port),
// `--redis URL` (REDIS_URL; without it the server runs alone with the in-memory adapter), `--redis-key KEY`
// (REDIS_KEY, default `socket.io`), `--name NAME` (NAME, default `node`), `--cookie` (COOKIE=1: the Engine.IO `io`
// cookie), `--admin` (ADMIN=1: `@socket.io/admin-ui`'s `instrument()` in development mode, no authentication, the
// node's name as its server id, as the Rust server's `--admin`), `--allow-eio3` (ALLOW_EIO3=1: serve Socket.IO 2
// clients, as the Rust server's `--allow-eio3`), `--sharded MODE` (SHARDED=MODE: `createShardedAdapter` with that
// `subscriptionMode` and the key as its `channelPrefix`, as the Rust server's `--sharded`), `--streams` (STREAMS=1:
// `@socket.io/redis-streams-adapter` with the key as its stream name and channel prefix), `--stream-count N`
// (STREAM_COUNT=N: its `streamCount`), `--use-sharded-pubsub` (USE_SHARDED_PUBSUB=1: its `useShardedPubSub`),
// `--only-plaintext` (ONLY_PLAINTEXT=1: its `onlyPlaintext`), `--recovery` (RECOVERY=1: connection state recovery with the reference's
// defaults, as the Rust server's `--recovery`). Listens on 127.0.0.1 and prints `listening on http://localhost:PORT` once it is bound and its adapter
// is subscribed to every channel it needs.

import { createServer } from "node:http";
import { Server } from "socket.io";
import { createAdapter, createShardedAdapter } from "@socket.io/redis-adapter";
import { createAdapter as createStreamsAdapter } from "@socket.io/redis-streams-adapter";
import { createClient, createCluster } from "redis";
import { instrument } from "@socket.io/admin-ui";

const NAMESPACES = ["/", "/custom"];

function parseArgs(argv) {
  const opts = {
    port: Number(process.env.PORT ?? 0),
    redis: process.env.REDIS_URL || undefined,
    key: process.env.REDIS_KEY || "socket.io",
    name: process.env.NAME || "node",
    cookie: process.env.COOKIE === "1",
    admin: process.env.ADMIN === "1",
    allowEIO3: process.env.ALLOW_EIO3 === "1",
    sharded: process.env.SHARDED || undefined,
    streams: process.env.STREAMS === "1",
    recovery: process.env.RECOVERY === "1",
    streamCount: Number(process.env.STREAM_COUNT ?? 1),
    useShardedPubSub: process.env.USE_SHARDED_PUBSUB === "1",
    onlyPlaintext: process.env.ONLY_PLAINTEXT === "1",
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) throw new Error(`${flag} needs a value`);
      return argv[++i];
    };
    switch (flag) {
      case "--port":
        opts.port = Number(value());
        break;
      case "--redis":
        opts.redis = value();
        break;
      case "--redis-key":
        opts.key = value();
        break;
      case "--name":
        opts.name = value();
        break;
      case "--cookie":
        opts.cookie = true;
        break;
      case "--admin":
        opts.admin = true;
        break;
      case "--allow-eio3":
        opts.allowEIO3 = true;
        break;
      case "--sharded":
        opts.sharded = value();
        break;
      case "--streams":
        opts.streams = true;
        break;
      case "--use-sharded-pubsub":
        opts.useShardedPubSub = true;
        break;
      case "--only-plaintext":
        opts.onlyPlaintext = true;
        break;
      case "--stream-count":
        opts.streamCount = Number(value());
        break;
      case "--recovery":
        opts.recovery = true;
        break;
      default:
        throw new Error(`unknown flag ${flag}`);
    }
  }
  if (!Number.isInteger(opts.port) || opts.port < 0) throw new Error(`bad port ${opts.port}`);
  return opts;
}

const sortedIds = (list) => list.map((s) => s.id).sort();
const ack = (args) => (typeof args[args.length - 1] === "function" ? args.pop() : () => {});

/** Resolves after `ms`, with `value`; the timer does not keep the process alive. */
const after = (ms, value) =>
  new Promise((resolve) => {
    setTimeout(() => resolve(value), ms).unref();
  });

function register(socket, name) {
  const nsp = socket.nsp;
  socket.emit("auth", socket.handshake.auth);

  socket.on("whoami", (cb) => typeof cb === "function" && cb(name));
  socket.on("message", (...args) => socket.emit("message-back", ...args));
  socket.on("message-with-ack", (...args) => ack(args)(...args));
  socket.on("join", (room, cb) => {
    socket.join(room);
    if (typeof cb === "function") cb([...socket.rooms].sort());
  });
  socket.on("leave", (room, cb) => {
    socket.leave(room);
    if (typeof cb === "function") cb([...socket.rooms].sort());
  });
  socket.on("to-room", (room, ...args) => {
    nsp.to(room).emit("room-message", ...args);
  });
  socket.on("broadcast", (...args) => socket.broadcast.emit("broadcast", ...args));
  socket.on("set-data", (value, cb) => {
    socket.data = value;
    if (typeof cb === "function") cb();
  });
  socket.on("get-data", (cb) => typeof cb === "function" && cb(socket.data));
  socket.on("emit-all", (...args) => nsp.emit("all", ...args));
  socket.on("fetch-sockets", async (cb) => {
    let ids = [];
    try {
      ids = sortedIds(await nsp.fetchSockets());
    } catch {
      // Like the Rust server: an error answers an empty list.
    }
    if (typeof cb === "function") cb(ids);
  });
  socket.on("sockets-join", (room, cb) => {
    nsp.socketsJoin(room);
    if (typeof cb === "function") cb();
  });
  socket.on("sockets-leave", (room, cb) => {
    nsp.socketsLeave(room);
    if (typeof cb === "function") cb();
  });
  socket.on("disconnect-room", (room) => {
    nsp.in(room).disconnectSockets(false);
  });
  socket.on("broadcast-with-ack", (room, ms, cb) => {
    const timeout = typeof ms === "number" ? ms : 1000;
    nsp
      .to(room)
      .timeout(timeout)
      .emit("question", (err, responses) => {
        const out = { responses: (responses ?? []).map((r) => [r]) };
        if (err) out.err = err.message;
        if (typeof cb === "function") cb(out);
      });
  });
  socket.on("server-side-emit", async (ms, cb) => {
    if (typeof ms === "function") [ms, cb] = [undefined, ms];
    const timeout = typeof ms === "number" ? ms : 1000;
    let out;
    try {
      const answers = await Promise.race([
        nsp.serverSideEmitWithAck("ping-node"),
        after(timeout, "timeout").then(() => {
          throw new Error(`operation has timed out (after ${timeout} ms)`);
        }),
      ]);
      out = { answers: answers.map((a) => [a]) };
    } catch (err) {
      out = { err: err.message };
    }
    if (typeof cb === "function") cb(out);
  });
  socket.on("server-side-emit-no-ack", (...args) => {
    nsp.serverSideEmit("note", ...args);
  });
}

/** The root nodes of a `redis-cluster://host:port?node=host:port&…` URL, for createCluster. */
function clusterRoots(url) {
  const u = new URL(url.replace(/^redis-cluster:/, "http:"));
  return [u.host, ...u.searchParams.getAll("node")].map((host) => ({ url: `redis://${host}` }));
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const ioOptions = {};
  if (opts.cookie) ioOptions.cookie = { name: "io", path: "/", httpOnly: true, sameSite: "lax" };
  if (opts.allowEIO3) ioOptions.allowEIO3 = true;
  // The reference's defaults, as the Rust server's `--recovery`.
  if (opts.recovery) ioOptions.connectionStateRecovery = { maxDisconnectionDuration: 2 * 60 * 1000, skipMiddlewares: true };

  let redisClients = [];
  let waitSubscribed = async () => {};
  if (opts.redis) {
    // A `redis-cluster://host:port?node=host:port…` URL (as the Rust server takes): node-redis' cluster client,
    // which sends each sharded subscription to the node that owns its channel.
    const cluster = opts.redis.startsWith("redis-cluster:");
    const pubClient = cluster
      ? createCluster({ rootNodes: clusterRoots(opts.redis) })
      : createClient({ url: opts.redis });
    const subClient = pubClient.duplicate();
    redisClients = [pubClient, subClient];
    for (const c of redisClients) {
      // Without a listener node-redis would throw; it reconnects by itself.
      c.on("error", (err) => console.error(`redis client error: ${err.message}`));
    }
    await Promise.all(redisClients.map((c) => c.connect()));
    const subId = cluster ? undefined : await subClient.clientId();
    ioOptions.adapter = opts.streams
      ? createStreamsAdapter(pubClient, {
          streamName: opts.key,
          channelPrefix: opts.key,
          streamCount: opts.streamCount,
          useShardedPubSub: opts.useShardedPubSub,
          onlyPlaintext: opts.onlyPlaintext,
        })
      : opts.sharded
        ? createShardedAdapter(pubClient, subClient, { channelPrefix: opts.key, subscriptionMode: opts.sharded })
        : createAdapter(pubClient, subClient, { key: opts.key });
    // The adapter subscribes without waiting; announce "listening" only once Redis has every subscription of
    // every namespace (3 channels and 1 pattern each), so that a test can use the cluster at once.
    waitSubscribed = async () => {
      // On a cluster the subscriptions spread over the nodes, and the streams adapter subscribes on a client of
      // its own: the tests wait for them (PUBSUB SHARDNUMSUB / NUMSUB).
      if (cluster || opts.streams) return;
      const count = NAMESPACES.length + (opts.admin ? 1 : 0); // the admin namespace has its own channels
      // Classic: 3 channels and 1 pattern per namespace; sharded: its channel and its response channel.
      const want = opts.sharded ? { ssub: 2 * count } : { sub: 3 * count, psub: count };
      for (let i = 0; i < 200; i++) {
        const line = String(await pubClient.sendCommand(["CLIENT", "LIST", "ID", String(subId)]));
        const got = (name) => Number(new RegExp(` ${name}=(\\d+)`).exec(line)?.[1] ?? 0);
        if (Object.entries(want).every(([name, n]) => got(name) >= n)) return;
        await after(10);
      }
      throw new Error("the Redis adapter did not subscribe within 2 s");
    };
  }

  const httpServer = createServer();
  const io = new Server(httpServer, ioOptions);
  for (const name of NAMESPACES) {
    const nsp = io.of(name);
    nsp.on("ping-node", (...args) => ack(args)(opts.name));
    // As the Rust server does: each node tells its own sockets.
    nsp.on("note", (...args) => {
      io.local.emit("server-note", ...args);
    });
    nsp.on("connection", (socket) => register(socket, opts.name));
  }
  if (opts.admin) instrument(io, { auth: false, serverId: opts.name, mode: "development" });
  await waitSubscribed();

  await new Promise((resolve, reject) => {
    httpServer.once("error", reject);
    httpServer.listen(opts.port, "127.0.0.1", resolve);
  });
  console.log(`listening on http://localhost:${httpServer.address().port}`);

  const shutdown = () => {
    io.close();
    for (const c of redisClients) c.disconnect().catch(() => {});
    setTimeout(() => process.exit(0), 200).unref();
  };
  process.on("SIGTERM", shutdown);
  process.on("SIGINT", shutdown);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
