// Ctrl-C handling: the first SIGINT aborts the running work through an AbortSignal so the command can
// abort its requests and close the engine; a second SIGINT exits at once.
import { setMaxListeners } from "node:events";
import { EXIT_INTERRUPTED } from "./exit-codes.js";

let interrupted = false;

export function wasInterrupted(): boolean {
  return interrupted;
}

export interface InterruptTrap {
  signal: AbortSignal;
  release(): void;
}

/** Routes SIGINT to an AbortSignal until release() is called. */
export function trapInterrupt(): InterruptTrap {
  const controller = new AbortController();
  // every in-flight request listens on this one signal: hundreds are normal, not a leak
  setMaxListeners(0, controller.signal);
  const onSigint = () => {
    if (interrupted) process.exit(EXIT_INTERRUPTED);
    interrupted = true;
    controller.abort(new Error("interrupted"));
  };
  process.on("SIGINT", onSigint);
  return { signal: controller.signal, release: () => process.off("SIGINT", onSigint) };
}

/** Runs `work` with SIGINT routed to its signal. */
export async function withInterrupt<T>(work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const trap = trapInterrupt();
  try {
    return await work(trap.signal);
  } finally {
    trap.release();
  }
}

/** Settles with `work`, or rejects as soon as `signal` fires (the work itself cannot be cancelled). */
export function untilAborted<T>(work: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return work;
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    if (signal.aborted) {
      work.catch(() => {}); // nobody waits for it any more
      return onAbort();
    }
    signal.addEventListener("abort", onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}
