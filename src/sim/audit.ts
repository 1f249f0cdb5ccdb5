// From the journal to the figures we publish: what was scheduled, produced, double-produced,
// missed, what no runner could have produced (and why), and how long two runners could sign at
// once inside the guarded windows of the pool's slots.

import type { Chain } from "./chain.ts";
import { type JournalEntry, sortByTime } from "./journal.ts";

export type Interval = readonly [startMs: number, endMs: number];

export interface AuditOptions {
  fromMs: number;
  toMs: number;
  /** Window before a slot's start that counts as the slot's (DESIGN "guard") */
  guardMs?: number;
  /** Window after a slot's end that counts as the slot's (DESIGN "margin") */
  marginMs?: number;
}

/** Why no runner could have produced a scheduled slot. */
export type UnproducibleReason =
  /** A schedule holding the slot was still being computed when the slot ended */
  | "schedule_computing"
  /** The runners holding the slot in their schedule were frozen for the whole rest of the slot */
  | "frozen"
  /** No runner process was alive during the slot */
  | "all_down"
  /** A process that had computed the slot was gone (crashed, killed, restarted) by then */
  | "schedule_lost"
  /** Live runners, but none had computed the slot (no key at the boundary, no --secret boot) */
  | "not_scheduled";

/** Why a scheduled slot was not produced: an unproducible reason, "stale_tip" (signed, but on a tip
 *  the network had left: the block is orphaned), or "not_signed" (some runner could have). */
export type LossReason = UnproducibleReason | "stale_tip" | "not_signed";

export interface SlotVerdict {
  epoch: number;
  slot: number;
  startMs: number;
  verdict: "produced" | "missed" | "unproducible";
  reason?: UnproducibleReason;
  /** Every slot not produced: why */
  loss?: LossReason;
  /** No runner was Running with the slot in a schedule it had finished computing, at any point of the
   *  slot's epoch: the only sense in which a slot is truly unproducible */
  neverScheduled?: boolean;
  /** "runner:inc" of every block signed for this slot (stale ones included) */
  signers: string[];
}

export interface AuditReport {
  scheduled: number;
  produced: number;
  doubleProduced: number;
  missed: number;
  unproducible: number;
  unproducibleReasons: Record<string, number>;
  /** Time inside the pool's slot windows during which ≥ 2 runners could sign */
  overlapMs: number;
  /** The same around each epoch boundary [start − guard, start + margin] */
  boundaryOverlapMs: number;
  /** Time anywhere in [fromMs, toMs) during which ≥ 2 runners could sign */
  overlapTotalMs: number;
  /** Time inside the slot windows during which two processes could really sign that slot: key held,
   *  not frozen, the slot in a schedule they finished computing, the enclave not locked (0 means the
   *  guarantee held; `overlapMs` also counts key holders that computed nothing) */
  signOverlapMs: number;
  /** Slot windows in which two processes could sign, one after the other included (0: the guarantee held) */
  sharedWindows: number;
  /** produced / (scheduled − unproducible), in percent; 100 when nothing was producible */
  coveragePct: number;
  /** Every slot not produced, by reason (LossReason) */
  lossReasons: Record<string, number>;
  /** Blocks signed on a stale tip (behind the network): orphaned, so not produced */
  staleBlocks: number;
  /** Slots no runner had in a finished schedule while Running, at any point of the slot's epoch */
  neverScheduled: number;
  /** produced / scheduled, in percent (100 with nothing scheduled): coverage against all slots */
  coverageAllPct: number;
  slots: SlotVerdict[];
}

export interface IncarnationTimeline {
  runner: number;
  inc: number;
  /** Process alive */
  alive: Interval[];
  /** Alive and not frozen */
  active: Interval[];
  /** Alive, not frozen and holding at least one key: it can sign */
  couldSign: Interval[];
  schedules: { epoch: number; slots: ReadonlySet<number>; startMs: number; doneMs: number | null }[];
}

const incKey = (runner: number, inc: number) => `${runner}:${inc}`;

/** Per process incarnation: when it lived, ran unfrozen, could sign, and what it computed.
 *  Intervals still open at the end of the journal end at `endMs`. */
export function timelines(entries: readonly JournalEntry[], endMs = Number.POSITIVE_INFINITY): IncarnationTimeline[] {
  interface Open {
    tl: IncarnationTimeline;
    alive: boolean;
    frozen: boolean;
    keys: number;
    aliveFrom: number;
    activeFrom: number | null;
    signFrom: number | null;
    lastSeen: number;
    beatMs: number | null;
  }
  const open = new Map<string, Open>();
  const out: IncarnationTimeline[] = [];
  /** The process is gone without a word (SIGKILL): no later than `t`, or one beat after its last entry. */
  const close = (o: Open, t: number) => {
    const end = o.beatMs === null ? t : Math.min(t, o.lastSeen + o.beatMs);
    o.alive = false;
    o.frozen = false;
    o.tl.alive.push([o.aliveFrom, end]);
    update(o, end);
  };
  const update = (o: Open, t: number) => {
    const active = o.alive && !o.frozen;
    const sign = active && o.keys > 0;
    if (active && o.activeFrom === null) o.activeFrom = t;
    if (!active && o.activeFrom !== null) {
      o.tl.active.push([o.activeFrom, t]);
      o.activeFrom = null;
    }
    if (sign && o.signFrom === null) o.signFrom = t;
    if (!sign && o.signFrom !== null) {
      o.tl.couldSign.push([o.signFrom, t]);
      o.signFrom = null;
    }
  };
  for (const e of sortByTime(entries)) {
    if (e.kind === "tip_shared") continue;
    const key = incKey(e.runner, e.inc);
    if (e.kind === "proc_start") {
      // One unit has one main process: a new one means every earlier one of this runner is gone.
      for (const other of open.values()) if (other.alive && other.tl.runner === e.runner) close(other, e.t);
      const tl: IncarnationTimeline = { runner: e.runner, inc: e.inc, alive: [], active: [], couldSign: [], schedules: [] };
      out.push(tl);
      const o: Open = {
        tl,
        alive: true,
        frozen: false,
        keys: e.keys.length,
        aliveFrom: e.t,
        activeFrom: null,
        signFrom: null,
        lastSeen: e.t,
        beatMs: e.beatMs ?? null,
      };
      open.set(key, o);
      update(o, e.t);
      continue;
    }
    const o = open.get(key);
    if (!o || !o.alive) continue;
    o.lastSeen = Math.max(o.lastSeen, e.t);
    switch (e.kind) {
      case "proc_exit":
        o.alive = false;
        o.frozen = false;
        o.tl.alive.push([o.aliveFrom, e.t]);
        break;
      case "freeze":
        o.frozen = true;
        break;
      case "thaw":
        o.frozen = false;
        break;
      case "keys":
        o.keys = e.keys.length;
        break;
      case "schedule_start":
        // An enclave without keys computes nothing: no events, nothing to revive later.
        if (e.keys.length > 0) o.tl.schedules.push({ epoch: e.epoch, slots: new Set(e.slots), startMs: e.t, doneMs: null });
        break;
      case "schedule_done": {
        const s = o.tl.schedules.findLast((x) => x.epoch === e.epoch && x.doneMs === null);
        if (s) s.doneMs = e.t;
        break;
      }
      default:
        break;
    }
    update(o, e.t);
  }
  for (const o of open.values()) if (o.alive) close(o, endMs);
  return out;
}

/** "Could sign" intervals per runner incarnation (process alive, not frozen, holding a key). */
export function couldSignIntervals(entries: readonly JournalEntry[], endMs = Number.POSITIVE_INFINITY) {
  return timelines(entries, endMs).map(({ runner, inc, couldSign }) => ({ runner, inc, intervals: couldSign }));
}

/** Sorted, merged intervals of time during which at least `k` of the given intervals overlap. */
export function coveredBy(intervals: readonly Interval[], k: number): Interval[] {
  const points: [number, number][] = [];
  for (const [a, b] of intervals) if (b > a) points.push([a, 1], [b, -1]);
  // Ends before starts at the same instant: touching intervals do not overlap.
  points.sort((x, y) => x[0] - y[0] || x[1] - y[1]);
  const out: Interval[] = [];
  let count = 0;
  let from = 0;
  for (const [t, d] of points) {
    const before = count;
    count += d;
    if (before < k && count >= k) from = t;
    if (before >= k && count < k && t > from) out.push([from, t]);
  }
  return mergeIntervals(out);
}

export function mergeIntervals(intervals: readonly Interval[]): Interval[] {
  const sorted = intervals.filter(([a, b]) => b > a).sort((x, y) => x[0] - y[0]);
  const out: [number, number][] = [];
  for (const [a, b] of sorted) {
    const last = out[out.length - 1];
    if (last && a <= last[1]) last[1] = Math.max(last[1], b);
    else out.push([a, b]);
  }
  return out;
}

/** Total length of the intersection of two sorted, merged interval lists. */
export function intersectionMs(xs: readonly Interval[], ys: readonly Interval[]): number {
  let i = 0;
  let j = 0;
  let total = 0;
  while (i < xs.length && j < ys.length) {
    const [a1, b1] = xs[i]!;
    const [a2, b2] = ys[j]!;
    const lo = Math.max(a1, a2);
    const hi = Math.min(b1, b2);
    if (hi > lo) total += hi - lo;
    if (b1 < b2) i++;
    else j++;
  }
  return total;
}

const touches = (intervals: readonly Interval[], from: number, to: number): boolean =>
  intervals.some(([a, b]) => Math.min(b, to) > Math.max(a, from));

export function audit(entries: readonly JournalEntry[], chain: Chain, opts: AuditOptions): AuditReport {
  const { fromMs, toMs } = opts;
  const guardMs = opts.guardMs ?? 0;
  const marginMs = opts.marginMs ?? 0;
  const tls = timelines(entries);
  const spe = chain.slotsPerEpoch;

  const signers = new Map<number, string[]>();
  /** Slots with at least one block on the network's tip (the parent is the network's last block) */
  const fresh = new Set<number>();
  let staleBlocks = 0;
  for (const e of entries) {
    if (e.kind !== "block") continue;
    const abs = e.epoch * spe + e.slot;
    const list = signers.get(abs) ?? [];
    list.push(incKey(e.runner, e.inc));
    signers.set(abs, list);
    if (e.chainLength > chain.lastBlockAtSlot(abs - 1).height) fresh.add(abs);
    else staleBlocks++;
  }
  const losses: Record<string, number> = {};
  let neverScheduledCount = 0;
  const lose = (v: SlotVerdict, loss: LossReason, epochEndMs: number) => {
    v.loss = loss;
    losses[loss] = (losses[loss] ?? 0) + 1;
    v.neverScheduled = neverScheduled(tls, v.epoch, v.slot, epochEndMs);
    if (v.neverScheduled) neverScheduledCount++;
    return v;
  };

  const slots: SlotVerdict[] = [];
  const reasons: Record<string, number> = {};
  let produced = 0;
  let doubleProduced = 0;
  let missed = 0;
  let unproducible = 0;
  const windows: Interval[] = [];
  for (const pos of chain.leaderSlotsBetween(fromMs, toMs)) {
    const startMs = chain.slotStartMs(pos.epoch, pos.slot);
    const endMs = startMs + chain.slotMs;
    windows.push([startMs - guardMs, endMs + marginMs]);
    const who = signers.get(pos.abs) ?? [];
    const base = { epoch: pos.epoch, slot: pos.slot, startMs, signers: who };
    const epochEndMs = chain.epochStartMs(pos.epoch + 1);
    if (who.length > 1) doubleProduced++;
    if (fresh.has(pos.abs)) {
      produced++;
      slots.push({ ...base, verdict: "produced" });
      continue;
    }
    if (who.length > 0) {
      // Signed, but only on a tip the network had left: lost, and the master's doing.
      missed++;
      slots.push(lose({ ...base, verdict: "missed" }, "stale_tip", epochEndMs));
      continue;
    }
    const reason = whyUnproducible(tls, pos.epoch, pos.slot, startMs, endMs);
    if (reason === null) {
      missed++;
      slots.push(lose({ ...base, verdict: "missed" }, "not_signed", epochEndMs));
    } else {
      unproducible++;
      reasons[reason] = (reasons[reason] ?? 0) + 1;
      slots.push(lose({ ...base, verdict: "unproducible", reason }, reason, epochEndMs));
    }
  }

  const twoSigners = coveredBy(
    tls.flatMap((tl) => tl.couldSign),
    2,
  );
  const boundaries: Interval[] = [];
  for (let e = Math.max(0, chain.epochAt(fromMs)); chain.epochStartMs(e) < toMs; e++) {
    const t = chain.epochStartMs(e);
    if (t >= fromMs) boundaries.push([t - guardMs, t + marginMs]);
  }
  const producible = slots.length - unproducible;
  const phys = signOverlapMs(entries, chain, { fromMs, toMs, guardMs, marginMs });
  return {
    scheduled: slots.length,
    produced,
    doubleProduced,
    missed,
    unproducible,
    unproducibleReasons: reasons,
    overlapMs: intersectionMs(twoSigners, mergeIntervals(windows)),
    boundaryOverlapMs: intersectionMs(twoSigners, mergeIntervals(boundaries)),
    overlapTotalMs: intersectionMs(twoSigners, [[fromMs, toMs]]),
    signOverlapMs: phys.overlapMs,
    sharedWindows: phys.sharedWindows,
    coveragePct: producible > 0 ? (100 * produced) / producible : 100,
    lossReasons: losses,
    staleBlocks,
    neverScheduled: neverScheduledCount,
    coverageAllPct: slots.length > 0 ? (100 * produced) / slots.length : 100,
    slots,
  };
}

/** True when no incarnation was Running (alive, unfrozen, workers started: it had finished computing)
 *  with the slot in a finished schedule at any point from its computation to the epoch's end. */
function neverScheduled(tls: readonly IncarnationTimeline[], epoch: number, slot: number, epochEndMs: number): boolean {
  for (const tl of tls) {
    for (const s of tl.schedules) {
      if (s.epoch !== epoch || !s.slots.has(slot) || s.doneMs === null) continue;
      if (touches(tl.active, s.doneMs, epochEndMs) || tl.active.some(([a, b]) => a <= s.doneMs! && s.doneMs! < b)) return false;
    }
  }
  return true;
}

/** null when some runner could have produced the slot (a miss is then the master's doing). */
function whyUnproducible(
  tls: readonly IncarnationTimeline[],
  epoch: number,
  slot: number,
  startMs: number,
  endMs: number,
): UnproducibleReason | null {
  let computing = false;
  let frozen = false;
  let lost = false;
  let anyAlive = false;
  for (const tl of tls) {
    if (touches(tl.alive, startMs, endMs)) anyAlive = true;
    for (const s of tl.schedules) {
      if (s.epoch !== epoch || !s.slots.has(slot) || s.startMs >= endMs) continue;
      if (s.doneMs === null) {
        lost = true;
        continue;
      }
      if (s.doneMs >= endMs) {
        computing = true;
        continue;
      }
      const from = Math.max(startMs, s.doneMs);
      if (touches(tl.active, from, endMs)) return null;
      if (touches(tl.alive, from, endMs)) frozen = true;
      else lost = true;
    }
  }
  if (computing) return "schedule_computing";
  if (frozen) return "frozen";
  if (!anyAlive) return "all_down";
  if (lost) return "schedule_lost";
  return "not_scheduled";
}

export interface SignOverlap {
  /** Time during which two or more processes could sign the slot at once */
  overlapMs: number;
  worst: { epoch: number; slot: number; ms: number } | null;
  /** Windows in which two or more processes could sign the slot at some time, at once or one after
   *  the other: the guarantee allows one per window, since a slot signed early in its window by one
   *  can be signed again later in it by another */
  sharedWindows: number;
  firstShared: { epoch: number; slot: number; processes: string[] } | null;
}

/** Time inside the guarded windows of the pool's slots during which two or more runner processes
 *  could really sign that slot: alive, not frozen, holding the key, and with the slot in a schedule
 *  they had finished computing. This is what a double production needs; the audit's key-only
 *  figure also counts booting holders that have no schedule yet. */
export function signOverlapMs(
  entries: readonly JournalEntry[],
  chain: Chain,
  opts: { fromMs: number; toMs: number; guardMs: number; marginMs: number },
): SignOverlap {
  const tls = timelines(entries, opts.toMs);
  let total = 0;
  let worst: { epoch: number; slot: number; ms: number } | null = null;
  let sharedWindows = 0;
  let firstShared: SignOverlap["firstShared"] = null;
  const firstEpoch = chain.epochAt(opts.fromMs);
  const lastEpoch = chain.epochAt(opts.toMs);
  for (let epoch = firstEpoch; epoch <= lastEpoch; epoch++) {
    for (const slot of chain.leaderSlots(epoch)) {
      const start = chain.slotStartMs(epoch, slot);
      const w0 = Math.max(opts.fromMs, start - opts.guardMs);
      const w1 = Math.min(opts.toMs, start + chain.params.slotDurationMs + opts.marginMs);
      if (w1 <= w0) continue;
      const per: Interval[] = [];
      const able: string[] = [];
      for (const tl of tls) {
        const sch = tl.schedules.filter((s) => s.epoch === epoch && s.slots.has(slot) && s.doneMs !== null);
        if (sch.length === 0) continue;
        const from = Math.min(...sch.map((s) => s.doneMs!));
        // While any schedule computation holds the enclave, signing waits behind it.
        const locked = mergeIntervals(tl.schedules.map((s) => [s.startMs, s.doneMs ?? opts.toMs] as Interval));
        const before = per.length;
        for (const [a, b] of tl.couldSign) {
          const lo = Math.max(a, from, w0);
          const hi = Math.min(b, w1);
          if (hi > lo) per.push(...subtract([lo, hi], locked));
        }
        if (per.length > before) able.push(incKey(tl.runner, tl.inc));
      }
      // One after the other is as bad as at once: the second signs the slot the first already did.
      if (able.length > 1) {
        sharedWindows++;
        firstShared ??= { epoch, slot, processes: able };
      }
      // Intervals of one incarnation never overlap each other, so ≥2 means two processes.
      const ms = coveredBy(per, 2).reduce((acc, [a, b]) => acc + (b - a), 0);
      if (ms > 0) {
        total += ms;
        if (!worst || ms > worst.ms) worst = { epoch, slot, ms };
      }
    }
  }
  return { overlapMs: total, worst, sharedWindows, firstShared };
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

/** Why a block signed on a stale tip could, or could not, have been avoided by moving the key. */
export interface StaleTipWhy {
  epoch: number;
  slot: number;
  /** Absolute slot of the first network block the signer's parent lacked */
  lackedAbs: number;
  /** When the first other Running process showed that block (null: none did before the slot) */
  shownMs: number | null;
  /** The daemon's first look after that: the next tick on its loop_period grid */
  firstLookMs: number | null;
  /** When the lost slot's guarded window opened */
  windowOpensMs: number;
  /** Whether some instant between the first look and that opening lay outside every window of the
   *  pool's slots: the only place a key can move without two processes sharing a window */
  gapAfterLook: boolean;
}

/**
 * For every stale_tip loss: the first network block the signer lacked, when another runner first had
 * it (its view lag, `viewLagMs` per incarnation), the daemon's first tick after that, and whether a gap
 * between the pool's windows followed before the lost slot's window opened. No gap: the slot was lost
 * under any rule that keeps one signer per window.
 */
export function explainStaleTips(
  entries: readonly JournalEntry[],
  chain: Chain,
  slots: readonly SlotVerdict[],
  opts: { fromMs: number; toMs: number; guardMs: number; marginMs: number; loopPeriodMs: number; viewLagMs: (runner: number, inc: number) => number },
): StaleTipWhy[] {
  const spe = chain.slotsPerEpoch;
  const tls = timelines(entries);
  const windows = mergeIntervals(
    chain.leaderSlotsBetween(opts.fromMs - chain.epochMs, opts.toMs).map((p) => [chain.slotStartMs(p.epoch, p.slot) - opts.guardMs, chain.slotStartMs(p.epoch, p.slot) + chain.slotMs + opts.marginMs] as Interval),
  );
  const running = new Map<string, number>();
  for (const e of entries) if (e.kind === "running") running.set(incKey(e.runner, e.inc), Math.min(running.get(incKey(e.runner, e.inc)) ?? Infinity, e.t));
  const out: StaleTipWhy[] = [];
  for (const v of slots) {
    if (v.loss !== "stale_tip") continue;
    const abs = v.epoch * spe + v.slot;
    const blocks = entries.filter((e): e is Extract<JournalEntry, { kind: "block" }> => e.kind === "block" && e.epoch === v.epoch && e.slot === v.slot);
    const best = blocks.reduce((a, b) => (b.chainLength > a.chainLength ? b : a));
    let lackedAbs = abs - 1;
    while (lackedAbs > 0 && chain.lastBlockAtSlot(lackedAbs - 1).height >= best.chainLength) lackedAbs--;
    const blockMs = chain.absSlotStartMs(lackedAbs);
    const windowOpensMs = v.startMs - opts.guardMs;
    let shownMs: number | null = null;
    for (const tl of tls) {
      if (tl.runner === best.runner) continue;
      const at = Math.max(blockMs + opts.viewLagMs(tl.runner, tl.inc), running.get(incKey(tl.runner, tl.inc)) ?? Infinity);
      if (at < v.startMs && tl.active.some(([a, b]) => a <= at && at < b) && (shownMs === null || at < shownMs)) shownMs = at;
    }
    const firstLookMs = shownMs === null ? null : opts.fromMs + Math.ceil((shownMs - opts.fromMs) / opts.loopPeriodMs) * opts.loopPeriodMs;
    let gapAfterLook = false;
    if (firstLookMs !== null) {
      let t = firstLookMs;
      for (const [a, b] of windows) {
        if (b <= t) continue;
        if (a >= windowOpensMs) break;
        if (a > t) break;
        t = b;
      }
      gapAfterLook = t < windowOpensMs;
    }
    out.push({ epoch: v.epoch, slot: v.slot, lackedAbs, shownMs, firstLookMs, windowOpensMs, gapAfterLook });
  }
  return out;
}
