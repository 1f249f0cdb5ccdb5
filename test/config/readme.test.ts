// The README's configuration reference is what operators read: it must list every key the schema
// accepts, with the defaults the program really uses.
import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { DEFAULTS, DURATION_LIMITS, KEYS_BY_SECTION, LEGACY_KEYS, MAX_RUNNERS } from "../../src/config/schema.ts";

const README = readFileSync(join(import.meta.dir, "../../README.md"), "utf8");
// | `key` | `default` | meaning |  (a cell may name several keys: `a`, `b`)
const rows = [...README.matchAll(/^\| (`[^|]+`) \| ([^|]*) \|/gm)].map((m) => ({
  keys: [...m[1]!.matchAll(/`([^`]+)`/g)].map((k) => k[1]!),
  defaults: [...m[2]!.matchAll(/`([^`]*)`/g)].map((d) => d[1]!),
}));

test("the README documents every configuration key", () => {
  const documented = new Set(rows.flatMap((r) => r.keys));
  const missing: string[] = [];
  for (const [section, keys] of Object.entries(KEYS_BY_SECTION)) {
    for (const key of keys) {
      if ((LEGACY_KEYS as readonly string[]).includes(key) || KEYS_BY_SECTION[key]) continue;
      const name = section === "" ? key : `${section}.${key}`;
      if (!documented.has(name)) missing.push(name);
    }
  }
  expect(missing).toEqual([]);
  for (const legacy of LEGACY_KEYS) expect(README).toContain(`\`${legacy}\``);
});

test("the README's defaults are the real ones", () => {
  const lookup = (name: string): unknown => name.split(".").reduce<unknown>((v, k) => (v as Record<string, unknown> | undefined)?.[k], DEFAULTS);
  let checked = 0;
  for (const row of rows) {
    if (row.defaults.length !== row.keys.length) continue; // prose default, e.g. "the ITN genesis hash"
    row.keys.forEach((key, i) => {
      const real = lookup(key);
      if (real === undefined) return;
      expect(`${key} = ${row.defaults[i]}`).toBe(`${key} = ${typeof real === "number" && key.startsWith("slot_") ? real.toFixed(1) : String(real)}`);
      checked++;
    });
  }
  expect(checked).toBeGreaterThanOrEqual(20);
});

test("the README gives every duration's bounds as the loader enforces them", () => {
  const meaning = (key: string) => README.split("\n").find((line) => line.startsWith("| ") && line.split("|")[1]!.includes(`\`${key}\``));
  for (const [key, limit] of Object.entries(DURATION_LIMITS)) {
    expect(`${key}: ${meaning(key)}`).toContain(`${limit.min}–${limit.max} s`);
  }
  expect(meaning("cnt_runners")).toContain(`(1–${MAX_RUNNERS})`);
});
