// Types of the raw native addon (cpp/). The classes in this folder wrap them with a friendlier API.
import type { SamplingParams } from "../engine/backend.js";

export interface RawModelInfo {
  description: string;
  architecture: string;
  name: string;
  nParams: number;
  sizeBytes: number;
  nVocab: number;
  nCtxTrain: number;
  nEmbd: number;
  nLayer: number;
  nHead: number;
  nHeadKv: number;
  vocabType: string;
  bos: number;
  eos: number;
  eot: number;
  addBos: boolean;
  addEos: boolean;
  chatTemplate: string | null;
  meta: Record<string, string>;
}

export interface RawModel {
  info(): RawModelInfo;
  tokenize(text: string, addSpecial?: boolean, parseSpecial?: boolean): Int32Array;
  tokenizeAsync(text: string, addSpecial?: boolean, parseSpecial?: boolean): Promise<Int32Array>;
  detokenize(tokens: Int32Array | readonly number[], removeSpecial?: boolean, unparseSpecial?: boolean): string;
  tokenBytes(token: number, special?: boolean): Uint8Array;
  tokenText(token: number): string;
  isEog(token: number): boolean;
  applyChatTemplate(
    messages: readonly { role: string; content: string }[],
    addAssistant?: boolean,
    template?: string,
  ): string;
  dispose(): void;
  readonly disposed: boolean;
}

export interface RawContextOptions {
  nCtx?: number;
  nSeqMax?: number;
  nBatch?: number;
  nUbatch?: number;
  threads?: number;
  threadsBatch?: number;
  kvUnified?: boolean;
  flashAttention?: "auto" | "on" | "off";
  threadpool?: boolean;
  /** most threads setThreads() may ask for (the threadpool's size); default max(threads, threadsBatch) */
  threadsMax?: number;
  /** ggml's polling level of the threadpool's threads between graphs, 0..100 (0 = sleep at once); default 0 */
  threadpoolPoll?: number;
  /**
   * microseconds the worker spins for the next job after a job it got soon after the previous one (0 = always sleep);
   * default 0
   */
  spinMicros?: number;
  /**
   * threads that evaluate a job's sampled rows (filtered softmax, residual sample), 0..512; 0 (default) = `threads` of
   * the moment
   */
  rowThreads?: number;
  /** greedy rows' argmax computed where the logits are (llama.cpp backend sampling); default false */
  deviceArgmax?: boolean;
}

export interface RawContextInfo {
  nCtx: number;
  nCtxSeq: number;
  nSeqMax: number;
  nBatch: number;
  threads: number;
  threadsBatch: number;
  threadsMax: number;
  /** 0: sampled rows use `threads` */
  rowThreads: number;
  kvUnified: boolean;
  nVocab: number;
  threadpool: boolean;
  /** greedy rows take their argmax on the model's output device (deviceArgmax) */
  deviceArgmax: boolean;
  disposed: boolean;
}

export interface RawBatch {
  tokens: Int32Array | readonly number[];
  pos: Int32Array | readonly number[];
  seq: Int32Array | readonly number[];
  /** 1 = return this row's logits; default: only the last row */
  logits?: Int32Array | readonly number[];
}

export interface RawDraftSpec {
  seq: number;
  pos: number;
  tokens: readonly number[];
  k: number;
  sampling?: SamplingParams;
  uniforms?: readonly number[];
  /**
   * also return `confidence`: the draft's probability of each drafted token (softmax at temperature 1 when greedy,
   * q(token) when sampled)
   */
  confidence?: boolean;
  /** which of the sequence's two q banks stores the drafted distributions (default 0) */
  qBank?: 0 | 1;
}

export interface RawVerifySpec {
  seq: number;
  pos: number;
  pending: number;
  draft: readonly number[];
  draftSeq?: number;
  sampling?: SamplingParams;
  uniforms?: readonly number[];
  /** the q bank of draftSeq holding the drafts' distributions (default 0) */
  qBank?: 0 | 1;
  /** draft[i]'s q is row qRow + i of that bank (default 0) */
  qRow?: number;
  /** q is one-hot at each draft token (drafts from no draft context, e.g. prompt lookup) */
  onehot?: boolean;
}

export interface RawContext {
  decode(batch: RawBatch): Promise<Float32Array>;
  prefill(seq: number, pos: number, tokens: readonly number[] | Int32Array): Promise<void>;
  prefill(specs: readonly { seq: number; pos: number; tokens: readonly number[] | Int32Array }[]): Promise<void>;
  draft(
    specs: readonly RawDraftSpec[],
    vocabLimit?: number,
  ): Promise<{ tokens: Int32Array; probs: Float32Array; confidence?: Float32Array }[]>;
  verify(specs: readonly RawVerifySpec[], draftContext?: RawContext): Promise<{ p: Float32Array; alt: Int32Array }[]>;
  kvRemove(seq: number, p0?: number, p1?: number): Promise<boolean>;
  kvCopy(src: number, dst: number, p0?: number, p1?: number): Promise<void>;
  kvKeep(seq: number): Promise<void>;
  kvClear(): Promise<void>;
  kvPosRange(seq: number): Promise<{ min: number; max: number }>;
  setThreads(threads: number, threadsBatch?: number): Promise<void>;
  dispose(): Promise<void>;
  info(): RawContextInfo;
}

export interface DeviceInfo {
  name: string;
  description: string;
  type: "cpu" | "gpu" | "igpu" | "accel" | "other";
  backend: string;
  memoryFree: number;
  memoryTotal: number;
}

export interface NativeAddon {
  init(options: { libDir: string; logLevel: number }): string;
  setLogLevel(level: number): void;
  loadBackend(path: string): { name: string; devices: number };
  devices(): DeviceInfo[];
  /** whether the device can run graphs over a tensor of this type and shape in its own buffers */
  deviceHoldsTensor(device: string, type: "f16" | "f32", ne: readonly number[]): boolean;
  /** whether the libraries have ggml's RPC backend (npm run build:source -- --rpc) */
  rpcSupported(): boolean;
  /** connects to a ggml rpc-server and registers its devices (ggml aborts if it is down: probe it first, rpc.ts) */
  addRpcServer(endpoint: string): { name: string; devices: string[] };
  /** the RPC protocol version this build speaks */
  rpcProtocol: { major: number; minor: number };
  systemInfo(): string;
  hardwareConcurrency: number;
  loadModel(
    path: string,
    options?: { gpuLayers?: number; device?: string; tensorSplit?: number[]; mmap?: boolean },
  ): Promise<RawModel>;
  /**
   * the lowest token id below both vocabulary sizes whose text differs between a and b, or -1 (a vocabulary-wide scan;
   * the rule that uses it: vocab-compat.ts)
   */
  firstTokenTextDifference(a: RawModel, b: RawModel): number;
  createContext(model: RawModel, options?: RawContextOptions): Promise<RawContext>;
  sampling: {
    argmax(logits: Float32Array): number;
    filteredDist(logits: Float32Array, sampling: SamplingParams): Float32Array;
    sampleRow(weights: Float32Array, u: number): number;
    sampleResidual(p: Float32Array, q: Float32Array | null, qToken: number, u: number): number;
  };
}
