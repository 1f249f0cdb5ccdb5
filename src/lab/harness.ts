// Wires the real master (decide, act, observe, loop) to a simulated world: the property tests, the
// benchmark and the demo all run exactly the code the daemon runs, only the ports differ.

import type { ResolvedConfig } from "../config/types.ts";
import { defaultConfig } from "../config/load.ts";
import type { ListenerCheck, ServiceManager, UnitState } from "../ports.ts";
import type { MasterDeps } from "../master/act.ts";
import { Master, type MasterLog, type TickReport } from "../master/loop.ts";
import type { Scheduler } from "../sim/clock.ts";
import { SIM_POOL_SECRET, type World } from "../sim/world.ts";

export const silentLog: MasterLog = { info() {}, warn() {}, error() {}, debug() {} };

/** Armed dead-man switches belong to the world (the service manager), not to one daemon. */
const leases = new WeakMap<World<Scheduler>, Map<number, () => void>>();

/** systemd unreadable: when this says so, `showAll` (systemctl show) fails; the rest still works. */
export type ShowFails = () => boolean;

/** The world has only its own runners; ids the master scans beyond them are inactive units. */
function boundedServices(world: World<Scheduler>, showFails?: ShowFails): ServiceManager {
  const n = world.ids.length;
  const s = world.services;
  let armed = leases.get(world);
  if (!armed) leases.set(world, (armed = new Map()));
  const table = armed;
  const absent = (id: number): UnitState => ({ id, activeState: "inactive", subState: "dead", mainPid: 0, sinceMs: null, restarts: 0, frozen: null });
  return {
    async showAll(ids) {
      if (showFails?.()) throw new Error("systemctl show: Failed to connect to bus (simulated)");
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

export function simDeps(world: World<Scheduler>, withPoolTool = false, showFails?: ShowFails, listener?: ListenerCheck): MasterDeps {
  return {
    node: (id) => world.api(id),
    services: boundedServices(world, showFails),
    clock: world.clock,
    pooltool: withPoolTool ? world.pooltool : null,
    readSecret: async () => structuredClone(SIM_POOL_SECRET),
    // Simulated REST ports are the runners' own: nothing else can bind them.
    listener: listener ?? { whyNotRunner: async () => null },
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
  opts: { log?: MasterLog; onTick?: (r: TickReport) => void; withPoolTool?: boolean; showFails?: ShowFails; listener?: ListenerCheck } = {},
): Master {
  return new Master({ deps: simDeps(world, opts.withPoolTool, opts.showFails, opts.listener), config, log: opts.log ?? silentLog, onTick: opts.onTick });
}
