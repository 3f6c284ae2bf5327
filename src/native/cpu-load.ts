// How many CPU cores other work is using: other processes and VM steal (the machine's busy time minus
// this process's), plus this process's JS thread (an HTTP server, the user's app): everything that
// competes with the models' threads. Read from os.cpus() (~0.1 ms), at most once per interval.
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
}

function totals(): Totals {
  let busy = 0;
  for (const c of cpus()) busy += c.times.user + c.times.nice + c.times.sys + c.times.irq;
  const own = process.cpuUsage();
  return { at: performance.now(), busyMs: busy, ownUs: own.user + own.system, elu: performance.eventLoopUtilization() };
}

export class CpuLoadMonitor {
  private last: Totals = totals();
  private reading: CpuLoadReading = { competing: 0, sample: 0 };

  /** `intervalMs`: the shortest window a reading covers (the kernel's tick is 10 ms: shorter windows are noise) */
  constructor(
    private readonly cores: number,
    private readonly intervalMs = 100,
  ) {}

  /** The latest reading; takes a new one when the last is at least intervalMs old. */
  read(): CpuLoadReading {
    const now = performance.now();
    if (now - this.last.at < this.intervalMs) return this.reading;
    const t = totals();
    const wallMs = t.at - this.last.at;
    const othersMs = t.busyMs - this.last.busyMs - (t.ownUs - this.last.ownUs) / 1000;
    // the JS thread's busy share: this process's work that is not the models'
    const jsBusy = performance.eventLoopUtilization(t.elu, this.last.elu).utilization;
    const competing = Math.min(this.cores, Math.max(0, othersMs / wallMs) + jsBusy);
    this.last = t;
    this.reading = { competing, sample: this.reading.sample + 1 };
    return this.reading;
  }
}
