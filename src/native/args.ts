// Argument snapshots for the native calls. The addon reads its arguments with property gets, which run any
// getter or Proxy trap a caller planted; a getter that disposes the context or model while the native code is
// between its "is it usable?" check and its use of the llama.cpp object would make the addon touch freed memory.
// Snapshotting the arguments into plain data in JavaScript first runs all such user code before the native call,
// which then sees only plain arrays, numbers and objects (and checks usability after the user code ran).

/** The field names the addon reads from batches, specs and sampling objects. */
const KNOWN_FIELDS = [
  "tokens",
  "pos",
  "seq",
  "logits",
  "k",
  "sampling",
  "uniforms",
  "pending",
  "draft",
  "draftSeq",
  "confidence",
  "qBank",
  "qRow",
  "temperature",
  "topK",
  "topP",
  "role",
  "content",
];
const MAX_DEPTH = 4;
/** Longer arrays are refused: copying (or the addon's own buffer for) a sparse array of length 2^32 - 1
 * would exhaust memory. No native argument is legitimately this long (a context holds at most 4M tokens). */
export const MAX_ARRAY_LENGTH = 1 << 25;

/**
 * A plain-data copy of `value`: arrays (and array-likes that are arrays or typed arrays) become arrays
 * (Int32Arrays stay Int32Arrays), objects become plain objects holding their own enumerable fields plus the
 * fields the addon reads; primitives, functions and native wrappers are returned as they are.
 */
export function snapshot<T>(value: T, depth = 0): T {
  if (value === null || (typeof value !== "object" && typeof value !== "function")) return value;
  if (typeof value === "function" || depth > MAX_DEPTH) return value;
  if (value instanceof Int32Array) return Int32Array.from(value as Int32Array) as T;
  if (ArrayBuffer.isView(value)) return Array.from(value as unknown as ArrayLike<number>) as T;
  if (Array.isArray(value)) {
    const n = (value as unknown[]).length;
    checkLength(n);
    return Array.from(value as unknown[], (x) => snapshot(x, depth + 1)) as T;
  }
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null && !looksLikeData(value as object)) return value;
  const out: Record<string, unknown> = {};
  for (const key of new Set([...Object.keys(value as object), ...KNOWN_FIELDS])) {
    const v = (value as Record<string, unknown>)[key];
    if (v !== undefined) out[key] = snapshot(v, depth + 1);
  }
  return out as T;
}

// The hot path (one verify or draft call per decode step) uses the copiers below: they read exactly the fields the
// addon reads, with no key sets and no recursion. Anything that is not the
// expected shape is passed on as it is for the addon to refuse: it checks types before it reads inside a value.

/** A copy of a list of numbers (the addon reads nothing inside the items). */
export function numberList<T>(value: T): T {
  if (value instanceof Int32Array) return value.slice() as T;
  if (ArrayBuffer.isView(value)) return Array.from(value as unknown as ArrayLike<number>) as T;
  if (!Array.isArray(value)) return snapshot(value);
  checkLength(value.length);
  return value.slice() as T;
}

function sampling(value: unknown): unknown {
  if (value === null || typeof value !== "object") return value;
  const s = value as Record<string, unknown>;
  return { temperature: s.temperature, topK: s.topK, topP: s.topP };
}

function specList<T>(specs: T, copy: (spec: Record<string, unknown>) => object): T {
  if (!Array.isArray(specs)) return snapshot(specs);
  checkLength(specs.length);
  const out = new Array<unknown>(specs.length);
  for (let i = 0; i < specs.length; i++) {
    const s: unknown = specs[i];
    out[i] = s !== null && typeof s === "object" ? copy(s as Record<string, unknown>) : s;
  }
  return out as T;
}

/** A copy of verify specs: the fields Context.verify reads. */
export function verifySpecs<T>(specs: T): T {
  return specList(specs, (s) => ({
    seq: s.seq,
    pos: s.pos,
    pending: s.pending,
    draft: numberList(s.draft),
    draftSeq: s.draftSeq,
    sampling: sampling(s.sampling),
    uniforms: numberList(s.uniforms),
    qBank: s.qBank,
    qRow: s.qRow,
    onehot: s.onehot,
  }));
}

/** A copy of draft specs: the fields Context.draft reads. */
export function draftSpecs<T>(specs: T): T {
  return specList(specs, (s) => ({
    seq: s.seq,
    pos: s.pos,
    tokens: numberList(s.tokens),
    k: s.k,
    sampling: sampling(s.sampling),
    uniforms: numberList(s.uniforms),
    confidence: s.confidence,
    qBank: s.qBank,
  }));
}

function checkLength(n: number): void {
  if (n > MAX_ARRAY_LENGTH)
    throw new RangeError(`an array of ${n} items is too long for a native argument (at most ${MAX_ARRAY_LENGTH})`);
}

/** A class instance that carries data fields (a spec made by a class): copied like a plain object. */
function looksLikeData(value: object): boolean {
  for (const key of KNOWN_FIELDS) {
    if (key in value && typeof (value as Record<string, unknown>)[key] !== "function") return true;
  }
  return false;
}
