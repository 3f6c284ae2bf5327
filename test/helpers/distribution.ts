// The target's next-token distribution after a prompt, and the goodness of fit of sampled tokens to a distribution p: the likeliest tokens each in a bin of their own (expected
// count >= 10), the rest in one bin; the statistic against the chi-square critical value at p = 0.001.
import { loadAddon } from "../../src/native/addon.js";
import { LlamaContext } from "../../src/native/context.js";
import type { LlamaModel } from "../../src/native/model.js";

/** p(next token | prompt) as the sampler sees it at this temperature (no top-k / top-p). */
export async function nextTokenDistribution(model: LlamaModel, prompt: string, temperature: number) {
  const addon = await loadAddon();
  const ctx = await LlamaContext.create(model, { contextSize: 64, sequences: 1, threads: 1 });
  try {
    const toks = model.tokenize(prompt);
    const logits = await ctx.decode({ tokens: toks, pos: toks.map((_, i) => i), seq: toks.map(() => 0) });
    return addon.sampling.filteredDist(logits, { temperature, topK: 0, topP: 1 });
  } finally {
    await ctx.dispose();
  }
}

const CHI2_CRIT_0_001: Record<number, number> = { 1: 10.83, 2: 13.82, 3: 16.27, 4: 18.47, 5: 20.52, 6: 22.46 };

export function chiSquareFit(
  samples: readonly number[],
  p: Float32Array,
  maxBins = 6,
): { stat: number; df: number; critical: number; message: string } {
  const n = samples.length;
  const order = Array.from(p.keys()).sort((a, b) => p[b]! - p[a]!);
  const bins = order.slice(0, maxBins).filter((t) => p[t]! * n >= 10);
  const probs = bins.map((t) => p[t]!);
  probs.push(1 - probs.reduce((a, b) => a + b, 0));
  const counts = new Array<number>(probs.length).fill(0);
  for (const s of samples) {
    const i = bins.indexOf(s);
    counts[i < 0 ? bins.length : i]!++;
  }
  let stat = 0;
  probs.forEach((pr, i) => {
    stat += (counts[i]! - pr * n) ** 2 / (pr * n);
  });
  const df = probs.length - 1;
  const critical = CHI2_CRIT_0_001[df]!;
  return { stat, df, critical, message: `chi2 ${stat.toFixed(1)} on ${df} df (critical ${critical})` };
}
