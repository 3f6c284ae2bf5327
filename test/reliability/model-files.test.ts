// Bad model files: each gives a clear Error, never a crash. Missing / directory / empty / non-GGUF / truncated
// files are covered by test/native/native.test.ts; this file adds unreadable and special files, wrong magics,
// absurd counts, dimensions and string lengths crafted into the header bytes, a vocabulary-only GGUF, and one
// regression test per llama.cpp crash the fuzzer found (loaded in a child process, so a regression is reported
// as a crash of that child instead of killing vitest).
import { spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GgufError, readGgufHeader } from "../../src/native/gguf.js";
import { LlamaModel } from "../../src/native/model.js";
import { ensureBuilt, repoRoot } from "../cli/helpers.js";
import { loadInChild } from "../support/gguf-fuzz.mjs";
import { GGUF_TYPE, writeGguf } from "../support/gguf.mjs";
import { kvOf, microPair, parseLayout, runNode, withU32, withU64 } from "./helpers.js";

const scratch = mkdtempSync(path.join(tmpdir(), "minedraft-files-"));
let base: Buffer;
let layout: ReturnType<typeof parseLayout>;

beforeAll(async () => {
  ensureBuilt(); // the child processes load dist/
  const pair = await microPair(path.join(scratch, "micro"));
  base = readFileSync(pair.target);
  layout = parseLayout(base);
});

afterAll(() => rmSync(scratch, { recursive: true, force: true }));

let n = 0;
function file(bytes: Buffer | string): string {
  const p = path.join(scratch, `f${n++}.gguf`);
  writeFileSync(p, bytes);
  return p;
}

/** LlamaModel.load rejects with a GgufError whose message matches `why` (validation: llama.cpp never sees it). */
async function refused(bytes: Buffer, why: RegExp): Promise<void> {
  const p = file(bytes);
  const err = await LlamaModel.load(p).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, `${why} should be refused`).toBeInstanceOf(GgufError);
  expect((err as Error).message).toMatch(why);
  expect((err as Error).message).toContain(p);
}

describe("unreadable and special files", () => {
  it(
    "a file without read permission: 'permission denied' (as root: " + "checked in a child running as nobody)",
    async () => {
      const dir = path.join(scratch, "locked");
      mkdirSync(dir, { recursive: true });
      chmodSync(scratch, 0o755);
      chmodSync(dir, 0o755);
      const locked = path.join(dir, "locked.gguf");
      writeFileSync(locked, base);
      chmodSync(locked, 0o000);
      if (process.getuid?.() !== 0) {
        await expect(LlamaModel.load(locked)).rejects.toThrow(
          /cannot read model file .*locked\.gguf: permission denied/,
        );
        return;
      }
      // root reads anything: drop to nobody for the load (dist/ and node_modules are world-readable)
      const script = `import(${JSON.stringify(path.join(repoRoot, "dist", "native", "model.js"))})
      .then(({ LlamaModel }) => LlamaModel.load(${JSON.stringify(locked)})
        .then(() => console.log("LOADED"), (e) => console.log("ERR " + e.message)))`;
      const r = await runNode(["-e", script], { uid: 65534, gid: 65534, cwd: "/", timeoutMs: 60_000 });
      expect(r.signal, r.stderr).toBeNull();
      expect(r.stdout.trim()).toMatch(/^ERR cannot read model file .*locked\.gguf: permission denied$/);
    },
  );

  it("a FIFO, a character device and a socket-like path are not regular files", async () => {
    const fifo = path.join(scratch, "pipe.gguf");
    const mk = spawnSync("mkfifo", [fifo]);
    expect(mk.status, String(mk.stderr)).toBe(0);
    // must not block waiting for a writer
    await expect(LlamaModel.load(fifo)).rejects.toThrow(/not a regular file/);
    await expect(LlamaModel.load("/dev/null")).rejects.toThrow(/not a regular file/);
    await expect(LlamaModel.load("/dev/zero")).rejects.toThrow(/not a regular file/);
  });

  it("a path through a file, an empty path, a non-string path", async () => {
    const f = file(base);
    await expect(LlamaModel.load(path.join(f, "inside.gguf"))).rejects.toThrow(/cannot access model file|not found/);
    await expect(LlamaModel.load("")).rejects.toThrow(TypeError);
    await expect(LlamaModel.load(42 as unknown as string)).rejects.toThrow(TypeError);
  });

  it(
    "a file that shrinks to nothing between validation and " + "loading is refused by llama.cpp cleanly (raw addon)",
    async () => {
      // the addon itself (no validation) on a zero-byte file
      const { loadAddon } = await import("../../src/native/addon.js");
      const addon = await loadAddon();
      await expect(addon.loadModel(file(Buffer.alloc(0)))).rejects.toThrow(/failed to load model/);
    },
  );
});

describe("wrong magic and version", () => {
  it("older GGML formats and near-misses of the magic", async () => {
    for (const magic of ["GGML", "GGJT", "GGLA", "gguf", "FUGG", "\0GGU"]) {
      const b = Buffer.from(base);
      b.write(magic, 0, "latin1");
      await refused(b, /wrong magic/);
    }
  });
  it("versions 0, 1, 4 and 2^32-1", async () => {
    for (const v of [0, 1, 4, 0xffffffff]) await refused(withU32(base, 4, v), /unsupported GGUF version/);
  });
});

describe("absurd counts, dimensions and string lengths (header bytes edited)", () => {
  it("tensor count", async () => {
    await refused(withU64(base, layout.nTensorsOff, 2n ** 40n), /absurd tensor count/);
    await refused(withU64(base, layout.nTensorsOff, 2n ** 64n - 1n), /absurd/);
    // plausible but larger than the table: runs into the data and fails there
    await refused(withU64(base, layout.nTensorsOff, layout.tensors.length + 5), /not a valid GGUF/);
  });
  it("metadata count", async () => {
    await refused(withU64(base, layout.nKvOff, 2n ** 33n), /absurd metadata count/);
    await refused(withU64(base, layout.nKvOff, layout.kvs.length + 3), /not a valid GGUF/);
  });
  it("dimensions: zero, 2^41, a product beyond 2^50, more than 4 of them", async () => {
    const t = layout.tensors.find((x: { name: string }) => x.name === "token_embd.weight")!;
    await refused(withU64(base, t.dimOffs[0], 0), /absurd dimension 0/);
    await refused(withU64(base, t.dimOffs[1], 2n ** 41n), /absurd dimension/);
    const b = withU64(withU64(base, t.dimOffs[0], 2n ** 30n), t.dimOffs[1], 2n ** 30n);
    await refused(b, /absurdly large/);
    await refused(withU32(base, t.nDimsOff, 5), /has 5 dimensions/);
    await refused(withU32(base, t.nDimsOff, 0), /has 0 dimensions/);
    // a dimension that makes the tensor run past the end of the file
    await refused(withU64(base, t.dimOffs[1], t.dims[1] * 64), /past the end of the file/);
  });
  it("string lengths: a key, a string value, a vocabulary entry, a tensor name", async () => {
    const arch = kvOf(layout, "general.architecture");
    await refused(withU64(base, arch.keyLenOff, 2n ** 63n), /absurd/);
    await refused(withU64(base, arch.keyLenOff, 2n ** 40n), /string of 1099511627776 bytes/);
    await refused(withU64(base, arch.strLenOffs[0], 2n ** 35n), /string of \d+ bytes/);
    await refused(withU64(base, arch.strLenOffs[0], 1_000_000), /truncated|not a valid GGUF/);
    const tokens = kvOf(layout, "tokenizer.ggml.tokens");
    await refused(withU64(base, tokens.strLenOffs[3], 2n ** 62n), /absurd/);
    await refused(withU64(base, layout.tensors[0].nameLenOff, 2n ** 36n), /string of \d+ bytes/);
  });
  it("array lengths and value types", async () => {
    const tokens = kvOf(layout, "tokenizer.ggml.tokens");
    await refused(withU64(base, tokens.countOff!, 2n ** 40n), /array of \d+ items/);
    // within the limit but longer than the vocabulary: reading runs into the next arrays and fails there
    await refused(withU64(base, tokens.countOff!, 2n ** 26n), /truncated|string of \d+ bytes|absurd/);
    await refused(withU32(base, kvOf(layout, "llama.block_count").typeOff, 13), /unknown metadata value type 13/);
    await refused(withU32(base, tokens.valueOff, 9), /nested arrays/);
  });
  it("tensor offsets: unaligned, past the end, duplicated names", async () => {
    const t = layout.tensors[1];
    await refused(withU64(base, t.offsetOff, t.offset + 4), /not aligned/);
    await refused(withU64(base, t.offsetOff, 2n ** 40n), /past the end of the file/);
    const b = Buffer.from(base);
    // give a tensor the name of another one of the same name length
    type T = { name: string; nameLenOff: number };
    const ts = layout.tensors as T[];
    const a = ts.find((x) => ts.some((y) => y !== x && y.name.length === x.name.length))!;
    const c = ts.find((y) => y !== a && y.name.length === a.name.length)!;
    b.write(a.name, c.nameLenOff + 8, "latin1");
    await refused(b, /duplicate tensor/);
  });
  it("general.alignment: zero, not a power of two, huge", async () => {
    for (const v of [0, 3, 1 << 20]) {
      const extra = writeGguf({
        kvs: [
          ["general.alignment", GGUF_TYPE.u32, v],
          ["general.architecture", GGUF_TYPE.string, "llama"],
        ],
      });
      await refused(extra, /bad alignment/);
    }
  });
});

describe("files llama.cpp's loader would crash on are refused first (child process per file)", () => {
  // each case: the edit, and the validation message expected instead of the llama.cpp abort it caused
  async function refusedInChild(cases: [string, Buffer, RegExp][]): Promise<void> {
    const paths = cases.map(([, bytes]) => file(bytes));
    const outcomes = await loadInChild(paths, 60_000);
    outcomes.forEach((o: { status: string; name?: string; message?: string; how?: string }, i: number) => {
      const [what, , why] = cases[i]!;
      expect(o.status, `${what}: ${o.how ?? o.message}`).toBe("error");
      expect(o.name, what).toBe("GgufError");
      expect(o.message, what).toMatch(why);
    });
  }
  const setF32 = (b: Buffer, off: number, v: number) => {
    const c = Buffer.from(b);
    c.writeFloatLE(v, off);
    return c;
  };
  /** the offsets of every item of a string array */
  const stringItems = (b: Buffer, countOff: number): number[] => {
    const count = Number(b.readBigUInt64LE(countOff));
    const offs: number[] = [];
    let pos = countOff + 8;
    for (let i = 0; i < count; i++) {
      offs.push(pos);
      pos += 8 + Number(b.readBigUInt64LE(pos));
    }
    return offs;
  };

  it(
    "hyper-parameters: block_count 0 / 513 / 2^32-1, " +
      "a NaN or negative norm epsilon (GGML_ASSERT in load_hparams / ggml_rms_norm)",
    async () => {
      const blocks = kvOf(layout, "llama.block_count").valueOff;
      const eps = kvOf(layout, "llama.attention.layer_norm_rms_epsilon").valueOff;
      await refusedInChild([
        ["block_count 0", withU32(base, blocks, 0), /block_count is 0; llama.cpp supports 1\.\.512 layers/],
        ["block_count 513", withU32(base, blocks, 513), /block_count is 513/],
        ["block_count 2^32-1", withU32(base, blocks, 0xffffffff), /block_count is 4294967295/],
        ["eps NaN", setF32(base, eps, NaN), /layer_norm_rms_epsilon is NaN/],
        ["eps -1", setF32(base, eps, -1), /layer_norm_rms_epsilon is -1/],
        ["eps Infinity", setF32(base, eps, Infinity), /layer_norm_rms_epsilon is Infinity/],
      ]);
    },
  );

  it(
    "tensor types ggml cannot compute with (found by the fuzzer: " + "Q8_1 weights segfault at the first decode)",
    async () => {
      const t = (name: string) => layout.tensors.find((x: { name: string }) => x.name === name)!;
      const down = t("blk.1.ffn_down.weight");
      await refusedInChild([
        [
          "ffn_down Q8_1",
          withU32(base, down.typeOff, 9),
          /blk\.1\.ffn_down\.weight has type Q8_1, which is not a weight type/,
        ],
        ["ffn_down I8", withU32(base, down.typeOff, 24), /has type I8/],
        ["ffn_down I32", withU32(base, down.typeOff, 26), /has type I32/],
        [
          "attn_norm I32",
          withU32(base, t("blk.0.attn_norm.weight").typeOff, 26),
          /blk\.0\.attn_norm\.weight has type I32/,
        ],
        ["output I32", withU32(base, t("output.weight").typeOff, 26), /output\.weight has type I32/],
      ]);
    },
  );

  it(
    "the vocabulary: a duplicated token text, " + "a missing SentencePiece byte token, a byte token with a short text",
    async () => {
      const tokens = kvOf(layout, "tokenizer.ggml.tokens");
      const items = stringItems(base, tokens.countOff!);
      // token 3 + b is "<0xBB>": all six bytes long
      const dup = Buffer.from(base);
      dup.write("<0x41>", items[3 + 0x42]! + 8, "latin1"); // "<0x42>" -> "<0x41>"
      const missing = Buffer.from(base);
      missing.write("<0xZZ>", items[3 + 0xe2]! + 8, "latin1"); // no "<0xE2>" any more (and no 1-byte fallback)
      const types = kvOf(layout, "tokenizer.ggml.token_type");
      const lastPiece = items.length - 1; // a normal word piece, typed as a byte token below
      const shortByte = withU32(base, types.countOff! + 8 + 4 * lastPiece, 6);
      const text = base.toString(
        "latin1",
        items[lastPiece]! + 8,
        items[lastPiece]! + 8 + Number(base.readBigUInt64LE(items[lastPiece]!)),
      );
      // the built-in last piece is a word: re-pick one of 1 char
      expect(Buffer.byteLength(text, "latin1")).toBeGreaterThanOrEqual(3);
      const oneChar = items.findIndex((off) => base.readBigUInt64LE(off) === 1n);
      const shortByte1 = withU32(base, types.countOff! + 8 + 4 * oneChar, 6);
      // a NUL inside a token: llama.cpp reads the text up to it ("\u2581\0e" is "\u2581", a duplicate)
      const textOf = (off: number) => base.toString("latin1", off + 8, off + 8 + Number(base.readBigUInt64LE(off)));
      const wordA = items.findIndex((off) => textOf(off) === Buffer.from("\u2581a").toString("latin1"));
      const nul = Buffer.from(base);
      nul[items[wordA]! + 8 + 3] = 0; // after the 3 bytes of "\u2581"
      await refusedInChild([
        ["duplicate token", dup, /has token "<0x41>" twice \(ids 68 and 69\)/],
        [
          "NUL in a token",
          nul,
          new RegExp(`has token "\u2581" twice \\(ids \\d+ and ${wordA}, as llama.cpp reads them\\)`),
        ],
        ["missing byte token", missing, /no byte token <0xE2>/],
        ["byte token with a 1-char text", shortByte1, new RegExp(`byte token ${oneChar} has text`)],
      ]);
      // a long word piece typed as a byte token is harmless (llama.cpp reads <0x..> out of it): it loads
      const [ok] = await loadInChild([file(shortByte)], 60_000);
      expect(ok.status, ok.how ?? ok.message).not.toBe("crash");
    },
  );

  it(
    "tokenizers that would assert at the first tokenize(): " +
      "BOS required but undefined (UGM), a WordPiece byte token",
    async () => {
      const ugm = await microPair(path.join(scratch, "ugm"), { model: "t5", omit: ["tokenizer.ggml.bos_token_id"] });
      const wpm = await microPair(path.join(scratch, "wpm"), { model: "bert" });
      const ugmOk = await microPair(path.join(scratch, "ugm-ok"), {
        model: "t5",
        omit: ["tokenizer.ggml.bos_token_id"],
        addBos: false,
      });
      const outcomes = await loadInChild([ugm.target, wpm.target, ugmOk.target], 60_000);
      expect(outcomes[0]).toMatchObject({ status: "error", name: "GgufError" });
      expect(outcomes[0].message).toMatch(/must add a BOS token, but the vocabulary defines none/);
      expect(outcomes[1]).toMatchObject({ status: "error", name: "GgufError" });
      expect(outcomes[1].message).toMatch(/WordPiece vocabulary is typed as a byte token/);
      // the same UGM vocabulary without add_bos loads, tokenizes and decodes
      expect(outcomes[2], outcomes[2].how ?? outcomes[2].message).toMatchObject({ status: "loaded", stage: "done" });
    },
  );

  it("an unknown architecture and a GGUF of the wrong kind are refused by llama.cpp with its reason", async () => {
    const arch = kvOf(layout, "general.architecture");
    const unknown = Buffer.from(base);
    unknown.write("llamb", arch.strLenOffs[0] + 8, "latin1");
    const [o] = await loadInChild([file(unknown)], 60_000);
    expect(o.status, o.how).toBe("error");
    expect(o.message).toMatch(/failed to load model .*unknown model architecture: 'llamb'/);
  });
});

describe("vocabulary-only GGUF files", () => {
  const vocabs = ["llama-spm", "gpt-2", "bert-bge"].map((v) =>
    path.join(repoRoot, "deps", "llama.cpp", "models", `ggml-vocab-${v}.gguf`),
  );
  it(
    "llama.cpp's vocab files are valid GGUF (the header reads) " + "but are refused as models, with the reason",
    async () => {
      for (const v of vocabs) {
        const h = await readGgufHeader(v);
        expect(h.tensors.length).toBe(0);
        await expect(LlamaModel.load(v)).rejects.toThrow(
          /has no tensors: it is a vocabulary-only GGUF \(a tokenizer, not a model\)/,
        );
      }
    },
  );
  it("given to the raw addon (no validation), llama.cpp refuses them cleanly (child process)", async () => {
    const files = [...vocabs, path.join(scratch, "micro", "vocab.gguf")];
    const script = `import(${JSON.stringify(path.join(repoRoot, "dist", "native", "addon.js"))})
      .then(async ({ loadAddon }) => {
        const addon = await loadAddon();
        for (const f of ${JSON.stringify(files)})
          await addon.loadModel(f).then(
            () => console.log("LOADED"),
            (e) => console.log("ERR " + e.message.split(";")[0])
          );
      })`;
    const r = await runNode(["-e", script], { timeoutMs: 60_000 });
    expect(r.signal, r.stderr).toBeNull();
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trim().split("\n");
    expect(lines).toHaveLength(files.length);
    for (const l of lines) expect(l).toMatch(/^ERR failed to load model from /);
  });
});
