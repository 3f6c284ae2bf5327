// The routes around generation: GET /health, GET /v1/models, GET /metrics, POST /tokenize, POST /detokenize.
import type { FastifyInstance } from "fastify";
import { ApiError, badField, errorBody } from "../errors.js";
import { detokenizeBodySchema, tokenizeBodySchema, type DetokenizeBody, type TokenizeBody } from "../schemas.js";
import type { ServerState } from "../state.js";

export function infoRoutes(app: FastifyInstance, state: ServerState, startedAt: number): void {
  // 503 while the model loads and while draining, so a load balancer sends nothing new
  app.get("/health", async (_request, reply) => {
    if (state.engine && !state.draining) return { status: "ok" };
    const message = state.draining
      ? "Shutting down"
      : state.loadError !== undefined
        ? "the model failed to load"
        : "Loading model";
    return reply.code(503).send(errorBody(503, message, null, "unavailable"));
  });

  app.get("/v1/models", async () => ({
    object: "list",
    data: [{ id: state.serving.modelName, object: "model", created: startedAt, owned_by: "minedraft" }],
  }));

  app.get("/metrics", async (_request, reply) => {
    reply.type(state.metrics.registry.contentType);
    return state.metrics.registry.metrics();
  });

  // llama-server's shapes: { content, add_special, with_pieces } → { tokens }; { tokens } → { content }
  app.post("/tokenize", { schema: { body: tokenizeBodySchema } }, async (request) => {
    const engine = state.ready();
    const body = request.body as TokenizeBody;
    const tokens = await engine.tokenizeAsync(body.content, body.add_special === true);
    if (!body.with_pieces) return { tokens };
    return { tokens: tokens.map((id) => ({ id, piece: engine.detokenize([id]) })) };
  });

  app.post("/detokenize", { schema: { body: detokenizeBodySchema } }, async (request) => {
    const engine = state.ready();
    try {
      return { content: engine.detokenize((request.body as DetokenizeBody).tokens) };
    } catch (error) {
      throw badField("tokens", error instanceof Error ? error.message : String(error));
    }
  });

  app.setNotFoundHandler(async (request) => {
    throw new ApiError(404, `Not found: ${request.method} ${request.url.split("?")[0]}`, null, "not_found");
  });
}
