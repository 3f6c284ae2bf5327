// From a validated request body to engine work: the prompt tokens of each choice, the generate()
// options, and the checks that need the model (the context length, the vocabulary, the model name).
// Everything here throws ApiError (a 4xx naming the user's field), never a bare engine error.
import type { ChatMessage, Engine, GenerateOptions } from "../engine/index.js";
import { ApiError, badField } from "./errors.js";
import type { ChatBody, CompletionBody, SamplingBody } from "./schemas.js";

/**
 * OpenAI fields this server does not implement, with the values that ask for nothing (clients often
 * send those explicitly). Any other value is a 400 naming the field: never silently ignored.
 */
const UNSUPPORTED: Record<string, (v: unknown) => boolean> = {
  logprobs: (v) => v === false || v === 0,
  top_logprobs: (v) => v === 0,
  tools: (v) => Array.isArray(v) && v.length === 0,
  tool_choice: (v) => v === "none",
  functions: (v) => Array.isArray(v) && v.length === 0,
  function_call: (v) => v === "none",
  response_format: (v) => typeof v === "object" && v !== null && (v as { type?: unknown }).type === "text",
  logit_bias: (v) => typeof v === "object" && v !== null && Object.keys(v).length === 0,
  echo: (v) => v === false,
  best_of: (v) => v === 1,
  suffix: (v) => v === "",
  modalities: (v) => Array.isArray(v) && v.length === 1 && v[0] === "text",
  audio: () => false,
  prediction: () => false,
  reasoning_effort: () => false,
  web_search_options: () => false,
};

/**
 * Runs before schema validation: a supported-by-OpenAI-but-not-here field with a neutral value is
 * dropped, any other value is refused by name.
 */
export function dropNeutralUnsupported(body: unknown): void {
  if (body === null || typeof body !== "object" || Array.isArray(body)) return;
  const fields = body as Record<string, unknown>;
  for (const [name, neutral] of Object.entries(UNSUPPORTED)) {
    if (!(name in fields)) continue;
    const value = fields[name];
    if (value !== null && value !== undefined && !neutral(value))
      throw badField(name, `'${name}' is not supported by this server`);
    delete fields[name];
  }
}

/** One HTTP request's engine work: one prompt per choice, the same options for each. */
export interface GenerationPlan {
  prompts: number[][];
  /** per prompt: generate() options (seed i is the request's seed + i) */
  options: GenerateOptions[];
  stream: boolean;
  includeUsage: boolean;
  returnTokens: boolean;
}

export interface PlanContext {
  engine: Engine;
  modelName: string;
  /** a template name or text; undefined: the model's own */
  chatTemplate: string | undefined;
  /** max_tokens when the request gives none; undefined: up to the context */
  defaultMaxTokens: number | undefined;
  /** seed when the request gives none; undefined: random */
  defaultSeed: number | undefined;
}

export async function planChat(body: ChatBody, ctx: PlanContext): Promise<GenerationPlan> {
  const messages: ChatMessage[] = body.messages.map((m) => ({
    role: m.role === "developer" ? "system" : m.role,
    content: typeof m.content === "string" ? m.content : m.content.map((part) => part.text).join(""),
  }));
  let prompt: number[];
  try {
    prompt = await ctx.engine.chatPromptAsync(messages, { chatTemplate: ctx.chatTemplate });
  } catch (error) {
    throw badField(
      "messages",
      `the chat template could not format the messages: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
  return plan(
    [prompt],
    body,
    body.max_completion_tokens ?? body.max_tokens,
    body.max_completion_tokens != null ? "max_completion_tokens" : "max_tokens",
    ctx,
  );
}

export async function planCompletion(body: CompletionBody, ctx: PlanContext): Promise<GenerationPlan> {
  const { engine } = ctx;
  const p = body.prompt;
  let prompts: number[][];
  // long texts are tokenized off the JS thread (engine.tokenizeAsync): other clients' streams go on
  if (typeof p === "string") prompts = [await engine.tokenizeAsync(p)];
  else if (p.every((x) => typeof x === "string"))
    prompts = await Promise.all((p as string[]).map((s) => engine.tokenizeAsync(s)));
  else if (p.every((x) => typeof x === "number")) prompts = [p as number[]];
  else prompts = p as number[][];
  const vocabulary = engine.vocabularySize;
  for (const tokens of prompts) {
    if (tokens.length === 0) throw badField("prompt", "the prompt is empty after tokenization");
    // token ids as given (a tokenized text is in the vocabulary by construction)
    const outside = typeof p === "string" || typeof p[0] === "string" ? undefined : tokens.find((t) => t >= vocabulary);
    if (outside !== undefined)
      throw badField("prompt", `token ${outside} is not in the vocabulary (0..${vocabulary - 1})`);
  }
  return plan(prompts, body, body.max_tokens, "max_tokens", ctx);
}

function plan(
  prompts: number[][],
  body: SamplingBody,
  maxTokens: number | null | undefined,
  maxTokensField: string,
  ctx: PlanContext,
): GenerationPlan {
  if (body.model !== undefined && body.model !== ctx.modelName) {
    throw new ApiError(
      404,
      `The model '${body.model}' does not exist: this server serves '${ctx.modelName}' (see GET /v1/models)`,
      "model",
      "model_not_found",
    );
  }
  if (body.n != null && body.n !== 1) throw badField("n", "'n' must be 1: this server returns one choice per prompt");
  for (const name of ["presence_penalty", "frequency_penalty"] as const) {
    if (body[name] != null && body[name] !== 0)
      throw badField(name, `'${name}' is not supported by this server (only 0)`);
  }
  const context = ctx.engine.contextSize;
  const seed = body.seed ?? ctx.defaultSeed;
  const stop = body.stop == null ? undefined : typeof body.stop === "string" ? [body.stop] : body.stop;
  const options = prompts.map((tokens, i): GenerateOptions => {
    const room = context - tokens.length;
    if (room < 1) {
      throw badField(
        "prompt",
        `the prompt has ${tokens.length} tokens, but the context holds ${context} tokens per request (prompt + ` +
          "completion)",
      );
    }
    if (maxTokens != null && tokens.length + maxTokens > context) {
      throw badField(
        maxTokensField,
        `This model's maximum context length is ${context} tokens. However, you requested ` +
          `${tokens.length + maxTokens} tokens (${tokens.length} in the prompt, ${maxTokens} in the completion). ` +
          `Please reduce the prompt or ${maxTokensField}.`,
      );
    }
    return {
      maxTokens: maxTokens ?? Math.min(ctx.defaultMaxTokens ?? room, room),
      temperature: body.temperature ?? undefined,
      topP: body.top_p ?? undefined,
      topK: body.top_k ?? undefined,
      seed: seed === undefined ? undefined : seed + i,
      stop,
    };
  });
  return {
    prompts,
    options,
    stream: body.stream === true,
    includeUsage: body.stream_options?.include_usage === true,
    returnTokens: body.return_tokens === true,
  };
}
