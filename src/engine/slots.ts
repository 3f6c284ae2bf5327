// Sequence slots (KV sequence ids) of running requests. llama.cpp verifies a batch over per-sequence
// KV streams in one pass only when its sequence ids are consecutive (one pass per run of them), so
// slots are handed out to keep each verified batch contiguous: sub-batch 0 (and single-batch modes)
// takes the lowest free slot and grows upwards, sub-batch 1 takes the highest and grows downwards.
export class SlotPool {
  /** free slots, ascending */
  private readonly free: number[];

  constructor(capacity: number) {
    this.free = Array.from({ length: capacity }, (_, i) => i);
  }

  /** the lowest free slot, or the highest with `fromTop` */
  take(fromTop = false): number {
    if (this.free.length === 0) throw new Error("no free sequence slot");
    return fromTop ? this.free.pop()! : this.free.shift()!;
  }

  /** takes a given free slot */
  claim(slot: number): void {
    const i = this.free.indexOf(slot);
    if (i < 0) throw new Error(`sequence slot ${slot} is not free`);
    this.free.splice(i, 1);
  }

  release(slot: number): void {
    if (slot < 0) return;
    let i = this.free.length;
    while (i > 0 && this.free[i - 1]! > slot) i--;
    if (this.free[i - 1] === slot) throw new Error(`sequence slot ${slot} released twice`);
    this.free.splice(i, 0, slot);
  }
}

/** Number of runs of consecutive ids in a set of slots. */
export function slotRuns(slots: readonly number[]): number {
  const sorted = [...slots].sort((a, b) => a - b);
  let runs = 0;
  for (let i = 0; i < sorted.length; i++) if (i === 0 || sorted[i]! !== sorted[i - 1]! + 1) runs++;
  return runs;
}

const NO_MOVES: readonly { from: number; to: number }[] = [];

/**
 * The fewest moves that make a set of distinct slots (in 0..capacity-1) one run: the window of as
 * many consecutive slots as there are requests that already holds the most of them stays, the
 * others move into its holes. Called before every pass over all running requests, so the usual
 * case, slots already one run, is O(slots) and allocates nothing; otherwise O(capacity).
 */
export function compactionMoves(slots: readonly number[], capacity: number): readonly { from: number; to: number }[] {
  const n = slots.length;
  let lo = Infinity;
  let hi = -Infinity;
  for (const s of slots) {
    lo = Math.min(lo, s);
    hi = Math.max(hi, s);
  }
  if (hi - lo + 1 <= n) return NO_MOVES;
  const used = new Uint8Array(capacity);
  for (const s of slots) used[s] = 1;
  let inWindow = 0;
  for (let i = 0; i < n; i++) inWindow += used[i]!;
  let best = inWindow;
  let start = 0;
  for (let a = 1; a + n <= capacity; a++) {
    inWindow += used[a + n - 1]! - used[a - 1]!;
    if (inWindow > best) {
      best = inWindow;
      start = a;
    }
  }
  const holes: number[] = [];
  for (let i = start; i < start + n; i++) if (!used[i]) holes.push(i);
  const outside = [...slots].filter((s) => s < start || s >= start + n).sort((a, b) => a - b);
  return outside.map((from, i) => ({ from, to: holes[i]! }));
}
