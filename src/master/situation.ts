// The situation: everything a tick's rules read, built once and never changed. Views of the runners
// (what can be proven about each right now), the windows of the pool's leader slots ahead, the danger
// near them, the epoch and its boundary, the reference height, and the predicates every rule shares
// (healthy, stuck, threat's parts). The rules (rules.ts) are pure functions of it.

import type { ResolvedConfig } from "../config/types.ts";
import { bootLeadMs, handoutNeedMs } from "./coverage.ts";
import { isHeld } from "./intent.ts";
import { inDanger, upcomingWindows, windowBetween, type EpochClock, type Window } from "./schedule.ts";
import type { Capability, Memory, Observation, RunnerMemory, RunnerObs, RunnerView } from "./types.ts";

const isTimeout = (r: RunnerObs["leaders"]): boolean =>
  r !== null && !r.ok && r.error.kind === "unreachable" && r.error.reason === "timeout";

/**
 * jormungandr opens its REST port first (StartingRestServer), then bootstraps, and can sign only
 * after that. So a runner whose REST refuses connections while its unit started under max_boot ago,
 * and which has not answered once in this incarnation, is still starting: booting, as the 503 it
 * answers a moment later, not an unknown to fence. Fenced by SIGSTOP it would stay frozen before it
 * ever listened (found under systemd: runners the master had just started, frozen for good).
 */
export function startingUp(o: RunnerObs, answeredBefore: boolean, now: number, maxBootMs: number): boolean {
  const u = o.unit;
  const refused = o.stats !== null && !o.stats.ok && o.stats.error.kind === "unreachable" && o.stats.error.reason === "refused";
  return (
    refused &&
    !answeredBefore &&
    u !== null &&
    u.activeState === "active" &&
    u.mainPid > 0 &&
    u.frozen !== true &&
    u.sinceMs !== null &&
    now - u.sinceMs < maxBootMs
  );
}

export function view(o: RunnerObs, m: RunnerMemory, config: ResolvedConfig, now: number): RunnerView {
  const unit = o.unit;
  const stats = o.stats;
  const statsOk = stats?.ok === true ? stats.value : null;
  const notReady = (stats !== null && !stats.ok && stats.error.kind === "not_ready") || startingUp(o, m.answered, now, config.maxBootMs);
  const running = statsOk?.state === "Running";
  const leaders = o.leaders?.ok === true ? o.leaders.value : null;
  const busy = running && isTimeout(o.leaders);
  const unitActive = unit !== null && unit.activeState === "active" && unit.mainPid > 0;
  const frozen = unit?.frozen === true;
  const base = {
    id: o.id,
    pid: unit?.mainPid ?? m.pid,
    running: running && !frozen,
    responsive: statsOk !== null || notReady,
    nodeState: statsOk?.state ?? (notReady ? "Booting" : null),
    height: statsOk?.height ?? null,
    leaderIds: leaders,
    busy,
    unitActive,
    frozen,
  };
  return { ...base, cap: capability(o, m, config, { running, leaders, busy, notReady, statsOk: statsOk !== null }) };
}

function capability(
  o: RunnerObs,
  m: RunnerMemory,
  config: ResolvedConfig,
  s: { running: boolean; leaders: number[] | null; busy: boolean; notReady: boolean; statsOk: boolean },
): Capability {
  const unit = o.unit;
  if (unit && unit.mainPid === 0 && unit.activeState !== "active") return "stopped";
  if (unit?.frozen === true) return "frozen";
  if (s.running) {
    if (s.leaders) return s.leaders.length === 0 ? "keyless" : "holder";
    // The enclave is locked (schedule being computed) or the call failed: fall back on what this
    // incarnation was last proven to be. Only the master posts keys, so a proof stays valid.
    if (m.keylessProof) return "keyless";
    return s.busy || m.lastLeaderIds.length > 0 ? "holder" : "unknown";
  }
  if (s.statsOk || s.notReady) {
    // Before Running: a --secret runner holds the key from boot; a passive one cannot hold any.
    if (m.keylessProof || m.bootedPassive) return "keyless";
    return config.keyMode === "boot" ? "booting-holder" : "keyless";
  }
  // Units beyond cnt_runners are not polled over REST (stats null): with systemd unreadable this
  // tick, the process last seen gone still counts as gone; anything else stays unknown.
  if (unit === null && o.stats === null && m.pid === 0) return "stopped";
  if (unit === null) return "unknown";
  if (m.keylessProof) return "keyless";
  return "unknown";
}

/** Every runner observed, as a view (memory as remembered from this observation). */
export function viewsOf(obs: Observation, memory: Memory, config: ResolvedConfig, now: number): Map<number, RunnerView> {
  const views = new Map<number, RunnerView>();
  for (const o of obs.runners) views.set(o.id, view(o, memory.runners[o.id]!, config, now));
  return views;
}

/** Reference height: the best local height, raised by PoolTool's majority max when known. */
export function referenceHeight(obs: Observation, views: ReadonlyMap<number, RunnerView>): number | null {
  let ref: number | null = obs.majorityMax;
  for (const v of views.values()) if (v.running && v.height !== null) ref = Math.max(ref ?? 0, v.height);
  return ref;
}

export interface EpochFacts {
  curEpoch: number | null;
  epochStartMs: number | null;
  nextBoundary: number | null;
  /** Some runner that computed this epoch's schedule reported its whole list */
  epochKnown: boolean;
}

export function epochFacts(clock: EpochClock | null, memory: Memory, now: number): EpochFacts {
  const curEpoch = clock ? clock.epochAt(now) : null;
  return {
    curEpoch,
    epochStartMs: clock && curEpoch !== null ? clock.epochStartMs(curEpoch) : null,
    nextBoundary: clock && curEpoch !== null ? clock.epochStartMs(curEpoch + 1) : null,
    epochKnown: curEpoch !== null && memory.knownEpochs.includes(curEpoch),
  };
}

export interface Situation extends EpochFacts {
  readonly obs: Observation;
  readonly config: ResolvedConfig;
  readonly now: number;
  /** Memory after this observation and this tick's views (remember, noteViews) */
  readonly memory: Memory;
  readonly clock: EpochClock | null;
  /** Observed runners within cnt_runners */
  readonly inScope: readonly RunnerObs[];
  /** Their views, in order */
  readonly scope: readonly RunnerView[];
  /** Every observed runner's view (beyond cnt_runners too) */
  readonly views: ReadonlyMap<number, RunnerView>;
  /** The schedule as far as known: windows of the pool's leader slots still ahead */
  readonly windows: readonly Window[];
  /** How long before a window the fences must hold */
  readonly leadMs: number;
  /** A window is within leadMs (or open) */
  readonly danger: boolean;
  /** Start of the epoch the boundary hand-out was for (its co-holders are exempt until then) */
  readonly boundaryStart: number | null;
  readonly ref: number | null;
  /** The cold standby being warmed (key mode boot), while its attempt lasts */
  readonly warmingId: number | null;
  mem(id: number): RunnerMemory;
  /** Running, but below the reference by more than max_offset for longer than boot_catch_up */
  stuck(v: RunnerView): boolean;
  /** May sign for the pool: holds the key or is proven key-less, Running, not frozen, not stuck */
  healthy(v: RunnerView): boolean;
  /** How long `v` has lacked a block */
  behindForMs(v: RunnerView): number;
  /** Pending leader slots still ahead in its logs */
  pendingAhead(id: number): number;
  /** Held by the operator (intent.ts): never promoted, co-holder or housekept; still fenced */
  held(id: number): boolean;
  /** A window is near enough that a booting key holder must be frozen */
  bootNear(id: number): boolean;
  /** A boundary co-holder before its boundary: not an extra holder */
  exempt(id: number): boolean;
  /** Within the boundary hand-out's gap: close to the boundary, no window before it, time for the POSTs */
  handoutGap(): boolean;
  /** ms until the next window opens (negative: one is open), null when none is known */
  nextWindowInMs: number | null;
}

export function situation(x: {
  obs: Observation;
  memory: Memory;
  config: ResolvedConfig;
  now: number;
  clock: EpochClock | null;
  views: ReadonlyMap<number, RunnerView>;
  ref: number | null;
  facts: EpochFacts;
}): Situation {
  const { obs, memory, config, now, clock, views, ref, facts } = x;
  const inScope = obs.runners.filter((o) => o.id < config.cntRunners);
  const windows = clock ? upcomingWindows(clock, memory.events, now, config.slotGuardMs, config.slotMarginMs) : [];
  const leadMs = Math.max(config.eventActionMs, 2 * config.loopPeriodMs + config.restTimeoutMs);
  const mem = (id: number) => memory.runners[id]!;
  const stuck = (v: RunnerView): boolean => {
    const m = mem(v.id);
    return v.running && v.height !== null && ref !== null && v.height < ref - config.maxOffset && m.runningSinceMs !== null && now - m.runningSinceMs > config.bootCatchUpMs;
  };
  const warmingId = memory.warming && memory.warming.epoch === facts.curEpoch && now < memory.warming.untilMs ? memory.warming.id : null;
  // A cold standby restarted to compute this epoch (warming) is frozen only within one tick of a
  // window (bootLeadMs): with event_action's lead a busy pool's windows would keep it frozen for good.
  const danger = inDanger(windows, now, leadMs);
  const bootDanger = inDanger(windows, now, bootLeadMs(config));
  const boundaryStart = memory.boundary && clock ? clock.epochStartMs(memory.boundary.epoch) : null;
  const next = windows.find((w) => w.endMs > now);
  return {
    ...facts,
    obs,
    config,
    now,
    memory,
    clock,
    inScope,
    scope: inScope.map((o) => views.get(o.id)!),
    views,
    windows,
    leadMs,
    danger,
    boundaryStart,
    ref,
    warmingId,
    mem,
    stuck,
    healthy: (v) => (v.cap === "holder" || v.cap === "keyless") && v.running && v.unitActive && !v.frozen && !stuck(v),
    behindForMs: (v) => behindForMs(obs, views, mem(v.id), v, now),
    pendingAhead: (id) => mem(id).pendingSlots.filter((abs) => !clock || clock.slotStartMs(abs) > now).length,
    held: (id) => isHeld(obs.intent, id),
    bootNear: (id) => (id === warmingId ? bootDanger : danger),
    exempt: (id) =>
      memory.boundary !== null && boundaryStart !== null && now < boundaryStart && memory.boundary.coHolders.includes(id) && views.get(id)?.cap === "holder",
    handoutGap: () =>
      clock !== null &&
      facts.nextBoundary !== null &&
      facts.epochKnown &&
      facts.nextBoundary - now <= config.eventActionMs &&
      facts.nextBoundary - now >= handoutNeedMs(config) &&
      !windowBetween(windows, now, facts.nextBoundary),
    nextWindowInMs: next ? next.startMs - now : null,
  };
}

/** How long `v` has lacked a block: since it was first seen behind, or since the block time of a
 *  runner ahead of it (the first block it lacks is no younger), whichever is longer. */
function behindForMs(obs: Observation, views: ReadonlyMap<number, RunnerView>, m: RunnerMemory, v: RunnerView, now: number): number {
  const since = m.behindSinceMs;
  let ms = since != null ? now - since : 0;
  if (v.height === null) return ms;
  for (const o of obs.runners) {
    const st = o.stats?.ok ? o.stats.value : null;
    const other = views.get(o.id);
    if (!st || !other?.running || st.height === null || st.height <= v.height || st.lastBlockTimeMs === null) continue;
    // From when the observation began: the signer's answer may be that much older than now.
    ms = Math.max(ms, (obs.fromMs ?? now) - st.lastBlockTimeMs);
  }
  return ms;
}
