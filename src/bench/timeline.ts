// Picks a few consecutive decode steps from a run's trace for the report's timeline: taken from
// the steady middle of the run (the first steps are prefill-heavy, the last ones have a draining batch).
import type { TraceEvent } from "../index.js";
import type { Timeline } from "./types.js";

export const DEFAULT_TIMELINE_STEPS = 6;

export function timelineWindow(trace: readonly TraceEvent[], steps = DEFAULT_TIMELINE_STEPS): Timeline {
  const decode = trace.filter((e) => e.kind !== "prefill");
  const stepNumbers = [...new Set(decode.map((e) => e.step))].sort((a, b) => a - b);
  if (stepNumbers.length === 0) return { startMs: 0, endMs: 0, events: [] };
  const first = Math.max(0, Math.min(Math.floor(stepNumbers.length * 0.4), stepNumbers.length - steps));
  const chosen = new Set(stepNumbers.slice(first, first + steps));
  const picked = decode.filter((e) => chosen.has(e.step));
  const startMs = Math.min(...picked.map((e) => e.start));
  const endMs = Math.max(...picked.map((e) => e.end));
  // everything the workers did in that window (other steps' edges, admissions' prefills), clipped to it
  const events = trace
    .filter((e) => e.end > startMs && e.start < endMs)
    .map((e) => ({ ...e, start: Math.max(e.start, startMs), end: Math.min(e.end, endMs) }))
    .sort((a, b) => a.start - b.start);
  return { startMs, endMs, events };
}
