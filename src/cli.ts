#!/usr/bin/env bun
import { defineCommand, runCommand, runMain, showUsage, type ArgsDef, type CommandDef } from "citty";
import { EXIT_USAGE, UserError } from "./errors.ts";
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
    config: () => import("./commands/config.ts").then((m) => m.default),
    demo: () => import("./commands/demo.ts").then((m) => m.default),
    sim: () => import("./commands/sim.ts").then((m) => m.default),
  },
});

/**
 * citty's runMain prints every error with its stack and exits 1. A UserError is an operator's
 * mistake: print its message alone and exit with its code (78 for the configuration). Anything else
 * is a bug and keeps its stack.
 */
export async function runCli(cmd: CommandDef = main, rawArgs: string[] = process.argv.slice(2)): Promise<void> {
  const helpOrVersion =
    rawArgs.length === 0 ||
    rawArgs.some((a) => a === "--help" || a === "-h") ||
    (rawArgs.length === 1 && (rawArgs[0] === "--version" || rawArgs[0] === "-v"));
  if (helpOrVersion) return runMain(cmd, { rawArgs, showUsage: conciseUsage });
  try {
    await runCommand(cmd, { rawArgs });
  } catch (error) {
    if (error instanceof UserError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(error.exitCode);
    }
    if (error instanceof Error && error.name === "CLIError") {
      const message = process.stderr.isTTY ? error.message : error.message.replace(/\x1b\[[0-9;]*m/g, "");
      const path = await knownCommandPath(cmd, rawArgs);
      process.stderr.write(`${message}\nSee: ${["jorm-master", ...path, "--help"].join(" ")}\n`);
      process.exit(EXIT_USAGE);
    }
    throw error;
  }
}

/** A command list shows each subcommand's first line; its own --help shows the rest. */
async function conciseUsage<T extends ArgsDef>(cmd: CommandDef<T>, parent?: CommandDef<T>): Promise<void> {
  const subs: Record<string, unknown> | undefined = await resolveValue(cmd.subCommands);
  if (!subs) return showUsage(cmd, parent);
  const short: Record<string, CommandDef> = {};
  for (const [name, sub] of Object.entries(subs)) {
    const def = (await resolveValue(sub)) as CommandDef;
    const meta = (await resolveValue(def.meta)) ?? {};
    short[name] = { ...def, meta: { ...meta, description: firstLine(meta.description) } };
  }
  return showUsage({ ...cmd, subCommands: short } as CommandDef<T>, parent);
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
