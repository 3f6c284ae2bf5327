// createServer(): an OpenAI-compatible HTTP server over one Engine, on Fastify. A thin shell over the
// public engine API: each HTTP request becomes engine requests that batch with every other client's.
import { isIP } from "node:net";
import { fastifySSE } from "@fastify/sse";
import Fastify, { type FastifyInstance, type FastifyServerOptions } from "fastify";
import type { Engine } from "../engine/index.js";
import { ApiError, toErrorResponse } from "./errors.js";
import { dropNeutralUnsupported } from "./requests.js";
import { abortInflight, generationRoutes } from "./routes/generate.js";
import { infoRoutes } from "./routes/info.js";
import { keyMatches, ServerState } from "./state.js";

export interface ServerOptions {
  /** the name clients give as `model` and GET /v1/models lists (default "minedraft") */
  modelName?: string;
  /** require `Authorization: Bearer <apiKey>` on every route but /health */
  apiKey?: string;
  /** requests that may wait beyond the engine's batch capacity before new ones get a 429 (default 64) */
  maxQueue?: number;
  /**
   * chat template for /v1/chat/completions: a llama.cpp built-in name ("chatml", "llama3", ...) or a
   * template text. Default: the model's own; a model without one gets "chatml", as llama-server does.
   */
  chatTemplate?: string;
  /** max_tokens for requests that give none (default: the rest of the context) */
  defaultMaxTokens?: number;
  /** seed for requests that give none (default: a random one each) */
  defaultSeed?: number;
  /** largest request body in bytes (default 1 MiB); beyond it, a 413 */
  bodyLimit?: number;
  /** Fastify's logger option (default: off) */
  logger?: FastifyServerOptions["logger"];
}

export interface ListenOptions {
  /** default 127.0.0.1 (loopback); another address without an apiKey gets a warning */
  host?: string;
  /** default 8080; 0 picks a free port */
  port?: number;
}

/** Where the chat template of /v1/chat/completions comes from. */
export type ChatTemplateSource = "option" | "model" | "chatml fallback";

export interface MinedraftServer {
  /** the Fastify instance: add routes or hooks before listen(), or inject() requests in tests */
  readonly app: FastifyInstance;
  /** resolves with the engine once it is loaded (/health answers 200 from then on) */
  ready(): Promise<Engine>;
  /** set once ready(): where the chat template comes from */
  readonly chatTemplateSource: ChatTemplateSource | undefined;
  /** starts listening; resolves with the server's URL */
  listen(options?: ListenOptions): Promise<string>;
  /**
   * Stops accepting requests (/health and new requests answer 503 at once), lets those in flight finish for
   * up to `graceMs` (default 30 s), then aborts the rest and closes the listener. The engine stays open: its
   * owner closes it.
   */
  close(options?: { graceMs?: number }): Promise<void>;
}

const LOOPBACK = new Set(["localhost", "127.0.0.1", "::1"]);

export function isLoopback(host: string): boolean {
  return LOOPBACK.has(host) || (isIP(host) === 4 && host.startsWith("127."));
}

/** `engine`: a loaded engine, or the promise of one (the server answers /health with 503 until it resolves). */
export function createServer(engine: Engine | Promise<Engine>, options: ServerOptions = {}): MinedraftServer {
  const maxQueue = options.maxQueue ?? 64;
  if (!Number.isInteger(maxQueue) || maxQueue < 0)
    throw new RangeError(`maxQueue must be an integer >= 0, got ${String(maxQueue)}`);
  const defaultMaxTokens = options.defaultMaxTokens;
  if (defaultMaxTokens !== undefined && (!Number.isInteger(defaultMaxTokens) || defaultMaxTokens < 1))
    throw new RangeError(`defaultMaxTokens must be an integer >= 1, got ${String(defaultMaxTokens)}`);
  if (options.apiKey !== undefined && (typeof options.apiKey !== "string" || options.apiKey === ""))
    throw new TypeError("apiKey must be a non-empty string");
  const startedAt = Math.floor(Date.now() / 1000);

  const state = new ServerState({
    modelName: options.modelName ?? "minedraft",
    chatTemplate: options.chatTemplate,
    defaultMaxTokens,
    defaultSeed: options.defaultSeed,
    maxQueue,
  });
  let chatTemplateSource: ChatTemplateSource | undefined;
  const loaded = Promise.resolve(engine).then(
    (e) => {
      chatTemplateSource = options.chatTemplate !== undefined ? "option" : e.chatTemplate ? "model" : "chatml fallback";
      if (chatTemplateSource === "chatml fallback") state.serving.chatTemplate = "chatml";
      state.engine = e;
      return e;
    },
    (error: unknown) => {
      state.loadError = error;
      throw error;
    },
  );
  loaded.catch(() => {}); // reported through ready() and /health

  const app = Fastify({
    logger: options.logger ?? false,
    bodyLimit: options.bodyLimit ?? 1024 * 1024,
    // the drain answers new requests itself (OpenAI-shaped 503s, /health included)
    return503OnClosing: false,
    // every field is checked as sent: no coercion of "4" to 4, no silent removal of unknown fields
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: false, allErrors: false } },
  });
  void app.register(fastifySSE, { heartbeatInterval: 15_000 });

  app.addHook("onRequest", async (request, reply) => {
    const path = request.url.split("?")[0];
    if (path === "/health") return;
    // /metrics stays open while draining: Prometheus keeps scraping the replica until it is gone
    if (state.draining && path !== "/metrics") {
      reply.header("connection", "close");
      throw new ApiError(503, "the server is shutting down", null, "unavailable");
    }
    if (options.apiKey !== undefined && !keyMatches(request.headers.authorization, options.apiKey)) {
      throw new ApiError(
        401,
        "Incorrect or missing API key: send it as 'Authorization: Bearer <key>'",
        null,
        "invalid_api_key",
      );
    }
  });
  // while draining, a connection whose last request just finished is closed instead of kept alive
  // (an idle keep-alive connection would hold app.close() until the client drops it)
  app.addHook("onResponse", async () => {
    if (state.draining) setImmediate(() => app.server.closeIdleConnections());
  });
  // OpenAI fields we do not implement are refused by name before the schema runs
  app.addHook("preValidation", async (request) => {
    if (request.method === "POST") dropNeutralUnsupported(request.body);
  });
  app.setErrorHandler(async (error, request, reply) => {
    const { status, body, headers } = toErrorResponse(error);
    state.metrics.reject(status);
    if (status >= 500) request.log.error({ err: error }, "request failed");
    return reply.code(status).headers(headers).send(body);
  });

  void app.register(async (scope) => {
    generationRoutes(scope, state);
    infoRoutes(scope, state, startedAt);
  });

  let closing: Promise<void> | undefined;
  return {
    app,
    ready: () => loaded,
    get chatTemplateSource() {
      return chatTemplateSource;
    },
    async listen(listen: ListenOptions = {}) {
      const host = listen.host ?? "127.0.0.1";
      if (!isLoopback(host) && options.apiKey === undefined) {
        process.emitWarning(
          `minedraft serve listens on ${host} without an API key: anyone who reaches this address can use the ` +
            "models (set apiKey / --api-key)",
          "MinedraftSecurityWarning",
        );
      }
      return app.listen({ host, port: listen.port ?? 8080 });
    },
    close({ graceMs = 30_000 } = {}) {
      closing ??= (async () => {
        state.draining = true;
        const timer = setTimeout(() => abortInflight(state), graceMs);
        try {
          // the listener stays open until the requests in flight are done, so that a load balancer's health
          // checks and new requests get a 503 (retryable elsewhere) rather than a refused connection
          await state.idle();
          await app.close();
        } finally {
          clearTimeout(timer);
        }
      })();
      return closing;
    },
  };
}
