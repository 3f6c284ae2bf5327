// A llama.cpp context on its own native worker thread. Every method enqueues a job on that thread
// and returns a Promise; jobs run in submission order.
import { checkOptions, integer, OptionRangeError, type Schema } from "../common/validate.js";
import type { LlamaModel } from "./model.js";
import { loadAddon } from "./addon.js";
import { draftSpecs, numberList, snapshot, verifySpecs } from "./args.js";
import { kvFitProblem } from "./device-fit.js";
import { isLoopback, parseRpcEndpoint } from "./rpc.js";
import type {
  NativeAddon,
  RawBatch,
  RawContext,
  RawContextInfo,
  RawContextOptions,
  RawDraftSpec,
  RawVerifySpec,
} from "./types.js";

/** See ContextOptions.spinMicros. */
export const DEFAULT_SPIN_MICROS = 250;

export interface ContextOptions {
  /** context length per sequence (tokens) */
  contextSize?: number;
  /** sequences (parallel requests) the context holds */
  sequences?: number;
  /** logical batch: the most tokens one decode call takes */
  batchSize?: number;
  threads?: number;
  /** one KV buffer shared by all sequences, still sized contextSize per sequence (default: one
   * stream per sequence, which keeps attention cost per sequence and batched outputs identical to
   * single-sequence ones; a batch over streams is one pass per run of consecutive sequence ids) */
  kvUnified?: boolean;
  flashAttention?: "auto" | "on" | "off";
  /** attach a persistent ggml threadpool whose threads sleep between graphs (default: on when
   * threads > 1; without it ggml creates threads for every graph, which measured 2x slower for
   * small draft graphs and makes two contexts on all cores disturb each other) */
  threadpool?: boolean;
  /** most threads setThreads() may ask for; the threadpool is made this large (default: threads).
   * Its extra threads sleep while a smaller count is in use. */
  threadsMax?: number;
  /** how long the threadpool's threads spin for the next graph before they sleep: ggml's polling
   * level, 0..100 (0, the default: sleep at once, never taking cores another context may need; 1:
   * about a millisecond). For a context alone on its cores: with 1, one request on a small model
   * decoded 1.3x faster here (its next graph no longer waits for the pool's threads to wake). */
  threadpoolPoll?: number;
  /** the worker spins up to this many microseconds for its next job when the previous one came
   * that soon after a result (plain decoding), instead of sleeping: waking a sleeping thread cost
   * 100-160 us in a third of the calls in a 2-vCPU VM. It yields the core on every turn, and sleeps at once after a
   * longer gap (a job that waited on the other model). 0 = always sleep. Default 250. */
  spinMicros?: number;
  /** threads that evaluate a job's sampled rows (0.3-1.3 ms each at 32k tokens) after its decode;
   * 0 (default): as many as the context decodes with. A model on a GPU decodes with one CPU thread,
   * so there the engine gives the cores no CPU-side model uses. */
  rowThreads?: number;
  /** greedy rows take their argmax where the logits are computed (llama.cpp's backend sampling), so a pass brings
   * back one token per row instead of the vocabulary's logits; default: on when the model's output layer is on an
   * RPC server that is not on a loopback address, where that copy crosses a network (most of a pass's traffic) */
  deviceArgmax?: boolean;
}

/**
 * ggml's thread arrays hold GGML_MAX_N_THREADS = 512; llama.cpp's context holds at most 2^22 tokens and 256 sequences
 */
const MAX_THREADS = 512;
const MAX_CONTEXT_TOKENS = 1 << 22;

const CONTEXT_OPTIONS: Schema = {
  contextSize: integer(16, MAX_CONTEXT_TOKENS),
  sequences: integer(1, 256),
  batchSize: integer(1, 1 << 16),
  threads: integer(1, MAX_THREADS),
  kvUnified: { kind: "boolean" },
  flashAttention: { kind: "enum", values: ["auto", "on", "off"] },
  threadpool: { kind: "boolean" },
  threadsMax: integer(1, MAX_THREADS),
  threadpoolPoll: integer(0, 100),
  spinMicros: integer(0, 100_000),
  rowThreads: integer(0, MAX_THREADS),
  deviceArgmax: { kind: "boolean" },
};

/**
 * Whether the model's logits come over a network from an RPC server: every layer offloaded (the output layer follows
 * the last one only then, in llama.cpp), the last device it names is an RPC one, and its server is not on a loopback
 * address. Each row's token is then one round trip of its own (llama.cpp fetches them row by row) against the row's
 * logits in one bulk copy: measured on loopback the round trips cost more (0.3-1.3 ms per step at 1-8 rows), on a
 * 1 Gbit/s link the logits do (docs/scaling.md).
 */
function logitsOverNetwork(addon: NativeAddon, model: LlamaModel): boolean {
  const last = model.device?.split(",").at(-1);
  if (!last || last === "cpu") return false;
  const all = model.gpuLayers === undefined || model.gpuLayers < 0 || model.gpuLayers > model.info.nLayer;
  const device = addon.devices().find((d) => d.name === last);
  if (!all || device?.backend !== "RPC") return false;
  const host = parseRpcEndpoint(device.description)?.host;
  return host !== undefined && !isLoopback(host);
}

/** Why the model's device cannot hold this KV cache (device-fit.ts), or undefined. */
function kvProblem(addon: NativeAddon, model: LlamaModel, cells: number, streams: number): string | undefined {
  if (model.device === "cpu") return undefined;
  const all = addon.devices();
  const gpus = all.filter((d) => d.type !== "cpu");
  // no device named: llama.cpp's default, every layer on the GPU (several: split, which this check does not model)
  const device =
    model.device === undefined ? (gpus.length === 1 ? gpus[0] : undefined) : all.find((d) => d.name === model.device);
  if (!device) return undefined;
  const { nLayer, nEmbd, nHead, nHeadKv, architecture, meta } = model.info;
  const head = (key: string) => Number(meta[`${architecture}.attention.${key}`]) || nEmbd / nHead;
  const gpuLayers = model.gpuLayers === undefined || model.gpuLayers < 0 ? nLayer : Math.min(model.gpuLayers, nLayer);
  return kvFitProblem(
    device,
    { layers: gpuLayers, nEmbdK: head("key_length") * nHeadKv, nEmbdV: head("value_length") * nHeadKv, cells, streams },
    (ne) => addon.deviceHoldsTensor(device.name, "f16", ne),
  );
}

export class LlamaContext {
  private constructor(
    readonly raw: RawContext,
    readonly model: LlamaModel,
  ) {}

  static async create(model: LlamaModel, options: ContextOptions = {}): Promise<LlamaContext> {
    checkOptions(options, CONTEXT_OPTIONS, "LlamaContext options");
    const sequences = options.sequences ?? 1;
    const perSeq = options.contextSize ?? Math.min(4096, model.info.nCtxTrain || 4096);
    const threads = options.threads ?? 1;
    const threadsMax = options.threadsMax ?? threads;
    if (threadsMax < threads)
      throw new OptionRangeError(
        "threadsMax",
        `threadsMax must be an integer in ${threads}..512 (at least threads), got ${threadsMax}`,
      );
    if (perSeq * sequences > MAX_CONTEXT_TOKENS) {
      throw new OptionRangeError(
        "contextSize",
        `contextSize must be an integer in 16..${Math.floor(MAX_CONTEXT_TOKENS / sequences)} with ${sequences} ` +
          `sequences (together at most ${MAX_CONTEXT_TOKENS} tokens), got ${perSeq}`,
      );
    }
    const unified = options.kvUnified ?? false;
    const raw: RawContextOptions = {
      // llama.cpp sizes the KV cache as a whole: perSeq cells for each sequence, in its own stream
      // or in the shared buffer (so every sequence can reach contextSize at the same time)
      nCtx: perSeq * sequences,
      nSeqMax: sequences,
      nBatch: options.batchSize ?? 512,
      threads,
      threadsMax,
      kvUnified: unified,
      flashAttention: options.flashAttention,
      threadpool: options.threadpool ?? threadsMax > 1,
      spinMicros: options.spinMicros ?? DEFAULT_SPIN_MICROS,
      threadpoolPoll: options.threadpoolPoll ?? 0,
      rowThreads: options.rowThreads ?? 0,
    };
    const addon = await loadAddon();
    raw.deviceArgmax = options.deviceArgmax ?? logitsOverNetwork(addon, model);
    const problem = kvProblem(addon, model, perSeq * sequences, unified ? 1 : sequences);
    if (problem) throw new OptionRangeError("contextSize", problem);
    return new LlamaContext(await addon.createContext(model.raw, raw), model);
  }

  info(): RawContextInfo {
    return this.raw.info();
  }

  /** Decode a multi-sequence batch; resolves to the logits of the rows that asked for output (rows x nVocab). */
  decode(batch: RawBatch): Promise<Float32Array> {
    return this.raw.decode(snapshot(batch));
  }

  prefill(seq: number, pos: number, tokens: readonly number[]): Promise<void> {
    return this.raw.prefill(seq, pos, numberList(tokens));
  }

  /** Several sequences' prefills in one job: their tokens packed into batches of up to nBatch. */
  prefillMany(specs: readonly { seq: number; pos: number; tokens: readonly number[] }[]): Promise<void> {
    return this.raw.prefill(specs.map((s) => ({ seq: s.seq, pos: s.pos, tokens: numberList(s.tokens) })));
  }

  draft(specs: readonly RawDraftSpec[], vocabLimit?: number) {
    return this.raw.draft(draftSpecs(specs), vocabLimit);
  }

  verify(specs: readonly RawVerifySpec[], draftContext?: LlamaContext) {
    return this.raw.verify(verifySpecs(specs), draftContext?.raw);
  }

  /** Remove positions [p0, p1) of a sequence (-1: open end; seq -1: all sequences). */
  removeRange(seq: number, p0 = -1, p1 = -1): Promise<boolean> {
    return this.raw.kvRemove(seq, p0, p1);
  }

  removeSeq(seq: number): Promise<boolean> {
    return this.raw.kvRemove(seq, -1, -1);
  }

  copySeq(src: number, dst: number, p0 = -1, p1 = -1): Promise<void> {
    // llama.cpp copies between the KV streams of two sequences only as a whole, and aborts the process
    // (GGML_ASSERT in llama_kv_cache::seq_cp) on a partial range
    if (src !== dst && (p0 > 0 || p1 > 0) && !this.raw.info().kvUnified) {
      throw new RangeError(
        `copySeq(${src}, ${dst}, ${p0}, ${p1}): this context keeps one KV stream per sequence, which copies ` +
          "whole sequences only (p0 = p1 = -1); create it with kvUnified: true for partial copies",
      );
    }
    return this.raw.kvCopy(src, dst, p0, p1);
  }

  keepSeq(seq: number): Promise<void> {
    return this.raw.kvKeep(seq);
  }

  clear(): Promise<void> {
    return this.raw.kvClear();
  }

  /** Cached position range of a sequence ({-1,-1} when empty). */
  positions(seq: number): Promise<{ min: number; max: number }> {
    return this.raw.kvPosRange(seq);
  }

  /**
   * Threads of the graphs of the jobs queued after this call (1..threadsMax). Jobs run in order,
   * so jobs queued before it keep the previous count.
   */
  setThreads(threads: number): Promise<void> {
    const max = this.raw.info().threadsMax;
    if (!Number.isInteger(threads) || threads < 1 || threads > max) {
      throw new RangeError(`threads must be an integer in 1..${max} (the context's threadsMax), got ${threads}`);
    }
    return this.raw.setThreads(threads, threads);
  }

  /** Frees the context after the jobs already queued; later calls throw. Idempotent. */
  dispose(): Promise<void> {
    return this.raw.dispose();
  }
}
