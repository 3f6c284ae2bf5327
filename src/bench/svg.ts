// Small helpers for hand-written inline SVG: escaping, rounding and "nice" axis ticks.

export function esc(text: string | number): string {
  return String(text)
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&#39;");
}

/** Coordinates with two decimals keep the file small and the rendering exact enough. */
export function r2(n: number): string {
  return (Math.round(n * 100) / 100).toString();
}

/** Tick values 0, step, 2*step, ... <= max with step 1, 2 or 5 x 10^k and about `target` ticks. */
export function niceTicks(max: number, target = 6): number[] {
  if (!(max > 0) || !Number.isFinite(max)) return [0];
  const rough = max / target;
  const power = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 5, 10].map((f) => f * power).find((s) => s >= rough) ?? 10 * power;
  const ticks: number[] = [];
  for (let v = 0; v <= max * (1 + 1e-9); v += step) ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

/** A tick label without float noise: 0.30000000000000004 -> "0.3". */
export function tickLabel(v: number): string {
  return Number(v.toPrecision(6)).toString();
}
