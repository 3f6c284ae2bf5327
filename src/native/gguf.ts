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
  0: [1, 4], 1: [1, 2], 2: [32, 18], 3: [32, 20], 6: [32, 22], 7: [32, 24], 8: [32, 34], 9: [32, 36],
  10: [256, 84], 11: [256, 110], 12: [256, 144], 13: [256, 176], 14: [256, 210], 15: [256, 292],
  16: [256, 66], 17: [256, 74], 18: [256, 98], 19: [256, 50], 20: [32, 18], 21: [256, 110], 22: [256, 82],
  23: [256, 136], 24: [1, 1], 25: [1, 2], 26: [1, 4], 27: [1, 8], 28: [1, 8], 29: [256, 56], 30: [1, 2],
  34: [256, 54], 35: [256, 66], 39: [32, 17],
};

export const GGML_TYPE_NAMES: Record<number, string> = {
  0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 6: "Q5_0", 7: "Q5_1", 8: "Q8_0", 9: "Q8_1", 10: "Q2_K", 11: "Q3_K",
  12: "Q4_K", 13: "Q5_K", 14: "Q6_K", 15: "Q8_K", 16: "IQ2_XXS", 17: "IQ2_XS", 18: "IQ3_XXS", 19: "IQ1_S",
  20: "IQ4_NL", 21: "IQ3_S", 22: "IQ2_S", 23: "IQ4_XS", 24: "I8", 25: "I16", 26: "I32", 27: "I64", 28: "F64",
  29: "IQ1_M", 30: "BF16", 34: "TQ1_0", 35: "TQ2_0", 39: "MXFP4",
};

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
    if (n < 0 || this.pos + n > this.size) this.fail(`truncated: needs ${n} bytes at offset ${this.pos}, file has ${this.size}`);
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
  async u32(): Promise<number> { return (await this.need(4)).readUInt32LE(0); }
  async u64(): Promise<number> {
    const v = (await this.need(8)).readBigUInt64LE(0);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) this.fail(`64-bit value ${v} at offset ${this.pos - 8} is absurd`);
    return Number(v);
  }
  async str(): Promise<string> {
    const n = await this.u64();
    if (n > MAX_STRING) this.fail(`string of ${n} bytes at offset ${this.pos - 8}`);
    return (await this.need(n)).toString("utf8");
  }
}

async function readValue(r: Reader, type: number, fail: (why: string) => never, depth = 0): Promise<unknown> {
  switch (type) {
    case 0: return (await r.need(1)).readUInt8(0);
    case 1: return (await r.need(1)).readInt8(0);
    case 2: return (await r.need(2)).readUInt16LE(0);
    case 3: return (await r.need(2)).readInt16LE(0);
    case 4: return r.u32();
    case 5: return (await r.need(4)).readInt32LE(0);
    case 6: return (await r.need(4)).readFloatLE(0);
    case 7: return (await r.need(1)).readUInt8(0) !== 0;
    case 8: return r.str();
    case 9: {
      if (depth > 0) fail("nested arrays are not supported");
      const itemType = await r.u32();
      const n = await r.u64();
      if (n > MAX_ARRAY) fail(`array of ${n} items`);
      // Large arrays (vocabularies) are skipped item by item without being kept.
      const keep = n <= 64;
      const out: unknown[] = [];
      for (let i = 0; i < n; i++) {
        const v = await readValue(r, itemType, fail, depth + 1);
        if (keep) out.push(v);
      }
      return keep ? out : { length: n };
    }
    case 10: return r.u64();
    case 11: {
      const v = (await r.need(8)).readBigInt64LE(0);
      return Number(v);
    }
    case 12: return (await r.need(8)).readDoubleLE(0);
    default: return fail(`unknown metadata value type ${type} at offset ${r.pos - 4}`);
  }
}

/** Reads and validates a GGUF file's header and tensor table. Throws GgufError or a file-system Error. */
export async function readGgufHeader(path: string): Promise<GgufHeader> {
  const st = await stat(path).catch((e: NodeJS.ErrnoException) => {
    throw new Error(e.code === "ENOENT" ? `model file not found: ${path}` : `cannot access model file ${path}: ${e.message}`);
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
    for (let i = 0; i < nKv; i++) {
      const key = await r.str();
      const type = await r.u32();
      metadata.set(key, await readValue(r, type, fail));
    }
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
      const ts = TYPE_SIZES[type];
      if (ts && dims[0] % ts[0] !== 0) fail(`tensor ${name}: row of ${dims[0]} is not a multiple of its block size ${ts[0]}`);
      tensors.push({ name, dims, type, offset, bytes: ts ? (elements / ts[0]) * ts[1] : undefined });
    }
    const alignment = Number(metadata.get("general.alignment") ?? 32);
    if (!Number.isInteger(alignment) || alignment < 1 || alignment > 1 << 16 || (alignment & (alignment - 1)) !== 0) fail(`bad alignment ${alignment}`);
    const dataOffset = Math.ceil(r.pos / alignment) * alignment;
    const names = new Set<string>();
    for (const t of tensors) {
      if (names.has(t.name)) fail(`duplicate tensor ${t.name}`);
      names.add(t.name);
      if (t.offset % alignment !== 0) fail(`tensor ${t.name} is not aligned`);
      const end = dataOffset + t.offset + (t.bytes ?? 0);
      if (end > st.size) fail(`tensor ${t.name} ends at byte ${end}, past the end of the file (${st.size} bytes): the file is truncated`);
    }
    return { version, metadata, tensors, dataOffset, fileSize: st.size };
  } finally {
    await fh.close();
  }
}
