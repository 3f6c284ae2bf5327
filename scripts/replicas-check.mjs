#!/usr/bin/env node
// The driver of scripts/replicas-check.sh (run that: it finds nginx, makes the temp folder and cleans up after a
// killed driver). Two `minedraft serve` replicas (tiny synthetic pair, one thread per model) on 127.0.0.1 free ports
// behind nginx (least_conn, passive checks, retries of 503s and refused connections), the config docs/scaling.md
// recommends. Steps, each a bounded burst of greedy /v1/completions requests (half streaming) through nginx:
//   1. spread: both replicas served requests (their /metrics), every output equals `minedraft generate --mode ar`'s;
//   2. SIGKILL replica a while it has streams open: only streams open on it at the kill fail (a non-streaming request
//      it held is re-run by nginx on b), every request ends before its client timeout, the rest are exact;
//   3. rolling restart (a restarted first): SIGTERM replica b while it has streams open: its /health answers 503 at
//      once, no request is lost (what b accepted finishes, what it refused nginx retries on a), exit 0; restarted, b
//      gets traffic again.
// Prints a JSON summary; exit 1 on any failed check.
//
//   bash scripts/replicas-check.sh [--requests 24] [--max-tokens 48] [--concurrency 8]
import { spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { BUILTIN_PROMPTS } from "../dist/bench/prompts.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const { values: args } = parseArgs({
  options: {
    requests: { type: "string", default: "24" },
    "max-tokens": { type: "string", default: "48" },
    concurrency: { type: "string", default: "8" },
    help: { type: "boolean", default: false },
  },
});
if (args.help) {
  console.log("bash scripts/replicas-check.sh [--requests 24] [--max-tokens 48] [--concurrency 8]");
  process.exit(0);
}
const TMP = process.env.REPLICAS_TMP;
const NGINX = process.env.NGINX ?? "/usr/sbin/nginx";
if (!TMP) {
  console.error("run scripts/replicas-check.sh (it sets REPLICAS_TMP and cleans up)");
  process.exit(2);
}
const REQUESTS = Number(args.requests);
const MAX_TOKENS = Number(args["max-tokens"]);
const CONCURRENCY = Number(args.concurrency);
const REQUEST_TIMEOUT_MS = 60_000;
const FAIL_TIMEOUT_S = 2; // nginx's fail_timeout here: how long a failed replica is skipped
const CLI = path.join(root, "dist/cli/main.js");
// the benchmarks' built-in prompts (from dist/, built by npm run build)
const PROMPTS = BUILTIN_PROMPTS.slice(0, 8);

const started = Date.now();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const children = new Set();
const checks = [];
const check = (name, ok, detail) => {
  checks.push({ name, ok: Boolean(ok), ...(detail === undefined ? {} : { detail }) });
  return ok;
};

function track(child) {
  children.add(child);
  fs.appendFileSync(path.join(TMP, "pids"), `${child.pid}\n`);
  child.on("exit", () => children.delete(child));
  return child;
}
function cleanup() {
  // nginx's master ends its worker on SIGTERM (a SIGKILLed master would leave the worker behind)
  for (const c of children) c.kill(c.spawnfile === NGINX ? "SIGTERM" : "SIGKILL");
}
process.on("exit", cleanup);
for (const s of ["SIGINT", "SIGTERM"]) process.on(s, () => process.exit(1));

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function until(what, test, ms) {
  const end = Date.now() + ms;
  for (;;) {
    if (await test()) return;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(20);
  }
}

async function status(url) {
  try {
    return (await fetch(url, { signal: AbortSignal.timeout(2000) })).status;
  } catch {
    return 0;
  }
}

// --- the models and the reference outputs ------------------------------------------------------------------------

const { ensureSyntheticPair } = await import(path.join(root, "dist/index.js"));
// the checkout's .cache/models when it holds the pair (tiny-llama-spm-f32-eps0.1-s0-v1), else the user's cache
const local = path.join(root, ".cache/models");
const hasLocal = fs.existsSync(path.join(local, "tiny-llama-spm-f32-eps0.1-s0-v1/target.gguf"));
const pair = await ensureSyntheticPair(hasLocal ? local : undefined, { preset: "tiny", dtype: "f32" });

/** Target-only greedy decoding of every prompt: what every replica's greedy output must equal. */
async function reference() {
  const file = path.join(TMP, "prompts.jsonl");
  fs.writeFileSync(file, PROMPTS.map((prompt) => JSON.stringify({ prompt })).join("\n"));
  const child = track(
    spawn(
      process.execPath,
      [CLI, "generate", "--model", pair.target, "--mode", "ar", "--threads", "1"].concat([
        "--prompts",
        file,
        "--max-tokens",
        String(MAX_TOKENS),
        "--json",
      ]),
    ),
  );
  let out = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => process.stderr.write(d));
  const code = await new Promise((r) => child.on("close", r));
  if (code !== 0) throw new Error(`minedraft generate exited ${code}`);
  return new Map(JSON.parse(out).requests.map((r) => [r.prompt, r.tokens]));
}

// --- replicas and nginx ----------------------------------------------------------------------------------------

function startReplica(name, port) {
  const log = fs.openSync(path.join(TMP, `${name}.log`), "a");
  const child = track(
    spawn(
      process.execPath,
      [CLI, "serve", "--model", pair.target, "--draft", pair.draft, "--model-alias", "tiny"].concat(
        ["--host", "127.0.0.1", "--port", String(port), "--threads", "1", "--draft-threads", "1"],
        ["--ctx-size", "256", "--shutdown-grace", "30"],
      ),
      { stdio: ["ignore", log, log] },
    ),
  );
  fs.closeSync(log);
  const exited = new Promise((r) => child.on("exit", (code, signal) => r({ code, signal })));
  return { name, port, url: `http://127.0.0.1:${port}`, child, exited };
}

async function healthy(replica) {
  await until(
    `replica ${replica.name} /health 200`,
    async () => (await status(`${replica.url}/health`)) === 200,
    60_000,
  );
}

function nginxConfig(ports, listen) {
  const t = (p) => path.join(TMP, p);
  const servers = ports.map((p) => `    server 127.0.0.1:${p} max_fails=1 fail_timeout=${FAIL_TIMEOUT_S}s;`);
  // the upstream and location blocks are docs/scaling.md's, with loopback addresses and a short fail_timeout
  return `${process.getuid?.() === 0 ? "user root;\n" : ""}worker_processes 1;
daemon off;
pid ${t("nginx.pid")};
error_log ${t("error.log")} warn;
events { worker_connections 256; }
http {
  client_body_temp_path ${t("body")};
  proxy_temp_path ${t("proxy")};
  fastcgi_temp_path ${t("fastcgi")};
  uwsgi_temp_path ${t("uwsgi")};
  scgi_temp_path ${t("scgi")};
  log_format upstreams '$request_uri $status upstream=$upstream_addr upstream_status=$upstream_status '
                       'rt=$request_time';
  access_log ${t("access.log")} upstreams;

  upstream minedraft {
    least_conn;
${servers.join("\n")}
    keepalive 16;
  }
  server {
    listen 127.0.0.1:${listen};
    client_max_body_size 1m;
    location / {
      proxy_pass http://minedraft;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
      proxy_cache off;
      proxy_connect_timeout 2s;
      proxy_read_timeout 600s;
      proxy_send_timeout 600s;
      proxy_next_upstream error timeout http_503 non_idempotent;
      proxy_next_upstream_tries 2;
      add_header X-Upstream $upstream_addr always;
    }
    location = /metrics { return 404; }
  }
}
`;
}

async function startNginx(ports, listen) {
  const conf = path.join(TMP, "nginx.conf");
  fs.writeFileSync(conf, nginxConfig(ports, listen));
  const child = track(
    spawn(NGINX, ["-p", TMP, "-c", conf, "-e", path.join(TMP, "error.log")], { stdio: ["ignore", "ignore", "pipe"] }),
  );
  let stderr = "";
  child.stderr.on("data", (d) => (stderr += d));
  child.on("exit", (code) => {
    if (code) console.error(`nginx exited ${code}: ${stderr.trim()}`);
  });
  const url = `http://127.0.0.1:${listen}`;
  await until("nginx to answer /health", async () => (await status(`${url}/health`)) === 200, 15_000);
  return { child, url };
}

// --- requests ----------------------------------------------------------------------------------------------------

/** request_success_total summed over finish reasons (every answered engine request). */
async function served(replica) {
  const text = await (await fetch(`${replica.url}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
  let n = 0;
  for (const line of text.split("\n"))
    if (line.startsWith("minedraft:request_success_total{")) n += Number(line.split(" ").at(-1));
  return n;
}

let lb;
let ref;
/** streams whose headers came and whose body has not ended */
const openStreams = new Set();

async function one(i) {
  const prompt = PROMPTS[i % PROMPTS.length];
  const stream = i % 2 === 0;
  const r = { i, stream, status: 0, upstream: "", ok: false, exact: false, error: null, ms: 0 };
  const t0 = Date.now();
  try {
    const res = await fetch(`${lb.url}/v1/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        model: "tiny",
        prompt,
        max_tokens: MAX_TOKENS,
        temperature: 0,
        stream,
        return_tokens: true,
      }),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    r.status = res.status;
    r.upstream = res.headers.get("x-upstream") ?? "";
    let tokens;
    if (stream && res.status === 200) {
      openStreams.add(r);
      try {
        const text = await res.text();
        const data = text
          .split("\n")
          .filter((l) => l.startsWith("data: "))
          .map((l) => l.slice(6));
        const finish = data
          .filter((d) => d.startsWith("{"))
          .map((d) => JSON.parse(d))
          .find((c) => c.choices?.[0]?.finish_reason);
        tokens = finish?.choices[0].tokens;
        if (data.at(-1) !== "[DONE]") r.error = "stream ended without [DONE]";
      } finally {
        openStreams.delete(r);
      }
    } else {
      const body = await res.json();
      if (res.status === 200) tokens = body.choices[0].tokens;
      else r.error = `HTTP ${res.status}: ${body?.error?.message ?? ""}`;
    }
    r.ok = res.status === 200 && r.error === null && Array.isArray(tokens);
    r.exact = r.ok && JSON.stringify(tokens) === JSON.stringify(ref.get(prompt));
  } catch (e) {
    r.error = e?.name === "TimeoutError" ? "client timeout" : String(e?.cause?.code ?? e?.cause?.message ?? e?.message);
  }
  r.ms = Date.now() - t0;
  return r;
}

/** `n` requests, `CONCURRENCY` at a time. */
async function burst(n) {
  const results = [];
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      results[i] = await one(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, n) }, worker));
  return results;
}

/** The replica that answered: the last address nginx tried. */
const answeredBy = (r, replicas) => replicas.find((x) => r.upstream.split(", ").at(-1) === `127.0.0.1:${x.port}`)?.name;
const triedFirst = (r, replica) => r.upstream.split(", ")[0] === `127.0.0.1:${replica.port}`;
const count = (results, f) => results.filter(f).length;
function byReplica(results, replicas) {
  const out = {};
  for (const x of replicas) out[x.name] = count(results, (r) => r.ok && answeredBy(r, replicas) === x.name);
  return out;
}

// --- the run -------------------------------------------------------------------------------------------------------

const summary = {
  models: path.dirname(pair.target),
  requests_per_burst: REQUESTS,
  max_tokens: MAX_TOKENS,
  concurrency: CONCURRENCY,
};
let failed = false;
try {
  ref = await reference();
  const [pa, pb, pl] = [await freePort(), await freePort(), await freePort()];
  let a = startReplica("a", pa);
  let b = startReplica("b", pb);
  await Promise.all([healthy(a), healthy(b)]);
  lb = await startNginx([pa, pb], pl);

  // 1. a burst spread over both replicas, exact
  {
    const before = { a: await served(a), b: await served(b) };
    const t0 = Date.now();
    const results = await burst(REQUESTS);
    const viaMetrics = { a: (await served(a)) - before.a, b: (await served(b)) - before.b };
    summary.spread = {
      ok: count(results, (r) => r.ok),
      exact: count(results, (r) => r.exact),
      served_per_replica_metrics: viaMetrics,
      served_per_replica_header: byReplica(results, [a, b]),
      wall_s: (Date.now() - t0) / 1000,
    };
    check("spread: every request answered", summary.spread.ok === REQUESTS, results.find((r) => !r.ok)?.error);
    check("spread: greedy output equals ar's", summary.spread.exact === REQUESTS);
    check("spread: both replicas served (/metrics)", viaMetrics.a > 0 && viaMetrics.b > 0, viaMetrics);
    check("spread: /metrics counts add up", viaMetrics.a + viaMetrics.b === REQUESTS, viaMetrics);
  }

  // 2. SIGKILL replica a mid-burst
  {
    const t0 = Date.now();
    const running = burst(REQUESTS);
    await until("a stream open on replica a", () => [...openStreams].some((r) => triedFirst(r, a)), 30_000);
    const openOnA = new Set([...openStreams].filter((r) => triedFirst(r, a)).map((r) => r.i));
    a.child.kill("SIGKILL");
    const results = await running;
    const failures = results.filter((r) => !r.ok);
    summary.kill = {
      streams_open_on_killed: openOnA.size,
      failed: failures.length,
      failures: failures.map((r) => ({ i: r.i, stream: r.stream, error: r.error, upstream: r.upstream })),
      completed: count(results, (r) => r.ok),
      exact: count(results, (r) => r.exact),
      rerun_on_other_replica: count(results, (r) => r.ok && r.upstream.includes(", ")),
      client_timeouts: count(results, (r) => r.error === "client timeout"),
      wall_s: (Date.now() - t0) / 1000,
    };
    check("kill: requests failed (the killed replica's open streams)", failures.length > 0);
    check(
      "kill: only streams open on the killed replica failed",
      failures.every((r) => openOnA.has(r.i)),
      failures.map((r) => r.i),
    );
    check("kill: no request hung (client timeouts)", summary.kill.client_timeouts === 0);
    check("kill: the others completed, exact", summary.kill.exact === REQUESTS - failures.length);
    check("kill: the replica died of SIGKILL", (await a.exited).signal === "SIGKILL");
  }

  // 3. rolling restart: a comes back, then b is drained with SIGTERM mid-burst and comes back
  {
    a = startReplica("a", pa);
    await healthy(a);
    await sleep(FAIL_TIMEOUT_S * 1000 + 500); // nginx retries a once its fail_timeout is over
    const t0 = Date.now();
    const running = burst(REQUESTS);
    await until("a stream open on replica b", () => [...openStreams].some((r) => triedFirst(r, b)), 30_000);
    const openOnB = [...openStreams].filter((r) => triedFirst(r, b)).length;
    b.child.kill("SIGTERM");
    const termAt = Date.now();
    let health = 200;
    while (health === 200 && Date.now() - termAt < 5000) health = await status(`${b.url}/health`);
    const healthMs = Date.now() - termAt;
    const results = await running;
    const exit = await Promise.race([b.exited, sleep(40_000).then(() => ({ code: "still running after 40 s" }))]);
    summary.rolling_restart = {
      streams_open_on_drained: openOnB,
      health_after_sigterm: health,
      health_503_after_ms: healthMs,
      completed: count(results, (r) => r.ok),
      exact: count(results, (r) => r.exact),
      lost: count(results, (r) => !r.ok),
      lost_detail: results.filter((r) => !r.ok).map((r) => ({ i: r.i, error: r.error, upstream: r.upstream })),
      answered_by_drained: count(results, (r) => r.ok && answeredBy(r, [a, b]) === "b"),
      refused_by_drained_retried: count(results, (r) => r.ok && triedFirst(r, b) && answeredBy(r, [a, b]) === "a"),
      served_per_replica_header: byReplica(results, [a, b]),
      exit_code: exit.code,
      wall_s: (Date.now() - t0) / 1000,
    };
    check("restart: /health 503 at once after SIGTERM", health === 503 && healthMs < 1000, { health, healthMs });
    check("restart: no accepted request lost", summary.rolling_restart.lost === 0, summary.rolling_restart.lost_detail);
    check("restart: greedy output equals ar's", summary.rolling_restart.exact === REQUESTS);
    check("restart: the restarted replica a served requests", summary.rolling_restart.served_per_replica_header.a > 0);
    check("restart: the drained replica exited 0", exit.code === 0, exit);

    b = startReplica("b", pb);
    await healthy(b);
    await sleep(FAIL_TIMEOUT_S * 1000 + 500);
    const after = await burst(CONCURRENCY);
    summary.after_restart = { ok: count(after, (r) => r.exact), served_per_replica_header: byReplica(after, [a, b]) };
    check("restart: after it, both replicas get traffic, exact", summary.after_restart.ok === after.length);
    check("restart: b gets traffic again", summary.after_restart.served_per_replica_header.b > 0);
  }
} catch (error) {
  check("ran to the end", false, String(error?.stack ?? error));
}

failed = checks.some((c) => !c.ok);
summary.wall_s = (Date.now() - started) / 1000;
summary.failed_checks = checks.filter((c) => !c.ok);
summary.checks_passed = checks.filter((c) => c.ok).length;
summary.ok = !failed;
console.log(JSON.stringify(summary, null, 2));
if (failed) {
  for (const f of ["a.log", "b.log", "error.log"]) {
    const p = path.join(TMP, f);
    if (fs.existsSync(p))
      console.error(`--- ${f} (last lines)\n${fs.readFileSync(p, "utf8").split("\n").slice(-15).join("\n")}`);
  }
}
process.exit(failed ? 1 : 0);
