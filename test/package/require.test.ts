// The package loads both ways: `import` and, on Node >= 20.19 / 22.12 (require(esm) on by default), `require()`
// from a CommonJS file, through the package's own exports map (a node_modules/minedraft link to this checkout).
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureBuilt, repoRoot } from "../cli/helpers.js";

let dir = "";

beforeAll(() => {
  ensureBuilt();
  dir = mkdtempSync(path.join(tmpdir(), "minedraft-require-"));
  mkdirSync(path.join(dir, "node_modules"));
  symlinkSync(repoRoot, path.join(dir, "node_modules", "minedraft"), "dir");
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function run(file: string, source: string): string {
  writeFileSync(path.join(dir, file), source);
  return execFileSync(process.execPath, [file], { cwd: dir, encoding: "utf8" }).trim();
}

describe("loading the package", () => {
  it('require("minedraft") works from a CommonJS file', () => {
    const out = run(
      "smoke.cjs",
      'const m = require("minedraft");\nconsole.log(typeof m.createEngine, typeof m.ensureSyntheticPair);\n',
    );
    expect(out).toBe("function function");
  });

  it('import "minedraft" works from an ES module', () => {
    const out = run(
      "smoke.mjs",
      'import { createEngine } from "minedraft";\nconst m = await import("minedraft");\n' +
        "console.log(typeof createEngine, typeof m.default);\n",
    );
    expect(out).toBe("function undefined");
  });
});
