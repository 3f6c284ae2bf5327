// Model arguments: a local GGUF path (checked here so a typo gives "not found", not a loader error)
// or an hf: / https URI, downloaded once through the library's resolver with its progress bar on a TTY.
import { stat } from "node:fs/promises";
import { isRemoteModelUri, resolveModelSource } from "../index.js";
import { CliError } from "./exit-codes.js";

/** The local file path for a --model / --draft value. */
export async function modelFile(source: string, role: string): Promise<string> {
  if (isRemoteModelUri(source)) return resolveModelSource(source, { progress: process.stderr.isTTY === true });
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
