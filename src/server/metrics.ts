// Prometheus metrics (prom-client, one registry per server). Request and speculative counters are
// named as vLLM names them, under a `minedraft:` prefix; the engine's load and run statistics are
// read at scrape time.
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { Engine, GenerateResult } from "../engine/index.js";

const P = "minedraft:";

/** Latency buckets (seconds) from 10 ms to 10 min: local models span both ends. */
const LATENCY_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 80, 160, 320, 640];
const TOKEN_LATENCY_BUCKETS = [
  0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1, 2.5, 5,
];

export class ServerMetrics {
  readonly registry = new Registry();
  private readonly promptTokens: Counter;
  private readonly generationTokens: Counter;
  private readonly success: Counter<"finished_reason">;
  private readonly rejected: Counter<"status">;
  private readonly ttft: Histogram;
  private readonly tpot: Histogram;
  private readonly e2e: Histogram;
  private readonly drafts: Counter;
  private readonly draftTokens: Counter;
  private readonly acceptedTokens: Counter;
  private readonly acceptedPerPos: Counter<"position">;
  private readonly sourceDraftTokens: Counter<"source">;
  private readonly sourceAcceptedTokens: Counter<"source">;

  /** `engine()`: the engine once loaded (null before), read at every scrape */
  constructor(engine: () => Engine | null) {
    const registers = [this.registry];
    const load = (key: "running" | "queued") =>
      function (this: Gauge) {
        const e = engine();
        this.set(e ? e.load()[key] : 0);
      };
    new Gauge({
      name: `${P}num_requests_running`,
      help: "Requests being decoded",
      registers,
      collect: load("running"),
    });
    new Gauge({
      name: `${P}num_requests_waiting`,
      help: "Requests waiting for a free slot in the batch",
      registers,
      collect: load("queued"),
    });
    new Gauge({
      name: `${P}hidden_draft_fraction`,
      help:
        "Share of draft time (prefills excluded) spent while the target verified the other batch, since the " +
        "engine started",
      registers,
      collect() {
        const e = engine();
        this.set(e ? e.stats().hiddenDraftFraction : 0);
      },
    });
    new Gauge({
      name: `${P}cores_used`,
      help: "Cores the engine's threads are placed on now (fewer while other work holds cores)",
      registers,
      collect() {
        const limit = engine()?.stats().coreLimit;
        this.set(limit ? limit.cores : 0);
      },
    });
    new Gauge({
      name: `${P}core_limit_changes`,
      help: "Times the engine re-placed its threads on fewer or more cores since it started",
      registers,
      collect() {
        this.set(engine()?.stats().coreLimit?.changes ?? 0);
      },
    });
    new Gauge({
      name: `${P}auto_decision_steps`,
      help: "auto mode: decode steps per choice of schedule and draft length k, since the engine started",
      labelNames: ["schedule", "k"],
      registers,
      collect() {
        this.reset();
        for (const d of engine()?.stats().auto?.decisions ?? [])
          this.inc({ schedule: d.schedule, k: String(d.k) }, d.steps);
      },
    });
    this.promptTokens = new Counter({
      name: `${P}prompt_tokens_total`,
      help: "Prompt tokens of finished requests",
      registers,
    });
    this.generationTokens = new Counter({
      name: `${P}generation_tokens_total`,
      help: "Generated tokens of finished requests",
      registers,
    });
    this.success = new Counter({
      name: `${P}request_success_total`,
      help: "Requests that finished, by finish reason",
      labelNames: ["finished_reason"],
      registers,
    });
    this.rejected = new Counter({
      name: `${P}request_rejected_total`,
      help: "HTTP requests refused before generating, by status",
      labelNames: ["status"],
      registers,
    });
    this.ttft = new Histogram({
      name: `${P}time_to_first_token_seconds`,
      help: "Time from submission to the first generated token",
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.tpot = new Histogram({
      name: `${P}time_per_output_token_seconds`,
      help: "Mean time per generated token after the first, per request",
      buckets: TOKEN_LATENCY_BUCKETS,
      registers,
    });
    this.e2e = new Histogram({
      name: `${P}e2e_request_latency_seconds`,
      help: "Time from submission to the end of the request",
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.drafts = new Counter({
      name: `${P}spec_decode_num_drafts_total`,
      help: "Verification steps that checked drafted tokens",
      registers,
    });
    this.draftTokens = new Counter({
      name: `${P}spec_decode_num_draft_tokens_total`,
      help: "Drafted tokens verified by the target",
      registers,
    });
    this.acceptedTokens = new Counter({
      name: `${P}spec_decode_num_accepted_tokens_total`,
      help: "Drafted tokens the target accepted",
      registers,
    });
    this.sourceDraftTokens = new Counter({
      name: `${P}spec_decode_num_draft_tokens_by_source_total`,
      help: "Drafted tokens verified by the target, per draft source (ngram: prompt lookup; model: the draft model)",
      labelNames: ["source"],
      registers,
    });
    this.sourceAcceptedTokens = new Counter({
      name: `${P}spec_decode_num_accepted_tokens_by_source_total`,
      help: "Drafted tokens the target accepted, per draft source",
      labelNames: ["source"],
      registers,
    });
    this.acceptedPerPos = new Counter({
      name: `${P}spec_decode_num_accepted_tokens_per_pos_total`,
      help: "Drafted tokens accepted at each draft position (0 = first)",
      labelNames: ["position"],
      registers,
    });
  }

  /** One finished engine request. */
  record(result: GenerateResult): void {
    const s = result.stats;
    this.promptTokens.inc(s.promptTokens);
    this.generationTokens.inc(s.generatedTokens);
    this.success.inc({
      finished_reason: s.finishReason === "maxTokens" || s.finishReason === "contextFull" ? "length" : "stop",
    });
    this.ttft.observe(s.ttftMs / 1000);
    if (s.generatedTokens > 1) this.tpot.observe((s.e2eMs - s.ttftMs) / 1000 / (s.generatedTokens - 1));
    this.e2e.observe(s.e2eMs / 1000);
    this.drafts.inc(s.drafts);
    this.draftTokens.inc(s.draftedTokens);
    this.acceptedTokens.inc(s.acceptedTokens);
    s.acceptedPerPosition.forEach((n, position) => this.acceptedPerPos.inc({ position: String(position) }, n));
    for (const source of ["ngram", "model"] as const) {
      const counts = s.draftSources?.[source];
      if (!counts) continue;
      this.sourceDraftTokens.inc({ source }, counts.draftedTokens);
      this.sourceAcceptedTokens.inc({ source }, counts.acceptedTokens);
    }
  }

  /** An engine request aborted before it finished (its client left, or the drain ran out): vLLM's "abort". */
  abort(): void {
    this.success.inc({ finished_reason: "abort" });
  }

  /** An HTTP request refused (4xx / 5xx before or instead of generating). */
  reject(status: number): void {
    this.rejected.inc({ status: String(status) });
  }
}
