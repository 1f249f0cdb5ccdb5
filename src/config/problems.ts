// Turning validation failures into lines an operator can act on: the key path, what was expected,
// what the file says, and for a typo the key that was probably meant.

import type { z } from "zod";
import { DURATION_LIMITS, KEYS_BY_SECTION, type DurationLimit } from "./schema.ts";

export type ConfigPath = readonly (string | number)[];

export interface Problem {
  /** Where in the file; for an unknown key, the path of that key */
  path: ConfigPath;
  message: string;
  /** The problem is the key itself (unknown key), not its value: point at the key */
  atKey?: boolean;
}

export function formatPath(path: ConfigPath): string {
  return path.length === 0 ? "(top level)" : path.map(String).join(".");
}

/** The value at `path` in the raw input, for "found ..." in messages. */
export function valueAt(input: unknown, path: ConfigPath): unknown {
  let v: unknown = input;
  for (const key of path) {
    if (v === null || typeof v !== "object") return undefined;
    v = (v as Record<string | number, unknown>)[key];
  }
  return v;
}

export function describeFound(value: unknown): string {
  if (value === undefined) return "nothing";
  if (value === null) return "an empty value";
  if (typeof value === "string") return `the text ${JSON.stringify(value)}`;
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a mapping (nested keys)";
  return String(value);
}

const CNT_RUNNERS_MAX_WHY = "each runner is a full node with its own storage and port";

const EXPECTED_WORDS: Record<string, string> = {
  number: "a number",
  int: "a whole number",
  string: "a text value",
  object: "a mapping (nested keys)",
  boolean: "true or false",
  array: "a list",
};

function levenshtein(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0]!;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = prev[j]!;
      prev[j] = Math.min(up + 1, prev[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return prev[b.length]!;
}

// camelCase, dashes and case are the usual slips: compare keys with those ironed out
const normalise = (key: string) => key.toLowerCase().replace(/[-_\s]/g, "");

/** The valid key closest to `key`, or null when nothing is close enough to be a typo. */
export function closestKey(key: string, candidates: readonly string[]): string | null {
  let best: string | null = null;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const d = normalise(key) === normalise(candidate) ? 0 : levenshtein(key.toLowerCase(), candidate);
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  const tolerance = Math.max(2, Math.floor(key.length / 3));
  return bestDistance <= tolerance ? best : null;
}

export function unknownKeyMessage(section: string, key: string): string {
  const here = KEYS_BY_SECTION[section] ?? [];
  const near = closestKey(key, here);
  if (near !== null) return `unknown key; did you mean "${near}"?`;
  // A key written at the wrong level: scope at the top instead of under systemd:
  for (const [other, keys] of Object.entries(KEYS_BY_SECTION)) {
    if (other === section) continue;
    const there = closestKey(key, keys);
    if (there !== null && normalise(there) === normalise(key)) {
      return `unknown key here; did you mean "${other === "" ? there : `${other}.${there}`}"?`;
    }
  }
  return `unknown key; valid keys${section === "" ? "" : ` under ${section}`}: ${here.join(", ")}`;
}

export function issueToProblems(issue: z.core.$ZodIssue, input: unknown): Problem[] {
  const path = issue.path.filter((p): p is string | number => typeof p !== "symbol");
  const found = describeFound(valueAt(input, path));
  switch (issue.code) {
    case "unrecognized_keys": {
      const section = path.map(String).join(".");
      return issue.keys.map((key) => ({
        path: [...path, key],
        atKey: true,
        message: unknownKeyMessage(section, key),
      }));
    }
    case "invalid_type": {
      const expected = EXPECTED_WORDS[issue.expected] ?? issue.expected;
      const value = valueAt(input, path);
      // YAML reads 12345 or true as a number/boolean where a text was meant
      const hint =
        issue.expected === "string" && (typeof value === "number" || typeof value === "boolean")
          ? " (put it in quotes)"
          : "";
      return [{ path, message: `expected ${expected}, found ${found}${hint}` }];
    }
    case "invalid_value": {
      const options = issue.values.map((v) => JSON.stringify(v)).join(", ");
      return [{ path, message: `expected one of ${options}, found ${found}` }];
    }
    case "too_small": {
      if (issue.origin === "string") return [{ path, message: `must not be empty` }];
      const limit = durationLimit(path);
      if (limit && limit.minWhy !== undefined) {
        return [{ path, message: `must be at least ${seconds(limit.min)}, found ${found}: ${limit.minWhy}` }];
      }
      const bound = issue.inclusive ? `at least ${issue.minimum}` : `more than ${issue.minimum}`;
      return [{ path, message: `must be ${bound}, found ${found}` }];
    }
    case "too_big": {
      const limit = durationLimit(path);
      if (limit) return [{ path, message: `must be at most ${seconds(limit.max)}, found ${found}: ${limit.maxWhy}` }];
      const bound = issue.inclusive ? `at most ${issue.maximum}` : `less than ${issue.maximum}`;
      const why = path.length === 1 && path[0] === "cnt_runners" ? `: ${CNT_RUNNERS_MAX_WHY}` : "";
      return [{ path, message: `must be ${bound}, found ${found}${why}` }];
    }
    default:
      return [{ path, message: `${issue.message}, found ${found}` }];
  }
}

/** The bounds of the duration at `path` (keyed by its dotted path), or null when it is no duration. */
function durationLimit(path: readonly (string | number)[]): DurationLimit | null {
  const key = path.join(".");
  return Object.hasOwn(DURATION_LIMITS, key) ? DURATION_LIMITS[key as keyof typeof DURATION_LIMITS] : null;
}

/** 0.05 → "0.05 s (50 ms)", 86400 → "86400 s" */
function seconds(s: number): string {
  return s < 1 ? `${s} s (${Math.round(s * 1000)} ms)` : `${s} s`;
}
