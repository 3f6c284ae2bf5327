// Options shared by the commands that run models (generate, bench): decoding and placement flags,
// and their translation to the library's createEngine() options.
import { InvalidArgumentError, Option, type Command } from "commander";
import { addBackendOptions, type BackendFlags, backendsFromFlags } from "./backend-flags.js";
import type { CreateEngineOptions, LogLevel, Mode } from "../index.js";
import { decimal, integer, probability } from "./parsers.js";

export const MODES: readonly Mode[] = ["ar", "sd", "psd", "auto"];
export const LOG_LEVELS: readonly LogLevel[] = ["silent", "error", "warn", "info", "debug"];
/** the engine's limit on the draft length */
const MAX_K = 32;

export interface DecodingFlags {
  draftTokens?: number;
  temp?: number;
  topK?: number;
  topP?: number;
  draftTemp?: number;
  seed?: number;
  maxTokens?: number;
  batchSize?: number;
  tetrisExtra?: number;
  postVerify?: boolean;
  preVerify?: boolean;
  /** --ngram-max-n: the longest n-gram prompt lookup matches (with --draft ngram or --ngram) */
  ngramMaxN?: number;
  /** --ngram: prompt lookup first, the draft model (--draft PATH) where it finds nothing */
  ngram?: boolean;
}

/** The --draft value that asks for prompt lookup (n-gram) drafts instead of a draft model. */
export const NGRAM_DRAFT = "ngram";

export interface PlacementFlags extends BackendFlags {
  threads?: number;
  draftThreads?: number;
  gpuLayers?: number;
  draftGpuLayers?: number;
  device?: string;
  draftDevice?: string;
  tensorSplit?: number[];
  deviceArgmax?: boolean;
  ctxSize?: number;
  kvUnified?: boolean;
  adaptThreads?: boolean;
  logLevel: LogLevel;
}

export interface DecodingDefaults {
  /** null: no default (the description says what then happens) */
  maxTokens?: number | null;
  maxTokensHelp?: string;
  batchSize?: number;
  seed?: number;
}

export function addDecodingOptions(cmd: Command, defaults: DecodingDefaults = {}): Command {
  return cmd
    .option(
      "--ngram",
      "with --draft PATH: draft by prompt lookup where the request's last tokens occurred before, and with the " +
        "draft model elsewhere (per request, per step)",
    )
    .option(
      "--ngram-max-n <n>",
      "with --draft ngram or --ngram: the longest n-gram prompt lookup matches (default 3; shorter ones when it " +
        "finds none)",
      integer(1, 8),
    )
    .option("-k, --draft-tokens <n>", "draft length k, tokens drafted per step (sd, psd; default 4)", integer(1, MAX_K))
    .option("--temp <t>", "sampling temperature, 0 = greedy (default 0)", decimal(0, Infinity, "a temperature"))
    .option("--top-k <n>", "top-k sampling, 0 = off", integer(0))
    .option("--top-p <p>", "top-p (nucleus) sampling, in (0, 1]", probability)
    .option(
      "--draft-temp <t>",
      "draft sampling temperature (default: --temp; output stays lossless)",
      decimal(0, Infinity, "a temperature"),
    )
    .option(
      "--seed <n>",
      `base seed; prompt i uses seed + i${defaults.seed === undefined ? " (default: random)" : ""}`,
      integer(0, Number.MAX_SAFE_INTEGER),
      defaults.seed,
    )
    .option(
      "--max-tokens <n>",
      defaults.maxTokensHelp ?? "tokens to generate per prompt at most",
      integer(1),
      defaults.maxTokens === null ? undefined : (defaults.maxTokens ?? 128),
    )
    .option(
      "--batch-size <m>",
      "requests per batch m (psd and auto run two sub-batches of m)",
      integer(1),
      defaults.batchSize ?? 4,
    )
    .option(
      "--tetris-extra <e>",
      "TETRIS (psd): draft k + e tokens per request, verify only the k x m likeliest prefixes",
      integer(1, 32),
    )
    .option(
      "--post-verify",
      "psd: with one running request, draft the next round while the target verifies (default: on with the target on a GPU)",
    )
    .option("--no-post-verify", "psd: sequential SD with one running request")
    .option(
      "--pre-verify",
      "psd, with post-verify: a running request without drafts runs a plain target step while the draft drafts the " +
        "round after it (turns post-verify on; default off)",
    )
    .option("--no-pre-verify", "psd: post-verify only; a request without drafts is drafted first, then verified");
}

function shareList(value: string): number[] {
  const list = value.split(",").map((x) => x.trim());
  if (list.some((x) => !/^\d+(\.\d+)?$/.test(x)) || list.every((x) => Number(x) === 0))
    throw new InvalidArgumentError("expected shares >= 0, not all 0, e.g. 3,1");
  return list.map(Number);
}

export function addPlacementOptions(cmd: Command): Command {
  return addBackendOptions(cmd)
    .option(
      "--threads <n>",
      "CPU threads of the target model (default: split the cores without oversubscribing)",
      integer(1, 512),
    )
    .option("--draft-threads <n>", "CPU threads of the draft model", integer(1, 512))
    .option("--gpu-layers <n>", "target layers offloaded to the GPU (-1 = all)", integer(-1))
    .option("--draft-gpu-layers <n>", "draft layers offloaded to the GPU (-1 = all)", integer(-1))
    .option(
      "--device <name>",
      'device of the target model: "cpu" or a name from `minedraft inspect --devices`; several (RPC0,RPC1) split ' +
        "its offloaded layers",
    )
    .option(
      "--tensor-split <list>",
      "with --device A,B,...: each device's share of the target's offloaded layers, e.g. 3,1 (default: by free memory)",
      shareList,
    )
    .option("--draft-device <name>", "device of the draft model")
    .option(
      "--device-argmax",
      "greedy rows of a model on an --rpc device take their argmax there: one token per row crosses the network " +
        "instead of its logits (default: on for servers off this machine; give it for one reached through a tunnel)",
    )
    .option("--no-device-argmax", "copy every greedy row's logits back from --rpc devices (default on loopback)")
    .option("--ctx-size <n>", "context tokens per sequence (prompt + generation)", integer(16), 2048)
    .option(
      "--kv-unified",
      "one KV buffer for all sequences (any batch layout is one pass; attention spans every sequence's cells); " +
        "default for a model on a GPU",
    )
    .option("--no-kv-unified", "one KV stream per sequence, also on a GPU (the CPU default)")
    .option(
      "--no-adapt-threads",
      "keep the thread counts when other work competes for the cores (default: one thread per model while " +
        "others hold a core)",
    )
    .addOption(new Option("--log-level <level>", "llama.cpp log level").choices(LOG_LEVELS).default("error"));
}

export function modeOption(): Option {
  return new Option(
    "--mode <mode>",
    "decoding mode: ar (autoregressive), sd (speculative), psd (parallel speculative), auto (picks k and sd/psd " +
      "per step from measured costs); default with --draft: auto, or psd when the target is on a GPU; else ar",
  ).choices(MODES);
}

/** createEngine() options for one mode, with the models given as local paths or loaded models. */
export function engineOptions(
  /** undefined: createEngine's default for the placement */
  mode: Mode | undefined,
  /** draft: a draft model, or NGRAM_DRAFT for prompt lookup drafts */
  models: { target: CreateEngineOptions["target"]["model"]; draft?: CreateEngineOptions["target"]["model"] },
  decoding: DecodingFlags,
  placement: PlacementFlags,
): CreateEngineOptions {
  const lookup = decoding.ngramMaxN !== undefined ? { maxN: decoding.ngramMaxN } : {};
  return {
    mode,
    target: {
      model: models.target,
      device: placement.device,
      gpuLayers: placement.gpuLayers,
      ...(placement.tensorSplit ? { tensorSplit: placement.tensorSplit } : {}),
      ...(placement.deviceArgmax !== undefined ? { deviceArgmax: placement.deviceArgmax } : {}),
      threads: placement.threads,
    },
    draft:
      mode !== "ar" && models.draft === NGRAM_DRAFT
        ? { ngram: lookup }
        : mode !== "ar" && models.draft !== undefined
          ? {
              model: models.draft,
              device: placement.draftDevice,
              gpuLayers: placement.draftGpuLayers,
              ...(placement.deviceArgmax !== undefined ? { deviceArgmax: placement.deviceArgmax } : {}),
              threads: placement.draftThreads,
              ...(decoding.ngram ? { ngram: lookup } : {}),
            }
          : undefined,
    draftTokens: decoding.draftTokens,
    batchSize: decoding.batchSize,
    ...(decoding.tetrisExtra !== undefined && mode === "psd" ? { tetris: { extra: decoding.tetrisExtra } } : {}),
    ...(decoding.postVerify !== undefined ? { postVerify: decoding.postVerify } : {}),
    ...(decoding.preVerify !== undefined ? { preVerify: decoding.preVerify } : {}),
    temperature: decoding.temp,
    topK: decoding.topK,
    topP: decoding.topP,
    draftTemperature: decoding.draftTemp,
    contextSize: placement.ctxSize,
    kvUnified: placement.kvUnified,
    ...(placement.adaptThreads === false ? { adaptThreads: false } : {}),
    logLevel: placement.logLevel,
    backends: backendsFromFlags(placement),
  };
}

/**
 * The mode a command runs from its flags, or the usage error to report. No --mode: ar without a draft,
 * sd with --draft ngram, psd when TETRIS is asked for, else undefined (createEngine's default for the
 * placement: auto on the CPU, psd with the target on a GPU). `hasDraft`: a draft model or ngram is given,
 * or the command brings its own pair.
 */
export function modeFromFlags(
  flags: { mode?: Mode; draft?: string; tetrisExtra?: number; ngramMaxN?: number; ngram?: boolean },
  hasDraft: boolean,
): { mode: Mode | undefined; error?: string } {
  const ngram = flags.draft === NGRAM_DRAFT;
  const mode = flags.mode ?? (!hasDraft ? "ar" : ngram ? "sd" : flags.tetrisExtra !== undefined ? "psd" : undefined);
  const shown = mode ?? "auto";
  const error =
    ngram && mode === "psd"
      ? "--draft ngram (prompt lookup alone) works with --mode sd or auto: psd overlaps a draft model's work " +
        "(--draft PATH --ngram combines the two)"
      : flags.ngram && (ngram || flags.draft === undefined)
        ? "--ngram combines prompt lookup with a draft model: give --draft PATH (or --draft ngram for lookup alone)"
        : flags.ngramMaxN !== undefined && !ngram && !flags.ngram
          ? "--ngram-max-n works with --draft ngram or --ngram only"
          : mode !== undefined && mode !== "ar" && !hasDraft
            ? `mode ${mode} needs a draft model (--draft <path>)`
            : flags.tetrisExtra !== undefined && mode !== "psd"
              ? `--tetris-extra works with --mode psd only (mode is ${shown})`
              : undefined;
  return { mode, ...(error ? { error } : {}) };
}
