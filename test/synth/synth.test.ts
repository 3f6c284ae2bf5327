// Synthetic target/draft pairs (cpp/synth/ + src/synth): file format, determinism, draft = target prefix,
// progress reporting, validation, caching, and that llama.cpp loads the pair and gives peaked logits.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHash } from "node:crypto";
import { createReadStream, existsSync } from "node:fs";
import { mkdtemp, open, readdir, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { createEngine } from "../../src/create-engine.js";
import { loadAddon } from "../../src/native/addon.js";
import { readGgufHeader, type GgufHeader, type GgufTensorInfo } from "../../src/native/gguf.js";
import { vocabIncompatibility } from "../../src/native/vocab-compat.js";
import { loadSynthAddon } from "../../src/synth/addon.js";
import {
  SYNTH_PRESETS,
  SYNTH_VERSION,
  ensureSyntheticPair,
  resolveVocab,
  synthesizePair,
  syntheticPairKey,
} from "../../src/synth/index.js";

let tmp: string;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), "minedraft-synth-"));
});

afterAll(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

function sha256(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash("sha256");
    createReadStream(file)
      .on("data", (c) => h.update(c))
      .on("error", reject)
      .on("end", () => resolve(h.digest("hex")));
  });
}

async function tensorBytes(file: string, header: GgufHeader, t: GgufTensorInfo): Promise<Buffer> {
  expect(t.bytes, `size of ${t.name}`).toBeTypeOf("number");
  const fh = await open(file, "r");
  try {
    const buf = Buffer.alloc(t.bytes!);
    const { bytesRead } = await fh.read(buf, 0, buf.length, header.dataOffset + t.offset);
    expect(bytesRead).toBe(buf.length);
    return buf;
  } finally {
    await fh.close();
  }
}

async function tensorHashes(file: string): Promise<Map<string, string>> {
  const header = await readGgufHeader(file);
  const out = new Map<string, string>();
  for (const t of header.tensors)
    out.set(
      t.name,
      createHash("sha256")
        .update(await tensorBytes(file, header, t))
        .digest("hex"),
    );
  return out;
}

const tiny = SYNTH_PRESETS.tiny;
const LAYER_TENSORS = [
  "attn_norm",
  "attn_q",
  "attn_k",
  "attn_v",
  "attn_output",
  "ffn_norm",
  "ffn_gate",
  "ffn_up",
  "ffn_down",
];

describe("synthesizePair (tiny)", () => {
  let a: { target: string; draft: string };
  const progress: [number, string][] = [];
  let ticks = 0;

  beforeAll(async () => {
    const timer = setInterval(() => ticks++, 5);
    try {
      a = await synthesizePair({
        outDir: path.join(tmp, "a"),
        preset: "tiny",
        seed: 1,
        onProgress: (f, s) => progress.push([f, s]),
      });
    } finally {
      clearInterval(timer);
    }
  });

  it("writes two GGUF files with llama hyper-parameters and the vocab's tokenizer", async () => {
    expect(a.target).toBe(path.join(tmp, "a", "target.gguf"));
    expect(a.draft).toBe(path.join(tmp, "a", "draft.gguf"));
    for (const f of [a.target, a.draft]) {
      const fh = await open(f, "r");
      const magic = Buffer.alloc(4);
      await fh.read(magic, 0, 4, 0);
      await fh.close();
      expect(magic.toString("latin1")).toBe("GGUF");
    }
    expect((await readdir(path.join(tmp, "a"))).sort()).toEqual(["draft.gguf", "target.gguf"]); // no temp files left

    const vocab = await readGgufHeader(resolveVocab("llama-spm"));
    const nVocab = (vocab.metadata.get("tokenizer.ggml.tokens") as unknown[]).length;
    expect(nVocab).toBeGreaterThan(1000);

    const t = await readGgufHeader(a.target);
    const d = await readGgufHeader(a.draft);
    for (const [h, layers] of [
      [t, tiny.nLayer],
      [d, tiny.nDraftLayer],
    ] as const) {
      const m = h.metadata;
      expect(m.get("general.architecture")).toBe("llama");
      expect(Number(m.get("llama.block_count"))).toBe(layers);
      expect(Number(m.get("llama.embedding_length"))).toBe(tiny.nEmbd);
      expect(Number(m.get("llama.feed_forward_length"))).toBe(tiny.nFf);
      expect(Number(m.get("llama.attention.head_count"))).toBe(tiny.nHead);
      expect(Number(m.get("llama.attention.head_count_kv"))).toBe(tiny.nHeadKv);
      expect(Number(m.get("llama.rope.dimension_count"))).toBe(tiny.nEmbd / tiny.nHead);
      expect(Number(m.get("llama.context_length"))).toBe(tiny.nCtxTrain);
      expect(Number(m.get("general.file_type"))).toBe(0); // f32
      expect(Number(m.get("minedraft.synth.version"))).toBe(SYNTH_VERSION);
      // every tokenizer.* key is copied verbatim
      for (const [k, v] of vocab.metadata) if (k.startsWith("tokenizer.")) expect(m.get(k), k).toEqual(v);
      expect(h.tensors.length).toBe(3 + LAYER_TENSORS.length * layers);
      const embd = h.tensors.find((x) => x.name === "token_embd.weight")!;
      expect(embd.dims).toEqual([tiny.nEmbd, nVocab]);
      const k = h.tensors.find((x) => x.name === "blk.0.attn_k.weight")!;
      expect(k.dims).toEqual([tiny.nEmbd, (tiny.nEmbd / tiny.nHead) * tiny.nHeadKv]);
      const down = h.tensors.find((x) => x.name === "blk.0.ffn_down.weight")!;
      expect(down.dims).toEqual([tiny.nFf, tiny.nEmbd]);
    }
    for (const h of [t, d]) {
      // a ChatML chat template (the vocab file has none), so chat() works on the pair
      expect(vocab.metadata.has("tokenizer.chat_template")).toBe(false);
      expect(h.metadata.get("tokenizer.chat_template")).toMatch(/<\|im_start\|>/);
      expect(h.metadata.get("minedraft.synth.chat_template")).toBe("chatml");
    }
    expect(t.metadata.get("minedraft.synth.role")).toBe("target");
    expect(d.metadata.get("minedraft.synth.role")).toBe("draft");
  });

  it("makes the draft bit-identical to the target's first layer(s), embeddings and head", async () => {
    const t = await readGgufHeader(a.target);
    const d = await readGgufHeader(a.draft);
    const byName = new Map(t.tensors.map((x) => [x.name, x]));
    const expected = ["token_embd.weight", "output_norm.weight", "output.weight"];
    for (let il = 0; il < tiny.nDraftLayer; il++) for (const n of LAYER_TENSORS) expected.push(`blk.${il}.${n}.weight`);
    expect(d.tensors.map((x) => x.name).sort()).toEqual(expected.sort());
    for (const dt of d.tensors) {
      const tt = byName.get(dt.name)!;
      expect(tt, dt.name).toBeDefined();
      expect(tt.type, dt.name).toBe(dt.type);
      expect(tt.dims, dt.name).toEqual(dt.dims);
      const [x, y] = await Promise.all([tensorBytes(a.draft, d, dt), tensorBytes(a.target, t, tt)]);
      expect(x.equals(y), `${dt.name} differs between draft and target`).toBe(true);
    }
    // the target's deeper layers are not simply copies of layer 0
    const l0 = await tensorBytes(a.target, t, byName.get("blk.0.attn_q.weight")!);
    const l1 = await tensorBytes(a.target, t, byName.get(`blk.${tiny.nDraftLayer}.attn_q.weight`)!);
    expect(l0.equals(l1)).toBe(false);
  });

  it("reports strictly increasing progress ending at 1 without blocking the JS thread", () => {
    expect(progress.length).toBeGreaterThanOrEqual(3);
    for (let i = 1; i < progress.length; i++) expect(progress[i][0]).toBeGreaterThan(progress[i - 1][0]);
    expect(progress[0][0]).toBeGreaterThanOrEqual(0);
    expect(progress.at(-1)).toEqual([1, "done"]);
    for (const [, stage] of progress) expect(typeof stage).toBe("string");
    expect(ticks).toBeGreaterThan(0);
  });

  it(
    "is deterministic: same seed gives byte-identical " + "files (whatever the thread count), another seed differs",
    async () => {
      const b = await synthesizePair({ outDir: path.join(tmp, "b"), preset: "tiny", seed: 1, threads: 1 });
      const c = await synthesizePair({ outDir: path.join(tmp, "c"), preset: "tiny", seed: 2 });
      const [at, ad, bt, bd, ct, cd] = await Promise.all(
        [a.target, a.draft, b.target, b.draft, c.target, c.draft].map(sha256),
      );
      expect(bt).toBe(at);
      expect(bd).toBe(ad);
      expect(ct).not.toBe(at);
      expect(cd).not.toBe(ad);
    },
  );

  it("eps only changes the target's attn_output / ffn_down past the draft layers", async () => {
    const e = await synthesizePair({ outDir: path.join(tmp, "e"), preset: "tiny", seed: 1, eps: 0.5 });
    expect(await sha256(e.draft)).toBe(await sha256(a.draft));
    const [ha, he] = await Promise.all([tensorHashes(a.target), tensorHashes(e.target)]);
    expect([...he.keys()]).toEqual([...ha.keys()]);
    for (const [name, h] of ha) {
      const m = /^blk\.(\d+)\.(attn_output|ffn_down)\.weight$/.exec(name);
      const scaled = m !== null && Number(m[1]) >= tiny.nDraftLayer;
      if (scaled) expect(he.get(name), name).not.toBe(h);
      else expect(he.get(name), name).toBe(h);
    }
  });

  it("attnScale 1 is the default, byte for byte (same files, same cache key)", async () => {
    const one = await synthesizePair({ outDir: path.join(tmp, "one"), preset: "tiny", seed: 1, attnScale: 1 });
    expect(await sha256(one.target)).toBe(await sha256(a.target));
    expect(await sha256(one.draft)).toBe(await sha256(a.draft));
    expect(syntheticPairKey({ seed: 1, attnScale: 1 })).toBe(syntheticPairKey({ seed: 1 }));
  });

  it("attnScale scales attn_output in every layer of both files and is recorded in their metadata", async () => {
    const z = await synthesizePair({ outDir: path.join(tmp, "z"), preset: "tiny", seed: 1, attnScale: 0 });
    const [ha, hz] = await Promise.all([tensorHashes(a.target), tensorHashes(z.target)]);
    for (const [name, h] of ha) {
      if (/^blk\.\d+\.attn_output\.weight$/.test(name)) expect(hz.get(name), name).not.toBe(h);
      else expect(hz.get(name), name).toBe(h);
    }
    // the draft is still the target's prefix
    const t = await readGgufHeader(z.target);
    const d = await readGgufHeader(z.draft);
    const byName = new Map(t.tensors.map((x) => [x.name, x]));
    for (const dt of d.tensors) {
      const [x, y] = await Promise.all([tensorBytes(z.draft, d, dt), tensorBytes(z.target, t, byName.get(dt.name)!)]);
      expect(x.equals(y), `${dt.name} differs between draft and target`).toBe(true);
    }
    expect(t.metadata.get("minedraft.synth.attn_scale")).toBe(0);
    expect(d.metadata.get("minedraft.synth.attn_scale")).toBe(0);
    expect((await readGgufHeader(a.target)).metadata.has("minedraft.synth.attn_scale")).toBe(false);
  });

  it("attnScale 0 makes a bigram model: greedy continues Q + O + Q with O", async () => {
    const z = await synthesizePair({ outDir: path.join(tmp, "z0"), preset: "tiny", seed: 1, attnScale: 0 });
    const engine = await createEngine({ mode: "ar", batchSize: 1, contextSize: 512, target: { model: z.target } });
    try {
      const q = engine.tokenize("The quick brown fox jumps over the lazy dog. Then it", true);
      const o = (await engine.generate(q, { maxTokens: 48, temperature: 0 })).tokens;
      expect(o.length).toBe(48);
      const again = (await engine.generate([...q, ...o, ...q], { maxTokens: 48, temperature: 0 })).tokens;
      expect(again).toEqual(o);
    } finally {
      await engine.close();
    }
  });

  it("loads in llama.cpp as a compatible pair with peaked, finite logits", async () => {
    const addon = await loadAddon();
    const target = await addon.loadModel(a.target);
    const draft = await addon.loadModel(a.draft);
    try {
      expect(target.info().nLayer).toBe(tiny.nLayer);
      expect(draft.info().nLayer).toBe(tiny.nDraftLayer);
      expect(target.applyChatTemplate([{ role: "user", content: "hi" }], true)).toBe(
        "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n",
      );
      expect(
        vocabIncompatibility(addon, { raw: target, info: target.info() }, { raw: draft, info: draft.info() }),
      ).toBeNull();
      const ctx = await addon.createContext(target, { nCtx: 256, threads: 2 });
      try {
        const tokens = Array.from(target.tokenize("The quick brown fox jumps over", true, false));
        const logits = await ctx.decode({ tokens, pos: tokens.map((_, i) => i), seq: tokens.map(() => 0) });
        expect(logits.length).toBe(target.info().nVocab);
        let sum = 0;
        let max = -Infinity;
        for (const v of logits) {
          expect(Number.isFinite(v)).toBe(true);
          sum += v;
          max = Math.max(max, v);
        }
        const mean = sum / logits.length;
        let varSum = 0;
        for (const v of logits) varSum += (v - mean) ** 2;
        const sd = Math.sqrt(varSum / logits.length);
        expect(sd).toBeGreaterThan(2);
        expect(sd).toBeLessThan(10);
        expect(max - mean).toBeGreaterThan(3 * sd); // a clear argmax
      } finally {
        await ctx.dispose();
      }
    } finally {
      target.dispose();
      draft.dispose();
    }
  });
});

describe("synthesis errors", () => {
  it("validates options with TypeError / RangeError", async () => {
    const out = path.join(tmp, "bad");
    await expect(synthesizePair({ outDir: out, preset: "huge" as never })).rejects.toThrow(RangeError);
    await expect(synthesizePair({ outDir: out, eps: -1 })).rejects.toThrow(/eps/);
    await expect(synthesizePair({ outDir: out, attnScale: -1 })).rejects.toThrow(
      /attnScale must be a finite number in \[0, 100\]/,
    );
    await expect(synthesizePair({ outDir: out, attnScale: Number.NaN })).rejects.toThrow(RangeError);
    await expect(synthesizePair({ outDir: out, attnScale: 101 })).rejects.toThrow(RangeError);
    await expect(synthesizePair({ outDir: out, attnScale: "0" as never })).rejects.toThrow(TypeError);
    await expect(synthesizePair({ outDir: out, seed: 1.5 })).rejects.toThrow(RangeError);
    await expect(synthesizePair({ outDir: out, dtype: "q4_0" as never })).rejects.toThrow(/dtype/);
    await expect(synthesizePair({ outDir: out, vocab: "no-such-vocab" })).rejects.toThrow(/not found/);
    await expect(synthesizePair({ outDir: "" })).rejects.toThrow(TypeError);

    const addon = await loadSynthAddon();
    const vocabPath = resolveVocab();
    const ok = { outDir: out, vocabPath, nEmbd: 64, nLayer: 2, nDraftLayer: 1, nHead: 2, nHeadKv: 1, nFf: 64 };
    expect(() => addon.synthesize(undefined as never)).toThrow(TypeError);
    expect(() => addon.synthesize({ ...ok, nEmbd: "64" })).toThrow(/opts\.nEmbd must be a number/);
    expect(() => addon.synthesize({ ...ok, nLayer: undefined })).toThrow(/opts\.nLayer is required/);
    expect(() => addon.synthesize({ ...ok, nEmbd: 66, nHead: 4 })).toThrow(RangeError);
    expect(() => addon.synthesize({ ...ok, nDraftLayer: 3 })).toThrow(/nDraftLayer/);
    expect(() => addon.synthesize({ ...ok, dtype: "q8_0", nEmbd: 48, nHead: 2 })).toThrow(/multiples of 32/);
    expect(() => addon.synthesize({ ...ok, eps: Number.NaN })).toThrow(RangeError);
    expect(() => addon.synthesize({ ...ok, attnScale: Number.POSITIVE_INFINITY })).toThrow(/attnScale/);
    expect(() => addon.synthesize({ ...ok, attnScale: "0" })).toThrow(TypeError);
    expect(() => addon.synthesize(ok, 5 as never)).toThrow(TypeError);
    await expect(addon.synthesize({ ...ok, vocabPath: path.join(tmp, "missing.gguf") })).rejects.toThrow(
      /vocab file not found/,
    );
    expect(existsSync(path.join(out, "target.gguf"))).toBe(false);
  });

  it("stops when onProgress throws, rejecting with its error and leaving no files", async () => {
    const out = path.join(tmp, "abort");
    const boom = new Error("boom");
    await expect(
      synthesizePair({
        outDir: out,
        preset: "tiny",
        onProgress: (f) => {
          if (f > 0.2) throw boom;
        },
      }),
    ).rejects.toBe(boom);
    expect(await readdir(out)).toEqual([]);
  });
});

describe("ensureSyntheticPair", () => {
  it("makes the pair once under <cache>/<key>/ and then reuses it", async () => {
    const cache = path.join(tmp, "cache");
    const opts = { preset: "tiny" as const, seed: 3 };
    const key = syntheticPairKey(opts);
    expect(key).toBe(`tiny-llama-spm-f32-eps${tiny.eps}-s3-v${SYNTH_VERSION}`);
    expect(syntheticPairKey({ vocab: resolveVocab("llama-spm"), dtype: "q8_0", eps: 0.5 })).toMatch(
      /^tiny-llama-spm\.[0-9a-f]{8}-q8_0-eps0\.5-s0-v\d+$/,
    );
    expect(syntheticPairKey({ attnScale: 0, seed: 3 })).toBe(
      `tiny-llama-spm-f32-eps${tiny.eps}-attn0-s3-v${SYNTH_VERSION}`,
    );
    expect(syntheticPairKey({ attnScale: 0.25 })).toMatch(/-eps[0-9.]+-attn0\.25-s0-v\d+$/);
    expect(syntheticPairKey({ arch: { nLayer: 6 } })).toMatch(/^tiny-llama-spm-f32-eps[0-9.]+-s0-a[0-9a-f]{8}-v\d+$/);
    // concurrent callers share one synthesis
    const [p1, p2] = await Promise.all([ensureSyntheticPair(cache, opts), ensureSyntheticPair(cache, opts)]);
    expect(p1).toBe(p2);
    expect(p1.created).toBe(true);
    expect(p1.dir).toBe(path.join(cache, key));
    const marker = JSON.parse(await readFile(path.join(p1.dir, "complete.json"), "utf8"));
    expect(marker.key).toBe(key);
    const again = await ensureSyntheticPair(cache, opts);
    expect(again.created).toBe(false);
    expect(again.target).toBe(p1.target);
    // a missing marker (interrupted run) makes it again
    await rm(path.join(p1.dir, "complete.json"));
    const remade = await ensureSyntheticPair(cache, opts);
    expect(remade.created).toBe(true);
    expect(await sha256(remade.target)).toBe(await sha256(p1.target));
  });
});
