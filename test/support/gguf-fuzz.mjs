// The GGUF fuzzer's runner: fuzzes llama.cpp's model loader through minedraft (LlamaModel.load: GGUF validation, then
// llama.cpp) with seeded mutations of a tiny synthetic model (64 wide, 2 layers, a 414-token vocab: ~0.5 MB). Each
// mutated file is loaded in a child process, so a crash (a signal, an abort, an out-of-memory kill) or a hang is caught
// and reported with the mutation that caused it instead of taking the fuzzer down; the child is restarted after the
// crash.
// Used by test/reliability (small counts) and by the CLI scripts/fuzz-gguf.mjs (long runs).
// Needs the built addon and dist/ (npm run build). Run with --child, this file is the loader child.
import { spawn } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, writeSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { mutate, parseLayout, tinyVocabFile } from "./gguf.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const self = fileURLToPath(import.meta.url);
const dist = (p) => pathToFileURL(path.join(root, "dist", p)).href;

/** The tiny architecture every fuzz run mutates (also used by the reliability tests). */
export const MICRO_ARCH = { nEmbd: 64, nLayer: 2, nDraftLayer: 1, nFf: 128, nHead: 2, nHeadKv: 1, nCtxTrain: 512 };

/** Makes (or reuses) <dir>/vocab.gguf and the micro target/draft pair over it. Deterministic bytes. */
export async function microPair(dir, vocabOptions = {}, seed = 0) {
  mkdirSync(dir, { recursive: true });
  const vocab = path.join(dir, "vocab.gguf");
  writeFileSync(vocab, tinyVocabFile(vocabOptions));
  const { synthesizePair } = await import(dist("synth/index.js"));
  return {
    ...(await synthesizePair({ outDir: dir, vocab, preset: "tiny", dtype: "f32", seed, arch: MICRO_ARCH, threads: 1 })),
    vocab,
  };
}

/** Seed of mutation i of a run: distinct, reproducible. */
export function mutationSeed(seed, i) {
  return (Math.imul(seed >>> 0, 0x9e3779b1) + Math.imul(i + 1, 0x85ebca77)) >>> 0;
}

/**
 * Runs `count` mutations of the micro target (or `base`) through LlamaModel.load in child processes.
 * Stops early after `timeLimitMs`. Returns
 * { total, loaded, rejectedByValidation, rejectedByLlama, otherErrors,
 *   crashes: [{ index, seed, kind, what, how, file? }],
 *   byKind: { kind: { n, loaded, validation, llama } }, messages: { message: count }, ms }.
 */
export async function runFuzz({
  seed = 1,
  count = 300,
  timeLimitMs = Infinity,
  kind,
  keepDir,
  base,
  workDir,
  perLoadTimeoutMs = 20_000,
  batch = 40,
  log = () => {},
} = {}) {
  const t0 = Date.now();
  const work = workDir ?? mkdtempSync(path.join(os.tmpdir(), "minedraft-fuzz-"));
  const ownWork = !workDir;
  try {
    const basePath = base ?? (await microPair(path.join(work, "base"))).target;
    const orig = readFileSync(basePath);
    const layout = parseLayout(orig);
    const out = {
      total: 0,
      loaded: 0,
      rejectedByValidation: 0,
      rejectedByLlama: 0,
      otherErrors: 0,
      crashes: [],
      byKind: {},
      messages: {},
      ms: 0,
    };
    let i = 0;
    while (i < count && Date.now() - t0 < timeLimitMs) {
      const cases = [];
      for (; i < count && cases.length < batch; i++) {
        const s = mutationSeed(seed, i);
        const m = mutate(orig, layout, s, kind);
        const file = path.join(work, `m${i}.gguf`);
        writeFileSync(file, m.bytes);
        cases.push({ index: i, seed: s, kind: m.kind, what: m.what, file });
      }
      let next = 0;
      while (next < cases.length) {
        const results = await runChild(
          cases.slice(next).map((c) => c.file),
          perLoadTimeoutMs,
        );
        for (const r of results.done) {
          const c = cases[next++];
          record(out, c, r);
        }
        if (results.crash) {
          const c = cases[next++];
          const crash = { index: c.index, seed: c.seed, kind: c.kind, what: c.what, how: results.crash };
          if (keepDir) {
            mkdirSync(keepDir, { recursive: true });
            crash.file = path.join(keepDir, `crash-seed${seed}-${c.index}.gguf`);
            copyFileSync(c.file, crash.file);
          }
          out.crashes.push(crash);
          out.total++;
          (out.byKind[c.kind] ??= { n: 0, loaded: 0, validation: 0, llama: 0, crash: 0 }).crash++;
          out.byKind[c.kind].n++;
          log(`CRASH #${c.index} (${c.kind}: ${c.what}): ${results.crash}`);
        } else if (results.done.length === 0) {
          throw new Error(`fuzz child failed without loading anything: ${results.stderr.slice(-2000)}`);
        }
      }
      for (const c of cases) rmSync(c.file, { force: true });
      log(`${out.total}/${count} files, ${out.crashes.length} crash(es), ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    }
    out.ms = Date.now() - t0;
    return out;
  } finally {
    if (ownWork) rmSync(work, { recursive: true, force: true });
  }
}

/**
 * Loads each file through LlamaModel.load (then tokenizer, context, decode) in a child process.
 * Resolves with one outcome per file: { status: "loaded" } | { status: "error", stage, name, message } |
 * { status: "crash", how } (the child died: signal, abort, hang).
 */
export async function loadInChild(files, perLoadTimeoutMs = 30_000) {
  const outcomes = [];
  while (outcomes.length < files.length) {
    const r = await runChild(files.slice(outcomes.length), perLoadTimeoutMs);
    outcomes.push(...r.done);
    if (r.crash) outcomes.push({ status: "crash", how: r.crash });
    else if (r.done.length === 0) throw new Error(`loader child failed: ${r.stderr.slice(-2000)}`);
  }
  return outcomes;
}

function record(out, c, r) {
  out.total++;
  const k = (out.byKind[c.kind] ??= { n: 0, loaded: 0, validation: 0, llama: 0, crash: 0 });
  k.n++;
  if (r.status === "loaded") {
    out.loaded++;
    k.loaded++;
    return;
  }
  let msg;
  if (r.name === "GgufError") {
    out.rejectedByValidation++;
    k.validation++;
    msg = `validation: ${r.message.replace(/^.* is not a valid GGUF model: /, "")}`;
  } else if (/failed to load model from/.test(r.message)) {
    out.rejectedByLlama++;
    k.llama++;
    msg = `llama.cpp: ${r.message.replace(/^failed to load model from \S+(: )?/, "")}`;
  } else {
    out.otherErrors++;
    msg = `${r.stage && r.stage !== "load" ? `after load (${r.stage}) ` : ""}${r.name}: ${r.message}`;
  }
  // group messages: numbers and names vary per mutation
  msg = msg
    .replace(/\/\S+\.gguf/g, "FILE")
    .replace(/\d+/g, "N")
    .replace(/'[^']*'|"[^"]*"/g, "'X'")
    .slice(0, 160);
  out.messages[msg] = (out.messages[msg] ?? 0) + 1;
}

/** Loads files one by one in a child; resolves with the per-file outcomes and, if the child died, how. */
export function runChild(files, perLoadTimeoutMs) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [self, "--child"], { stdio: ["pipe", "pipe", "pipe"], env: process.env });
    const done = [];
    let started = -1;
    let buf = "";
    let stderr = "";
    let timer;
    let hung = false;
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        hung = true;
        child.kill("SIGKILL");
      }, perLoadTimeoutMs);
    };
    arm();
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (d) => {
      buf += d;
      let nl;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.startsWith("START ")) {
          started = Number(line.slice(6));
          arm();
        } else if (line.startsWith("RESULT ")) done.push(JSON.parse(line.slice(7)));
      }
    });
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (d) => {
      stderr = (stderr + d).slice(-20_000);
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      let crash;
      if (hung) crash = `no result after ${perLoadTimeoutMs} ms (hang), killed`;
      else if (signal || code !== 0)
        crash = `child exited with ${signal ? `signal ${signal}` : `code ${code}`}: ${lastLines(stderr)}`;
      if (crash && started !== done.length) crash = undefined; // died between files: not attributable
      resolve({
        done,
        crash:
          done.length < files.length
            ? (crash ?? `child exited early (${signal ?? code}): ${lastLines(stderr)}`)
            : undefined,
        stderr,
      });
    });
    child.stdin.end(files.join("\n"));
  });
}

function lastLines(s) {
  return s.trim().split("\n").slice(-3).join(" | ").slice(0, 600);
}

/** Text that exercises byte fallback, special-token parsing and whitespace handling in the tokenizer. */
export const AWKWARD_TEXT = "Once upon a time\n\t  <s></s><unk> caf\u00e9 \u20ac\u{1F600} \u0000\u00ff~`|{}\r\n";

// --- child: load each file named on stdin, report each outcome before the next ---------------------------------

async function child() {
  const files = readFileSync(0, "utf8").split("\n").filter(Boolean);
  const { LlamaModel } = await import(dist("native/model.js"));
  const { LlamaContext } = await import(dist("native/context.js"));
  const say = (s) => writeSync(1, `${s}\n`); // synchronous: written before a crash in the next load
  for (let i = 0; i < files.length; i++) {
    say(`START ${i}`);
    let result;
    try {
      result = undefined;
      const m = await LlamaModel.load(files[i], { gpuLayers: 0 });
      try {
        result = { status: "loaded", stage: "tokenizer" };
        // what a user touches first: metadata, the tokenizer on awkward text, every token's bytes
        const toks = m.tokenize(AWKWARD_TEXT, true, true);
        m.detokenize(toks, false, true);
        for (let t = 0; t < Math.min(m.nVocab, 4096); t++) {
          m.tokenBytes(t);
          m.isEog(t);
        }
        // then a context and one decode: hyper-parameters that load but break the graph show up here
        result.stage = "decode";
        const ctx = await LlamaContext.create(m, { contextSize: 32, sequences: 1, threads: 1 });
        try {
          const prompt = toks.slice(0, 8).filter((t) => t >= 0 && t < m.nVocab);
          if (prompt.length > 0)
            await ctx.decode({ tokens: prompt, pos: prompt.map((_, j) => j), seq: prompt.map(() => 0) });
        } finally {
          await ctx.dispose();
        }
        result.stage = "done";
      } finally {
        m.dispose();
      }
    } catch (e) {
      result = {
        status: "error",
        stage: result?.stage ?? "load",
        name: e?.name ?? typeof e,
        message: String(e?.message ?? e).slice(0, 400),
      };
    }
    say(`RESULT ${JSON.stringify(result)}`);
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === self && process.argv[2] === "--child") await child();
