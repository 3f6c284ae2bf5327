// Where the model cache is (a pure function of env, platform and home) and `minedraft cache path|list|clear`
// on a throwaway folder (MINEDRAFT_CACHE): the tests never touch the user's cache.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { resolveCacheDir } from "../../src/common/cache-dir.js";
import { ensureBuilt, runCli } from "./helpers.js";

describe("resolveCacheDir", () => {
  const home = "/home/u";
  it("prefers MINEDRAFT_CACHE, then an absolute XDG_CACHE_HOME, then ~/.cache/minedraft on Linux", () => {
    expect(resolveCacheDir({ env: { MINEDRAFT_CACHE: "/c", XDG_CACHE_HOME: "/x" }, platform: "linux", home })).toBe(
      "/c",
    );
    expect(resolveCacheDir({ env: { XDG_CACHE_HOME: "/x" }, platform: "linux", home })).toBe("/x/minedraft");
    expect(resolveCacheDir({ env: { XDG_CACHE_HOME: "relative" }, platform: "linux", home })).toBe(
      "/home/u/.cache/minedraft",
    );
    expect(resolveCacheDir({ env: {}, platform: "linux", home })).toBe("/home/u/.cache/minedraft");
    expect(resolveCacheDir({ env: { MINEDRAFT_CACHE: "" }, platform: "linux", home })).toBe("/home/u/.cache/minedraft");
  });

  it("uses the platform's cache folder on macOS and Windows", () => {
    expect(resolveCacheDir({ env: {}, platform: "darwin", home })).toBe("/home/u/Library/Caches/minedraft");
    expect(
      resolveCacheDir({
        env: { LOCALAPPDATA: "C:\\Users\\u\\AppData\\Local" },
        platform: "win32",
        home: "C:\\Users\\u",
      }),
    ).toBe("C:\\Users\\u\\AppData\\Local\\minedraft\\Cache");
  });

  it("is what the test run uses: the repo's .cache/models (vitest.config.ts)", () => {
    expect(process.env.MINEDRAFT_CACHE).toBeTruthy();
  });
});

describe("minedraft cache", () => {
  let dir = "";
  beforeAll(() => {
    ensureBuilt();
    dir = mkdtempSync(path.join(tmpdir(), "minedraft-cache-"));
    for (const [name, files] of [
      ["tiny-a", ["target.gguf", "draft.gguf", "complete.json"]],
      ["tiny-b", ["target.gguf"]],
      ["not-a-pair", ["notes.txt"]],
    ] as const) {
      mkdirSync(path.join(dir, name));
      for (const f of files) writeFileSync(path.join(dir, name, f), "x".repeat(1000));
    }
  });
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("path prints the folder", async () => {
    const r = await runCli(["cache", "path"], { env: { MINEDRAFT_CACHE: dir } });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${dir}\n`);
  });

  it("list shows each pair with its size", async () => {
    const r = await runCli(["cache", "list"], { env: { MINEDRAFT_CACHE: dir } });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/2\.9 KiB\s+tiny-a\n/);
    expect(r.stdout).toMatch(/1000 B\s+tiny-b \(incomplete\)\n/);
    expect(r.stdout).not.toContain("not-a-pair");
    expect(r.stdout).toContain(`2 pairs`);
  });

  it("clear removes the pairs, and only them, and says so", async () => {
    const r = await runCli(["cache", "clear"], { env: { MINEDRAFT_CACHE: dir } });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`removed ${path.join(dir, "tiny-a")}`);
    expect(r.stdout).toContain("removed 2 pairs");
    expect(readdirSync(dir)).toEqual(["not-a-pair"]);
    expect(existsSync(path.join(dir, "not-a-pair", "notes.txt"))).toBe(true);
  });
});
