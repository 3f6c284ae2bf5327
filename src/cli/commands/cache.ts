// `minedraft cache path|list|clear`: the per-user folder holding the synthetic model pairs that `demo`, `synth`
// (through ensureSyntheticPair) and the library make (see src/common/cache-dir.ts for where it is).
import { readdir, rm, stat } from "node:fs/promises";
import path from "node:path";
import { Command } from "commander";
import { cacheDir } from "../../common/cache-dir.js";
import { addVerboseOption, configureCommand } from "../command-setup.js";
import { bytes } from "../format.js";

export interface CachedPair {
  name: string;
  dir: string;
  bytes: number;
  /** false when complete.json is missing (an interrupted synthesis; made again on next use) */
  complete: boolean;
}

const PAIR_FILES = ["target.gguf", "draft.gguf", "complete.json"];

async function folderBytes(dir: string): Promise<number> {
  let total = 0;
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    total += e.isDirectory() ? await folderBytes(p) : (await stat(p)).size;
  }
  return total;
}

/** The cached pairs: folders of `dir` holding a target.gguf, draft.gguf or complete.json (nothing else counts). */
export async function cachedPairs(dir: string = cacheDir()): Promise<CachedPair[]> {
  let entries: import("node:fs").Dirent[];
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw e;
  }
  const pairs: CachedPair[] = [];
  for (const e of entries.filter((e) => e.isDirectory()).sort((a, b) => a.name.localeCompare(b.name))) {
    const sub = path.join(dir, e.name);
    const files = await readdir(sub);
    if (!files.some((f) => PAIR_FILES.includes(f))) continue;
    pairs.push({ name: e.name, dir: sub, bytes: await folderBytes(sub), complete: files.includes("complete.json") });
  }
  return pairs;
}

export function cacheCommand(): Command {
  const cmd = new Command("cache")
    .description(
      "the cache of synthetic model pairs (made by demo and synth): $MINEDRAFT_CACHE, else $XDG_CACHE_HOME/minedraft, " +
        "else ~/.cache/minedraft (macOS ~/Library/Caches/minedraft, Windows %LOCALAPPDATA%\\minedraft\\Cache)",
    )
    .summary("show, list or clear the model cache");
  configureCommand(cmd, "minedraft cache");
  const sub = (name: string, description: string, run: () => Promise<void>) => {
    const c = new Command(name).description(description);
    addVerboseOption(c);
    configureCommand(c, `minedraft cache ${name}`);
    cmd.addCommand(c.action(run));
  };
  sub("path", "print the cache folder", async () => {
    process.stdout.write(`${cacheDir()}\n`);
  });
  sub("list", "list the cached pairs with their sizes", async () => {
    const dir = cacheDir();
    const pairs = await cachedPairs(dir);
    for (const p of pairs) {
      process.stdout.write(`${bytes(p.bytes).padStart(9)}  ${p.name}${p.complete ? "" : " (incomplete)"}\n`);
    }
    const total = pairs.reduce((s, p) => s + p.bytes, 0);
    process.stdout.write(`${pairs.length} pair${pairs.length === 1 ? "" : "s"}, ${bytes(total)} in ${dir}\n`);
  });
  sub("clear", "remove every cached pair (asks nothing; prints what it removed)", async () => {
    const dir = cacheDir();
    const pairs = await cachedPairs(dir);
    for (const p of pairs) {
      await rm(p.dir, { recursive: true, force: true });
      process.stdout.write(`removed ${p.dir} (${bytes(p.bytes)})\n`);
    }
    const total = pairs.reduce((s, p) => s + p.bytes, 0);
    process.stdout.write(`removed ${pairs.length} pair${pairs.length === 1 ? "" : "s"}, ${bytes(total)}\n`);
  });
  return cmd;
}
