// What `npm pack` ships: what a user needs to load, build and run the library, and nothing else
// (no tests, no developer tools, no experiments, no source maps). Runs npm pack --dry-run without lifecycle
// scripts, so the prebuilt binaries (made by prepack) are there only when npm run prebuild has run: the `files`
// field is checked for them instead.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");

function packedFiles(): string[] {
  const out = execFileSync("npm", ["pack", "--dry-run", "--json", "--ignore-scripts"], { cwd: root, encoding: "utf8" });
  const [pack] = JSON.parse(out) as { files: { path: string }[] }[];
  return pack.files.map((f) => f.path);
}

describe("npm pack", () => {
  const files = packedFiles();

  it("ships the build, the addon's sources and the build scripts", () => {
    for (const f of [
      "dist/index.js",
      "dist/cli/main.js",
      "dist/native/llama-paths.mjs",
      "dist/native/binaries.mjs",
      "src/native/llama-paths.mjs",
      "src/native/binaries.mjs",
      "scripts/install.mjs",
      "scripts/build-addon.mjs",
      "binding.gyp",
      "package.json",
      "README.md",
    ]) {
      expect(files, f).toContain(f);
    }
    expect(files.some((f) => f.startsWith("cpp/") && f.endsWith(".cc"))).toBe(true);
  });

  it("ships no tests, no developer tools and no TypeScript sources", () => {
    const shippedScripts = files.filter((f) => f.startsWith("scripts/") && !f.endsWith(".md"));
    expect(shippedScripts.sort()).toEqual([
      "scripts/build-addon.mjs",
      "scripts/build-source.mjs",
      "scripts/install.mjs",
    ]);
    expect(files.filter((f) => f.startsWith("test/") || f.startsWith("docs/") || f.startsWith(".cache/"))).toEqual([]);
    expect(files.filter((f) => f.startsWith("src/") && !f.startsWith("src/native/"))).toEqual([]);
    expect(files.filter((f) => f.startsWith("src/")).sort()).toEqual([
      "src/native/binaries.mjs",
      "src/native/llama-paths.mjs",
    ]);
  });

  it("ships no source maps (they would point at TypeScript sources that are not shipped)", () => {
    expect(files.filter((f) => f.endsWith(".map"))).toEqual([]);
  });

  it("ships the prebuilt binaries and the default tokenizer when they are made (prepack)", () => {
    const pkg = JSON.parse(readFileSync(path.join(root, "package.json"), "utf8")) as {
      files: string[];
      scripts: Record<string, string>;
    };
    expect(pkg.files).toContain("prebuilds/");
    expect(pkg.files).toContain("vocab/");
    expect(pkg.scripts.prepack).toContain("scripts/prebuild.mjs");
    for (const f of files.filter((f) => f.startsWith("prebuilds/")))
      expect(f).toMatch(/^prebuilds\/[a-z0-9]+-[a-z0-9+]+\/minedraft(_synth)?\.[a-z.]*node$/);
    expect(files.filter((f) => f.startsWith("vocab/"))).toEqual(
      files.includes("vocab/ggml-vocab-llama-spm.gguf") ? ["vocab/ggml-vocab-llama-spm.gguf"] : [],
    );
  });
});
