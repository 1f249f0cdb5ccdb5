// The world file (sim-world.yaml): what every simulated node process of one deployment shares, so
// separate processes (one per systemd unit) simulate the same chain. A node finds it beside its
// --config file or through $JORM_SIM_WORLD; its journal lives in the same directory.

import { existsSync, readFileSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { parse, stringify } from "yaml";
import { z } from "zod";
import { ConfigError } from "../errors.ts";
import { type ChainParams, MS_PER_S, validateChainParams } from "./chain.ts";
import { type BootDurations, DEFAULT_BOOT_MS, DEFAULT_LOGS_CAPACITY } from "./node.ts";
import { DEFAULT_SHUTDOWN_MS } from "./world.ts";

export const WORLD_FILE = "sim-world.yaml";
export const WORLD_ENV = "JORM_SIM_WORLD";
export const DEFAULT_JOURNAL_FILE = "journal.jsonl";

const ms = z.number().int().nonnegative();
const bootSchema = z
  .object({
    starting_rest_server: ms,
    preparing_storage: ms,
    preparing_block0: ms,
    bootstrapping: ms,
    starting_workers: ms,
  })
  .partial()
  .strict();

const runnerSchema = z.object({ boot_ms: bootSchema.optional(), schedule_compute_ms: ms.optional() }).strict();

export const worldFileSchema = z
  .object({
    chain: z
      .object({
        block0_time: z.string().refine((s) => !Number.isNaN(Date.parse(s)), "expected an RFC 3339 time"),
        slot_ms: z.number().int().positive(),
        slots_per_epoch: z.number().int().min(2),
        seed: z.number().int(),
        leader_slots_per_epoch: z.number().int().nonnegative(),
        active_slot_coeff: z.number().gt(0).lte(1),
        block0_hash: z.string().optional(),
      })
      .strict(),
    node: z
      .object({
        boot_ms: bootSchema.default({}),
        schedule_compute_ms: ms.default(0),
        shutdown_ms: ms.default(DEFAULT_SHUTDOWN_MS),
        logs_capacity: z.number().int().positive().default(DEFAULT_LOGS_CAPACITY),
      })
      .strict()
      .default({ boot_ms: {}, schedule_compute_ms: 0, shutdown_ms: DEFAULT_SHUTDOWN_MS, logs_capacity: DEFAULT_LOGS_CAPACITY }),
    /** Per runner id (from the storage dir's or the REST port's trailing digit) */
    runners: z.record(z.string().regex(/^\d+$/), runnerSchema).default({}),
    journal: z.string().default(DEFAULT_JOURNAL_FILE),
  })
  .strict();

export type WorldFile = z.output<typeof worldFileSchema>;

export interface LoadedWorld {
  dir: string;
  file: string;
  chain: ChainParams;
  journalPath: string;
  shutdownMs: number;
  logsCapacity: number;
  bootFor(runner: number): BootDurations;
  scheduleComputeMsFor(runner: number): number;
}

const BOOT_KEYS: Record<keyof z.output<typeof bootSchema>, keyof BootDurations> = {
  starting_rest_server: "StartingRestServer",
  preparing_storage: "PreparingStorage",
  preparing_block0: "PreparingBlock0",
  bootstrapping: "Bootstrapping",
  starting_workers: "StartingWorkers",
};

function bootFrom(over: z.output<typeof bootSchema> | undefined, base: BootDurations): BootDurations {
  const out = { ...base };
  for (const [k, v] of Object.entries(over ?? {})) if (v !== undefined) out[BOOT_KEYS[k as keyof typeof BOOT_KEYS]] = v;
  return out;
}

/** The world file for a node: $JORM_SIM_WORLD (a directory or the file), else beside --config. */
export function locateWorld(configPath: string | undefined, env: Record<string, string | undefined> = process.env): string {
  const fromEnv = env[WORLD_ENV];
  if (fromEnv) {
    const p = resolve(fromEnv);
    return existsSync(p) && statSync(p).isDirectory() ? join(p, WORLD_FILE) : p;
  }
  if (configPath) return join(dirname(resolve(configPath)), WORLD_FILE);
  throw new ConfigError(
    `simulated node: no world. Put a ${WORLD_FILE} beside the --config file or set ${WORLD_ENV}.\n` +
      `Create one with: jorm-master sim world init DIR`,
  );
}

export function parseWorld(text: string, file: string): LoadedWorld {
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (error) {
    throw new ConfigError(`${file}: YAML syntax error: ${(error as Error).message.split("\n")[0]}`);
  }
  const parsed = worldFileSchema.safeParse(doc ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ConfigError(`${file}: ${issue?.path.join(".") || "$"}: ${issue?.message ?? "invalid"}`);
  }
  const w = parsed.data;
  const chain: ChainParams = {
    block0TimeMs: Date.parse(w.chain.block0_time),
    slotDurationMs: w.chain.slot_ms,
    slotsPerEpoch: w.chain.slots_per_epoch,
    seed: w.chain.seed,
    leaderSlotsPerEpoch: w.chain.leader_slots_per_epoch,
    activeSlotCoeff: w.chain.active_slot_coeff,
    ...(w.chain.block0_hash === undefined ? {} : { block0Hash: w.chain.block0_hash }),
  };
  const problems = validateChainParams(chain);
  if (problems.length) throw new ConfigError(`${file}: chain: ${problems.join("; ")}`);
  const dir = dirname(resolve(file));
  const base = bootFrom(w.node.boot_ms, DEFAULT_BOOT_MS);
  return {
    dir,
    file,
    chain,
    journalPath: resolve(dir, w.journal),
    shutdownMs: w.node.shutdown_ms,
    logsCapacity: w.node.logs_capacity,
    bootFor: (runner) => bootFrom(w.runners[String(runner)]?.boot_ms, base),
    scheduleComputeMsFor: (runner) => w.runners[String(runner)]?.schedule_compute_ms ?? w.node.schedule_compute_ms,
  };
}

export function loadWorld(file: string): LoadedWorld {
  if (!existsSync(file)) {
    throw new ConfigError(`${file}: no such world file.\nCreate one with: jorm-master sim world init ${dirname(file)}`);
  }
  return parseWorld(readFileSync(file, "utf8"), file);
}

/** Boot phases of a new world: seconds rather than ITN's minutes, so demos and e2e runs move. */
export const QUICK_BOOT_MS: BootDurations = {
  StartingRestServer: 100,
  PreparingStorage: 300,
  PreparingBlock0: 200,
  Bootstrapping: 3000,
  StartingWorkers: 200,
};

export interface WorldInit {
  block0TimeMs: number;
  slotMs: number;
  slotsPerEpoch: number;
  seed: number;
  density: number;
  activeSlotCoeff: number;
  bootstrapMs: number;
  computeMs: number;
}

/** The text of a new world file, commented. */
export function renderWorld(w: WorldInit): string {
  const doc: WorldFile = {
    chain: {
      block0_time: new Date(Math.floor(w.block0TimeMs / MS_PER_S) * MS_PER_S).toISOString().replace(".000Z", "+00:00"),
      slot_ms: w.slotMs,
      slots_per_epoch: w.slotsPerEpoch,
      seed: w.seed,
      leader_slots_per_epoch: w.density,
      active_slot_coeff: w.activeSlotCoeff,
    },
    node: {
      boot_ms: {
        starting_rest_server: QUICK_BOOT_MS.StartingRestServer,
        preparing_storage: QUICK_BOOT_MS.PreparingStorage,
        preparing_block0: QUICK_BOOT_MS.PreparingBlock0,
        bootstrapping: w.bootstrapMs,
        starting_workers: QUICK_BOOT_MS.StartingWorkers,
      },
      schedule_compute_ms: w.computeMs,
      shutdown_ms: DEFAULT_SHUTDOWN_MS,
      logs_capacity: DEFAULT_LOGS_CAPACITY,
    },
    runners: {},
    journal: DEFAULT_JOURNAL_FILE,
  };
  return (
    "# jorm-master simulated world: every `jorm-master sim node` of one deployment reads this file,\n" +
    "# so all runners simulate the same chain. Times in ms; slot_ms in whole seconds.\n" +
    "# chain.leader_slots_per_epoch: the pool's leader slots per epoch (never slot 0).\n" +
    "# runners: per-runner overrides, e.g. {\"1\": {boot_ms: {bootstrapping: 60000}, schedule_compute_ms: 30000}}\n" +
    "# journal: JSON lines appended by every node (audit with: jorm-master sim audit --world DIR)\n" +
    stringify(doc)
  );
}

export const WRAPPER_FILE = "jormungandr-sim";

const shQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** The command that runs this very jorm-master: the compiled binary, or bun with the CLI script. */
export function selfCommand(execPath = process.execPath, main = Bun.main): string[] {
  const compiled = main.startsWith("/$bunfs/") || main.startsWith("B:/~BUN/") || !/\.[cm]?[jt]s$/.test(main);
  return compiled ? [execPath] : [execPath, main];
}

/** A drop-in jormungandr: point jormungandr_runner_N at it and the unit runs a simulated node. */
export function renderWrapper(command: readonly string[]): string {
  return `#!/bin/sh\n# A simulated Jormungandr: jorm-master's node simulator with jormungandr's flags.\nexec ${command.map(shQuote).join(" ")} sim node "$@"\n`;
}
