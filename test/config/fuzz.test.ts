// Fuzzing the loader the way `config check` uses it (parse, resolve, summarise): random and mutated
// YAML may only end in a valid config or a ConfigError (exit 78) with a message, never another
// exception (a stack trace, exit 1) and never a hang: each file within a second (issue 9, "Done
// when"). Seeds are the seed master's files, the fixtures and the embedded default.yaml.

import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { checkSummary } from "../../src/commands/config.ts";
import { DEFAULT_CONFIG_YAML } from "../../src/config/default-text.ts";
import { parseConfigText } from "../../src/config/load.ts";
import { KEYS_BY_SECTION } from "../../src/config/schema.ts";
import { ConfigError, EXIT_CONFIG } from "../../src/errors.ts";

const RUNS = Number(process.env.JORM_CONFIG_FUZZ_RUNS ?? 300);
/** Fixed, so CI runs the same inputs every time; JORM_CONFIG_FUZZ_SEED explores others */
const SEED = Number(process.env.JORM_CONFIG_FUZZ_SEED ?? 20_261_129);
const PER_FILE_LIMIT_MS = 1_000;
const SOURCE = "/etc/cardano/jorm_master.yaml";

const FIXTURES = join(import.meta.dir, "..", "fixtures");
/** The optional sections too, so mutations reach their keys */
const WITH_SECTIONS = [
  "cnt_runners: 2",
  "rest_base_port: 3100",
  "pooltool:",
  '  pool_id: "abc"',
  '  user_id: "u"',
  "  send_slots: true",
  "alerts:",
  "  channels:",
  '    - { name: hook, type: webhook, preset: ntfy, url: "https://ntfy.sh/pool-alerts" }',
  "    - name: tg",
  "      type: telegram",
  "      chat_id: 7",
  "      token_env: TG_TOKEN",
  "  timeout: 5",
  "cluster:",
  "  name: host-a",
  '  etcd: ["http://10.0.0.1:2379", "http://10.0.0.2:2379"]',
  "  lease_ttl: 5",
  "  etcd_timeout: 2",
  "",
].join("\n");
const SEEDS: string[] = [
  DEFAULT_CONFIG_YAML,
  WITH_SECTIONS,
  ...["seed", "config"].flatMap((dir) =>
    readdirSync(join(FIXTURES, dir))
      .filter((f) => f.endsWith(".yaml"))
      .map((f) => readFileSync(join(FIXTURES, dir, f), "utf8")),
  ),
];

/** Values an operator (or an attacker) might write, and what YAML makes of odd ones */
const nastyScalar = fc.constantFrom(
  "0", "-1", "0.0004", "1e400", "-0", ".inf", "-.inf", ".nan", "4000000000000000", "9007199254740993", "0x1F", "0o17",
  "~", "null", "true", "no", "''", '""', "[]", "{}", "[1, 2]", "{a: 1}", "!!binary aGVsbG8=", "!!str 3", "!!timestamp 2001-12-14",
  "!!float 1", "!custom x", "http://127.0.0.1", "localhost:3100", '"127.0.0.1 "', "evil host", "::1", '"[::1]:9310"', "0.0.0.0",
  '"fe80::1%eth0"', '"a\\nb"', '"\\0"', '"{id}{id}"', '"{n}"', '"/etc/../../tmp/x"', "*nowhere", "&anchor 5", "|\n  block", ">-\n  folded",
  "'single'", "2001:db8::1", "300.1.1.1", '"https://user:pw@host/x"', '"ftp://x/y"', "-", "? complex", "<<: {}",
);
const scalar = fc.oneof(
  nastyScalar,
  fc.integer().map(String),
  fc.double({ noNaN: false }).map((d) => (Number.isFinite(d) ? String(d) : ".nan")),
  fc.string({ maxLength: 20 }).map((s) => JSON.stringify(s)),
  fc.string({ maxLength: 12 }),
);
const allKeys = [...new Set(Object.values(KEYS_BY_SECTION).flat())];
const key = fc.oneof(fc.constantFrom(...allKeys, "<<", "__proto__", "constructor", "toString", "hasOwnProperty"), fc.string({ minLength: 1, maxLength: 12 }));

type Mutation =
  | { kind: "delete"; at: number }
  | { kind: "duplicate"; at: number }
  | { kind: "value"; at: number; value: string }
  | { kind: "insert"; at: number; key: string; value: string; indent: number }
  | { kind: "alias"; at: number; to: number }
  | { kind: "bomb"; width: number; depth: number }
  | { kind: "indent"; at: number; by: number }
  | { kind: "garbage"; at: number; text: string }
  | { kind: "truncate"; keep: number };

const position = fc.nat({ max: 200 });
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant("delete" as const), at: position }),
  fc.record({ kind: fc.constant("duplicate" as const), at: position }),
  fc.record({ kind: fc.constant("value" as const), at: position, value: scalar }),
  fc.record({ kind: fc.constant("insert" as const), at: position, key, value: scalar, indent: fc.constantFrom(0, 2, 4) }),
  fc.record({ kind: fc.constant("alias" as const), at: position, to: position }),
  fc.record({ kind: fc.constant("bomb" as const), width: fc.integer({ min: 2, max: 12 }), depth: fc.integer({ min: 1, max: 9 }) }),
  fc.record({ kind: fc.constant("indent" as const), at: position, by: fc.integer({ min: -4, max: 4 }) }),
  fc.record({ kind: fc.constant("garbage" as const), at: position, text: fc.string({ maxLength: 8 }) }),
  fc.record({ kind: fc.constant("truncate" as const), keep: fc.nat({ max: 3000 }) }),
);

/** Replace what follows "key:" on a line (or the whole line when it has no key) */
function withValue(line: string, value: string): string {
  const m = /^(\s*[^#:]+:)\s*/.exec(line);
  return m ? `${m[1]} ${value}` : value;
}

export function mutate(text: string, mutations: readonly Mutation[]): string {
  let lines = text.split("\n");
  const pick = (at: number) => at % Math.max(1, lines.length);
  for (const m of mutations) {
    switch (m.kind) {
      case "delete":
        lines.splice(pick(m.at), 1);
        break;
      case "duplicate":
        lines.splice(pick(m.at), 0, lines[pick(m.at)] ?? "");
        break;
      case "value":
        lines[pick(m.at)] = withValue(lines[pick(m.at)] ?? "", m.value);
        break;
      case "insert":
        lines.splice(pick(m.at), 0, `${" ".repeat(m.indent)}${m.key}: ${m.value}`);
        break;
      case "alias": {
        const from = pick(m.at);
        lines[from] = withValue(lines[from] ?? "", `&a ${(lines[from] ?? "").split(":").slice(1).join(":").trim() || "1"}`);
        lines[pick(m.to)] = withValue(lines[pick(m.to)] ?? "", "*a");
        break;
      }
      case "bomb": {
        const bomb = [`b0: &b0 [${Array(m.width).fill('"x"').join(", ")}]`];
        for (let d = 1; d <= m.depth; d++) bomb.push(`b${d}: &b${d} [${Array(m.width).fill(`*b${d - 1}`).join(", ")}]`);
        lines = [...lines, ...bomb];
        break;
      }
      case "indent": {
        const at = pick(m.at);
        const line = lines[at] ?? "";
        lines[at] = m.by >= 0 ? " ".repeat(m.by) + line : line.slice(Math.min(-m.by, line.length - line.trimStart().length));
        break;
      }
      case "garbage": {
        const at = pick(m.at);
        const line = lines[at] ?? "";
        const col = m.text.length % (line.length + 1);
        lines[at] = line.slice(0, col) + m.text + line.slice(col);
        break;
      }
      case "truncate":
        lines = lines.join("\n").slice(0, m.keep).split("\n");
        break;
    }
  }
  return lines.join("\n");
}

/** Random YAML-looking text, for inputs far from any seed */
const yamlish = fc
  .array(
    fc.oneof(
      fc.tuple(fc.constantFrom("", "  ", "    ", "- "), key, scalar).map(([indent, k, v]) => `${indent}${k}: ${v}`),
      fc.constantFrom("---", "...", "%YAML 1.2", "%TAG ! tag:x,2000:", "- - -", "? a", ": b", "[", "{", "}", "]", "&a", "*a", "#", "\t", "\u00a0"),
      fc.string({ maxLength: 30 }),
    ),
    { maxLength: 25 },
  )
  .map((lines) => lines.join("\n"));

const input = fc.oneof(
  { weight: 4, arbitrary: fc.tuple(fc.constantFrom(...SEEDS), fc.array(mutation, { minLength: 1, maxLength: 6 })).map(([seed, ms]) => mutate(seed, ms)) },
  { weight: 1, arbitrary: yamlish },
  { weight: 1, arbitrary: fc.string({ maxLength: 300 }) },
);

type Outcome = { kind: "ok" } | { kind: "config-error"; message: string } | { kind: "crash"; error: unknown };

/** What `jorm-master config check` does with the file's text, minus the file read */
export function configCheck(text: string): Outcome {
  try {
    checkSummary(parseConfigText(text, SOURCE));
    return { kind: "ok" };
  } catch (error) {
    if (error instanceof ConfigError && error.exitCode === EXIT_CONFIG) return { kind: "config-error", message: error.message };
    return { kind: "crash", error };
  }
}

describe("config loading under fuzzing", () => {
  test(`${RUNS} random and mutated files: valid or a config error with a message, each within ${PER_FILE_LIMIT_MS} ms`, () => {
    const outcomes = { ok: 0, "config-error": 0 };
    try {
      fc.assert(
        fc.property(input, (text) => {
          const t0 = performance.now();
          const outcome = configCheck(text);
          const ms = performance.now() - t0;
          if (outcome.kind === "crash") throw new Error(`not a config error: ${(outcome.error as Error)?.stack ?? String(outcome.error)}`);
          if (outcome.kind === "config-error") {
            if (outcome.message.trim() === "") throw new Error("a config error without a message");
            if (/^\s+at /m.test(outcome.message)) throw new Error(`a stack trace in the message:\n${outcome.message}`);
          }
          if (ms > PER_FILE_LIMIT_MS) throw new Error(`took ${Math.round(ms)} ms`);
          outcomes[outcome.kind]++;
        }),
        { numRuns: RUNS, seed: SEED },
      );
    } catch (error) {
      throw new Error(
        `${(error as Error).message}\nReplay: JORM_CONFIG_FUZZ_SEED=${SEED} JORM_CONFIG_FUZZ_RUNS=${RUNS} bun test ${import.meta.path.replace(`${process.cwd()}/`, "")}`,
      );
    }
    // Both outcomes must occur, or the generator has stopped exercising one side
    expect(outcomes.ok).toBeGreaterThan(0);
    expect(outcomes["config-error"]).toBeGreaterThan(0);
  }, 120_000);

  test("the seeds themselves are valid (so mutations start from a file the daemon accepts)", () => {
    for (const seed of SEEDS) expect(configCheck(seed)).toEqual({ kind: "ok" });
  });
});
