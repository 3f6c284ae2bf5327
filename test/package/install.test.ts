// The install script of an installed package (a copy under <tmp>/node_modules/minedraft) on a PATH with only node
// and sh: a prebuilt binary that loads means nothing to compile; none, or one that does not load, means compiling,
// which stops with the list of missing tools and `npm rebuild minedraft`. The prebuilds are the checkout's own
// build/Release modules under their prebuilt names.
import { spawnSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { repoRoot } from "../cli/helpers.js";

let tmp = "";
let pkg = "";
let bin = "";

beforeAll(() => {
  tmp = mkdtempSync(path.join(tmpdir(), "minedraft-install-"));
  const nm = path.join(tmp, "node_modules");
  pkg = path.join(nm, "minedraft");
  mkdirSync(path.join(pkg, "src"), { recursive: true });
  for (const f of ["package.json", "scripts"]) cpSync(path.join(repoRoot, f), path.join(pkg, f), { recursive: true });
  cpSync(path.join(repoRoot, "src", "native"), path.join(pkg, "src", "native"), { recursive: true });
  for (const dep of ["@node-llama-cpp", "node-gyp-build", "node-llama-cpp"])
    symlinkSync(realpathSync(path.join(repoRoot, "node_modules", dep)), path.join(nm, dep));
  bin = path.join(tmp, "bin");
  mkdirSync(bin);
  symlinkSync(process.execPath, path.join(bin, "node"));
  symlinkSync("/bin/sh", path.join(bin, "sh"));
});

afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

function install(): { code: number | null; stderr: string } {
  const r = spawnSync(path.join(bin, "node"), ["scripts/install.mjs"], {
    cwd: pkg,
    env: { PATH: bin },
    encoding: "utf8",
  });
  return { code: r.status, stderr: r.stderr };
}

describe.runIf(process.platform === "linux" && process.arch === "x64")("install script (installed package)", () => {
  it("without a prebuilt binary and without a compiler: names the missing tools and npm rebuild minedraft", () => {
    const r = install();
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("no prebuilt minedraft for linux-x64: building from source");
    expect(r.stderr).toContain("these tools are missing: g++, make, python3, git");
    expect(r.stderr).toContain("then run: npm rebuild minedraft");
  });

  it("with prebuilt binaries that load: compiles nothing", () => {
    const dir = path.join(pkg, "prebuilds", "linux-x64");
    mkdirSync(dir, { recursive: true });
    for (const name of ["minedraft", "minedraft_synth"])
      cpSync(path.join(repoRoot, "build", "Release", `${name}.node`), path.join(dir, `${name}.glibc.node`));
    const r = install();
    expect(r.stderr).toContain("using the prebuilt addon for linux-x64 (nothing to compile)");
    expect(r.code).toBe(0);
  });

  it("with a prebuilt binary that does not load: says why, then falls back to compiling", () => {
    writeFileSync(path.join(pkg, "prebuilds", "linux-x64", "minedraft_synth.glibc.node"), "not an ELF file");
    const r = install();
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/the prebuilt prebuilds\/linux-x64\/minedraft_synth\.glibc\.node does not load/);
    expect(r.stderr).toContain("then run: npm rebuild minedraft");
  });
});
