// How many CPU cores other work is using: other processes and VM steal (the machine's busy time minus
// this process's), plus this process's JS thread (an HTTP server, the user's app) while a native job
// runs: everything that competes with the models' threads. Read from os.cpus() (~0.1 ms), at most once
// per interval.
import { cpus } from "node:os";
import { performance } from "node:perf_hooks";

export interface CpuLoadReading {
  /** cores' worth of CPU time others used over the last interval (0 .. cores) */
  competing: number;
  /** increments with every new reading (a governor can tell fresh readings from repeats) */
  sample: number;
}

interface Totals {
  at: number;
  /** ms of busy time across all cores (os.cpus() counts ms) */
  busyMs: number;
  /** µs of this process's CPU time (all threads) */
  ownUs: number;
  elu: ReturnType<typeof performance.eventLoopUtilization>;
  /** JobClock.busyMs */
  jobsMs?: number;
}

function totals(): Totals {
  let busy = 0;
  for (const c of cpus()) busy += c.times.user + c.times.nice + c.times.sys + c.times.irq;
  const own = process.cpuUsage();
  return { at: performance.now(), busyMs: busy, ownUs: own.user + own.system, elu: performance.eventLoopUtilization() };
}

/**
 * Wall time during which at least one native job was in flight. The JS thread's work between jobs (the
 * engine's step, streaming the tokens it made) runs while the models' threads wait for it: it does not
 * compete with them, though it shows in the event loop's utilisation (at 5 ms steps, serving 1,000
 * tok/s over SSE reads 0.5-0.6 of a core, which took the workers to one thread at 0.82x).
 */
export class JobClock {
  private inFlight = 0;
  private since = 0;
  private doneMs = 0;

  /** Counts `job` in flight until it settles; returns it. */
  track<T>(job: Promise<T>): Promise<T> {
    if (this.inFlight++ === 0) this.since = performance.now();
    const settled = () => {
      if (--this.inFlight === 0) this.doneMs += performance.now() - this.since;
    };
    job.then(settled, settled);
    return job;
  }

  /** ms with a job in flight so far */
  get busyMs(): number {
    return this.doneMs + (this.inFlight > 0 ? performance.now() - this.since : 0);
  }
}

export class CpuLoadMonitor {
  private last: Totals;
  private reading: CpuLoadReading = { competing: 0, sample: 0 };

  /** `intervalMs`: the shortest window a reading covers (the kernel's tick is 10 ms: shorter windows are noise) */
  constructor(
    private readonly cores: number,
    private readonly intervalMs = 100,
    /** the models' jobs: the JS thread's work outside them is not counted as competing */
    private readonly jobs?: JobClock,
  ) {
    this.last = this.totals();
  }

  private totals(): Totals {
    return { ...totals(), jobsMs: this.jobs?.busyMs ?? 0 };
  }

  /** The latest reading; takes a new one when the last is at least intervalMs old. */
  read(): CpuLoadReading {
    const now = performance.now();
    if (now - this.last.at < this.intervalMs) return this.reading;
    const t = this.totals();
    const wallMs = t.at - this.last.at;
    const othersMs = t.busyMs - this.last.busyMs - (t.ownUs - this.last.ownUs) / 1000;
    // the JS thread's busy share: this process's work that is not the models'; with a job clock, only
    // what cannot have fitted in the time no job ran (a lower bound on its work beside the jobs)
    let jsBusy = performance.eventLoopUtilization(t.elu, this.last.elu).utilization;
    if (this.jobs) jsBusy = Math.max(0, jsBusy - (1 - Math.min(1, (t.jobsMs! - this.last.jobsMs!) / wallMs)));
    const competing = Math.min(this.cores, Math.max(0, othersMs / wallMs) + jsBusy);
    this.last = t;
    this.reading = { competing, sample: this.reading.sample + 1 };
    return this.reading;
  }
}
