// Wires the real master (decide, act, observe, loop) to a simulated world: the property tests, the
// benchmark and the demo all run exactly the code the daemon runs, only the ports differ.

import type { ResolvedConfig } from "../config/types.ts";
import { defaultConfig } from "../config/load.ts";
import type { ServiceManager, UnitState } from "./ports.ts";
import type { MasterDeps } from "./act.ts";
import { Master, type MasterLog, type TickReport } from "./loop.ts";
import type { Scheduler } from "../sim/clock.ts";
import { SIM_POOL_SECRET, type World } from "../sim/world.ts";
import { coveredBy, mergeIntervals, timelines, type Interval } from "../sim/audit.ts";
import type { JournalEntry } from "../sim/journal.ts";
import type { Chain } from "../sim/chain.ts";

export const silentLog: MasterLog = { info() {}, warn() {}, error() {}, debug() {} };

/** Armed dead-man switches belong to the world (the service manager), not to one daemon. */
const leases = new WeakMap<World<Scheduler>, Map<number, () => void>>();

/** The world has only its own runners; ids the master scans beyond them are inactive units. */
function boundedServices(world: World<Scheduler>): ServiceManager {
  const n = world.ids.length;
  const s = world.services;
  let armed = leases.get(world);
  if (!armed) leases.set(world, (armed = new Map()));
  const table = armed;
  const absent = (id: number): UnitState => ({ id, activeState: "inactive", subState: "dead", mainPid: 0, sinceMs: null, restarts: 0, frozen: null });
  return {
    async showAll(ids) {
      const own = await s.showAll(ids.filter((id) => id < n));
      for (const id of ids) if (id >= n) own.set(id, absent(id));
      return own;
    },
    start: (id) => s.start(id),
    stop: (id) => s.stop(id),
    restart: (id) => s.restart(id),
    kill: (id, sig) => s.kill(id, sig),
    async armFreeze(id, atMs) {
      table.get(id)?.();
      table.set(
        id,
        world.clock.at(atMs, () => {
          table.delete(id);
          void s.kill(id, "SIGSTOP");
        }),
      );
    },
    async disarmFreeze(id) {
      table.get(id)?.();
      table.delete(id);
    },
  };
}

export function simDeps(world: World<Scheduler>, withPoolTool = false): MasterDeps {
  return {
    node: (id) => world.api(id),
    services: boundedServices(world),
    clock: world.clock,
    pooltool: withPoolTool ? world.pooltool : null,
    readSecret: async () => structuredClone(SIM_POOL_SECRET),
  };
}

/** A resolved config for a simulated world of `runners` runners. */
export function simConfig(runners: number, over: Partial<ResolvedConfig> = {}): ResolvedConfig {
  const base = defaultConfig();
  return {
    ...base,
    cntRunners: runners,
    runners: Array.from({ length: runners }, (_, id) => ({
      id,
      binary: `/sim/jormungandr_runner_${id}`,
      nodeConfig: `/sim/jorm_runner_${id}.yaml`,
      storage: `/sim/storage_${id}`,
      restListen: `sim:${id}`,
      restUrl: `sim://${id}/api/v0`,
      unit: `jorm_runner@${id}.service`,
    })),
    pooltool: null,
    metricsListen: null,
    ...over,
  };
}

export function masterOnWorld(
  world: World<Scheduler>,
  config: ResolvedConfig,
  opts: { log?: MasterLog; onTick?: (r: TickReport) => void; withPoolTool?: boolean } = {},
): Master {
  return new Master({ deps: simDeps(world, opts.withPoolTool), config, log: opts.log ?? silentLog, onTick: opts.onTick });
}

/** Time inside the guarded windows of the pool's slots during which two or more runner processes
 *  could really sign that slot: alive, not frozen, holding the key, and with the slot in a schedule
 *  they had finished computing. This is what a double production needs; the audit's key-only
 *  figure also counts booting holders that have no schedule yet. */
export function signOverlapMs(
  entries: readonly JournalEntry[],
  chain: Chain,
  opts: { fromMs: number; toMs: number; guardMs: number; marginMs: number },
): { overlapMs: number; worst: { epoch: number; slot: number; ms: number } | null } {
  const tls = timelines(entries, opts.toMs);
  let total = 0;
  let worst: { epoch: number; slot: number; ms: number } | null = null;
  const firstEpoch = chain.epochAt(opts.fromMs);
  const lastEpoch = chain.epochAt(opts.toMs);
  for (let epoch = firstEpoch; epoch <= lastEpoch; epoch++) {
    for (const slot of chain.leaderSlots(epoch)) {
      const start = chain.slotStartMs(epoch, slot);
      const w0 = Math.max(opts.fromMs, start - opts.guardMs);
      const w1 = Math.min(opts.toMs, start + chain.params.slotDurationMs + opts.marginMs);
      if (w1 <= w0) continue;
      const per: Interval[] = [];
      for (const tl of tls) {
        const sch = tl.schedules.filter((s) => s.epoch === epoch && s.slots.has(slot) && s.doneMs !== null);
        if (sch.length === 0) continue;
        const from = Math.min(...sch.map((s) => s.doneMs!));
        // While any schedule computation holds the enclave, signing waits behind it.
        const locked = mergeIntervals(tl.schedules.map((s) => [s.startMs, s.doneMs ?? opts.toMs] as Interval));
        for (const [a, b] of tl.couldSign) {
          const lo = Math.max(a, from, w0);
          const hi = Math.min(b, w1);
          if (hi > lo) per.push(...subtract([lo, hi], locked));
        }
      }
      // Intervals of one incarnation never overlap each other, so ≥2 means two processes.
      const ms = coveredBy(per, 2).reduce((acc, [a, b]) => acc + (b - a), 0);
      if (ms > 0) {
        total += ms;
        if (!worst || ms > worst.ms) worst = { epoch, slot, ms };
      }
    }
  }
  return { overlapMs: total, worst };
}

/** [a, b) minus a sorted, merged list of intervals. */
function subtract([a, b]: Interval, minus: readonly Interval[]): Interval[] {
  const out: Interval[] = [];
  let from = a;
  for (const [x, y] of minus) {
    if (y <= from || x >= b) continue;
    if (x > from) out.push([from, x]);
    from = Math.max(from, y);
  }
  if (from < b) out.push([from, b]);
  return out;
}
