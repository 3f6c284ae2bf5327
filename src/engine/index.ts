// Public surface of the engine.
export { Engine, type ChatMessage, type ChatOptions, type EngineLoad } from "./engine.js";
export { AbortError, isAbortError } from "./errors.js";
export { OptionRangeError, OptionTypeError, optionOf } from "../common/validate.js";
export { ENGINE_DEFAULTS, MAX_DRAFT_TOKENS, type ResolvedEngineOptions } from "./options.js";
export { acceptGreedy, acceptStochastic, acceptDrafts, type AcceptanceResult } from "./acceptance.js";
export { Rng } from "./rng.js";
export type * from "./types.js";
export type * from "./backend.js";
