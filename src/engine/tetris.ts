// TETRIS draft selection: every request drafted k + e tokens; verify only the global top C = k x m
// (request, position) prefixes of the batch, ranked by the cumulative draft log-probability of the
// prefix. The selection is prefix-closed per request (a position is verified only with all the
// positions before it), so verification and acceptance stay the ordinary chain ones: lossless.
// O(C x m) work on O(m x (k + e)) numbers; no vocabulary-sized data.
import type { Request } from "./request.js";

/**
 * How many leading drafts of each chain to keep: the `budget` likeliest prefixes overall.
 * `confidences[i][j]` is the draft's probability of token j of chain i (0..1). Ties go to the
 * shorter prefix, then to the earlier chain, so the result is deterministic.
 */
export function tetrisSelect(confidences: readonly ArrayLike<number>[], budget: number): number[] {
  const n = confidences.length;
  const keep = new Array<number>(n).fill(0);
  const score = new Array<number>(n).fill(0); // cumulative log-probability of the kept prefix
  let left = Math.max(0, Math.floor(budget));
  while (left > 0) {
    let best = -1;
    let bestScore = -Infinity;
    let bestLength = Infinity;
    for (let i = 0; i < n; i++) {
      const chain = confidences[i]!;
      const j = keep[i]!;
      if (j >= chain.length) continue;
      const s = score[i]! + Math.log(Math.max(0, chain[j]!));
      // compare: higher score, then shorter prefix, then earlier chain (the loop order)
      if (best < 0 || s > bestScore || (s === bestScore && j < bestLength)) {
        best = i;
        bestScore = s;
        bestLength = j;
      }
    }
    if (best < 0) break; // every chain taken whole
    keep[best]!++;
    score[best] = bestScore;
    left--;
  }
  return keep;
}

/** Result of one TETRIS selection over a batch about to be verified. */
export interface TetrisOutcome {
  /** drafts the batch holds (what was drafted for it) */
  drafted: number;
  /** drafts kept for verification */
  verified: number;
}

/**
 * Truncates each request's drafts to its share of the top k x m (m = requests holding drafts).
 * Requests drafted without confidences keep their first k drafts.
 */
export function applyTetris(requests: readonly Request[], k: number): TetrisOutcome {
  const holders = requests.filter((r) => !r.done && r.drafts !== null && r.drafts.tokens.length > 0);
  let drafted = 0;
  for (const r of holders) drafted += r.drafts!.tokens.length;
  if (holders.length === 0) return { drafted: 0, verified: 0 };
  const confidences = holders.map((r) => {
    const d = r.drafts!;
    if (d.confidence && d.confidence.length >= d.tokens.length) return d.confidence;
    // no ranking information: the first k tokens are certain, the rest impossible
    return Array.from({ length: d.tokens.length }, (_, j) => (j < k ? 1 : 0));
  });
  const keep = tetrisSelect(confidences, k * holders.length);
  let verified = 0;
  holders.forEach((r, i) => {
    r.truncateDrafts(keep[i]!);
    verified += keep[i]!;
  });
  return { drafted, verified };
}
