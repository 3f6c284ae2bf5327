// The serving load generator of `minedraft bench serve`: N prompts sent to an OpenAI-compatible server
// with Poisson arrivals at a rate (or all at once), each a streaming /v1/completions request; per
// request the time to first token, the gaps between streamed chunks and the end-to-end latency, and
// the summary vLLM's `bench serve` reports (mean, median, p99). Bounded in count and time.
import { Rng } from "../engine/rng.js";

export interface ServeLoadOptions {
  /** the server's base URL, e.g. http://127.0.0.1:8080 */
  url: string;
  model: string;
  prompts: readonly string[];
  /** requests per second (Poisson arrivals); Infinity: all at once */
  rate: number;
  maxTokens: number;
  /** arrivals and request seeds (prompt i: seed + i) */
  seed: number;
  apiKey?: string;
  /** the whole run stops (aborting what is left) after this long */
  timeoutMs: number;
  /** called as each request ends */
  onRequestDone?: (done: number, total: number) => void;
}

export interface RequestRecord {
  /** ms since the run started */
  sentAt: number;
  /** null when no token arrived */
  ttftMs: number | null;
  e2eMs: number;
  /** gaps between consecutive streamed text chunks, ms */
  itlMs: number[];
  outputTokens: number;
  promptTokens: number;
  /** set when the request failed (status, error event, timeout) */
  error?: string;
}

/** Arrival times (ms from the start) of n requests at `rate` per second: exponential gaps from a seeded generator. */
export function poissonArrivals(n: number, rate: number, seed: number): number[] {
  if (!(rate > 0)) throw new RangeError(`rate must be > 0, got ${rate}`);
  if (rate === Infinity) return new Array<number>(n).fill(0);
  const rng = new Rng(seed);
  const out: number[] = [];
  let t = 0;
  for (let i = 0; i < n; i++) {
    out.push(t);
    t += (-Math.log(1 - rng.uniform()) / rate) * 1000;
  }
  return out;
}

export async function runServeLoad(o: ServeLoadOptions): Promise<{ records: RequestRecord[]; durationMs: number }> {
  const arrivals = poissonArrivals(o.prompts.length, o.rate, o.seed);
  const stop = new AbortController();
  const timer = setTimeout(() => stop.abort(new Error(`the run took longer than ${o.timeoutMs} ms`)), o.timeoutMs);
  const start = performance.now();
  let done = 0;
  try {
    const records = await Promise.all(
      o.prompts.map(async (prompt, i) => {
        const wait = arrivals[i]! - (performance.now() - start);
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        const record = await oneRequest(o, prompt, o.seed + i, start, stop.signal);
        o.onRequestDone?.(++done, o.prompts.length);
        return record;
      }),
    );
    return { records, durationMs: performance.now() - start };
  } finally {
    clearTimeout(timer);
  }
}

async function oneRequest(o: ServeLoadOptions, prompt: string, seed: number, start: number, signal: AbortSignal): Promise<RequestRecord> {
  const sentAt = performance.now() - start;
  const t0 = performance.now();
  const record: RequestRecord = { sentAt, ttftMs: null, e2eMs: 0, itlMs: [], outputTokens: 0, promptTokens: 0 };
  try {
    const response = await fetch(`${o.url}/v1/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", ...(o.apiKey ? { authorization: `Bearer ${o.apiKey}` } : {}) },
      body: JSON.stringify({ model: o.model, prompt, max_tokens: o.maxTokens, temperature: 0, seed, stream: true, stream_options: { include_usage: true } }),
      signal,
    });
    if (response.status !== 200) {
      record.error = `HTTP ${response.status}: ${(await response.text()).slice(0, 200)}`;
      return record;
    }
    const reader = response.body!.getReader();
    const decoder = new TextDecoder();
    let buffered = "";
    let last = 0;
    let chunks = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      buffered += decoder.decode(value, { stream: true });
      let cut: number;
      while ((cut = buffered.indexOf("\n\n")) >= 0) {
        const event = buffered.slice(0, cut);
        buffered = buffered.slice(cut + 2);
        if (!event.startsWith("data: ") || event === "data: [DONE]") continue;
        const chunk = JSON.parse(event.slice(6)) as { choices?: { text?: string }[]; usage?: { prompt_tokens: number; completion_tokens: number }; error?: { message: string } };
        if (chunk.error) record.error = chunk.error.message;
        if (chunk.usage) {
          record.outputTokens = chunk.usage.completion_tokens;
          record.promptTokens = chunk.usage.prompt_tokens;
        }
        if (chunk.choices?.[0]?.text) {
          chunks++;
          const now = performance.now();
          if (record.ttftMs === null) record.ttftMs = now - t0;
          else record.itlMs.push(now - last);
          last = now;
        }
      }
    }
    // a server that sends no usage chunk streams one token per chunk (llama-server does)
    if (record.outputTokens === 0) record.outputTokens = chunks;
  } catch (error) {
    record.error = error instanceof Error ? error.message : String(error);
  }
  record.e2eMs = performance.now() - t0;
  return record;
}

export interface Distribution {
  mean: number;
  median: number;
  p99: number;
}

export interface ServeLoadSummary {
  completed: number;
  failed: number;
  durationMs: number;
  requestsPerSecond: number;
  outputTokensPerSecond: number;
  ttftMs: Distribution;
  /** per request: (e2e - ttft) / (output tokens - 1) */
  tpotMs: Distribution;
  /** every gap between streamed chunks */
  itlMs: Distribution;
  e2eMs: Distribution;
  /** MineDraft's amortized E2EL: (last end - first send) / completed requests */
  amortizedE2eMs: number;
  /** the first few failures' messages */
  errors: string[];
}

function distribution(xs: readonly number[]): Distribution {
  if (xs.length === 0) return { mean: 0, median: 0, p99: 0 };
  const s = [...xs].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]!;
  return { mean: s.reduce((a, b) => a + b, 0) / s.length, median: s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2, p99: at(0.99) };
}

export function summarizeServeLoad(records: readonly RequestRecord[], durationMs: number): ServeLoadSummary {
  const ok = records.filter((r) => !r.error);
  const ends = ok.map((r) => r.sentAt + r.e2eMs);
  const firstSent = ok.length > 0 ? Math.min(...ok.map((r) => r.sentAt)) : 0;
  return {
    completed: ok.length,
    failed: records.length - ok.length,
    durationMs,
    requestsPerSecond: durationMs > 0 ? ok.length / (durationMs / 1000) : 0,
    outputTokensPerSecond: durationMs > 0 ? ok.reduce((n, r) => n + r.outputTokens, 0) / (durationMs / 1000) : 0,
    ttftMs: distribution(ok.map((r) => r.ttftMs ?? r.e2eMs)),
    tpotMs: distribution(ok.filter((r) => r.outputTokens > 1 && r.ttftMs !== null).map((r) => (r.e2eMs - r.ttftMs!) / (r.outputTokens - 1))),
    itlMs: distribution(ok.flatMap((r) => r.itlMs)),
    e2eMs: distribution(ok.map((r) => r.e2eMs)),
    amortizedE2eMs: ok.length > 0 ? (Math.max(...ends) - firstSent) / ok.length : 0,
    errors: records.filter((r) => r.error).slice(0, 5).map((r) => r.error!),
  };
}
