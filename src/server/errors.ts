// OpenAI-shaped errors: {"error": {"message", "type", "param", "code"}} with the HTTP status that goes
// with them. Route code throws ApiError; Fastify's own errors (bad JSON, schema, body size) are mapped here.
import type { FastifyError } from "fastify";
import { optionOf } from "../common/validate.js";
import { FIELD_SHAPES } from "./schemas.js";

export interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: string | number | null };
}

/** Error types by status, as llama-server and OpenAI name them. */
const TYPES: Record<number, string> = {
  400: "invalid_request_error",
  401: "authentication_error",
  404: "not_found_error",
  413: "invalid_request_error",
  415: "invalid_request_error",
  429: "rate_limit_error",
  503: "unavailable_error",
};

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly param: string | null = null,
    readonly code: string | null = null,
    /** response headers, e.g. Retry-After on a 429 */
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = "ApiError";
  }

  get body(): ErrorBody {
    return errorBody(this.status, this.message, this.param, this.code);
  }
}

export function errorBody(
  status: number,
  message: string,
  param: string | null = null,
  code: string | number | null = null,
): ErrorBody {
  return {
    error: { message, type: TYPES[status] ?? (status >= 500 ? "server_error" : "invalid_request_error"), param, code },
  };
}

/** An unknown or unsupported field: 400 naming it. */
export function badField(param: string, message: string): ApiError {
  return new ApiError(400, message, param, "invalid_request_error");
}

/** Status and OpenAI body of any error a route or Fastify raised. */
/** The request field of an engine option (generate()'s names → OpenAI's). */
const FIELD_OF_OPTION: Record<string, string> = {
  maxTokens: "max_tokens",
  topP: "top_p",
  topK: "top_k",
  temperature: "temperature",
  seed: "seed",
  stop: "stop",
};

export function toErrorResponse(error: unknown): { status: number; body: ErrorBody; headers: Record<string, string> } {
  if (error instanceof ApiError) return { status: error.status, body: error.body, headers: error.headers };
  // an option the engine refused at the boundary: the client's mistake, named by its field
  const option = optionOf(error);
  if (option !== undefined) {
    const field = FIELD_OF_OPTION[option] ?? option;
    const message = (error as Error).message.replace(option, field);
    return { status: 400, body: errorBody(400, message, field, "invalid_request_error"), headers: {} };
  }
  const e = error as Partial<FastifyError> & { validation?: ValidationIssue[] };
  if (e.validation && e.validation.length > 0) {
    const { message, param } = describeValidation(e.validation);
    return { status: 400, body: errorBody(400, message, param, "invalid_request_error"), headers: {} };
  }
  const status = typeof e.statusCode === "number" && e.statusCode >= 400 && e.statusCode < 600 ? e.statusCode : 500;
  if (status === 413)
    return {
      status,
      body: errorBody(413, "the request body is larger than the server's limit", null, "request_too_large"),
      headers: {},
    };
  // a 4xx from Fastify (bad JSON, wrong content type) says what was wrong; a 5xx says no internals
  const message = status < 500 ? String(e.message ?? "bad request") : `internal error: ${String(e.message ?? error)}`;
  return {
    status,
    body: errorBody(status, message, null, status < 500 ? "invalid_request_error" : "internal_error"),
    headers: {},
  };
}

interface ValidationIssue {
  keyword: string;
  instancePath: string;
  message?: string;
  params: Record<string, unknown>;
}

/**
 * The first schema violation as the user's field name and a sentence. Where a field has several
 * accepted shapes and the value has none of their types, the sentence lists the shapes (Ajv's first
 * issue would name only the first one's type).
 */
function describeValidation(issues: readonly ValidationIssue[]): { message: string; param: string | null } {
  const issue = issues[0]!;
  const anyOf = issues.find((i) => i.keyword === "anyOf" && i.instancePath === issue.instancePath);
  const field = issue.instancePath.split("/").at(-1) ?? "";
  if (issue.keyword === "type" && anyOf && FIELD_SHAPES[field])
    return {
      message: `${pathOf(issue.instancePath)} must be ${FIELD_SHAPES[field]}`,
      param: pathOf(issue.instancePath),
    };
  if (issue.instancePath === "" && issue.keyword === "type")
    return { message: "the request body must be a JSON object", param: null };
  if (issue.keyword === "additionalProperties") {
    const name = String(issue.params.additionalProperty);
    const where = issue.instancePath ? `${pathOf(issue.instancePath)}.` : "";
    return { message: `Unrecognized request argument supplied: ${where}${name}`, param: `${where}${name}` };
  }
  const param = issue.instancePath
    ? pathOf(issue.instancePath)
    : issue.keyword === "required"
      ? String(issue.params.missingProperty)
      : null;
  if (issue.keyword === "required")
    return { message: `'${String(issue.params.missingProperty)}' is a required property`, param };
  if (issue.keyword === "enum")
    return {
      message:
        `${param} must be one of ` +
        `${(issue.params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(", ")}`,
      param,
    };
  return { message: `${param ?? "the body"} ${issue.message ?? "is invalid"}`, param };
}

/** "/messages/0/content" → "messages[0].content" */
function pathOf(instancePath: string): string {
  return instancePath
    .slice(1)
    .split("/")
    .map((part, i) => (/^\d+$/.test(part) ? `[${part}]` : i === 0 ? part : `.${part}`))
    .join("");
}
