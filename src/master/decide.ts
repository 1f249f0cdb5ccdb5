// The master's brain: a pure function of (observation, memory, config, now). No I/O, no clock.
//
// The guarantee it keeps: inside every leader-slot window at most one runner can sign. A runner
// can sign unless proven stopped, frozen, or key-less; anything unknown is fenced before anyone
// else is promoted. Under that invariant it maximises produced slots: the key stays on a healthy
// holder, standbys stay warm and get the next epoch's schedule at the boundary, and a failover
// goes to the standby that holds a schedule for the coming slots.

import type { ResolvedConfig } from "../config/types.ts";
import type { LeaderLog, Settings } from "../node/types.ts";
import { epochClock, inDanger, upcomingWindows, windowBetween, type EpochClock, type Window } from "./schedule.ts";
import type { Action, Capability, Memory, Observation, Plan, RunnerMemory, RunnerObs, RunnerView } from "./types.ts";
import { bootLeadMs, bootMode, bootFits, handoutNeedMs, WARM_COMPUTE_ALLOWANCE_MS } from "./coverage.ts";
import { BOOT_PERMIT_MAX_AGE_MS } from "./bootpolicy.ts";
import { isHeld, switchoverDecision } from "./intent.ts";

/** Re-read a runner's leader logs at least this often (they feed the schedule and the metrics). */
export const LOGS_REFRESH_MS = 30_000;
/** …and every 2 s while they show nothing ahead (a schedule may have been computed since). */
export const EMPTY_LOGS_REFRESH_MS = 2_000;
/** A key-less standby whose REST stays dead this long is restarted. */
export const DEAD_RESTART_MS = 60_000;
/** How soon after acting the loop looks again, to confirm quickly. */
export const CONFIRM_DELAY_MS = 50;
/** Do not begin the boundary hand-out closer to the boundary than this: the promotions must land. */
export const BOUNDARY_MIN_LEAD_MS = 1_000;
/** The dead-man switch of a boundary co-holder fires this long before the earliest window of the
 *  new epoch (slot 1's guarded start) could open. */
export const LEASE_SAFETY_MS = 100;
/** Below this much time after the boundary to strip co-holders, the hand-out is not attempted. */
export const LEASE_MIN_MS = 200;
/** Extra runner ids looked at beyond cnt_runners, to stop units left over from a larger setup. */
export const EXTRA_RUNNER_SCAN = 4;
/** A runner seen started this long ago has read its boot permit (the wrapper reads it first thing). */
export const PERMIT_READ_GRACE_MS = 1_000;
/** A signer a block behind for longer than this many slots signs on a stale tip (a block reaches
 *  every node within a slot: the node's view lags the network by under one), even below signer_max_lag. */
export const STALE_BLOCK_SLOTS = 1;

export function emptyMemory(): Memory {
  return {
    signer: null,
    events: [],
    knownEpochs: [],
    runners: {},
    boundary: null,
    tip: { lastSentMs: 0, lastSentHeight: 0 },
    lastTickMs: null,
    failures: {},
  };
}

/** Housekeeping that failed waits this long before the next try, doubling up to the cap. */
export const RETRY_BASE_MS = 1_000;
export const RETRY_MAX_MS = 60_000;
export const actionKey = (a: Action): string => ("id" in a ? `${a.kind}#${a.id}` : a.kind);

/** Whether a failed housekeeping action may be tried again now. */
export function retryDue(memory: Memory, a: Action, now: number): boolean {
  const f = memory.failures[actionKey(a)];
  if (!f) return true;
  return now - f.lastMs >= Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** (f.count - 1));
}

function freshRunner(pid: number, now: number): RunnerMemory {
  return {
    pid,
    startedMs: null,
    firstSeenMs: now,
    runningSinceMs: null,
    answered: false,
    bootedAtMs: null,
    deadSinceMs: null,
    keylessProof: false,
    lastLeaderIds: [],
    frozenByUs: null,
    pendingSlots: [],
    logsReadMs: null,
    logsWanted: true,
    holderSinceMs: null,
    unableSinceMs: null,
    everRunning: false,
    // Nothing is known of earlier incarnations: as if able until this tick, which signWindowEnd
    // dates (to when systemd saw this incarnation start, when it cannot have signed itself).
    ableUntilMs: 0,
    ableAtLastTick: true,
  };
}

/** systemd's start time of a unit jitters between reads (ms rounding, /proc/uptime's 10 ms): a
 *  difference beyond this is another start. */
export const START_JITTER_MS = 1_000;
/** uptime is whole seconds and answered within the observation: a boot time that moves later by more
 *  than this plus the observation's length is another process. */
export const UPTIME_JITTER_MS = 1_000;

/**
 * Why a proof about this incarnation (key-less) can no longer be carried, or null when it can. It is
 * carried only while every tick confirms the same process: systemd read, the same main pid (a new pid
 * is a new memory anyway) and start time, no 503 (a process that was proven Running never goes back to
 * it: one answering 503 is a new one), no fall in uptime. Anything doubtful: the process may have
 * restarted unseen, with --secret.
 */
export function proofBroken(o: RunnerObs, m: RunnerMemory, obs: Observation): string | null {
  const u = o.unit;
  if (u === null) return "systemd unreadable";
  if (u.mainPid > 0 && (u.sinceMs === null || m.startedMs === null)) return "start time unknown";
  if (u.mainPid > 0 && Math.abs(u.sinceMs! - m.startedMs!) > START_JITTER_MS) return "start time changed";
  const stats = o.stats;
  const is503 = (r: RunnerObs["stats"] | RunnerObs["leaders"]) => r !== null && !r.ok && r.error.kind === "not_ready";
  if (is503(stats) || is503(o.leaders)) return "REST answers 503";
  if (stats?.ok && stats.value.state !== "Running" && m.everRunning) return "Running before, now " + stats.value.state;
  const up = stats?.ok ? stats.value.uptimeS : null;
  if (up !== null && up !== undefined && m.bootedAtMs !== null) {
    const slack = UPTIME_JITTER_MS + (obs.atMs - (obs.fromMs ?? obs.atMs));
    if (obs.atMs - up * 1000 > m.bootedAtMs + slack) return "uptime fell";
  }
  return null;
}

const isTimeout = (r: RunnerObs["leaders"]): boolean =>
  r !== null && !r.ok && r.error.kind === "unreachable" && r.error.reason === "timeout";

/** Fold one observation into memory (pure; returns a new object). */
export function remember(prev: Memory, obs: Observation, config: ResolvedConfig, clock: EpochClock | null): Memory {
  const now = obs.atMs;
  const runners: Record<number, RunnerMemory> = {};
  let events = prev.events;
  const known = new Set(prev.knownEpochs);
  const curEpoch = clock ? clock.epochAt(now) : null;
  let bootObservedMs = prev.bootObservedMs ?? null;
  const bootObservedByRunnerMs = { ...prev.bootObservedByRunnerMs };

  for (const o of obs.runners) {
    const pid = o.unit?.mainPid ?? prev.runners[o.id]?.pid ?? 0;
    const old = prev.runners[o.id];
    const m: RunnerMemory = old && old.pid === pid ? { ...old } : freshRunner(pid, now);
    // What earlier incarnations may have done outlives their pid (see signWindowEnd).
    if (old && old.pid !== pid) {
      m.ableUntilMs = old.ableUntilMs;
      m.ableAtLastTick = old.ableAtLastTick;
    }
    if (!(old && old.pid === pid)) m.startedMs = o.unit?.sinceMs ?? null;
    else if (m.keylessProof && proofBroken(o, m, obs) !== null) m.keylessProof = false;
    const stats = o.stats;
    const running = stats?.ok === true && stats.value.state === "Running";
    const answered = stats?.ok === true || (stats !== null && !stats.ok && stats.error.kind === "not_ready");
    if (answered) m.answered = true;
    // Started while every permit this daemon wrote said passive, and read one at its start (the
    // wrapper reads it at once; a grace covers a start seen before the read): it boots without the key.
    const passiveSince = prev.passivePermitSinceMs?.[o.id];
    const u0 = o.unit;
    // Only while this daemon ticks often (its permits never went stale, so the wrapper did not wait
    // for a later one), and soon after the start.
    const ticking = prev.lastTickMs !== null && now - prev.lastTickMs < BOOT_PERMIT_MAX_AGE_MS - PERMIT_READ_GRACE_MS;
    if (!m.bootedPassive && !m.everRunning && ticking && passiveSince !== undefined && u0 && u0.mainPid > 0 && u0.sinceMs !== null && u0.sinceMs >= passiveSince && now - u0.sinceMs >= PERMIT_READ_GRACE_MS && now - u0.sinceMs < BOOT_PERMIT_MAX_AGE_MS - PERMIT_READ_GRACE_MS) {
      m.bootedPassive = true;
    }
    // Seen booting in this incarnation and Running now: how long a boot takes here (sizes boot modes).
    if (running && m.runningSinceMs === null && old && old.pid === pid && old.firstSeenMs < now && o.unit?.sinceMs != null && o.unit.sinceMs <= now) {
      bootObservedMs = now - o.unit.sinceMs;
      bootObservedByRunnerMs[o.id] = bootObservedMs;
    }
    if (running) {
      m.everRunning = true;
      m.runningSinceMs ??= now;
      const up = stats.value.uptimeS;
      if (up !== null) m.bootedAtMs = now - up * 1000;
    }
    else if (stats?.ok) m.runningSinceMs = null;
    if (stats && !stats.ok && stats.error.kind !== "not_ready" && pid > 0) m.deadSinceMs ??= now;
    else if (stats?.ok || (stats && !stats.ok && stats.error.kind === "not_ready")) m.deadSinceMs = null;

    const leadersOk = o.leaders?.ok === true ? o.leaders.value : null;
    // A key posted since (keylessProof cleared by the promotion) ends the key-less stretch.
    if (!m.keylessProof) m.keylessSinceMs = null;
    if (leadersOk) m.keylessSinceMs = leadersOk.length === 0 ? (m.keylessSinceMs ?? now) : null;
    if (leadersOk) {
      m.lastLeaderIds = [...leadersOk];
      m.keylessProof = leadersOk.length === 0;
      m.holderSinceMs = leadersOk.length > 0 ? (m.holderSinceMs ?? now) : null;
    }
    if (o.unit && o.unit.frozen === false && m.frozenByUs) m.frozenByUs = null;

    if (o.logs?.ok && clock && curEpoch !== null) {
      const logs = o.logs.value;
      m.pendingSlots = pendingSlots(logs, clock, now);
      m.logsReadMs = now;
      events = mergeEvents(events, logs, clock, curEpoch);
      // A list is whole only if no computation was under way: /leaders answered (the enclave was
      // free) before the logs were asked (observe orders them so).
      const epochs = new Set(logs.map((l) => l.scheduledAt.epoch));
      if (leadersOk) for (const e of epochs) if (e >= curEpoch) known.add(e);
      // A runner that held the key since before this epoch began, or booted with the secret in this
      // epoch, computed this epoch's schedule: its (possibly empty) list is the whole list. Only
      // once the computation has surely begun: a free enclave just after the boundary (or the boot)
      // may be one that has not locked yet.
      const epochStart = clock.epochStartMs(curEpoch);
      const askedFrom = obs.fromMs ?? now;
      const computedAtBoundary =
        m.holderSinceMs !== null && m.holderSinceMs <= epochStart && leadersOk !== null && askedFrom >= epochStart + clock.slotMs;
      const computedAtBoot =
        config.keyMode === "boot" &&
        m.bootedAtMs !== null &&
        m.bootedAtMs >= epochStart &&
        leadersOk !== null &&
        askedFrom >= m.bootedAtMs + clock.slotMs;
      if (computedAtBoundary || computedAtBoot) known.add(curEpoch);
    }
    runners[o.id] = m;
  }
  const keepFrom = curEpoch === null ? -Infinity : curEpoch - 1;
  return {
    ...prev,
    runners,
    events,
    knownEpochs: [...known].filter((e) => e >= keepFrom).sort((a, b) => a - b),
    lastTickMs: now,
    bootObservedMs,
    bootObservedByRunnerMs,
  };
}

/** Key-less without a break since before its logs were last read: it can have computed nothing since
 *  (an enclave without keys computes nothing, and a removal lands only after a running computation),
 *  so its empty list is still whole. Re-reading 1024 log entries every 2 s costs a busy pool's loop. */
function keylessSinceRead(m: RunnerMemory): boolean {
  return m.keylessSinceMs != null && m.logsReadMs !== null && m.keylessSinceMs <= m.logsReadMs;
}

function pendingSlots(logs: readonly LeaderLog[], clock: EpochClock, now: number): number[] {
  const out: number[] = [];
  for (const l of logs) {
    if (l.status.kind !== "pending") continue;
    const abs = clock.abs(l.scheduledAt.epoch, l.scheduledAt.slot);
    if (clock.slotStartMs(abs) + clock.slotMs > now) out.push(abs);
  }
  return out.sort((a, b) => a - b);
}

function mergeEvents(prev: readonly number[], logs: readonly LeaderLog[], clock: EpochClock, curEpoch: number): number[] {
  const set = new Set<number>();
  const minAbs = clock.abs(curEpoch - 1, 0);
  for (const e of prev) if (e >= minAbs) set.add(e);
  for (const l of logs) {
    const abs = clock.abs(l.scheduledAt.epoch, l.scheduledAt.slot);
    if (abs >= minAbs) set.add(abs);
  }
  return [...set].sort((a, b) => a - b);
}

/** What can be proven about each runner right now. */
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

/**
 * Until when a runner may have been able to sign, as of this tick (updates `m.ableUntilMs`). Able
 * now: until now. Proven unable now after being able at the last tick: the switch happened in between,
 * so until now; except when a new incarnation that cannot have signed (no process, or a process never
 * Running) replaced an able one: the old one ended before the new one entered its state, which
 * systemd dates. A booting runner thus counts per window, not per process: the process it replaced
 * may have signed the slot (found by bench row signer-crash-in-slot-3h).
 */
export function signWindowEnd(o: RunnerObs, m: RunnerMemory, cap: Capability, prevTickMs: number | null, now: number): void {
  const neverSigned = cap === "booting-holder" && !m.everRunning;
  const ableNow = !(cannotSign(cap) || neverSigned);
  if (ableNow) m.ableUntilMs = now;
  else if (m.ableAtLastTick) {
    const u = o.unit;
    const newIncarnation = m.firstSeenMs === now;
    // The state change must fall after the last tick that saw the old process (else it is not this
    // incarnation's start) and not in the future; anything doubtful counts as now.
    const datedStart =
      newIncarnation && u !== null && u.mainPid === m.pid && (cap === "stopped" || neverSigned) && u.sinceMs !== null &&
      u.sinceMs <= now && (prevTickMs === null || u.sinceMs >= prevTickMs)
        ? u.sinceMs
        : now;
    m.ableUntilMs = Math.max(m.ableUntilMs, datedStart);
  }
  m.ableAtLastTick = ableNow;
}

export interface DecideResult {
  plan: Plan;
  memory: Memory;
  views: RunnerView[];
}

const mayHoldKey = (c: Capability) => c === "holder" || c === "booting-holder" || c === "unknown";
/** Proven unable to sign right now: stopped, frozen (SIGSTOP), or verified key-less. */
const cannotSign = (c: Capability) => c === "stopped" || c === "frozen" || c === "keyless";

export function decide(obs: Observation, prev: Memory, config: ResolvedConfig, now: number): DecideResult {
  const clock = obs.settings ? epochClock(obs.settings) : null;
  const memory = remember(prev, obs, config, clock);
  const fences: Action[] = [];
  const other: Action[] = [];
  const notes: string[] = [];
  let promote: Plan["promote"] = null;
  const fenced = new Set<number>();
  const fence = (a: Action & { id: number }) => {
    if (fenced.has(a.id)) return;
    fenced.add(a.id);
    fences.push(a);
  };

  const inScope = obs.runners.filter((o) => o.id < config.cntRunners);
  // Operator gate (intent.ts): a held runner is never promoted, co-holder or housekept; still fenced.
  const held = (id: number) => isHeld(obs.intent, id);
  const views = new Map<number, RunnerView>();
  for (const o of obs.runners) views.set(o.id, view(o, memory.runners[o.id]!, config, now));
  const mem = (id: number) => memory.runners[id]!;
  for (const v of views.values()) {
    const m = mem(v.id);
    m.unableSinceMs = cannotSign(v.cap) ? (m.unableSinceMs ?? now) : null;
  }
  for (const o of obs.runners) signWindowEnd(o, mem(o.id), views.get(o.id)!.cap, prev.lastTickMs, memory.lastTickMs!);

  // The schedule as far as known: windows of the pool's leader slots still ahead.
  const windows: Window[] = clock
    ? upcomingWindows(clock, memory.events, now, config.slotGuardMs, config.slotMarginMs)
    : [];
  const leadMs = Math.max(config.eventActionMs, 2 * config.loopPeriodMs + config.restTimeoutMs);
  const danger = inDanger(windows, now, leadMs);
  const curEpoch = clock ? clock.epochAt(now) : null;
  const nextBoundary = clock && curEpoch !== null ? clock.epochStartMs(curEpoch + 1) : null;
  const epochKnown = curEpoch !== null && memory.knownEpochs.includes(curEpoch);

  // Reference height: the best local height, raised by PoolTool's majority max when known.
  let ref: number | null = obs.majorityMax;
  for (const v of views.values()) if (v.running && v.height !== null) ref = Math.max(ref ?? 0, v.height);
  const stuck = (v: RunnerView): boolean => {
    const m = mem(v.id);
    return (
      v.running &&
      v.height !== null &&
      ref !== null &&
      v.height < ref - config.maxOffset &&
      m.runningSinceMs !== null &&
      now - m.runningSinceMs > config.bootCatchUpMs
    );
  };
  const healthy = (v: RunnerView) =>
    (v.cap === "holder" || v.cap === "keyless") && v.running && v.unitActive && !v.frozen && !stuck(v);
  for (const v of views.values()) {
    const m = mem(v.id);
    m.behindSinceMs = v.running && v.height !== null && ref !== null && v.height < ref ? (m.behindSinceMs ?? now) : null;
  }
  /** How long `v` has lacked a block: since it was first seen behind, or since the block time of a
   *  runner ahead of it (the first block it lacks is no younger), whichever is longer. */
  const behindForMs = (v: RunnerView): number => {
    const since = mem(v.id).behindSinceMs;
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
  };
  const pendingAhead = (id: number) => mem(id).pendingSlots.filter((abs) => !clock || clock.slotStartMs(abs) > now).length;

  // --- 1. Who signs. Keep a healthy holder; on adoption pick among holders; never move for height.
  let signer = memory.signer;
  const sv = signer !== null ? views.get(signer) : undefined;
  if (signer !== null && (!sv || sv.id >= config.cntRunners)) signer = null;
  // A held holder is adopted too: a hold on the signer moves the key through the switchover (below),
  // which keeps it where it is while no standby holds the coming slots.
  const holders = inScope.map((o) => views.get(o.id)!).filter((v) => v.cap === "holder" && healthy(v));
  const adopted = signer === null && holders.length > 0;
  if (adopted) {
    signer = best(holders, pendingAhead, ref, config.maxOffset).id;
    notes.push(`adopt #${signer} as signer (holds the key)`);
  }
  const signerView = signer !== null ? views.get(signer)! : null;
  const signerOk = signerView !== null && signerView.cap === "holder" && healthy(signerView);
  const epochStartMs = clock && curEpoch !== null ? clock.epochStartMs(curEpoch) : null;
  // A healthy signer that cannot produce the coming slots (nothing to sign, or a stale tip) hands
  // the key on in the gap before the next window, through the failover path below (fences, window rule).
  // Operator gate: a switchover asked for (or implied by a hold on the signer) replaces the automatic
  // planned move and takes the same failover path.
  const nextWindowInMs = windows.find((w) => w.endMs > now) ? windows.find((w) => w.endMs > now)!.startMs - now : null;
  const operatorMove =
    signerOk && signerView
      ? switchoverDecision({
          intent: obs.intent ?? { holds: {}, switchover: null },
          signer: signerView,
          standbys: inScope.map((o) => views.get(o.id)!).filter((v) => v.id !== signer && v.cap === "keyless" && healthy(v) && !v.busy),
          pendingAheadSlots: (id) => mem(id).pendingSlots.filter((abs) => !clock || clock.slotStartMs(abs) > now),
          pick: (vs) => best(vs, pendingAhead, ref, config.maxOffset),
          nextWindowInMs,
          // Room for the demotion, the promotion and their read-backs before the next window opens
          leadMs: 2 * handoutNeedMs(config) + config.loopPeriodMs,
          // The hand-out's stretch before the boundary (co-holders armed, or about to be)
          boundaryNear: (nextBoundary !== null && nextBoundary - now <= config.eventActionMs + BOUNDARY_MIN_LEAD_MS) || (memory.boundary !== null && clock !== null && now < clock.epochStartMs(memory.boundary.epoch)),
          epochKnown,
        })
      : null;
  if (operatorMove) notes.push(operatorMove.why);
  const planned = operatorMove
    ? operatorMove.kind === "move" ? { target: operatorMove.target, why: operatorMove.why } : null
    : signerOk && signerView && epochKnown && epochStartMs !== null
      ? plannedMove({
          signer: signerView,
          standbys: inScope.map((o) => views.get(o.id)!).filter((v) => v.id !== signer && v.cap === "keyless" && healthy(v) && !v.busy && !held(v.id)),
          pendingAhead,
          signerLogsFresh: (mem(signerView.id).logsReadMs ?? -Infinity) >= epochStartMs + (clock?.slotMs ?? 0),
          ref,
          config,
          nextWindowInMs: windows.find((w) => w.endMs > now) ? windows.find((w) => w.endMs > now)!.startMs - now : null,
          leadMs,
          behindForMs: behindForMs(signerView),
          slotMs: clock?.slotMs ?? 0,
        })
      : null;
  if (planned) notes.push(planned.why);

  // Boundary co-holders are exempt until the boundary; after it they are ordinary extra holders.
  const boundaryStart = memory.boundary && clock ? clock.epochStartMs(memory.boundary.epoch) : null;
  const exempt = (id: number) =>
    memory.boundary !== null &&
    boundaryStart !== null &&
    now < boundaryStart &&
    memory.boundary.coHolders.includes(id) &&
    views.get(id)?.cap === "holder";

  // The boundary hand-out's gap: close to the boundary, no window before it, time for the POSTs.
  const handoutGap = (): boolean =>
    clock !== null &&
    nextBoundary !== null &&
    epochKnown &&
    nextBoundary - now <= config.eventActionMs &&
    nextBoundary - now >= handoutNeedMs(config) &&
    !windowBetween(windows, now, nextBoundary);
  /** A daemon restarted during the hand-out finds several holders: the signer and the co-holders the
   *  last daemon armed. In the gap they may keep the key (their dead-man switches are re-armed with
   *  an idempotent POST) rather than entering the new epoch cold. */
  function readoptCoHolders(): number[] {
    if (!handoutGap() || (memory.boundary && memory.boundary.epoch === curEpoch! + 1)) return [];
    return holders.filter((v) => v.id !== signer && !v.busy).map((v) => v.id);
  }

  // --- 2. How to fence a runner that may be able to sign.
  const fenceRunner = (v: RunnerView, why: string) => {
    if (v.cap === "holder") {
      fence({ kind: "demote", id: v.id, reason: why, leaderIds: v.leaderIds ?? mem(v.id).lastLeaderIds });
    } else if (v.cap === "unknown") {
      fence({ kind: "freeze", id: v.id, cause: "fence", reason: `${why}; its REST does not answer, so its keys are unknown` });
    } else if (v.cap === "booting-holder") {
      fence({ kind: "freeze", id: v.id, cause: "boot", reason: `${why}; it boots holding the key (--secret), a leader slot is near` });
    }
  };
  // Units beyond cnt_runners (left from a larger setup) are retired; whether they hold the key is not
  // worth finding out, since SIGKILL then stop is safe either way. A fence, so no promotion races it.
  for (const o of obs.runners) {
    const u = o.unit;
    if (o.id < config.cntRunners || !u) continue;
    if (u.mainPid > 0 || (u.activeState !== "inactive" && u.activeState !== "failed")) {
      fence({ kind: "retire", id: o.id, reason: `runner #${o.id} is beyond cnt_runners (${config.cntRunners})` });
    }
  }

  // Booting key holders cannot sign before they have computed a schedule, which the master sees
  // (Running) and answers with a demotion that the enclave applies before any event; so they are
  // frozen only near a known window, where an early finish could meet a slot.
  // A cold standby restarted to compute this epoch (warming) is frozen only within one tick of a
  // window (bootLeadMs): with event_action's lead a busy pool's windows would keep it frozen for good.
  const warmingId = memory.warming && memory.warming.epoch === curEpoch && now < memory.warming.untilMs ? memory.warming.id : null;
  const bootDanger = inDanger(windows, now, bootLeadMs(config));
  const bootNear = (id: number) => (id === warmingId ? bootDanger : danger);
  // Former co-holders a restarted daemon finds in the hand-out's gap keep the key until the boundary.
  const readopted = new Set(adopted ? readoptCoHolders() : []);
  const threat = (v: RunnerView) =>
    mayHoldKey(v.cap) && !exempt(v.id) && !readopted.has(v.id) && !(v.cap === "booting-holder" && !bootNear(v.id));

  // --- 3. Failover: promote the best standby once everyone else is proven unable to sign.
  let newSigner: number | null = signerOk ? signer : null;
  const lossWhy = () => (planned ? planned.why : describeSignerLoss(signerView, signer, stuck));
  if (signerOk && !planned) {
    for (const v of views.values()) if (v.id !== signer && threat(v)) fenceRunner(v, `#${v.id} is not the signer`);
  } else {
    // A busy holder (computing the new epoch after the boundary hand-out) can take over as it is:
    // it needs no POST, so the locked enclave does not matter.
    const candidates = inScope.map((o) => views.get(o.id)!).filter((v) => healthy(v) && (!v.busy || v.cap === "holder") && !held(v.id));
    let pick = planned ? planned.target : candidates.length > 0 ? best(candidates, pendingAhead, ref, config.maxOffset) : null;
    // A signer whose REST went silent may still be signing its schedule. When no standby has a
    // schedule for the slots left in this epoch, moving the key would lose them all for certain:
    // keep the silent signer (alone, so no risk) until the boundary needs a healthy key holder.
    // The same for a signer frozen by someone else: while stopped it cannot sign, and once thawed
    // it carries on with its schedule; killing it would throw that schedule away.
    const externallyFrozen = signerView?.cap === "frozen" && signer !== null && mem(signer).frozenByUs === null;
    if (
      pick &&
      signerView &&
      (signerView.cap === "unknown" || externallyFrozen || (signerView.cap === "holder" && !stuck(signerView))) &&
      pendingAhead(pick.id) === 0 &&
      pendingAhead(signerView.id) > 0 &&
      (nextBoundary === null || nextBoundary - now > config.eventActionMs + BOUNDARY_MIN_LEAD_MS)
    ) {
      notes.push(
        `signer #${signerView.id} is unwell (${describeSignerLoss(signerView, signer, stuck)}) but no standby has a schedule for the ${pendingAhead(signerView.id)} slots left; keeping it until the boundary`,
      );
      pick = null;
    }
    // A window belongs to one signer. Inside it the key moves only if everyone else was proven
    // unable to sign since before it opened; otherwise whoever may have signed its slot already
    // (at slot start, before going silent) would share it with the new signer, who signs it again.
    // The handover waits for the window to close: that slot is the old signer's, done or lost.
    let waitFor: "window" | "schedule" | null = null;
    // With this epoch's schedule unknown, any instant may be inside a window that opened up to one
    // window length ago.
    if (pick && clock) {
      const open = windows.find((w) => w.startMs <= now && now < w.endMs) ?? null;
      const openedBy = open ? open.startMs : epochKnown ? null : now - (config.slotGuardMs + clock.slotMs + config.slotMarginMs);
      const pickId = pick.id;
      // A runner still booting has never been Running in this incarnation, so it has computed no
      // schedule and signed nothing yet (whether it may sign later is the fences' business); but the
      // incarnation it replaced may have signed in the window: judged per window, not per process.
      const bootedBefore = (v: RunnerView, from: number) =>
        v.cap === "booting-holder" && !mem(v.id).everRunning && mem(v.id).ableUntilMs <= from;
      const mayHaveUsed =
        openedBy === null
          ? []
          : [...views.values()].filter(
              (v) => v.id !== pickId && !bootedBefore(v, openedBy) && !(mem(v.id).unableSinceMs !== null && mem(v.id).unableSinceMs! <= openedBy),
            );
      if (mayHaveUsed.length > 0) {
        waitFor = open ? "window" : "schedule";
        const which = open ? `the window of slot ${clock.epochOf(open.absSlot)}.${open.absSlot % clock.slotsPerEpoch} closes` : `no window can be open (epoch ${curEpoch}'s schedule is unknown)`;
        notes.push(
          `${lossWhy()}; #${pick.id} takes over once ${which}: ` +
            `${mayHaveUsed.map((v) => `#${v.id}`).join(", ")} may have signed in it`,
        );
        pick = null;
      }
    }
    if (pick) {
      const why = lossWhy();
      for (const v of views.values()) if (v.id !== pick.id && threat(v)) fenceRunner(v, v.id === signer ? why : `#${v.id} is not the signer`);
      // A frozen former signer still holds the key and would sign when thawed: kill it first.
      if (signerView && signer !== pick.id && signerView.cap === "frozen" && signerView.pid > 0) {
        fence({ kind: "kill", id: signerView.id, pid: signerView.pid, reason: `${why}; frozen with the key, fenced by SIGKILL` });
      }
      const reason = `${why}; #${pick.id} is the best standby (${pendingAhead(pick.id)} events ahead, height ${pick.height ?? "?"})`;
      if (pick.cap === "holder") {
        notes.push(`${reason}; it already holds the key`);
        // It may be a boundary co-holder whose dead-man switch is armed: the signer must keep running.
        other.push({ kind: "disarm", id: pick.id, reason: "it signs now; its boundary dead-man switch must not fire" });
      } else {
        // The fences must hold before the next window opens, or its slot could be signed twice.
        const next = windows.find((w) => w.startMs > now);
        promote = { kind: "promote", purpose: "sign", id: pick.id, reason, ...(next ? { fencedByMs: next.startMs } : {}) };
      }
      newSigner = pick.id;
    } else {
      // Nobody can take over. One runner that may sign is no risk; keep the old signer as that one
      // (a slot it still signs is better than none) and fence the rest.
      // Waiting out a known window, the old signer keeps it (the slot is its own, signed or lost)
      // and every other runner that may hold the key is fenced, even a lone one. With the schedule
      // unknown there is no end to wait for: everyone is fenced, and the wait runs from then.
      const keep = waitFor !== "schedule" && signerView && (mayHoldKey(signerView.cap) || externallyFrozen) ? signerView.id : null;
      const others = [...views.values()].filter((v) => v.id !== keep && threat(v));
      if (keep !== null || others.length > 1 || waitFor) {
        for (const v of others) fenceRunner(v, v.id === signer ? lossWhy() : `#${v.id} is not the signer`);
      }
      newSigner = keep;
      if (signer !== null && !waitFor) notes.push(`signer #${signer} is unhealthy (${lossWhy()}) and no standby can take over`);
    }
  }

  if (adopted && newSigner === signer && signer !== null) {
    // A daemon that died mid-hand-out may have left this holder's dead-man switch armed.
    other.push({ kind: "disarm", id: signer, reason: "adopted as signer; any boundary dead-man switch must not fire" });
  }

  // --- 4. Frozen runners: thaw boot-frozen ones between windows; kill frozen former key holders.
  for (const o of obs.runners) {
    const v = views.get(o.id)!;
    if (!v.frozen || fenced.has(v.id)) continue;
    const m = mem(v.id);
    if (m.frozenByUs === "boot" && (!bootNear(v.id) || m.bootedPassive)) {
      other.push({ kind: "thaw", id: v.id, reason: "no leader slot window near; let it finish booting" });
    } else if (m.frozenByUs === "fence" || (m.frozenByUs === null && !m.keylessProof)) {
      if (v.id !== newSigner && newSigner !== null && v.pid > 0) {
        other.push({ kind: "kill", id: v.id, pid: v.pid, reason: "frozen while it may hold the key; SIGKILL so it can never wake and sign" });
      }
    }
  }

  // --- 5. The epoch boundary: give healthy standbys the key so they compute the next epoch.
  // Handed out in whatever gap there is: once the epoch's last window has closed, while the POSTs
  // and their read-back fit before the boundary. Done or skipped, it is counted once, with why.
  let boundary = memory.boundary;
  if (boundary && boundaryStart !== null && now >= boundaryStart + LOGS_REFRESH_MS) boundary = null;
  let handout = memory.handout;
  let handoutResult: Plan["handout"];
  if (handout && !handout.counted && curEpoch !== null && curEpoch >= handout.epoch) {
    handoutResult = { epoch: handout.epoch, result: "skipped", reason: handout.why };
    notes.push(`boundary hand-out for epoch ${handout.epoch} skipped: ${handout.why}`);
    handout = { ...handout, counted: true };
  }
  if (clock && nextBoundary !== null && curEpoch !== null && (boundary === null || boundary.epoch !== curEpoch + 1) && nextBoundary - now <= config.eventActionMs) {
    const lead = nextBoundary - now;
    const need = handoutNeedMs(config);
    // Each co-holder gets a dead-man switch: frozen before slot 1's window could open unless the
    // daemon strips its key first. A daemon killed mid-hand-out cannot leave several signers.
    const leaseAtMs = nextBoundary + clock.slotMs - config.slotGuardMs - LEASE_SAFETY_MS;
    const leaseRoom = leaseAtMs - nextBoundary >= LEASE_MIN_MS;
    const co = inScope
      .map((o) => views.get(o.id)!)
      .filter((v) => v.id !== newSigner && ((v.cap === "keyless" && !v.busy) || readopted.has(v.id)) && healthy(v) && !held(v.id));
    const why = handoutBlocked({
      signerSettled: newSigner !== null && newSigner === signer && signerOk,
      epochKnown,
      fences: fences.length,
      leaseRoom,
      windowBefore: windowBetween(windows, now, nextBoundary),
      lead,
      need,
      standbys: co.length,
      config,
    });
    if (!leaseRoom) {
      notes.push(`no boundary hand-out: slot_guard ${config.slotGuardMs} ms leaves under ${LEASE_MIN_MS} ms of slot 1 to strip the standbys' keys`);
      boundary = { epoch: curEpoch + 1, coHolders: [] };
    }
    if (why !== null) {
      // Holders a restarted daemon kept for a hand-out that cannot happen are ordinary extra holders.
      for (const id of readopted) fenceRunner(views.get(id)!, `#${id} is not the signer (no boundary hand-out: ${why})`);
    }
    if (why === null) {
      for (const v of co) {
        other.push({
          kind: "promote",
          purpose: "boundary",
          leaseAtMs,
          id: v.id,
          reason: `epoch ${curEpoch + 1} starts in ${(lead / 1000).toFixed(1)} s and no leader slot is before it: #${v.id} takes the key to compute the new schedule`,
        });
      }
      boundary = { epoch: curEpoch + 1, coHolders: co.map((v) => v.id) };
      if (!(handout?.epoch === curEpoch + 1 && handout.counted)) {
        handoutResult = { epoch: curEpoch + 1, result: "done", reason: `${co.length} standby(s), ${(lead / 1000).toFixed(1)} s before the boundary` };
        notes.push(`boundary hand-out for epoch ${curEpoch + 1}: ${co.map((v) => `#${v.id}`).join(", ")} take the key ${(lead / 1000).toFixed(1)} s before the boundary`);
      }
      handout = { epoch: curEpoch + 1, why: "done", counted: true };
    } else if (!(handout?.epoch === curEpoch + 1 && handout.counted)) {
      handout = { epoch: curEpoch + 1, why, counted: false };
    }
  }

  // --- 6. Housekeeping: start stopped runners, restart hopeless ones, stop extras.
  for (const o of obs.runners) {
    const v = views.get(o.id)!;
    const m = mem(v.id);
    const u = o.unit;
    if (v.id >= config.cntRunners) continue;
    if (fenced.has(v.id) || v.id === newSigner || held(v.id)) continue;
    if (u && (u.activeState === "inactive" || u.activeState === "failed")) {
      other.push({ kind: "start", id: v.id, reason: `unit is ${u.activeState}` });
      continue;
    }
    if (v.frozen) continue;
    const bootingFor = now - (u?.sinceMs ?? m.firstSeenMs);
    if (u?.activeState === "active" && !v.running && v.responsive && bootingFor > config.maxBootMs) {
      other.push({ kind: "kill", id: v.id, pid: v.pid, reason: `still bootstrapping after ${Math.round(bootingFor / 1000)} s (max_boot ${config.maxBootMs / 1000} s)` });
      continue;
    }
    if (v.cap === "keyless" && stuck(v) && !(danger && config.keyMode === "boot")) {
      if (!inDanger(windows, now, config.startBeforeEventMs) || config.keyMode === "rest") {
        other.push({ kind: "restart", id: v.id, reason: `stuck at height ${v.height} while the best known is ${ref} (max_offset ${config.maxOffset})` });
      }
      continue;
    }
    if (v.cap === "keyless" && m.deadSinceMs !== null && now - m.deadSinceMs > DEAD_RESTART_MS && v.pid > 0) {
      other.push({ kind: "kill", id: v.id, pid: v.pid, reason: `REST has not answered for ${Math.round((now - m.deadSinceMs) / 1000)} s` });
    }
  }

  // --- 6b. Warmth: standbys without this epoch's schedule (cold) cannot take over mid-epoch.
  const coldIds = coldStandbys();
  let warming = warmingId !== null && pendingAhead(warmingId) === 0 ? memory.warming! : null;
  let warmTried = memory.warmTried && memory.warmTried.epoch === curEpoch ? memory.warmTried : { epoch: curEpoch ?? -1, ids: [] };
  // A warming boot that ended cold (or ran out of time) is not tried again for that incarnation.
  const w0 = memory.warming;
  if (w0?.restarted && w0.epoch === curEpoch && views.has(w0.id)) {
    const pidNow = views.get(w0.id)!.pid;
    if (warming === null || (coldIds.includes(w0.id) && pidNow !== w0.pid)) {
      if (pendingAhead(w0.id) === 0) warmTried = { epoch: curEpoch!, ids: [...warmTried.ids, `${w0.id}:${pidNow}`] };
      warming = null;
    }
  }
  // The permit saying key was written after the tick that chose it: restart now, if still cold.
  if (warming && !warming.restarted) {
    if (coldIds.includes(warming.id) && !fenced.has(warming.id) && signerOk && newSigner === signer) {
      other.push({ kind: "restart", id: warming.id, reason: `#${warming.id} lacks epoch ${curEpoch}'s schedule: it reboots with --secret to compute it` });
      warming = { ...warming, restarted: true, pid: views.get(warming.id)!.pid, untilMs: now + config.maxBootMs + WARM_COMPUTE_ALLOWANCE_MS };
    } else warming = null;
  }
  if (coldIds.length > 0 && config.keyMode === "rest") {
    notes.push(`key mode rest: ${coldIds.map((id) => `#${id}`).join(", ")} lack epoch ${curEpoch}'s schedule; no mid-epoch remedy exists until the next boundary`);
  }
  if (coldIds.length > 0 && config.keyMode === "boot" && warming === null && signerOk && newSigner === signer) {
    const bootMsOf = (id: number) => Math.max(memory.bootObservedMs ?? config.maxBootMs, memory.bootObservedByRunnerMs?.[id] ?? 0);
    const anyBooting = inScope.some((o) => {
      const v = views.get(o.id)!;
      return v.unitActive && !v.running;
    });
    const tried = (c: number) => warmTried.ids.includes(`${c}:${views.get(c)!.pid}`);
    const id = coldIds.find((c) => !tried(c) && inScope.some((o) => o.id !== c && o.id !== newSigner && healthy(views.get(o.id)!)));
    const fit = id !== undefined ? bootFits(windows, now, bootMsOf(id), bootLeadMs(config)) : null;
    // Worth it only if it is warm (booted, frozen through the windows on the way) before slots that remain.
    const readyAt = id !== undefined && fit ? now + bootMsOf(id) + fit.frozenMs : Infinity;
    const slotsAfter = windows.some((w) => clock!.epochOf(w.absSlot) === curEpoch && w.startMs > readyAt);
    if (id !== undefined && !anyBooting && !fenced.has(id) && fit!.fits && slotsAfter) {
      notes.push(`#${id} lacks epoch ${curEpoch}'s schedule: its boot permit says key, and it restarts next tick (a ${Math.round(bootMsOf(id) / 1000)} s boot fits between the windows)`);
      warming = { id, epoch: curEpoch!, untilMs: now + 10 * config.loopPeriodMs + config.restTimeoutMs, restarted: false };
    }
  }
  /** Healthy key-less standbys whose whole, fresh logs show no slot ahead while this epoch has some. */
  function coldStandbys(): number[] {
    if (!clock || curEpoch === null || !epochKnown || epochStartMs === null) return [];
    if (!windows.some((w) => clock.epochOf(w.absSlot) === curEpoch && w.startMs > now)) return [];
    return inScope
      .map((o) => views.get(o.id)!)
      .filter((v) => v.id !== newSigner && v.cap === "keyless" && healthy(v) && !v.busy && pendingAhead(v.id) === 0 && !held(v.id))
      .filter((v) => (mem(v.id).logsReadMs ?? -Infinity) >= epochStartMs + clock.slotMs && keylessSinceRead(mem(v.id)))
      .map((v) => v.id);
  }

  // How each runner boots if (re)started now: the one being warmed with the key; the others with it
  // only when the boot fits between the windows (frozen with event_action's lead), else passive.
  const bootModes: Record<number, "key" | "passive"> = {};
  const modeNow = bootMode(config, windows, now, memory.bootObservedMs ?? null, leadMs).mode;
  for (const o of inScope) bootModes[o.id] = warming?.id === o.id && config.keyMode === "boot" ? "key" : modeNow;
  // The permits of the last plan are on disk by now; with this plan passive too, every permit from
  // now on says passive until a plan says otherwise.
  const passivePermitSinceMs: Record<number, number> = {};
  for (const o of inScope) {
    if (bootModes[o.id] === "passive" && memory.lastBootModes?.[o.id] === "passive") passivePermitSinceMs[o.id] = memory.passivePermitSinceMs?.[o.id] ?? now;
  }

  // --- 7. Share the tip with PoolTool: only rising heights, at most every send_wait.
  if (config.pooltool && newSigner !== null) {
    const h = views.get(newSigner)?.height ?? null;
    if (h !== null && h > memory.tip.lastSentHeight && now - memory.tip.lastSentMs >= config.pooltool.sendWaitMs) {
      other.push({ kind: "reportTip", height: h, reason: `tip rose to ${h}` });
    }
  }

  // Logs wanted next tick: stale, not yet read this epoch, or the epoch's schedule unknown.
  const epochStart = clock && curEpoch !== null ? clock.epochStartMs(curEpoch) : 0;
  for (const o of obs.runners) {
    const m = mem(o.id);
    const v = views.get(o.id)!;
    // A runner whose logs showed nothing ahead may have been read before its schedule computation
    // finished; failover picks by those logs, so they are re-read soon rather than in 30 s.
    m.logsWanted =
      v.running &&
      (m.logsReadMs === null ||
        now - m.logsReadMs > LOGS_REFRESH_MS ||
        m.logsReadMs < epochStart ||
        !epochKnown ||
        (m.pendingSlots.length === 0 && now - m.logsReadMs > EMPTY_LOGS_REFRESH_MS && !keylessSinceRead(m)));
  }

  // Wake-up: never sleep through a window edge or the boundary.
  let wakeAtMs = now + config.loopPeriodMs;
  const consider = (t: number) => {
    if (t > now && t < wakeAtMs) wakeAtMs = t;
  };
  for (const w of windows.slice(0, 4)) {
    consider(w.startMs - leadMs);
    consider(w.endMs + 1);
  }
  if (nextBoundary !== null) {
    consider(nextBoundary - config.eventActionMs);
    consider(nextBoundary + 1);
  }
  // Housekeeping that keeps failing (a unit that will not start) backs off instead of spawning
  // systemctl every tick; fences and promotions are never held back.
  const due = other.filter((a) => a.kind === "promote" || retryDue(memory, a, now));
  other.length = 0;
  other.push(...due);
  // Look again soon after acting, to confirm; but not when every action repeats last tick's failure.
  const fresh = [...fences, ...(promote ? [promote] : []), ...other].some((a) => !memory.failures[actionKey(a)]);
  if (fresh) wakeAtMs = Math.min(wakeAtMs, now + CONFIRM_DELAY_MS);

  const plan: Plan = { fences, promote, other, wakeAtMs, notes, ...(handoutResult ? { handout: handoutResult } : {}), bootModes, ...(operatorMove ? { switchover: { kind: operatorMove.kind, why: operatorMove.why } } : {}) };
  return {
    plan,
    memory: { ...memory, signer: newSigner, boundary, handout, warming, warmTried, lastBootModes: bootModes, passivePermitSinceMs },
    views: [...views.values()],
  };
}

/**
 * The fences a daemon leaves behind when told to stop. Without a daemon, every runner that holds
 * the key will sign once it has a schedule: a standby booting with --secret, a boundary co-holder.
 * All of them but one (the signer, else the first that may hold the key) are fenced, regardless of
 * how near a window is: a Running holder is demoted; anything else (booting, computing, silent) is
 * killed, not frozen: a SIGCONT from anyone would undo a freeze while no daemon watches, and the next
 * daemon would kill a frozen one anyway. systemd restarts it, and with no daemon active it boots
 * without --secret. Runners that cannot sign, and the one kept, are left exactly as they are.
 */
export function partingFences(views: readonly RunnerView[], signer: number | null): Action[] {
  const able = views.filter((v) => mayHoldKey(v.cap));
  const keep = signer !== null && able.some((v) => v.id === signer) ? signer : (able[0]?.id ?? null);
  const why = "the daemon stops; without it this runner would become a second signer";
  return able
    .filter((v) => v.id !== keep)
    .map((v): Action =>
      v.cap === "holder" && !v.busy
        ? { kind: "demote", id: v.id, reason: why, leaderIds: v.leaderIds ?? [] }
        : { kind: "kill", id: v.id, pid: v.pid, reason: why },
    );
}

/** Due the moment the epoch starts, before any observation: the co-holders' key removals. A tick's
 *  observation waits out a REST deadline on every enclave locked by the new schedule, and the
 *  co-holders' dead-man switches fire well before that; the removals need no observation (the ids
 *  were read back when the key was handed out) and queue behind the computation. */
export function boundaryStrip(memory: Memory, settings: Settings | null, now: number): Action[] {
  const b = memory.boundary;
  if (!b || b.stripped || !settings) return [];
  if (now < epochClock(settings).epochStartMs(b.epoch)) return [];
  return b.coHolders.map((id) => ({
    kind: "demote",
    id,
    leaderIds: memory.runners[id]?.lastLeaderIds ?? [],
    reason: `epoch ${b.epoch} began: #${id} computed its schedule and gives the key back`,
  }));
}

/**
 * A planned move of the key away from a healthy signer (the move itself goes through the failover
 * path: fences first, never inside a window someone else may have used, promotion fenced by the
 * next window):
 * - the signer has nothing to sign in this epoch while a healthy standby has the coming slots (a
 *   runner that booted with --secret or kept the boundary's schedule), e.g. after a failover to a
 *   cold standby, or after a daemon restart adopted the wrong holder;
 * - before a window, the signer lags the best height by signer_max_lag blocks or more while a
 *   standby holding the schedule is in sync: its blocks would sit on a tip the network has left.
 * The signer's logs must have been read after this epoch's first slot (its list is then whole).
 */
export function plannedMove(x: {
  signer: RunnerView;
  /** Healthy, key-less, not busy standbys in scope */
  standbys: readonly RunnerView[];
  pendingAhead: (id: number) => number;
  signerLogsFresh: boolean;
  ref: number | null;
  config: ResolvedConfig;
  /** ms until the next window opens (negative: one is open), null when none is known */
  nextWindowInMs: number | null;
  leadMs: number;
  /** How long the signer has been behind the reference by a block or more */
  behindForMs?: number;
  slotMs?: number;
}): { target: RunnerView; why: string } | null {
  const { signer, pendingAhead, ref, config } = x;
  const warm = x.standbys.filter((v) => pendingAhead(v.id) > 0);
  if (warm.length === 0 || x.nextWindowInMs === null) return null;
  const byHeight = [...warm].sort((a, b) => (b.height ?? 0) - (a.height ?? 0) || a.id - b.id);
  if (x.signerLogsFresh && !signer.busy && pendingAhead(signer.id) === 0) {
    const t = best(warm, pendingAhead, ref, config.maxOffset);
    return { target: t, why: `signer #${signer.id} has no leader slot ahead in this epoch while #${t.id} has ${pendingAhead(t.id)}: the key moves to it` };
  }
  const lag = ref !== null && signer.height !== null ? ref - signer.height : 0;
  // A block behind is jitter while a block propagates (under a slot); longer, the tip is stale.
  const staleFor = (x.behindForMs ?? 0) > STALE_BLOCK_SLOTS * (x.slotMs ?? 0);
  if ((lag >= config.signerMaxLag || (lag >= 1 && staleFor)) && x.nextWindowInMs <= x.leadMs && pendingAhead(signer.id) > 0) {
    const t = byHeight[0]!;
    if (t.height !== null && ref! - t.height < Math.min(lag, config.signerMaxLag)) {
      return { target: t, why: `signer #${signer.id} is ${lag} blocks behind (signer_max_lag ${config.signerMaxLag}): its blocks would be orphaned; #${t.id} is in sync and holds the schedule` };
    }
  }
  return null;
}

/** Why the boundary hand-out cannot happen now (null: it can). */
export function handoutBlocked(x: {
  signerSettled: boolean;
  epochKnown: boolean;
  fences: number;
  leaseRoom: boolean;
  windowBefore: boolean;
  lead: number;
  need: number;
  standbys: number;
  config: ResolvedConfig;
}): string | null {
  if (!x.leaseRoom) return "no_lease_room: slot 1 leaves no time to strip the standbys' keys";
  if (!x.signerSettled) return "signer_unsettled: no healthy signer keeps the key";
  if (!x.epochKnown) return "schedule_unknown: a window may lie before the boundary";
  if (x.fences > 0) return "fencing: a runner is being fenced";
  if (x.windowBefore) return "window: a leader slot's window lies before or across the boundary";
  if (x.lead < x.need) return `no_time: ${Math.round(x.lead)} ms left, the POSTs and their read-back need ${x.need} ms (2 × rest_timeout)`;
  if (x.standbys === 0) return "no_standby: no healthy key-less standby";
  return null;
}

function describeSignerLoss(v: RunnerView | null, signer: number | null, stuck: (v: RunnerView) => boolean): string {
  if (signer === null || !v) return "no runner holds the key";
  if (v.cap === "stopped") return `signer #${signer} is down`;
  if (v.cap === "frozen") return `signer #${signer} is frozen`;
  if (v.cap === "unknown") return `signer #${signer} does not answer`;
  if (v.cap === "keyless") return `signer #${signer} lost its key`;
  if (!v.running) return `signer #${signer} is not Running (${v.nodeState ?? "?"})`;
  if (stuck(v)) return `signer #${signer} is stuck at height ${v.height}`;
  return `signer #${signer} is unhealthy`;
}

/** Best runner to sign: one with a schedule for the coming slots, then height (a lag within
 *  max_offset is a tie, so jitter never decides), then one that already holds the key, then id. */
export function best(
  vs: readonly RunnerView[],
  pendingAhead: (id: number) => number,
  ref: number | null,
  maxOffset: number,
): RunnerView {
  const score = (v: RunnerView) => {
    const inSync = ref === null || (v.height !== null && v.height >= ref - maxOffset);
    return [pendingAhead(v.id) > 0 ? 1 : 0, inSync ? 1 : 0, inSync ? 0 : (v.height ?? 0), v.cap === "holder" ? 1 : 0, -v.id];
  };
  return [...vs].sort((a, b) => {
    const sa = score(a);
    const sb = score(b);
    for (let i = 0; i < sa.length; i++) if (sa[i] !== sb[i]) return sb[i]! - sa[i]!;
    return 0;
  })[0]!;
}
