// A fault schedule run in virtual time: the world, the real master, faults at given instants
// (some aimed at whoever signs at that moment), daemon restarts, and the figures at the end.
// Shared by the property tests and the benchmark so both measure the same thing.

import type { ResolvedConfig } from "../config/types.ts";
import { World, type Fault } from "../sim/world.ts";
import type { ChainParams } from "../sim/chain.ts";
import type { BootDurations } from "../sim/node.ts";
import type { AuditReport } from "../sim/audit.ts";
import { masterOnWorld, simConfig } from "./harness.ts";
// Re-exported for the bench script, which takes it from here with the scenario runner.
export { percentile } from "./measure.ts";
import { signOverlapMs } from "../sim/audit.ts";
import { startWithSecret } from "../master/bootpolicy.ts";
import type { Master, MasterLog, TickReport } from "../master/loop.ts";

export type FaultEvent =
  /** A fault injected at atMs into runner `target` ("signer": whoever signs then; "standbys": every
   *  runner but the signer) */
  | { atMs: number; target: number | "signer" | "standbys"; fault: Fault; /** undo after this long (on:false / thaw) */ forMs?: number }
  /** The daemon is killed at atMs (or, graceful, stopped: it fences before it exits) and comes back
   *  after downMs with empty memory */
  | { atMs: number; target: "daemon"; downMs: number; graceful?: boolean }
  /** `systemctl show` fails from atMs for forMs (the manager busy, D-Bus down): units unknown */
  | { atMs: number; target: "systemd"; forMs: number };

export interface ScenarioSpec {
  chain: ChainParams;
  runners: number;
  keyMode: "boot" | "rest";
  durationMs: number;
  boot?: Partial<BootDurations>;
  scheduleComputeMs?: number;
  restartDelayMs?: number;
  /** The nodes' leadership.logs_capacity (default 1024) */
  logsCapacity?: number;
  faults: FaultEvent[];
  config?: Partial<ResolvedConfig>;
  log?: MasterLog;
  /** Start the runners as if they had been running (warm) rather than from stopped units */
  warmStart?: boolean;
  /** Called with the world before it runs (debugging, extra probes) */
  inspect?: (world: World) => void;
}

export interface ScenarioResult {
  world: World;
  audit: Omit<AuditReport, "slots">;
  /** Time two processes could really sign a slot inside its window (see signOverlapMs) */
  signOverlapMs: number;
  worstOverlap: { epoch: number; slot: number; ms: number } | null;
  /** Slot windows in which two processes could sign, at once or one after the other (see signOverlapMs) */
  sharedWindows: number;
  firstShared: { epoch: number; slot: number; processes: string[] } | null;
  /** Per signer fault: ms from injection until another runner was verified signer */
  failoverMs: number[];
  ticks: number;
  wallMs: number;
  fromMs: number;
  toMs: number;
}

function undo(f: Fault): Fault | null {
  switch (f.kind) {
    case "stuck":
    case "restHang":
    case "rest500":
      return { ...f, on: false };
    case "freeze":
      return { kind: "thaw" };
    case "slowBoot":
      return { kind: "slowBoot", bootstrapMs: null };
    case "slowSchedule":
      return { kind: "slowSchedule", computeMs: null };
    default:
      return null;
  }
}

export async function runScenario(spec: ScenarioSpec): Promise<ScenarioResult> {
  const wall0 = performance.now();
  let daemonAlive = true;
  /** The live daemon's last word on how each runner boots (its boot permits); none yet: with the key */
  let bootModes: Record<number, "key" | "passive"> | null = null;
  const restTimeoutMs = spec.config?.restTimeoutMs ?? 500;
  const world = new World({
    chain: spec.chain,
    runners: spec.runners,
    // The runner wrapper's rule (bootpolicy.ts): --secret only while a daemon is alive.
    keyMode: (id) => (startWithSecret(spec.keyMode, daemonAlive) && (bootModes?.[id] ?? "key") === "key" ? "boot" : "rest"),
    boot: spec.boot,
    scheduleComputeMs: spec.scheduleComputeMs ?? 1500,
    restartDelayMs: spec.restartDelayMs ?? 2000,
    restTimeoutMs,
    ...(spec.logsCapacity !== undefined ? { logsCapacity: spec.logsCapacity } : {}),
  });
  spec.inspect?.(world);
  const config = simConfig(spec.runners, { keyMode: spec.keyMode, restTimeoutMs, ...spec.config });
  const fromMs = world.clock.now();
  const toMs = fromMs + spec.durationMs;

  let ticks = 0;
  let master: Master;
  let signer: number | null = null;
  const failoverMs: number[] = [];
  let pendingFailover: { atMs: number; from: number } | null = null;
  const onTick = (r: TickReport) => {
    ticks++;
    signer = r.memory.signer;
    if (r.plan.bootModes) bootModes = r.plan.bootModes;
    if (pendingFailover && signer !== null && signer !== pendingFailover.from) {
      failoverMs.push(world.clock.now() - pendingFailover.atMs);
      pendingFailover = null;
    }
  };
  let showFailsUntil = -Infinity;
  const showFails = () => world.clock.now() < showFailsUntil;
  const start = () => {
    bootModes = null;
    const m = masterOnWorld(world, config, { onTick, log: spec.log, showFails });
    const ac = new AbortController();
    const done = m.run(ac.signal);
    return { m, ac, done };
  };
  if (spec.warmStart) for (const id of world.ids) await world.services.start(id);
  let current = start();
  master = current.m;

  for (const ev of spec.faults) {
    const at = fromMs + ev.atMs;
    if (at >= toMs) continue;
    if (ev.target === "daemon") {
      world.clock.at(at, () => {
        current.ac.abort();
        daemonAlive = false;
        // SIGTERM: the loop ends after its tick in flight, then the parting fences; systemd starts
        // the next daemon only once this one has exited.
        const stopping = current;
        const exited = ev.graceful ? stopping.done.then(() => stopping.m.part()).then(() => {}) : Promise.resolve();
        world.clock.at(world.clock.now() + ev.downMs, () => void exited.then(() => {
          daemonAlive = true;
          current = start();
          master = current.m;
        }));
      });
      continue;
    }
    if (ev.target === "systemd") {
      const forMs = ev.forMs;
      world.clock.at(at, () => void (showFailsUntil = Math.max(showFailsUntil, world.clock.now() + forMs)));
      continue;
    }
    world.clock.at(at, () => {
      if (ev.target === "standbys") {
        const s = master.memory.signer ?? signer;
        for (const id of world.ids) if (id !== s) world.inject(id, ev.fault);
        return;
      }
      const id = ev.target === "signer" ? (master.memory.signer ?? signer) : ev.target;
      if (id === null || id >= spec.runners) return;
      // Stuck is observable only once the lag passes max_offset, so it has no injection-time latency.
      if (ev.target === "signer" && ["crash", "restHang", "freeze", "rest500"].includes(ev.fault.kind)) {
        pendingFailover = { atMs: world.clock.now(), from: id };
      }
      world.inject(id, ev.fault);
      const u = undo(ev.fault);
      // A thaw (SIGCONT) goes to the process that was stopped: after a restart it is gone, and the
      // new one must not be thawed out of a freeze that is not the injector's.
      const inc = world.node(id)?.incarnation;
      if (u && ev.forMs !== undefined) {
        world.clock.at(world.clock.now() + ev.forMs, () => {
          if (u.kind !== "thaw" || world.node(id)?.incarnation === inc) world.inject(id, u);
        });
      }
    });
  }
  await world.runUntil(toMs);
  current.ac.abort();
  // A tick in flight may still wait on virtual deadlines: let virtual time run until it returns.
  let finished = false;
  void current.done.then(() => (finished = true));
  for (let t = toMs + 100; !finished && t < toMs + 60_000; t += 100) await world.runUntil(t);

  const guard = config.slotGuardMs;
  const margin = config.slotMarginMs;
  const { slots: _slots, ...audit } = world.audit({ fromMs, toMs, guardMs: guard, marginMs: margin });
  const phys = signOverlapMs(world.journal.entries(), world.chain, { fromMs, toMs, guardMs: guard, marginMs: margin });
  return {
    world,
    audit,
    signOverlapMs: phys.overlapMs,
    worstOverlap: phys.worst,
    sharedWindows: phys.sharedWindows,
    firstShared: phys.firstShared,
    failoverMs,
    ticks,
    wallMs: performance.now() - wall0,
    fromMs,
    toMs,
  };
}

