// The master's memory, and every change to it. Memory is what one tick leaves the next: per runner
// what was proven about its incarnation, the schedule as far as known, the signer, the boundary
// hand-out, the retry counts. It changes in exactly these pure steps, each with explicit inputs:
//   remember      folds an observation in (taken at obs.atMs);
//   noteViews     dates what the tick's views proved (able/unable, behind, logs wanted);
//   settle        keeps what the tick's rules decided (signer, boundary, warming, boot modes…);
//   applyOutcomes folds what acting did (taken at the clock's time after acting);
//   markStripped  notes the boundary's key removals as sent.

import type { ResolvedConfig } from "../config/types.ts";
import type { LeaderLog } from "../node/types.ts";
import type { EpochClock } from "./schedule.ts";
import type { Action, Capability, Memory, Observation, Outcome, RunnerMemory, RunnerObs, RunnerView, StartStreak } from "./types.ts";
import { BOOT_PERMIT_MAX_AGE_MS } from "./bootpolicy.ts";

/** Re-read a runner's leader logs at least this often (they feed the schedule and the metrics). */
export const LOGS_REFRESH_MS = 30_000;
/** …and every 2 s while they show nothing ahead (a schedule may have been computed since). */
export const EMPTY_LOGS_REFRESH_MS = 2_000;
/** A runner seen started this long ago has read its boot permit (the wrapper reads it first thing). */
export const PERMIT_READ_GRACE_MS = 1_000;

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

/** Fold one observation into memory (pure; returns a new object). Its "now" is the observation's. */
export function remember(prev: Memory, obs: Observation, config: ResolvedConfig, clock: EpochClock | null): Memory {
  const now = obs.atMs;
  const runners: Record<number, RunnerMemory> = {};
  const acc = {
    events: prev.events,
    known: new Set(prev.knownEpochs),
    bootObservedMs: prev.bootObservedMs ?? null,
    bootObservedByRunnerMs: { ...prev.bootObservedByRunnerMs },
  };
  const curEpoch = clock ? clock.epochAt(now) : null;
  for (const o of obs.runners) {
    const m = rememberRunner(prev, o, obs, acc);
    if (o.logs?.ok && clock && curEpoch !== null) rememberLogs(m, o, o.logs.value, { obs, config, clock, curEpoch }, acc);
    runners[o.id] = m;
  }
  const keepFrom = curEpoch === null ? -Infinity : curEpoch - 1;
  return {
    ...prev,
    runners,
    events: acc.events,
    knownEpochs: [...acc.known].filter((e) => e >= keepFrom).sort((a, b) => a - b),
    lastTickMs: now,
    bootObservedMs: acc.bootObservedMs,
    bootObservedByRunnerMs: acc.bootObservedByRunnerMs,
  };
}

/** What remember gathers across runners. */
interface Gathered {
  events: number[];
  known: Set<number>;
  bootObservedMs: number | null;
  bootObservedByRunnerMs: Record<number, number>;
}

/** One runner's memory after this observation (its REST and unit; the logs come after). */
function rememberRunner(prev: Memory, o: RunnerObs, obs: Observation, acc: Gathered): RunnerMemory {
  const now = obs.atMs;
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
  if (bootsPassive(prev, o, m, now)) m.bootedPassive = true;
  // Seen booting in this incarnation and Running now: how long a boot takes here (sizes boot modes).
  if (running && m.runningSinceMs === null && old && old.pid === pid && old.firstSeenMs < now && o.unit?.sinceMs != null && o.unit.sinceMs <= now) {
    acc.bootObservedMs = now - o.unit.sinceMs;
    acc.bootObservedByRunnerMs[o.id] = acc.bootObservedMs;
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
  return m;
}

/** Started while every permit this daemon wrote said passive, and read one at its start (the
 *  wrapper reads it at once; a grace covers a start seen before the read): it boots without the key.
 *  Only while this daemon ticks often (its permits never went stale, so the wrapper did not wait for
 *  a later one), and soon after the start. */
function bootsPassive(prev: Memory, o: RunnerObs, m: RunnerMemory, now: number): boolean {
  const passiveSince = prev.passivePermitSinceMs?.[o.id];
  const u0 = o.unit;
  const ticking = prev.lastTickMs !== null && now - prev.lastTickMs < BOOT_PERMIT_MAX_AGE_MS - PERMIT_READ_GRACE_MS;
  return !m.bootedPassive && !m.everRunning && ticking && passiveSince !== undefined && u0 !== null && u0.mainPid > 0 && u0.sinceMs !== null && u0.sinceMs >= passiveSince && now - u0.sinceMs >= PERMIT_READ_GRACE_MS && now - u0.sinceMs < BOOT_PERMIT_MAX_AGE_MS - PERMIT_READ_GRACE_MS;
}

/** A runner's leader logs, read this tick: its pending slots, the pool's events, whole epochs. */
function rememberLogs(
  m: RunnerMemory,
  o: RunnerObs,
  logs: readonly LeaderLog[],
  x: { obs: Observation; config: ResolvedConfig; clock: EpochClock; curEpoch: number },
  acc: Gathered,
): void {
  const { obs, config, clock, curEpoch } = x;
  const now = obs.atMs;
  const leadersOk = o.leaders?.ok === true ? o.leaders.value : null;
  m.pendingSlots = pendingSlots(logs, clock, now);
  m.logsReadMs = now;
  acc.events = mergeEvents(acc.events, logs, clock, curEpoch);
  // A list is whole only if no computation was under way: /leaders answered (the enclave was
  // free) before the logs were asked (observe orders them so).
  const epochs = new Set(logs.map((l) => l.scheduledAt.epoch));
  if (leadersOk) for (const e of epochs) if (e >= curEpoch) acc.known.add(e);
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
  if (computedAtBoundary || computedAtBoot) acc.known.add(curEpoch);
}

/** Key-less without a break since before its logs were last read: it can have computed nothing since
 *  (an enclave without keys computes nothing, and a removal lands only after a running computation),
 *  so its empty list is still whole. Re-reading 1024 log entries every 2 s costs a busy pool's loop. */
export function keylessSinceRead(m: RunnerMemory): boolean {
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


/**
 * Until when a runner may have been able to sign, as of this tick (updates `m.ableUntilMs`). Able
 * now: until now. Proven unable now after being able at the last tick: the switch happened in between,
 * so until now; except when a new incarnation that cannot have signed (no process, or a process never
 * Running) replaced an able one: the old one ended before the new one entered its state, which
 * systemd dates. A booting runner thus counts per window, not per process: the process it replaced
 * may have signed the slot (found by bench row signer-crash-in-slot-3h).
 */
function signWindowEnd(o: RunnerObs, m: RunnerMemory, cap: Capability, prevTickMs: number | null, now: number): void {
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
export const mayHoldKey = (c: Capability) => c === "holder" || c === "booting-holder" || c === "unknown";
/** Proven unable to sign right now: stopped, frozen (SIGSTOP), or verified key-less. */
export const cannotSign = (c: Capability) => c === "stopped" || c === "frozen" || c === "keyless";

/**
 * What this tick's views proved, dated (pure; returns a new object). `now` is decide's; the
 * able/unable dating uses the observation's time (memory.lastTickMs) as signWindowEnd always did.
 */
export function noteViews(
  memory: Memory,
  x: { obs: Observation; views: ReadonlyMap<number, RunnerView>; ref: number | null; prevTickMs: number | null; epochKnown: boolean; epochStartMs: number; now: number },
): Memory {
  const { obs, views, ref, now } = x;
  const runners: Record<number, RunnerMemory> = {};
  for (const [id, m] of Object.entries(memory.runners)) runners[Number(id)] = { ...m };
  for (const v of views.values()) {
    const m = runners[v.id]!;
    m.unableSinceMs = cannotSign(v.cap) ? (m.unableSinceMs ?? now) : null;
  }
  for (const o of obs.runners) signWindowEnd(o, runners[o.id]!, views.get(o.id)!.cap, x.prevTickMs, memory.lastTickMs!);
  for (const v of views.values()) {
    const m = runners[v.id]!;
    m.behindSinceMs = v.running && v.height !== null && ref !== null && v.height < ref ? (m.behindSinceMs ?? now) : null;
  }
  // Logs wanted next tick: stale, not yet read this epoch, or the epoch's schedule unknown.
  for (const o of obs.runners) {
    const m = runners[o.id]!;
    const v = views.get(o.id)!;
    // A runner whose logs showed nothing ahead may have been read before its schedule computation
    // finished; failover picks by those logs, so they are re-read soon rather than in 30 s.
    m.logsWanted =
      v.running &&
      (m.logsReadMs === null ||
        now - m.logsReadMs > LOGS_REFRESH_MS ||
        m.logsReadMs < x.epochStartMs ||
        !x.epochKnown ||
        (m.pendingSlots.length === 0 && now - m.logsReadMs > EMPTY_LOGS_REFRESH_MS && !keylessSinceRead(m)));
  }
  return { ...memory, runners };
}

/** What the tick's rules decided that the next tick must know. */
export interface Decided {
  signer: number | null;
  boundary: Memory["boundary"];
  handout: Memory["handout"];
  warming: Memory["warming"];
  warmTried: Memory["warmTried"];
  bootModes: Record<number, "key" | "passive">;
  passivePermitSinceMs: Record<number, number>;
  startBackoff: Record<number, StartStreak>;
}

/** Keeps the rules' decisions (pure). */
export function settle(memory: Memory, d: Decided): Memory {
  return {
    ...memory,
    signer: d.signer,
    boundary: d.boundary,
    handout: d.handout,
    warming: d.warming,
    warmTried: d.warmTried,
    lastBootModes: d.bootModes,
    passivePermitSinceMs: d.passivePermitSinceMs,
    // Kept out of memory until a unit first fails at start (most memories never carry it).
    ...(memory.startBackoff !== undefined || Object.keys(d.startBackoff).length > 0 ? { startBackoff: d.startBackoff } : {}),
  };
}

/** The boundary's key removals were sent (whatever their outcome: the outcomes follow). */
export function markStripped(memory: Memory): Memory {
  return memory.boundary ? { ...memory, boundary: { ...memory.boundary, stripped: true } } : memory;
}

/** Fold the outcomes into memory (pure). `now` is the clock after acting. */
export function applyOutcomes(memory: Memory, outcomes: readonly Outcome[], now: number): Memory {
  const runners = { ...memory.runners };
  const failures = { ...memory.failures };
  for (const o of outcomes) {
    const k = actionKey(o.action);
    if (o.ok) delete failures[k];
    else failures[k] = { count: (failures[k]?.count ?? 0) + 1, lastMs: now };
  }
  let signer = memory.signer;
  let tip = memory.tip;
  let boundary = memory.boundary;
  for (const o of outcomes) {
    const a = o.action;
    if (a.kind === "reportTip") {
      if (o.ok) tip = { lastSentMs: now, lastSentHeight: a.height };
      continue;
    }
    const r = runners[a.id];
    if (!r) continue;
    const m = { ...r };
    runners[a.id] = m;
    switch (a.kind) {
      case "demote":
        if (o.ok) {
          m.keylessProof = true;
          m.lastLeaderIds = [];
          m.holderSinceMs = null;
        }
        break;
      case "promote":
        // Posted, whether or not it was read back: from now on assume it holds the key.
        m.keylessProof = false;
        if (o.leaderId !== undefined) m.lastLeaderIds = [o.leaderId];
        if (o.ok) {
          m.holderSinceMs ??= now;
          m.logsWanted = true;
        }
        if (o.ok && a.purpose === "sign") signer = a.id;
        if (!o.ok && boundary) boundary = { ...boundary, coHolders: boundary.coHolders.filter((id) => id !== a.id) };
        break;
      case "freeze":
        if (o.ok) m.frozenByUs = a.cause;
        break;
      case "thaw":
        if (o.ok) m.frozenByUs = null;
        break;
      default:
        break;
    }
  }
  return { ...memory, runners, signer, tip, boundary, failures };
}
