#!/usr/bin/env node
// Where the llama.cpp headers and libraries that the addon builds against live.
// One source for build time and run time: binding.gyp (`<!(node src/native/llama-paths.mjs KEY)`) and
// scripts/build-addon.mjs run it before TypeScript is compiled, so it is plain ESM (tsc copies it to dist/).
// Prebuilt: node-llama-cpp's platform package (bins/<platform>/) + headers extracted from its source bundle.
// From source: build-source/lib (written by `npm run build:source`), which takes precedence when present.
import { createRequire } from "node:module";
import { existsSync, readdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

// two levels up from src/native/ (and from dist/native/)
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const require = createRequire(path.join(root, "package.json"));

export const depsDir = path.join(root, "deps", "llama.cpp");
export const sourceBuildLibDir = path.join(root, "build-source", "lib");

export function platformPackage() {
  return (
    `@node-llama-cpp/${process.platform === "darwin" ? "mac" : process.platform === "win32" ? "win" : "linux"}-` +
    `${process.arch}${process.platform === "darwin" && process.arch === "arm64" ? "-metal" : ""}`
  );
}

/** A package's folder, found the way Node resolves it (exports maps may hide package.json). */
export function packageDir(name) {
  for (const dir of require.resolve.paths(name) ?? []) {
    if (existsSync(path.join(dir, name, "package.json"))) return path.join(dir, name);
  }
  return undefined;
}

export function bundlePath() {
  const dir = packageDir("node-llama-cpp");
  if (!dir) throw new Error("node-llama-cpp is not installed (npm install node-llama-cpp@3.21.1)");
  return path.join(dir, "llama", "gitRelease.bundle");
}

export function prebuiltLibDir() {
  const name = platformPackage();
  const dir = packageDir(name);
  if (!dir) {
    throw new Error(
      `${name} is not installed: minedraft links node-llama-cpp's prebuilt llama.cpp (npm install ` +
        `${name}@3.21.1), or run npm run build:source`,
    );
  }
  const bins = path.join(dir, "bins");
  const sub = readdirSync(bins).find((d) => existsSync(path.join(bins, d)) && !d.startsWith("_"));
  return path.join(bins, sub);
}

export function libDir() {
  if (existsSync(sourceBuildLibDir) && findLib(sourceBuildLibDir, "llama")) return sourceBuildLibDir;
  return prebuiltLibDir();
}

/** The file name of lib<name>[.version].so / .dylib in dir, or undefined. */
export function findLib(dir, name) {
  const re = new RegExp(`^lib${name}(\\.v?[0-9.]+)?\\.(so|dylib)$`);
  return readdirSync(dir).find((f) => re.test(f));
}

/**
 * node-llama-cpp's prebuilt GPU backends for this platform, in order of preference. Each is a ggml
 * backend module built from the same llama.cpp release as the CPU package (same libggml-base).
 */
export function gpuBackendCandidates() {
  if (process.platform !== "linux" && process.platform !== "win32") return []; // Metal ships in the mac package itself
  const os = process.platform === "win32" ? "win" : "linux";
  const ext = process.platform === "win32" ? "dll" : "so";
  return [
    {
      backend: "cuda",
      pkg: `@node-llama-cpp/${os}-${process.arch}-cuda`,
      file: `${process.platform === "win32" ? "" : "lib"}ggml-cuda.${ext}`,
    },
    {
      backend: "vulkan",
      pkg: `@node-llama-cpp/${os}-${process.arch}-vulkan`,
      file: `${process.platform === "win32" ? "" : "lib"}ggml-vulkan.${ext}`,
    },
  ].map((c) => {
    const dir = packageDir(c.pkg);
    if (!dir) return { ...c, path: undefined };
    const bins = path.join(dir, "bins");
    const sub = existsSync(bins) ? readdirSync(bins).find((d) => existsSync(path.join(bins, d, c.file))) : undefined;
    return { ...c, path: sub ? path.join(bins, sub, c.file) : undefined };
  });
}

export function includeDirs() {
  return [path.join(depsDir, "include"), path.join(depsDir, "ggml", "include")];
}

export function linkLibs() {
  const dir = libDir();
  return ["llama", "ggml", "ggml-base"].map((n) => {
    const f = findLib(dir, n);
    if (!f) throw new Error(`lib${n} not found in ${dir}`);
    return path.join(dir, f);
  });
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const key = process.argv[2];
  const out = {
    include: () => includeDirs().join(" "),
    libdir: () => libDir(),
    // the absolute rpath of a local build; a prebuilt binary (MINEDRAFT_PREBUILD=1, scripts/prebuild.mjs) gets
    // none (its relative rpaths follow in binding.gyp), so it names no folder of the machine that made it
    rpath: () =>
      process.env.MINEDRAFT_PREBUILD === "1"
        ? "'$$ORIGIN/../../node_modules/@node-llama-cpp/linux-x64/bins/linux-x64'"
        : libDir(),
    libs: () => linkLibs().join(" "),
  }[key];
  if (!out) {
    console.error("usage: llama-paths.mjs include|libdir|rpath|libs");
    process.exit(2);
  }
  process.stdout.write(out());
}
