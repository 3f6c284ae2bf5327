// Prompt screening for serving comparisons: llama-server fails a request whose finished text is not
// valid UTF-8 (its output parser, common/chat.cpp), which random synthetic output often is (5 of the
// 12 built-in prompts at 48 tokens on the tiny pair). Its failed requests then drop out of its latency
// figures and free its slots early, so the systems would not serve the same work. Screened, every
// system gets only prompts whose greedy continuation is text, and completes all of them.

/** What screening needs of an engine: greedy generation of the prompts' text. */
export interface ScreeningEngine {
  generate(prompt: string, options: { maxTokens: number; temperature: number }): Promise<{ text: string }>;
}

export interface ScreenResult {
  /** the distinct prompts kept, in their first order */
  kept: string[];
  /** the distinct prompts whose greedy text is not valid UTF-8 */
  dropped: string[];
}

/** U+FFFD: what the detokenizer writes for bytes that are not valid UTF-8 */
const REPLACEMENT = "\uFFFD";

/**
 * Decodes each distinct prompt greedily for maxTokens (target alone: the output every lossless mode and
 * llama-server's greedy decoding give) and splits them by whether that text is valid UTF-8.
 */
export async function screenPrompts(
  engine: ScreeningEngine,
  prompts: readonly string[],
  maxTokens: number,
): Promise<ScreenResult> {
  const distinct = [...new Set(prompts)];
  const texts = await Promise.all(distinct.map((p) => engine.generate(p, { maxTokens, temperature: 0 })));
  const kept: string[] = [];
  const dropped: string[] = [];
  distinct.forEach((p, i) => (texts[i]!.text.includes(REPLACEMENT) ? dropped : kept).push(p));
  return { kept, dropped };
}
