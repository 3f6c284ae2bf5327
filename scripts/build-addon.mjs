#!/usr/bin/env node
// Builds the native addon against llama.cpp: headers from node-llama-cpp's bundled source,
// libraries prebuilt (node-llama-cpp's platform package) or from `npm run build:source`.
// Needs no network: the headers come from a local git bundle and node-gyp uses the local Node headers.
import { execFileSync } from "node:child_process";
import { existsSync, realpathSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { bundlePath, depsDir, libDir } from "../src/native/llama-paths.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

export function extractLlamaSource() {
  if (existsSync(path.join(depsDir, "include", "llama.h"))) return;
  console.error(`minedraft: extracting llama.cpp source from ${bundlePath()}`);
  execFileSync("git", ["-c", "advice.detachedHead=false", "clone", "--quiet", bundlePath(), depsDir], {
    stdio: "inherit",
  });
}

export function nodeGypScript() {
  if (process.env.npm_config_node_gyp && existsSync(process.env.npm_config_node_gyp))
    return process.env.npm_config_node_gyp;
  const npmBin = realpathSync(execFileSync("sh", ["-c", "command -v npm"]).toString().trim());
  const candidate = path.join(path.dirname(npmBin), "..", "node_modules", "node-gyp", "bin", "node-gyp.js");
  if (existsSync(candidate)) return candidate;
  throw new Error("node-gyp not found (it ships with npm)");
}

export function localNodeDir() {
  // node-gyp must not download headers: point it at the running Node's own include/node.
  const prefix = path.resolve(path.dirname(process.execPath), "..");
  return existsSync(path.join(prefix, "include", "node", "node_api.h")) ? prefix : undefined;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  extractLlamaSource();
  console.error(`minedraft: building the addon against ${libDir()}`);
  const args = [nodeGypScript(), "rebuild", "--loglevel=warn", `--jobs=${process.env.JOBS ?? "max"}`];
  const nodedir = localNodeDir();
  if (nodedir) args.push(`--nodedir=${nodedir}`);
  if (process.env.MINEDRAFT_DEBUG) args.push("--debug");
  execFileSync(process.execPath, args, { cwd: root, stdio: "inherit" });
}
