#!/usr/bin/env bun
import { defineCommand, renderUsage, runCommand, type CommandDef } from "citty";
import { checkArgv } from "./cli-args.ts";
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, UserError } from "./errors.ts";
import { VERSION } from "./version.ts";

// Subcommands are imported lazily: `jorm-master runner N` must exec the node quickly, without
// loading the master, the simulator or the installer.
export const main = defineCommand({
  meta: {
    name: "jorm-master",
    version: VERSION,
    description:
      "Run several Jormungandr nodes on one server and keep exactly one of them producing blocks.\n" +
      "Start with `jorm-master demo` (simulated nodes) or `jorm-master install --runners 3`.",
  },
  subCommands: {
    daemon: () => import("./commands/daemon.ts").then((m) => m.default),
    runner: () => import("./commands/runner.ts").then((m) => m.default),
    install: () => import("./commands/install.ts").then((m) => m.default),
    uninstall: () => import("./commands/uninstall.ts").then((m) => m.default),
    status: () => import("./commands/status.ts").then((m) => m.default),
    leaders: () => import("./commands/leaders.ts").then((m) => m.default),
    history: () => import("./commands/history.ts").then((m) => m.default),
    switchover: () => import("./commands/switchover.ts").then((m) => m.default),
    hold: () => import("./commands/hold.ts").then((m) => m.default),
    release: () => import("./commands/release.ts").then((m) => m.default),
    upgrade: () => import("./commands/upgrade.ts").then((m) => m.default),
    config: () => import("./commands/config.ts").then((m) => m.default),
    demo: () => import("./commands/demo.ts").then((m) => m.default),
    sim: () => import("./commands/sim.ts").then((m) => m.default),
  },
});

/**
 * citty's runMain prints every error with its stack and exits 1, and citty ignores flags and
 * commands it does not know. Here the command line is checked first (checkArgv: unknown flag or
 * command → exit 64 with "did you mean", nothing runs); a UserError is an operator's mistake: its
 * message alone and its code (78 for the configuration). Anything else is a bug and keeps its stack.
 */
export async function runCli(cmd: CommandDef = main, rawArgs: string[] = process.argv.slice(2)): Promise<void> {
  quietOnClosedStdout(process.stdout);
  const problem = await checkArgv(cmd, rawArgs, { passthrough: PASSTHROUGH_COMMANDS });
  if (problem?.kind === "usage") {
    process.stderr.write(await errorText(new UserError(`${problem.message}\nSee: ${["jorm-master", ...problem.path, "--help"].join(" ")}`, EXIT_USAGE)));
    process.exit(EXIT_USAGE);
  }
  const beforeSeparator = rawArgs.includes("--") ? rawArgs.slice(0, rawArgs.indexOf("--")) : rawArgs;
  if (beforeSeparator.some((a) => a === "--help" || a === "-h")) {
    process.stdout.write(await helpText(cmd, await knownCommandPath(cmd, rawArgs), process.stdout));
    process.exit(EXIT_OK);
  }
  if (rawArgs.length === 1 && (rawArgs[0] === "--version" || rawArgs[0] === "-v")) {
    process.stdout.write(`${VERSION}\n`);
    process.exit(EXIT_OK);
  }
  if (problem?.kind === "no-command") {
    // A bare `jorm-master` (or `jorm-master config`) did nothing it was asked: help, but as an error
    process.stderr.write(await helpText(cmd, problem.path, process.stderr));
    process.exit(EXIT_USAGE);
  }
  try {
    await runCommand(cmd, { rawArgs });
  } catch (error) {
    if (error instanceof UserError) {
      process.stderr.write(await errorText(error));
      process.exit(error.exitCode);
    }
    if (error instanceof Error && error.name === "CLIError") {
      const message = useColour(process.stderr) ? error.message : stripAnsi(error.message);
      const path = await knownCommandPath(cmd, rawArgs);
      process.stderr.write(await errorText(new UserError(`${message}\nSee: ${["jorm-master", ...path, "--help"].join(" ")}`, EXIT_USAGE)));
      process.exit(EXIT_USAGE);
    }
    if (underJournal()) {
      // A bug keeps its stack, filed as an error like everything else the journal gets from us
      process.stderr.write(await errorText(error));
      process.exit(EXIT_FAILURE);
    }
    throw error;
  }
}

/** stderr goes to the journal (systemd sets JOURNAL_STREAM for a service; log.ts keys on it too). */
const underJournal = (env: Record<string, string | undefined> = process.env) => env.JOURNAL_STREAM !== undefined && env.JOURNAL_STREAM !== "";

/**
 * How a fatal error reaches stderr: its text for a person; under the journal every line prefixed
 * <3> (err), so `journalctl -u jorm_master -p err` shows why the daemon stopped (a broken config,
 * exit 78) and does not file it as info.
 */
export async function errorText(error: unknown, env: Record<string, string | undefined> = process.env): Promise<string> {
  if (!underJournal(env)) return `${error instanceof UserError ? error.message : String(error)}\n`;
  const [{ formatJournal }, { LogLevels }] = await Promise.all([import("./log.ts"), import("consola")]);
  return formatJournal({ level: LogLevels.error, tag: "", args: [error instanceof UserError ? error.message : error], message: undefined });
}

/** Commands that take another program's flags as they come: `sim node` stands in for jormungandr. */
const PASSTHROUGH_COMMANDS = ["sim node"];

/**
 * `status --watch | head`: when the reader goes away, a write fails with EPIPE. Nobody is left to
 * read anything, so end quietly and successfully, as `yes | head` does, instead of a stack trace.
 */
export function quietOnClosedStdout(stream: NodeJS.WriteStream, exit: (code: number) => void = (c) => process.exit(c)): void {
  stream.on("error", (error: NodeJS.ErrnoException) => {
    if (error.code === "EPIPE") exit(EXIT_OK);
    else throw error;
  });
}

/** Colour only for a person at a terminal, and never when NO_COLOR is set (https://no-color.org). */
export function useColour(stream: { isTTY?: boolean }, env: Record<string, string | undefined> = process.env): boolean {
  return stream.isTTY === true && (env.NO_COLOR === undefined || env.NO_COLOR === "") && env.TERM !== "dumb";
}

const stripAnsi = (text: string) => text.replace(/\x1b\[[0-9;]*m/g, "");

/**
 * The help of the command at `path`, as citty renders it, with each subcommand's first line only
 * (its own --help shows the rest) and no colour unless `stream` is a terminal that wants it.
 */
export async function helpText(
  root: CommandDef,
  path: readonly string[],
  stream: { isTTY?: boolean },
  env: Record<string, string | undefined> = process.env,
): Promise<string> {
  let cmd = root;
  for (const word of path) {
    const subs = (await resolveValue(cmd.subCommands)) as Record<string, unknown>;
    cmd = (await resolveValue(subs[word])) as CommandDef;
  }
  const rootMeta = (await resolveValue(root.meta)) ?? {};
  const parent: CommandDef | undefined =
    path.length === 0 ? undefined : { meta: { name: [rootMeta.name ?? "jorm-master", ...path.slice(0, -1)].join(" "), version: rootMeta.version } };
  const text = await renderUsage(await concise(cmd), parent);
  return `${useColour(stream, env) ? text : stripAnsi(text)}\n`;
}

/** A command list shows each subcommand's first line. */
async function concise(cmd: CommandDef): Promise<CommandDef> {
  const subs: Record<string, unknown> | undefined = await resolveValue(cmd.subCommands);
  if (!subs) return cmd;
  const short: Record<string, CommandDef> = {};
  for (const [name, sub] of Object.entries(subs)) {
    const def = (await resolveValue(sub)) as CommandDef;
    const meta = (await resolveValue(def.meta)) ?? {};
    short[name] = { ...def, meta: { ...meta, description: firstLine(meta.description) } };
  }
  return { ...cmd, subCommands: short };
}

function firstLine(text: string | undefined): string | undefined {
  const line = text?.split("\n")[0]?.trim();
  return line && !/[.:)]$/.test(line) ? `${line} …` : line;
}

/** The subcommand words of rawArgs that exist, for a "--help" hint after a usage error. */
async function knownCommandPath(cmd: CommandDef, rawArgs: string[]): Promise<string[]> {
  const path: string[] = [];
  let current: CommandDef | undefined = cmd;
  for (const word of rawArgs.filter((a) => !a.startsWith("-"))) {
    const subs: Record<string, unknown> | undefined = await resolveValue(current?.subCommands);
    const next = subs?.[word];
    if (next === undefined) break;
    current = (await resolveValue(next)) as CommandDef;
    path.push(word);
  }
  return path;
}

async function resolveValue<T>(value: T | (() => T | Promise<T>) | Promise<T>): Promise<T> {
  return typeof value === "function" ? await (value as () => T | Promise<T>)() : await value;
}

if (import.meta.main) await runCli();
