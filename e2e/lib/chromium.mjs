// Debian's Chromium for the browser tests, started headless through playwright-core (which never downloads a
// browser): its path (CHROMIUM_BIN, default /usr/bin/chromium) and the flags it needs here (no sandbox as root,
// no GPU, and none of its background connections, which this machine's closed network refuses).

import path from "node:path";

export const CHROMIUM_BIN = process.env.CHROMIUM_BIN ? path.resolve(process.env.CHROMIUM_BIN) : "/usr/bin/chromium";
export const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
  "--disable-quic",
];
