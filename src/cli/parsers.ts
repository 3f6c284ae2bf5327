// Argument parsers for commander options: each turns a string into a checked value or throws
// InvalidArgumentError, which commander reports as one line (exit code 2, see main.ts).
import { existsSync, readFileSync } from "node:fs";
import { InvalidArgumentError } from "commander";

const INTEGER = /^[+-]?\d+$/;
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

function rangeText(min: number, max: number): string {
  if (max === Infinity) return `>= ${min}`;
  return `in ${min}..${max}`;
}

/** A parser for an integer in [min, max]. */
export function integer(min = -Infinity, max = Infinity): (value: string) => number {
  return (value) => {
    const n = Number(value.trim());
    if (!INTEGER.test(value.trim()) || !Number.isSafeInteger(n)) throw new InvalidArgumentError("Not an integer.");
    if (n < min || n > max) throw new InvalidArgumentError(`Must be an integer ${rangeText(min, max)}.`);
    return n;
  };
}

/** A parser for a finite decimal number in [min, max] (NaN, Infinity and trailing junk are rejected). */
export function decimal(min = -Infinity, max = Infinity, what = "a number"): (value: string) => number {
  return (value) => {
    const n = Number(value.trim());
    if (!DECIMAL.test(value.trim()) || !Number.isFinite(n)) throw new InvalidArgumentError(`Not ${what}.`);
    if (n < min || n > max)
      throw new InvalidArgumentError(`Must be ${what} ${max === Infinity ? `>= ${min}` : `in [${min}, ${max}]`}.`);
    return n;
  };
}

/** top-p: a number in (0, 1]. */
export function probability(value: string): number {
  const n = decimal(0, 1, "a probability")(value);
  if (n === 0) throw new InvalidArgumentError("Must be in (0, 1].");
  return n;
}

/** A comma-separated list of allowed words, deduplicated, in the order given. */
export function choiceList<T extends string>(allowed: readonly T[]): (value: string) => T[] {
  return (value) => {
    const items = value
      .split(",")
      .map((s) => s.trim())
      .filter((s) => s.length > 0);
    if (items.length === 0) throw new InvalidArgumentError(`Expected a comma-separated list of ${allowed.join(", ")}.`);
    const bad = items.filter((s) => !(allowed as readonly string[]).includes(s));
    if (bad.length > 0)
      throw new InvalidArgumentError(
        `Unknown ${bad.map((b) => JSON.stringify(b)).join(", ")}: allowed are ${allowed.join(", ")}.`,
      );
    return [...new Set(items as T[])];
  };
}

/** For repeatable options: collects every occurrence into an array. */
export function collect(value: string, previous: string[] | undefined): string[] {
  if (value.length === 0) throw new InvalidArgumentError("Must not be empty.");
  return [...(previous ?? []), value];
}

/** --chat-template: a file's text when the value names a file, else a built-in template name (or a template). */
export function chatTemplateText(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  return existsSync(value) ? readFileSync(value, "utf8") : value;
}
