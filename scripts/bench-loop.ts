#!/usr/bin/env bun
// What one tick of the real daemon costs: the `Master` loop with the production ports — the HTTP
// NodeApi against simulated runners served over loopback HTTP, and the systemd service manager
// (scope user) against real units under a `systemd --user` manager — for 3 and 32 runners.
//
//   bun run bench:loop                  # 3 and 32 runners: ~8 s warm-up, 60 s steady, 15 s faults each
//   bun run bench:loop --json           # one JSON object per line
//   bun run bench:loop --quick          # 15 s steady, 10 s faults (a smoke run)
//   bun run bench:loop --runners 8 --steady 30 --fault 0
//   bun run bench:loop --fake-systemctl # no user manager: count the systemctl processes instead
//
// Three processes, so each figure belongs to whom it would in production:
//   - the orchestrator (this file's main) runs one fresh "master" process per runner count, so the
//     RSS of the 32-runner run carries nothing of the 3-runner run;
//   - the master process runs exactly what `jorm-master daemon` runs (the Daemon with the ports its
//     factory builds: httpTransport, the systemd manager, readNodeSecret, the wall clock) and nothing
//     of the simulator;
//   - the world host process runs the simulated runners (World with a RealScheduler, one Bun.serve
//     per runner on 127.0.0.1) — in production the nodes are other processes too.
// Each runner has a real unit `jorm-bench-runner@N.service` (a `sleep infinity` stand-in) whose
// MainPID mirrors its simulated node: a crash SIGKILLs it (systemd restarts it after RestartSec=2,
// as the world restarts the node), an external SIGSTOP stops it, so `systemctl show` and
// /proc/PID/stat say what the node does. Everything the master does to a unit (start, stop,
// restart, kill -s STOP/CONT/KILL, the dead-man switch) goes to the real unit AND to the simulated
// node. Where no user manager can be had, the systemd manager runs with a spawner that answers
// from the world and counts the systemctl processes the implementation would have spawned.

import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { defaultConfig } from "../src/config/load.ts";
import type { ResolvedConfig, RunnerConfig } from "../src/config/types.ts";
import { Daemon } from "../src/daemon/daemon.ts";
import { FailoverTimer, percentile } from "../src/lab/measure.ts";
import { buildPorts } from "../src/daemon/ports.ts";
import type { MasterLog, TickReport } from "../src/master/loop.ts";
import { realClock, type ServiceManager, type Signal, type UnitState } from "../src/ports.ts";
import type { Transport } from "../src/node/types.ts";
import type { ProcReader } from "../src/systemd/proc.ts";
import {
  SHOW_PROPERTIES,
  systemctlSpawnCount,
  type RunResult,
  type Spawner,
  type SystemdServiceManager,
} from "../src/systemd/systemctl.ts";
import type { BootDurations } from "../src/sim/node.ts";
import type { Fault } from "../src/sim/world.ts";

// --- parameters ---------------------------------------------------------------------------------

export const DEFAULT_RUNNER_COUNTS = [3, 32];
export const STEADY_MS = 60_000;
export const FAULT_MS = 15_000;
export const QUICK_STEADY_MS = 15_000;
export const QUICK_FAULT_MS = 10_000;
/** Below Linux's ephemeral range (32768–60999): a client socket of any process could hold a port there */
export const DEFAULT_PORT_BASE = 23_400;
/** The issue's targets for 32 runners */
export const TARGETS = { systemctlPerTick: 1, tickP99Ms: 250, rssMb: 80 } as const;
/** Runner counts from which the targets apply */
export const TARGET_RUNNERS = 32;

/** ITN as ITN_CHAIN has it: 2 s slots, 43200 slots per epoch, 50 leader slots per epoch. */
export const LEADER_SLOTS_PER_EPOCH = 50;
/** Boots short enough that warm-up is seconds: boot is not what this bench measures. */
export const BENCH_BOOT_MS: Partial<BootDurations> = {
  StartingRestServer: 100,
  PreparingStorage: 300,
  PreparingBlock0: 200,
  Bootstrapping: 2_000,
  StartingWorkers: 200,
};
export const BENCH_SCHEDULE_COMPUTE_MS = 1_000;
/** systemd RestartSec of the stand-in units and the world's restart delay: the two restart together */
export const RESTART_DELAY_MS = 2_000;
/** The pool's leader slot is placed this long after the world starts: inside the steady phase */
const LEADER_SLOT_AFTER_START_MS = 35_000;
/** Warm-up ends once this many consecutive ticks took no action with one signer and all running */
const QUIET_TICKS = 6;
const WARMUP_LIMIT_MS = 90_000;
const WAIT_POLL_MS = 50;
const HOST_READY_TIMEOUT_MS = 30_000;

export const UNIT_PREFIX = "jorm-bench-runner";
export const unitName = (id: number): string => `${UNIT_PREFIX}@${id}.service`;

/** The stand-in unit: its process lives, dies and stops as the simulated node does. */
export const UNIT_TEMPLATE_TEXT = `# Written by scripts/bench-loop.ts for the duration of a benchmark run, then removed.
[Unit]
Description=jorm-master bench:loop stand-in process for simulated runner %i

[Service]
ExecStart=sleep infinity
Restart=always
RestartSec=${RESTART_DELAY_MS / 1000}
TimeoutStopSec=5
`;

// --- figures (pure) -----------------------------------------------------------------------------

export { percentile };

const round1 = (x: number): number => Math.round(x * 10) / 10;
const round2 = (x: number): number => Math.round(x * 100) / 100;

export interface Counters {
  ticks: number;
  spawns: number;
  requests: number;
}

export interface PhaseFigures {
  ticks: number;
  tick_p50_ms: number | null;
  tick_p99_ms: number | null;
  tick_max_ms: number | null;
  systemctl_per_tick: number | null;
  requests_per_tick: number | null;
  /** Actions the master took (report-tip excluded) */
  actions: number;
}

/** Figures of one phase from its tick durations and the counters at its start and end. */
export function phaseFigures(durationsMs: readonly number[], from: Counters, to: Counters, actions: number): PhaseFigures {
  const ticks = to.ticks - from.ticks;
  const per = (n: number) => (ticks > 0 ? round2(n / ticks) : null);
  const max = durationsMs.length > 0 ? Math.max(...durationsMs) : null;
  return {
    ticks,
    tick_p50_ms: percentile(durationsMs, 50),
    tick_p99_ms: percentile(durationsMs, 99),
    tick_max_ms: max,
    systemctl_per_tick: per(to.spawns - from.spawns),
    requests_per_tick: per(to.requests - from.requests),
    actions,
  };
}

/** One line of `--json`: the issue's fields first, then what explains them. */
export interface LoopResult {
  runners: number;
  tick_p50_ms: number | null;
  tick_p99_ms: number | null;
  systemctl_per_tick: number | null;
  requests_per_tick: number | null;
  /** The most over the steady state: the daemon's module graph loaded, after warm-up */
  rss_mb: number;
  /** At the first steady tick (rss_mb minus this: growth over the steady state) */
  rss_first_mb: number;
  /** "user-manager": real units under systemd --user; "counted": spawns counted, not run */
  systemd: "user-manager" | "counted";
  ticks: number;
  steady_s: number;
  steady_actions: number;
  /** systemctl show (one process for every unit) */
  show_p50_ms: number | null;
  show_p99_ms: number | null;
  /** One REST exchange over loopback HTTP */
  request_p50_ms: number | null;
  request_p99_ms: number | null;
  fault_s: number;
  fault_ticks: number;
  fault_tick_p50_ms: number | null;
  fault_tick_p99_ms: number | null;
  fault_systemctl_per_tick: number | null;
  fault_requests_per_tick: number | null;
  failovers_ms: number[];
  scheduled: number;
  produced: number;
  double_produced: number;
  /** Slot windows in which two processes could sign, one after the other included */
  shared_windows: number;
  warmup_s: number;
}

/** Which targets a result misses (they apply from TARGET_RUNNERS runners on); empty: all met. */
export function missedTargets(r: LoopResult): string[] {
  const missed: string[] = [];
  if (r.double_produced > 0) missed.push(`double-produced ${r.double_produced}`);
  if (r.shared_windows > 0) missed.push(`windows two could sign ${r.shared_windows}`);
  if (r.runners < TARGET_RUNNERS) return missed;
  if (r.systemctl_per_tick === null || r.systemctl_per_tick > TARGETS.systemctlPerTick)
    missed.push(`systemctl/tick ${r.systemctl_per_tick} > ${TARGETS.systemctlPerTick}`);
  if (r.tick_p99_ms === null || r.tick_p99_ms >= TARGETS.tickP99Ms) missed.push(`tick p99 ${r.tick_p99_ms} ms ≥ ${TARGETS.tickP99Ms} ms`);
  if (r.rss_mb >= TARGETS.rssMb) missed.push(`RSS ${r.rss_mb} MB ≥ ${TARGETS.rssMb} MB`);
  return missed;
}

const cell = (x: number | null, unit = ""): string => (x === null ? "-" : `${x}${unit}`);

export function renderTable(results: readonly LoopResult[]): string {
  const head = ["runners", "tick p50", "tick p99", "systemctl/tick", "requests/tick", "RSS", "show p99", "faults: tick p50/p99", "failovers", "slots produced", "double"];
  const rows = results.map((r) => [
    String(r.runners),
    cell(r.tick_p50_ms, " ms"),
    cell(r.tick_p99_ms, " ms"),
    cell(r.systemctl_per_tick),
    cell(r.requests_per_tick),
    `${r.rss_mb} MB`,
    cell(r.show_p99_ms, " ms"),
    r.fault_ticks > 0 ? `${cell(r.fault_tick_p50_ms)}/${cell(r.fault_tick_p99_ms)} ms` : "-",
    r.failovers_ms.length > 0 ? r.failovers_ms.map((f) => `${f} ms`).join(", ") : "-",
    `${r.produced}/${r.scheduled}`,
    String(r.double_produced),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cols: string[]) => cols.map((c, i) => (i === 0 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join("  ").trimEnd();
  return [line(head), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n");
}

// --- a systemctl that answers from the world (no user manager) ----------------------------------

/** `systemctl show` text for these unit states, as systemd prints it (monotonic µs = wall ms × 1000). */
export function renderShow(units: readonly string[], states: readonly UnitState[]): string {
  return states
    .map((s, i) => {
      const sinceUs = s.sinceMs === null ? 0 : Math.round(s.sinceMs * 1000);
      const fields: Record<(typeof SHOW_PROPERTIES)[number], string> = {
        Id: units[i]!,
        ActiveState: s.activeState,
        SubState: s.subState,
        MainPID: String(s.mainPid),
        ActiveEnterTimestampMonotonic: String(sinceUs),
        StateChangeTimestampMonotonic: String(sinceUs),
        NRestarts: String(s.restarts),
        Result: s.lastExit?.result ?? "success",
        ExecMainCode: String(s.lastExit ? { exited: 1, killed: 2, dumped: 3, unknown: 0 }[s.lastExit.code] : 0),
        ExecMainStatus: String(s.lastExit?.status ?? 0),
        // Only the run's length is read back from these two (ranMs).
        ExecMainStartTimestampMonotonic: String(s.lastExit?.ranMs != null ? 1 : 0),
        ExecMainExitTimestampMonotonic: String(s.lastExit ? 1 + (s.lastExit.ranMs ?? 0) * 1000 : 0),
      };
      return SHOW_PROPERTIES.map((k) => `${k}=${fields[k]}`).join("\n") + "\n";
    })
    .join("\n");
}

export const unitId = (unit: string): number | null => {
  const m = /@(\d+)\.service$/.exec(unit);
  return m ? Number(m[1]) : null;
};

/**
 * A Spawner for createSystemdServiceManager that runs nothing: `show` is answered from `states`
 * (the world's units), everything else succeeds (the mirror applies it to the world). The systemd
 * manager counts each call as the process it would have spawned. `frozenPids` feeds fakeProc.
 */
export function worldSpawner(states: (ids: number[]) => Promise<UnitState[]>, frozenPids: Map<number, boolean>): Spawner {
  return async (argv): Promise<RunResult> => {
    const sep = argv.indexOf("--");
    if (!argv.includes("show") || sep < 0) return { exitCode: 0, stdout: "", stderr: "", timedOut: false };
    const units = argv.slice(sep + 1);
    const ids = units.map(unitId);
    if (ids.some((id) => id === null)) return { exitCode: 1, stdout: "", stderr: `not a bench unit: ${units.join(" ")}`, timedOut: false };
    const list = await states(ids as number[]);
    frozenPids.clear();
    for (const s of list) if (s.mainPid > 0) frozenPids.set(s.mainPid, s.frozen === true);
    return { exitCode: 0, stdout: renderShow(units, list), stderr: "", timedOut: false };
  };
}

/** /proc as the world sees it: the same monotonic clock renderShow uses, and freezes by pid. */
export function fakeProc(frozenPids: Map<number, boolean>, now: () => number = () => Date.now()): ProcReader {
  return {
    async processState(pid) {
      const f = frozenPids.get(pid);
      return f === undefined ? null : f ? "T" : "S";
    },
    async uptimeUs() {
      return now() * 1000;
    },
  };
}

// --- the world host process ---------------------------------------------------------------------

export interface HostSpec {
  runners: number;
  portBase: number;
  /** Wall time (ms) at which one of the pool's leader slots starts */
  leaderAtMs: number;
  secretPath: string;
  /** Units to mirror crashes and freezes onto (the user manager's XDG_RUNTIME_DIR and bus); null without one */
  mirror: { env: Record<string, string> } | null;
}

export type HostOp =
  | { op: "startAll" }
  | { op: "start" | "stop" | "restart" | "disarm"; id: number }
  | { op: "kill"; id: number; signal: Signal }
  | { op: "arm"; id: number; atMs: number }
  | { op: "inject"; id: number; fault: Fault; forMs?: number }
  | { op: "units"; ids: number[] }
  | { op: "audit"; fromMs: number; toMs: number; guardMs: number; marginMs: number }
  | { op: "exit" };

type HostReply = { seq: number; ok: true; value: unknown } | { seq: number; ok: false; error: string };

export interface AuditFigures {
  scheduled: number;
  produced: number;
  doubleProduced: number;
  missed: number;
  overlapMs: number;
  sharedWindows: number;
}

async function runHost(spec: HostSpec): Promise<void> {
  const [{ World, SIM_POOL_SECRET }, { RealScheduler }, { Chain, ITN_CHAIN }, { serveWorld }, { signOverlapMs }, YAML] = await Promise.all([
    import("../src/sim/world.ts"),
    import("../src/sim/clock.ts"),
    import("../src/sim/chain.ts"),
    import("../src/sim/server.ts"),
    import("../src/sim/audit.ts"),
    import("yaml"),
  ]);
  // Leader slots depend on the seed and the epoch, not on block0: pick one an hour or more from
  // either boundary of epoch 100, then put block0 where that slot starts at spec.leaderAtMs.
  const params = { ...ITN_CHAIN, leaderSlotsPerEpoch: LEADER_SLOTS_PER_EPOCH };
  const EPOCH = 100;
  const margin = Math.ceil(3_600_000 / params.slotDurationMs);
  const slot = new Chain(params).leaderSlots(EPOCH).find((s) => s >= margin && s < params.slotsPerEpoch - margin);
  if (slot === undefined) throw new Error("no leader slot away from the boundaries");
  const block0TimeMs = Math.round(spec.leaderAtMs / 1000) * 1000 - (EPOCH * params.slotsPerEpoch + slot) * params.slotDurationMs;
  const world = new World({
    chain: { ...params, block0TimeMs },
    runners: spec.runners,
    clock: new RealScheduler(),
    // The runner wrapper starts with --secret while a daemon lives (bootpolicy.ts): it always does here.
    keyMode: "boot",
    boot: BENCH_BOOT_MS,
    scheduleComputeMs: BENCH_SCHEDULE_COMPUTE_MS,
    restartDelayMs: RESTART_DELAY_MS,
  });
  writeFileSync(spec.secretPath, YAML.stringify(SIM_POOL_SECRET), { mode: 0o600 });
  const servers = serveWorld(world, { portOf: (id) => spec.portBase + id });
  const leases = new Map<number, () => void>();
  const own = (id: number) => id >= 0 && id < spec.runners;
  const absent = (id: number): UnitState => ({ id, activeState: "inactive", subState: "dead", mainPid: 0, sinceMs: null, restarts: 0, frozen: null });

  // The unit's process follows the node's: what is done to the node from outside is done to it.
  async function mirror(id: number, signal: "SIGKILL" | "SIGSTOP" | "SIGCONT"): Promise<void> {
    if (!spec.mirror) return;
    const proc = Bun.spawn(["systemctl", "--user", "--no-pager", "kill", `--signal=${signal}`, "--", unitName(id)], {
      env: { ...process.env, ...spec.mirror.env },
      stdout: "ignore",
      stderr: "ignore",
    });
    await proc.exited;
  }
  async function inject(id: number, fault: Fault): Promise<void> {
    world.inject(id, fault);
    if (fault.kind === "crash") await mirror(id, "SIGKILL");
    else if (fault.kind === "freeze") await mirror(id, "SIGSTOP");
    else if (fault.kind === "thaw") await mirror(id, "SIGCONT");
  }
  const undo = (f: Fault): Fault | null =>
    f.kind === "freeze" ? { kind: "thaw" } : f.kind === "restHang" || f.kind === "rest500" || f.kind === "stuck" ? { ...f, on: false } : null;

  async function handle(m: HostOp): Promise<unknown> {
    switch (m.op) {
      case "startAll":
        for (const id of world.ids) await world.services.start(id);
        return null;
      case "start":
      case "stop":
      case "restart":
        if (own(m.id)) await world.services[m.op](m.id);
        return null;
      case "kill":
        if (own(m.id)) await world.services.kill(m.id, m.signal);
        return null;
      case "arm":
        leases.get(m.id)?.();
        if (own(m.id))
          leases.set(
            m.id,
            world.clock.at(m.atMs, () => {
              leases.delete(m.id);
              void world.services.kill(m.id, "SIGSTOP");
            }),
          );
        return null;
      case "disarm":
        leases.get(m.id)?.();
        leases.delete(m.id);
        return null;
      case "inject": {
        await inject(m.id, m.fault);
        const u = undo(m.fault);
        if (u && m.forMs !== undefined) world.clock.at(world.clock.now() + m.forMs, () => void inject(m.id, u));
        return null;
      }
      case "units":
        return m.ids.map((id) => (own(id) ? world.unitState(id) : absent(id)));
      case "audit": {
        const a = world.audit(m);
        const phys = signOverlapMs(world.journal.entries(), world.chain, m);
        const figures: AuditFigures = { scheduled: a.scheduled, produced: a.produced, doubleProduced: a.doubleProduced, missed: a.missed, overlapMs: phys.overlapMs, sharedWindows: phys.sharedWindows };
        return figures;
      }
      case "exit":
        servers.stop();
        world.dispose();
        setTimeout(() => process.exit(0), 10);
        return null;
    }
  }
  process.on("message", (msg: { seq: number } & HostOp) => {
    handle(msg).then(
      (value) => process.send!({ seq: msg.seq, ok: true, value } satisfies HostReply),
      (e) => process.send!({ seq: msg.seq, ok: false, error: e instanceof Error ? e.message : String(e) } satisfies HostReply),
    );
  });
  // An orphaned host (its master died) must not keep the ports.
  process.on("disconnect", () => process.exit(0));
  process.send!({ seq: 0, ok: true, value: "ready" } satisfies HostReply);
}

interface Host {
  call<T = unknown>(op: HostOp): Promise<T>;
  exited: Promise<number>;
  kill(): void;
}

async function spawnHost(spec: HostSpec): Promise<Host> {
  let seq = 0;
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  let ready!: () => void;
  const readyP = new Promise<void>((r) => (ready = r));
  const child = Bun.spawn(["bun", import.meta.path, "__host", JSON.stringify(spec)], {
    stdio: ["ignore", "inherit", "inherit"],
    serialization: "json",
    ipc(message: HostReply) {
      if (message.seq === 0) return ready();
      const p = pending.get(message.seq);
      pending.delete(message.seq);
      if (!p) return;
      if (message.ok) p.resolve(message.value);
      else p.reject(new Error(`world host: ${message.error}`));
    },
  });
  const exited = child.exited.then((code) => {
    for (const p of pending.values()) p.reject(new Error(`world host exited (${code})`));
    pending.clear();
    return code;
  });
  const timeout = Bun.sleep(HOST_READY_TIMEOUT_MS).then(() => "timeout" as const);
  const first = await Promise.race([readyP.then(() => "ready" as const), exited.then(() => "exited" as const), timeout]);
  if (first !== "ready") {
    child.kill();
    throw new Error(`the world host did not start (${first})`);
  }
  return {
    call<T>(op: HostOp): Promise<T> {
      const n = ++seq;
      return new Promise<T>((resolve, reject) => {
        pending.set(n, { resolve: resolve as (v: unknown) => void, reject });
        child.send({ seq: n, ...op });
      });
    },
    exited,
    kill: () => child.kill(),
  };
}

// --- the master process -------------------------------------------------------------------------

export interface RunSpec {
  runners: number;
  steadyMs: number;
  faultMs: number;
  portBase: number;
  fakeSystemctl: boolean;
}

/** JORM_BENCH_DEBUG=1: one stderr line per tick (duration, signer, unreachable runners, actions) */
const DEBUG = process.env.JORM_BENCH_DEBUG === "1";
const say = (msg: string) => process.stderr.write(`bench:loop: ${msg}\n`);

async function systemctlUser(env: Record<string, string>, args: string[]): Promise<void> {
  const proc = Bun.spawn(["systemctl", "--user", "--no-pager", ...args], { env, stdout: "ignore", stderr: "pipe" });
  const [code, err] = await Promise.all([proc.exited, new Response(proc.stderr).text()]);
  if (code !== 0) throw new Error(`systemctl --user ${args.join(" ")}: exit ${code}: ${err.trim()}`);
}

async function userManager(fake: boolean): Promise<{ env: Record<string, string>; unitDir: string } | string> {
  if (fake) return "--fake-systemctl";
  const { ensureUserManager } = await import("../test/e2e/user-manager.ts");
  const m = await ensureUserManager();
  if (!m.ok) return m.reason;
  return { env: m.env, unitDir: join(m.xdgRuntimeDir, "systemd", "user") };
}

/** A transport that counts its exchanges and times them (the master's REST traffic). */
export function countingTransport(inner: Transport, onExchange: (ms: number) => void): Transport {
  return async (req) => {
    const t0 = performance.now();
    try {
      return await inner(req);
    } finally {
      onExchange(performance.now() - t0);
    }
  };
}

/** Ports of base..base+count-1 that cannot be listened on now. */
export async function busyPorts(base: number, count: number): Promise<number[]> {
  const busy: number[] = [];
  for (let port = base; port < base + count; port++) {
    try {
      Bun.listen({ hostname: "127.0.0.1", port, socket: { data() {} } }).stop(true);
    } catch {
      busy.push(port);
    }
  }
  return busy;
}

async function waitFor(cond: () => boolean, limitMs: number, what: string): Promise<void> {
  const until = Date.now() + limitMs;
  while (!cond()) {
    if (Date.now() > until) throw new Error(`timed out after ${limitMs / 1000} s waiting for ${what}`);
    await Bun.sleep(WAIT_POLL_MS);
  }
}

export async function runOne(spec: RunSpec): Promise<LoopResult> {
  const n = spec.runners;
  // The daemon's whole module graph (CLI, logging, PoolTool, sd_notify, lock, metrics) is loaded,
  // as in `jorm-master daemon`, so the RSS counts its code too, not only the loop's.
  await import("../src/commands/daemon.ts");
  const um = await userManager(spec.fakeSystemctl);
  const real = typeof um === "string" ? null : um;
  if (!real) say(`${n} runners: no user manager (${um}); counting the systemctl processes instead of running them`);
  const work = join(tmpdir(), `jorm-bench-loop-${process.pid}`);
  mkdirSync(work, { recursive: true, mode: 0o700 });
  const secretPath = join(work, "node_secret.yaml");
  const allUnits = (count: number) => Array.from({ length: count }, (_, id) => unitName(id));
  const templatePath = real ? join(real.unitDir, `${UNIT_PREFIX}@.service`) : null;
  let host: Host | null = null;
  const ac = new AbortController();
  const onSignal = () => ac.abort();
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  try {
    if (real && templatePath) {
      mkdirSync(real.unitDir, { recursive: true });
      writeFileSync(templatePath, UNIT_TEMPLATE_TEXT);
      await systemctlUser(real.env, ["daemon-reload"]);
      await systemctlUser(real.env, ["stop", `${UNIT_PREFIX}@*.service`]).catch(() => {});
    }
    const busy = await busyPorts(spec.portBase, n);
    if (busy.length > 0) throw new Error(`port${busy.length > 1 ? "s" : ""} ${busy.join(", ")} on 127.0.0.1 already in use; choose another --port-base`);
    const startMs = Date.now();
    host = await spawnHost({
      runners: n,
      portBase: spec.portBase,
      leaderAtMs: startMs + LEADER_SLOT_AFTER_START_MS,
      secretPath,
      mirror: real ? { env: { XDG_RUNTIME_DIR: real.env.XDG_RUNTIME_DIR ?? "", DBUS_SESSION_BUS_ADDRESS: real.env.DBUS_SESSION_BUS_ADDRESS ?? "" } } : null,
    });
    const h = host;
    if (real) await systemctlUser(real.env, ["start", ...allUnits(n)]);
    await h.call({ op: "startAll" });

    // The daemon's config: defaults, n runners on loopback ports, units under the user manager.
    const base = defaultConfig();
    const runners: RunnerConfig[] = Array.from({ length: n }, (_, id) => ({
      id,
      binary: `/usr/local/bin/jormungandr_runner_${id}`,
      nodeConfig: join(work, `jorm_runner_${id}.yaml`),
      storage: join(work, `storage_${id}`),
      restListen: `127.0.0.1:${spec.portBase + id}`,
      restUrl: `http://127.0.0.1:${spec.portBase + id}/api/v0`,
      unit: unitName(id),
    }));
    const config: ResolvedConfig = {
      ...base,
      cntRunners: n,
      runners,
      nodeSecretPath: secretPath,
      systemd: { ...base.systemd, scope: "user", runnerUnitTemplate: `${UNIT_PREFIX}@{id}.service` },
      pooltool: null,
      metricsListen: null,
    };

    // The daemon's ports, built by the daemon's own factory (src/daemon/ports.ts) and decorated:
    // each runner's transport counts and times its requests, the service manager times `show` and
    // mirrors every action into the world; without a user manager the systemctl spawner answers
    // from the world and the manager counts the processes it would have spawned.
    let requests = 0;
    const requestMs: number[] = [];
    const showMs: number[] = [];
    let recording = false;
    const frozenPids = new Map<number, boolean>();
    const both = async (unit: Promise<void>, sim: Promise<unknown>): Promise<void> => {
      const [u, s] = await Promise.allSettled([unit, sim]);
      if (s.status === "rejected") say(`world host: ${String(s.reason)}`);
      if (u.status === "rejected") throw u.reason;
    };
    const mirrored = (sd: SystemdServiceManager): ServiceManager => ({
      async showAll(ids) {
        const t0 = performance.now();
        try {
          return await sd.showAll(ids);
        } finally {
          if (recording) showMs.push(performance.now() - t0);
        }
      },
      start: (id) => both(sd.start(id), h.call({ op: "start", id })),
      stop: (id) => both(sd.stop(id), h.call({ op: "stop", id })),
      restart: (id) => both(sd.restart(id), h.call({ op: "restart", id })),
      kill: (id, signal) => both(sd.kill(id, signal), h.call({ op: "kill", id, signal })),
      armFreeze: (id, atMs) => both(sd.armFreeze!(id, atMs), h.call({ op: "arm", id, atMs })),
      disarmFreeze: (id) => both(sd.disarmFreeze!(id), h.call({ op: "disarm", id })),
    });
    const ports = (c: ResolvedConfig) =>
      buildPorts(c, {
        transport: (http) =>
          countingTransport(http, (ms) => {
            requests++;
            if (recording) requestMs.push(ms);
          }),
        services: mirrored,
        // The simulated runners listen in the world host process, not in their units' main
        // processes, so the port-owner check the daemon runs before posting the key cannot pass
        // here; the bench measures the tick, not that check.
        listener: { whyNotRunner: async () => null },
        ...(real
          ? { systemctlEnv: real.env }
          : { spawner: worldSpawner((ids) => h.call<UnitState[]>({ op: "units", ids }), frozenPids), proc: fakeProc(frozenPids) }),
      });

    // Phases: warm-up (until one signer, all running, quiet), steady, faults. A phase begins at the
    // end of a tick (the loop then only sleeps), so no tick's systemctl or REST calls straddle two.
    type Phase = "warmup" | "steady" | "fault" | "done";
    let phase: Phase = "warmup";
    let ticks = 0;
    let quiet = 0;
    let last: TickReport | null = null;
    const durations: Record<"steady" | "fault", number[]> = { steady: [], fault: [] };
    const actions = { steady: 0, fault: 0 };
    let rssMax = 0;
    let rssFirst = 0;
    const failover = new FailoverTimer();
    const errors: string[] = [];
    const marks: Partial<Record<Phase, { counters: Counters; atMs: number }>> = {};
    let next: { phase: Phase; entered: () => void } | null = null;
    const log: MasterLog = {
      info() {},
      debug() {},
      warn: (m) => {
        if (phase === "steady") errors.push(m);
      },
      error: (m) => {
        errors.push(m);
        if (phase !== "warmup") say(`master error: ${m}`);
      },
    };
    const counters = (): Counters => ({ ticks, spawns: systemctlSpawnCount(), requests });
    const onTick = (r: TickReport) => {
      ticks++;
      if (DEBUG) {
        const slow = r.observation.runners.filter((o) => o.stats && !o.stats.ok && o.stats.error.kind === "unreachable").map((o) => `#${o.id}${o.unit ? `(${o.unit.activeState}/${o.unit.subState} pid ${o.unit.mainPid} restarts ${o.unit.restarts})` : ""}`);
        const did = r.outcomes.map((o) => `${o.action.kind}${"id" in o.action ? ` #${o.action.id}` : ""}${o.ok ? "" : " FAILED"}`);
        say(`tick ${phase} ${r.durationMs} ms rss ${round1(process.memoryUsage().rss / 1048576)} MB signer #${r.memory.signer} unreachable [${slow.join(" ")}] frozen [${r.views.filter((v) => v.frozen).map((v) => `#${v.id}`).join(" ")}] ${did.join(", ")}`);
      }
      last = r;
      const acted = r.outcomes.filter((o) => o.action.kind !== "reportTip").length;
      quiet = acted === 0 ? quiet + 1 : 0;
      if (phase === "steady" || phase === "fault") {
        durations[phase].push(r.durationMs);
        actions[phase] += acted;
      }
      if (phase === "steady") {
        const rss = process.memoryUsage().rss;
        rssFirst ||= rss;
        rssMax = Math.max(rssMax, rss);
      }
      failover.tick(r.memory.signer, Date.now());
      if (next) {
        phase = next.phase;
        recording = phase === "steady";
        marks[phase] = { counters: counters(), atMs: Date.now() };
        next.entered();
        next = null;
      }
    };
    /** Resolves once the phase has begun, at the end of the next tick (or when the run is aborted). */
    const enter = (p: Phase) =>
      new Promise<void>((resolve) => {
        if (ac.signal.aborted) return resolve();
        next = { phase: p, entered: resolve };
        ac.signal.addEventListener("abort", () => resolve(), { once: true });
      });
    const daemon = new Daemon({ config, load: async () => config, log, lockPath: null, ports, onTick });
    const master = daemon.master;
    ac.signal.addEventListener("abort", () => daemon.stop("bench"), { once: true });
    const running = daemon.start();

    const settled = () => {
      const r = last as TickReport | null;
      if (!r || r.memory.signer === null || quiet < QUIET_TICKS) return false;
      const views = r.views.filter((v) => v.id < n);
      return views.every((v) => v.running) && views.filter((v) => v.cap === "holder").length === 1;
    };
    say(`${n} runners: warming up (boot, one signer chosen, the others made key-less)…`);
    await waitFor(() => settled() || ac.signal.aborted, WARMUP_LIMIT_MS, "one signer with every runner running");
    const warmupMs = Date.now() - startMs;

    say(`${n} runners: steady state for ${spec.steadyMs / 1000} s…`);
    await enter("steady");
    const signer0 = master.memory.signer;
    await realClock.sleep(spec.steadyMs, ac.signal);
    await enter("fault");
    if (master.memory.signer !== signer0) errors.push(`the signer moved in steady state: #${signer0} → #${master.memory.signer}`);

    if (spec.faultMs > 0 && !ac.signal.aborted) {
      say(`${n} runners: faults for ${spec.faultMs / 1000} s (crash the signer, hang a standby's REST, SIGSTOP the signer)…`);
      const F = spec.faultMs;
      const signerNow = () => master.memory.signer;
      const aimAtSigner = async (fault: Fault, forMs?: number) => {
        const id = signerNow();
        if (id === null) return say(`(no signer to fault with ${fault.kind})`);
        failover.faulted(id, Date.now());
        await h.call({ op: "inject", id, fault, forMs });
      };
      await aimAtSigner({ kind: "crash" });
      await realClock.sleep(0.35 * F, ac.signal);
      const standby = (last as TickReport | null)?.views.find((v) => v.id < n && v.id !== signerNow() && v.running)?.id;
      if (standby !== undefined) await h.call({ op: "inject", id: standby, fault: { kind: "restHang", on: true }, forMs: 0.25 * F });
      await realClock.sleep(0.3 * F, ac.signal);
      await aimAtSigner({ kind: "freeze" }, 0.2 * F);
      await realClock.sleep(0.35 * F, ac.signal);
    }
    await enter("done");
    ac.abort();
    await running;
    const { steady: s0, fault: s1, done: s2 } = marks;
    if (!s0 || !s1 || !s2) throw new Error("interrupted before the phases were measured");
    const steadyFrom = s0.atMs;
    const steadyTo = s1.atMs;
    const toMs = s2.atMs;
    const [steady0, steady1, fault1] = [s0.counters, s1.counters, s2.counters];

    const audit = await h.call<AuditFigures>({ op: "audit", fromMs: steadyFrom, toMs, guardMs: config.slotGuardMs, marginMs: config.slotMarginMs });
    const steady = phaseFigures(durations.steady, steady0, steady1, actions.steady);
    const fault = phaseFigures(durations.fault, steady1, fault1, actions.fault);
    if (steady.actions > 0) say(`${n} runners: the master acted ${steady.actions} times in steady state: ${errors.slice(0, 3).join(" | ")}`);
    return {
      runners: n,
      tick_p50_ms: steady.tick_p50_ms,
      tick_p99_ms: steady.tick_p99_ms,
      systemctl_per_tick: steady.systemctl_per_tick,
      requests_per_tick: steady.requests_per_tick,
      rss_mb: round1(rssMax / 1024 / 1024),
      rss_first_mb: round1(rssFirst / 1024 / 1024),
      systemd: real ? "user-manager" : "counted",
      ticks: steady.ticks,
      steady_s: round1((steadyTo - steadyFrom) / 1000),
      steady_actions: steady.actions,
      show_p50_ms: percentileRounded(showMs, 50),
      show_p99_ms: percentileRounded(showMs, 99),
      request_p50_ms: percentileRounded(requestMs, 50),
      request_p99_ms: percentileRounded(requestMs, 99),
      fault_s: round1(spec.faultMs / 1000),
      fault_ticks: fault.ticks,
      fault_tick_p50_ms: fault.tick_p50_ms,
      fault_tick_p99_ms: fault.tick_p99_ms,
      fault_systemctl_per_tick: fault.systemctl_per_tick,
      fault_requests_per_tick: fault.requests_per_tick,
      failovers_ms: failover.doneMs,
      scheduled: audit.scheduled,
      produced: audit.produced,
      double_produced: audit.doubleProduced,
      shared_windows: audit.sharedWindows,
      warmup_s: round1(warmupMs / 1000),
    };
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    if (host) {
      await Promise.race([host.call({ op: "exit" }).catch(() => {}), Bun.sleep(2_000)]);
      host.kill();
    }
    if (real && templatePath) {
      await systemctlUser(real.env, ["stop", `${UNIT_PREFIX}@*.service`, `jorm-master-lease-${UNIT_PREFIX}-*`]).catch((e) => say(String(e)));
      rmSync(templatePath, { force: true });
      await systemctlUser(real.env, ["daemon-reload"]).catch((e) => say(String(e)));
      await systemctlUser(real.env, ["reset-failed", `${UNIT_PREFIX}@*.service`]).catch(() => {});
    }
    rmSync(work, { recursive: true, force: true });
  }
}

function percentileRounded(xs: readonly number[], p: number): number | null {
  const v = percentile(xs, p);
  return v === null ? null : round1(v);
}

// --- the orchestrator ---------------------------------------------------------------------------

export interface CliOptions {
  json: boolean;
  counts: number[];
  steadyMs: number;
  faultMs: number;
  portBase: number;
  fakeSystemctl: boolean;
}

/** Parses the command line; a string is the usage error to print. */
export function parseCli(argv: string[]): CliOptions | string {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        json: { type: "boolean", default: false },
        quick: { type: "boolean", default: false },
        runners: { type: "string" },
        steady: { type: "string" },
        fault: { type: "string" },
        "port-base": { type: "string" },
        "fake-systemctl": { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
    }));
  } catch (e) {
    return (e as Error).message;
  }
  if (values.help) return "help";
  const counts = (values.runners ?? DEFAULT_RUNNER_COUNTS.join(",")).split(",").map((s) => Number(s.trim()));
  if (counts.length === 0 || counts.some((c) => !Number.isInteger(c) || c < 1 || c > 200))
    return `--runners: expected a list of counts from 1 to 200 like 3,32, got ${JSON.stringify(values.runners)}`;
  const seconds = (name: string, v: string | undefined, fallbackMs: number, min: number): number | string => {
    if (v === undefined) return fallbackMs;
    const s = Number(v);
    return Number.isFinite(s) && s >= min ? Math.round(s * 1000) : `--${name}: expected seconds ≥ ${min}, got ${JSON.stringify(v)}`;
  };
  const steadyMs = seconds("steady", values.steady, values.quick ? QUICK_STEADY_MS : STEADY_MS, 1);
  if (typeof steadyMs === "string") return steadyMs;
  const faultMs = seconds("fault", values.fault, values.quick ? QUICK_FAULT_MS : FAULT_MS, 0);
  if (typeof faultMs === "string") return faultMs;
  const portBase = values["port-base"] === undefined ? DEFAULT_PORT_BASE : Number(values["port-base"]);
  if (!Number.isInteger(portBase) || portBase < 1024 || portBase + Math.max(...counts) > 65_535)
    return `--port-base: expected a port from 1024 leaving room for the runners, got ${JSON.stringify(values["port-base"])}`;
  return { json: values.json, counts, steadyMs, faultMs, portBase, fakeSystemctl: values["fake-systemctl"] };
}

export const USAGE = `bun run bench:loop [--json] [--quick] [--runners 3,32] [--steady S] [--fault S] [--port-base P] [--fake-systemctl]

The daemon's real tick (Master with the HTTP NodeApi and the systemd service manager, scope user)
against simulated runners served over loopback HTTP, with a real stand-in unit per runner under
the systemd --user manager. Per runner count: tick duration p50/p99, systemctl processes and REST
requests per tick, and the master process's RSS over a steady state with one signer, then a
short fault phase (crash the signer, hang a standby's REST, SIGSTOP the signer).

  --json            one JSON object per line (runners, tick_p50_ms, tick_p99_ms, systemctl_per_tick,
                    requests_per_tick, rss_mb, then the fault phase and audit figures)
  --quick           ${QUICK_STEADY_MS / 1000} s steady, ${QUICK_FAULT_MS / 1000} s faults (default ${STEADY_MS / 1000} s and ${FAULT_MS / 1000} s)
  --runners LIST    runner counts (default ${DEFAULT_RUNNER_COUNTS.join(",")})
  --steady S        seconds of steady state;  --fault S  seconds of faults (0: none)
  --port-base P     runner N listens on 127.0.0.1:P+N (default ${DEFAULT_PORT_BASE})
  --fake-systemctl  do not use a user manager: count the systemctl processes instead

Exits 1 when a ${TARGET_RUNNERS}-runner target is missed (systemctl/tick ≤ ${TARGETS.systemctlPerTick}, tick p99 < ${TARGETS.tickP99Ms} ms,
RSS < ${TARGETS.rssMb} MB) or a slot was double-produced.
Example: bun run bench:loop --quick --runners 32`;

async function runChild(spec: RunSpec): Promise<LoopResult> {
  const proc = Bun.spawn(["bun", import.meta.path, "__run", JSON.stringify(spec)], { stdio: ["ignore", "pipe", "inherit"] });
  // Interrupted: the run stops its master and removes its units before it exits; wait for that.
  const forward = () => proc.kill("SIGTERM");
  process.on("SIGINT", forward);
  process.on("SIGTERM", forward);
  const [code, out] = await Promise.all([proc.exited, new Response(proc.stdout).text()]).finally(() => {
    process.off("SIGINT", forward);
    process.off("SIGTERM", forward);
  });
  const line = out.trim().split("\n").at(-1) ?? "";
  if (code !== 0 || !line.startsWith("{")) throw new Error(`the ${spec.runners}-runner run failed (exit ${code})`);
  return JSON.parse(line) as LoopResult;
}

async function main(argv: string[]): Promise<number> {
  if (argv[0] === "__host") {
    await runHost(JSON.parse(argv[1]!) as HostSpec);
    return -1; // keeps serving until told to exit
  }
  if (argv[0] === "__run") {
    const r = await runOne(JSON.parse(argv[1]!) as RunSpec);
    process.stdout.write(`${JSON.stringify(r)}\n`);
    return 0;
  }
  const opts = parseCli(argv);
  if (opts === "help") {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (typeof opts === "string") {
    process.stderr.write(`bench:loop: ${opts}\n\n${USAGE}\n`);
    return 64;
  }
  const results: LoopResult[] = [];
  for (const runners of opts.counts) {
    const r = await runChild({ runners, steadyMs: opts.steadyMs, faultMs: opts.faultMs, portBase: opts.portBase, fakeSystemctl: opts.fakeSystemctl });
    results.push(r);
    if (opts.json) process.stdout.write(`${JSON.stringify(r)}\n`);
  }
  const missed = results.flatMap((r) => missedTargets(r).map((m) => `${r.runners} runners: ${m}`));
  if (!opts.json) {
    const sd = results.every((r) => r.systemd === "user-manager") ? "real units under systemd --user" : "no user manager: systemctl calls counted, not run";
    process.stdout.write(
      [
        `bench:loop — the daemon's tick over HTTP and systemctl (${sd}); ITN chain: 2 s slots, 43200 slots/epoch,`,
        `${LEADER_SLOTS_PER_EPOCH} leader slots/epoch; key mode boot; loop_period 0.5 s, rest_timeout 0.5 s; steady ${opts.steadyMs / 1000} s, faults ${opts.faultMs / 1000} s`,
        "",
        renderTable(results),
        "",
        `targets at ${TARGET_RUNNERS} runners: systemctl/tick ≤ ${TARGETS.systemctlPerTick}, tick p99 < ${TARGETS.tickP99Ms} ms, RSS < ${TARGETS.rssMb} MB, double-produced 0: ` +
          (missed.length === 0 ? "met" : `MISSED: ${missed.join("; ")}`),
        "",
      ].join("\n"),
    );
  } else if (missed.length > 0) {
    process.stderr.write(`bench:loop: targets missed: ${missed.join("; ")}\n`);
  }
  return missed.length === 0 ? 0 : 1;
}

if (import.meta.main) {
  try {
    const code = await main(process.argv.slice(2));
    if (code >= 0) process.exit(code);
  } catch (e) {
    process.stderr.write(`bench:loop: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  }
}
