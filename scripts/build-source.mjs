#!/usr/bin/env node
// npm run build:source -- --gpu cpu|cuda|metal|vulkan [--cuda-arch 90] [--jobs N] [--rpc] [--openmp]
// Builds llama.cpp from node-llama-cpp's bundled source with cmake-js into build-source/lib, then
// rebuilds the addon, which links those libraries from then on (delete build-source/ to go back to
// the prebuilt ones and run npm run build:addon). --rpc adds ggml's RPC client backend (models on
// devices of other machines, docs/scaling.md) and build-source/lib/rpc-server, which serves them.
import { execFileSync } from "node:child_process";
import { cpus } from "node:os";
import { mkdirSync, rmSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { extractLlamaSource } from "./build-addon.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const args = process.argv.slice(2);
function opt(name, dflt) {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? args[i + 1] : dflt;
}
const gpu = opt("gpu", "cpu");
const GPU_FLAGS = {
  cpu: [],
  cuda: ["--CDGGML_CUDA=ON", ...(opt("cuda-arch") ? [`--CDCMAKE_CUDA_ARCHITECTURES=${opt("cuda-arch")}`] : [])],
  metal: ["--CDGGML_METAL=ON", "--CDGGML_METAL_EMBED_LIBRARY=ON"],
  vulkan: ["--CDGGML_VULKAN=ON"],
};
const rpc = args.includes("--rpc");
const openmp = args.includes("--openmp");
if (!GPU_FLAGS[gpu]) {
  console.error(`build:source: --gpu must be one of ${Object.keys(GPU_FLAGS).join(", ")}, got ${gpu}`);
  process.exit(2);
}
extractLlamaSource();
if (rpc) applyRpcPatch();
// Fresh library folder (no stale backend from an earlier --gpu); CMake will not recreate it itself.
rmSync(path.join(root, "build-source", "lib"), { recursive: true, force: true });
mkdirSync(path.join(root, "build-source", "lib"), { recursive: true });
const cmakeJs = path.join(root, "node_modules", "cmake-js", "bin", "cmake-js");
const jobs = opt("jobs", String(cpus().length));
console.error(
  `build:source: building llama.cpp (${gpu}${rpc ? ", rpc" : ""}${openmp ? ", OpenMP" : ""}) with ${jobs} jobs into build-source/lib`,
);
// GGML_RPC is set either way, so a build without --rpc in an existing folder drops the RPC backend.
const rpcFlag = `--CDGGML_RPC=${rpc ? "ON" : "OFF"}`;
// Without OpenMP by default (ggml's own threadpool, as node-llama-cpp's prebuilt binaries); --openmp builds
// as llama.cpp does. With OpenMP every graph node ends in an omp barrier of the calling thread's team; two
// contexts on two worker threads make two teams, more OpenMP threads than cores, and libgomp then cuts each
// barrier's spin to ~100 turns before a futex sleep. Side by side on the 2-core VM (docs/bench/serve/openmp-ab.json)
// the build without it ran 1.02-1.04x for ar, 1.03-1.10x for sd, psd and auto.
const openmpFlag = `--CDGGML_OPENMP=${openmp ? "ON" : "OFF"}`;
const common = [
  "--directory",
  root,
  "--out",
  path.join("build-source", "cmake"),
  ...GPU_FLAGS[gpu],
  rpcFlag,
  openmpFlag,
];
// configure every time, so a different --gpu takes effect in an existing build folder. cmake-js
// downloads Node's headers from nodejs.org for every project except a Node-API addon, which
// package.json declares (binary.napi_versions): this build needs no Node headers, and offline the
// download failed ("fetch failed") before llama.cpp was configured.
execFileSync(process.execPath, [cmakeJs, "configure", ...common], { cwd: root, stdio: "inherit" });
execFileSync(process.execPath, [cmakeJs, "build", ...common, "--parallel", jobs], { cwd: root, stdio: "inherit" });
execFileSync(process.execPath, [path.join(root, "scripts", "build-addon.mjs")], { cwd: root, stdio: "inherit" });
console.error("build:source: done; the addon now links build-source/lib");

/**
 * ggml's RPC client aborts the process when a server is lost mid-run (RPC_STATUS_ASSERT in its dispatcher
 * thread) and waits for ever on a silent one. patches/ggml-rpc-lost-server.patch makes the calls waiting on a
 * lost server throw instead, and bounds each socket wait by MINEDRAFT_RPC_TIMEOUT_MS (rpcTimeoutMs), which
 * fails the native job and its requests (the context then refuses further decodes). Applied once to
 * deps/llama.cpp (a git clone of node-llama-cpp's source bundle); a no-op when already applied.
 */
function applyRpcPatch() {
  const patch = path.join(root, "scripts", "patches", "ggml-rpc-lost-server.patch");
  const dir = path.join(root, "deps", "llama.cpp");
  const git = (...a) => execFileSync("git", ["-C", dir, ...a, patch], { stdio: "pipe" });
  try {
    git("apply", "--reverse", "--check");
    return; // already applied
  } catch {}
  try {
    git("apply", "--check");
  } catch {
    // an earlier version of the patch is applied: only the patch touches this folder, so start it over
    execFileSync("git", ["-C", dir, "checkout", "--", "ggml/src/ggml-rpc"], { stdio: "pipe" });
  }
  git("apply");
  console.error("build:source: applied scripts/patches/ggml-rpc-lost-server.patch (a lost RPC server fails calls)");
}
