// One look at every runner, concurrently: systemd state for all in one call, and each runner's REST
// in parallel, every call bounded by its transport's deadline. A slow runner costs the tick at most
// one deadline and never delays what the others answer.

import type { ResolvedConfig } from "../config/types.ts";
import type { NodeResult, Settings } from "../node/types.ts";
import type { MasterDeps } from "./act.ts";
import type { UnitState } from "../ports.ts";
import { EXTRA_RUNNER_SCAN } from "./decide.ts";
import type { Memory, Observation, RunnerObs } from "./types.ts";

export interface ObserveState {
  settings: Settings | null;
  majorityMax: number | null;
}

const notAskedFrozen: NodeResult<never> = {
  ok: false,
  error: { kind: "unreachable", reason: "timeout", message: "not waited for: the process is stopped (SIGSTOP)" },
};

export function runnerIds(config: ResolvedConfig): number[] {
  return Array.from({ length: config.cntRunners + EXTRA_RUNNER_SCAN }, (_, i) => i);
}

export async function observe(
  deps: MasterDeps,
  config: ResolvedConfig,
  memory: Memory,
  state: ObserveState,
): Promise<Observation> {
  const fromMs = deps.clock.now();
  const ids = runnerIds(config);
  const unitsP: Promise<Map<number, UnitState> | null> = deps.services.showAll(ids).catch(() => null);
  /** Polls a runner's REST; `sofar` is what has arrived yet (a frozen runner is not waited for). */
  const pollRest = (id: number, units: Map<number, UnitState> | null): { done: Promise<RunnerObs>; sofar: () => RunnerObs } => {
    const unit = units?.get(id) ?? null;
    const got: RunnerObs = { id, unit, stats: notAskedFrozen, leaders: notAskedFrozen, logs: null };
    // Units beyond cnt_runners are retired from their systemd state alone.
    if (id >= config.cntRunners) return { done: Promise.resolve({ ...got, stats: null, leaders: null }), sofar: () => got };
    const api = deps.node(id);
    const wantLogs = memory.runners[id]?.logsWanted ?? true;
    // The logs are asked only once /leaders has answered: the logs never wait for the enclave, so
    // asked alongside they can predate a schedule computation that /leaders then waited out, and
    // an epoch would pass as computed with its events missing. Not at all when /leaders failed: a
    // hung node would cost the tick a second deadline, and a computing one has only part of them.
    const done = Promise.all([
      api.stats().then((r) => (got.stats = r)),
      api.leaders().then(async (r) => {
        got.leaders = r;
        if (wantLogs && r.ok) got.logs = await api.leaderLogs();
      }),
    ]).then(() => ({ ...got }));
    return { done, sofar: () => ({ ...got }) };
  };
  // In-scope runners are polled at once, without waiting for systemctl; extras need the unit state.
  const inScope = ids.filter((id) => id < config.cntRunners);
  const polls = inScope.map((id) => pollRest(id, null));
  const units = await unitsP;
  const extra = await Promise.all(ids.filter((id) => id >= config.cntRunners).map((id) => pollRest(id, units).done));
  // A runner systemd shows SIGSTOPped cannot answer: waiting for its REST would cost every tick it
  // stays frozen a whole rest_timeout. What it answered already is kept.
  const settled = inScope.map((id, i) => (units?.get(id)?.frozen === true ? Promise.resolve(polls[i]!.sofar()) : polls[i]!.done));
  const polled = (await Promise.all(settled)).map((r) => ({ ...r, unit: units?.get(r.id) ?? null }));
  const runners = [...polled, ...extra];

  if (state.settings === null) {
    // Settings and the epoch clock are loaded once: they do not change for the life of a chain.
    for (const r of runners) {
      if (r.stats?.ok && r.stats.value.state === "Running") {
        const s: NodeResult<Settings> = await deps.node(r.id).settings();
        if (s.ok) {
          state.settings = s.value;
          break;
        }
      }
    }
  }
  // Read last: the lease's state as of the observation's end, when decide acts on it.
  const cluster = deps.cluster?.();
  return { atMs: deps.clock.now(), fromMs, settings: state.settings, runners, majorityMax: state.majorityMax, ...(cluster ? { cluster } : {}) };
}
