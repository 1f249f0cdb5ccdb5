// Reads what `status` shows, read-only: every runner's REST in parallel (each call bounded by the
// client's deadline), all unit states in one `systemctl show`, PoolTool when configured. Nothing
// here changes a runner, so it is safe next to a running daemon.

import type { ResolvedConfig } from "../config/types.ts";
import type { PoolToolApi, ServiceManager, UnitState } from "../ports.ts";
import { runnerIds } from "../master/observe.ts";
import type { NodeApi, Settings } from "../node/types.ts";
import type { StatusRegistry } from "./cluster.ts";
import type { DeadManSwitch, StatusInput, StatusRunnerInput } from "./model.ts";

export interface StatusDeps {
  node(id: number): NodeApi;
  /** null: do not ask systemd (--rest-only) */
  services: ServiceManager | null;
  /** null: PoolTool is off */
  pooltool: PoolToolApi | null;
  /** Reads the runners' boundary dead-man switches (systemd's lease timers); null/absent: not asked,
   *  so a boundary hand-out cannot be recognised */
  switches?: ((ids: readonly number[]) => Promise<Map<number, DeadManSwitch>>) | null;
  now(): number;
  /** Cluster mode: the signer key and the host registry, or why etcd cannot be read; absent: no cluster */
  clusterRegistry?: (() => Promise<StatusRegistry | { error: string }>) | null;
}

export interface GatherOptions {
  /** Reuse settings read before (they do not change for the life of a chain) */
  settings?: Settings | null;
  /** Skip PoolTool this time and report this instead (a --watch frame between refreshes) */
  pooltool?: { majorityMax: number | null; error: string | null };
}

const errText = (e: unknown) => (e instanceof Error ? e.message : String(e));
/** systemctl's own complaint, without the long command line before it */
const systemctlText = (e: unknown) => {
  const m = /failed \((exit \d+|[^)]*)\): ([^]*)$/.exec(errText(e));
  return m ? `systemctl ${m[1]}: ${m[2]!.trim()}` : errText(e);
};

export async function gatherStatus(config: ResolvedConfig, deps: StatusDeps, opts: GatherOptions = {}): Promise<StatusInput> {
  const ids = runnerIds(config);
  const unitsP: Promise<{ units: Map<number, UnitState> | null; error: string | null }> = deps.services
    ? deps.services.showAll(ids).then(
        (units) => ({ units, error: null }),
        (e) => ({ units: null, error: `cannot read unit states: ${systemctlText(e)}` }),
      )
    : Promise.resolve({ units: null, error: "not asked (--rest-only)" });
  const ptP: Promise<StatusInput["pooltool"]> = !deps.pooltool
    ? Promise.resolve(null)
    : opts.pooltool
      ? Promise.resolve(opts.pooltool)
      : deps.pooltool.majorityMax().then(
          (majorityMax) => ({ majorityMax, error: null }),
          (e) => ({ majorityMax: null, error: `majority max unavailable: ${errText(e)}` }),
        );
  const inScope = ids.filter((id) => id < config.cntRunners);
  const switchesP: Promise<{ switches: Map<number, DeadManSwitch> | null; error: string | null }> = deps.switches
    ? deps.switches(inScope).then(
        (switches) => ({ switches, error: null }),
        (e) => ({ switches: null, error: systemctlText(e) }),
      )
    : Promise.resolve({ switches: null, error: null });
  const restP = ids.map(async (id): Promise<Omit<StatusRunnerInput, "unit">> => {
    if (id >= config.cntRunners) return { id, stats: null, leaders: null, logs: null };
    const api = deps.node(id);
    const [stats, leaders, logs] = await Promise.all([api.stats(), api.leaders(), api.leaderLogs()]);
    return { id, stats, leaders, logs };
  });
  const clusterP: Promise<StatusInput["cluster"]> =
    config.cluster && deps.clusterRegistry
      ? deps.clusterRegistry().then(
          (r) =>
            "error" in r
              ? { self: config.cluster!.name, holder: null, error: r.error, registry: null }
              : { self: config.cluster!.name, holder: r.signer?.host ?? null, error: null, registry: r },
          (e) => ({ self: config.cluster!.name, holder: null, error: errText(e), registry: null }),
        )
      : Promise.resolve(null);
  const [{ units, error }, pooltool, rest, sw, cluster] = await Promise.all([unitsP, ptP, Promise.all(restP), switchesP, clusterP]);
  const runners = rest.map((r) => ({ ...r, unit: units?.get(r.id) ?? null, deadManSwitch: sw.switches?.get(r.id) ?? null }));

  let settings = opts.settings ?? null;
  if (settings === null) {
    for (const r of runners) {
      if (r.stats?.ok && r.stats.value.state === "Running") {
        const s = await deps.node(r.id).settings();
        if (s.ok) {
          settings = s.value;
          break;
        }
      }
    }
  }
  return {
    nowMs: deps.now(),
    cntRunners: config.cntRunners,
    runners,
    settings,
    pooltool,
    systemdError: error,
    systemdAsked: deps.services !== null,
    switchesError: sw.error,
    handout: { eventActionMs: config.eventActionMs, slotGuardMs: config.slotGuardMs },
    keyMode: config.keyMode,
    cluster,
  };
}
