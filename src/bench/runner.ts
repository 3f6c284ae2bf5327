// Runs every requested mode on the same models, prompts, seeds and options in one process:
// models load once; per mode one engine, one short warm-up run, then `repeat` measured runs
// (statistics reset before each). Uses only the library's public API.
import { performance } from "node:perf_hooks";
import { LlamaModel, createEngine, type GenerateResult, type MinedraftEngine, type Mode } from "../index.js";
import { loadAddon } from "../native/addon.js";
import { CpuLoadMonitor } from "../native/cpu-load.js";
import { resolvePlacement } from "../native/placement.js";
import { coreCount } from "../native/threads.js";
import { machineInfo, minedraftVersion, modelReport } from "./machine.js";
import { loadReport, phaseStats, summarizeRuns, withSpeedups } from "./summarize.js";
import type { RunStats, TraceEvent } from "../index.js";
import { DEFAULT_TIMELINE_STEPS, timelineWindow } from "./timeline.js";
import {
  BENCH_SCHEMA,
  type BenchConfig,
  type BenchMode,
  type BenchModelSpec,
  type BenchProgress,
  type BenchReport,
  type RunRecord,
} from "./types.js";

/** TETRIS extra drafts per request in psd-tetris when the config does not say. */
export const DEFAULT_TETRIS_EXTRA = 2;

/** The engine mode a bench mode runs. */
export function engineMode(mode: BenchMode): Mode {
  return mode === "psd-tetris" ? "psd" : mode === "sd-ngram" ? "sd" : mode === "auto-ngram" ? "auto" : mode;
}

/** Modes whose drafts come from prompt lookup, with no draft model. */
const lookupMode = (mode: BenchMode) => mode === "sd-ngram" || mode === "auto-ngram";

/** The warm-up only has to touch every weight and allocate the batch's buffers: a few tokens do. */
export const WARMUP_MAX_TOKENS = 16;

export interface BenchHooks {
  signal?: AbortSignal;
  onProgress?: (p: BenchProgress) => void;
}

export function modesNeedDraft(modes: readonly BenchMode[]): boolean {
  return modes.some((m) => m !== "ar" && !lookupMode(m));
}

export async function runBench(config: BenchConfig, hooks: BenchHooks = {}): Promise<BenchReport> {
  if (config.modes.length === 0) throw new RangeError("bench: no modes to run");
  if (config.prompts.length === 0) throw new RangeError("bench: no prompts");
  if (modesNeedDraft(config.modes) && !config.draft)
    throw new Error(`bench: modes ${config.modes.join(", ")} need a draft model`);
  const began = performance.now();
  const machine = await machineInfo();
  const warmupMaxTokens = Math.min(config.maxTokens, WARMUP_MAX_TOKENS);

  // other work on the machine during each measured run (a loaded machine is reported, not hidden)
  const cpu = new CpuLoadMonitor(coreCount(), 0);
  const progress = { done: 0, total: config.modes.length * (config.repeat + 1) * config.prompts.length };
  const models: LlamaModel[] = [];
  const load = async (spec: BenchModelSpec) => {
    const m = await LlamaModel.load(spec.path, {
      device: spec.device,
      gpuLayers: spec.gpuLayers,
      logLevel: config.logLevel,
    });
    models.push(m);
    return m;
  };
  // the models load once for every mode: the default placement assumes overlap when any mode overlaps
  const addon = await loadAddon({ logLevel: config.logLevel });
  const placed = resolvePlacement(addon.devices(), {
    target: config.target.device,
    draft: config.draft?.device,
    hasDraft: Boolean(config.draft) && modesNeedDraft(config.modes),
    overlapped: config.modes.some((m) => m !== "ar" && m !== "sd"),
  });
  const targetSpec: BenchModelSpec = { ...config.target, device: placed.targetDevice };
  const draftSpec: BenchModelSpec | undefined = config.draft
    ? { ...config.draft, device: placed.draftDevice }
    : undefined;
  try {
    const target = await load(targetSpec);
    const draft = draftSpec && modesNeedDraft(config.modes) ? await load(draftSpec) : undefined;

    const open = async (mode: BenchMode) => {
      hooks.signal?.throwIfAborted();
      const engine = await createEngine({
        mode: engineMode(mode),
        ...(mode === "psd-tetris" ? { tetris: { extra: config.tetrisExtra ?? DEFAULT_TETRIS_EXTRA } } : {}),
        target: { model: target, device: targetSpec.device, threads: config.target.threads },
        draft: lookupMode(mode)
          ? { ngram: {} }
          : mode !== "ar" && draft
            ? { model: draft, device: draftSpec!.device, threads: config.draft!.threads }
            : undefined,
        draftTokens: config.draftTokens,
        batchSize: config.batchSize,
        temperature: config.temperature,
        topK: config.topK,
        topP: config.topP,
        draftTemperature: config.draftTemperature,
        contextSize: config.contextSize,
        kvUnified: config.kvUnified,
        ...(config.adaptThreads === false ? { adaptThreads: false } : {}),
        logLevel: config.logLevel,
      });
      const runOnce = async (run: number, maxTokens: number) => {
        engine.resetStats();
        cpu.read(); // the next reading covers this run alone
        const requests = await runPrompts(engine, config, maxTokens, hooks.signal, () => {
          progress.done++;
          hooks.onProgress?.({ mode, run, repeat: config.repeat, ...progress });
        });
        return { stats: engine.stats(), requests: requests.map((r) => r.stats), competingCores: cpu.read().competing };
      };
      return {
        mode,
        engine,
        runOnce,
        warmup: undefined as RunStats | undefined,
        runs: [] as RunRecord[],
        events: [] as TraceEvent[],
      };
    };
    type Session = Awaited<ReturnType<typeof open>>;
    const measure = async (s: Session, run: number) => {
      s.runs.push({ run, ...(await s.runOnce(run, config.maxTokens)) });
      // each run's trace starts at resetStats(); times are ms since that engine started
      s.events.push(...s.engine.trace());
    };
    const result = (s: Session) => ({
      mode: s.mode,
      placement: s.engine.placement,
      summary: summarizeRuns(s.runs.map((r) => r.stats)),
      phases: phaseStats(
        s.events,
        s.runs.reduce((n, r) => n + r.stats.steps, 0),
        s.runs.reduce((n, r) => n + r.stats.wallMs, 0),
      ),
      warmup: s.warmup!,
      runs: s.runs,
      timeline: timelineWindow(s.engine.trace(), config.timelineSteps ?? DEFAULT_TIMELINE_STEPS),
    });

    const results = [];
    if (config.interleave) {
      // every engine open at once; measured runs round-robin over the modes, so a change in the
      // machine's load hits every mode alike
      const sessions: Session[] = [];
      try {
        for (const mode of config.modes) {
          const s = await open(mode);
          sessions.push(s);
          s.warmup = (await s.runOnce(0, warmupMaxTokens)).stats;
        }
        for (let run = 1; run <= config.repeat; run++) for (const s of sessions) await measure(s, run);
        for (const s of sessions) results.push(result(s));
      } finally {
        await Promise.all(sessions.map((s) => s.engine.close()));
      }
    } else {
      for (const mode of config.modes) {
        const s = await open(mode);
        try {
          s.warmup = (await s.runOnce(0, warmupMaxTokens)).stats;
          for (let run = 1; run <= config.repeat; run++) await measure(s, run);
          results.push(result(s));
        } finally {
          await s.engine.close();
        }
      }
    }

    const { target: _target, draft: _draft, prompts, logLevel: _logLevel, ...options } = config;
    return {
      schema: BENCH_SCHEMA,
      minedraftVersion: minedraftVersion(),
      createdAt: new Date().toISOString(),
      durationMs: performance.now() - began,
      machine,
      models: {
        target: modelReport(target, targetSpec),
        draft: draft ? modelReport(draft, draftSpec!) : null,
        placementNote: placed.note,
      },
      options: {
        ...options,
        timelineSteps: config.timelineSteps ?? DEFAULT_TIMELINE_STEPS,
        warmupMaxTokens,
        promptCount: prompts.length,
      },
      prompts: [...prompts],
      modes: withSpeedups(results),
      load: loadReport(results),
    };
  } finally {
    for (const m of models) m.dispose();
  }
}

/** All prompts at once (the engine batches them); prompt i always gets seed + i. */
function runPrompts(
  engine: MinedraftEngine,
  config: BenchConfig,
  maxTokens: number,
  signal: AbortSignal | undefined,
  onDone: () => void,
): Promise<GenerateResult[]> {
  return Promise.all(
    config.prompts.map(async (prompt, i) => {
      const result = await engine.generate(prompt, { maxTokens, seed: config.seed + i, signal });
      onDone();
      return result;
    }),
  );
}
