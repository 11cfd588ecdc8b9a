// The official Socket.IO Admin UI (the npm package @socket.io/admin-ui 0.5.1: its built web app in ui/dist, from
// e2e/node_modules, served by the demo at /admin-ui/) against the session demo started with the Admin UI on
// (socketio-admin's instrument, basic auth with a bcrypt hash). Headless Chromium
// (Debian's, through playwright-core) logs in, sees the demo's sockets and their session room, and disconnects one;
// the demo's page in another tab sees the disconnection. A screenshot of the sockets page goes to ADMIN_SCREENSHOT
// (default /tmp/admin-ui.png; the README's docs/admin-ui.png was taken this way).
//
// The UI loads fonts and icons from public CDNs, which this machine does not reach: the page works without them.

import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { describe, it } from "node:test";
import { chromium } from "playwright-core";

import { CHROMIUM_ARGS, CHROMIUM_BIN } from "./lib/chromium.mjs";
import { startDemo } from "./lib/server.mjs";

const T = { timeout: 30_000 };
const WAIT_MS = 8000;
const require = createRequire(import.meta.url);
const UI_DIST = path.join(path.dirname(require.resolve("@socket.io/admin-ui/package.json")), "ui/dist");
const CLIENT_JS = path.join(path.dirname(require.resolve("socket.io-client/package.json")), "dist/socket.io.min.js");
const SCREENSHOT = process.env.ADMIN_SCREENSHOT || "/tmp/admin-ui.png";
// bcrypt (bcryptjs, cost 4) of "s3cret".
const PASSWORD = "s3cret";
const PASSWORD_HASH = require("bcryptjs").hashSync(PASSWORD, 4);

describe("the official Admin UI", () => {
  it("logs in, shows the demo's sockets and rooms, and disconnects one", T, async (t) => {
    assert.ok(existsSync(CHROMIUM_BIN), `Chromium not found at ${CHROMIUM_BIN}`);
    assert.ok(existsSync(path.join(UI_DIST, "index.html")), `the Admin UI is missing at ${UI_DIST} (npm ci in e2e/)`);
    const demo = await startDemo(["--client-js", CLIENT_JS, "--admin-password-hash", PASSWORD_HASH, "--admin-ui", UI_DIST]);
    const uiOrigin = `${demo.url}/admin-ui`;
    t.after(() => demo.stop());
    const browser = await chromium.launch({ executablePath: CHROMIUM_BIN, headless: true, args: CHROMIUM_ARGS, timeout: WAIT_MS });
    t.after(() => browser.close().catch(() => {}));
    const fail = (what, page, errors) => async (err) => {
      const shot = page ? await page.screenshot({ path: "/tmp/admin-ui-failure.png" }).then(() => " (screenshot /tmp/admin-ui-failure.png)", () => "") : "";
      throw new Error(`${what}${shot}: ${err.message}\npage errors: ${errors.join(" | ")}\n${demo.output()}`);
    };

    // A user of the demo: one tab, connected, in the room of its session.
    const userContext = await browser.newContext();
    const user = await userContext.newPage();
    user.setDefaultTimeout(WAIT_MS);
    await user.goto(`${demo.url}/`);
    await user.waitForFunction(() => document.getElementById("status").textContent === "connected");
    // The page's `socket` (a script-level const) and the session id inside its signed cookie (s:<id>.<signature>).
    const socketId = await user.evaluate(() => socket.id);
    const cookie = (await userContext.cookies()).find((c) => c.name === "connect.sid");
    const sessionId = decodeURIComponent(cookie.value).slice(2).split(".")[0];

    // The admin: the UI on its own origin, logging in to the demo.
    const admin = await (await browser.newContext({ viewport: { width: 1280, height: 720 } })).newPage();
    admin.setDefaultTimeout(WAIT_MS);
    const errors = [];
    admin.on("pageerror", (e) => errors.push(e.message));
    await admin.goto(`${uiOrigin}/`);
    await admin.getByLabel("Server URL").fill(demo.url);
    await admin.getByLabel("Username").fill("admin");
    await admin.getByLabel("Password").fill(PASSWORD);
    await admin.getByRole("button", { name: "Connect" }).click();
    await admin.getByRole("dialog").waitFor({ state: "hidden" }).catch(fail("the login dialog did not close", admin, errors));

    // The sockets page (the UI's own navigation: no reload) lists the user's socket of "/".
    const nav = (name) => admin.getByRole("navigation").getByText(name, { exact: true }).click();
    await nav("Sockets");
    const row = admin.locator("tr", { hasText: socketId ?? "" }).first();
    await row.waitFor().catch(fail(`the socket ${socketId} is not listed`, admin, errors));
    // The screenshot once the login dialog's closing transition is over.
    await admin.locator(".v-dialog").waitFor({ state: "hidden" }).catch(() => {});
    await admin.waitForTimeout(500);
    await admin.screenshot({ path: SCREENSHOT });

    // The rooms page has the session's room (the demo puts every socket of a session in the room named by its id).
    await nav("Rooms");
    await admin.locator("tr", { hasText: sessionId }).first().waitFor().catch(fail(`the room ${sessionId} is not listed`, admin, errors));

    // Disconnect the user's socket from the sockets page: the user's tab sees it.
    await nav("Sockets");
    await row.waitFor();
    await row.locator("button").last().click();
    await user
      .waitForFunction(() => document.getElementById("status").textContent === "disconnected: io server disconnect")
      .catch(fail("the user's socket was not disconnected", user, []));
    assert.deepEqual(errors, [], "no page error in the UI");
  });
});
