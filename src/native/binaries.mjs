// Where minedraft's two native modules are: build/Release (compiled here: a git checkout, or an install that
// built from source) first, else the prebuilt binaries in prebuilds/<platform>-<arch>/ that the package ships,
// matched by node-gyp-build's tag rules (platform, arch, libc; Node-API, so any Node version).
// node-gyp-build itself loads one module per package; minedraft has two (minedraft, minedraft_synth), so the
// files are told apart by name (the part before the first dot) and node-gyp-build's tag matching picks among them.
// Plain ESM: scripts/install.mjs uses it before TypeScript is compiled (tsc copies it to dist/).
import { existsSync, readdirSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

// two levels up from src/native/ (and from dist/native/)
export const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const require = createRequire(path.join(packageRoot, "package.json"));

/** The binding.gyp targets, one .node file each. */
export const ADDON_NAMES = ["minedraft", "minedraft_synth"];

function readdir(dir) {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** build/Release/<name>.node (or build/Debug), when compiled here. */
export function compiledAddonPath(name, root = packageRoot) {
  for (const build of ["Release", "Debug"]) {
    const p = path.join(root, "build", build, `${name}.node`);
    if (existsSync(p)) return p;
  }
  return undefined;
}

/** The best prebuilt binary for this platform in <root>/prebuilds, or undefined. */
export function prebuiltAddonPath(name, root = packageRoot) {
  const dir = path.join(root, "prebuilds");
  if (!existsSync(dir)) return undefined;
  const gypBuild = require("node-gyp-build");
  const tuples = readdir(dir)
    .map(gypBuild.parseTuple)
    .filter(gypBuild.matchTuple(process.platform, process.arch))
    .sort(gypBuild.compareTuples);
  for (const tuple of tuples) {
    const folder = path.join(dir, tuple.name);
    const [winner] = readdir(folder)
      .filter((f) => f.split(".")[0] === name)
      .map(gypBuild.parseTags)
      .filter(gypBuild.matchTags("node", process.versions.modules))
      .sort(gypBuild.compareTags("node"));
    if (winner) return path.join(folder, winner.file);
  }
  return undefined;
}

/** True when this copy of minedraft is an installed dependency (under node_modules), not a checkout. */
export function installedAsDependency(root = packageRoot) {
  return root.split(path.sep).includes("node_modules");
}

/** What to run to get the native modules built, for the error message. */
export function buildAdvice(root = packageRoot) {
  return installedAsDependency(root)
    ? "run npm rebuild minedraft (no prebuilt binary for " +
        `${process.platform}-${process.arch} loaded, so it compiles: needs g++, make, python3 and git)`
    : "run npm run build:addon";
}

/** The .node file to load for this addon: build/ first, then prebuilds/. Throws a message saying what to run. */
export function addonPath(name, root = packageRoot) {
  const p = compiledAddonPath(name, root) ?? prebuiltAddonPath(name, root);
  if (p) return p;
  throw new Error(
    `minedraft's native addon is not built (no build/Release/${name}.node and no prebuilt ` +
      `prebuilds/${process.platform}-${process.arch}/${name}.*.node under ${root}): ${buildAdvice(root)}`,
  );
}
