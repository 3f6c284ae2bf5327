// The GPU code path on a Vulkan device: by default Mesa's llvmpipe, a software Vulkan device on the CPU, selected
// explicitly (ggml skips CPU-type devices unless they are named). It checks what a GPU changes (device placement,
// psd as the default, one KV buffer, the draft on the CPU cores, the device's memory limits), not speed: on
// llvmpipe speed means nothing. Needs: apt-get install libvulkan1 mesa-vulkan-drivers.
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CreateEngineOptions, createEngine } from "../../src/create-engine.js";
import type { Mode } from "../../src/engine/types.js";
import { devices, gpuBackendStatus } from "../../src/index.js";
import { configureBackends } from "../../src/native/addon.js";
import { LlamaModel } from "../../src/native/model.js";
import { chiSquareFit, nextTokenDistribution } from "../helpers/distribution.js";
import { tinyPair } from "../helpers/models.js";

/** the Vulkan device to use, by index in the loader's order (vulkaninfo --summary) */
const DEVICE_INDEX = Number(process.env.MINEDRAFT_TEST_VULKAN_DEVICE ?? 0);
const GPU = "Vulkan0";
const PROMPTS = ["Once upon a time", "The capital of France is", "def fibonacci(n):", "1, 2, 3, 4,"];
const MAX_TOKENS = 16;
const root = path.resolve(import.meta.dirname, "..", "..");

function requireVulkan(): void {
  const loader = ["/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib"].some((d) =>
    existsSync(path.join(d, "libvulkan.so.1")),
  );
  const icds = ["/usr/share/vulkan/icd.d", "/etc/vulkan/icd.d"].flatMap((d) => (existsSync(d) ? readdirSync(d) : []));
  if (!loader || icds.length === 0)
    throw new Error(
      `test:vulkan needs the Vulkan loader and a driver (${!loader ? "libvulkan.so.1 missing" : "no ICD found"}): ` +
        "apt-get install libvulkan1 mesa-vulkan-drivers (Mesa's llvmpipe is a Vulkan device on the CPU)",
    );
}

let pair: { target: string; draft: string };
let cpuTarget: LlamaModel;
let reference: number[][];

async function run(options: Partial<CreateEngineOptions>, prompts = PROMPTS) {
  const e = await createEngine({
    contextSize: 128,
    batchSize: 4,
    target: { model: pair.target },
    draft: { model: pair.draft },
    ...options,
  });
  try {
    const results = await Promise.all(prompts.map((p) => e.generate(p, { maxTokens: MAX_TOKENS })));
    return { placement: e.placement, tokens: results.map((r) => r.tokens), stats: e.stats() };
  } finally {
    await e.close();
  }
}

beforeAll(async () => {
  requireVulkan();
  configureBackends({ gpu: "vulkan", vulkanDevices: [DEVICE_INDEX] });
  pair = await tinyPair();
  cpuTarget = await LlamaModel.load(pair.target, { device: "cpu", gpuLayers: 0 });
  const ar = await createEngine({ mode: "ar", contextSize: 128, batchSize: 1, target: { model: cpuTarget } });
  try {
    reference = (await Promise.all(PROMPTS.map((p) => ar.generate(p, { maxTokens: MAX_TOKENS })))).map((r) => r.tokens);
  } finally {
    await ar.close();
  }
}, 600_000);

afterAll(() => cpuTarget?.dispose());

describe("Vulkan on a software device", () => {
  it("the device is listed and its backend loaded", async () => {
    const vulkan = gpuBackendStatus().find((s) => s.backend === "vulkan");
    expect(vulkan, JSON.stringify(gpuBackendStatus())).toMatchObject({ loaded: true, devices: 1 });
    const gpu = (await devices()).find((d) => d.name === GPU);
    expect(gpu, "Vulkan0 listed").toBeDefined();
    expect(gpu!.type).toBe("gpu");
    if (DEVICE_INDEX === 0 && !process.env.MINEDRAFT_TEST_VULKAN_DEVICE) expect(gpu!.description).toMatch(/llvmpipe/);
  });

  it("default placement with a GPU: target on it (one KV buffer), draft on the CPU cores, mode psd", async () => {
    const { placement, tokens } = await run({});
    expect(placement).toMatchObject({
      mode: "psd",
      targetDevice: GPU,
      draftDevice: "cpu",
      concurrent: true,
      kvUnified: { target: true, draft: false },
    });
    expect(placement.deviceNote).toBe(`target on ${GPU}, draft on the CPU cores so drafting overlaps verification`);
    expect(tokens).toEqual(reference);
  });

  for (const mode of ["ar", "sd", "psd", "auto"] as Mode[]) {
    it(`greedy ${mode} with the target on ${GPU} emits exactly the CPU's ar tokens`, async () => {
      const { placement, tokens, stats } = await run({
        mode,
        ...(mode === "ar" ? { draft: undefined } : { draft: { model: pair.draft, device: "cpu" } }),
      });
      expect(placement.targetDevice).toBe(GPU);
      expect(tokens).toEqual(reference);
      if (mode !== "ar") expect(stats.acceptedTokens).toBeGreaterThan(0);
    });
  }

  it(`both models on ${GPU} (draft device named): psd, the CPU's ar tokens`, async () => {
    const { placement, tokens } = await run({ mode: "psd", draft: { model: pair.draft, device: GPU } });
    expect(placement).toMatchObject({ targetDevice: GPU, draftDevice: GPU, kvUnified: { target: true, draft: true } });
    expect(tokens).toEqual(reference);
  });

  it("sampled psd on the GPU keeps the target's distribution (first token, chi-square)", async () => {
    const prompt = "The meaning of life is";
    const temperature = 1.5;
    const n = 400;
    const p = await nextTokenDistribution(cpuTarget, prompt, temperature);
    const e = await createEngine({
      mode: "psd",
      contextSize: 32,
      batchSize: 16,
      draftTokens: 3,
      target: { model: pair.target },
      draft: { model: pair.draft },
      temperature,
    });
    let samples: number[];
    try {
      expect(e.placement.targetDevice).toBe(GPU);
      samples = await Promise.all(
        Array.from({ length: n }, (_, i) =>
          e.generate(prompt, { maxTokens: 1, seed: 5000 + i }).then((r) => r.tokens[0]!),
        ),
      );
    } finally {
      await e.close();
    }
    const fit = chiSquareFit(samples, p);
    expect(fit.stat, fit.message).toBeLessThan(fit.critical);
  }, 600_000);

  it("a KV cache too large for the device is refused with a clear error; the process goes on", async () => {
    const tooLarge = { mode: "ar" as const, batchSize: 16, target: { model: pair.target }, draft: undefined };
    // past the device's memory (llvmpipe reports 2 GiB): 16 x 131072 tokens of a 4-layer, 128-wide KV = 4 GiB
    await expect(run({ ...tooLarge, contextSize: 131072 })).rejects.toThrow(/KV cache .* does not fit Vulkan0/);
    // within the memory, but one layer's tensor (192 MiB) beyond llvmpipe's 128 MiB storage buffer range, where
    // ggml's scheduler would abort the process
    await expect(run({ ...tooLarge, contextSize: 49152 })).rejects.toThrow(/one layer's KV tensor .* Vulkan0/);
    expect((await run({ mode: "ar", draft: undefined })).tokens).toEqual(reference);
  });

  it("the CLI: inspect lists the device; generate --draft-device puts both models there", () => {
    const cli = (args: string[]) =>
      execFileSync(process.execPath, [path.join(root, "dist", "cli", "main.js"), ...args], {
        cwd: root,
        encoding: "utf8",
        env: { ...process.env, MINEDRAFT_GPU: "auto" },
        timeout: 300_000,
      });
    expect(cli(["inspect", "--devices", "--vulkan-devices", String(DEVICE_INDEX)])).toMatch(/Vulkan0\s+gpu\s+Vulkan/);
    const out = JSON.parse(
      cli([
        "generate",
        ...["--model", pair.target, "--draft", pair.draft, "--vulkan-devices", String(DEVICE_INDEX)],
        ...["--draft-device", GPU, "--mode", "psd", "--max-tokens", String(MAX_TOKENS), "--ctx-size", "128"],
        ...["--prompt", PROMPTS[0]!, "--json"],
      ]),
    );
    expect(out.summary.placement).toMatchObject({ targetDevice: GPU, draftDevice: GPU });
    expect(out.requests[0].tokens).toEqual(reference[0]);
  });
});
