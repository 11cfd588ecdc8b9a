// What each Redis adapter costs Redis for a broadcast to one room: three Rust test servers on one redis-server
// (started here), a room whose only member is on the first server, and BROADCASTS `to-room` events sent through
// the third. For each adapter it reports, per broadcast, the Redis commands run and the bytes Redis sent out
// (INFO commandstats and INFO stats' total_net_output_bytes, reset before the broadcasts): the bytes out count
// every server that received the message.
//
//   node adapter-traffic.mjs [BROADCASTS]        (from e2e/cluster, after `cargo build --workspace`)
//
// Prints a markdown table (the README's "Which adapter" section shows one).

import { setTimeout as sleep } from "node:timers/promises";

import { connected, makeClient } from "./clients.mjs";
import { shardCommand, startRedis, startRustNode, waitForServers, withRedis } from "./infra.mjs";

const BROADCASTS = Number(process.argv[2] ?? 500);
const PAYLOAD = "x".repeat(64);

const ADAPTERS = [
  ["classic (PUBLISH / PSUBSCRIBE)", []],
  ["sharded, static (SPUBLISH)", ["--sharded", "static"]],
  ["sharded, dynamic (SPUBLISH)", ["--sharded", "dynamic"]],
  ["streams (XADD / XREAD)", ["--streams"]],
];

/** `INFO` section `name` as {field: value}. */
async function info(client, name) {
  const text = await client.sendCommand(["INFO", name]);
  return Object.fromEntries(
    text
      .split("\r\n")
      .filter((l) => l.includes(":"))
      .map((l) => [l.slice(0, l.indexOf(":")), l.slice(l.indexOf(":") + 1)]),
  );
}

async function measure(label, adapterArgs) {
  const redis = await startRedis();
  const nodes = [];
  const clients = [];
  try {
    for (const name of ["a", "b", "c"]) nodes.push(await startRustNode(["--redis", redis.url, "--name", name, ...adapterArgs]));
    const sharded = adapterArgs.includes("--sharded");
    await waitForServers(redis.url, 3, { sharded, streams: adapterArgs.includes("--streams") });
    const [member, , sender] = nodes.map((n, i) => makeClient(n.url, `c${i}`, { transports: ["websocket"] }));
    clients.push(member, sender);
    await Promise.all([connected(member), connected(sender)]);
    await new Promise((ok) => member.emit("join", "r", ok));
    if (adapterArgs.includes("dynamic")) {
      // The member's server listens on the room's channel in the background: wait for it.
      for (;;) {
        const n = await withRedis(redis.url, async (c) => Number((await shardCommand(c, "x", ["PUBSUB", "SHARDNUMSUB", "socket.io#/#r#"]))[1]));
        if (n === 1) break;
        await sleep(20);
      }
    }
    return await withRedis(redis.url, async (client) => {
      await client.sendCommand(["CONFIG", "RESETSTAT"]);
      const before = Number((await info(client, "stats")).total_net_output_bytes);
      for (let i = 0; i < BROADCASTS; i++) sender.emit("to-room", "r", PAYLOAD, i);
      await member.w.waitFor("room-message", (a) => a[1] === BROADCASTS - 1, 20_000, "the last broadcast");
      await sleep(300);
      const stats = await info(client, "commandstats");
      const out = Number((await info(client, "stats")).total_net_output_bytes) - before;
      const calls = Object.entries(stats)
        .map(([k, v]) => [k.replace(/^cmdstat_/, "").toUpperCase(), Number(/calls=(\d+)/.exec(v)[1])])
        .filter(([name]) => !["INFO", "CONFIG|RESETSTAT", "CLIENT|SETINFO", "HELLO", "PING", "PUBSUB|NUMSUB", "PUBSUB|SHARDNUMSUB"].includes(name))
        .filter(([, n]) => n > 0)
        .map(([name, n]) => `${name} ${(n / BROADCASTS).toFixed(2)}`)
        .join(", ");
      return { label, calls, bytes: (out / BROADCASTS).toFixed(0), received: member.w.count("room-message") };
    });
  } finally {
    for (const c of clients) c.disconnect();
    await Promise.all(nodes.map((n) => n.stop()));
    await redis.stop();
  }
}

const rows = [];
for (const [label, args] of ADAPTERS) rows.push(await measure(label, args));
console.log(`${BROADCASTS} broadcasts of a 64-byte event to a room whose only member is on one of three servers, sent through another:\n`);
console.log("| adapter | Redis commands per broadcast | bytes Redis sends per broadcast |");
console.log("|---|---|---:|");
for (const r of rows) console.log(`| ${r.label} | ${r.calls} | ${r.bytes} |`);
for (const r of rows) {
  if (r.received !== BROADCASTS) throw new Error(`${r.label}: the member received ${r.received} of ${BROADCASTS}`);
}
process.exit(0);
