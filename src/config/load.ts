// The loader: file → YAML → zod → resolved config, or one ConfigError (exit 78) whose lines point
// at the file, line and column of each problem.

import { readFile } from "node:fs/promises";
import { dirname, resolve as resolvePath } from "node:path";
import { isMap, isPair, isScalar, LineCounter, parseDocument, visit, type Document } from "yaml";
import { ConfigError } from "../errors.ts";
import type { ResolvedConfig } from "./types.ts";
import { formatPath, type ConfigPath, type Problem } from "./problems.ts";
import { resolveInput } from "./resolve.ts";

export const DEFAULT_CONFIG_PATH = "/etc/cardano/jorm_master.yaml";
export const CONFIG_PATH_ENV = "JORM_MASTER_CONFIG";
/** A config file needs few if any aliases; yaml's own default (100) is kept, and named */
const MAX_ALIAS_COUNT = 100;

export interface LoadedConfig {
  config: ResolvedConfig;
  /** Things `config check` tells the operator that are not errors (PoolTool off, obsolete keys) */
  notes: string[];
}

/** `--config PATH` > $JORM_MASTER_CONFIG > /etc/cardano/jorm_master.yaml */
export function configPath(explicit?: string, env: Record<string, string | undefined> = process.env): string {
  if (explicit !== undefined && explicit !== "") return explicit;
  const fromEnv = env[CONFIG_PATH_ENV];
  return fromEnv !== undefined && fromEnv !== "" ? fromEnv : DEFAULT_CONFIG_PATH;
}

export async function loadConfig(path?: string): Promise<ResolvedConfig> {
  return (await loadConfigWithNotes(path)).config;
}

export async function loadConfigWithNotes(path?: string): Promise<LoadedConfig> {
  const file = configPath(path);
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    throw new ConfigError(readErrorMessage(file, error));
  }
  return parseConfigText(text, file);
}

export function readErrorMessage(file: string, error: unknown): string {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  switch (code) {
    case "ENOENT":
      return `${file}: config file not found.\nCreate one with: jorm-master config init --config ${file}`;
    case "EACCES":
      return `${file}: permission denied reading the config file (run as root or as a user that can read it)`;
    case "EISDIR":
      return `${file}: is a directory, expected a YAML file`;
    default:
      return `${file}: cannot read the config file: ${(error as Error | undefined)?.message ?? String(error)}`;
  }
}

/** Parse and resolve the text of a config file; `source` names it in messages and relative paths start from its directory. */
export function parseConfigText(text: string, source: string): LoadedConfig {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const lines = text.split(/\r?\n/);
  if (doc.errors.length > 0) {
    // Later parser errors are mostly consequences of the first one: show that one precisely.
    const [first] = doc.errors;
    const { line, col } = lineCounter.linePos(first!.pos[0]);
    const more = doc.errors.length > 1 ? `\n(${doc.errors.length - 1} more YAML error(s) may follow from this one)` : "";
    throw new ConfigError(`${source}:${line}:${col}: YAML syntax error: ${first!.message}\n${excerpt(lines, line, col)}${more}`);
  }
  let input: unknown;
  try {
    // Aliases are expanded here: a "billion laughs" file (aliases of aliases) would take all memory.
    // yaml refuses past maxAliasCount with a ReferenceError, which must be a config error, not a crash.
    input = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (error) {
    const message = (error as Error | undefined)?.message ?? String(error);
    const why = /alias/i.test(message)
      ? `too many aliases (*name) expanded (over ${MAX_ALIAS_COUNT}): the file looks like an alias bomb; write the values out`
      : `cannot be read as data: ${message}`;
    throw new ConfigError(`${firstAliasAt(doc, lineCounter, source)}: YAML ${why}`);
  }
  if (input === null || input === undefined) {
    throw new ConfigError(
      `${source}: the config file is empty (was it truncated?).\n` +
        `Write a fresh commented one with: jorm-master config init --force --config ${source}`,
    );
  }
  const result = resolveInput(input, source, dirname(resolvePath(source)));
  if (!result.ok) {
    throw new ConfigError(formatProblems(result.problems, source, (p, atKey) => locate(doc, lineCounter, p, atKey)));
  }
  return { config: result.config, notes: result.notes };
}

/** Resolve an already-parsed value (e.g. a test's object); relative paths start from the working directory. */
export function resolveConfig(input: unknown, source: string | null): ResolvedConfig {
  const result = resolveInput(input, source, source === null ? process.cwd() : dirname(resolvePath(source)));
  if (!result.ok) throw new ConfigError(formatProblems(result.problems, source ?? "config", () => null));
  return result.config;
}

/** Every default, as `config init` writes them (src/config/default.yaml loads to exactly this). */
export function defaultConfig(): ResolvedConfig {
  return resolveConfig({}, null);
}

type Locator = (path: ConfigPath, atKey: boolean) => { line: number; col: number } | null;

function formatProblems(problems: Problem[], source: string, locate: Locator): string {
  const located = problems.map((problem) => ({ problem, at: locate(problem.path, problem.atKey ?? false) }));
  // In file order, so the operator fixes them top to bottom
  located.sort((a, b) => (a.at?.line ?? 0) - (b.at?.line ?? 0) || (a.at?.col ?? 0) - (b.at?.col ?? 0));
  const lines = located.map(({ problem, at }) => {
    const where = at ? `${source}:${at.line}:${at.col}` : source;
    return `${where}: ${formatPath(problem.path)}: ${problem.message}`;
  });
  const count = problems.length === 1 ? "a problem" : `${problems.length} problems`;
  return `${lines.join("\n")}\nThe configuration has ${count}; fix it and run \`jorm-master config check\` again.`;
}

function locate(doc: Document, lineCounter: LineCounter, path: ConfigPath, atKey: boolean): { line: number; col: number } | null {
  if (path.length === 0) return null;
  if (atKey) {
    const parent = path.length === 1 ? doc.contents : doc.getIn(path.slice(0, -1), true);
    const key = path[path.length - 1];
    if (isMap(parent)) {
      const pair = parent.items.find((item) => isPair(item) && isScalar(item.key) && String(item.key.value) === String(key));
      const range = pair && isScalar(pair.key) ? pair.key.range : undefined;
      if (range) return lineCounter.linePos(range[0]);
    }
    return null;
  }
  const node = doc.getIn(path, true);
  // An empty value (`cnt_runners:`) sits at the end of the line: point at its key instead
  const empty = isScalar(node) && node.value === null;
  if (!empty && node && typeof node === "object" && "range" in node && node.range) {
    return lineCounter.linePos((node.range as [number, number, number])[0]);
  }
  return locate(doc, lineCounter, path, true);
}

/** file:line:col of the first alias (*name), or the file alone */
function firstAliasAt(doc: Document, lineCounter: LineCounter, source: string): string {
  let at: number | undefined;
  visit(doc, {
    Alias(_key, node) {
      at = node.range?.[0];
      return visit.BREAK;
    },
  });
  if (at === undefined) return source;
  const { line, col } = lineCounter.linePos(at);
  return `${source}:${line}:${col}`;
}

function excerpt(lines: string[], line: number, col: number): string {
  const text = lines[line - 1] ?? "";
  const gutter = `${line} | `;
  return `  ${gutter}${text}\n  ${" ".repeat(gutter.length)}${" ".repeat(Math.max(0, col - 1))}^`;
}
