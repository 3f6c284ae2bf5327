// A one-line progress bar on stderr, drawn only when stderr is a terminal (piped or captured stderr
// stays clean, so logs hold nothing but errors).
const WIDTH = 28;
const MIN_REDRAW_MS = 80;

export interface ProgressBar {
  /** fraction in [0, 1]; label says what is being done */
  update(fraction: number, label?: string): void;
  /** erases the bar */
  done(): void;
}

const silent: ProgressBar = { update() {}, done() {} };

export function createProgressBar(title: string, stream: NodeJS.WriteStream = process.stderr): ProgressBar {
  if (!stream.isTTY) return silent;
  let lastDraw = 0;
  let drawn = false;
  let lastLabel = "";
  return {
    update(fraction, label = lastLabel) {
      lastLabel = label;
      const now = Date.now();
      if (now - lastDraw < MIN_REDRAW_MS && fraction < 1) return;
      lastDraw = now;
      const f = Math.min(1, Math.max(0, Number.isFinite(fraction) ? fraction : 0));
      const filled = Math.round(f * WIDTH);
      const line =
        `${title} [${"#".repeat(filled)}${"-".repeat(WIDTH - filled)}] ${(f * 100).toFixed(0).padStart(3)}% ` +
        `${label}`;
      const columns = stream.columns || 100;
      stream.write(`\r${line.slice(0, Math.max(10, columns - 1))}\x1b[K`);
      drawn = true;
    },
    done() {
      if (drawn) stream.write("\r\x1b[K");
      drawn = false;
    },
  };
}
