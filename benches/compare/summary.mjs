// Summarises a results file written by benches/compare.sh (one JSON line per loadgen run, tagged with
// "server" and "round"; the first line holds the run's settings under "meta") as markdown tables of
// medians over the rounds:
// 1. throughput: raw's absolute figure, and for the other servers the ratio to raw measured in the same
//    round (median of the per-round ratios, the server's own median in brackets); idle shows every
//    server's server-side RSS per connection, polling-echo (which raw does not speak) absolute figures;
// 2. latency: p50 / p99 per server;
// 3. the server's CPU time per operation (from "server_cpu_s", measured by compare.sh).
// A scenario that failed in some rounds is marked, and so are loadgen errors and missing broadcast
// deliveries, summed over the rounds.
//
// usage: node summary.mjs RESULTS.jsonl

import { readFileSync } from "node:fs";

const file = process.argv[2];
if (!file) {
  process.stderr.write("usage: node summary.mjs RESULTS.jsonl\n");
  process.exit(2);
}

let meta = {};
const records = [];
for (const line of readFileSync(file, "utf8").split("\n")) {
  if (!line.trim().startsWith("{")) continue;
  let value;
  try {
    value = JSON.parse(line);
  } catch {
    continue;
  }
  if (value.meta) meta = value.meta;
  else if (value.server && value.scenario) records.push(value);
}

const SERVERS = ["raw", "ours", "ours-info", "baseline", "socketioxide", "node"];
const servers = SERVERS.filter((s) => records.some((r) => r.server === s));
const SCENARIOS = [
  { name: "echo", unit: "round trips/s" },
  { name: "ack", unit: "round trips/s" },
  { name: "broadcast", unit: "deliveries/s" },
  { name: "connect", unit: "handshakes/s" },
  { name: "idle", unit: "server RSS bytes/connection", absolute: true, metric: "bytes_per_conn" },
  { name: "polling-echo", unit: "round trips/s", absolute: true, noRaw: true },
  { name: "idle-polling", unit: "server RSS bytes/session", absolute: true, noRaw: true, metric: "bytes_per_conn" },
  { name: "fanout", unit: "deliveries/s" },
  { name: "storm", unit: "sessions back/s (all back within)" },
];
const rounds = [...new Set(records.map((r) => r.round))].sort((a, b) => a - b);

function median(xs) {
  const v = xs.filter((x) => typeof x === "number" && Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return null;
  const m = Math.floor(v.length / 2);
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

function find(server, scenario, round) {
  return records.find((r) => r.server === server && r.scenario === scenario && r.round === round);
}

function runs(server, scenario) {
  return rounds.map((round) => find(server, scenario, round)).filter(Boolean);
}

const ok = (r) => r && !r.failed;

function fmtInt(x) {
  return Math.round(x).toLocaleString("en-US");
}

function fmtShort(x) {
  if (x >= 1e6) return `${(x / 1e6).toFixed(2)}M`;
  if (x >= 1e4) return `${(x / 1e3).toFixed(1)}k`;
  return fmtInt(x);
}

function fmtMicros(us) {
  if (us === null) return "–";
  if (us < 1000) return `${Math.round(us)} µs`;
  if (us < 1e6) return `${(us / 1000).toFixed(us < 1e4 ? 2 : 1)} ms`;
  return `${(us / 1e6).toFixed(2)} s`;
}

/** Failure and error marks for one server/scenario over all the rounds. */
function marks(server, scenario) {
  const all = runs(server, scenario);
  const out = [];
  const failed = all.filter((r) => r.failed).length;
  if (failed > 0 && failed < all.length) out.push(`${failed}/${all.length} rounds failed`);
  const errors = all.filter(ok).reduce((n, r) => n + (r.errors || 0), 0);
  if (errors > 0) out.push(`⚠ ${errors} errors`);
  const missing = all
    .filter((r) => ok(r) && typeof r.expected === "number")
    .reduce((n, r) => n + Math.max(0, r.expected - r.ops), 0);
  if (missing > 0) out.push(`⚠ ${missing} missing`);
  return out.length ? ` (${out.join(", ")})` : "";
}

/** Median of a field over the rounds that succeeded, or a failure text. */
function absolute(server, scenario, field, fmt) {
  const all = runs(server, scenario);
  if (all.length === 0) return "–";
  const good = all.filter(ok);
  if (good.length === 0) return "failed";
  const m = median(good.map((r) => r[field]));
  return (m === null ? "n/a" : fmt(m)) + marks(server, scenario);
}

/** Median over the rounds of server/raw, both measured in the same round. */
function ratio(server, scenario) {
  const all = runs(server, scenario);
  if (all.length === 0) return "–";
  const good = all.filter(ok);
  if (good.length === 0) return "failed";
  const ratios = good
    .map((r) => {
      const base = find("raw", scenario, r.round);
      return ok(base) && base.ops_per_s > 0 ? r.ops_per_s / base.ops_per_s : null;
    })
    .filter((x) => x !== null);
  const own = median(good.map((r) => r.ops_per_s));
  if (ratios.length === 0) return `${fmtInt(own)}/s (no raw figure)${marks(server, scenario)}`;
  return `${median(ratios).toFixed(2)}× (${fmtShort(own)}/s)${marks(server, scenario)}`;
}

const lines = [];
const m = meta;
lines.push(
  `Rounds: ${rounds.length}; servers pinned to one core with ${m.server_threads ?? "?"} worker thread(s), ` +
    `loadgen on another${m.pinned === false ? " (not pinned: no taskset)" : ""}. ` +
    `echo/ack ${m.echo_clients ?? "?"}/${m.ack_clients ?? "?"} clients × ${m.duration_s ?? "?"} s; ` +
    `broadcast ${m.broadcast_clients ?? "?"} clients × ${m.broadcast_messages ?? "?"} messages; ` +
    `idle ${m.idle_clients ?? "?"} connections; connect ${m.connect_clients ?? "?"} at a time ` +
    `(at most ${m.connect_max ?? "?"}); polling-echo ${m.polling_clients ?? "?"} clients; fanout ` +
    `${m.fanout_clients ?? "?"} clients, one message per ${m.fanout_interval_ms ?? "?"} ms; storm ${m.storm_clients ?? "?"} ` +
    `clients back within ${m.storm_spread_ms ?? "?"} ms. Medians over rounds.`,
);
lines.push("");
lines.push("Throughput: raw's absolute figure; for the others the ratio to raw in the same round (own figure in brackets).");
lines.push("");
lines.push(`| scenario | unit | ${servers.join(" | ")} |`);
lines.push(`|---|---|${servers.map(() => "---:").join("|")}|`);
for (const sc of SCENARIOS) {
  if (!servers.some((s) => runs(s, sc.name).length > 0)) continue;
  const cells = servers.map((s) => {
    if (s === "raw" && sc.noRaw) return "n/a";
    if (sc.absolute) {
      return sc.metric === "bytes_per_conn"
        ? absolute(s, sc.name, "bytes_per_conn", fmtInt)
        : absolute(s, sc.name, "ops_per_s", (x) => `${fmtInt(x)}/s`);
    }
    return s === "raw" ? absolute(s, sc.name, "ops_per_s", (x) => `${fmtInt(x)}/s`) : ratio(s, sc.name);
  });
  lines.push(`| ${sc.name} | ${sc.unit} | ${cells.join(" | ")} |`);
}
lines.push("");
lines.push("Latency p50 / p99 (idle and connect: WebSocket open + CONNECT; broadcast: send → each delivery).");
lines.push("");
// One table with a row per scenario and a cell per server: `cell(goodRuns)` for a server that ran it.
function perServerTable(cell) {
  lines.push(`| scenario | ${servers.join(" | ")} |`);
  lines.push(`|---|${servers.map(() => "---:").join("|")}|`);
  for (const sc of SCENARIOS) {
    if (!servers.some((s) => runs(s, sc.name).length > 0)) continue;
    const cells = servers.map((s) => {
      const all = runs(s, sc.name);
      if (all.length === 0) return s === "raw" && sc.noRaw ? "n/a" : "–";
      const good = all.filter(ok);
      return good.length === 0 ? "failed" : cell(good);
    });
    lines.push(`| ${sc.name} | ${cells.join(" | ")} |`);
  }
}

perServerTable((good) => `${fmtMicros(median(good.map((r) => r.p50_us)))} / ${fmtMicros(median(good.map((r) => r.p99_us)))}`);
lines.push("");
lines.push(
  "Server CPU time per operation (user + system, all threads, over the whole loadgen run including its setup; " +
    "per round trip, delivery, handshake or idle connection).",
);
lines.push("");
perServerTable((good) => {
  const perOp = median(
    good.map((r) => (typeof r.server_cpu_s === "number" && r.ops > 0 ? (r.server_cpu_s * 1e6) / r.ops : null)),
  );
  return perOp === null ? "n/a" : fmtMicros(perOp);
});
lines.push("");
lines.push(
  "Load generator CPU time per operation (its own, over the whole run, setup included), and in brackets that CPU time " +
    "divided by the measured phase's length: near 1 s/s (or above, when the setup was long) the load generator, not " +
    "the server, may have set the pace.",
);
lines.push("");
perServerTable((good) => {
  const perOp = median(
    good.map((r) => (typeof r.loadgen_cpu_s === "number" && r.ops > 0 ? (r.loadgen_cpu_s * 1e6) / r.ops : null)),
  );
  const busy = median(
    good.map((r) => (typeof r.loadgen_cpu_s === "number" && r.duration_s > 0 ? r.loadgen_cpu_s / r.duration_s : null)),
  );
  return perOp === null ? "n/a" : `${fmtMicros(perOp)}${busy === null ? "" : ` (${busy.toFixed(2)} s/s)`}`;
});
// How each core spent the runs that recorded it (compare.sh's `cores`, from /proc/stat).
if (records.some((r) => r.cores && Object.keys(r.cores).length > 0)) {
  lines.push("");
  lines.push(
    "Each core's time during the run, user / sys / softirq / idle in per cent (medians; cpu0 · cpu1, and in a " +
      "pinned run the server is on cpu0, the load generator on cpu1). Over loopback the receiving side's work " +
      "runs on the sending core as softirq, which no process's CPU time counts.",
  );
  lines.push("");
  perServerTable((good) => {
    const withCores = good.filter((r) => r.cores && Object.keys(r.cores).length > 0);
    if (withCores.length === 0) return "n/a";
    const names = Object.keys(withCores[0].cores).sort();
    return names
      .map((c) =>
        ["user", "sys", "softirq", "idle"]
          .map((k) => {
            const m = median(withCores.map((r) => (r.cores[c] ? r.cores[c][k] : null)));
            return m === null ? "?" : Math.round(m);
          })
          .join("/"),
      )
      .join(" · ");
  });
}
// The reconnect storm's own figures.
if (servers.some((s) => runs(s, "storm").length > 0)) {
  lines.push("");
  lines.push(
    "Reconnect storm: every connection cut at once, all back within the spread with their pid and offset (recovery " +
      "on where the server has it). Medians over rounds; errors summed.",
  );
  lines.push("");
  lines.push("| | " + servers.join(" | ") + " |");
  lines.push(`|---|${servers.map(() => "---:").join("|")}|`);
  const row = (label, cell) => {
    const cells = servers.map((s) => {
      const good = runs(s, "storm").filter(ok);
      return good.length === 0 ? "–" : cell(good);
    });
    lines.push(`| ${label} | ${cells.join(" | ")} |`);
  };
  const med = (good, f) => median(good.map(f));
  row("all back after", (g) => fmtMicros(med(g, (r) => r.all_back_ms * 1000)));
  row("sessions back", (g) => fmtInt(med(g, (r) => r.ops)));
  row("refused or timed out", (g) => fmtInt(g.reduce((n, r) => n + (r.errors || 0), 0)));
  row("connect p50 / p99", (g) => `${fmtMicros(med(g, (r) => r.p50_us))} / ${fmtMicros(med(g, (r) => r.p99_us))}`);
  row("recovered", (g) => fmtInt(med(g, (r) => r.recovered)));
  row("missed packets delivered / expected", (g) => `${fmtInt(med(g, (r) => r.missed_delivered))} / ${fmtInt(med(g, (r) => r.missed_expected))}`);
  row("server / loadgen CPU during the storm", (g) => {
    const server = med(g, (r) => r.storm_server_cpu_s);
    const load = med(g, (r) => r.storm_loadgen_cpu_s);
    return server === null || load === null ? "n/a" : `${server.toFixed(2)} s / ${load.toFixed(2)} s`;
  });
  row("server RSS before → peak", (g) => {
    const before = med(g, (r) => r.rss_before_kb);
    const peak = med(g, (r) => r.rss_peak_kb);
    return before === null || peak === null ? "n/a" : `${fmtInt(before / 1024)} → ${fmtInt(peak / 1024)} MiB`;
  });
}
const failures = records.filter((r) => r.failed);
if (failures.length > 0) {
  lines.push("");
  lines.push("Failed runs:");
  for (const f of failures) lines.push(`- round ${f.round}, ${f.server}, ${f.scenario}: ${f.reason}`);
}
process.stdout.write(lines.join("\n") + "\n");
