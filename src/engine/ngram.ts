// Prompt lookup (n-gram) drafts: a draft source with no draft model. When the last n tokens of a
// request (prompt + generated) occurred earlier, the tokens that followed their most recent earlier
// occurrence are proposed (n from maxN down to 1: the longest match wins). The index is updated per
// appended token (O(maxN)) and a proposal costs O(maxN + k): per step O(requests x k), never O(context).

export interface NgramOptions {
  /** longest n-gram matched (1..8; default 3); shorter ones are tried when it finds nothing */
  maxN?: number;
}

export const NGRAM_DEFAULTS = { maxN: 3 } as const;
export const NGRAM_MAX_N = 8;

/** Counters of one request's n-gram lookups and of the drafts they proposed. */
export interface NgramCounts {
  /** draft rounds that looked up the index */
  lookups: number;
  /** lookups that proposed at least one token */
  hits: number;
  draftedTokens: number;
  acceptedTokens: number;
}

export class NgramIndex {
  readonly tokens: number[] = [];
  /** per n (index n - 1): n-gram key -> position of the token that followed its latest occurrence */
  private readonly next: Map<string, number>[];
  readonly counts: NgramCounts = { lookups: 0, hits: 0, draftedTokens: 0, acceptedTokens: 0 };

  constructor(
    readonly maxN: number,
    initial: readonly number[] = [],
  ) {
    this.next = Array.from({ length: maxN }, () => new Map<string, number>());
    for (const t of initial) this.push(t);
  }

  /** Appends one token: the n-grams that end just before it now have a follower (it). */
  push(token: number): void {
    const at = this.tokens.length;
    this.tokens.push(token);
    for (let n = 1; n <= this.maxN && n <= at; n++) this.next[n - 1]!.set(this.key(at - n, n), at);
  }

  /**
   * Up to k tokens that followed the latest earlier occurrence of the longest suffix (n <= maxN)
   * found; [] when none occurred. A copy that reaches the end of the history continues with its own
   * tokens (a repeating pattern is proposed for all k).
   */
  propose(k: number): number[] {
    const len = this.tokens.length;
    for (let n = Math.min(this.maxN, len - 1); n >= 1; n--) {
      const start = this.next[n - 1]!.get(this.key(len - n, n));
      if (start === undefined) continue;
      const out: number[] = [];
      for (let j = 0; j < k; j++) {
        const from = start + j;
        out.push(from < len ? this.tokens[from]! : out[from - len]!);
      }
      return out;
    }
    return [];
  }

  private key(from: number, n: number): string {
    const t = this.tokens;
    let s = String(t[from]);
    for (let i = from + 1; i < from + n; i++) s += `,${t[i]}`;
    return s;
  }
}
