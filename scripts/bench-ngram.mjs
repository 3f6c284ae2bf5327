#!/usr/bin/env node
// Prompt lookup (n-gram) drafts against ar and the draft model, side by side in one process, one request at a time,
// on two workloads built from the benchmark's built-in prompts Q:
//   copy:  the prompt is Q + O + Q (token ids), where O is the model's own greedy (ar) continuation of Q, so the
//          right answer repeats O: lookup finds what follows. Exact on a pair made with `minedraft synth
//          --attn-scale 0` (its logits depend on the current token only, so it continues Q+O+Q with O); on other
//          models the answer is whatever the model makes of the repetition.
//   novel: the prompt is Q: little to look up (except where the output repeats itself).
//
//   node scripts/bench-ngram.mjs MODEL_DIR OUT.json [tokens] [rounds] [options]      (after npx tsc)
//     MODEL_DIR holds target.gguf (and draft.gguf for the "sd draft" rows; rows needing it are left out without)
//     --base N           base prompts per workload (default 3): the built-in prompts, then with a word appended,
//                        each with a last token of its own (--prompts-out: at least 16)
//     --combined         also the rows of lookup with auto and of the combined source (lookup first, the draft
//                        model where it finds nothing) in sd / psd / auto; fails at once if createEngine refuses
//     --prompts-out FILE write the copy workload as JSON lines for `minedraft bench serve --prompts FILE` (text:
//                        Q + detokenize(O) + Q; the file's "retokenized" note says how many give the same ids)
//     --prompts-only     with --prompts-out: write the file and measure nothing (arguments: MODEL_DIR [tokens])
//
// Every row: tokens/s, its ratio to ar's in the same round and workload, lookup hits / lookups, accepted / drafted,
// and whether its tokens equal ar's (greedy is lossless: they must).
import { existsSync, writeFileSync } from "node:fs";
import path from "node:path";
import { createEngine } from "../dist/index.js";
import { BUILTIN_PROMPTS } from "../dist/bench/prompts.js";

const positional = [];
const flags = { base: 3, combined: false, promptsOut: undefined, promptsOnly: false };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  if (a === "--base") flags.base = Number(argv[++i]);
  else if (a === "--combined") flags.combined = true;
  else if (a === "--prompts-out") flags.promptsOut = argv[++i];
  else if (a === "--prompts-only") flags.promptsOnly = true;
  else if (a.startsWith("--")) throw new Error(`unknown option ${a}`);
  else positional.push(a);
}
// with --prompts-only: MODEL_DIR [tokens]
const [dir, outFile, tokensArg, roundsArg] = flags.promptsOnly ? [positional[0], undefined, positional[1]] : positional;
if (!dir || (!outFile && !flags.promptsOnly))
  throw new Error("usage: bench-ngram.mjs MODEL_DIR OUT.json [tokens] [rounds] [--base N] [--combined] ...");
if (flags.promptsOnly && !flags.promptsOut) throw new Error("--prompts-only needs --prompts-out FILE");
if (!Number.isInteger(flags.base) || flags.base < 1 || flags.base > 64)
  throw new Error("--base must be an integer in [1, 64]");
const tokens = Number(tokensArg ?? 96);
const rounds = Number(roundsArg ?? 2);
const target = path.join(dir, "target.gguf");
const draftPath = path.join(dir, "draft.gguf");
const hasDraft = existsSync(draftPath);
const NGRAM = { maxN: 3 };

// One row per entry; `needsDraft` rows are left out when MODEL_DIR has no draft.gguf.
const CONFIGS = [
  { name: "ar", opts: { mode: "ar" } },
  { name: "sd ngram k4", opts: { draft: { ngram: NGRAM }, draftTokens: 4 } },
  { name: "sd ngram k8", opts: { draft: { ngram: NGRAM }, draftTokens: 8 } },
  { name: "sd draft", needsDraft: true, opts: { mode: "sd", draft: { model: draftPath }, draftTokens: 4 } },
];
// Lookup with auto, and the combined source (lookup first, the draft model where it finds nothing). One line per row.
const COMBINED_CONFIGS = [
  { name: "auto ngram", opts: { mode: "auto", draft: { ngram: NGRAM } } },
  { name: "auto draft", needsDraft: true, opts: { mode: "auto", draft: { model: draftPath } } },
  { name: "sd ngram+draft", needsDraft: true, opts: { mode: "sd", draft: { model: draftPath, ngram: NGRAM } } },
  { name: "psd ngram+draft", needsDraft: true, opts: { mode: "psd", draft: { model: draftPath, ngram: NGRAM } } },
  { name: "auto ngram+draft", needsDraft: true, opts: { mode: "auto", draft: { model: draftPath, ngram: NGRAM } } },
];
const configs = [...CONFIGS, ...(flags.combined ? COMBINED_CONFIGS : [])].filter((c) => hasDraft || !c.needsDraft);

// ---- the workloads, from the model's own greedy output
// Base prompts: the built-in ones, then the built-in ones with a word appended, keeping those whose last token is
// new (on an attn-scale-0 pair O depends on Q's last token only, and most built-in prompts end with "."). For the
// prompts file also only those whose O is valid text (a random model's byte tokens detokenize to U+FFFD, which
// llama-server refuses: "output that does not match the expected Content-only format").
const WORDS = (
  "and then because so with in for but of to the a when while after before under over between into from about " +
  "like near without until since although if or yet also only just still even never always often sometimes " +
  "here there now soon later again once twice first next last finally maybe perhaps surely clearly quietly " +
  "slowly quickly together apart above below inside outside around through across along behind beyond toward"
).split(" ");
const candidates = [...BUILTIN_PROMPTS, ...WORDS.map((w, i) => `${BUILTIN_PROMPTS[i % BUILTIN_PROMPTS.length]} ${w}`)];
const wanted = flags.promptsOut ? Math.max(flags.base, 16) : flags.base;
const arEngine = await createEngine({ mode: "ar", batchSize: 1, contextSize: 2048, target: { model: target } });
const bases = [];
try {
  const bos = arEngine.tokenize("", true)[0];
  const lastTokens = new Set();
  for (const text of candidates) {
    if (bases.length >= wanted) break;
    const q = arEngine.tokenize(text, true);
    if (lastTokens.has(q.at(-1))) continue;
    const o = (await arEngine.generate(q, { maxTokens: tokens, temperature: 0 })).tokens;
    if (flags.promptsOut && arEngine.detokenize(o).includes("\uFFFD")) continue;
    lastTokens.add(q.at(-1));
    // the repeat of Q without its BOS (a BOS mid-prompt is not what a real prompt holds)
    const qBody = q[0] === bos && q.length > 1 ? q.slice(1) : q;
    bases.push({ text, q, o, copy: [...q, ...o, ...qBody] });
  }
  if (bases.length < wanted) console.error(`only ${bases.length} base prompts of the ${wanted} wanted qualified`);
  if (flags.promptsOut) {
    // Text loses what does not survive a round trip (byte tokens of a random model's output detokenize to U+FFFD),
    // so the ids can differ; a prompt that still ends with Q's last token gets O again from an attn-scale-0 pair.
    let same = 0;
    let sameLast = 0;
    const lines = bases.map((b, i) => {
      const prompt = `${b.text}${arEngine.detokenize(b.o)}${b.text}`;
      const ids = arEngine.tokenize(prompt, true);
      if (ids.length === b.copy.length && ids.every((t, j) => t === b.copy[j])) same++;
      if (ids.at(-1) === b.copy.at(-1)) sameLast++;
      return JSON.stringify({ id: `copy-${i}`, prompt });
    });
    writeFileSync(flags.promptsOut, `${lines.join("\n")}\n`);
    console.error(
      `wrote ${lines.length} copy prompts (Q + O + Q, O = ${tokens} greedy tokens) to ${flags.promptsOut}; ` +
        `retokenized: ${same} of ${lines.length} give the token workload's ids, ${sameLast} end with Q's last token`,
    );
  }
} finally {
  await arEngine.close();
}
if (flags.promptsOnly) process.exit(0);

const measured = bases.slice(0, flags.base);
const WORKLOADS = { copy: measured.map((b) => b.copy), novel: measured.map((b) => b.q) };
const longest = Math.max(...Object.values(WORKLOADS).flatMap((ps) => ps.map((p) => p.length)));
const contextSize = Math.max(1024, 2 ** Math.ceil(Math.log2(longest + tokens + 16)));

const newEngine = (c) => createEngine({ batchSize: 1, contextSize, target: { model: target }, ...c.opts });
// --combined: fail now, naming every row this build's createEngine refuses, not after minutes of measuring
if (flags.combined) {
  const refused = [];
  for (const c of configs.filter((x) => COMBINED_CONFIGS.includes(x))) {
    try {
      await (await newEngine(c)).close();
    } catch (e) {
      refused.push(`  ${c.name}: ${e.message}`);
    }
  }
  if (refused.length > 0) {
    console.error(`--combined: this build's createEngine refuses ${refused.length} row(s):\n${refused.join("\n")}`);
    process.exit(1);
  }
}

const rows = [];
for (let round = 0; round < rounds; round++) {
  for (const [workload, prompts] of Object.entries(WORKLOADS)) {
    for (const c of configs) {
      const engine = await newEngine(c);
      try {
        await engine.generate("warm up", { maxTokens: 4 });
        for (const [i, prompt] of prompts.entries()) {
          engine.resetStats();
          const t0 = performance.now();
          const r = await engine.generate(prompt, { maxTokens: tokens, temperature: 0 });
          const ms = performance.now() - t0;
          const s = engine.stats();
          const ng = s.draftSources?.ngram ?? null;
          rows.push({
            round,
            workload,
            config: c.name,
            prompt: i,
            promptText: measured[i].text.slice(0, 40),
            promptTokens: prompt.length,
            tokens: r.tokens.length,
            ms,
            tokensPerSecond: r.tokens.length / (ms / 1000),
            drafted: s.draftedTokens ?? 0,
            accepted: s.acceptedTokens ?? 0,
            acceptanceRate: s.acceptanceRate,
            meanAcceptanceLength: s.meanAcceptanceLength,
            ngram: ng,
            // the copy workload's answer is O: how many leading tokens repeat it
            repeatsO: workload === "copy" ? commonPrefix(r.tokens, measured[i].o) : null,
            output: r.tokens,
            placement: { targetThreads: engine.placement.targetThreads, mode: engine.placement.mode },
          });
          console.error(
            `round ${round} ${workload} ${c.name} #${i}: ${r.tokens.length} tokens ` +
              `${(r.tokens.length / (ms / 1000)).toFixed(1)} t/s, accepted ${s.acceptedTokens}/${s.draftedTokens}` +
              (ng ? `, lookup hits ${ng.hits}/${ng.lookups}` : ""),
          );
        }
      } finally {
        await engine.close();
      }
    }
  }
}

function commonPrefix(a, b) {
  let n = 0;
  while (n < a.length && n < b.length && a[n] === b[n]) n++;
  return n;
}

// equal to ar's tokens (same round, workload and prompt)
for (const r of rows) {
  const ar = rows.find(
    (a) => a.config === "ar" && a.round === r.round && a.workload === r.workload && a.prompt === r.prompt,
  );
  r.sameAsAr = ar.output.length === r.output.length && ar.output.every((t, j) => t === r.output[j]);
}
// per round, workload and config: total tokens / total time, its ratio to ar's, and the counters
const table = [];
for (let round = 0; round < rounds; round++) {
  for (const w of Object.keys(WORKLOADS)) {
    const sum = (rs, f) => rs.reduce((n, r) => n + f(r), 0);
    const of = (name) => rows.filter((r) => r.round === round && r.workload === w && r.config === name);
    const tps = (rs) => sum(rs, (r) => r.tokens) / (sum(rs, (r) => r.ms) / 1000);
    const arTps = tps(of("ar"));
    for (const c of configs) {
      const rs = of(c.name);
      table.push({
        round,
        workload: w,
        config: c.name,
        tokens: sum(rs, (r) => r.tokens),
        tokensPerSecond: tps(rs),
        vsAr: tps(rs) / arTps,
        lookups: sum(rs, (r) => r.ngram?.lookups ?? 0),
        hits: sum(rs, (r) => r.ngram?.hits ?? 0),
        drafted: sum(rs, (r) => r.drafted),
        accepted: sum(rs, (r) => r.accepted),
        sameAsAr: rs.every((r) => r.sameAsAr),
        repeatsO: w === "copy" ? `${sum(rs, (r) => r.repeatsO)}/${sum(rs, (r) => r.tokens)}` : null,
      });
    }
  }
}
const lossless = rows.every((r) => r.sameAsAr);
const out = {
  model: target,
  draft: hasDraft ? draftPath : null,
  tokens,
  rounds,
  batchSize: 1,
  contextSize,
  basePrompts: measured.map((b) => ({ text: b.text, qTokens: b.q.length, copyTokens: b.copy.length })),
  configs: configs.map((c) => ({ name: c.name, opts: c.opts })),
  lossless,
  table,
  rows: rows.map(({ output, ...r }) => ({ ...r, outputHead: output.slice(0, 8) })),
};
writeFileSync(outFile, `${JSON.stringify(out, null, 2)}\n`);

const pct = (x) => `${(100 * x).toFixed(0)}%`;
const cells = table.map((t) => [
  String(t.round),
  t.workload,
  t.config,
  t.tokensPerSecond.toFixed(1),
  `${t.vsAr.toFixed(2)}x`,
  t.lookups ? `${t.hits}/${t.lookups}` : "-",
  t.drafted ? `${t.accepted}/${t.drafted} (${pct(t.accepted / t.drafted)})` : "-",
  t.sameAsAr ? "yes" : "NO",
  t.repeatsO ?? "-",
]);
const head = ["round", "workload", "config", "tok/s", "vs ar", "lookup hits", "accepted/drafted", "= ar", "repeats O"];
const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
const line = (c) => c.map((x, i) => (i < 3 ? x.padEnd(widths[i]) : x.padStart(widths[i]))).join("  ");
console.log([line(head), line(widths.map((w) => "-".repeat(w))), ...cells.map(line)].join("\n"));
console.log(`lossless: ${lossless}; JSON written to ${outFile}`);
