#!/usr/bin/env node
// npm run prebuild: makes prebuilds/<platform>-<arch>/minedraft.<tags>.node and minedraft_synth.<tags>.node
// with prebuildify (Node-API, so one binary per platform serves every Node version; stripped; tagged glibc/musl),
// and copies the default tokenizer (ggml-vocab-llama-spm.gguf) to vocab/ for the synthetic-model generator.
// Run by prepack, so a tarball always ships binaries made from its own sources (they are not committed).
// Links node-llama-cpp's prebuilt llama.cpp (never build-source/), found at run time through the rpaths
// $ORIGIN/../../node_modules/@node-llama-cpp/... and $ORIGIN/../../../@node-llama-cpp/... (binding.gyp): a
// prebuilds/<platform>-<arch>/ folder is as deep as build/Release/. Needs no network (local Node headers).
import { copyFileSync, existsSync, mkdirSync, readdirSync, rmSync, statSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { extractLlamaSource, localNodeDir, nodeGypScript } from "./build-addon.mjs";
import { findLib, sourceBuildLibDir, depsDir } from "../src/native/llama-paths.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const require = createRequire(path.join(root, "package.json"));
const prebuildify = require("prebuildify");

if (existsSync(sourceBuildLibDir) && findLib(sourceBuildLibDir, "llama")) {
  console.error("prebuild: build-source/lib exists; prebuilds must link node-llama-cpp's prebuilt llama.cpp");
  console.error("(move build-source/ away and run again)");
  process.exit(1);
}
extractLlamaSource();
const nodedir = localNodeDir();
if (nodedir) process.env.npm_config_nodedir = nodedir; // node-gyp reads it: no header download
process.env.MINEDRAFT_PREBUILD = "1"; // no absolute rpath (src/native/llama-paths.mjs)
const builds = path.join(root, "prebuilds", `${process.platform}-${process.arch}`);
rmSync(builds, { recursive: true, force: true });
const opts = {
  cwd: root,
  napi: true,
  strip: process.platform === "linux" || process.platform === "darwin",
  tagLibc: process.platform === "linux",
  name: "minedraft",
  nodeGyp: nodeGypScript(),
  targets: [process.versions.node], // Node-API: the headers' version does not matter; these are local
};
await new Promise((resolve, reject) => prebuildify(opts, (err) => (err ? reject(err) : resolve())));
// prebuildify moves one .node per run (the first in build/Release: minedraft.node); the same node-gyp run
// made minedraft_synth.node, which gets the same tags and the same strip.
const [main] = readdirSync(builds).filter((f) => f.startsWith("minedraft."));
const synthName = main.replace(/^minedraft\./, "minedraft_synth.");
const synthSrc = path.join(root, "build", "Release", "minedraft_synth.node");
copyFileSync(synthSrc, path.join(builds, synthName));
if (opts.strip)
  execFileSync(
    "strip",
    process.platform === "darwin"
      ? ["-Sx", path.join(builds, synthName)]
      : ["--strip-all", path.join(builds, synthName)],
  );
// prebuildify moved build/Release/minedraft.node away: put a copy back, so this checkout's build stays whole
copyFileSync(path.join(builds, main), path.join(root, "build", "Release", "minedraft.node"));
mkdirSync(path.join(root, "vocab"), { recursive: true });
copyFileSync(
  path.join(depsDir, "models", "ggml-vocab-llama-spm.gguf"),
  path.join(root, "vocab", "ggml-vocab-llama-spm.gguf"),
);
for (const f of [main, synthName]) {
  console.error(
    `prebuild: ${path.relative(root, path.join(builds, f))} (${statSync(path.join(builds, f)).size} bytes)`,
  );
}
