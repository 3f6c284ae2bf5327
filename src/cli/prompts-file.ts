// Prompt files: one prompt per line, or JSON lines {"prompt": "...", "id": ...}. Blank lines are
// skipped; a line starting with "{" is read as JSON. "-" reads standard input.
import { readFile } from "node:fs/promises";
import { CliError } from "./exit-codes.js";

export interface PromptEntry {
  prompt: string;
  /** the JSON line's "id", when it has one */
  id?: string | number;
}

async function readText(file: string): Promise<string> {
  try {
    if (file === "-") {
      const chunks: Buffer[] = [];
      for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
      return Buffer.concat(chunks).toString("utf8");
    }
    return await readFile(file, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new CliError(
      code === "ENOENT"
        ? `prompts file not found: ${file}`
        : `cannot read prompts file ${file}: ${(error as Error).message}`,
    );
  }
}

export function parsePrompts(text: string, source: string): PromptEntry[] {
  const entries: PromptEntry[] = [];
  text.split(/\r?\n/).forEach((line, index) => {
    const where = `${source} line ${index + 1}`;
    if (line.trim() === "") return;
    if (!line.trimStart().startsWith("{")) {
      entries.push({ prompt: line });
      return;
    }
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (error) {
      throw new CliError(`${where}: invalid JSON (${(error as Error).message})`);
    }
    const record = value as { prompt?: unknown; id?: unknown };
    if (typeof record.prompt !== "string" || record.prompt.length === 0)
      throw new CliError(`${where}: expected a non-empty string "prompt" field`);
    if (record.id !== undefined && typeof record.id !== "string" && typeof record.id !== "number") {
      throw new CliError(`${where}: "id" must be a string or a number`);
    }
    entries.push(record.id === undefined ? { prompt: record.prompt } : { prompt: record.prompt, id: record.id });
  });
  if (entries.length === 0) throw new CliError(`no prompts in ${source}`);
  return entries;
}

export async function readPrompts(file: string): Promise<PromptEntry[]> {
  return parsePrompts(await readText(file), file === "-" ? "standard input" : file);
}
