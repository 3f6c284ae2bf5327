// What a draft step costs with the draft model on an RPC device, with and without the greedy argmax taken on the
// device (deviceArgmax: one token per row comes back instead of the vocabulary's logits), beside the same model on
// the local CPU. Starts its own rpc-server (-t 1) on a free loopback port and stops it; needs the RPC build
// (npm run build:source -- --gpu cpu --rpc) and the built dist/.
//
//   node scripts/rpc-draft-step.mjs [--model draft.gguf] [--m 4] [--k 4] [--rounds 40] [--json out.json]
//                                   [--shape-lo 1gbit]
//
// --shape-lo RATE limits the loopback interface to RATE for the run (tc's tbf, as root; removed at exit), a stand-in
// for a LAN: every process's loopback traffic is shaped meanwhile.
import { execFileSync, spawn } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import path from "node:path";
import { parseArgs } from "node:util";
import { configureBackends, ensureSyntheticPair, LlamaContext, LlamaModel } from "../dist/index.js";
import { probeRpcServer } from "../dist/native/rpc.js";

const { values } = parseArgs({
  options: {
    model: { type: "string" },
    m: { type: "string", default: "4" },
    k: { type: "string", default: "4" },
    rounds: { type: "string", default: "40" },
    json: { type: "string" },
    "shape-lo": { type: "string" },
  },
});
const m = Number(values.m);
const k = Number(values.k);
const rounds = Number(values.rounds);
const root = path.resolve(import.meta.dirname, "..");
const rpcServer = path.join(root, "build-source", "lib", "rpc-server");
if (!existsSync(rpcServer)) {
  console.error(`missing ${rpcServer}: npm run build:source -- --gpu cpu --rpc`);
  process.exit(1);
}

async function freePort() {
  const s = createServer();
  await new Promise((resolve) => s.listen(0, "127.0.0.1", resolve));
  const { port } = s.address();
  await new Promise((resolve) => s.close(resolve));
  return port;
}

const shape = values["shape-lo"];
if (shape) {
  if (!/^\d+(\.\d+)?[kmg]?bit$/.test(shape))
    throw new Error(`--shape-lo: expected a tc rate such as 1gbit, got ${shape}`);
  // burst above lo's 64 KiB MTU, or tbf drops every full-size packet
  execFileSync("tc", ["qdisc", "add", "dev", "lo", "root", "tbf", "rate", shape, "burst", "256kb", "latency", "100ms"]);
  process.on("exit", () => execFileSync("tc", ["qdisc", "del", "dev", "lo", "root"]));
  for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => process.exit(130));
}

const endpoint = `127.0.0.1:${await freePort()}`;
const server = spawn(rpcServer, ["-H", "127.0.0.1", "-p", endpoint.split(":")[1], "-t", "1"], { stdio: "ignore" });
const stop = () => server.exitCode === null && server.kill("SIGKILL");
process.on("exit", stop);
for (let i = 0; ; i++) {
  try {
    await probeRpcServer(endpoint, { major: 6, minor: 0 }, 2000);
    break;
  } catch (e) {
    if (i > 100) throw e;
    await new Promise((r) => setTimeout(r, 100));
  }
}

const modelPath = values.model ?? (await ensureSyntheticPair(undefined, { preset: "tiny", dtype: "f32" })).draft;
configureBackends({ rpc: [endpoint] });
const onRpc = await LlamaModel.load(modelPath, { device: "RPC0" });
const onCpu = await LlamaModel.load(modelPath, { device: "cpu" });
const options = { sequences: m, contextSize: 256, threads: 1, batchSize: 256 };
const contexts = {
  "RPC0, argmax on the device": await LlamaContext.create(onRpc, { ...options, deviceArgmax: true }),
  "RPC0, logits copied back": await LlamaContext.create(onRpc, { ...options, deviceArgmax: false }),
  "local CPU": await LlamaContext.create(onCpu, options),
};
const prompt = onCpu.tokenize("Once upon a time, in a land far away, there lived a");
const specs = Array.from({ length: m }, (_, seq) => ({ seq, pos: prompt.length - 1, tokens: [prompt.at(-1)], k }));
const drafted = {};
for (const ctx of Object.values(contexts)) {
  for (let seq = 0; seq < m; seq++) await ctx.prefill(seq, 0, prompt.slice(0, -1));
}
const times = Object.fromEntries(Object.keys(contexts).map((name) => [name, []]));
const names = Object.keys(contexts);
for (let round = 0; round < rounds + 2; round++) {
  // rotate the order each round, so that no placement always runs after the same one
  for (let i = 0; i < names.length; i++) {
    const name = names[(round + i) % names.length];
    const t0 = performance.now();
    const out = await contexts[name].draft(specs);
    const ms = performance.now() - t0;
    if (round >= 2) times[name].push(ms / k); // the first two rounds warm up
    drafted[name] = out.map((o) => Array.from(o.tokens));
  }
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const same = names.every((n) => JSON.stringify(drafted[n]) === JSON.stringify(drafted[names[0]]));
const logitsBytes = m * onCpu.nVocab * 4;
const rows = names.map((name) => ({ placement: name, msPerStep: Number(median(times[name]).toFixed(3)) }));
const report = {
  model: modelPath,
  link: shape ?? "loopback, unshaped",
  m,
  k,
  rounds,
  nVocab: onCpu.nVocab,
  logitsBytesPerStep: logitsBytes,
  identicalDrafts: same,
  rows,
};
for (const r of rows) console.log(`${r.placement.padEnd(28)} ${r.msPerStep.toFixed(3)} ms per draft step`);
console.log(`drafts identical across placements: ${same}; logits per step without the device argmax: ${logitsBytes} B`);
if (values.json) writeFileSync(values.json, `${JSON.stringify(report, null, 2)}\n`);
for (const ctx of Object.values(contexts)) await ctx.dispose();
onRpc.dispose();
onCpu.dispose();
stop();
if (!same) process.exit(1);
