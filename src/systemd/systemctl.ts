// The systemd ServiceManager: every operation is one bounded `systemctl` process. The master's tick
// reads all runner units with ONE `systemctl show`, and no call can hang it: each spawn is killed at
// its deadline and reported as a typed error, while the job it queued goes on inside systemd.

import { z } from "zod";
import type { ActiveState, Clock, ServiceManager, Signal, UnitExit, UnitState } from "../ports.ts";
import { realClock } from "../ports.ts";
import { createProcReader, isFrozenState, type ProcReader } from "./proc.ts";

export type SystemdScope = "system" | "user";

export const SHOW_TIMEOUT_MS = 5_000;
export const KILL_TIMEOUT_MS = 5_000;
/** start/stop/restart wait for their job (a runner's stop can take its TimeoutStopSec); bounded anyway. */
export const JOB_TIMEOUT_MS = 20_000;

/**
 * Requested in this order; systemctl prints them in its own order, so blocks are parsed by key.
 * Monotonic timestamps avoid parsing localized wall-clock text; StateChange gives "since" for
 * units that are not active (failed, auto-restart, inactive).
 */
export const SHOW_PROPERTIES = [
  "Id",
  "ActiveState",
  "SubState",
  "MainPID",
  "ActiveEnterTimestampMonotonic",
  "StateChangeTimestampMonotonic",
  "NRestarts",
  // How the last main process ended: a runner that exits 78 (a config error) is not started in a loop.
  "Result",
  "ExecMainCode",
  "ExecMainStatus",
  "ExecMainStartTimestampMonotonic",
  "ExecMainExitTimestampMonotonic",
] as const;

export interface RunOptions {
  timeoutMs: number;
  env?: Record<string, string | undefined>;
}

export interface RunResult {
  /** null when the process was killed at its deadline or could not be spawned */
  exitCode: number | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/** Runs argv[0] with the rest as arguments; must resolve (never reject, never hang past timeoutMs + a little). */
export type Spawner = (argv: readonly string[], options: RunOptions) => Promise<RunResult>;

/** After the kill at the deadline, how long we still wait for the pipes before giving up on them. */
const KILL_GRACE_MS = 200;

export const bunSpawner: Spawner = async (argv, { timeoutMs, env }) => {
  let proc: ReturnType<typeof Bun.spawn<"ignore", "pipe", "pipe">>;
  try {
    proc = Bun.spawn([...argv], { stdin: "ignore", stdout: "pipe", stderr: "pipe", env: env ?? process.env });
  } catch (error) {
    return { exitCode: null, stdout: "", stderr: `cannot run ${argv[0]}: ${(error as Error).message}`, timedOut: false };
  }
  const finished = Promise.all([proc.exited, new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), Math.max(0, timeoutMs));
  });
  const first = await Promise.race([finished, deadline]);
  clearTimeout(timer);
  if (first !== "timeout") {
    const [exitCode, stdout, stderr] = first;
    return { exitCode, stdout, stderr, timedOut: false };
  }
  proc.kill("SIGKILL");
  // A grandchild could keep the pipes open: do not wait on them for long.
  const late = await Promise.race([finished, Bun.sleep(KILL_GRACE_MS).then(() => null)]);
  return { exitCode: null, stdout: late?.[1] ?? "", stderr: late?.[2] ?? "", timedOut: true };
};

export class SystemctlError extends Error {
  constructor(
    readonly argv: readonly string[],
    readonly result: RunResult,
    timeoutMs: number,
  ) {
    const cmd = argv.join(" ");
    const detail = result.stderr.trim().split("\n").filter(Boolean).slice(-2).join("; ");
    super(
      result.timedOut
        ? `${cmd} did not finish within ${timeoutMs} ms (killed; a queued job goes on inside systemd)`
        : `${cmd} failed (exit ${result.exitCode ?? "none"})${detail ? `: ${detail}` : ""}`,
    );
    this.name = "SystemctlError";
  }
}

let totalSpawns = 0;
/** systemctl processes spawned by every manager in this process (read by the loop benchmark). */
export function systemctlSpawnCount(): number {
  return totalSpawns;
}

export interface SystemdServiceManagerOptions {
  /** systemd-run binary for the dead-man switch (default: "systemd-run" on PATH) */
  systemdRun?: string;
  scope: SystemdScope;
  /** Unit name for a runner id, e.g. (id) => `jorm_runner@${id}.service` */
  unitFor: (id: number) => string;
  run?: Spawner;
  clock?: Clock;
  proc?: ProcReader;
  /** Environment for systemctl (the user scope needs XDG_RUNTIME_DIR / DBUS_SESSION_BUS_ADDRESS). */
  env?: Record<string, string | undefined>;
  /**
   * Whom `kill` signals. "main" (default) is the runner itself: `jorm-master runner` execs the node,
   * so MainPID is jormungandr and frozen is read from that same PID.
   */
  killWhom?: "main" | "all";
  /** Queue start/stop/restart and return at once instead of waiting for the job (default false). */
  noBlock?: boolean;
  timeouts?: Partial<{ showMs: number; killMs: number; jobMs: number }>;
  systemctl?: string;
}

/** A runner's boundary dead-man switch (the transient lease timer armFreeze starts), as systemd reports it. */
export interface FreezeSwitchState {
  /** The timer is loaded and waiting to fire */
  armed: boolean;
  /** When it fires (ms since epoch); null when not armed or the time could not be read */
  fireAtMs: number | null;
}

export interface SystemdServiceManager extends ServiceManager {
  readonly scope: SystemdScope;
  /** Read-only: the dead-man switch of every runner, in one `systemctl show` of the lease timers. */
  showFreezeSwitches(ids: readonly number[]): Promise<Map<number, FreezeSwitchState>>;
  /** systemctl processes this manager spawned so far */
  readonly spawnCount: number;
  unitFor(id: number): string;
}

const ACTIVE_STATES = new Set<string>(["active", "reloading", "inactive", "failed", "activating", "deactivating"]);
const RUNNING_STATES = new Set<string>(["active", "reloading", "deactivating"]);

const uintText = z.string().regex(/^\d+$/).transform(Number);
const showBlockSchema = z.object({
  Id: z.string().min(1),
  ActiveState: z.string().transform((s): ActiveState => (ACTIVE_STATES.has(s) ? (s as ActiveState) : "unknown")),
  SubState: z.string().default(""),
  MainPID: uintText.default(0),
  ActiveEnterTimestampMonotonic: uintText.default(0),
  StateChangeTimestampMonotonic: uintText.default(0),
  // Older systemd (< 235) has no NRestarts and prints nothing for it.
  NRestarts: z.union([uintText, z.literal("").transform(() => 0)]).default(0),
  Result: z.string().default(""),
  ExecMainCode: z.union([uintText, z.literal("").transform(() => 0)]).default(0),
  ExecMainStatus: z.union([uintText, z.literal("").transform(() => 0)]).default(0),
  ExecMainStartTimestampMonotonic: z.union([uintText, z.literal("").transform(() => 0)]).default(0),
  ExecMainExitTimestampMonotonic: z.union([uintText, z.literal("").transform(() => 0)]).default(0),
});
export type ShowBlock = z.infer<typeof showBlockSchema>;

/** `systemctl show` prints one KEY=VALUE block per unit, blocks separated by a blank line. */
export function parseShowOutput(stdout: string): ShowBlock[] {
  const blocks: ShowBlock[] = [];
  for (const chunk of stdout.split(/\n[ \t]*\n/)) {
    const fields: Record<string, string> = {};
    for (const line of chunk.split("\n")) {
      const eq = line.indexOf("=");
      if (eq > 0) fields[line.slice(0, eq)] = line.slice(eq + 1);
    }
    if (Object.keys(fields).length === 0) continue;
    const parsed = showBlockSchema.safeParse(fields);
    if (!parsed.success) {
      throw new Error(`unexpected systemctl show block (${z.prettifyError(parsed.error).replace(/\n/g, " ")}): ${chunk.trim()}`);
    }
    blocks.push(parsed.data);
  }
  return blocks;
}

/** systemctl appends ".service" to a name without a unit suffix; the Id it reports carries it. */
export function normalizeUnitName(name: string): string {
  return /\.(service|socket|target|timer|mount|path|scope|slice|device|swap|automount)$/.test(name)
    ? name
    : `${name}.service`;
}

/**
 * Turns one block into a UnitState. `monoNowUs` is the kernel's monotonic now (null: unknown) and
 * `nowMs` the wall clock read at the same moment; `frozen` comes from /proc.
 */
export function toUnitState(
  id: number,
  block: ShowBlock,
  monoNowUs: number | null,
  nowMs: number,
  frozen: boolean | null,
): UnitState {
  const enteredUs = RUNNING_STATES.has(block.ActiveState)
    ? block.ActiveEnterTimestampMonotonic
    : block.StateChangeTimestampMonotonic;
  const sinceMs =
    monoNowUs === null || enteredUs === 0 ? null : Math.round(nowMs - Math.max(0, monoNowUs - enteredUs) / 1000);
  return {
    id,
    activeState: block.ActiveState,
    subState: block.SubState,
    mainPid: block.MainPID,
    sinceMs,
    restarts: block.NRestarts,
    frozen,
    lastExit: lastExit(block),
  };
}

/** siginfo's CLD_* codes, as ExecMainCode prints them. */
const EXIT_CODES: Record<number, UnitExit["code"]> = { 1: "exited", 2: "killed", 3: "dumped" };

/** How the last main process ended; null when none has ended (no exit time recorded). */
export function lastExit(block: ShowBlock): UnitExit | null {
  if (block.ExecMainExitTimestampMonotonic === 0) return null;
  const start = block.ExecMainStartTimestampMonotonic;
  const end = block.ExecMainExitTimestampMonotonic;
  return {
    result: block.Result,
    code: EXIT_CODES[block.ExecMainCode] ?? "unknown",
    status: block.ExecMainStatus,
    ranMs: start > 0 && end >= start ? Math.round((end - start) / 1000) : null,
  };
}

/** systemd's timespan units (format_timespan), in microseconds: a month is 30.44 days, a year 365.25. */
const TIMESPAN_UNITS_US: Record<string, number> = {
  y: 31_557_600e6,
  month: 2_629_800e6,
  w: 604_800e6,
  d: 86_400e6,
  h: 3_600e6,
  min: 60e6,
  s: 1e6,
  ms: 1e3,
  us: 1,
  "\u00b5s": 1,
  "\u03bcs": 1,
};

/** `systemctl show` prints *USec properties that are not timestamps as timespans ("13min 38.876374s",
 *  "infinity"): the value in microseconds, null for infinity or anything unexpected. */
export function parseTimespanUs(text: string): number | null {
  const t = text.trim();
  if (t === "0") return 0;
  if (t === "" || t === "infinity") return null;
  let total = 0;
  for (const part of t.split(/\s+/)) {
    const m = /^(\d+(?:\.\d+)?)([a-z\u00b5\u03bc]+)$/.exec(part);
    const unit = m ? TIMESPAN_UNITS_US[m[2]!] : undefined;
    if (!m || unit === undefined) return null;
    total += Number(m[1]) * unit;
  }
  return Math.round(total);
}

const SWITCH_PROPERTIES = ["Id", "LoadState", "ActiveState", "SubState", "NextElapseUSecMonotonic"] as const;

/** Lease timer blocks of `systemctl show` → the switch state; `monoNowUs`/`nowMs` read at the same moment. */
export function parseSwitchBlocks(stdout: string, monoNowUs: number | null, nowMs: number): Map<string, FreezeSwitchState> {
  const out = new Map<string, FreezeSwitchState>();
  for (const chunk of stdout.split(/\n[ \t]*\n/)) {
    const f: Record<string, string> = {};
    for (const line of chunk.split("\n")) {
      const eq = line.indexOf("=");
      if (eq > 0) f[line.slice(0, eq)] = line.slice(eq + 1);
    }
    if (!f.Id) continue;
    const armed = f.LoadState === "loaded" && f.ActiveState === "active" && f.SubState === "waiting";
    const elapseUs = armed ? parseTimespanUs(f.NextElapseUSecMonotonic ?? "") : null;
    const fireAtMs = elapseUs === null || monoNowUs === null ? null : Math.round(nowMs + (elapseUs - monoNowUs) / 1000);
    out.set(f.Id, { armed, fireAtMs });
  }
  return out;
}

function isUnrecognizedOption(error: unknown, option: string): boolean {
  return (
    error instanceof SystemctlError &&
    /unrecognized option|unknown option/i.test(error.result.stderr) &&
    error.result.stderr.includes(option)
  );
}

export function createSystemdServiceManager(options: SystemdServiceManagerOptions): SystemdServiceManager {
  const run = options.run ?? bunSpawner;
  const clock = options.clock ?? realClock;
  const proc = options.proc ?? createProcReader();
  const systemctl = options.systemctl ?? "systemctl";
  const killWhom = options.killWhom ?? "main";
  const timeouts = { showMs: SHOW_TIMEOUT_MS, killMs: KILL_TIMEOUT_MS, jobMs: JOB_TIMEOUT_MS, ...options.timeouts };
  // A fixed locale and no pager/password prompt: output stays machine-readable and nothing waits on a TTY.
  const env: Record<string, string | undefined> = {
    ...(options.env ?? process.env),
    LC_ALL: "C",
    SYSTEMD_PAGER: "",
    SYSTEMD_COLORS: "0",
  };
  // `systemctl --user` finds the manager through XDG_RUNTIME_DIR; from cron or sudo it may be unset
  // ("Failed to connect to bus: No medium found"), so default it as pam_systemd would set it.
  if (options.scope === "user" && !env.XDG_RUNTIME_DIR && process.getuid) {
    env.XDG_RUNTIME_DIR = `/run/user/${process.getuid()}`;
  }
  const baseArgs = [systemctl, ...(options.scope === "user" ? ["--user"] : []), "--no-pager", "--no-ask-password"];
  let spawns = 0;
  let killWhomFlag: "--kill-whom" | "--kill-who" = "--kill-whom";

  /** Every process this manager starts goes through here: counted, bounded, checked. */
  async function spawnChecked(argv: readonly string[], timeoutMs: number): Promise<RunResult> {
    spawns++;
    totalSpawns++;
    const result = await run(argv, { timeoutMs, env });
    if (result.timedOut || result.exitCode !== 0) throw new SystemctlError(argv, result, timeoutMs);
    return result;
  }
  const systemctlRun = (args: readonly string[], timeoutMs: number) => spawnChecked([...baseArgs, ...args], timeoutMs);

  const unitFor = (id: number) => normalizeUnitName(options.unitFor(id));

  // The dead-man switch is a transient timer in the manager itself, so it fires even when the
  // daemon that armed it is dead: `systemd-run --on-active` running `systemctl kill -s SIGSTOP`.
  const systemdRun = options.systemdRun ?? "systemd-run";
  const leaseUnit = (id: number) => `jorm-master-lease-${unitFor(id).replace(/\.service$/, "").replace(/[^A-Za-z0-9_-]/g, "-")}`;
  async function stopSwitch(name: string): Promise<void> {
    try {
      await systemctlRun(["stop", "--", `${name}.timer`, `${name}.service`], timeouts.killMs);
    } catch (error) {
      // Nothing armed: the units are not loaded, which is what we wanted.
      if (!(error instanceof SystemctlError && /not loaded|not found/i.test(error.result.stderr))) throw error;
    }
  }
  // rearmFreeze moves a switch make-before-break between two timer units per runner (the second
  // named "<lease unit>-b"): which of them is armed now, per runner, as far as this daemon knows.
  const rearmed = new Map<number, "a" | "b">();
  const switchName = (id: number, which: "a" | "b") => (which === "a" ? leaseUnit(id) : `${leaseUnit(id)}-b`);
  async function disarm(id: number): Promise<void> {
    const current = rearmed.get(id);
    rearmed.delete(id);
    await stopSwitch(leaseUnit(id));
    if (current === "b") await stopSwitch(switchName(id, "b"));
  }
  async function arm(name: string, id: number, atMs: number): Promise<void> {
    const delayMs = Math.max(1, Math.round(atMs - clock.now()));
    await spawnChecked(
      [
        systemdRun,
        ...(options.scope === "user" ? ["--user"] : []),
        "--quiet",
        "--collect",
        `--unit=${name}`,
        `--on-active=${delayMs}ms`,
        // Timers are coalesced to a minute by default; this one must fire on the millisecond.
        "--timer-property=AccuracySec=1ms",
        "--",
        ...baseArgs,
        "kill",
        `${killWhomFlag}=main`,
        "--signal=SIGSTOP",
        "--",
        unitFor(id),
      ],
      timeouts.killMs,
    );
  }

  async function job(verb: "start" | "stop" | "restart", id: number): Promise<void> {
    await systemctlRun([verb, ...(options.noBlock ? ["--no-block"] : []), "--", unitFor(id)], timeouts.jobMs);
  }

  return {
    scope: options.scope,
    get spawnCount() {
      return spawns;
    },
    unitFor,

    async showAll(ids) {
      const result = new Map<number, UnitState>();
      if (ids.length === 0) return result;
      const units = ids.map(unitFor);
      const { stdout } = await systemctlRun(
        ["show", `--property=${SHOW_PROPERTIES.join(",")}`, "--", ...units],
        timeouts.showMs,
      );
      // Read right after the show so "since" is measured against the same instant.
      const [monoNowUs, nowMs] = [await proc.uptimeUs(), clock.now()];
      const blocks = parseShowOutput(stdout);
      const byId = new Map(blocks.map((b) => [b.Id, b]));
      const positional = blocks.length === units.length;
      const matched = ids.map((id, i) => {
        // Blocks come in argument order; the Id check catches a unit reported under an alias.
        const block = byId.get(units[i]!) ?? (positional ? blocks[i] : undefined);
        if (block === undefined) throw new Error(`systemctl show reported nothing for ${units[i]}`);
        return block;
      });
      const frozen = await Promise.all(
        matched.map(async (b) => (b.MainPID > 0 ? isFrozenState(await proc.processState(b.MainPID)) : null)),
      );
      ids.forEach((id, i) => result.set(id, toUnitState(id, matched[i]!, monoNowUs, nowMs, frozen[i] ?? null)));
      return result;
    },

    async armFreeze(id, atMs) {
      await disarm(id);
      await arm(leaseUnit(id), id, atMs);
    },
    // The signer's switch in cluster mode, moved after every keep-alive: the new timer is armed
    // before the old one is stopped, so the runner is never without one (a daemon killed between a
    // stop and an arm would leave it unfenced). An old one that cannot be stopped fires early: safe.
    async rearmFreeze(id, atMs) {
      const first = rearmed.get(id) === "b" ? "a" : "b";
      const second = first === "a" ? "b" : "a";
      let armedNow: "a" | "b";
      try {
        await arm(switchName(id, first), id, atMs);
        armedNow = first;
      } catch (error) {
        if (!(error instanceof SystemctlError)) throw error;
        // A leftover under that name (an earlier daemon's or service manager's, which this one does
        // not know of): it stays armed while the other name is armed, so no moment is unarmed.
        try {
          await arm(switchName(id, second), id, atMs);
          armedNow = second;
        } catch (again) {
          if (!(again instanceof SystemctlError)) throw again;
          // Both names loaded: `second` stays armed while `first` is replaced.
          await stopSwitch(switchName(id, first));
          await arm(switchName(id, first), id, atMs);
          armedNow = first;
        }
      }
      rearmed.set(id, armedNow);
      await stopSwitch(switchName(id, armedNow === "a" ? "b" : "a"));
    },
    disarmFreeze: (id) => disarm(id),

    async showFreezeSwitches(ids) {
      const result = new Map<number, FreezeSwitchState>();
      if (ids.length === 0) return result;
      const timers = ids.map((id) => `${leaseUnit(id)}.timer`);
      // A timer that is not loaded is reported (LoadState=not-found), not an error.
      const { stdout } = await systemctlRun(["show", `--property=${SWITCH_PROPERTIES.join(",")}`, "--", ...timers], timeouts.showMs);
      const [monoNowUs, nowMs] = [await proc.uptimeUs(), clock.now()];
      const byId = parseSwitchBlocks(stdout, monoNowUs, nowMs);
      ids.forEach((id, i) => {
        const s = byId.get(timers[i]!);
        if (s === undefined) throw new Error(`systemctl show reported nothing for ${timers[i]}`);
        result.set(id, s);
      });
      return result;
    },

    start: (id) => job("start", id),
    stop: (id) => job("stop", id),
    restart: (id) => job("restart", id),

    async kill(id, signal: Signal) {
      const args = (flag: string) => ["kill", `${flag}=${killWhom}`, `--signal=${signal}`, "--", unitFor(id)];
      try {
        await systemctlRun(args(killWhomFlag), timeouts.killMs);
      } catch (error) {
        // systemd 252 renamed --kill-who to --kill-whom; older ones know only the old name.
        if (killWhomFlag !== "--kill-whom" || !isUnrecognizedOption(error, "--kill-whom")) throw error;
        killWhomFlag = "--kill-who";
        await systemctlRun(args(killWhomFlag), timeouts.killMs);
      }
    },
  };
}

/** Whether a unit's ActiveState/SubState (from `systemctl show`) means its process runs: active, or
 *  a Type=notify unit started and not READY yet (the master sends READY=1 only after its first
 *  observation, during which it starts the runners). Not "activating/auto-restart": nothing runs. */
export function runsFromShow(text: string): boolean {
  const prop = (k: string) => new RegExp(`^${k}=(.*)$`, "m").exec(text)?.[1]?.trim();
  const active = prop("ActiveState");
  return active === "active" || active === "reloading" || (active === "activating" && prop("SubState") === "start");
}

/** Whether UNIT's process runs (see runsFromShow): false on any failure or timeout (an unknown
 *  answer must not count as a running master). */
export async function unitIsActive(
  scope: SystemdScope,
  unit: string,
  timeoutMs: number,
  run: Spawner = bunSpawner,
  env: Record<string, string | undefined> = process.env,
): Promise<boolean> {
  const argv = ["systemctl", ...(scope === "user" ? ["--user"] : []), "show", "-p", "ActiveState,SubState", "--", unit];
  const result = await run(argv, { timeoutMs, env: { ...env, LC_ALL: "C" } }).catch(() => null);
  return result !== null && !result.timedOut && result.exitCode === 0 && runsFromShow(result.stdout);
}
