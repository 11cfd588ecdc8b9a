// The second demo: a Node Express app with express-session and connect-redis that owns the login, while the Rust
// demo (examples/demo/src/main.rs, started with `--redis` on the same Redis and the same secret) serves the realtime side of the
// same sessions. This is the setup the session-bridge crate is for: an existing Express app keeps its login and its
// sessions; the Rust Socket.IO server reads (and writes) them in connect-redis's format.
//
// Routes:
// - POST /login?user=NAME   sets `session.user` (and `session.count = 0` if absent), saves; answers {user, count}
// - GET  /session           {user, count} of the session, 401 {"error":"no session"} without a logged-in session
// - POST /bump              `session.count += 1` here in Node; answers {count}; 401 without a logged-in session
// - POST /logout            destroys the session (connect-redis DELs `sess:<id>`); answers {ok: true}
//
// Options (env, or the flags in brackets, which win): PORT [--port] (0 = a free port; default 3001), REDIS_URL
// [--redis] (default redis://127.0.0.1:6379), SESSION_SECRET [--secret] (default "keyboard cat"; several
// comma-separated for rotation). Once listening it prints `listening on http://localhost:PORT`.
//
// Its npm dependencies (express, express-session, connect-redis, redis) live in e2e/package.json; run it from here:
// `node e2e/express-app.mjs` after `npm ci` in e2e/. The session tests (session.test.mjs) start it themselves.

import { pathToFileURL } from "node:url";

import { RedisStore } from "connect-redis";
import express from "express";
import session from "express-session";
import { createClient } from "redis";

/**
 * Builds the app. Resolves {app, client} once the Redis client is connected; `client.quit()` it when done.
 *
 * @param {{redisUrl: string, secrets: string[]}} options
 */
export async function createExpressApp({ redisUrl, secrets }) {
  const client = createClient({ url: redisUrl });
  client.on("error", (err) => console.error(`redis client: ${err.message}`));
  await client.connect();

  const app = express();
  app.use(
    session({
      store: new RedisStore({ client }),
      secret: secrets,
      resave: false,
      saveUninitialized: false,
      cookie: { maxAge: 60 * 60 * 1000 },
    }),
  );

  const loggedIn = (req, res) => {
    if (typeof req.session.user === "string") return true;
    res.status(401).json({ error: "no session" });
    return false;
  };
  const saved = (req, res, next, body) =>
    req.session.save((err) => (err ? next(err) : res.json(body)));

  app.post("/login", (req, res, next) => {
    const user = req.query.user;
    if (typeof user !== "string" || user === "") {
      res.status(400).json({ error: "user required" });
      return;
    }
    req.session.user = user;
    if (req.session.count === undefined) req.session.count = 0;
    saved(req, res, next, { user, count: req.session.count });
  });

  app.get("/session", (req, res) => {
    if (!loggedIn(req, res)) return;
    res.json({ user: req.session.user, count: req.session.count });
  });

  app.post("/bump", (req, res, next) => {
    if (!loggedIn(req, res)) return;
    req.session.count = (req.session.count ?? 0) + 1;
    saved(req, res, next, { count: req.session.count });
  });

  app.post("/logout", (req, res, next) => {
    req.session.destroy((err) => {
      if (err) return next(err);
      res.clearCookie("connect.sid", { path: "/" });
      res.json({ ok: true });
    });
  });

  return { app, client };
}

function options(argv, env) {
  const o = {
    port: env.PORT !== undefined && env.PORT !== "" ? Number(env.PORT) : 3001,
    redisUrl: env.REDIS_URL || "redis://127.0.0.1:6379",
    secrets: (env.SESSION_SECRET || "keyboard cat").split(","),
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = argv[++i];
    if (value === undefined) throw new Error(`${flag} needs a value`);
    if (flag === "--port") o.port = Number(value);
    else if (flag === "--redis") o.redisUrl = value;
    else if (flag === "--secret") o.secrets = value.split(",");
    else throw new Error(`unknown flag ${flag}`);
  }
  if (!Number.isInteger(o.port) || o.port < 0 || o.port > 65535) throw new Error(`bad port ${o.port}`);
  return o;
}

async function main() {
  const o = options(process.argv.slice(2), process.env);
  const { app, client } = await createExpressApp(o);
  const server = app.listen(o.port, () => {
    console.log(`listening on http://localhost:${server.address().port}`);
  });
  const shutdown = () => {
    server.close();
    server.closeAllConnections?.();
    client.quit().catch(() => {});
  };
  process.once("SIGTERM", shutdown);
  process.once("SIGINT", shutdown);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
