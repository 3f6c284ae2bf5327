#!/usr/bin/env node
// Randomized misuse of the native API from JavaScript (run by native-misuse.test.ts in a child process, so a crash
// is reported with the call that caused it): thousands of seeded calls with wrong argument types and ranges, calls
// after dispose, double dispose, dispose while jobs run, on the wrappers (LlamaModel, LlamaContext) and on the raw
// addon objects. Every call must return, throw an Error, or give a Promise that settles (with an Error when it
// rejects). Prints one JSON summary line; logs each call to $MISUSE_LOG (synchronously) before making it.
//
//   node test/reliability/misuse-driver.mjs --seed N --calls N --target T.gguf --draft D.gguf
import { appendFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { rng } from "../support/gguf.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const dist = (p) => import(pathToFileURL(path.join(root, "dist", p)).href);
const { LlamaModel } = await dist("native/model.js");
const { LlamaContext } = await dist("native/context.js");
const { loadAddon } = await dist("native/addon.js");

const args = Object.fromEntries(
  process.argv.slice(2).flatMap((a, i, all) => (a.startsWith("--") ? [[a.slice(2), all[i + 1]]] : [])),
);
const seed = Number(args.seed ?? 1);
const calls = Number(args.calls ?? 2000);
const log = process.env.MISUSE_LOG;
const T0 = Date.now();
if (log) writeFileSync(log, "");
const r = rng(seed);
const addon = await loadAddon();

// --- random values ----------------------------------------------------------------------------------------------

const sparse = () => {
  const a = [];
  a.length = r.pick([100, 2 ** 20, 2 ** 32 - 1]);
  return a;
};
const throwingGetter = () => ({
  get tokens() {
    throw new Error("getter threw");
  },
  get seq() {
    throw new Error("getter threw");
  },
  get length() {
    throw new Error("getter threw");
  },
});
const hostileProxy = () =>
  new Proxy(
    {},
    {
      get() {
        throw new Error("proxy trap threw");
      },
      has() {
        throw new Error("proxy trap threw");
      },
      ownKeys() {
        throw new Error("proxy trap threw");
      },
    },
  );
const JUNK = [
  () => undefined,
  () => null,
  () => NaN,
  () => Infinity,
  () => -Infinity,
  () => -1,
  () => 0,
  () => 1,
  () => 2,
  () => 7,
  () => 2 ** 31,
  () => -(2 ** 31),
  () => 2 ** 53,
  () => 1.5,
  () => 1e300,
  () => -0,
  () => "",
  () => "x",
  () => "12",
  () => true,
  () => false,
  () => [],
  () => [1, 2, 3],
  () => [-1],
  () => [1e9],
  () => [NaN],
  () => [[1]],
  () => ["1"],
  () => ({}),
  () => ({ length: 5 }),
  () => new Int32Array([1, 2, 3]),
  () => new Int32Array(0),
  () => new Float32Array(4),
  () => new Float64Array([0.5]),
  () => new Uint8Array(3),
  () => 10n,
  () => Symbol("s"),
  () => () => 1,
  () => Promise.resolve(1),
  () => new Date(),
  () => /re/,
  () => new Map(),
  () => Object.create(null),
  // biome-ignore lint/suspicious/noSparseArray: a sparse array is the hostile input under test
  () => [1, , 3],
  throwingGetter,
  hostileProxy,
];
const junk = () => r.pick(JUNK)();
/** mostly plausible integers around the edges of the valid ranges */
const int = () =>
  r.next() < 0.8
    ? r.pick([
        -2,
        -1,
        0,
        1,
        2,
        3,
        5,
        15,
        16,
        31,
        63,
        64,
        100,
        413,
        414,
        415,
        511,
        512,
        1000,
        2 ** 31 - 1,
        2 ** 31,
        -(2 ** 31) - 1,
      ])
    : junk();
const token = () => (r.next() < 0.85 ? r.int(414) : int());
// sparse arrays only reach the wrappers: the addon sizes its buffer from the length before reading (see the test)
let allowSparse = true;
const tokens = () =>
  r.next() < 0.8
    ? Array.from({ length: 1 + r.int(r.next() < 0.9 ? 8 : 80) }, token)
    : r.next() < 0.5
      ? junk()
      : r.next() < 0.5 || !allowSparse
        ? new Int32Array(Array.from({ length: 1 + r.int(8) }, token))
        : sparse();
const maybe = (f) => (r.next() < 0.92 ? f() : junk());
const sampling = () =>
  r.next() < 0.4
    ? undefined
    : r.next() < 0.8
      ? {
          temperature: maybe(() => r.pick([0, 0.5, 1, 2])),
          topK: maybe(() => r.pick([0, 1, 40])),
          topP: maybe(() => r.pick([1, 0.9, 0.5])),
        }
      : junk();
const uniforms = (k) =>
  r.next() < 0.8
    ? Array.from({ length: Math.min(64, Math.max(0, Number.isFinite(+k) ? +k | 0 : 0)) + 1 }, () =>
        maybe(() => r.next()),
      )
    : junk();
const draftSpec = () => {
  const k = maybe(() => 1 + r.int(5));
  return r.next() < 0.9
    ? {
        seq: maybe(() => r.int(3)),
        pos: maybe(() => r.int(40)),
        tokens: tokens(),
        k,
        sampling: sampling(),
        uniforms: uniforms(k),
      }
    : junk();
};
const verifySpec = () => {
  const draft = r.next() < 0.85 ? Array.from({ length: r.int(5) }, token) : junk();
  return r.next() < 0.9
    ? {
        seq: maybe(() => r.int(3)),
        pos: maybe(() => r.int(40)),
        pending: token(),
        draft,
        draftSeq: maybe(() => r.int(3)),
        sampling: sampling(),
        uniforms: uniforms(Array.isArray(draft) ? draft.length : 0),
      }
    : junk();
};
const specs = (f) => (r.next() < 0.9 ? Array.from({ length: 1 + r.int(3) }, f) : junk());
const batch = () => {
  if (r.next() < 0.1) return junk();
  const n = r.next() < 0.9 ? 1 + r.int(10) : r.int(3);
  const seqV = r.int(3);
  const start = r.int(30);
  return {
    tokens: r.next() < 0.9 ? Array.from({ length: n }, token) : tokens(),
    pos:
      r.next() < 0.85
        ? Array.from({ length: n }, (_, i) => start + i)
        : maybe(() => Array.from({ length: n }, () => int())),
    seq: r.next() < 0.85 ? Array.from({ length: n }, () => seqV) : maybe(() => Array.from({ length: n }, () => int())),
    logits: r.next() < 0.5 ? undefined : maybe(() => Array.from({ length: n }, () => r.int(2))),
  };
};
const ctxOptions = () =>
  r.next() < 0.85
    ? {
        contextSize: maybe(() => r.pick([16, 32, 64, 128])),
        sequences: maybe(() => r.pick([1, 2, 3])),
        batchSize: maybe(() => r.pick([8, 64, 512])),
        threads: maybe(() => r.pick([1, 1, 2])),
        kvUnified: maybe(() => r.next() < 0.5),
        threadpool: maybe(() => r.next() < 0.3),
      }
    : junk();
const rawCtxOptions = () =>
  r.next() < 0.85
    ? {
        nCtx: maybe(() => r.pick([16, 64, 128, 1 << 23])),
        nSeqMax: maybe(() => r.pick([1, 2, 300])),
        nBatch: maybe(() => r.pick([8, 64, 0])),
        threads: maybe(() => r.pick([1, 2, 0, 5000])),
        kvUnified: maybe(() => r.next() < 0.5),
        flashAttention: maybe(() => r.pick(["auto", "on", "off", "maybe"])),
      }
    : junk();
const floats = () =>
  r.next() < 0.8
    ? Float32Array.from({ length: 1 + r.int(500) }, () => r.pick([r.next() * 10 - 5, NaN, Infinity, -Infinity, 0]))
    : junk();
const messages = () =>
  r.next() < 0.7
    ? Array.from({ length: r.int(3) }, () =>
        r.next() < 0.8
          ? { role: maybe(() => r.pick(["user", "system", "assistant"])), content: maybe(() => "hi") }
          : junk(),
      )
    : junk();

// --- objects under test -----------------------------------------------------------------------------------------

const models = [];
const contexts = [];
const rawContexts = [];
const stats = { calls: 0, returned: 0, threw: 0, resolved: 0, rejected: 0, nonErrors: [], byOp: {}, unsettled: 0 };
const pending = new Set();

async function loadModel(p) {
  const m = await LlamaModel.load(p);
  models.push(m);
  return m;
}
// two stable models that random ops never dispose (their contexts keep the run busy); extra loaded copies are
// the ones disposed (also while their contexts live: that throws)
const stable = [await loadModel(args.target), await loadModel(args.draft)];
const extra = () => models.filter((m) => !stable.includes(m));
const livingModel = () => models.filter((m) => !m.disposed);
const anyModel = () => (r.next() < 0.95 ? (r.next() < 0.8 ? r.pick(stable) : r.pick(models)) : undefined);
const living = () => contexts.filter((c) => !c.raw.info().disposed);
/** mostly a living context, sometimes a disposed one */
const anyContext = () => (r.next() < 0.85 && living().length ? r.pick(living()) : r.pick(contexts));

/** a getter that disposes `obj` while the addon reads its arguments (wrappers snapshot arguments first) */
const disposingSpec = (obj, kind) => {
  const spec = kind === "draft" ? draftSpec() : kind === "verify" ? verifySpec() : batch();
  if (spec === null || typeof spec !== "object") return spec;
  return {
    ...spec,
    get seq() {
      void obj.dispose()?.catch?.(() => {});
      return 0;
    },
  };
};

const OPS = [
  // models (wrapper)
  [
    "model.tokenize",
    6,
    () =>
      r.pick(models).tokenize(
        maybe(() => r.pick(["Once upon a time", "", "caf\u00e9 \u{1F600}", "<s></s>", "\0\u00ff"])),
        maybe(() => r.next() < 0.5),
        maybe(() => r.next() < 0.5),
      ),
  ],
  [
    "model.detokenize",
    6,
    () =>
      r.pick(models).detokenize(
        tokens(),
        maybe(() => r.next() < 0.5),
        maybe(() => r.next() < 0.5),
      ),
  ],
  ["model.tokenBytes", 4, () => r.pick(models).tokenBytes(token())],
  ["model.tokenText", 3, () => r.pick(models).tokenText(token())],
  ["model.isEog", 3, () => r.pick(models).isEog(token())],
  [
    "model.applyChatTemplate",
    2,
    () =>
      r.pick(models).applyChatTemplate(
        messages(),
        maybe(() => true),
      ),
  ],
  ["model.incompatibilityWith", 2, () => r.pick(models).incompatibilityWith(r.next() < 0.8 ? r.pick(models) : junk())],
  ["model.dispose", 1, () => (extra().length ? r.pick(extra()).dispose() : undefined)],
  [
    "model.load",
    1,
    () =>
      livingModel().length < 4
        ? loadModel(r.next() < 0.8 ? r.pick([args.target, args.draft]) : maybe(() => "/nonexistent.gguf"))
        : undefined,
  ],
  [
    "model.detokenize(disposing getter)",
    1,
    () => {
      const m = r.pick(extra().length ? extra() : models);
      const arr = Array.from({ length: 3 }, token);
      Object.defineProperty(arr, 1, {
        get() {
          try {
            m.dispose();
          } catch {}
          return 5;
        },
      });
      return m.detokenize(arr);
    },
  ],
  // contexts (wrapper)
  [
    "context.create",
    3,
    async () => {
      if (living().length >= 4) return;
      const c = await LlamaContext.create(
        anyModel(),
        living().length < 2 ? { contextSize: 64, sequences: 3, threads: 1 } : ctxOptions(),
      );
      contexts.push(c);
    },
  ],
  ["context.decode", 8, () => anyContext()?.decode(batch())],
  [
    "context.prefill",
    6,
    () =>
      anyContext()?.prefill(
        maybe(() => r.int(3)),
        maybe(() => r.int(40)),
        tokens(),
      ),
  ],
  ["context.draft", 6, () => anyContext()?.draft(specs(draftSpec), r.next() < 0.7 ? undefined : int())],
  ["context.verify", 6, () => anyContext()?.verify(specs(verifySpec), r.next() < 0.5 ? anyContext() : undefined)],
  ["context.removeRange", 3, () => anyContext()?.removeRange(int(), int(), int())],
  [
    "context.copySeq",
    3,
    () => anyContext()?.copySeq(int(), int(), r.next() < 0.5 ? -1 : int(), r.next() < 0.5 ? -1 : int()),
  ],
  ["context.keepSeq", 2, () => anyContext()?.keepSeq(int())],
  ["context.clear", 1, () => anyContext()?.clear()],
  ["context.positions", 2, () => anyContext()?.positions(int())],
  ["context.info", 2, () => anyContext()?.info()],
  ["context.setThreads", 1, () => anyContext()?.setThreads?.(int())],
  ["context.dispose", 1, () => anyContext()?.dispose()],
  [
    "context.dispose-while-running",
    1,
    () => {
      const c = anyContext();
      if (!c) return;
      const job = c.prefill(0, 0, Array.from({ length: 12 }, token));
      const d = c.dispose();
      return Promise.all([job, d]);
    },
  ],
  [
    "context.decode(disposing getter)",
    1,
    () => {
      const c = anyContext();
      return c?.decode(disposingSpec(c, "decode"));
    },
  ],
  [
    "context.draft(disposing getter)",
    1,
    () => {
      const c = anyContext();
      return c?.draft([disposingSpec(c, "draft")]);
    },
  ],
  // the raw addon (no wrapper): types and ranges only (see native-misuse.test.ts for the reentrancy case)
  ["raw.model.tokenize", 2, () => r.pick(models).raw.tokenize(junk(), junk(), junk())],
  [
    "raw.model.detokenize",
    2,
    () =>
      r.pick(models).raw.detokenize(
        maybe(() => [1, 2]),
        junk(),
        junk(),
      ),
  ],
  ["raw.model.tokenBytes", 2, () => r.pick(models).raw.tokenBytes(junk(), junk())],
  [
    "raw.model.applyChatTemplate",
    1,
    () =>
      r.pick(models).raw.applyChatTemplate(
        maybe(() => [{ role: "user", content: "x" }]),
        junk(),
        junk(),
      ),
  ],
  [
    "raw.firstTokenTextDifference",
    2,
    () =>
      addon.firstTokenTextDifference(
        r.next() < 0.7 ? r.pick(models).raw : junk(),
        r.next() < 0.7 ? r.pick(models).raw : junk(),
      ),
  ],
  [
    "raw.createContext",
    2,
    async () => {
      if (rawContexts.filter((c) => !c.info().disposed).length >= 3) return;
      const fine = rawContexts.filter((c) => !c.info().disposed).length < 1;
      rawContexts.push(
        await addon.createContext(
          r.next() < 0.8 || fine ? r.pick(stable).raw : junk(),
          fine ? { nCtx: 192, nSeqMax: 3 } : rawCtxOptions(),
        ),
      );
    },
  ],
  [
    "raw.context.junk",
    3,
    () => {
      const c = r.pick([...rawContexts, ...contexts.map((x) => x.raw)]);
      if (!c) return;
      const m = r.pick([
        "decode",
        "prefill",
        "draft",
        "verify",
        "kvRemove",
        "kvCopy",
        "kvKeep",
        "kvPosRange",
        "kvClear",
        "info",
        "dispose",
      ]);
      return c[m](junk(), junk(), junk());
    },
  ],
  [
    "raw.context.plausible",
    6,
    () => {
      const alive = rawContexts.filter((x) => !x.info().disposed);
      const c = r.next() < 0.9 && alive.length ? r.pick(alive) : r.pick(rawContexts);
      if (!c) return;
      allowSparse = false;
      try {
        switch (r.int(9)) {
          case 0:
            return c.decode(batch());
          case 1:
            return c.prefill(
              maybe(() => r.int(3)),
              maybe(() => r.int(40)),
              tokens(),
            );
          case 2:
            return c.draft(specs(draftSpec), r.next() < 0.7 ? undefined : int());
          case 3:
            return c.verify(specs(verifySpec), r.next() < 0.5 ? r.pick(rawContexts) : undefined);
          case 4:
            return c.kvRemove(int(), int(), int());
          // partial copies between KV streams abort inside llama.cpp: whole copies only here (see the test)
          case 5:
            return c.kvCopy(int(), int());
          case 6:
            return c.kvPosRange(int());
          case 7:
            return r.next() < 0.3 ? c.dispose() : c.kvKeep(int());
          default:
            return c.kvClear();
        }
      } finally {
        allowSparse = true;
      }
    },
  ],
  ["raw.loadModel", 1, () => addon.loadModel(r.next() < 0.5 ? junk() : "/dev/null/x.gguf", junk())],
  [
    "raw.sampling",
    3,
    () => {
      const f = r.pick(["argmax", "filteredDist", "sampleRow", "sampleResidual"]);
      return addon.sampling[f](
        floats(),
        f === "filteredDist" ? sampling() : r.next() < 0.5 ? floats() : maybe(() => r.next()),
        maybe(() => r.int(600) - 50),
        maybe(() => r.next()),
      );
    },
  ],
  ["raw.setLogLevel", 1, () => addon.setLogLevel(r.next() < 0.5 ? 0 : junk())],
  ["raw.Model constructor", 1, () => new addon.Model(junk())],
  ["raw.Context constructor", 1, () => new addon.Context(r.next() < 0.5 ? r.pick(models).raw : junk(), junk())],
];
const totalWeight = OPS.reduce((s, [, w]) => s + w, 0);
function pickOp() {
  let x = r.next() * totalWeight;
  for (const op of OPS) if ((x -= op[1]) < 0) return op;
  return OPS[0];
}

function describe(e) {
  return e instanceof Error ? `${e.name}: ${e.message}` : `non-Error ${typeof e}: ${String(e)}`;
}

function track(name, promise) {
  const p = Promise.resolve(promise).then(
    () => stats.resolved++,
    (e) => {
      stats.rejected++;
      if (!(e instanceof Error)) stats.nonErrors.push(`${name} rejected with ${describe(e)}`);
    },
  );
  pending.add(p);
  p.finally(() => pending.delete(p));
}

for (let i = 0; i < calls; i++) {
  const [name, , f] = pickOp();
  stats.calls++;
  (stats.byOp[name] ??= { calls: 0, threw: 0 }).calls++;
  if (log)
    appendFileSync(log, `${i} ${Date.now() - T0} ${Math.round(process.memoryUsage().heapUsed / 1e6)}MB ${name}\n`);
  try {
    const out = f();
    stats.returned++;
    if (out && typeof out.then === "function") track(name, out);
  } catch (e) {
    stats.threw++;
    stats.byOp[name].threw++;
    if (!(e instanceof Error)) stats.nonErrors.push(`${name} threw ${describe(e)}`);
  }
  // let jobs complete now and then; keep some in flight across calls
  if (pending.size > 16 || r.next() < 0.05)
    await Promise.race([Promise.all([...pending]), new Promise((res) => setTimeout(res, 5))]);
}

// every promise settles
let settleTimer;
const settled = await Promise.race([
  Promise.all([...pending]).then(() => true),
  new Promise((res) => (settleTimer = setTimeout(() => res(false), 30_000))),
]);
clearTimeout(settleTimer);
stats.unsettled = settled ? 0 : pending.size;
// clean up: every context, then every model. Contexts made with `new addon.Context()` (never initialised, not in
// our lists) hold their model until they are garbage-collected: collect them first.
await Promise.allSettled([...contexts, ...rawContexts].map((c) => c.dispose()));
for (let i = 0; i < 4 && globalThis.gc; i++) {
  globalThis.gc();
  await new Promise((res) => setTimeout(res, 30));
}
for (const m of models) {
  try {
    m.dispose();
  } catch (e) {
    stats.nonErrors.push(`final model dispose: ${describe(e)}`);
  }
}
stats.contexts = contexts.length + rawContexts.length;
// collect the wrappers, so that a leak checker (scripts/asan-check.sh) sees only what was really lost
for (let i = 0; i < 6 && globalThis.gc; i++) {
  globalThis.gc();
  await new Promise((res) => setTimeout(res, 50));
}
stats.models = models.length;
process.stdout.write(`${JSON.stringify(stats)}\n`);
