#!/usr/bin/env node
// npm's install script. An installed package (under node_modules) loads its prebuilt binaries
// (prebuilds/<platform>-<arch>/, made by scripts/prebuild.mjs) when they fit this machine: nothing to compile.
// Otherwise -- a git checkout, no matching prebuild, or MINEDRAFT_BUILD_FROM_SOURCE=1 -- it compiles the addon
// (scripts/build-addon.mjs: node-gyp, needs g++, make, python3 and git) and says what is missing when it cannot.
import { execFileSync, spawnSync } from "node:child_process";
import { rmSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { ADDON_NAMES, installedAsDependency, prebuiltAddonPath } from "../src/native/binaries.mjs";
import { depsDir, packageDir, platformPackage } from "../src/native/llama-paths.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const require = createRequire(import.meta.url);
const installed = installedAsDependency(root);
const log = (s) => console.error(`minedraft: ${s}`);

/** Loads each prebuilt module (dlopen resolves llama.cpp's libraries through the rpaths); why not, or "". */
function prebuildsLoad() {
  for (const name of ADDON_NAMES) {
    const p = prebuiltAddonPath(name, root);
    if (!p) return `no prebuilt ${name} for ${process.platform}-${process.arch}`;
    try {
      require(p);
    } catch (e) {
      return `the prebuilt ${path.relative(root, p)} does not load (${e instanceof Error ? e.message : e})`;
    }
  }
  return "";
}

function has(cmd) {
  return spawnSync("sh", ["-c", `command -v ${cmd}`], { stdio: "ignore" }).status === 0;
}

function fail(lines) {
  console.error(["", "minedraft: could not install its native addon.", ...lines.map((l) => `  ${l}`), ""].join("\n"));
  process.exit(1);
}

const fromSource = process.env.MINEDRAFT_BUILD_FROM_SOURCE === "1" || !installed;
if (!fromSource) {
  const why = prebuildsLoad();
  if (!why) {
    log(`using the prebuilt addon for ${process.platform}-${process.arch} (nothing to compile)`);
    process.exit(0);
  }
  log(`${why}: building from source`);
}

if (!packageDir(platformPackage())) {
  fail([
    `${platformPackage()} is not installed: minedraft links node-llama-cpp's prebuilt llama.cpp from it.`,
    "If you installed with --omit=optional (or --no-optional), install without it: npm leaves out that package,",
    `which is an optional dependency. If npm has no such package, ${process.platform}-${process.arch} is not supported.`,
  ]);
}
const missing = [];
if (!has("c++") && !has("g++") && !has("clang++")) missing.push("g++");
for (const tool of ["make", "python3", "git"]) if (!has(tool)) missing.push(tool);
if (missing.length > 0) {
  fail([
    `There is no prebuilt binary for ${process.platform}-${process.arch} that loads here, so it must be compiled,`,
    `and these tools are missing: ${missing.join(", ")}.`,
    "Install them (Debian/Ubuntu: sudo apt-get install g++ make python3 git; Fedora: sudo dnf install gcc-c++ make",
    "python3 git; macOS: xcode-select --install), then run: npm rebuild minedraft",
  ]);
}
try {
  execFileSync(process.execPath, [path.join(root, "scripts", "build-addon.mjs")], { cwd: root, stdio: "inherit" });
} catch {
  fail([
    "Compiling the addon failed (the compiler's messages are above).",
    installed
      ? "Fix what they say, then run: npm rebuild minedraft"
      : "Fix what they say, then run: npm run build:addon",
  ]);
}
if (installed) {
  // the extracted llama.cpp source (~200 MB) was only needed for its headers, the objects only for linking
  rmSync(path.dirname(depsDir), { recursive: true, force: true });
  rmSync(path.join(root, "build", "Release", "obj.target"), { recursive: true, force: true });
}
