// The command line is checked against every command's declared citty `args` before anything runs.
// citty itself ignores what it does not know: `install --dryrun` did a full install and
// `uninstall --purge --dry_run` deleted the node secret. Here an unknown flag or command is a usage
// error (exit 64) with the nearest known spelling, built once from the declarations so a new flag
// or command is covered without further code.

import type { ArgDef, ArgsDef, CommandDef } from "citty";

export type ArgvProblem =
  /** A usage error: print the message, exit 64 */
  | { kind: "usage"; message: string; path: string[] }
  /** A command group invoked without one of its commands (or nothing at all): print its help, exit 64 */
  | { kind: "no-command"; path: string[] };

export interface CheckOptions {
  /** Command paths (e.g. "sim node") that take foreign flags as they come (a jormungandr stand-in) */
  passthrough?: readonly string[];
  /** The program name, for messages */
  program?: string;
}

/**
 * Walks rawArgs down the command tree the way citty dispatches it (the first word that is not a
 * flag or a flag's value names the subcommand) and returns the first problem, or null.
 */
export async function checkArgv(root: CommandDef, rawArgs: readonly string[], options: CheckOptions = {}): Promise<ArgvProblem | null> {
  const program = options.program ?? "jorm-master";
  const passthrough = new Set(options.passthrough ?? []);
  let cmd = root;
  let tokens = [...rawArgs];
  const path: string[] = [];
  for (;;) {
    if (passthrough.has(path.join(" "))) return null;
    const args = ((await resolve(cmd.args)) ?? {}) as ArgsDef;
    const subs = (await resolve(cmd.subCommands)) as Record<string, unknown> | undefined;
    const hasSubs = subs !== undefined && Object.keys(subs).length > 0;
    const where = [program, ...path].join(" ");
    const usage = (message: string): ArgvProblem => ({ kind: "usage", message: `${where}: ${message}`, path: [...path] });
    const positionals: string[] = [];
    let next: { name: string; def: CommandDef; rest: string[] } | null = null;
    for (let i = 0; i < tokens.length; i++) {
      const token = tokens[i]!;
      if (token === "--") {
        positionals.push(...tokens.slice(i + 1));
        break;
      }
      if (token.startsWith("-") && token.length > 1) {
        const long = token.startsWith("--");
        const eq = token.indexOf("=");
        const name = token.slice(long ? 2 : 1, eq === -1 ? undefined : eq);
        if (isBuiltin(name, long, path.length === 0)) continue;
        const def = long ? findLong(args, name) : findShort(args, name);
        if (def === null) {
          const spelled = long ? `--${name}` : `-${name}`;
          const near = nearest(name, flagNames(args));
          const hint = near !== null ? `; did you mean --${near}?` : knownFlags(args);
          return usage(`unknown flag ${spelled}${hint}`);
        }
        if (def.negated && def.arg.type !== "boolean") return usage(`--${name}: --${def.name} is not a yes/no flag`);
        if ((def.arg.type === "string" || def.arg.type === "enum") && eq === -1) {
          if (i + 1 >= tokens.length) return usage(`--${def.name} needs a value${def.arg.valueHint ? ` (${def.arg.valueHint})` : ""}`);
          i++; // its value, whatever it looks like (citty takes it too)
        }
        continue;
      }
      if (hasSubs) {
        const found = await findSub(subs, token);
        if (found === null) {
          const names = await visibleNames(subs);
          const near = nearest(token, names);
          const hint = near !== null ? `; did you mean "${near}"?` : `; commands: ${names.join(", ")}`;
          return usage(`unknown command "${token}"${hint}`);
        }
        next = { name: token, def: found, rest: tokens.slice(i + 1) };
        break;
      }
      positionals.push(token);
    }
    if (next !== null) {
      path.push(next.name);
      cmd = next.def;
      tokens = next.rest;
      continue;
    }
    if (hasSubs) return cmd.run === undefined ? { kind: "no-command", path: [...path] } : null;
    const declared = Object.values(args).filter((a) => a.type === "positional").length;
    if (positionals.length > declared) {
      const extra = positionals[declared]!;
      return usage(`unexpected argument "${extra}"${declared === 0 ? " (this command takes none)" : ""}`);
    }
    return null;
  }
}

function isBuiltin(name: string, long: boolean, top: boolean): boolean {
  if (long) return name === "help" || (top && name === "version");
  return name === "h" || (top && name === "v");
}

interface Found {
  name: string;
  arg: ArgDef;
  negated: boolean;
}

/** citty accepts a flag by its name, camelCase or kebab-case, an alias, or `--no-<name>` for false. */
function findLong(args: ArgsDef, name: string): Found | null {
  const direct = lookup(args, name);
  if (direct !== null) return { ...direct, negated: false };
  if (name.startsWith("no-")) {
    const negated = lookup(args, name.slice(3));
    if (negated !== null) return { ...negated, negated: true };
  }
  return null;
}

function lookup(args: ArgsDef, name: string): { name: string; arg: ArgDef } | null {
  for (const [key, arg] of Object.entries(args)) {
    if (arg.type === "positional") continue;
    const aliases = aliasesOf(arg);
    if (key === name || kebab(key) === name || camel(key) === name || aliases.includes(name)) return { name: key, arg };
  }
  return null;
}

function findShort(args: ArgsDef, name: string): Found | null {
  for (const [key, arg] of Object.entries(args)) {
    if (arg.type === "positional") continue;
    const aliases = aliasesOf(arg);
    if (aliases.includes(name)) return { name: key, arg, negated: false };
  }
  return null;
}

function aliasesOf(arg: ArgDef): string[] {
  const alias = "alias" in arg ? arg.alias : undefined;
  return alias === undefined ? [] : Array.isArray(alias) ? alias : [alias];
}

function flagNames(args: ArgsDef): string[] {
  return Object.entries(args)
    .filter(([, a]) => a.type !== "positional")
    .map(([k]) => k);
}

function knownFlags(args: ArgsDef): string {
  const names = flagNames(args);
  return names.length === 0 ? " (this command takes no flags)" : `; flags: ${names.map((n) => `--${n}`).join(", ")}`;
}

async function findSub(subs: Record<string, unknown>, name: string): Promise<CommandDef | null> {
  if (Object.hasOwn(subs, name)) return (await resolve(subs[name])) as CommandDef;
  for (const sub of Object.values(subs)) {
    const def = (await resolve(sub)) as CommandDef;
    const meta = await resolve(def.meta);
    const aliases = meta?.alias === undefined ? [] : Array.isArray(meta.alias) ? meta.alias : [meta.alias];
    if (aliases.includes(name)) return def;
  }
  return null;
}

async function visibleNames(subs: Record<string, unknown>): Promise<string[]> {
  const names: string[] = [];
  for (const [name, sub] of Object.entries(subs)) {
    const meta = await resolve(((await resolve(sub)) as CommandDef).meta);
    if (meta?.hidden !== true) names.push(name);
  }
  return names;
}

/**
 * The candidate nearest to what was typed, if it is near enough to be a typo: `_` and `-` are the
 * same, a transposition counts as one edit (`jsno` → `json`), and a prefix of 3+ letters matches.
 */
export function nearest(typed: string, candidates: readonly string[]): string | null {
  const norm = (s: string) => kebab(s).toLowerCase().replaceAll("_", "-");
  const t = norm(typed);
  let best: { name: string; distance: number } | null = null;
  for (const name of candidates) {
    const c = norm(name);
    const d = t.length >= 3 && c.startsWith(t) ? 1 : osaDistance(t, c);
    const limit = Math.max(2, Math.floor(c.length / 3));
    if (d <= limit && (best === null || d < best.distance)) best = { name, distance: d };
  }
  return best?.name ?? null;
}

/** Optimal string alignment distance (Levenshtein plus adjacent transpositions). */
export function osaDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i]![j] = Math.min(d[i]![j]!, d[i - 2]![j - 2]! + 1);
    }
  }
  return d[a.length]![b.length]!;
}

const kebab = (s: string) => s.replace(/([a-z0-9])([A-Z])/g, "$1-$2").toLowerCase();
const camel = (s: string) => s.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());

async function resolve<T>(value: T | (() => T | Promise<T>) | Promise<T>): Promise<T> {
  return typeof value === "function" ? await (value as () => T | Promise<T>)() : await value;
}
