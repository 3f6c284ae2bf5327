// A loaded GGUF model: metadata, tokenizer and chat template over the native Model.
import { loadAddon, type LogLevel } from "./addon.js";
import { numberList, snapshot } from "./args.js";
import { GGML_TYPE_NAMES, GgufError, readGgufHeader, type GgufHeader } from "./gguf.js";
import type { NativeAddon, RawModel, RawModelInfo } from "./types.js";
import { vocabIncompatibility } from "./vocab-compat.js";

export interface LoadModelOptions {
  /** layers to offload to the GPU (-1: all, 0: none); default: all when a GPU is present */
  gpuLayers?: number;
  /**
   * "cpu", a device name from devices() such as "CUDA0" / "Vulkan0" / "Metal" / "RPC0", or several separated by
   * commas ("RPC0,RPC1", as llama.cpp's --device) to split the offloaded layers across them
   */
  device?: string;
  /** each listed device's share of the offloaded layers, as llama.cpp's --tensor-split (default: by free memory) */
  tensorSplit?: readonly number[];
  mmap?: boolean;
  logLevel?: LogLevel;
}

export interface ModelInfo extends RawModelInfo {
  path: string;
  /** dominant weight type of the 2-D tensors, e.g. "Q8_0" */
  quantization: string;
  fileSize: number;
}

/** Why a tensorSplit does not fit the device list, or undefined: one share >= 0 per listed device, not all 0. */
export function tensorSplitProblem(
  device: string | undefined,
  split: readonly unknown[] | undefined,
): string | undefined {
  if (split === undefined) return undefined;
  const devices = device?.split(",") ?? [];
  if (devices.length < 2 || devices.some((d) => d.toLowerCase() === "cpu"))
    return 'tensorSplit needs two or more devices in device ("RPC0,RPC1"); the layers not offloaded stay on the CPU';
  if (split.length !== devices.length)
    return `tensorSplit has ${split.length} shares for ${devices.length} devices (${device})`;
  if (!split.every((x) => typeof x === "number" && Number.isFinite(x) && x >= 0) || !split.some((x) => x !== 0))
    return "tensorSplit shares must be finite numbers >= 0, not all 0";
  return undefined;
}

export class LlamaModel {
  private constructor(
    readonly raw: RawModel,
    readonly info: ModelInfo,
    private readonly addon: NativeAddon,
    /**
     * the device it was loaded on as asked ("cpu" with gpuLayers 0); undefined: llama.cpp's default, every layer on the
     * GPUs if there are any
     */
    readonly device: string | undefined,
    /** layers offloaded as asked (undefined or -1: all) */
    readonly gpuLayers: number | undefined,
  ) {}

  static async load(path: string, options: LoadModelOptions = {}): Promise<LlamaModel> {
    if (typeof path !== "string" || path.length === 0) throw new TypeError("model path must be a non-empty string");
    if (options.gpuLayers !== undefined && (!Number.isInteger(options.gpuLayers) || options.gpuLayers < -1)) {
      throw new RangeError(`gpuLayers must be an integer >= -1, got ${options.gpuLayers}`);
    }
    const why = tensorSplitProblem(options.device, options.tensorSplit);
    if (why) throw new RangeError(why);
    const header = await readGgufHeader(path);
    if (header.tensors.length === 0) {
      throw new GgufError(path, "the file has no tensors: it is a vocabulary-only GGUF (a tokenizer, not a model)");
    }
    const addon = await loadAddon({ logLevel: options.logLevel });
    const raw = await addon.loadModel(path, {
      gpuLayers: options.gpuLayers,
      device: options.device,
      ...(options.tensorSplit ? { tensorSplit: [...options.tensorSplit] } : {}),
      mmap: options.mmap,
    });
    let info: RawModelInfo;
    try {
      info = raw.info();
      const why = tokenizerProblem(info);
      if (why) throw new GgufError(path, why);
    } catch (e) {
      raw.dispose();
      throw e;
    }
    const device = options.gpuLayers === 0 ? "cpu" : options.device;
    return new LlamaModel(
      raw,
      { ...info, path, quantization: dominantType(header), fileSize: header.fileSize },
      addon,
      device,
      options.gpuLayers,
    );
  }

  get nVocab(): number {
    return this.info.nVocab;
  }

  tokenize(text: string, addSpecial = true, parseSpecial = false): number[] {
    return toNumbers(this.raw.tokenize(text, addSpecial, parseSpecial));
  }

  /** tokenize() on libuv's thread pool: for long texts, which would hold the event loop (~0.3 s per MiB). */
  async tokenizeAsync(text: string, addSpecial = true, parseSpecial = false): Promise<number[]> {
    return toNumbers(await this.raw.tokenizeAsync(text, addSpecial, parseSpecial));
  }

  detokenize(tokens: readonly number[], removeSpecial = false, unparseSpecial = false): string {
    return this.raw.detokenize(numberList(tokens), removeSpecial, unparseSpecial);
  }

  tokenBytes(token: number): Uint8Array {
    return this.raw.tokenBytes(token, false);
  }

  tokenText(token: number): string {
    return this.raw.tokenText(token);
  }

  isEog(token: number): boolean {
    return this.raw.isEog(token);
  }

  /** `template`: a llama.cpp built-in template name (e.g. "chatml") or a template text; default the model's own */
  applyChatTemplate(
    messages: readonly { role: string; content: string }[],
    addAssistant = true,
    template?: string,
  ): string {
    return this.raw.applyChatTemplate(snapshot(messages), addAssistant, template);
  }

  /**
   * Why `draft` cannot draft for this model, or null when the vocabularies are compatible (the rule: vocab-compat.ts).
   */
  incompatibilityWith(draft: LlamaModel): string | null {
    if (!(draft instanceof LlamaModel)) throw new TypeError("incompatibilityWith(draft): draft must be a LlamaModel");
    return vocabIncompatibility(this.addon, this, draft);
  }

  get disposed(): boolean {
    return this.raw.disposed;
  }

  dispose(): void {
    this.raw.dispose();
  }
}

/** Int32Array → number[]: a preallocated loop (Array.from takes ~4x longer: 16 ms for 280k tokens). */
function toNumbers(a: Int32Array): number[] {
  const out = new Array<number>(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i]!;
  return out;
}

/**
 * llama.cpp's tokenizer asserts (aborting the process) when it must add a BOS / EOS token the vocabulary does
 * not have; such a model is refused at load instead of at the first tokenize().
 */
function tokenizerProblem(info: RawModelInfo): string | null {
  if (info.nVocab <= 0) return "the model has no vocabulary";
  if ((info.addBos || info.vocabType === "wpm") && info.bos < 0)
    return "the tokenizer must add a BOS token, but the vocabulary defines none";
  if (info.addEos && info.eos < 0) return "the tokenizer must add an EOS token, but the vocabulary defines none";
  return null;
}

function dominantType(h: GgufHeader): string {
  const bytes = new Map<number, number>();
  for (const t of h.tensors) {
    if (t.dims.length < 2) continue;
    bytes.set(t.type, (bytes.get(t.type) ?? 0) + (t.bytes ?? 0));
  }
  let best = -1;
  let most = -1;
  for (const [type, b] of bytes) {
    if (b > most) {
      most = b;
      best = type;
    }
  }
  return best < 0 ? "unknown" : (GGML_TYPE_NAMES[best] ?? `type${best}`);
}
