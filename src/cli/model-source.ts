// Model arguments: a local GGUF path (checked here so a typo gives "not found", not a loader error)
// or an hf: / https URI, downloaded once through the library's resolver with its progress bar on a TTY.
import { stat } from "node:fs/promises";
import { isRemoteModelUri, resolveModelSource } from "../index.js";
import { CliError } from "./exit-codes.js";
import { untilAborted } from "./interrupt.js";

/** The local file path for a --model / --draft value; a download stops waiting when `signal` fires (Ctrl-C). */
export async function modelFile(source: string, role: string, signal?: AbortSignal): Promise<string> {
  if (isRemoteModelUri(source))
    return untilAborted(resolveModelSource(source, { progress: process.stderr.isTTY === true }), signal);
  const file = await resolveModelSource(source);
  let isFile: boolean;
  try {
    isFile = (await stat(file)).isFile();
  } catch {
    throw new CliError(`${role} model file not found: ${file}`);
  }
  if (!isFile) throw new CliError(`${role} model is not a file: ${file}`);
  return file;
}
