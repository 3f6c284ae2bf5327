// Runs the engine requests of one HTTP request (one per prompt, all submitted at once so they batch
// with every other client's) and yields their text pieces and results in the order they come.
import { type Engine, type GenerateResult, isAbortError } from "../engine/index.js";
import type { GenerationPlan } from "./requests.js";

export type GenerationEvent =
  | { index: number; piece: string; result?: undefined }
  | { index: number; result: GenerateResult; piece?: undefined };

/** What became of each engine request: a result, or aborted (its client left, or the drain ran out). */
export interface GenerationOutcomes {
  result(r: GenerateResult): void;
  aborted(): void;
}

/**
 * Submits every prompt at once (before returning: admission counted them in engine.load()), then
 * yields each prompt's pieces as they are accepted and its result when it ends. Stops at the first
 * failure (rethrown); stopping early (a return, a throw, `signal`) aborts whatever is still running.
 */
export function runPlan(
  engine: Engine,
  plan: GenerationPlan,
  signal: AbortSignal,
  outcomes: GenerationOutcomes,
): AsyncGenerator<GenerationEvent, void, undefined> {
  const controller = new AbortController();
  const forward = () => controller.abort(signal.reason);
  if (signal.aborted) forward();
  else signal.addEventListener("abort", forward, { once: true });

  const events: GenerationEvent[] = [];
  let wake: (() => void) | undefined;
  const push = (e: GenerationEvent) => {
    events.push(e);
    wake?.();
    wake = undefined;
  };
  let failure: { error: unknown } | undefined;
  let open = plan.prompts.length;
  plan.prompts.forEach((tokens, index) => {
    engine
      .generate(tokens, {
        ...plan.options[index],
        signal: controller.signal,
        onText: (piece) => push({ index, piece }),
      })
      .then(
        (result) => {
          outcomes.result(result);
          open--;
          push({ index, result });
        },
        (error: unknown) => {
          if (isAbortError(error)) outcomes.aborted();
          failure ??= { error };
          wake?.();
        },
      );
  });
  return (async function* () {
    try {
      for (;;) {
        if (events.length > 0) yield events.shift()!;
        else if (failure) throw failure.error;
        else if (open === 0) return;
        else await new Promise<void>((resolve) => (wake = resolve));
      }
    } finally {
      signal.removeEventListener("abort", forward);
      // a consumer that stopped early (or a failed sibling) leaves nothing running
      if (open > 0) controller.abort();
    }
  })();
}
