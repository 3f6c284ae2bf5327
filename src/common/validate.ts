// One way to check the options of a public call: a declarative schema per call, checked at the API
// boundary before anything loads or runs. Every error names the user's option path (`draft.threads`),
// shows the value as given and says what is allowed: a TypeError for a wrong type, a RangeError for a
// wrong value (both carry `option`, so the CLI and the server can point at the flag or field).

export interface OptionErrorInfo {
  /** the option's path as the caller wrote it, e.g. "draft.threads" */
  option: string;
}

export class OptionTypeError extends TypeError implements OptionErrorInfo {
  constructor(
    readonly option: string,
    message: string,
  ) {
    super(message);
    this.name = "TypeError";
  }
}

export class OptionRangeError extends RangeError implements OptionErrorInfo {
  constructor(
    readonly option: string,
    message: string,
  ) {
    super(message);
    this.name = "RangeError";
  }
}

/** The option an error is about, when it came from an options check. */
export function optionOf(error: unknown): string | undefined {
  return error instanceof OptionTypeError || error instanceof OptionRangeError ? error.option : undefined;
}

export type Rule =
  | { kind: "integer"; min: number; max: number }
  | { kind: "number"; min: number; max: number; above?: number }
  | { kind: "boolean" }
  | { kind: "string"; nonEmpty?: boolean }
  | { kind: "enum"; values: readonly string[] }
  | { kind: "function" }
  | { kind: "signal" }
  | { kind: "strings" }
  | { kind: "object"; fields: Schema }
  /** anything else: `check` throws through fail() */
  | { kind: "custom"; expected: string; check: (value: unknown) => "type" | "range" | null };

export type Schema = Readonly<Record<string, Rule>>;

export const integer = (min: number, max = Number.MAX_SAFE_INTEGER): Rule => ({ kind: "integer", min, max });
export const number = (min: number, max: number, above?: number): Rule => ({ kind: "number", min, max, above });

/** A value as the message shows it: short, and a number never as 31 digits. */
export function describe(value: unknown): string {
  if (typeof value === "string")
    return value.length > 40
      ? `${JSON.stringify(value.slice(0, 40))}... (${value.length} characters)`
      : JSON.stringify(value);
  if (typeof value === "number")
    return Number.isFinite(value) && Math.abs(value) < 1e15 && Number.isInteger(value)
      ? String(value)
      : String(Number(value.toPrecision(6)));
  if (typeof value === "bigint") return `${value}n`;
  if (value === null || value === undefined || typeof value === "boolean") return String(value);
  if (Array.isArray(value)) return "an array";
  if (typeof value === "function") return "a function";
  return "an object";
}

function range(min: number, max: number, above?: number): string {
  const low = above !== undefined ? `> ${describe(above)}` : `>= ${describe(min)}`;
  if (max >= Number.MAX_SAFE_INTEGER || max === Infinity) return low;
  return above !== undefined ? `in (${describe(above)}, ${describe(max)}]` : `in ${describe(min)}..${describe(max)}`;
}

function expected(rule: Rule): string {
  switch (rule.kind) {
    case "integer":
      return `an integer ${range(rule.min, rule.max)}`;
    case "number":
      return `a finite number ${range(rule.min, rule.max, rule.above)}`;
    case "boolean":
      return "true or false";
    case "string":
      return rule.nonEmpty ? "a non-empty string" : "a string";
    case "enum":
      return `one of ${rule.values.map((v) => JSON.stringify(v)).join(", ")}`;
    case "function":
      return "a function";
    case "signal":
      return "an AbortSignal";
    case "strings":
      return "an array of non-empty strings";
    case "object":
      return "an object";
    case "custom":
      return rule.expected;
  }
}

function fail(kind: "type" | "range", path: string, rule: Rule, value: unknown): never {
  const message = `${path} must be ${expected(rule)}, got ${describe(value)}`;
  throw kind === "type" ? new OptionTypeError(path, message) : new OptionRangeError(path, message);
}

function isSignal(v: unknown): boolean {
  return typeof AbortSignal !== "undefined" && v instanceof AbortSignal;
}

/** Checks one value against its rule (undefined is allowed: every option is optional unless checked apart). */
export function checkValue(value: unknown, rule: Rule, path: string): void {
  if (value === undefined) return;
  switch (rule.kind) {
    case "integer":
    case "number": {
      if (typeof value !== "number") fail("type", path, rule, value);
      const n = value as number;
      const ok = rule.kind === "integer" ? Number.isInteger(n) : Number.isFinite(n);
      const above = rule.kind === "number" && rule.above !== undefined ? n > rule.above : true;
      if (!ok || !above || n < rule.min || n > rule.max) fail("range", path, rule, value);
      return;
    }
    case "boolean":
      if (typeof value !== "boolean") fail("type", path, rule, value);
      return;
    case "string":
      if (typeof value !== "string") fail("type", path, rule, value);
      if (rule.nonEmpty && value === "") fail("range", path, rule, value);
      return;
    case "enum":
      if (typeof value !== "string") fail("type", path, rule, value);
      if (!rule.values.includes(value as string)) fail("range", path, rule, value);
      return;
    case "function":
      if (typeof value !== "function") fail("type", path, rule, value);
      return;
    case "signal":
      if (!isSignal(value)) fail("type", path, rule, value);
      return;
    case "strings":
      if (!Array.isArray(value) || value.some((s) => typeof s !== "string")) fail("type", path, rule, value);
      if ((value as string[]).some((s) => s === "")) fail("range", path, rule, value);
      return;
    case "object":
      checkFields(value, rule.fields, path, `${path}.`);
      return;
    case "custom": {
      const wrong = rule.check(value);
      if (wrong) fail(wrong, path, rule, value);
      return;
    }
  }
}

/**
 * Checks the options object of a public call (`what`, e.g. "createEngine options"): every known field
 * against its rule, and no unknown field (a misplaced option is named, with the place it belongs).
 */
export function checkOptions(value: unknown, schema: Schema, what: string): void {
  checkFields(value, schema, what, "");
}

function checkFields(value: unknown, schema: Schema, name: string, prefix: string): void {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new OptionTypeError(name, `${name} must be an object, got ${describe(value)}`);
  }
  for (const key of Object.keys(value)) {
    const rule = schema[key];
    const field = `${prefix}${key}`;
    if (!rule) {
      const near = Object.keys(schema).find((k) => k.toLowerCase() === key.toLowerCase());
      throw new OptionTypeError(
        field,
        `unknown option ${field}${near ? ` (did you mean ${prefix}${near}?)` : ""}; known: ` +
          `${Object.keys(schema).join(", ")}`,
      );
    }
    checkValue((value as Record<string, unknown>)[key], rule, field);
  }
}
