// What the routes share: the engine (once loaded), the serving options, the metrics, and the
// requests in flight (so a drain can abort what outlives its grace period).
import { createHash, timingSafeEqual } from "node:crypto";
import type { Engine } from "../engine/index.js";
import { ApiError } from "./errors.js";
import { ServerMetrics } from "./metrics.js";

export interface ServingOptions {
  modelName: string;
  /** template name or text for chat requests; undefined: the model's own */
  chatTemplate: string | undefined;
  defaultMaxTokens: number | undefined;
  /** seed of requests that give none (request i of a prompt array: seed + i); undefined: random */
  defaultSeed: number | undefined;
  /** requests allowed to wait beyond the engine's batch capacity */
  maxQueue: number;
}

export class ServerState {
  engine: Engine | null = null;
  loadError: unknown = undefined;
  draining = false;
  /** one controller per HTTP request that is generating */
  readonly inflight = new Set<AbortController>();
  readonly metrics = new ServerMetrics(() => this.engine);
  private idleWaiters: (() => void)[] = [];

  constructor(readonly serving: ServingOptions) {}

  /** A request's generation ended (answered, failed or aborted). */
  untrack(controller: AbortController): void {
    this.inflight.delete(controller);
    if (this.inflight.size === 0) for (const resolve of this.idleWaiters.splice(0)) resolve();
  }

  /** Resolves once no request is generating. */
  idle(): Promise<void> {
    if (this.inflight.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** The engine, or a 503 while it loads (or after it failed to). */
  ready(): Engine {
    if (this.engine) return this.engine;
    throw new ApiError(
      503,
      this.loadError === undefined ? "Loading model" : "the model failed to load",
      null,
      "unavailable",
    );
  }

  /** Admission control: a 429 when `n` more requests would wait beyond the queue limit. */
  admit(engine: Engine, n: number): void {
    if (this.draining) throw new ApiError(503, "the server is shutting down", null, "unavailable");
    const { running, queued, capacity } = engine.load();
    if (running + queued + n > capacity + this.serving.maxQueue) {
      throw new ApiError(
        429,
        `the server is at capacity: ${running} requests running, ${queued} waiting (queue limit ` +
          `${this.serving.maxQueue}); retry later`,
        null,
        "rate_limit_exceeded",
        { "retry-after": "1" },
      );
    }
  }
}

/** `Authorization: Bearer <key>` check in constant time (hashes of equal length, whatever the input). */
export function keyMatches(header: string | undefined, key: string): boolean {
  const given = header?.startsWith("Bearer ") ? header.slice(7).trim() : "";
  const digest = (s: string) => createHash("sha256").update(s).digest();
  return timingSafeEqual(digest(given), digest(key)) && given.length > 0;
}
