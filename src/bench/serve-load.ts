// The serving load generator of `minedraft bench serve`: N prompts with Poisson arrivals at a rate (or
// all at once), each sent through a transport (a streaming /v1/completions request to an
// OpenAI-compatible server, or engine.generate() in this process); per request the time to first
// token, the gaps between streamed pieces and the end-to-end latency, and the summary vLLM's
// `bench serve` reports (mean, median, p99). Bounded in count and time.
import type { GenerateOptions, GenerateResult } from "../engine/index.js";
import { Rng } from "../engine/rng.js";

/** What a transport says about one finished request. */
export interface RequestOutcome {
  outputTokens: number;
  promptTokens: number;
  /** speculative counters of the request, where the transport sees them (the library does) */
  spec?: { drafts: number; draftTokens: number; acceptedTokens: number };
  /** set when the request failed (status, error event) */
  error?: string;
}

/** Sends one greedy request with `seed`; calls `onText` as each text piece arrives. */
export type SendRequest = (
  prompt: string,
  seed: number,
  signal: AbortSignal,
  onText: () => void,
) => Promise<RequestOutcome>;

export interface ServeLoadOptions {
  send: SendRequest;
  prompts: readonly string[];
  /** requests per second (Poisson arrivals); Infinity: all at once */
  rate: number;
  /** arrivals and request seeds (prompt i: seed + i) */
  seed: number;
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
  spec?: RequestOutcome["spec"];
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

async function oneRequest(
  o: ServeLoadOptions,
  prompt: string,
  seed: number,
  start: number,
  signal: AbortSignal,
): Promise<RequestRecord> {
  const sentAt = performance.now() - start;
  const t0 = performance.now();
  const record: RequestRecord = { sentAt, ttftMs: null, e2eMs: 0, itlMs: [], outputTokens: 0, promptTokens: 0 };
  let last = 0;
  const onText = () => {
    const now = performance.now();
    if (record.ttftMs === null) record.ttftMs = now - t0;
    else record.itlMs.push(now - last);
    last = now;
  };
  try {
    const outcome = await o.send(prompt, seed, signal, onText);
    record.outputTokens = outcome.outputTokens;
    record.promptTokens = outcome.promptTokens;
    if (outcome.spec) record.spec = outcome.spec;
    if (outcome.error) record.error = outcome.error;
  } catch (error) {
    record.error = errorText(error);
  }
  record.e2eMs = performance.now() - t0;
  return record;
}

/** fetch failed because the server closed the (reused) connection before any reply. */
function closedBeforeReply(error: unknown): boolean {
  const cause = error instanceof Error ? (error.cause as { code?: string } | undefined) : undefined;
  return cause?.code === "UND_ERR_SOCKET";
}

/** An error's message and its causes' ("fetch failed: other side closed"): fetch hides the reason in `cause`. */
function errorText(error: unknown): string {
  const parts: string[] = [];
  for (let e: unknown = error; e !== undefined && parts.length < 4; e = e instanceof Error ? e.cause : undefined)
    parts.push(e instanceof Error ? e.message : String(e));
  return parts.join(": ");
}

/** Streaming /v1/completions requests to an OpenAI-compatible server (minedraft serve, llama-server). */
export function httpCompletions(o: {
  url: string;
  model: string;
  maxTokens: number;
  apiKey?: string;
  /** server-specific fields, e.g. llama-server's cache_prompt */
  extraBody?: Record<string, unknown>;
}): SendRequest {
  return async (prompt, seed, signal, onText) => {
    const outcome: RequestOutcome = { outputTokens: 0, promptTokens: 0 };
    const post = () =>
      fetch(`${o.url}/v1/completions`, {
        method: "POST",
        headers: { "content-type": "application/json", ...(o.apiKey ? { authorization: `Bearer ${o.apiKey}` } : {}) },
        body: JSON.stringify({
          model: o.model,
          prompt,
          max_tokens: o.maxTokens,
          temperature: 0,
          seed,
          stream: true,
          stream_options: { include_usage: true },
          ...o.extraBody,
        }),
        signal,
      });
    // a pooled keep-alive connection the server closed as this request went out (llama-server's HTTP
    // library closes one after 100 requests without saying so on a streamed reply): nothing reached the
    // server, so the request is sent once more, its latency counted from the first try
    const response = await post().catch((error: unknown) => {
      if (signal?.aborted || !closedBeforeReply(error)) throw error;
      return post();
    });
    if (response.status !== 200)
      return { ...outcome, error: `HTTP ${response.status}: ${(await response.text()).slice(0, 200)}` };
    const reader = response.body!.getReader();
    const decoder = new TextDecoder();
    let buffered = "";
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
        const chunk = JSON.parse(event.slice(6)) as {
          choices?: { text?: string }[];
          usage?: { prompt_tokens: number; completion_tokens: number };
          error?: { message: string };
        };
        if (chunk.error) outcome.error = chunk.error.message;
        if (chunk.usage) {
          outcome.outputTokens = chunk.usage.completion_tokens;
          outcome.promptTokens = chunk.usage.prompt_tokens;
        }
        if (chunk.choices?.[0]?.text) {
          chunks++;
          onText();
        }
      }
    }
    // a server that sends no usage chunk streams one token per chunk (llama-server does)
    if (outcome.outputTokens === 0) outcome.outputTokens = chunks;
    return outcome;
  };
}

/** The same requests through the library: engine.generate() in this process, no HTTP. */
export function engineRequests(
  engine: { generate(prompt: string, options: GenerateOptions): Promise<GenerateResult> },
  maxTokens: number,
): SendRequest {
  return async (prompt, seed, signal, onText) => {
    const { tokens, stats } = await engine.generate(prompt, {
      maxTokens,
      temperature: 0,
      seed,
      signal,
      onText: () => onText(),
    });
    return {
      outputTokens: tokens.length,
      promptTokens: stats.promptTokens,
      spec: { drafts: stats.drafts, draftTokens: stats.draftedTokens, acceptedTokens: stats.acceptedTokens },
    };
  };
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
  /**
   * tokens streamed by requests that then failed, per second: work the server did that outputTokensPerSecond
   * does not count (llama-server fails a request whose text is not valid UTF-8 after generating all of it)
   */
  failedOutputTokensPerSecond: number;
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
  return {
    mean: s.reduce((a, b) => a + b, 0) / s.length,
    median: s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2,
    p99: at(0.99),
  };
}

export function summarizeServeLoad(records: readonly RequestRecord[], durationMs: number): ServeLoadSummary {
  const ok = records.filter((r) => !r.error);
  const perSecond = (rs: readonly RequestRecord[]) =>
    durationMs > 0 ? rs.reduce((n, r) => n + r.outputTokens, 0) / (durationMs / 1000) : 0;
  const ends = ok.map((r) => r.sentAt + r.e2eMs);
  const firstSent = ok.length > 0 ? Math.min(...ok.map((r) => r.sentAt)) : 0;
  return {
    completed: ok.length,
    failed: records.length - ok.length,
    durationMs,
    requestsPerSecond: durationMs > 0 ? ok.length / (durationMs / 1000) : 0,
    outputTokensPerSecond: perSecond(ok),
    failedOutputTokensPerSecond: perSecond(records.filter((r) => r.error)),
    ttftMs: distribution(ok.map((r) => r.ttftMs ?? r.e2eMs)),
    tpotMs: distribution(
      ok
        .filter((r) => r.outputTokens > 1 && r.ttftMs !== null)
        .map((r) => (r.e2eMs - r.ttftMs!) / (r.outputTokens - 1)),
    ),
    itlMs: distribution(ok.flatMap((r) => r.itlMs)),
    e2eMs: distribution(ok.map((r) => r.e2eMs)),
    amortizedE2eMs: ok.length > 0 ? (Math.max(...ends) - firstSent) / ok.length : 0,
    errors: records
      .filter((r) => r.error)
      .slice(0, 5)
      .map((r) => r.error!),
  };
}
