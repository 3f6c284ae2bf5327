// JSON schemas of the request bodies (Fastify validates every body against them before a route runs),
// and the TypeScript shapes they guarantee. Unknown fields are refused (additionalProperties: false),
// so nothing a client asks for is silently ignored; fields OpenAI has and we do not support are
// refused by name in requests.ts before the schema runs.

const nullable = (schema: object) => ({ anyOf: [schema, { type: "null" }] });
/** the engine passes counts to llama.cpp as 32-bit integers */
const INT32_MAX = 2147483647;

/** Sampling and length fields both generation routes share. */
const samplingProperties = {
  model: { type: "string" },
  max_tokens: nullable({ type: "integer", minimum: 1, maximum: INT32_MAX }),
  temperature: nullable({ type: "number", minimum: 0, maximum: 2 }),
  // llama.cpp's sampler takes top_p down to 1e-9
  top_p: nullable({ type: "number", minimum: 1e-9, maximum: 1 }),
  top_k: nullable({ type: "integer", minimum: 0, maximum: INT32_MAX }),
  seed: nullable({ type: "integer", minimum: 0, maximum: Number.MAX_SAFE_INTEGER }),
  stop: nullable({
    anyOf: [
      { type: "string", minLength: 1 },
      { type: "array", items: { type: "string", minLength: 1 }, maxItems: 16 },
    ],
  }),
  n: nullable({ type: "integer", minimum: 1 }),
  stream: nullable({ type: "boolean" }),
  stream_options: nullable({
    type: "object",
    properties: { include_usage: { type: "boolean" }, continuous_usage_stats: { type: "boolean" } },
    additionalProperties: false,
  }),
  // accepted and ignored: they change nothing in the output
  user: { type: "string" },
  store: { type: "boolean" },
  metadata: nullable({ type: "object" }),
  service_tier: nullable({ type: "string" }),
  // checked in requests.ts: only their neutral values are accepted
  presence_penalty: nullable({ type: "number" }),
  frequency_penalty: nullable({ type: "number" }),
  // minedraft's extension: return the generated token ids
  return_tokens: { type: "boolean" },
} as const;

const textPart = {
  type: "object",
  required: ["type", "text"],
  properties: { type: { type: "string", enum: ["text"] }, text: { type: "string" } },
  additionalProperties: false,
} as const;

export const chatBodySchema = {
  type: "object",
  required: ["messages"],
  properties: {
    ...samplingProperties,
    max_completion_tokens: nullable({ type: "integer", minimum: 1, maximum: INT32_MAX }),
    parallel_tool_calls: { type: "boolean" },
    messages: {
      type: "array",
      minItems: 1,
      items: {
        type: "object",
        required: ["role", "content"],
        properties: {
          role: { type: "string", enum: ["system", "developer", "user", "assistant"] },
          content: { anyOf: [{ type: "string" }, { type: "array", items: textPart }] },
          name: { type: "string" },
        },
        additionalProperties: false,
      },
    },
  },
  additionalProperties: false,
} as const;

export const completionBodySchema = {
  type: "object",
  required: ["prompt"],
  properties: {
    ...samplingProperties,
    // no minLength on the texts: Ajv counts a string's characters one by one (a MiB holds the event
    // loop for ms); an empty prompt is BOS alone, as OpenAI allows
    prompt: {
      anyOf: [
        { type: "string" },
        { type: "array", minItems: 1, maxItems: 64, items: { type: "string" } },
        { type: "array", minItems: 1, items: { type: "integer", minimum: 0 } },
        {
          type: "array",
          minItems: 1,
          maxItems: 64,
          items: { type: "array", minItems: 1, items: { type: "integer", minimum: 0 } },
        },
      ],
    },
  },
  additionalProperties: false,
} as const;

export const tokenizeBodySchema = {
  type: "object",
  required: ["content"],
  properties: {
    content: { type: "string" },
    add_special: { type: "boolean" },
    with_pieces: { type: "boolean" },
    model: { type: "string" },
  },
  additionalProperties: false,
} as const;

export const detokenizeBodySchema = {
  type: "object",
  required: ["tokens"],
  properties: { tokens: { type: "array", items: { type: "integer" } }, model: { type: "string" } },
  additionalProperties: false,
} as const;

/** What a field with several accepted shapes (anyOf) accepts, for the 400 when none matches. */
export const FIELD_SHAPES: Record<string, string> = {
  prompt: "a string, an array of strings, an array of token ids, or an array of non-empty arrays of token ids",
  stop: "a non-empty string or an array of at most 16 non-empty strings",
  content: 'a string or an array of text parts ({"type": "text", "text": ...})',
};

export interface SamplingBody {
  model?: string;
  max_tokens?: number | null;
  temperature?: number | null;
  top_p?: number | null;
  top_k?: number | null;
  seed?: number | null;
  stop?: string | string[] | null;
  n?: number | null;
  stream?: boolean | null;
  stream_options?: { include_usage?: boolean; continuous_usage_stats?: boolean } | null;
  presence_penalty?: number | null;
  frequency_penalty?: number | null;
  return_tokens?: boolean;
}

export interface ChatBody extends SamplingBody {
  messages: {
    role: "system" | "developer" | "user" | "assistant";
    content: string | { type: "text"; text: string }[];
    name?: string;
  }[];
  max_completion_tokens?: number | null;
}

export interface CompletionBody extends SamplingBody {
  prompt: string | string[] | number[] | number[][];
}

export interface TokenizeBody {
  content: string;
  add_special?: boolean;
  with_pieces?: boolean;
}

export interface DetokenizeBody {
  tokens: number[];
}
