// Loads the synthetic-pair generator: its own native module (build/Release/minedraft_synth.node or its prebuilt binary, built from
// cpp/synth/ as the binding.gyp target minedraft_synth), kept out of the inference addon (minedraft.node).
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { addonPath } from "../native/binaries.mjs";
import { loadAddon } from "../native/addon.js";

export interface SynthAddon {
  /** writes <outDir>/target.gguf and <outDir>/draft.gguf (see cpp/synth/addon.cc for the options) */
  synthesize(options: Record<string, unknown>, onProgress?: (fraction: number, stage: string) => void): Promise<void>;
}

const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");

function synthAddonPath(): string {
  // An alternative build (e.g. the AddressSanitizer build of scripts/asan-check.sh).
  const override = process.env.MINEDRAFT_SYNTH_ADDON_PATH;
  if (override) {
    const p = path.resolve(override);
    if (!existsSync(p)) throw new Error(`MINEDRAFT_SYNTH_ADDON_PATH points to ${p}, which does not exist`);
    return p;
  }
  return addonPath("minedraft_synth", packageRoot);
}

let loading: Promise<SynthAddon> | undefined;

/** The generator's module, loaded once. */
export function loadSynthAddon(): Promise<SynthAddon> {
  loading ??= (async () => {
    // Both modules share libggml-base, whose log the inference addon routes to minedraft's logger: loaded
    // first, it keeps gguf's messages about a bad vocab file off stderr, as they always were.
    await loadAddon();
    return createRequire(import.meta.url)(synthAddonPath()) as SynthAddon;
  })().catch((e: unknown) => {
    loading = undefined; // a later call may retry (e.g. after the addon is built)
    throw e;
  });
  return loading;
}
