// What `npm pack` ships: what a user needs to load, build and run the library, and nothing else
// (no tests, no developer tools, no experiments). Runs npm pack --dry-run without lifecycle scripts.
import { execFileSync } from "node:child_process";
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
      "src/native/llama-paths.mjs",
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
    expect(shippedScripts.sort()).toEqual(["scripts/build-addon.mjs", "scripts/build-source.mjs"]);
    expect(files.filter((f) => f.startsWith("test/") || f.startsWith("docs/") || f.startsWith(".cache/"))).toEqual([]);
    expect(files.filter((f) => f.startsWith("src/") && f !== "src/native/llama-paths.mjs")).toEqual([]);
  });
});
