// One node-llama-cpp 3.21.1 run in its own process (the parent kills it on timeout: its speculative
// mode can deadlock with several sequences, and a hang is a result). Greedy, CPU only, threads set
// explicitly (its default maxThreads oversubscribes small machines).
//
//   node scripts/incumbents/node-llama-cpp-worker.mjs '<json>'
//   json: { target, draft?, prompts: string[], sequences, maxTokens, threads, draftThreads?, draftMin?, draftMax? }
// Prints one JSON line: { tokensPerSecond, wallMs, generated, outputs: number[][], predictions? }
import { DraftSequenceTokenPredictor, getLlama, LlamaLogLevel } from "node-llama-cpp";

const o = JSON.parse(process.argv[2]);
const llama = await getLlama({
  gpu: false,
  build: "never",
  logLevel: LlamaLogLevel.error,
  maxThreads: Math.max(o.threads, o.draftThreads ?? 0),
});
const model = await llama.loadModel({ modelPath: o.target, gpuLayers: 0 });
const contextSize = 1024;
const ctx = await model.createContext({
  sequences: o.sequences,
  contextSize: contextSize * o.sequences,
  threads: o.threads,
  batchSize: 512,
});
let draftCtx;
if (o.draft) {
  const draftModel = await llama.loadModel({ modelPath: o.draft, gpuLayers: 0 });
  draftCtx = await draftModel.createContext({
    sequences: o.sequences,
    contextSize: contextSize * o.sequences,
    threads: o.draftThreads ?? o.threads,
    batchSize: 512,
  });
}
const sequences = Array.from({ length: o.sequences }, () =>
  ctx.getSequence(
    draftCtx
      ? {
          tokenPredictor: new DraftSequenceTokenPredictor(draftCtx.getSequence(), {
            minTokens: o.draftMin ?? 0,
            maxTokens: o.draftMax ?? 4,
          }),
        }
      : undefined,
  ),
);
const bos = model.tokens.bos;
const tokenize = (p) => [...(bos !== null && bos !== undefined ? [bos] : []), ...model.tokenize(p)];

// warm-up (first graphs, allocations), not timed
const warm = sequences[0].evaluate(tokenize(o.prompts[0]), { temperature: 0 });
await warm.next();
await warm.return(undefined);
await sequences[0].clearHistory();

// the prompts are served by o.sequences workers, each taking the next prompt when it finishes one
const outputs = new Array(o.prompts.length);
let next = 0;
const t0 = performance.now();
await Promise.all(
  sequences.map(async (seq) => {
    while (next < o.prompts.length) {
      const i = next++;
      await seq.clearHistory();
      const out = [];
      for await (const t of seq.evaluate(tokenize(o.prompts[i]), { temperature: 0 })) {
        out.push(t);
        if (model.isEogToken(t) || out.length >= o.maxTokens) break;
      }
      outputs[i] = out;
    }
  }),
);
const wallMs = performance.now() - t0;
const generated = outputs.reduce((n, x) => n + x.length, 0);
const predictions = draftCtx ? sequences.map((s) => s.tokenPredictions) : undefined;
process.stdout.write(
  `${JSON.stringify({ tokensPerSecond: (1000 * generated) / wallMs, wallMs, generated, outputs, predictions })}\n`,
);
await llama.dispose();
process.exit(0);
