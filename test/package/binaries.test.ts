// Which native module file is loaded (build/ first, then the prebuilt ones, told apart by name and matched by
// node-gyp-build's tag rules), and what a missing addon's error says to run: in a checkout npm run build:addon,
// in an installed package (under node_modules) npm rebuild minedraft.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { addonPath, compiledAddonPath, prebuiltAddonPath } from "../../src/native/binaries.mjs";

const tmp = mkdtempSync(path.join(tmpdir(), "minedraft-binaries-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function touch(...parts: string[]): string {
  const p = path.join(...parts);
  mkdirSync(path.dirname(p), { recursive: true });
  writeFileSync(p, "");
  return p;
}

describe.runIf(process.platform === "linux" && process.arch === "x64")("native module files", () => {
  it("picks each module's prebuild by name, and glibc over musl on glibc", () => {
    const root = path.join(tmp, "pkg");
    const dir = path.join(root, "prebuilds", "linux-x64");
    touch(dir, "minedraft.musl.node");
    const main = touch(dir, "minedraft.glibc.node");
    const synth = touch(dir, "minedraft_synth.glibc.node");
    touch(root, "prebuilds", "darwin-arm64", "minedraft.node");
    expect(prebuiltAddonPath("minedraft", root)).toBe(main);
    expect(prebuiltAddonPath("minedraft_synth", root)).toBe(synth);
    expect(addonPath("minedraft_synth", root)).toBe(synth);
    expect(prebuiltAddonPath("other", root)).toBeUndefined();
  });

  it("prefers build/Release (compiled here) over the prebuilds", () => {
    const root = path.join(tmp, "pkg");
    const built = touch(root, "build", "Release", "minedraft.node");
    expect(compiledAddonPath("minedraft", root)).toBe(built);
    expect(addonPath("minedraft", root)).toBe(built);
  });
});

describe("a missing addon", () => {
  it("in a checkout: run npm run build:addon", () => {
    const root = path.join(tmp, "checkout");
    mkdirSync(root, { recursive: true });
    expect(() => addonPath("minedraft", root)).toThrow(/not built.*run npm run build:addon$/);
  });

  it("installed under node_modules: run npm rebuild minedraft, naming what compiling needs", () => {
    const root = path.join(tmp, "app", "node_modules", "minedraft");
    mkdirSync(root, { recursive: true });
    expect(() => addonPath("minedraft_synth", root)).toThrow(
      /run npm rebuild minedraft .*g\+\+, make, python3 and git/,
    );
    expect(() => addonPath("minedraft_synth", root)).not.toThrow(/build:addon/);
  });
});
