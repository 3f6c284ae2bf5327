// Errors the engine raises on its own account.

/** A request was aborted (its signal fired, or the engine closed). */
export class AbortError extends Error {
  override name = "AbortError";
  constructor(message = "The request was aborted", options?: { cause?: unknown }) {
    super(message, options);
  }
}

export function isAbortError(error: unknown): boolean {
  return error instanceof Error && error.name === "AbortError";
}
