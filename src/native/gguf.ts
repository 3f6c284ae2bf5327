// A bounds-checked GGUF header reader. Every model file is read and validated here before it
// reaches llama.cpp's loader, so a corrupt or hostile file gives a clear Error instead of a crash:
// header, key/value table, tensor table, and each tensor's offset and size against the file length.
import { open, stat } from "node:fs/promises";

export interface GgufTensorInfo {
  name: string;
  dims: number[];
  type: number;
  offset: number;
  bytes: number | undefined;
}

export interface GgufHeader {
  version: number;
  metadata: Map<string, unknown>;
  tensors: GgufTensorInfo[];
  dataOffset: number;
  fileSize: number;
}

export class GgufError extends Error {
  constructor(path: string, why: string) {
    super(`${path} is not a valid GGUF model: ${why}`);
    this.name = "GgufError";
  }
}

// [block size, bytes per block] by ggml_type id.
const TYPE_SIZES: Record<number, [number, number]> = {
  0: [1, 4],
  1: [1, 2],
  2: [32, 18],
  3: [32, 20],
  6: [32, 22],
  7: [32, 24],
  8: [32, 34],
  9: [32, 36],
  10: [256, 84],
  11: [256, 110],
  12: [256, 144],
  13: [256, 176],
  14: [256, 210],
  15: [256, 292],
  16: [256, 66],
  17: [256, 74],
  18: [256, 98],
  19: [256, 50],
  20: [32, 18],
  21: [256, 110],
  22: [256, 82],
  23: [256, 136],
  24: [1, 1],
  25: [1, 2],
  26: [1, 4],
  27: [1, 8],
  28: [1, 8],
  29: [256, 56],
  30: [1, 2],
  34: [256, 54],
  35: [256, 66],
  39: [32, 17],
};

export const GGML_TYPE_NAMES: Record<number, string> = {
  0: "F32",
  1: "F16",
  2: "Q4_0",
  3: "Q4_1",
  6: "Q5_0",
  7: "Q5_1",
  8: "Q8_0",
  9: "Q8_1",
  10: "Q2_K",
  11: "Q3_K",
  12: "Q4_K",
  13: "Q5_K",
  14: "Q6_K",
  15: "Q8_K",
  16: "IQ2_XXS",
  17: "IQ2_XS",
  18: "IQ3_XXS",
  19: "IQ1_S",
  20: "IQ4_NL",
  21: "IQ3_S",
  22: "IQ2_S",
  23: "IQ4_XS",
  24: "I8",
  25: "I16",
  26: "I32",
  27: "I64",
  28: "F64",
  29: "IQ1_M",
  30: "BF16",
  34: "TQ1_0",
  35: "TQ2_0",
  39: "MXFP4",
};

/**
 * ggml types that are never model weights (activation-only quantizations, integer and f64 types): llama.cpp loads
 * a tensor of such a type, and ggml's CPU kernels then crash (a null kernel pointer, or an abort) on the first
 * decode. Measured: Q8_1 / I8 / I16 / I32 weights segfault, an I32 norm or embedding aborts.
 */
const NON_WEIGHT_TYPES = new Set([9, 15, 24, 25, 26, 27, 28]);

const MAX_STRING = 64 << 20;
const MAX_ARRAY = 1 << 26;
const MAX_KV = 1 << 16;
const MAX_TENSORS = 1 << 20;
const MAX_DIMS = 4;

/** Buffered sequential reader with hard bounds against the file size. */
class Reader {
  private buf = Buffer.alloc(0);
  private bufStart = 0;
  pos = 0;
  constructor(
    private readonly fh: import("node:fs/promises").FileHandle,
    readonly size: number,
    private readonly fail: (why: string) => never,
  ) {}

  async need(n: number): Promise<Buffer> {
    if (n < 0 || this.pos + n > this.size)
      this.fail(`truncated: needs ${n} bytes at offset ${this.pos}, file has ${this.size}`);
    const end = this.pos + n;
    if (this.pos < this.bufStart || end > this.bufStart + this.buf.length) {
      const len = Math.min(Math.max(n, 1 << 20), this.size - this.pos);
      const b = Buffer.alloc(len);
      const { bytesRead } = await this.fh.read(b, 0, len, this.pos);
      if (bytesRead < n) this.fail(`short read at offset ${this.pos}`);
      this.buf = b;
      this.bufStart = this.pos;
    }
    const out = this.buf.subarray(this.pos - this.bufStart, end - this.bufStart);
    this.pos = end;
    return out;
  }
  async u32(): Promise<number> {
    return (await this.need(4)).readUInt32LE(0);
  }
  async u64(): Promise<number> {
    const v = (await this.need(8)).readBigUInt64LE(0);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) this.fail(`64-bit value ${v} at offset ${this.pos - 8} is absurd`);
    return Number(v);
  }
  async str(): Promise<string> {
    return (await this.strBytes()).toString("utf8");
  }
  /** A string's bytes, one char per byte (latin1): exact for comparisons and byte lengths. */
  async rawStr(): Promise<string> {
    return (await this.strBytes()).toString("latin1");
  }
  private async strBytes(): Promise<Buffer> {
    const n = await this.u64();
    if (n > MAX_STRING) this.fail(`string of ${n} bytes at offset ${this.pos - 8}`);
    return this.need(n);
  }
}

/** Arrays kept whole (per-layer hyper-parameters); longer ones are skipped unless collected. */
const KEEP_ARRAY = 1024;

async function readValue(
  r: Reader,
  type: number,
  fail: (why: string) => never,
  depth = 0,
  collect?: unknown[],
): Promise<unknown> {
  switch (type) {
    case 0:
      return (await r.need(1)).readUInt8(0);
    case 1:
      return (await r.need(1)).readInt8(0);
    case 2:
      return (await r.need(2)).readUInt16LE(0);
    case 3:
      return (await r.need(2)).readInt16LE(0);
    case 4:
      return r.u32();
    case 5:
      return (await r.need(4)).readInt32LE(0);
    case 6:
      return (await r.need(4)).readFloatLE(0);
    case 7:
      return (await r.need(1)).readUInt8(0) !== 0;
    case 8:
      return r.str();
    case 9: {
      if (depth > 0) fail("nested arrays are not supported");
      const itemType = await r.u32();
      const n = await r.u64();
      if (n > MAX_ARRAY) fail(`array of ${n} items`);
      // Large arrays (vocabularies) are skipped item by item without being kept, unless collected.
      const keep = n <= KEEP_ARRAY;
      const out: unknown[] = [];
      for (let i = 0; i < n; i++) {
        // strings of collected arrays are kept byte-exact (latin1), as llama.cpp compares them
        const v = collect && itemType === 8 ? await r.rawStr() : await readValue(r, itemType, fail, depth + 1);
        if (collect) collect.push(v);
        else if (keep) out.push(v);
      }
      return keep && !collect ? out : { length: n, itemType };
    }
    case 10:
      return r.u64();
    case 11: {
      const v = (await r.need(8)).readBigInt64LE(0);
      return Number(v);
    }
    case 12:
      return (await r.need(8)).readDoubleLE(0);
    default:
      return fail(`unknown metadata value type ${type} at offset ${r.pos - 4}`);
  }
}

interface VocabArrays {
  /** tokenizer.ggml.tokens, one latin1 char per byte */
  tokens?: unknown[];
  /** tokenizer.ggml.token_type */
  types?: unknown[];
}

// llama.cpp's limits (src/llama-hparams.h)
const LLAMA_MAX_LAYERS = 512;
const LLAMA_MAX_EXPERTS = 1024;
const ROPE_SCALING_TYPES = ["none", "linear", "yarn", "longrope"];

/**
 * Hyper-parameters that llama.cpp checks with GGML_ASSERT (which aborts the whole process) instead of an error:
 * llama_model::load_hparams (layer and expert counts, rope scaling type) and ggml's norm ops (epsilon >= 0,
 * asserted only at the first decode).
 */
function checkHyperParameters(metadata: Map<string, unknown>, fail: (why: string) => never): void {
  const arch = metadata.get("general.architecture");
  if (typeof arch !== "string") return; // llama.cpp refuses the file itself
  const num = (key: string): number | undefined => {
    const v = metadata.get(`${arch}.${key}`);
    return typeof v === "number" ? v : undefined;
  };
  /** a scalar, or the largest item of a per-layer array */
  const maxOf = (key: string): number | undefined => {
    const v = metadata.get(`${arch}.${key}`);
    if (typeof v === "number") return v;
    if (Array.isArray(v) && v.every((x) => typeof x === "number")) return v.length ? Math.max(...(v as number[])) : 0;
    return undefined;
  };
  const layers = num("block_count");
  if (layers !== undefined && !(Number.isInteger(layers) && layers >= 1 && layers <= LLAMA_MAX_LAYERS)) {
    fail(`${arch}.block_count is ${layers}; llama.cpp supports 1..${LLAMA_MAX_LAYERS} layers`);
  }
  for (const key of ["nextn_predict_layers", "posnet.block_count", "convnext.block_count"]) {
    const n = num(key);
    if (n !== undefined && layers !== undefined && n > layers)
      fail(`${arch}.${key} is ${n}, more than block_count ${layers}`);
  }
  const experts = num("expert_count") ?? 0;
  const used = maxOf("expert_used_count") ?? 0;
  const groups = num("expert_group_count") ?? 0;
  const groupUsed = num("expert_group_used_count") ?? 0;
  if (experts > LLAMA_MAX_EXPERTS)
    fail(`${arch}.expert_count is ${experts}; llama.cpp supports at most ${LLAMA_MAX_EXPERTS}`);
  if (used > experts) fail(`${arch}.expert_used_count is ${used}, more than expert_count ${experts}`);
  if (experts > 0) {
    if (used <= 0) fail(`${arch}.expert_count is ${experts} but expert_used_count is ${used}`);
    if (groups >= experts) fail(`${arch}.expert_group_count is ${groups}, not less than expert_count ${experts}`);
    if (groups > 1 && (experts % groups !== 0 || groupUsed <= 0 || groupUsed >= groups)) {
      fail(`${arch}: expert groups are inconsistent (${experts} experts, ${groups} groups, ${groupUsed} used)`);
    }
  } else if (groups !== 0) fail(`${arch}.expert_group_count is ${groups} without experts`);
  const scaling = metadata.get(`${arch}.rope.scaling.type`);
  if (typeof scaling === "string" && !ROPE_SCALING_TYPES.includes(scaling)) {
    fail(`${arch}.rope.scaling.type is ${JSON.stringify(scaling)} (expected one of ${ROPE_SCALING_TYPES.join(", ")})`);
  }
  for (const [key, v] of metadata) {
    if (!key.startsWith(`${arch}.`) || !/epsilon$/.test(key)) continue;
    const items = Array.isArray(v) ? v : [v];
    for (const x of items) {
      if (typeof x === "number" && !(Number.isFinite(x) && x >= 0))
        fail(`${key} is ${x}; a normalization epsilon must be a finite number >= 0`);
    }
  }
}

/**
 * The vocabulary: llama.cpp aborts on duplicate token texts (GGML_ASSERT in llama_vocab::load), on a byte
 * token of a WordPiece vocabulary, and throws an uncaught C++ exception from the tokenizer when an SPM
 * vocabulary lacks a byte token (<0xXX>) needed for byte fallback, or a byte token's text is too short.
 */
function checkVocabulary(metadata: Map<string, unknown>, vocab: VocabArrays, fail: (why: string) => never): void {
  const tokens = vocab.tokens;
  if (!tokens) return;
  if (!tokens.every((t): t is string => typeof t === "string")) return; // wrong item type: llama.cpp refuses it
  const show = (t: string) => JSON.stringify(Buffer.from(t, "latin1").toString("utf8").slice(0, 40));
  // llama.cpp reads each token as a C string (up to its first NUL byte) and names an empty one "[EMPTY_<id>]"
  const texts = tokens.map((t, i) => {
    const nul = t.indexOf("\0");
    const word = nul < 0 ? t : t.slice(0, nul);
    return word.length === 0 ? `[EMPTY_${i}]` : word;
  });
  const ids = new Map<string, number>();
  texts.forEach((t, i) => {
    const first = ids.get(t);
    if (first !== undefined)
      fail(
        `the vocabulary has token ${show(t)} twice (ids ${first} and ` +
          `${i}${t !== tokens[i] ? ", as llama.cpp reads them" : ""})`,
      );
    ids.set(t, i);
  });
  const model = metadata.get("tokenizer.ggml.model");
  if (model === "llama") {
    for (let b = 0; b < 256; b++) {
      const hex = `<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`;
      if (!ids.has(hex) && !(b < 0x80 && ids.has(String.fromCharCode(b)))) {
        fail(`the SentencePiece vocabulary has no byte token ${hex}: tokenizing text that needs it would fail`);
      }
    }
  }
  const types = vocab.types;
  if (types && types.length === tokens.length) {
    types.forEach((ty, i) => {
      if (ty !== 6) return; // LLAMA_TOKEN_TYPE_BYTE
      if (model === "bert")
        fail(`token ${i} of the WordPiece vocabulary is typed as a byte token, which llama.cpp cannot print`);
      if (texts[i]!.length < 3) fail(`byte token ${i} has text ${show(texts[i]!)} (expected <0xXX>)`);
    });
  }
}

/** Reads and validates a GGUF file's header and tensor table. Throws GgufError or a file-system Error. */
export async function readGgufHeader(path: string): Promise<GgufHeader> {
  const st = await stat(path).catch((e: NodeJS.ErrnoException) => {
    throw new Error(
      e.code === "ENOENT" ? `model file not found: ${path}` : `cannot access model file ${path}: ${e.message}`,
    );
  });
  if (st.isDirectory()) throw new Error(`model path is a directory, not a GGUF file: ${path}`);
  if (!st.isFile()) throw new Error(`model path is not a regular file: ${path}`);
  const fh = await open(path, "r").catch((e: NodeJS.ErrnoException) => {
    throw new Error(`cannot read model file ${path}: ${e.code === "EACCES" ? "permission denied" : e.message}`);
  });
  const fail = (why: string): never => {
    throw new GgufError(path, why);
  };
  try {
    if (st.size === 0) fail("the file is empty");
    const r = new Reader(fh, st.size, fail);
    if (st.size < 24) fail(`the file is only ${st.size} bytes`);
    const magic = (await r.need(4)).toString("latin1");
    if (magic !== "GGUF") fail(`wrong magic ${JSON.stringify(magic)} (expected "GGUF")`);
    const version = await r.u32();
    if (version < 2 || version > 3) fail(`unsupported GGUF version ${version}`);
    const nTensors = await r.u64();
    const nKv = await r.u64();
    if (nTensors > MAX_TENSORS) fail(`absurd tensor count ${nTensors}`);
    if (nKv > MAX_KV) fail(`absurd metadata count ${nKv}`);
    const metadata = new Map<string, unknown>();
    const vocab: VocabArrays = {};
    for (let i = 0; i < nKv; i++) {
      const key = await r.str();
      const type = await r.u32();
      const collect =
        key === "tokenizer.ggml.tokens"
          ? (vocab.tokens = [])
          : key === "tokenizer.ggml.token_type"
            ? (vocab.types = [])
            : undefined;
      metadata.set(key, await readValue(r, type, fail, 0, collect));
    }
    checkHyperParameters(metadata, fail);
    checkVocabulary(metadata, vocab, fail);
    const tensors: GgufTensorInfo[] = [];
    for (let i = 0; i < nTensors; i++) {
      const name = await r.str();
      const nDims = await r.u32();
      if (nDims < 1 || nDims > MAX_DIMS) fail(`tensor ${name} has ${nDims} dimensions`);
      const dims: number[] = [];
      let elements = 1;
      for (let d = 0; d < nDims; d++) {
        const n = await r.u64();
        if (n < 1 || n > 2 ** 40) fail(`tensor ${name} has absurd dimension ${n}`);
        dims.push(n);
        elements *= n;
        if (elements > 2 ** 50) fail(`tensor ${name} is absurdly large`);
      }
      const type = await r.u32();
      const offset = await r.u64();
      if (NON_WEIGHT_TYPES.has(type))
        fail(`tensor ${name} has type ${GGML_TYPE_NAMES[type]}, which is not a weight type ggml can compute with`);
      const ts = TYPE_SIZES[type];
      if (ts && dims[0] % ts[0] !== 0)
        fail(`tensor ${name}: row of ${dims[0]} is not a multiple of its block size ${ts[0]}`);
      tensors.push({ name, dims, type, offset, bytes: ts ? (elements / ts[0]) * ts[1] : undefined });
    }
    const alignment = Number(metadata.get("general.alignment") ?? 32);
    if (!Number.isInteger(alignment) || alignment < 1 || alignment > 1 << 16 || (alignment & (alignment - 1)) !== 0)
      fail(`bad alignment ${alignment}`);
    const dataOffset = Math.ceil(r.pos / alignment) * alignment;
    const names = new Set<string>();
    for (const t of tensors) {
      if (names.has(t.name)) fail(`duplicate tensor ${t.name}`);
      names.add(t.name);
      if (t.offset % alignment !== 0) fail(`tensor ${t.name} is not aligned`);
      const end = dataOffset + t.offset + (t.bytes ?? 0);
      if (end > st.size)
        fail(
          `tensor ${t.name} ends at byte ${end}, past the end of the file (${st.size} bytes): the file is truncated`,
        );
    }
    return { version, metadata, tensors, dataOffset, fileSize: st.size };
  } finally {
    await fh.close();
  }
}
