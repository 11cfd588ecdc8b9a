// Cluster tests: Rust test servers (e2e/testserver/src/main.rs) and Node servers (node-server.mjs: npm socket.io with
// @socket.io/redis-adapter) on one real Redis, HAProxy in front of Rust servers, and a Redis restart.
//
// Both kinds of node handle the same events with the same ack shapes (see node-server.mjs), so every step drives
// them identically through socket.io-client 4.8.4 sockets. Each test starts its own Redis, servers and HAProxy and
// stops them in its `t.after` (clients first). Every wait is bounded; a failure says what was sent, what was
// expected and what arrived.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import path from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { setTimeout as sleep } from "node:timers/promises";

import ioV2 from "socket.io-client-v2";

import { ackOf, connected, makeClient, norm, show, upgraded, within } from "./clients.mjs";
import {
  COOKIE_LINE,
  docTemplate,
  haproxyConfig,
  startHaproxy,
  startNodeNode,
  shardCommand,
  startRedis,
  startRedisCluster,
  startRustNode,
  waitForServers,
  withRedis,
} from "./infra.mjs";

const T = { timeout: 10_000 };

/** The Rust emitter as a command (socketio-redis/examples/emit.rs), built by `cargo build --workspace --all-targets`. */
const EMIT_BIN =
  process.env.EMIT_BIN || path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../target/debug/examples/emit");

/** Every byte value once, so that any re-encoding (UTF-8, base64, msgpack str vs bin) shows. */
const ALL_BYTES = Buffer.from(Array.from({ length: 256 }, (_, i) => i));

// ---------------------------------------------------------------------------------------------------------------
// Helpers

/**
 * A cluster on a fresh Redis: `spec` maps a key to [kind ("rust" | "node"), name]. Resolves once every node is
 * subscribed. Returns {redis (settable, for a restart), nodes, clients, client(key, label, opts)}; clients are
 * closed, then nodes and Redis stopped, in `t.after`.
 */
async function cluster(t, spec, { sharded, streams = false, streamsSharded = false, redisCluster = false } = {}) {
  const clients = [];
  const nodes = {};
  let redis;
  t.after(async () => {
    for (const c of clients) c.disconnect();
    await Promise.all(Object.values(nodes).map((n) => n.stop()));
    if (redis) await redis.stop();
  });
  redis = redisCluster ? await startRedisCluster() : await startRedis();
  await Promise.all(
    Object.entries(spec).map(async ([key, [kind, name, extra = []]]) => {
      const adapterArgs = [
        ...(sharded ? ["--sharded", sharded] : []),
        ...(streams ? ["--streams"] : []),
        ...(streamsSharded ? ["--use-sharded-pubsub"] : []),
      ];
      const args = ["--redis", redis.url, "--name", name, ...adapterArgs, ...extra];
      nodes[key] = kind === "rust" ? await startRustNode(args) : await startNodeNode(args);
      nodes[key].name = name;
    }),
  );
  // The streams adapter on sharded Pub/Sub counts the servers as the sharded adapter does (PUBSUB SHARDNUMSUB).
  await waitForServers(redis.url, Object.keys(spec).length, { sharded: !!sharded || streamsSharded, streams });
  const env = {
    get redis() {
      return redis;
    },
    set redis(r) {
      redis = r;
    },
    nodes,
    clients,
    /** A client of node `key` (WebSocket only unless `opts` says otherwise); `label` names it in messages. */
    client(key, label, opts = {}) {
      const s = makeClient(nodes[key].url, label, { transports: ["websocket"], ...opts });
      s.node = key;
      clients.push(s);
      return s;
    },
  };
  return env;
}

const MIXED = { node: ["node", "node"], rustA: ["rust", "rust-a"], rustB: ["rust", "rust-b"] };

/**
 * `perNode` connected clients on each node of the mixed cluster: N1 N2 … on the Node node, A1 A2 … on rust-a, B1 B2 …
 * on rust-b; the second of each node uses HTTP long-polling, the others WebSocket.
 */
async function spreadClients(env, perNode = 2) {
  const out = {};
  for (const [key, letter] of [
    ["node", "N"],
    ["rustA", "A"],
    ["rustB", "B"],
  ]) {
    for (let i = 1; i <= perNode; i++) {
      const label = `${letter}${i}(${env.nodes[key].name})`;
      out[`${letter}${i}`] = env.client(key, label, i === 2 ? { transports: ["polling"] } : {});
    }
  }
  await Promise.all(Object.values(out).map((s) => connected(s)));
  return out;
}

/**
 * In the sharded adapter's dynamic modes a node receives a room's broadcasts once it listens on the room's channel,
 * which it starts doing in the background when its first socket joins (as the Node adapter does: a broadcast sent
 * before that is not received there). Waits until every node with a socket of `sockets` listens on `room`'s.
 */
async function roomReady(env, adapter, room, sockets) {
  if (!adapter.sharded || adapter.sharded === "static") return;
  await waitShardSubscribers(env, `socket.io#/#${room}#`, new Set(sockets.map((s) => s.node)).size);
}

async function join(socket, room) {
  const [rooms] = await ackOf(socket, 3000, "join", room);
  assert.ok(Array.isArray(rooms) && rooms.includes(room), `join ack of ${socket.label}: ${show(rooms)}`);
}

const sortedIds = (sockets) => sockets.map((s) => s.id).sort();
const byJson = (a, b) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : JSON.stringify(a) > JSON.stringify(b) ? 1 : 0);

/** The panic reports in the output of the cluster's Rust nodes, as a suffix for failure messages ("" if none). */
function panics(env) {
  const found = Object.values(env.nodes)
    .filter((n) => n.kind === "rust")
    .flatMap((n) => (n.output().match(/thread '[^']*'(?: \(\d+\))? panicked at [^\n]*\n[^\n]*/g) ?? []).map((p) => `${n.name}: ${p}`));
  return found.length ? `\n[Rust node panics: ${found.join(" | ")}]` : "";
}

function assertNoPanics(env) {
  assert.equal(panics(env), "", "no Rust node may panic");
}

/**
 * `from` asks its node to `emit-all` a fresh token; resolves once every socket of `sockets` got it. Packets from one
 * node reach every node in the order the node published them, and every connection delivers in order, so anything
 * `from`'s node broadcast before has then been delivered everywhere too.
 */
async function barrier(from, sockets, ms = 3000) {
  const token = `barrier-${Math.random().toString(36).slice(2)}`;
  from.emit("emit-all", token);
  await Promise.all(sockets.map((s) => s.w.waitFor("all", (a) => a[0] === token, ms, `barrier ${token} from ${from.label}`)));
}

// ---------------------------------------------------------------------------------------------------------------
// 1. A mixed cluster: one Node server and two Rust servers on one Redis

// The same tests for the classic adapter and for the sharded adapter (Redis 7 sharded Pub/Sub) in each of its
// subscription modes: every node of a cluster runs the same adapter.
for (const [label, adapter] of [
  ["classic adapter", {}],
  ["sharded adapter, static", { sharded: "static" }],
  ["sharded adapter, dynamic", { sharded: "dynamic" }],
  ["sharded adapter, dynamic-private", { sharded: "dynamic-private" }],
  ["streams adapter", { streams: true }],
  ["streams adapter on sharded Pub/Sub", { streams: true, streamsSharded: true }],
]) {
describe(`1. mixed cluster (1 Node + 2 Rust nodes on one Redis), ${label}`, () => {
  it("to-room from each node reaches the room's members on all nodes exactly once, binary intact", T, async (t) => {
    const env = await cluster(t, MIXED, adapter);
    const c = await spreadClients(env);
    const members = [c.N1, c.A1, c.B1, c.B2];
    const others = [c.N2, c.A2];
    for (const m of members) await join(m, "r");
    await roomReady(env, adapter, "r", members);

    // Senders: a non-member on the Node node, a member on rust-a, a non-member on rust-b.
    const senders = [c.N2, c.A1, c.B2];
    const payloads = new Map();
    for (const [i, s] of senders.entries()) {
      const tag = `from ${s.label}`;
      const payload = [tag, ALL_BYTES, { nested: { bin: Buffer.from([i, 0xff, 0x00, 0x80]) }, list: [Buffer.from(tag), i] }];
      payloads.set(tag, payload);
      s.emit("to-room", "r", ...payload);
      for (const m of members) {
        const got = await m.w.waitFor("room-message", (a) => a[0] === tag, 3000, `room-message "${tag}"`);
        assert.deepEqual(got, norm(payload), `${m.label} got ${show(got)} for the to-room sent by ${s.label}`);
      }
    }
    // Exactly once: after a barrier from every sender (broadcasts of one node arrive in order) and a short settle,
    // each member holds each message once and the non-members none.
    for (const s of senders) await barrier(s, [...members, ...others]);
    await sleep(200);
    for (const m of members) {
      const tags = m.w.all("room-message").map((a) => a[0]);
      assert.deepEqual(tags.slice().sort(), [...payloads.keys()].sort(), `room-message events of member ${m.label}`);
    }
    for (const o of others) {
      assert.deepEqual(o.w.all("room-message"), [], `room-message events of non-member ${o.label}`);
    }
    // Binary crossed between kinds: Rust-sent bytes on a Node node's client, Node-sent bytes on Rust nodes' clients.
    const fromRust = c.N1.w.all("room-message").find((a) => a[0] === `from ${c.A1.label}`);
    assert.ok(Buffer.isBuffer(fromRust[1]) && fromRust[1].equals(ALL_BYTES), `N1 (Node node) bytes from rust-a: ${show(fromRust)}`);
    for (const m of [c.A1, c.B1]) {
      const fromNode = m.w.all("room-message").find((a) => a[0] === `from ${c.N2.label}`);
      assert.ok(Buffer.isBuffer(fromNode[1]) && fromNode[1].equals(ALL_BYTES), `${m.label} bytes from the Node node: ${show(fromNode)}`);
    }
    assertNoPanics(env);
  });

  it("fetch-sockets from each node returns the ids of all sockets of the cluster", T, async (t) => {
    const env = await cluster(t, MIXED, adapter);
    const c = await spreadClients(env);
    const all = sortedIds(Object.values(c));
    for (const asker of [c.N1, c.A1, c.B1, c.N2, c.A2, c.B2]) {
      const [ids] = await ackOf(asker, 6000, "fetch-sockets");
      assert.deepEqual(ids, all, `fetch-sockets asked through ${asker.label}`);
    }
    assertNoPanics(env);
  });

  it("sockets-join / sockets-leave from one node move the sockets of every node (checked by to-room)", T, async (t) => {
    const env = await cluster(t, MIXED, adapter);
    const c = await spreadClients(env);
    const everyone = Object.values(c);

    /** `from` sends to-room `room` with `tag`; every socket of `expect` gets it once, the others not at all. */
    const check = async (from, room, tag, expect) => {
      from.emit("to-room", room, tag);
      for (const s of expect) await s.w.waitFor("room-message", (a) => a[0] === tag, 3000, `to-room ${room} "${tag}" from ${from.label}`);
      await barrier(from, everyone);
      for (const s of everyone) {
        const n = s.w.all("room-message").filter((a) => a[0] === tag).length;
        assert.equal(n, expect.includes(s) ? 1 : 0, `${s.label} got "${tag}" (to-room ${room} from ${from.label}) ${n} times`);
      }
    };

    /**
     * sockets-join / sockets-leave through `issuer`, then a fetch-sockets through the same node as a sync point.
     * @socket.io/redis-adapter 8.3 applies socketsJoin/socketsLeave to the issuing Node node's own sockets only when
     * its request comes back from Redis (its addSockets/delSockets just publish), so a to-room sent right after
     * through that node may still see the old rooms locally. Its fetch-sockets completes only with the other nodes'
     * answers, which Redis delivers to it after that request: once acked, the change is applied there too. (The Rust
     * adapter applies it locally at once; the extra round trip changes nothing there.)
     */
    const membership = async (issuer, event, room) => {
      await ackOf(issuer, 3000, event, room);
      await ackOf(issuer, 6000, "fetch-sockets");
      if (event === "sockets-join") await roomReady(env, adapter, room, everyone);
    };

    // Round 1: join through rust-a, leave through the Node node.
    await membership(c.A2, "sockets-join", "sj");
    await check(c.A2, "sj", "after join via rust-a, sent via rust-a", everyone);
    await check(c.N1, "sj", "after join via rust-a, sent via node", everyone);
    await check(c.B1, "sj", "after join via rust-a, sent via rust-b", everyone);
    await membership(c.N1, "sockets-leave", "sj");
    await check(c.N1, "sj", "after leave via node, sent via node", []);
    await check(c.A1, "sj", "after leave via node, sent via rust-a", []);
    await check(c.B2, "sj", "after leave via node, sent via rust-b", []);

    // Round 2: join through the Node node, leave through rust-b.
    await membership(c.N2, "sockets-join", "sj2");
    await check(c.N2, "sj2", "after join via node, sent via node", everyone);
    await check(c.A1, "sj2", "after join via node, sent via rust-a", everyone);
    await check(c.B1, "sj2", "after join via node, sent via rust-b", everyone);
    await membership(c.B2, "sockets-leave", "sj2");
    await check(c.B2, "sj2", "after leave via rust-b, sent via rust-b", []);
    await check(c.N1, "sj2", "after leave via rust-b, sent via node", []);
    await check(c.A2, "sj2", "after leave via rust-b, sent via rust-a", []);
    assertNoPanics(env);
  });

  it("disconnect-room from one node disconnects the room's members on all nodes", T, async (t) => {
    const env = await cluster(t, MIXED, adapter);
    const c = await spreadClients(env, 3);
    const d1 = [c.N1, c.A1, c.B1];
    const d2 = [c.N2, c.A2, c.B2];
    const stay = [c.N3, c.A3, c.B3];
    for (const s of d1) await join(s, "d1");
    for (const s of d2) await join(s, "d2");

    const disconnects = (list) =>
      Promise.all(list.map((s) => s.w.waitFor("disconnect", () => true, 3000, `"disconnect" of ${s.label}`)));

    c.A3.emit("disconnect-room", "d1"); // through rust-a
    for (const [i, args] of (await disconnects(d1)).entries()) {
      assert.equal(args[0], "io server disconnect", `disconnect reason of ${d1[i].label} (disconnect-room d1 via rust-a)`);
    }
    c.N3.emit("disconnect-room", "d2"); // through the Node node
    for (const [i, args] of (await disconnects(d2)).entries()) {
      assert.equal(args[0], "io server disconnect", `disconnect reason of ${d2[i].label} (disconnect-room d2 via node)`);
    }
    for (const s of stay) {
      assert.equal(s.connected, true, `${s.label} must stay connected`);
      assert.equal(s.w.count("disconnect"), 0, `${s.label} disconnect events: ${show(s.w.all("disconnect"))}`);
    }
    for (const s of [...d1, ...d2]) assert.equal(s.w.count("disconnect"), 1, `${s.label} disconnect events`);
    // The cluster forgot them everywhere.
    for (const asker of stay) {
      const [ids] = await ackOf(asker, 6000, "fetch-sockets");
      assert.deepEqual(ids, sortedIds(stay), `fetch-sockets via ${asker.label} after both disconnect-room`);
    }
    assertNoPanics(env);
  });

  it("server-side-emit with acks gathers one answer per other node", T, async (t) => {
    const env = await cluster(t, MIXED, adapter);
    const c = await spreadClients(env, 1);
    const cases = [
      [c.A1, [["node"], ["rust-b"]]],
      [c.B1, [["node"], ["rust-a"]]],
      [c.N1, [["rust-a"], ["rust-b"]]],
    ];
    for (const [asker, expected] of cases) {
      const [res] = await ackOf(asker, 5000, "server-side-emit", 3000);
      assert.ok(res && Array.isArray(res.answers), `server-side-emit via ${asker.label} answered ${show(res)}`);
      assert.deepEqual(res.answers.slice().sort(byJson), expected, `answers to server-side-emit via ${asker.label}: ${show(res)}${panics(env)}`);
    }
    assertNoPanics(env);
  });

  /** Members N1 A1 B1 B2 in room "q"; every client acks "question" with its id; `askers` issue in turn. */
  async function broadcastWithAck(t, pick) {
    const env = await cluster(t, MIXED, adapter);
    const c = await spreadClients(env);
    const everyone = Object.values(c);
    for (const s of everyone) s.on("question", (cb) => cb(s.id));
    const members = [c.N1, c.A1, c.B1, c.B2];
    for (const m of members) await join(m, "q");
    const expected = sortedIds(members).map((id) => [id]);

    for (const [i, asker] of pick(c).entries()) {
      const [res] = await ackOf(asker, 5000, "broadcast-with-ack", "q", 3000);
      const what = `broadcast-with-ack "q" (members ${show(members.map((m) => `${m.label}=${m.id}`))}) via ${asker.label}`;
      assert.ok(res && Array.isArray(res.responses), `${what} answered ${show(res)}${panics(env)}`);
      assert.equal(res.err, undefined, `${what} failed: ${show(res)}${panics(env)}`);
      assert.deepEqual(res.responses.slice().sort(byJson), expected, `acks gathered by ${what}${panics(env)}`);
      for (const s of everyone) {
        assert.equal(s.w.count("question"), members.includes(s) ? i + 1 : 0, `"question" events of ${s.label} after ${i + 1} broadcasts`);
      }
    }
    assertNoPanics(env);
  }

  it("broadcast-with-ack from Rust nodes to a room spread over all nodes gathers every client's ack", T, (t) =>
    broadcastWithAck(t, (c) => [c.A2, c.B1]),
  );

  it("broadcast-with-ack from the Node node to a room spread over all nodes gathers every client's ack", T, (t) =>
    broadcastWithAck(t, (c) => [c.N2]),
  );
});
}

// ---------------------------------------------------------------------------------------------------------------
// 2. HAProxy in front of two Rust servers

/**
 * Two Rust test servers (rust-1, rust-2; with `--cookie` when `cookie`) behind HAProxy run on docs/<doc> with free
 * ports. Returns {lb, servers, client(label, opts)}; everything is stopped in `t.after`.
 */
async function behindHaproxy(t, doc, { cookie, dropCookieLine = false }) {
  const clients = [];
  const servers = [];
  let lb;
  t.after(async () => {
    for (const c of clients) c.disconnect();
    if (lb) await lb.stop();
    await Promise.all(servers.map((s) => s.stop()));
  });
  await Promise.all(
    ["rust-1", "rust-2"].map(async (name, i) => {
      servers[i] = await startRustNode(["--name", name, ...(cookie ? ["--cookie"] : [])]);
    }),
  );
  lb = await startHaproxy((port) =>
    haproxyConfig(doc, { LB_PORT: port, S1_PORT: servers[0].port, S2_PORT: servers[1].port }, { dropCookieLine }),
  );
  return {
    lb,
    servers,
    client(label, opts = {}) {
      const s = makeClient(lb.url, label, opts);
      clients.push(s);
      return s;
    },
  };
}

/** Exchanges `rounds` message → message-back and whoami with `s`; returns the node names whoami answered. */
async function exchange(s, rounds) {
  const names = [];
  for (let i = 0; i < rounds; i++) {
    const tag = `${s.label} round ${i}`;
    s.emit("message", tag, Buffer.from([i]));
    const back = await s.w.waitFor("message-back", (a) => a[0] === tag, 3000, `message-back "${tag}"`);
    assert.deepEqual(back, [tag, Buffer.from([i])], `message-back of ${s.label}`);
    const [name] = await ackOf(s, 3000, "whoami");
    names.push(name);
  }
  return names;
}

describe("1b. the Rust emitter (RedisEmitter, no server)", () => {
  it("reaches the room's members on the Node node and on the Rust nodes, binary-free JSON args intact", T, async (t) => {
    const env = await cluster(t, MIXED);
    const c = await spreadClients(env);
    for (const m of [c.N1, c.A1, c.B2]) await join(m, "news");
    await promisify(execFile)(EMIT_BIN, ["--redis", env.redis.url, "--room", "news", "headline", '"from rust"', '{"n":1}']);
    for (const m of [c.N1, c.A1, c.B2]) {
      const got = await m.w.waitFor("headline", () => true, 3000, `"headline" from the emitter`);
      assert.deepEqual(got, ["from rust", { n: 1 }], `${m.label} got ${show(got)}`);
    }
    await sleep(200);
    for (const o of [c.N2, c.A2, c.B1]) assert.deepEqual(o.w.all("headline"), [], `non-member ${o.label}`);
    assertNoPanics(env);
  });
});

describe("2. HAProxy in front of two Rust nodes", () => {
  it("cookie stickiness (docs/haproxy-cookie.cfg): polling clients stay on one node each, both nodes serve", T, async (t) => {
    const env = await behindHaproxy(t, "haproxy-cookie.cfg", { cookie: true });
    const names = new Set();
    for (let i = 0; i < 6; i++) {
      const s = env.client(`poll-${i}`, { transports: ["polling"], withCredentials: true });
      await connected(s);
      const seen = await exchange(s, 5);
      assert.ok(["rust-1", "rust-2"].includes(seen[0]), `whoami of ${s.label}: ${show(seen)}`);
      assert.deepEqual(seen, Array(5).fill(seen[0]), `whoami answers of ${s.label} must all name one node`);
      names.add(seen[0]);
    }
    assert.deepEqual([...names].sort(), ["rust-1", "rust-2"], "the nodes that served the 6 clients");
  });

  it("control: the same setup without the `cookie` line makes polling clients fail", T, async (t) => {
    const text = docTemplate("haproxy-cookie.cfg");
    assert.equal((text.match(new RegExp(COOKIE_LINE.source, "gm")) ?? []).length, 1, "the cookie line of the doc");
    const env = await behindHaproxy(t, "haproxy-cookie.cfg", { cookie: true, dropCookieLine: true });
    assert.doesNotMatch(env.lb.config, /^\s*cookie io/m, "the control config has no cookie line");
    for (let i = 0; i < 3; i++) {
      const s = env.client(`rr-${i}`, { transports: ["polling"], withCredentials: true });
      let failure;
      try {
        failure = await within(
          5000,
          new Promise((resolve) => {
            s.once("connect_error", (err) => resolve(`connect_error: ${err.message} (HTTP ${show(err.description)})`));
            s.once("disconnect", (reason) => resolve(`disconnect: ${reason}`));
          }),
          `a failure of polling client ${s.label} through plain roundrobin`,
        );
      } catch (err) {
        assert.fail(`${err.message}; events: ${show(s.w.events.map((e) => [e.name, ...e.args]))}`);
      }
      // A request of the session lands on the other server, which refuses the unknown sid with HTTP 400.
      assert.match(failure, /^connect_error: xhr (post|poll) error \(HTTP 400\)$|^disconnect: transport error$/, `polling client ${s.label} without stickiness`);
      s.disconnect();
    }
  });

  it("WebSocket upgrade through HAProxy (cookie config) works and events still flow", T, async (t) => {
    const env = await behindHaproxy(t, "haproxy-cookie.cfg", { cookie: true });
    const names = new Set();
    for (let i = 0; i < 4; i++) {
      const s = env.client(`upgrade-${i}`, { withCredentials: true });
      await connected(s);
      const before = await exchange(s, 1);
      await upgraded(s);
      assert.equal(s.io.engine.transport.name, "websocket", `transport of ${s.label}`);
      const after = await exchange(s, 3);
      assert.deepEqual(after, Array(3).fill(before[0]), `whoami of ${s.label} before (${before[0]}) and after the upgrade`);
      assert.equal(s.w.count("disconnect") + s.w.count("connect_error"), 0, `${s.label} events: ${show(s.w.events)}`);
      names.add(before[0]);
    }
    assert.deepEqual([...names].sort(), ["rust-1", "rust-2"], "the nodes that served the 4 clients");
  });

  it("the io cookie through HAProxy: prefixed s1~/s2~ <sid>, Path=/; HttpOnly; SameSite=Lax, and it pins requests", T, async (t) => {
    const env = await behindHaproxy(t, "haproxy-cookie.cfg", { cookie: true });
    const handshake = `${env.lb.url}/socket.io/?EIO=4&transport=polling`;
    const prefixes = new Set();
    for (let i = 0; i < 2; i++) {
      const res = await within(3000, fetch(handshake), "the handshake through HAProxy");
      const body = await res.text();
      assert.equal(res.status, 200, `handshake status, body ${body}`);
      assert.equal(body[0], "0", `handshake body ${body}`);
      const { sid } = JSON.parse(body.slice(1));
      const cookies = res.headers.getSetCookie();
      const io = cookies.filter((v) => v.startsWith("io="));
      assert.equal(io.length, 1, `Set-Cookie headers: ${show(cookies)}`);
      const [nameValue, ...attrs] = io[0].split(";").map((p) => p.trim());
      const m = /^io=(s[12])~(.+)$/.exec(nameValue);
      assert.ok(m, `the io cookie through HAProxy must be io=s1~<sid> or io=s2~<sid>: ${io[0]}`);
      assert.equal(m[2], sid, `the cookie's value after the prefix must be the sid (${io[0]})`);
      assert.deepEqual(attrs.slice().sort(), ["HttpOnly", "Path=/", "SameSite=Lax"], `attributes of ${io[0]}`);
      prefixes.add(m[1]);

      // The prefixed cookie pins every request of the session to its server (HAProxy strips `sN~` on the way).
      const post = async (data) => {
        const r = await within(
          3000,
          fetch(`${handshake}&sid=${sid}`, { method: "POST", body: data, headers: { cookie: nameValue, "content-type": "text/plain" } }),
          `POST ${data}`,
        );
        return [r.status, await r.text()];
      };
      assert.deepEqual(await post("40"), [200, "ok"], `POST 40 with ${nameValue}`);
      for (let j = 0; j < 4; j++) {
        assert.deepEqual(await post(`42["message",${j}]`), [200, "ok"], `POST #${j} with ${nameValue}`);
      }
    }
    assert.deepEqual([...prefixes].sort(), ["s1", "s2"], "roundrobin spreads the two handshakes");
  });

  it("balance source (docs/haproxy-source.cfg, no cookies): polling and upgrading clients work", T, async (t) => {
    const env = await behindHaproxy(t, "haproxy-source.cfg", { cookie: false });
    const names = new Set();
    for (let i = 0; i < 4; i++) {
      const s = env.client(`source-${i}`, i === 3 ? {} : { transports: ["polling"] });
      await connected(s);
      if (i === 3) await upgraded(s);
      const seen = await exchange(s, 4);
      assert.deepEqual(seen, Array(4).fill(seen[0]), `whoami answers of ${s.label} must all name one node`);
      assert.equal(s.w.count("disconnect") + s.w.count("connect_error"), 0, `${s.label} events: ${show(s.w.events)}`);
      names.add(seen[0]);
    }
    // Every client comes from 127.0.0.1: the source hash sends them all to the same node.
    assert.equal(names.size, 1, `nodes that served clients of one address: ${show([...names])}`);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// 3. Redis restarted under a running cluster

// The log lines each adapter writes at warn for the loss and the reconnection of its subscriber.
const RESTART_LOGS = {
  classic: [
    / WARN socketio_redis::adapter: lost the redis subscriber connection; reconnecting/,
    / WARN socketio_redis::adapter: subscriber reconnected to redis and subscribed again channels=\d+/,
  ],
  sharded: [
    / WARN socketio_redis::adapter: lost the redis subscriber connection; reconnecting/,
    / WARN socketio_redis::adapter: subscriber reconnected to redis and subscribes again server=\S+ channels=\d+/,
  ],
};

describe("3. Redis restart", () => {
  for (const [label, adapter, logs, extra = []] of [
    ["classic adapter", {}, RESTART_LOGS.classic],
    ["sharded adapter", { sharded: "dynamic" }, RESTART_LOGS.sharded],
    // The stream is gone with the restarted Redis (it keeps nothing on disk here): reading goes on in the new one.
    ["streams adapter", { streams: true }, RESTART_LOGS.sharded],
    ["streams adapter with recovery", { streams: true }, RESTART_LOGS.sharded, ["--recovery"]],
  ]) {
  it(`${label}: after Redis is killed and started again on the same port, to-room crosses the nodes again`, T, async (t) => {
    const env = await cluster(t, { a: ["rust", "rust-a", extra], b: ["rust", "rust-b", extra] }, adapter);
    const ca = env.client("a", "ca(rust-a)");
    const cb = env.client("b", "cb(rust-b)");
    await Promise.all([connected(ca), connected(cb)]);
    await join(ca, "r");
    await join(cb, "r");
    await roomReady(env, adapter, "r", [ca, cb]);
    ca.emit("to-room", "r", "before");
    await cb.w.waitFor("room-message", (a) => a[0] === "before", 3000, `"before" from rust-a`);

    const port = env.redis.port;
    await env.redis.stop();
    env.redis = await startRedis({ port });
    const restartedAt = Date.now();

    /** `from` emits to-room every 200 ms until `to` receives one (bounded by `ms`); returns the number of tries. */
    const retry = async (from, to, prefix, ms) => {
      const deadline = Date.now() + ms;
      for (let i = 0; ; i++) {
        from.emit("to-room", "r", `${prefix}-${i}`);
        try {
          await to.w.waitFor("room-message", (a) => String(a[0]).startsWith(prefix), 200, `"${prefix}-*"`);
          return i + 1;
        } catch {
          if (Date.now() > deadline) {
            assert.fail(`${to.label} received no to-room "${prefix}-*" sent by ${from.label} in ${i + 1} tries over ${ms} ms after Redis restarted`);
          }
        }
      }
    };
    await retry(ca, cb, "a-to-b", 8000);
    await retry(cb, ca, "b-to-a", 8000 - (Date.now() - restartedAt));
    for (const s of [ca, cb]) {
      assert.equal(s.connected, true, `${s.label} stays connected through the Redis restart`);
      assert.equal(s.w.count("disconnect"), 0, `${s.label} disconnect events`);
    }
    // The log said so, at warn, on each Rust node (tracing's output on stderr, default filter info). The streams
    // adapter's broadcasts travel on its stream reader, which may be back before its Pub/Sub subscriber: waits for it.
    for (const key of ["a", "b"]) {
      const deadline = Date.now() + 5000;
      while (!logs[1].test(env.nodes[key].output()) && Date.now() < deadline) await sleep(50);
      const out = env.nodes[key].output();
      assert.match(out, logs[0], `${key}: the loss`);
      assert.match(out, logs[1], `${key}: the reconnection`);
    }
    assertNoPanics(env);
  });
  }
});

// ---------------------------------------------------------------------------------------------------------------
// 4. The Admin UI's server side (socketio-admin) across the cluster

describe("4. Admin UI across the cluster", () => {
  it("an admin on one Rust node sees both nodes' stats and sockets, and disconnects a socket of the other", T, async (t) => {
    const env = await cluster(t, { a: ["rust", "rust-a", ["--admin"]], b: ["rust", "rust-b", ["--admin"]] });
    const cb = env.client("b", "cb(rust-b)");
    await connected(cb);
    const admin = makeClient(`${env.nodes.a.url}/admin`, "admin(rust-a)", { transports: ["websocket"] });
    env.clients.push(admin);
    await connected(admin);
    // all_sockets is gathered over the cluster: rust-b's socket is in it.
    const [all] = await admin.w.waitFor("all_sockets", () => true, 3000, "all_sockets");
    assert.ok(all.some((s) => s.id === cb.id && s.nsp === "/"), `all_sockets has ${cb.id}: ${show(all.map((s) => s.id))}`);
    // Each node's server_stats reach the admin connected to rust-a, told apart by server id.
    for (const id of ["rust-a", "rust-b"]) {
      const [stats] = await admin.w.waitFor("server_stats", ([s]) => s.serverId === id, 5000, `server_stats of ${id}`);
      assert.ok(Array.isArray(stats.namespaces) && typeof stats.clientsCount === "number", show(stats));
    }
    // A command from the admin on rust-a acts on rust-b's socket, and rust-b's report comes back.
    const cbId = cb.id; // the client forgets its id once disconnected
    admin.emit("_disconnect", "/", false, cbId);
    await cb.w.waitFor("disconnect", ([reason]) => reason === "io server disconnect", 3000, "cb disconnected");
    await admin.w.waitFor("socket_disconnected", ([nsp, id]) => nsp === "/" && id === cbId, 3000, "socket_disconnected from rust-b");
    assertNoPanics(env);
  });

  it("with a Node node running @socket.io/admin-ui: each admin sees the other's sockets as they are, and commands cross", T, async (t) => {
    const env = await cluster(t, { a: ["rust", "rust-a", ["--admin"]], n: ["node", "node-n", ["--admin"]] });
    // A polling client of the Node node, and a WebSocket client of the Rust node.
    const cn = env.client("n", "cn(node)", { transports: ["polling"] });
    const ca = env.client("a", "ca(rust-a)");
    await Promise.all([connected(cn), connected(ca)]);
    const rustAdmin = makeClient(`${env.nodes.a.url}/admin`, "admin(rust-a)", { transports: ["websocket"] });
    const nodeAdmin = makeClient(`${env.nodes.n.url}/admin`, "admin(node-n)", { transports: ["websocket"] });
    env.clients.push(rustAdmin, nodeAdmin);
    await Promise.all([connected(rustAdmin), connected(nodeAdmin)]);

    // The Rust admin lists the Node node's socket with the transport and client id the Node instrument keeps in
    // its data, and none of that bookkeeping as data.
    const [fromRust] = await rustAdmin.w.waitFor("all_sockets", () => true, 3000, "all_sockets on rust-a");
    const seen = fromRust.find((s) => s.id === cn.id && s.nsp === "/");
    assert.ok(seen, `rust-a's all_sockets has ${cn.id}: ${show(fromRust.map((s) => s.id))}`);
    assert.equal(seen.transport, "polling", show(seen));
    assert.equal(seen.clientId, cn.io.engine.id.slice(0, 12), show(seen));
    assert.ok(!("_admin" in (seen.data ?? {})), show(seen));
    // The Node admin lists the Rust node's socket.
    const [fromNode] = await nodeAdmin.w.waitFor("all_sockets", () => true, 3000, "all_sockets on node-n");
    assert.ok(fromNode.some((s) => s.id === ca.id && s.nsp === "/"), `node-n's all_sockets has ${ca.id}: ${show(fromNode.map((s) => s.id))}`);
    // Both admins get both servers' statistics.
    for (const admin of [rustAdmin, nodeAdmin]) {
      for (const id of ["rust-a", "node-n"]) {
        await admin.w.waitFor("server_stats", ([s]) => s.serverId === id, 5000, `${admin.label}: server_stats of ${id}`);
      }
    }
    // The Rust admin puts the Node node's socket in a room: the Node node does it and reports it to both admins.
    rustAdmin.emit("join", "/", "vip", cn.id);
    for (const admin of [rustAdmin, nodeAdmin]) {
      await admin.w.waitFor("room_joined", ([nsp, room, id]) => nsp === "/" && room === "vip" && id === cn.id, 3000, `${admin.label}: room_joined`);
    }
    // The Node admin disconnects the Rust node's socket: the Rust node does it and reports it to both admins.
    const caId = ca.id;
    nodeAdmin.emit("_disconnect", "/", false, caId);
    await ca.w.waitFor("disconnect", ([reason]) => reason === "io server disconnect", 3000, "ca disconnected");
    for (const admin of [rustAdmin, nodeAdmin]) {
      await admin.w.waitFor("socket_disconnected", ([nsp, id]) => nsp === "/" && id === caId, 3000, `${admin.label}: socket_disconnected`);
    }
    assertNoPanics(env);
  });
});


// ---------------------------------------------------------------------------------------------------------------
// 5. Socket.IO 2 clients in the mixed cluster (every node with allow_eio3 / allowEIO3)

/** A socket.io-client 2 socket on `url` whose room-message events are kept in `got`; closed by `env`. */
function v2client(env, key, label, opts) {
  const s = ioV2(env.nodes[key].url, { forceNew: true, reconnection: false, ...opts });
  s.label = label;
  s.got = [];
  s.on("room-message", (...args) => s.got.push(norm(args)));
  env.clients.push(s);
  return s;
}

/** Resolves once `s.got` holds a room-message whose first argument is `tag`. */
async function v2Got(s, tag, ms = 3000) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const found = s.got.find((a) => a[0] === tag);
    if (found) return found;
    await sleep(10);
  }
  throw new Error(`${s.label}: no room-message "${tag}" within ${ms} ms (got ${show(s.got)})`);
}

describe("5. Socket.IO 2 clients in the mixed cluster", () => {
  it("v2 and v4 clients on Node and Rust nodes share a room: every to-room reaches each member once, binary intact", T, async (t) => {
    const spec = Object.fromEntries(Object.entries(MIXED).map(([k, [kind, name]]) => [k, [kind, name, ["--allow-eio3"]]]));
    const env = await cluster(t, spec);
    const v2 = [
      v2client(env, "rustA", "v2-polling(rust-a)", { transports: ["polling"] }),
      v2client(env, "rustB", "v2-websocket(rust-b)", { transports: ["websocket"] }),
      v2client(env, "node", "v2-upgrade(node)", {}),
    ];
    await Promise.all(v2.map((s) => within(3000, new Promise((ok, fail) => (s.on("connect", ok), s.on("error", fail))), `${s.label} connect`)));
    const v4 = [env.client("rustA", "v4(rust-a)"), env.client("node", "v4(node)", { transports: ["polling"] })];
    await Promise.all(v4.map((s) => connected(s)));
    for (const s of v2) {
      const [rooms] = await within(3000, new Promise((ok) => s.emit("join", "r", (...a) => ok(a))), `${s.label} join`);
      assert.ok(rooms.includes("r"), `${s.label}: ${show(rooms)}`);
    }
    for (const s of v4) await join(s, "r");

    // fetch-sockets from a Rust node lists the v2 sockets of every node, with their v2 ids (the engine ids).
    const [ids] = await ackOf(v4[0], 3000, "fetch-sockets");
    for (const s of v2) assert.ok(ids.includes(s.id), `fetch-sockets from rust-a has ${s.label} ${s.id}: ${show(ids)}`);

    const senders = [v2[0], v2[2], v4[0], v4[1]];
    for (const [i, sender] of senders.entries()) {
      const tag = `from ${sender.label}`;
      const payload = [tag, ALL_BYTES, { i, bin: Buffer.from([i, 0xff]) }];
      sender.emit("to-room", "r", ...payload);
      for (const m of v2) assert.deepEqual(await v2Got(m, tag), norm(payload), `${m.label} got the to-room of ${sender.label}`);
      for (const m of v4) {
        const got = await m.w.waitFor("room-message", (a) => a[0] === tag, 3000, `${m.label}: room-message "${tag}"`);
        assert.deepEqual(got, norm(payload), `${m.label} got the to-room of ${sender.label}`);
      }
    }
    // Exactly once each.
    for (const s of senders.filter((s) => !v2.includes(s))) await barrier(s, v4);
    await sleep(200);
    const tags = senders.map((s) => `from ${s.label}`).sort();
    for (const m of v2) assert.deepEqual(m.got.map((a) => a[0]).sort(), tags, `room-message events of ${m.label}`);
    for (const m of v4) assert.deepEqual(m.w.all("room-message").map((a) => a[0]).sort(), tags, `room-message events of ${m.label}`);
    assertNoPanics(env);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// 6. The sharded adapter's room channels: in the dynamic modes a node listens on a room's channel while it has
// members there, and a broadcast to one room reaches only those nodes; in static mode no room has a channel.

/** The number of connections subscribed to the shard channel (PUBSUB SHARDNUMSUB). */
async function shardSubscribers(env, channel) {
  const args = ["PUBSUB", "SHARDNUMSUB", channel];
  return withRedis(env.redis.url, async (client) => Number((await shardCommand(client, channel, args))[1]));
}

/** Waits until `shardSubscribers` is `n`. */
async function waitShardSubscribers(env, channel, n, ms = 3000) {
  const deadline = Date.now() + ms;
  let count;
  while ((count = await shardSubscribers(env, channel)) !== n) {
    if (Date.now() > deadline) throw new Error(`${channel} has ${count} shard subscribers after ${ms} ms, expected ${n}`);
    await sleep(20);
  }
}

/** How many connections one SPUBLISH to `channel` reached, asked of Redis itself. */
async function spublishReach(env, channel) {
  return withRedis(env.redis.url, async (client) => Number(await client.sendCommand(["SPUBLISH", channel, "{}"])));
}

describe("6. the sharded adapter's room channels", () => {
  it("dynamic: a node listens on a room's channel while it has members there, on Node and Rust nodes alike", T, async (t) => {
    const env = await cluster(t, MIXED, { sharded: "dynamic" });
    const c = await spreadClients(env, 1);
    const channel = (room) => `socket.io#/#${room}#`;
    // A socket's own room has no channel in "dynamic".
    assert.equal(await shardSubscribers(env, channel(c.A1.id)), 0);
    await join(c.A1, "solo");
    await waitShardSubscribers(env, channel("solo"), 1);
    await join(c.N1, "solo");
    await waitShardSubscribers(env, channel("solo"), 2);
    await join(c.B1, "other");
    await waitShardSubscribers(env, channel("other"), 1);
    // A broadcast to "solo" from rust-b (no member there) reaches its two members, each once.
    c.B1.emit("to-room", "solo", "only-members");
    for (const m of [c.A1, c.N1]) await m.w.waitFor("room-message", (a) => a[0] === "only-members", 3000, `${m.label}`);
    await barrier(c.B1, [c.A1, c.N1, c.B1]);
    assert.equal(c.B1.w.count("room-message"), 0);
    // Leaving (or disconnecting) the last member drops the node's subscription.
    const [rooms] = await ackOf(c.A1, 3000, "leave", "solo");
    assert.ok(!rooms.includes("solo"));
    await waitShardSubscribers(env, channel("solo"), 1);
    c.N1.disconnect();
    await waitShardSubscribers(env, channel("solo"), 0);
    assertNoPanics(env);
  });

  it("dynamic-private: a socket's own room has a channel too; static: no room has one", T, async (t) => {
    const priv = await cluster(t, { rustA: ["rust", "rust-a"], node: ["node", "node"] }, { sharded: "dynamic-private" });
    const a = priv.client("rustA", "A(rust-a)");
    const n = priv.client("node", "N(node)");
    await Promise.all([connected(a), connected(n)]);
    await waitShardSubscribers(priv, `socket.io#/#${a.id}#`, 1);
    await waitShardSubscribers(priv, `socket.io#/#${n.id}#`, 1);
    // A message to one socket goes to its channel only: Redis counts one receiver.
    assert.equal(await spublishReach(priv, `socket.io#/#${a.id}#`), 1);

    const stat = await cluster(t, { rustA: ["rust", "rust-a2"], node: ["node", "node2"] }, { sharded: "static" });
    const s = stat.client("rustA", "S(rust-a2)");
    await connected(s);
    await join(s, "room");
    await sleep(100);
    assert.equal(await shardSubscribers(stat, "socket.io#/#room#"), 0);
    assert.equal(await shardSubscribers(stat, `socket.io#/#${s.id}#`), 0);
    // Every node listens on the namespace's channel.
    assert.equal(await shardSubscribers(stat, "socket.io#/#"), 2);
    assertNoPanics(priv);
    assertNoPanics(stat);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// 7. The sharded adapter on a Redis Cluster of three masters (started by the test): the namespace's channel, the
// response channels and the room channels hash to different shards, and each server subscribes to each on the node
// that owns it (fred in Rust, node-redis' cluster client in Node).

describe("7. the sharded and streams adapters on a Redis Cluster of three masters", () => {
  for (const mode of ["static", "dynamic", "streams"]) {
    it(`${mode}: rooms across Node and Rust nodes, binary, fetch-sockets, joins, broadcasts with acks`, { timeout: 60_000 }, async (t) => {
      const adapter = mode === "streams" ? { streams: true } : { sharded: mode };
      const env = await cluster(t, MIXED, { ...adapter, redisCluster: true });
      const c = await spreadClients(env);
      const members = [c.N1, c.A1, c.B2];
      for (const m of members) await join(m, "r");
      await roomReady(env, adapter, "r", members);
      for (const sender of [c.N2, c.A2, c.B1]) {
        const tag = `from ${sender.label}`;
        const payload = [tag, ALL_BYTES, { bin: Buffer.from([1, 2]) }];
        sender.emit("to-room", "r", ...payload);
        for (const m of members) {
          const got = await m.w.waitFor("room-message", (a) => a[0] === tag, 3000, `room-message "${tag}" on ${m.label}`);
          assert.deepEqual(got, norm(payload));
        }
      }
      for (const s of [c.N2, c.A2, c.B1]) await barrier(s, Object.values(c));
      for (const m of members) assert.equal(m.w.count("room-message"), 3, `room-message events of ${m.label}`);
      for (const o of [c.N2, c.A2, c.B1]) assert.equal(o.w.count("room-message"), 0, `room-message events of ${o.label}`);
      // Every node's sockets, from a Rust node and from the Node node.
      for (const asker of [c.A1, c.N1]) {
        const [ids] = await ackOf(asker, 5000, "fetch-sockets");
        assert.deepEqual(ids, sortedIds(Object.values(c)), `fetch-sockets from ${asker.label}`);
      }
      // A join made on one node moves sockets of every node.
      await ackOf(c.B1, 5000, "sockets-join", "late");
      // The other nodes apply the join when its message reaches them; rust-b's next broadcast comes after it.
      await barrier(c.B1, Object.values(c));
      await roomReady(env, adapter, "late", Object.values(c));
      c.A1.emit("to-room", "late", "everyone");
      for (const s of Object.values(c)) await s.w.waitFor("room-message", (a) => a[0] === "everyone", 3000, `"late" on ${s.label}`);
      // A broadcast with acks from a Rust node gathers the acks of the room's members on every node.
      for (const s of Object.values(c)) s.on("question", (cb) => cb(s.id));
      const [res] = await ackOf(c.A2, 8000, "broadcast-with-ack", "r", 4000);
      assert.equal(res.err, undefined, show(res));
      assert.deepEqual(res.responses.slice().sort(byJson), sortedIds(members).map((id) => [id]));
      if (mode === "dynamic") {
        // The room's channel is on the shard that owns its slot, with one subscriber per node that has members.
        assert.equal(await shardSubscribers(env, "socket.io#/#r#"), 3);
      }
      assertNoPanics(env);
    });
  }
});

// ---------------------------------------------------------------------------------------------------------------
// 8. Bursts: every broadcast of a burst reaches the other node's member, in order (the subscriber's queue must not
// drop what a burst brings faster than it is handed on).

describe("8. a burst of broadcasts crosses the cluster whole", () => {
  for (const [label, adapter] of [
    ["classic adapter", {}],
    ["sharded adapter, dynamic", { sharded: "dynamic" }],
    ["sharded adapter, static", { sharded: "static" }],
    ["streams adapter", { streams: true }],
  ]) {
    it(`${label}: 1000 to-room broadcasts sent at once arrive, each once, in order`, { timeout: 20_000 }, async (t) => {
      const env = await cluster(t, { a: ["rust", "rust-a"], b: ["rust", "rust-b"] }, adapter);
      const member = env.client("a", "member(rust-a)");
      const sender = env.client("b", "sender(rust-b)");
      await Promise.all([connected(member), connected(sender)]);
      await join(member, "burst");
      await roomReady(env, adapter, "burst", [member]);
      for (let i = 0; i < 1000; i++) sender.emit("to-room", "burst", i);
      await member.w.waitFor("room-message", (a) => a[0] === 999, 15_000, "the last of the burst");
      await barrier(sender, [member, sender]);
      assert.deepEqual(member.w.all("room-message").map((a) => a[0]), Array.from({ length: 1000 }, (_, i) => i));
      assertNoPanics(env);
    });
  }
});

// ---------------------------------------------------------------------------------------------------------------
// 9. Connection state recovery across nodes (the streams adapter): the session a node persists in Redis and the
// broadcasts in the stream are found by whichever node the client reconnects to, Node or Rust.

const RECOVERING = {
  node: ["node", "node", ["--recovery"]],
  rustA: ["rust", "rust-a", ["--recovery"]],
  rustB: ["rust", "rust-b", ["--recovery"]],
};

/** A stream entry id, the offset the streams adapter gives every broadcast. */
const STREAM_ID = /^\d+-\d+$/;

/** Options of a client that reconnects, quickly and without jitter. */
const RECONNECTING = { reconnection: true, reconnectionDelay: 300, reconnectionDelayMax: 300, randomizationFactor: 0 };

/** A command to the cluster's (single) Redis. */
const redisCommand = (env, args) => withRedis(env.redis.url, (client) => client.sendCommand(args));

/** The keys matching `pattern`, sorted. */
const redisKeys = async (env, pattern) => (await redisCommand(env, ["KEYS", pattern])).sort();

describe("9. connection state recovery across nodes, streams adapter", () => {
  for (const [from, to, via] of [
    ["node", "rustA", "rustB"],
    ["rustA", "node", "rustB"],
    ["rustA", "rustB", "node"],
  ]) {
    it(`a session left on ${from} is recovered on ${to}: its id, rooms, data, the broadcasts it missed in order, then live ones`, T, async (t) => {
      const env = await cluster(t, RECOVERING, { streams: true });
      const x = env.client(from, `x(${from})`, RECONNECTING);
      const sender = env.client(via, `sender(${via})`);
      await Promise.all([connected(x), connected(sender)]);
      await join(x, "r");
      await ackOf(x, 3000, "set-data", { user: "ada", tags: ["a", "b"], n: 1 });
      const firstId = x.id;
      // Every event it gets carries an offset: broadcasts, and (through the stream too) the node's own emits.
      x.emit("message", "hello");
      const back = await x.w.waitFor("message-back");
      assert.equal(back[0], "hello");
      assert.match(String(back[1]), STREAM_ID, `the offset of a socket.emit from ${from}: ${show(back)}`);
      sender.emit("to-room", "r", "m1");
      const m1 = await x.w.waitFor("room-message", (a) => a[0] === "m1");
      assert.match(String(m1[1]), STREAM_ID, `the offset of a broadcast: ${show(m1)}`);

      // The client's next connection goes to `to`, as behind a load balancer once `from` is out of reach; its
      // transport closes (a recoverable reason), and two broadcasts go out while it is away.
      x.io.uri = env.nodes[to].url;
      x.io.engine.close();
      await x.w.waitFor("disconnect");
      sender.emit("to-room", "r", "m2");
      sender.emit("to-room", "r", "m3", ALL_BYTES);
      await barrier(sender, [sender]);
      await x.w.waitFor("room-message", (a) => a[0] === "m3", 5000, "the missed m3");
      await within(3000, connected(x), `${x.label} reconnected to ${to}`);
      assert.equal(x.recovered, true, `recovered on ${to}`);
      assert.equal(x.id, firstId, "the same socket id");
      const [name] = await ackOf(x, 3000, "whoami");
      assert.equal(name, env.nodes[to].name, "the client is on the other node now");
      const [data] = await ackOf(x, 3000, "get-data");
      assert.deepEqual(data, { user: "ada", tags: ["a", "b"], n: 1 }, "the socket's data crossed");
      sender.emit("to-room", "r", "m4");
      await x.w.waitFor("room-message", (a) => a[0] === "m4", 3000, "the live m4 (the socket is in its room again)");
      await barrier(sender, [sender, x]);
      const got = x.w.all("room-message");
      assert.deepEqual(got.map((a) => a[0]), ["m1", "m2", "m3", "m4"], "every broadcast once, in order");
      assert.ok(Buffer.isBuffer(got[2][1]) && got[2][1].equals(ALL_BYTES), `the missed binary: ${show(got[2])}`);
      const offsets = got.map((a) => a[a.length - 1]);
      for (const o of offsets) assert.match(String(o), STREAM_ID);
      const key = (o) => o.split("-").map(BigInt);
      for (let i = 1; i < offsets.length; i++) {
        const [a, b] = [key(offsets[i - 1]), key(offsets[i])];
        assert.ok(a[0] < b[0] || (a[0] === b[0] && a[1] < b[1]), `offsets increase: ${show(offsets)}`);
      }
      // The stored session was taken (GET + DEL), so the same offset cannot recover it twice.
      const keys = await redisKeys(env, "sio:session:*");
      assert.deepEqual(keys, [], "no session is left in Redis");
      assertNoPanics(env);
    });
  }

  it("on a Redis Cluster with two streams: sessions of both namespaces cross between Node and Rust nodes", { timeout: 60_000 }, async (t) => {
    // "/" goes to stream socket.io-1 and "/custom" to socket.io-0 (the reference's hash); on a Redis Cluster they live
    // in different slots, so each is read with an XREAD of its own.
    const spec = Object.fromEntries(
      Object.entries(RECOVERING).map(([k, [kind, name, extra]]) => [k, [kind, name, [...extra, "--stream-count", "2"]]]),
    );
    const env = await cluster(t, spec, { streams: true, redisCluster: true });
    for (const [nsp, from, to] of [
      ["", "node", "rustA"],
      ["/custom", "rustA", "node"],
      ["/custom", "rustB", "rustA"],
    ]) {
      const x = makeClient(`${env.nodes[from].url}${nsp}`, `x(${from}${nsp})`, { transports: ["websocket"], ...RECONNECTING });
      const sender = makeClient(`${env.nodes.rustB.url}${nsp}`, `sender(rust-b${nsp})`, { transports: ["websocket"] });
      env.clients.push(x, sender);
      await Promise.all([connected(x), connected(sender)]);
      await join(x, "r");
      sender.emit("to-room", "r", "m1");
      await x.w.waitFor("room-message", (a) => a[0] === "m1");
      const firstId = x.id;
      x.io.uri = env.nodes[to].url;
      x.io.engine.close();
      await x.w.waitFor("disconnect");
      sender.emit("to-room", "r", "m2", ALL_BYTES);
      await x.w.waitFor("room-message", (a) => a[0] === "m2", 5000, "the missed m2");
      await within(3000, connected(x), `${x.label} reconnected to ${to}`);
      assert.equal(x.recovered, true, `${x.label} recovered on ${to}`);
      assert.equal(x.id, firstId);
      sender.emit("to-room", "r", "m3");
      await x.w.waitFor("room-message", (a) => a[0] === "m3");
      assert.deepEqual(x.w.all("room-message").map((a) => a[0]), ["m1", "m2", "m3"], `${x.label}: every broadcast once, in order`);
      x.disconnect();
      sender.disconnect();
    }
    // Both streams were written, each on its own node's slot.
    await withRedis(env.redis.url, async (client) => {
      for (const stream of ["socket.io-0", "socket.io-1"]) {
        const len = await client.sendCommand(stream, true, ["XLEN", stream]);
        assert.ok(len > 0, `${stream} has entries (${len})`);
      }
    });
    assertNoPanics(env);
  });

  it("onlyPlaintext: every stream entry is JSON, binary crosses as Node writes a Buffer in JSON, from both kinds of node", T, async (t) => {
    const env = await cluster(
      t,
      { node: ["node", "node", ["--only-plaintext"]], rustA: ["rust", "rust-a", ["--only-plaintext"]] },
      { streams: true },
    );
    const onNode = env.client("node", "member(node)");
    const onRust = env.client("rustA", "member(rust-a)");
    await Promise.all([connected(onNode), connected(onRust)]);
    await join(onNode, "r");
    await join(onRust, "r");
    const bytes = Buffer.from([1, 2, 255]);
    onNode.emit("to-room", "r", "from node", bytes);
    onRust.emit("to-room", "r", "from rust", bytes);
    const asJson = { type: "Buffer", data: [1, 2, 255] };
    // Each crosses to the other node as JSON (the sender's own node delivers the real bytes locally).
    assert.deepEqual(await onRust.w.waitFor("room-message", (a) => a[0] === "from node"), ["from node", asJson]);
    assert.deepEqual(await onNode.w.waitFor("room-message", (a) => a[0] === "from rust"), ["from rust", asJson]);
    const entries = await redisCommand(env, ["XRANGE", "socket.io", "-", "+"]);
    const data = entries.map(([, fields]) => fields[fields.indexOf("data") + 1]).filter((d) => d !== undefined);
    assert.ok(data.length >= 2, show(entries));
    for (const d of data) assert.equal(d[0], "{", `a JSON entry: ${d}`);
    assertNoPanics(env);
  });

  it("a session that is unknown, or an offset trimmed out of the stream, gives a new session on every kind of node", T, async (t) => {
    const env = await cluster(t, RECOVERING, { streams: true });
    for (const key of ["node", "rustA"]) {
      for (const auth of [
        { pid: "no-such-pid", offset: "1-0" },
        { pid: "no-such-pid", offset: "not an offset" },
      ]) {
        const s = env.client(key, `fresh(${key}, ${auth.offset})`, { auth });
        await connected(s);
        assert.equal(s.recovered, false, `${s.label} is not recovered`);
        s.disconnect();
      }
    }
    // A real session whose offset is no longer in the stream (trimmed): a new session, the stored one is dropped.
    const x = env.client("rustA", "x(rust-a)", RECONNECTING);
    await connected(x);
    x.emit("message", "hello");
    await x.w.waitFor("message-back");
    const firstId = x.id;
    x.io.uri = env.nodes.rustB.url;
    x.io.engine.close();
    await x.w.waitFor("disconnect");
    await redisCommand(env, ["XTRIM", "socket.io", "MAXLEN", "0"]);
    await within(3000, connected(x), "reconnected");
    assert.equal(x.recovered, false, "not recovered: its offset is gone");
    assert.notEqual(x.id, firstId, "a new socket id");
    assertNoPanics(env);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// 10. A rolling restart: three Rust nodes behind HAProxy (docs/haproxy-rolling.cfg) on the streams adapter with
// recovery, hundreds of clients in rooms, a steady flow of broadcasts from a fourth node (a backend publishing,
// never restarted); each node in turn is stopped gracefully (SIGTERM) and started again on its port.

/** p-th percentile (0..100) of `values`. */
function percentile(values, p) {
  const sorted = values.slice().sort((a, b) => a - b);
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] : NaN;
}

describe("10. rolling restart behind HAProxy, streams adapter with recovery", () => {
  it("three nodes restarted one at a time: every client recovers, every broadcast arrives once and in order", { timeout: 120_000 }, async (t) => {
    const CLIENTS = 300;
    const ROOMS = 3;
    const PERIOD_MS = 20;
    const clients = [];
    const nodes = [];
    let redis;
    let lb;
    let publisher;
    let timer;
    t.after(async () => {
      clearInterval(timer);
      for (const c of clients) c.disconnect();
      publisher?.disconnect();
      if (lb) await lb.stop();
      await Promise.all(nodes.map((n) => n?.stop()));
      if (pub) await pub.stop();
      if (redis) await redis.stop();
    });
    let pub;
    redis = await startRedis();
    const args = (name) => ["--redis", redis.url, "--streams", "--recovery", "--cookie", "--name", name];
    for (let i = 0; i < 3; i++) nodes.push(await startRustNode(args(`s${i + 1}`)));
    pub = await startRustNode(args("publisher"));
    await waitForServers(redis.url, 4, { streams: true });
    lb = await startHaproxy((port) =>
      haproxyConfig("haproxy-rolling.cfg", { LB_PORT: port, S1_PORT: nodes[0].port, S2_PORT: nodes[1].port, S3_PORT: nodes[2].port }),
    );

    // Clients: half on WebSocket only, half starting on long-polling and upgrading (sticky by the io cookie, which
    // the Node client keeps with withCredentials), reconnecting as the client does by default but quicker.
    const reconnects = []; // {label, down, up, recovered, missed}
    for (let i = 0; i < CLIENTS; i++) {
      const opts = {
        reconnection: true,
        reconnectionDelay: 200,
        reconnectionDelayMax: 1000,
        ...(i % 2 ? { withCredentials: true } : { transports: ["websocket"] }),
      };
      const s = makeClient(lb.url, `c${i}`, opts);
      s.room = `room-${i % ROOMS}`;
      let down;
      let missedFrom;
      s.on("disconnect", () => {
        down = performance.now();
        missedFrom = s.w.count("room-message");
      });
      s.on("connect", () => {
        if (down === undefined) return;
        // Missed packets are handed to the client before its connect event (socket.io-client's receive buffer).
        reconnects.push({ label: s.label, down, up: performance.now(), recovered: s.recovered, missed: s.w.count("room-message") - missedFrom });
        down = undefined;
      });
      clients.push(s);
    }
    await Promise.all(clients.map((s) => connected(s, 10_000)));
    for (const s of clients) await join(s, s.room);

    // The flow: broadcast n goes to room n % ROOMS, every PERIOD_MS.
    publisher = makeClient(pub.url, "publisher", { transports: ["websocket"] });
    await connected(publisher);
    let sent = 0;
    timer = setInterval(() => {
      publisher.emit("to-room", `room-${sent % ROOMS}`, sent);
      sent++;
    }, PERIOD_MS);

    await sleep(1000);
    const restarts = [];
    for (let i = 0; i < nodes.length; i++) {
      const started = performance.now();
      const before = reconnects.length;
      const stopped = await nodes[i].terminate(8000);
      assert.ok(stopped.graceful && stopped.code === 0, `s${i + 1} closed gracefully on SIGTERM: ${show(stopped)}\n${nodes[i].output()}`);
      nodes[i] = await startRustNode([...args(`s${i + 1}`), "--port", String(nodes[i].port)]);
      // Every client is back (those of the stopped node reconnected elsewhere).
      const deadline = Date.now() + 20_000;
      while (clients.some((s) => !s.connected)) {
        if (Date.now() > deadline) {
          const down = clients.filter((s) => !s.connected).map((s) => s.label);
          assert.fail(`${down.length} clients still disconnected 20 s after s${i + 1} restarted: ${down.slice(0, 10)}`);
        }
        await sleep(50);
      }
      restarts.push({ node: `s${i + 1}`, reconnected: reconnects.length - before, ms: Math.round(performance.now() - started) });
      await sleep(1000);
    }
    clearInterval(timer);
    // The end of the flow: a last broadcast per room that every member must get.
    const lastSent = sent;
    for (let r = 0; r < ROOMS; r++) publisher.emit("to-room", `room-${r}`, `end-${r}`);
    await Promise.all(clients.map((s) => s.w.waitFor("room-message", (a) => a[0] === `end-${s.room.slice(5)}`, 15_000, "the end of the flow")));

    // Every client of every stopped node reconnected with its state recovered, and got every broadcast of its room,
    // once each, in order.
    assert.ok(reconnects.length >= CLIENTS * 0.9, `most clients were moved by the restarts (${reconnects.length} reconnections)`);
    const lost = reconnects.filter((r) => !r.recovered);
    assert.deepEqual(lost.map((r) => r.label), [], "every reconnection recovered its state");
    for (const s of clients) {
      const r = Number(s.room.slice(5));
      const want = [];
      for (let n = r; n < lastSent; n += ROOMS) want.push(n);
      want.push(`end-${r}`);
      const got = s.w.all("room-message").map((a) => a[0]);
      if (JSON.stringify(got) !== JSON.stringify(want)) {
        const dup = got.filter((v, k) => got.indexOf(v) !== k);
        const missing = want.filter((v) => !got.includes(v));
        assert.fail(`${s.label} (${s.room}): ${got.length} broadcasts, ${want.length} sent; missing ${show(missing.slice(0, 10))}, twice ${show(dup.slice(0, 10))}`);
      }
    }
    const times = reconnects.map((r) => r.up - r.down);
    const missed = reconnects.map((r) => r.missed);
    const report = {
      clients: CLIENTS,
      broadcasts: lastSent,
      deliveries: clients.reduce((n, s) => n + s.w.count("room-message"), 0),
      reconnections: reconnects.length,
      recovered: reconnects.length - lost.length,
      reconnectMs: { p50: Math.round(percentile(times, 50)), p99: Math.round(percentile(times, 99)), max: Math.round(Math.max(...times)) },
      missedPerReconnection: { p50: percentile(missed, 50), max: Math.max(...missed), total: missed.reduce((a, b) => a + b, 0) },
      restarts,
    };
    console.log(`rolling restart: ${JSON.stringify(report)}`);
    for (const n of [...nodes, pub]) {
      const p = n.output().match(/panicked at [^\n]*/g);
      assert.equal(p, null, `no panic: ${p}`);
    }
  });
});
