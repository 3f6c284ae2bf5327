// POST /v1/chat/completions and POST /v1/completions: body → plan (requests.ts) → admission → engine
// requests → one JSON body, or Server-Sent Events as tokens are accepted. A connection that closes
// before its response is complete aborts that request's engine requests, and nothing else.
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { isAbortError, type GenerateResult, type Mode } from "../../engine/index.js";
import { ApiError, toErrorResponse } from "../errors.js";
import { runPlan, type GenerationEvent } from "../generation.js";
import { planChat, planCompletion, type GenerationPlan, type PlanContext } from "../requests.js";
import { ResponseShape, type Route } from "../responses.js";
import { chatBodySchema, completionBodySchema, type ChatBody, type CompletionBody } from "../schemas.js";
import type { ServerState } from "../state.js";

/** Why a request's engine work was aborted: its client left, or the server's drain ran out of time. */
const CLIENT_GONE = "client disconnected";
const DRAIN_TIMEOUT = "the server shut down before the request finished";

export function generationRoutes(app: FastifyInstance, state: ServerState): void {
  const route =
    <B>(kind: Route, plan: (body: B, ctx: PlanContext) => Promise<GenerationPlan>) =>
    async (request: FastifyRequest, reply: FastifyReply) => {
      const engine = state.ready();
      const p = await plan(request.body as B, { engine, ...state.serving });
      state.admit(engine, p.prompts.length);
      const controller = new AbortController();
      state.inflight.add(controller);
      reply.raw.on("close", () => {
        if (!reply.raw.writableFinished) controller.abort(new Error(CLIENT_GONE));
      });
      const shape = new ResponseShape(kind, state.serving.modelName, p.returnTokens);
      const events = runPlan(engine, p, controller.signal, {
        result: (r) => state.metrics.record(r),
        aborted: () => state.metrics.abort(),
      });
      try {
        if (p.stream)
          return await reply.sse.send(sseMessages(shape, p, events, engine.options.mode, controller.signal));
        const results: GenerateResult[] = [];
        for await (const e of events) if (e.result) results[e.index] = e.result;
        return shape.body(results, engine.options.mode);
      } catch (error) {
        const why = reasonOf(controller.signal);
        // nobody is left to answer
        if (why === CLIENT_GONE) return reply.hijack();
        if (isAbortError(error) && why === DRAIN_TIMEOUT) throw new ApiError(503, DRAIN_TIMEOUT, null, "unavailable");
        throw error;
      } finally {
        state.untrack(controller);
      }
    };
  app.post(
    "/v1/chat/completions",
    { schema: { body: chatBodySchema }, sse: "manual" },
    route<ChatBody>("chat", planChat),
  );
  app.post(
    "/v1/completions",
    { schema: { body: completionBodySchema }, sse: "manual" },
    route<CompletionBody>("completion", planCompletion),
  );
}

/** Aborts every request in flight (a drain whose grace period ran out). */
export function abortInflight(state: ServerState): void {
  for (const c of state.inflight) c.abort(new Error(DRAIN_TIMEOUT));
}

function reasonOf(signal: AbortSignal): string | undefined {
  return signal.aborted && signal.reason instanceof Error ? signal.reason.message : undefined;
}

/**
 * The SSE messages of one request: (chat) each choice's role chunk, text chunks, each choice's finish
 * chunk with its statistics, the usage chunk when asked, `[DONE]`. A failure after the headers went
 * out is sent as an error event (OpenAI's clients raise it), unless the client is gone.
 */
async function* sseMessages(
  shape: ResponseShape,
  plan: GenerationPlan,
  events: AsyncGenerator<GenerationEvent>,
  mode: Mode,
  signal: AbortSignal,
) {
  const results: GenerateResult[] = [];
  if (shape.route === "chat") for (let i = 0; i < plan.prompts.length; i++) yield { data: shape.roleChunk(i) };
  try {
    for await (const e of events) {
      if (e.result) {
        results[e.index] = e.result;
        yield { data: shape.finishChunk(e.index, e.result, mode) };
      } else yield { data: shape.pieceChunk(e.index, e.piece) };
    }
  } catch (error) {
    if (reasonOf(signal) === CLIENT_GONE) return;
    const failure = reasonOf(signal) === DRAIN_TIMEOUT ? new ApiError(503, DRAIN_TIMEOUT, null, "unavailable") : error;
    yield { data: toErrorResponse(failure).body };
    return;
  }
  if (plan.includeUsage) yield { data: shape.usageChunk(results) };
  yield "[DONE]";
}
