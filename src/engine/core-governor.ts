// Thread counts that follow the cores other work leaves free. ggml's graphs synchronise their threads
// at every operation with spinning barriers: when another process (or this process's own JS thread)
// takes a core, a descheduled graph thread stalls the others for a scheduler quantum per operation,
// and a 2-thread step runs 3-4x slower than a 1-thread one (docs/performance.md "Shared cores"). So while other
// work holds cores, the workers are re-placed on the cores left (one thread per context when that is
// one core), and back on all cores once it goes. Checked between steps; O(1) per step.
import type { Backend } from "./backend.js";

/**
 * A core counts as taken when others use more than half of it: a busy competitor reads ~0.67 beside
 * two graph threads (the scheduler's fair share of three threads on two cores); the bursts of this
 * process's own HTTP work and a local client read 0.1-0.4, and two threads still win there.
 */
const SLACK = 0.5;
/**
 * Fresh measurements (100 ms each) that must agree before the placement changes: two to take fewer
 * cores (a burst of admissions must not cost a few hundred ms at one thread per context, ~0.65x), three
 * to take them all back.
 */
const CONFIRMATIONS = { fewer: 2, more: 3 };

export interface CoreLimitStats {
  /** cores the workers are placed on now */
  cores: number;
  /** of the machine's */
  of: number;
  /** times the limit changed */
  changes: number;
}

export class CoreGovernor {
  private limit: number;
  private pending: { cores: number; sample: number; seen: number } | undefined;
  private changes = 0;

  constructor(private readonly backend: Backend & { readonly cores: number }) {
    this.limit = backend.cores;
  }

  /** A governor when the backend measures the load and can re-place its threads; else undefined. */
  static for(backend: Backend): CoreGovernor | undefined {
    if (!backend.cpuLoad || !backend.limitCores || backend.cores === undefined) return undefined;
    return new CoreGovernor(backend as Backend & { readonly cores: number });
  }

  get stats(): CoreLimitStats {
    return { cores: this.limit, of: this.backend.cores, changes: this.changes };
  }

  /** Call between steps (no job running). True when the workers' placements changed. */
  async update(): Promise<boolean> {
    const load = this.backend.cpuLoad!();
    const all = this.backend.cores;
    const wanted = Math.min(all, Math.max(1, Math.floor(all - load.competing + SLACK)));
    if (wanted === this.limit) {
      this.pending = undefined;
      return false;
    }
    if (this.pending?.cores !== wanted) this.pending = { cores: wanted, sample: load.sample, seen: 1 };
    else if (load.sample !== this.pending.sample) {
      this.pending.sample = load.sample;
      this.pending.seen++;
    }
    if (this.pending.seen < (wanted < this.limit ? CONFIRMATIONS.fewer : CONFIRMATIONS.more)) return false;
    this.pending = undefined;
    this.limit = wanted;
    this.changes++;
    return this.backend.limitCores!(wanted);
  }
}
