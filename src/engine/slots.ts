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

  get available(): number {
    return this.free.length;
  }

  /** the lowest free slot, or the highest with `fromTop` */
  take(fromTop = false): number {
    if (this.free.length === 0) throw new Error("no free sequence slot");
    return fromTop ? this.free.pop()! : this.free.shift()!;
  }

  release(slot: number): void {
    if (slot < 0) return;
    let i = this.free.length;
    while (i > 0 && this.free[i - 1]! > slot) i--;
    if (this.free[i - 1] === slot) throw new Error(`sequence slot ${slot} released twice`);
    this.free.splice(i, 0, slot);
  }
}
