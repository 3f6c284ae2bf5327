// Response bodies and stream chunks, shaped as OpenAI's chat.completion / text_completion objects,
// plus minedraft's extension field with the request's speculative statistics.
import { randomUUID } from "node:crypto";
import type { FinishReason, GenerateResult, Mode } from "../engine/index.js";

export type Route = "chat" | "completion";

export type OpenAIFinishReason = "stop" | "length";

/** The end of generation in OpenAI's words: a stop string or the end-of-generation token is "stop". */
export function finishReason(reason: FinishReason): OpenAIFinishReason {
  return reason === "maxTokens" || reason === "contextFull" ? "length" : "stop";
}

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

export function usageOf(results: readonly GenerateResult[]): Usage {
  const prompt = results.reduce((n, r) => n + r.stats.promptTokens, 0);
  const completion = results.reduce((n, r) => n + r.stats.generatedTokens, 0);
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
}

/** minedraft's extension field: how speculation went for this HTTP request (summed over its prompts). */
export interface SpeculativeStats {
  mode: Mode;
  /** verification steps that checked drafted tokens, drafted tokens, accepted tokens */
  drafts: number;
  draft_tokens: number;
  accepted_tokens: number;
  /** accepted / drafted */
  acceptance_rate: number;
  /** tokens per target pass: 1 + accepted / verification steps */
  mean_acceptance_length: number;
  verify_steps: number;
  ttft_ms: number;
  e2e_ms: number;
  /** with prompt lookup: drafted / accepted tokens per source (`model`: the draft model, where lookup found nothing) */
  draft_sources?: Partial<Record<"ngram" | "model", { draft_tokens: number; accepted_tokens: number }>>;
}

export function speculativeStats(mode: Mode, results: readonly GenerateResult[]): SpeculativeStats {
  const sum = (f: (r: GenerateResult) => number) => results.reduce((n, r) => n + f(r), 0);
  const drafted = sum((r) => r.stats.draftedTokens);
  const accepted = sum((r) => r.stats.acceptedTokens);
  const steps = sum((r) => r.stats.steps);
  return {
    mode,
    drafts: sum((r) => r.stats.drafts),
    draft_tokens: drafted,
    accepted_tokens: accepted,
    acceptance_rate: drafted > 0 ? accepted / drafted : 0,
    mean_acceptance_length: steps > 0 ? 1 + accepted / steps : 0,
    verify_steps: steps,
    ttft_ms: Math.min(...results.map((r) => r.stats.ttftMs)),
    e2e_ms: Math.max(...results.map((r) => r.stats.e2eMs)),
    ...draftSources(results),
  };
}

function draftSources(results: readonly GenerateResult[]): Pick<SpeculativeStats, "draft_sources"> {
  if (!results.some((r) => r.stats.draftSources)) return {};
  const out: NonNullable<SpeculativeStats["draft_sources"]> = {};
  for (const source of ["ngram", "model"] as const) {
    const per = results.map((r) => r.stats.draftSources?.[source]).filter((s) => s !== undefined);
    if (per.length === 0) continue;
    out[source] = {
      draft_tokens: per.reduce((n, s) => n + s.draftedTokens, 0),
      accepted_tokens: per.reduce((n, s) => n + s.acceptedTokens, 0),
    };
  }
  return { draft_sources: out };
}

/** The fields every body and chunk of one HTTP request shares. */
export class ResponseShape {
  readonly id: string;
  readonly created = Math.floor(Date.now() / 1000);

  constructor(
    readonly route: Route,
    readonly model: string,
    readonly returnTokens: boolean,
  ) {
    this.id = `${route === "chat" ? "chatcmpl-" : "cmpl-"}${randomUUID().replaceAll("-", "")}`;
  }

  private head(chunk: boolean) {
    const object = this.route === "chat" ? (chunk ? "chat.completion.chunk" : "chat.completion") : "text_completion";
    return { id: this.id, object, created: this.created, model: this.model };
  }

  /** The whole (non-streaming) response. */
  body(results: readonly GenerateResult[], mode: Mode) {
    return {
      ...this.head(false),
      choices: results.map((r, index) => ({
        index,
        ...(this.route === "chat" ? { message: { role: "assistant", content: r.text } } : { text: r.text }),
        logprobs: null,
        finish_reason: finishReason(r.stats.finishReason),
        ...(this.returnTokens ? { tokens: r.tokens } : {}),
      })),
      usage: usageOf(results),
      minedraft: speculativeStats(mode, results),
    };
  }

  /** A chat stream's first chunk of a choice: the assistant role, no text yet (as OpenAI sends it). */
  roleChunk(index: number) {
    return {
      ...this.head(true),
      choices: [{ index, delta: { role: "assistant", content: "" }, logprobs: null, finish_reason: null }],
    };
  }

  /** A piece of text of one choice. */
  pieceChunk(index: number, piece: string) {
    const choice = this.route === "chat" ? { index, delta: { content: piece } } : { index, text: piece };
    return { ...this.head(true), choices: [{ ...choice, logprobs: null, finish_reason: null }] };
  }

  /** A choice's last chunk: its finish reason and its own statistics (and tokens when asked). */
  finishChunk(index: number, result: GenerateResult, mode: Mode) {
    const choice = this.route === "chat" ? { index, delta: {} } : { index, text: "" };
    return {
      ...this.head(true),
      choices: [
        {
          ...choice,
          logprobs: null,
          finish_reason: finishReason(result.stats.finishReason),
          ...(this.returnTokens ? { tokens: result.tokens } : {}),
        },
      ],
      minedraft: speculativeStats(mode, [result]),
    };
  }

  /** stream_options.include_usage: the chunk after the last choice, with no choices and the usage. */
  usageChunk(results: readonly GenerateResult[]) {
    return { ...this.head(true), choices: [], usage: usageOf(results) };
  }
}
