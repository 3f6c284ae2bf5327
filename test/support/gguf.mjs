// GGUF tooling for minedraft's reliability tests and fuzzer (test/reliability, test/support/gguf-fuzz.mjs):
//   - writeGguf():   writes a GGUF file from a list of key/values and tensors (to craft vocab files and bad models);
//   - tinyVocab():   the key/values of a small SentencePiece-style ("llama") vocabulary, so a synthetic model is
//                    ~0.5 MB instead of 17 MB and a fuzz run spends its time in the loader, not in file copies;
//   - parseLayout(): the byte offsets of every field of a GGUF header (lengths, counts, types, dims, offsets);
//   - mutate():      one seeded mutation of a GGUF file (byte flips in the header, truncations, length/count/dim
//                    fields set to huge values, bad types, bad offsets, absurd hyper-parameters), described in words.
// Plain JavaScript (no build step), shared by the vitest tests and the scripts.

export const GGUF_TYPE = {
  u8: 0,
  i8: 1,
  u16: 2,
  i16: 3,
  u32: 4,
  i32: 5,
  f32: 6,
  bool: 7,
  string: 8,
  array: 9,
  u64: 10,
  i64: 11,
  f64: 12,
};
const SCALAR_SIZE = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };

// ---------------------------------------------------------------------------------------------------------------
// seeded PRNG (mulberry32): the same seed gives the same mutations on every machine

export function rng(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (n) => Math.floor(next() * n), // [0, n)
    pick: (arr) => arr[Math.floor(next() * arr.length)],
  };
}

// ---------------------------------------------------------------------------------------------------------------
// writer

class Writer {
  constructor() {
    this.chunks = [];
    this.length = 0;
  }
  push(b) {
    this.chunks.push(b);
    this.length += b.length;
  }
  u8(v) {
    const b = Buffer.alloc(1);
    b.writeUInt8(v);
    this.push(b);
  }
  u32(v) {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v >>> 0);
    this.push(b);
  }
  i32(v) {
    const b = Buffer.alloc(4);
    b.writeInt32LE(v);
    this.push(b);
  }
  u64(v) {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(v));
    this.push(b);
  }
  f32(v) {
    const b = Buffer.alloc(4);
    b.writeFloatLE(v);
    this.push(b);
  }
  str(s) {
    const b = Buffer.from(s, "utf8");
    this.u64(b.length);
    this.push(b);
  }
  value(type, v, itemType) {
    switch (type) {
      case 0:
      case 7:
        this.u8(type === 7 ? (v ? 1 : 0) : v);
        break;
      case 1: {
        const b = Buffer.alloc(1);
        b.writeInt8(v);
        this.push(b);
        break;
      }
      case 2: {
        const b = Buffer.alloc(2);
        b.writeUInt16LE(v);
        this.push(b);
        break;
      }
      case 3: {
        const b = Buffer.alloc(2);
        b.writeInt16LE(v);
        this.push(b);
        break;
      }
      case 4:
        this.u32(v);
        break;
      case 5:
        this.i32(v);
        break;
      case 6:
        this.f32(v);
        break;
      case 8:
        this.str(v);
        break;
      case 9:
        this.u32(itemType);
        this.u64(v.length);
        for (const x of v) this.value(itemType, x);
        break;
      case 10:
        this.u64(v);
        break;
      case 11: {
        const b = Buffer.alloc(8);
        b.writeBigInt64LE(BigInt(v));
        this.push(b);
        break;
      }
      case 12: {
        const b = Buffer.alloc(8);
        b.writeDoubleLE(v);
        this.push(b);
        break;
      }
      default:
        throw new Error(`writeGguf: unknown value type ${type}`);
    }
  }
  pad(alignment) {
    const n = (alignment - (this.length % alignment)) % alignment;
    if (n) this.push(Buffer.alloc(n));
  }
  buffer() {
    return Buffer.concat(this.chunks, this.length);
  }
}

/**
 * A GGUF (version 3) file as a Buffer.
 * kvs: [key, type, value, itemType?][] (type from GGUF_TYPE; arrays give their item type);
 * tensors: { name, dims, type (ggml type id), data: Buffer }[] (data written aligned, in order).
 * Overrides for crafting broken files: nTensors / nKv replace the counts written in the header.
 * @param {{ kvs?: unknown[][], tensors?: { name: string, dims: number[], type: number, data: Buffer }[],
 *   alignment?: number,
 *   version?: number, nTensors?: number, nKv?: number }} [opts]
 */
export function writeGguf({ kvs = [], tensors = [], alignment = 32, version = 3, nTensors, nKv } = {}) {
  const w = new Writer();
  w.push(Buffer.from("GGUF", "latin1"));
  w.u32(version);
  w.u64(nTensors ?? tensors.length);
  w.u64(nKv ?? kvs.length);
  for (const [key, type, value, itemType] of kvs) {
    w.str(key);
    w.u32(type);
    w.value(type, value, itemType);
  }
  let offset = 0;
  const offsets = [];
  for (const t of tensors) {
    offsets.push(offset);
    offset += Math.ceil(t.data.length / alignment) * alignment;
  }
  tensors.forEach((t, i) => {
    w.str(t.name);
    w.u32(t.dims.length);
    for (const d of t.dims) w.u64(d);
    w.u32(t.type);
    w.u64(offsets[i]);
  });
  w.pad(alignment);
  for (const t of tensors) {
    w.push(t.data);
    w.pad(alignment);
  }
  return w.buffer();
}

/**
 * The tokenizer key/values of a small SPM ("llama") vocabulary: <unk> <s> </s>, the 256 byte tokens, and
 * `extra` word pieces (letters, digits, common words). Ids: unk 0, bos 1, eos 2.
 * Options make incompatible variants: { extra, eos, bos, renameToken: [id, text], model, addBos, omit: [keys] }.
 */
export function tinyVocab(opts = {}) {
  const tokens = ["<unk>", "<s>", "</s>"];
  const types = [2, 3, 3];
  for (let b = 0; b < 256; b++) {
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`);
    types.push(6);
  }
  const pieces = ["\u2581"];
  for (const c of "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,!?'") pieces.push(c, `\u2581${c}`);
  for (const w of [
    "the",
    "and",
    "of",
    "to",
    "in",
    "is",
    "was",
    "it",
    "that",
    "on",
    "for",
    "as",
    "with",
    "time",
    "upon",
    "once",
    "there",
    "he",
    "she",
    "they",
  ]) {
    pieces.push(`\u2581${w}`);
  }
  const extra = opts.extra ?? pieces.length;
  for (let i = 0; i < extra; i++) {
    tokens.push(i < pieces.length ? pieces[i] : `\u2581w${i}`);
    types.push(1);
  }
  if (opts.renameToken) tokens[opts.renameToken[0]] = opts.renameToken[1];
  // SPM merges by score: longer pieces score higher
  const scores = tokens.map((t, i) => (types[i] === 1 ? -1000 + 10 * [...t].length - i / 1e4 : 0));
  const omit = new Set(opts.omit ?? []);
  return [
    ["tokenizer.ggml.model", GGUF_TYPE.string, opts.model ?? "llama"],
    ["tokenizer.ggml.tokens", GGUF_TYPE.array, tokens, GGUF_TYPE.string],
    ["tokenizer.ggml.scores", GGUF_TYPE.array, scores, GGUF_TYPE.f32],
    ["tokenizer.ggml.token_type", GGUF_TYPE.array, types, GGUF_TYPE.i32],
    ["tokenizer.ggml.unknown_token_id", GGUF_TYPE.u32, 0],
    ["tokenizer.ggml.bos_token_id", GGUF_TYPE.u32, opts.bos ?? 1],
    ["tokenizer.ggml.eos_token_id", GGUF_TYPE.u32, opts.eos ?? 2],
    ["tokenizer.ggml.add_bos_token", GGUF_TYPE.bool, opts.addBos ?? true],
    ["tokenizer.ggml.add_eos_token", GGUF_TYPE.bool, false],
  ].filter(([key]) => !omit.has(key));
}

/** A vocab-only GGUF (tokenizer keys, no tensors) from tinyVocab(opts). */
export function tinyVocabFile(opts = {}) {
  return writeGguf({ kvs: [["general.architecture", GGUF_TYPE.string, "llama"], ...tinyVocab(opts)] });
}

// ---------------------------------------------------------------------------------------------------------------
// layout

/**
 * @typedef {{ key: string, type: number, keyLenOff: number, typeOff: number, valueOff: number, itemType?: number,
 *   countOff?: number, strLenOffs: number[], value?: unknown }} GgufKvLayout
 * @typedef {{ name: string, dims: number[], type: number, offset: number, nameLenOff: number, nDimsOff: number,
 *   dimOffs: number[], typeOff: number, offsetOff: number }} GgufTensorLayout
 * @typedef {{ version: number, nTensors: number, nKv: number, nTensorsOff: number, nKvOff: number, kvs: GgufKvLayout[],
 *   tensors: GgufTensorLayout[], headerEnd: number, dataOffset: number, alignment: number }} GgufLayout
 */

/**
 * Offsets of a well-formed GGUF's header fields:
 * { version, nTensorsOff, nKvOff,
 *   kvs: [{ key, type, keyLenOff, typeOff, valueOff, itemType?, countOff?, strLenOffs[], value? }],
 *   tensors: [{ name, nameLenOff, nDimsOff, dimOffs[], typeOff, offsetOff }], headerEnd, dataOffset, alignment }.
 * Scalar values are decoded (value); string arrays record up to 64 item length offsets.
 * @param {Buffer} buf
 * @returns {GgufLayout}
 */
export function parseLayout(buf) {
  let pos = 0;
  const need = (n) => {
    if (pos + n > buf.length) throw new Error(`parseLayout: truncated at ${pos}`);
  };
  const u32 = () => {
    need(4);
    const v = buf.readUInt32LE(pos);
    pos += 4;
    return v;
  };
  const u64 = () => {
    need(8);
    const v = Number(buf.readBigUInt64LE(pos));
    pos += 8;
    return v;
  };
  const str = () => {
    const n = u64();
    need(n);
    const s = buf.toString("utf8", pos, pos + n);
    pos += n;
    return s;
  };
  if (buf.toString("latin1", 0, 4) !== "GGUF") throw new Error("parseLayout: not a GGUF file");
  pos = 4;
  const version = u32();
  const nTensorsOff = pos;
  const nTensors = u64();
  const nKvOff = pos;
  const nKv = u64();
  const kvs = [];
  let alignment = 32;
  for (let i = 0; i < nKv; i++) {
    const keyLenOff = pos;
    const key = str();
    const typeOff = pos;
    const type = u32();
    /** @type {GgufKvLayout} */
    const kv = { key, type, keyLenOff, typeOff, valueOff: pos, strLenOffs: [] };
    if (type === 9) {
      kv.itemType = u32();
      kv.countOff = pos;
      const n = u64();
      for (let j = 0; j < n; j++) {
        if (kv.itemType === 8) {
          if (kv.strLenOffs.length < 64) kv.strLenOffs.push(pos);
          str();
        } else {
          const size = SCALAR_SIZE[kv.itemType];
          if (!size) throw new Error(`parseLayout: array of type ${kv.itemType}`);
          need(size * (n - j));
          pos += size * (n - j);
          break;
        }
      }
    } else if (type === 8) {
      kv.strLenOffs.push(pos);
      kv.value = str();
    } else {
      const size = SCALAR_SIZE[type];
      if (!size) throw new Error(`parseLayout: value type ${type}`);
      need(size);
      kv.value =
        type === 6
          ? buf.readFloatLE(pos)
          : type === 12
            ? buf.readDoubleLE(pos)
            : size === 8
              ? Number(buf.readBigInt64LE(pos))
              : size === 4
                ? buf.readUInt32LE(pos)
                : size === 2
                  ? buf.readUInt16LE(pos)
                  : buf.readUInt8(pos);
      pos += size;
    }
    if (key === "general.alignment") alignment = kv.value;
    kvs.push(kv);
  }
  /** @type {GgufTensorLayout[]} */
  const tensors = [];
  for (let i = 0; i < nTensors; i++) {
    const nameLenOff = pos;
    const name = str();
    const nDimsOff = pos;
    const nDims = u32();
    const dimOffs = [];
    const dims = [];
    for (let d = 0; d < nDims; d++) {
      dimOffs.push(pos);
      dims.push(u64());
    }
    const typeOff = pos;
    const type = u32();
    const offsetOff = pos;
    const offset = u64();
    tensors.push({ name, dims, type, offset, nameLenOff, nDimsOff, dimOffs, typeOff, offsetOff });
  }
  const headerEnd = pos;
  return {
    version,
    nTensors,
    nKv,
    nTensorsOff,
    nKvOff,
    kvs,
    tensors,
    headerEnd,
    dataOffset: Math.ceil(headerEnd / alignment) * alignment,
    alignment,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// mutations

const HUGE_U64 = [
  2n ** 64n - 1n,
  2n ** 63n - 1n,
  2n ** 63n,
  2n ** 62n,
  2n ** 53n,
  2n ** 40n,
  2n ** 32n + 1n,
  2n ** 32n,
  2n ** 32n - 1n,
  2n ** 31n,
  2n ** 31n - 1n,
  2n ** 30n,
  2n ** 24n,
  1000000n,
  65537n,
];
const SMALL_U64 = [0n, 1n, 2n, 3n, 5n, 7n, 31n, 33n];
// ggml type ids: valid weight types, activation-only and integer types, removed ids, out of range
const TYPE_VALUES = [
  0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 14, 15, 20, 24, 25, 26, 27, 28, 29, 30, 31, 34, 35, 36, 39, 40, 41, 1000,
  0xffffffff,
];
const U32_VALUES = [
  0, 1, 2, 3, 4, 5, 8, 9, 13, 31, 39, 40, 41, 100, 255, 256, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff,
];
// hyper-parameters whose zero / huge / negative values llama.cpp divides by or allocates from
const HPARAM_KEYS = [
  "llama.block_count",
  "llama.embedding_length",
  "llama.feed_forward_length",
  "llama.attention.head_count",
  "llama.attention.head_count_kv",
  "llama.context_length",
  "llama.rope.dimension_count",
  "llama.vocab_size",
  "llama.attention.key_length",
  "llama.attention.value_length",
  "llama.expert_count",
  "llama.expert_used_count",
  "llama.attention.layer_norm_rms_epsilon",
  "llama.rope.freq_base",
  "tokenizer.ggml.bos_token_id",
  "tokenizer.ggml.eos_token_id",
  "tokenizer.ggml.unknown_token_id",
  "general.alignment",
];

function setU64(b, off, v) {
  if (off + 8 <= b.length) b.writeBigUInt64LE(BigInt.asUintN(64, BigInt(v)), off);
}
function setU32(b, off, v) {
  if (off + 4 <= b.length) b.writeUInt32LE(v >>> 0, off);
}

/** Every mutation kind mutate() can pick, for reports. */
export const MUTATION_KINDS = [
  "flip",
  "truncate",
  "count",
  "strlen",
  "arraylen",
  "ndims",
  "dim",
  "ttype",
  "toffset",
  "kvtype",
  "itemtype",
  "hparam",
  "version",
  "splice",
];

/**
 * One seeded mutation of `orig` (a well-formed GGUF whose layout is `layout`).
 * Returns { bytes: Buffer, kind, what } where `what` says exactly what changed (enough to reproduce it by hand).
 */
export function mutate(orig, layout, seed, kind) {
  const r = rng(seed);
  kind = kind ?? r.pick(MUTATION_KINDS);
  const b = Buffer.from(orig);
  const hex = (v) => `0x${BigInt(v).toString(16)}`;
  const pickHuge = () => (r.next() < 0.75 ? r.pick(HUGE_U64) : r.pick(SMALL_U64));
  switch (kind) {
    case "flip": {
      // 1-8 random bytes of the header region (magic, counts, key/values, tensor table)
      const n = 1 + r.int(8);
      const at = [];
      for (let i = 0; i < n; i++) {
        const off = r.int(layout.headerEnd);
        const v = r.next() < 0.5 ? b[off] ^ (1 << r.int(8)) : r.int(256);
        b[off] = v;
        at.push(`${off}=${hex(v)}`);
      }
      return { bytes: b, kind, what: `header bytes set: ${at.join(", ")}` };
    }
    case "truncate": {
      // mostly inside the header, sometimes in the data
      const len =
        r.next() < 0.7
          ? r.int(layout.headerEnd)
          : layout.headerEnd + r.int(Math.max(1, orig.length - layout.headerEnd));
      return { bytes: b.subarray(0, len), kind, what: `truncated to ${len} of ${orig.length} bytes` };
    }
    case "count": {
      const field = r.next() < 0.5 ? "n_tensors" : "n_kv";
      const v = pickHuge();
      setU64(b, field === "n_tensors" ? layout.nTensorsOff : layout.nKvOff, v);
      return { bytes: b, kind, what: `${field} = ${v}` };
    }
    case "strlen": {
      // a key's length, a string value's length, a tensor name's length, or a vocab entry's length
      const choices = [];
      for (const kv of layout.kvs) {
        choices.push([kv.keyLenOff, `length of key ${kv.key}`]);
        for (const off of kv.strLenOffs.slice(0, 4)) choices.push([off, `a string length in ${kv.key}`]);
      }
      for (const t of layout.tensors) choices.push([t.nameLenOff, `length of tensor name ${t.name}`]);
      const [off, name] = r.pick(choices);
      const v = pickHuge();
      setU64(b, off, v);
      return { bytes: b, kind, what: `${name} (offset ${off}) = ${v}` };
    }
    case "arraylen": {
      const arrays = layout.kvs.filter((kv) => kv.type === 9);
      const kv = r.pick(arrays);
      const v = pickHuge();
      setU64(b, kv.countOff, v);
      return { bytes: b, kind, what: `array length of ${kv.key} = ${v}` };
    }
    case "ndims": {
      const t = r.pick(layout.tensors);
      const v = r.pick([0, 3, 4, 5, 8, 0xffff, 0xffffffff]);
      setU32(b, t.nDimsOff, v);
      return { bytes: b, kind, what: `n_dims of ${t.name} = ${v}` };
    }
    case "dim": {
      const t = r.pick(layout.tensors);
      const d = r.int(t.dimOffs.length);
      const v = r.next() < 0.2 ? 0n : r.next() < 0.3 ? BigInt(t.dims[d] * r.pick([2, 3, 4, 32])) : pickHuge();
      setU64(b, t.dimOffs[d], v);
      return { bytes: b, kind, what: `dim ${d} of ${t.name} (${t.dims.join("x")}) = ${v}` };
    }
    case "ttype": {
      const t = r.pick(layout.tensors);
      const v = r.pick(TYPE_VALUES);
      setU32(b, t.typeOff, v);
      return { bytes: b, kind, what: `ggml type of ${t.name} = ${v}` };
    }
    case "toffset": {
      const t = r.pick(layout.tensors);
      const v = r.next() < 0.4 ? BigInt(t.offset + 1 + r.int(31)) : r.next() < 0.5 ? BigInt(orig.length) : pickHuge();
      setU64(b, t.offsetOff, v);
      return { bytes: b, kind, what: `data offset of ${t.name} = ${v}` };
    }
    case "kvtype": {
      const kv = r.pick(layout.kvs);
      const v = r.pick(U32_VALUES);
      setU32(b, kv.typeOff, v);
      return { bytes: b, kind, what: `value type of ${kv.key} = ${v}` };
    }
    case "itemtype": {
      const kv = r.pick(layout.kvs.filter((x) => x.type === 9));
      const v = r.pick(U32_VALUES);
      setU32(b, kv.valueOff, v);
      return { bytes: b, kind, what: `item type of array ${kv.key} = ${v}` };
    }
    case "hparam": {
      const present = layout.kvs.filter((kv) => HPARAM_KEYS.includes(kv.key) && kv.type !== 9 && kv.type !== 8);
      const kv = r.pick(present);
      const size = SCALAR_SIZE[kv.type];
      let v;
      if (kv.type === 6) {
        v = r.pick([0, -1, NaN, Infinity, 1e30, 1e-30]);
        b.writeFloatLE(v, kv.valueOff);
      } else if (kv.type === 12) {
        v = r.pick([0, -1, NaN, Infinity]);
        b.writeDoubleLE(v, kv.valueOff);
      } else {
        const vals = [
          0,
          1,
          3,
          7,
          0xffff,
          0x7fffffff,
          0x80000000,
          0xffffffff,
          kv.value * 2,
          kv.value + 1,
          Math.max(0, kv.value - 1),
        ];
        v = r.pick(vals);
        if (size === 4) setU32(b, kv.valueOff, v);
        else if (size === 8) setU64(b, kv.valueOff, v);
        else if (size === 2) b.writeUInt16LE(v & 0xffff, kv.valueOff);
        else b.writeUInt8(v & 0xff, kv.valueOff);
      }
      return { bytes: b, kind, what: `${kv.key} = ${v}` };
    }
    case "version": {
      const v = r.pick([0, 1, 2, 4, 0xffffffff]);
      setU32(b, 4, v);
      return { bytes: b, kind, what: `version = ${v}` };
    }
    case "splice": {
      // copy a random header span over another one (shifts structure: mismatched lengths and types)
      const len = 1 + r.int(64);
      const src = r.int(Math.max(1, layout.headerEnd - len));
      const dst = r.int(Math.max(1, layout.headerEnd - len));
      orig.copy(b, dst, src, src + len);
      return { bytes: b, kind, what: `header bytes [${src}, ${src + len}) copied to ${dst}` };
    }
    default:
      throw new Error(`mutate: unknown kind ${kind}`);
  }
}
