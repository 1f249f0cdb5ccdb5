// The rules of a tick, one per situation, in the manner of Patroni's ha.py: each is a pure function
// of the Situation (situation.ts), and of the plan so far only where a dependency is real, passed in
// explicitly and named. Each returns its actions (tagged with the rule's name) and notes with reasons.
// decide.ts runs them in order and assembles the plan.

import type { ResolvedConfig } from "../config/types.ts";
import { grantedHandout, otherHostAbleUntilMs } from "./cluster.ts";
import { bootFits, bootLeadMs, bootMode, handoutNeedMs, WARM_COMPUTE_ALLOWANCE_MS } from "./coverage.ts";
import { actionKey, keylessSinceRead, LOGS_REFRESH_MS, mayHoldKey, retryDue } from "./memory.ts";
import { hostHandoverDecision, switchoverDecision, type SwitchoverDecision } from "./intent.ts";
import { inDanger, windowBetween } from "./schedule.ts";
import type { Situation } from "./situation.ts";
import type { UnitState } from "../ports.ts";
import type { Action, Memory, Plan, RunnerView, StartStreak } from "./types.ts";

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
/** A signer a block behind for longer than this many slots signs on a stale tip (a block reaches
 *  every node within a slot: the node's view lags the network by under one), even below signer_max_lag. */
export const STALE_BLOCK_SLOTS = 1;

/** The rules, by the name each action carries. */
export type RuleName =
  | "adopt"
  | "fence-others"
  | "retire-extras"
  | "coverage-move"
  | "failover"
  | "window"
  | "keep-silent-signer"
  | "frozen-runners"
  | "boundary-handout"
  | "housekeeping"
  | "warmth"
  | "tip-report"
  | "boundary-strip"
  | "parting";

export const tag = <A extends Action>(rule: RuleName, a: A): A => ({ ...a, rule });

/** What a rule adds to the plan. */
export interface RuleOut {
  fences: Action[];
  other: Action[];
  notes: string[];
}
const none = (): RuleOut => ({ fences: [], other: [], notes: [] });

// --- Choose the signer, or adopt one -------------------------------------------------------------

export interface SignerChoice {
  /** The signer carried over, or the holder adopted */
  signer: number | null;
  adopted: boolean;
  view: RunnerView | null;
  /** The signer holds the key and is healthy */
  ok: boolean;
  /** Former co-holders a restarted daemon finds in the hand-out's gap: they keep the key until the boundary */
  readopted: ReadonlySet<number>;
  notes: string[];
}

/** Who signs: keep a healthy holder; on adoption pick among holders; never move for height. */
export function chooseSigner(s: Situation): SignerChoice {
  const notes: string[] = [];
  let signer = s.memory.signer;
  const sv = signer !== null ? s.views.get(signer) : undefined;
  if (signer !== null && (!sv || sv.id >= s.config.cntRunners)) signer = null;
  const holders = s.scope.filter((v) => v.cap === "holder" && s.healthy(v));
  const adopted = signer === null && holders.length > 0;
  if (adopted) {
    signer = best(holders, s.pendingAhead, s.ref, s.config.maxOffset).id;
    notes.push(`adopt #${signer} as signer (holds the key)`);
  }
  const view = signer !== null ? s.views.get(signer)! : null;
  const ok = view !== null && view.cap === "holder" && s.healthy(view);
  // A daemon restarted during the hand-out finds several holders: the signer and the co-holders the
  // last daemon armed. In the gap they may keep the key (their dead-man switches are re-armed with
  // an idempotent POST) rather than entering the new epoch cold.
  const b = s.memory.boundary;
  const readopt = adopted && s.handoutGap() && !(b && b.epoch === s.curEpoch! + 1);
  const readopted = new Set(readopt ? holders.filter((v) => v.id !== signer && !v.busy).map((v) => v.id) : []);
  return { signer, adopted, view, ok, readopted, notes };
}

/** A daemon that died mid-hand-out may have left the adopted holder's dead-man switch armed. */
export function adoptDisarm(c: SignerChoice, newSigner: number | null): Action[] {
  if (!(c.adopted && newSigner === c.signer && c.signer !== null)) return [];
  return [tag("adopt", { kind: "disarm", id: c.signer, reason: "adopted as signer; any boundary dead-man switch must not fire" })];
}

// --- Coverage moves: a healthy signer that cannot produce the coming slots ------------------------

/** A healthy signer that cannot produce the coming slots (nothing to sign, or a stale tip) hands the
 *  key on in the gap before the next window, through the failover path (fences, window rule). */
export function coverageMove(s: Situation, c: SignerChoice): { target: RunnerView; why: string } | null {
  const sv = c.view;
  if (!c.ok || !sv || !s.epochKnown || s.epochStartMs === null) return null;
  return plannedMove({
    signer: sv,
    standbys: s.scope.filter((v) => v.id !== c.signer && v.cap === "keyless" && s.healthy(v) && !v.busy && !s.held(v.id)),
    pendingAhead: s.pendingAhead,
    signerLogsFresh: (s.mem(sv.id).logsReadMs ?? -Infinity) >= s.epochStartMs + (s.clock?.slotMs ?? 0),
    ref: s.ref,
    config: s.config,
    nextWindowInMs: s.nextWindowInMs,
    leadMs: s.leadMs,
    behindForMs: s.behindForMs(sv),
    slotMs: s.clock?.slotMs ?? 0,
  });
}

// --- Operator intent: a switchover asked for, or implied by a hold on the signer (intent.ts) ----------

/** Replaces the coverage move when the operator asked for one; it takes the same failover path. */
export function operatorMove(s: Situation, c: SignerChoice): SwitchoverDecision | null {
  const sv = c.view;
  const clock = s.clock;
  const b = s.memory.boundary;
  const gap = {
    nextWindowInMs: s.nextWindowInMs,
    // Room for the demotion, the promotion and their read-backs before the next window opens
    leadMs: 2 * handoutNeedMs(s.config) + s.config.loopPeriodMs,
    // The hand-out's stretch before the boundary (co-holders armed, or about to be)
    boundaryNear: (s.nextBoundary !== null && s.nextBoundary - s.now <= s.config.eventActionMs + BOUNDARY_MIN_LEAD_MS) || (b !== null && clock !== null && s.now < clock.epochStartMs(b.epoch)),
    epochKnown: s.epochKnown,
  };
  // Cross-host (switchover --host): whether or not a runner here signs, the same gap rule.
  const host = s.obs.intent?.switchover?.host;
  // Not while any boundary co-holder may still hold the key (here, or on a host granted by this one).
  if (host) {
    const epoch = clock ? clock.epochAt(s.now) : null;
    const slotsLeft = c.signer === null || !clock ? 0 : s.mem(c.signer).pendingSlots.filter((abs) => clock.epochOf(abs) === epoch && clock.slotStartMs(abs) > s.now).length;
    const targetMayBeWarm = epoch !== null && s.obs.cluster?.grantedEpoch === epoch;
    return hostHandoverDecision({ ...gap, boundaryNear: gap.boundaryNear || (b !== null && !b.stripped), host, targetMayBeWarm, slotsLeft, force: s.obs.intent?.switchover?.force ?? false });
  }
  if (!c.ok || !sv) return null;
  return switchoverDecision({
    intent: s.obs.intent ?? { holds: {}, switchover: null },
    signer: sv,
    standbys: s.scope.filter((v) => v.id !== c.signer && v.cap === "keyless" && s.healthy(v) && !v.busy),
    pendingAheadSlots: (id) => s.mem(id).pendingSlots.filter((abs) => !clock || clock.slotStartMs(abs) > s.now),
    pick: (vs) => best(vs, s.pendingAhead, s.ref, s.config.maxOffset),
    ...gap,
  });
}

// --- Fencing ---------------------------------------------------------------------------------------

/** May sign and is no exempt or readopted co-holder; a booting holder only near a window. Booting key
 *  holders cannot sign before they have computed a schedule, which the master sees (Running) and
 *  answers with a demotion that the enclave applies before any event; so they are frozen only near a
 *  known window, where an early finish could meet a slot. */
export function threat(s: Situation, c: SignerChoice, v: RunnerView): boolean {
  return mayHoldKey(v.cap) && !s.exempt(v.id) && !c.readopted.has(v.id) && !(v.cap === "booting-holder" && !s.bootNear(v.id));
}

/** How to fence a runner that may be able to sign (null: it cannot). */
export function fenceRunner(s: Situation, v: RunnerView, why: string, rule: RuleName): Action | null {
  if (v.cap === "holder") return tag(rule, { kind: "demote", id: v.id, reason: why, leaderIds: v.leaderIds ?? s.mem(v.id).lastLeaderIds });
  if (v.cap === "unknown") return tag(rule, { kind: "freeze", id: v.id, cause: "fence", reason: `${why}; its REST does not answer, so its keys are unknown` });
  if (v.cap === "booting-holder") {
    return tag(rule, { kind: "freeze", id: v.id, cause: "boot", reason: `${why}; it boots holding the key (--secret), a leader slot is near` });
  }
  return null;
}

function fenceAll(s: Situation, vs: readonly RunnerView[], why: (v: RunnerView) => string, rule: RuleName): Action[] {
  return vs.flatMap((v) => fenceRunner(s, v, why(v), rule) ?? []);
}

/** Units beyond cnt_runners (left from a larger setup) are retired; whether they hold the key is not
 *  worth finding out, since SIGKILL then stop is safe either way. A fence, so no promotion races it. */
export function retireExtras(s: Situation): Action[] {
  const out: Action[] = [];
  for (const o of s.obs.runners) {
    const u = o.unit;
    if (o.id < s.config.cntRunners || !u) continue;
    if (u.mainPid > 0 || (u.activeState !== "inactive" && u.activeState !== "failed")) {
      out.push(tag("retire-extras", { kind: "retire", id: o.id, reason: `runner #${o.id} is beyond cnt_runners (${s.config.cntRunners})` }));
    }
  }
  return out;
}

// --- Failover --------------------------------------------------------------------------------------

export interface FailoverOut extends RuleOut {
  promote: Plan["promote"];
  /** Who signs after this tick's plan */
  newSigner: number | null;
}

type Planned = { target: RunnerView; why: string } | null;

/** A healthy signer keeps the key (every other threat fenced); else promote the best standby once
 *  everyone else is proven unable to sign, subject to the keep-silent-signer and window rules. */
export function failover(s: Situation, c: SignerChoice, planned: Planned): FailoverOut {
  const all = [...s.views.values()];
  if (c.ok && !planned) {
    const fences = fenceAll(s, all.filter((v) => v.id !== c.signer && threat(s, c, v)), (v) => `#${v.id} is not the signer`, "fence-others");
    return { ...none(), fences, promote: null, newSigner: c.signer };
  }
  const lossWhy = planned ? planned.why : describeSignerLoss(c.view, c.signer, s.stuck);
  // A busy holder (computing the new epoch after the boundary hand-out) can take over as it is:
  // it needs no POST, so the locked enclave does not matter.
  const candidates = s.scope.filter((v) => s.healthy(v) && (!v.busy || v.cap === "holder") && !s.held(v.id));
  const pick = planned ? planned.target : candidates.length > 0 ? best(candidates, s.pendingAhead, s.ref, s.config.maxOffset) : null;
  const silent = pick ? keepSilentSigner(s, c, pick) : null;
  if (silent) return holdBack(s, c, { waitFor: null, lossWhy, notes: [silent], rule: "keep-silent-signer" });
  const wait = pick ? windowRule(s, pick, lossWhy) : null;
  if (wait) return holdBack(s, c, { waitFor: wait.waitFor, lossWhy, notes: [wait.note], rule: "window" });
  if (pick) return handOver(s, c, pick, lossWhy, planned ? "coverage-move" : "failover");
  return holdBack(s, c, { waitFor: null, lossWhy, notes: [], rule: "fence-others" });
}

/** A signer frozen by someone else: while stopped it cannot sign; once thawed it carries on. */
function externallyFrozen(s: Situation, c: SignerChoice): boolean {
  return c.view?.cap === "frozen" && c.signer !== null && s.mem(c.signer).frozenByUs === null;
}

/**
 * A signer whose REST went silent may still be signing its schedule. When no standby has a schedule
 * for the slots left in this epoch, moving the key would lose them all for certain: keep the silent
 * signer (alone, so no risk) until the boundary needs a healthy key holder. The same for a signer
 * frozen by someone else: killing it would throw its schedule away. Returns the note, or null.
 */
export function keepSilentSigner(s: Situation, c: SignerChoice, pick: RunnerView): string | null {
  const sv = c.view;
  if (!sv) return null;
  const keepable = sv.cap === "unknown" || externallyFrozen(s, c) || (sv.cap === "holder" && !s.stuck(sv));
  const beforeBoundary = s.nextBoundary === null || s.nextBoundary - s.now > s.config.eventActionMs + BOUNDARY_MIN_LEAD_MS;
  if (!(keepable && s.pendingAhead(pick.id) === 0 && s.pendingAhead(sv.id) > 0 && beforeBoundary)) return null;
  return `signer #${sv.id} is unwell (${describeSignerLoss(sv, c.signer, s.stuck)}) but no standby has a schedule for the ${s.pendingAhead(sv.id)} slots left; keeping it until the boundary`;
}

/**
 * A window belongs to one signer. Inside it the key moves only if everyone else was proven unable to
 * sign since before it opened; otherwise whoever may have signed its slot already (at slot start,
 * before going silent) would share it with the new signer, who signs it again. The handover waits for
 * the window to close: that slot is the old signer's, done or lost. With this epoch's schedule
 * unknown, any instant may be inside a window that opened up to one window length ago.
 */
export function windowRule(s: Situation, pick: RunnerView, lossWhy: string): { waitFor: "window" | "schedule"; note: string } | null {
  const clock = s.clock;
  if (!clock) return null;
  const open = s.windows.find((w) => w.startMs <= s.now && s.now < w.endMs) ?? null;
  const openedBy = open ? open.startMs : s.epochKnown ? null : s.now - (s.config.slotGuardMs + clock.slotMs + s.config.slotMarginMs);
  if (openedBy === null) return null;
  // A runner still booting has never been Running in this incarnation, so it has computed no
  // schedule and signed nothing yet (whether it may sign later is the fences' business); but the
  // incarnation it replaced may have signed in the window: judged per window, not per process.
  const bootedBefore = (v: RunnerView) => v.cap === "booting-holder" && !s.mem(v.id).everRunning && s.mem(v.id).ableUntilMs <= openedBy;
  const unableBefore = (v: RunnerView) => s.mem(v.id).unableSinceMs !== null && s.mem(v.id).unableSinceMs! <= openedBy;
  const mayHaveUsed: { id: number | string }[] = [...s.views.values()].filter((v) => v.id !== pick.id && !bootedBefore(v) && !unableBefore(v));
  // Cluster gate: the previous signing host may have signed in a window that opened before its takeover was safe.
  if (otherHostAbleUntilMs(s.obs.cluster) > openedBy) mayHaveUsed.push({ id: "the previous signing host" });
  if (mayHaveUsed.length === 0) return null;
  const which = open
    ? `the window of slot ${clock.epochOf(open.absSlot)}.${open.absSlot % clock.slotsPerEpoch} closes`
    : `no window can be open (epoch ${s.curEpoch}'s schedule is unknown)`;
  return {
    waitFor: open ? "window" : "schedule",
    note: `${lossWhy}; #${pick.id} takes over once ${which}: ${mayHaveUsed.map((v) => (typeof v.id === "number" ? `#${v.id}` : v.id)).join(", ")} may have signed in it`,
  };
}

/** The key moves to `pick`: everyone else who may sign is fenced first; a frozen former signer killed. */
function handOver(s: Situation, c: SignerChoice, pick: RunnerView, why: string, rule: RuleName): FailoverOut {
  const sv = c.view;
  const threats = [...s.views.values()].filter((v) => v.id !== pick.id && threat(s, c, v));
  const fences = fenceAll(s, threats, (v) => (v.id === c.signer ? why : `#${v.id} is not the signer`), rule);
  // A frozen former signer still holds the key and would sign when thawed: kill it first.
  if (sv && c.signer !== pick.id && sv.cap === "frozen" && sv.pid > 0) {
    fences.push(tag(rule, { kind: "kill", id: sv.id, pid: sv.pid, reason: `${why}; frozen with the key, fenced by SIGKILL` }));
  }
  const reason = `${why}; #${pick.id} is the best standby (${s.pendingAhead(pick.id)} events ahead, height ${pick.height ?? "?"})`;
  if (pick.cap === "holder") {
    // It may be a boundary co-holder whose dead-man switch is armed: the signer must keep running.
    const disarm = tag(rule, { kind: "disarm", id: pick.id, reason: "it signs now; its boundary dead-man switch must not fire" });
    return { fences, promote: null, other: [disarm], notes: [`${reason}; it already holds the key`], newSigner: pick.id };
  }
  // The fences must hold before the next window opens, or its slot could be signed twice.
  const next = s.windows.find((w) => w.startMs > s.now);
  const promote = tag(rule, { kind: "promote" as const, purpose: "sign" as const, id: pick.id, reason, ...(next ? { fencedByMs: next.startMs } : {}) });
  return { fences, promote, other: [], notes: [], newSigner: pick.id };
}

/**
 * Nobody takes over. One runner that may sign is no risk; keep the old signer as that one (a slot it
 * still signs is better than none) and fence the rest. Waiting out a known window, the old signer
 * keeps it (the slot is its own, signed or lost) and every other runner that may hold the key is
 * fenced, even a lone one. With the schedule unknown there is no end to wait for: everyone is
 * fenced, and the wait runs from then.
 */
function holdBack(s: Situation, c: SignerChoice, x: { waitFor: "window" | "schedule" | null; lossWhy: string; notes: string[]; rule: RuleName }): FailoverOut {
  const sv = c.view;
  const keep = x.waitFor !== "schedule" && sv && (mayHoldKey(sv.cap) || externallyFrozen(s, c)) ? sv.id : null;
  const others = [...s.views.values()].filter((v) => v.id !== keep && threat(s, c, v));
  const fences =
    keep !== null || others.length > 1 || x.waitFor ? fenceAll(s, others, (v) => (v.id === c.signer ? x.lossWhy : `#${v.id} is not the signer`), x.rule) : [];
  const notes = [...x.notes];
  if (c.signer !== null && !x.waitFor) notes.push(`signer #${c.signer} is unhealthy (${x.lossWhy}) and no standby can take over`);
  return { fences, promote: null, other: [], notes, newSigner: keep };
}

// --- Frozen runners --------------------------------------------------------------------------------

/** Thaw boot-frozen runners between windows; kill frozen former key holders (once a new signer is
 *  chosen: with none, the frozen one may be the only key left). Skips what this tick fences. */
export function frozenRunners(s: Situation, after: { fenced: ReadonlySet<number>; newSigner: number | null }): Action[] {
  const out: Action[] = [];
  // No signer and nobody healthy to promote (say the signer hung at a boundary and was frozen while
  // the co-holders' dead-man switches fired): a runner frozen with the key never recovers by itself,
  // so it is killed and systemd restarts it to boot afresh. Found by the property test's coverage
  // check: every runner frozen, every later epoch lost.
  // Likewise on a cluster host that may not sign (lease lost: its signer's dead-man switch fired):
  // none of its runners may hold the key, so one frozen with it is killed and boots passive.
  const stranded =
    (after.newSigner === null && !s.obs.runners.some((o) => o.id < s.config.cntRunners && s.healthy(s.views.get(o.id)!))) ||
    (s.obs.cluster !== undefined && s.obs.cluster !== null && !s.obs.cluster.maySign);
  for (const o of s.obs.runners) {
    const v = s.views.get(o.id)!;
    if (!v.frozen || after.fenced.has(v.id)) continue;
    const m = s.mem(v.id);
    if (m.frozenByUs === "boot" && (!s.bootNear(v.id) || m.bootedPassive)) {
      out.push(tag("frozen-runners", { kind: "thaw", id: v.id, reason: "no leader slot window near; let it finish booting" }));
    } else if (m.frozenByUs === "fence" || (m.frozenByUs === null && !m.keylessProof)) {
      if (v.id !== after.newSigner && after.newSigner !== null && v.pid > 0) {
        out.push(tag("frozen-runners", { kind: "kill", id: v.id, pid: v.pid, reason: "frozen while it may hold the key; SIGKILL so it can never wake and sign" }));
      } else if (stranded && v.id < s.config.cntRunners && !s.held(v.id) && v.pid > 0) {
        out.push(tag("frozen-runners", { kind: "kill", id: v.id, pid: v.pid, reason: "frozen while it may hold the key and no runner can sign; SIGKILL so systemd restarts it" }));
      }
    }
  }
  return out;
}

// --- The epoch boundary ----------------------------------------------------------------------------

export interface HandoutOut extends RuleOut {
  boundary: Memory["boundary"];
  handout: Memory["handout"];
  result: Plan["handout"];
}

/**
 * The epoch boundary: give healthy standbys the key so they compute the next epoch. Handed out in
 * whatever gap there is: once the epoch's last window has closed, while the POSTs and their read-back
 * fit before the boundary. Done or skipped, it is counted once, with why. Needs the signer this tick
 * settles on, and whether this tick fences anyone (no hand-out then).
 */
export function boundaryHandout(s: Situation, c: SignerChoice, after: { newSigner: number | null; fencesThisTick: number }): HandoutOut {
  const out: HandoutOut = { ...none(), boundary: s.memory.boundary, handout: s.memory.handout, result: undefined };
  if (out.boundary && s.boundaryStart !== null && s.now >= s.boundaryStart + LOGS_REFRESH_MS) out.boundary = null;
  const h0 = out.handout;
  if (h0 && !h0.counted && s.curEpoch !== null && s.curEpoch >= h0.epoch) {
    out.result = { epoch: h0.epoch, result: "skipped", reason: h0.why };
    out.notes.push(`boundary hand-out for epoch ${h0.epoch} skipped: ${h0.why}`);
    out.handout = { ...h0, counted: true };
  }
  const { clock, nextBoundary, curEpoch, config, now } = s;
  if (!clock || nextBoundary === null || curEpoch === null) return out;
  if ((out.boundary !== null && out.boundary.epoch === curEpoch + 1) || nextBoundary - now > config.eventActionMs) return out;
  const lead = nextBoundary - now;
  const epoch = curEpoch + 1;
  // Each co-holder gets a dead-man switch: frozen before slot 1's window could open unless the
  // daemon strips its key first. A daemon killed mid-hand-out cannot leave several signers.
  const leaseAtMs = nextBoundary + clock.slotMs - config.slotGuardMs - LEASE_SAFETY_MS;
  const leaseRoom = leaseAtMs - nextBoundary >= LEASE_MIN_MS;
  // Cluster: a host that may not sign has no signer and no schedule; the signing host's grant for
  // this boundary stands for both (master/cluster.ts grantedHandout), and every standby takes part.
  const granted = grantedHandout(s.obs.cluster, epoch, now);
  const co = s.scope.filter((v) => (granted || v.id !== after.newSigner) && ((v.cap === "keyless" && !v.busy) || c.readopted.has(v.id)) && s.healthy(v) && !s.held(v.id));
  const why = handoutBlocked({
    signerSettled: granted || (after.newSigner !== null && after.newSigner === c.signer && c.ok),
    epochKnown: granted || s.epochKnown,
    fences: after.fencesThisTick,
    leaseRoom,
    windowBefore: !granted && windowBetween(s.windows, now, nextBoundary),
    lead,
    need: handoutNeedMs(config),
    standbys: co.length,
    config,
  });
  if (!leaseRoom) {
    out.notes.push(`no boundary hand-out: slot_guard ${config.slotGuardMs} ms leaves under ${LEASE_MIN_MS} ms of slot 1 to strip the standbys' keys`);
    out.boundary = { epoch, coHolders: [] };
  }
  const counted = out.handout?.epoch === epoch && out.handout.counted;
  if (why !== null) {
    // Holders a restarted daemon kept for a hand-out that cannot happen are ordinary extra holders.
    for (const id of c.readopted) {
      const f = fenceRunner(s, s.views.get(id)!, `#${id} is not the signer (no boundary hand-out: ${why})`, "boundary-handout");
      if (f) out.fences.push(f);
    }
    if (!counted) out.handout = { epoch, why, counted: false };
    return out;
  }
  for (const v of co) {
    const reason = `epoch ${epoch} starts in ${(lead / 1000).toFixed(1)} s and no leader slot is before it: #${v.id} takes the key to compute the new schedule`;
    out.other.push(tag("boundary-handout", { kind: "promote", purpose: "boundary", leaseAtMs, id: v.id, reason }));
  }
  out.boundary = { epoch, coHolders: co.map((v) => v.id) };
  if (!counted) {
    out.result = { epoch, result: "done", reason: `${co.length} standby(s), ${(lead / 1000).toFixed(1)} s before the boundary` };
    out.notes.push(`boundary hand-out for epoch ${epoch}: ${co.map((v) => `#${v.id}`).join(", ")} take the key ${(lead / 1000).toFixed(1)} s before the boundary`);
  }
  out.handout = { epoch, why: "done", counted: true };
  return out;
}

// --- Housekeeping ----------------------------------------------------------------------------------

/** A runner unit whose runs keep failing at start is started again after this, doubling… */
export const START_BACKOFF_BASE_MS = 1_000;
/** …up to this: a unit that exits 78 (a config error) would otherwise be started at every tick. */
export const START_BACKOFF_MAX_MS = 300_000;
/** A main process that ended this soon after it started failed at its start. */
export const QUICK_EXIT_MS = 5_000;
/** EX_CONFIG: the runner wrapper's configuration error (the unit's RestartPreventExitStatus). */
export const EXIT_CONFIG = 78;

/** Why starting this stopped unit again at once would only fail again (null: it would not). */
export function failsAtStart(u: UnitState): string | null {
  const e = u.lastExit;
  if (!e) return null;
  if (e.code === "exited" && e.status === EXIT_CONFIG) return `its last run exited ${EXIT_CONFIG} (a configuration error: see the unit's journal)`;
  if (e.result !== "success" && e.ranMs !== null && e.ranMs < QUICK_EXIT_MS) return `its last run failed within ${QUICK_EXIT_MS / 1000} s of its start (${e.result})`;
  return null;
}

const backoffMs = (count: number) => Math.min(START_BACKOFF_MAX_MS, START_BACKOFF_BASE_MS * 2 ** count);

export interface HousekeepingOut {
  actions: Action[];
  /** The streaks of runs failing at start, for memory */
  startBackoff: Record<number, StartStreak>;
  /** The same for the plan: why, and how long the next start waits */
  heldBack: Record<number, { why: string; waitMs: number }>;
}

/** Start stopped runners (backing off those whose runs fail at start), kill endless boots, restart
 *  stuck or dead standbys. Skips what this tick fences and the signer it settles on. */
export function housekeeping(s: Situation, after: { fenced: ReadonlySet<number>; newSigner: number | null }): HousekeepingOut {
  const { config, now } = s;
  const out: HousekeepingOut = { actions: [], ...carryStreaks(s) };
  const hk = <A extends Action>(a: A) => out.actions.push(tag("housekeeping", a));
  for (const o of s.obs.runners) {
    const v = s.views.get(o.id)!;
    const m = s.mem(v.id);
    const u = o.unit;
    if (v.id >= config.cntRunners) continue;
    // Operator gate: a held runner is not started, restarted or killed (one stopped by hand stays stopped).
    if (after.fenced.has(v.id) || v.id === after.newSigner || s.held(v.id)) continue;
    if (u && (u.activeState === "inactive" || u.activeState === "failed")) {
      startOrWait(s, u, out);
      continue;
    }
    if (v.frozen) continue;
    const bootingFor = now - (u?.sinceMs ?? m.firstSeenMs);
    if (u?.activeState === "active" && !v.running && v.responsive && bootingFor > config.maxBootMs) {
      hk({ kind: "kill", id: v.id, pid: v.pid, reason: `still bootstrapping after ${Math.round(bootingFor / 1000)} s (max_boot ${config.maxBootMs / 1000} s)` });
      continue;
    }
    if (v.cap === "keyless" && s.stuck(v) && !(s.danger && config.keyMode === "boot")) {
      if (!inDanger(s.windows, now, config.startBeforeEventMs) || config.keyMode === "rest") {
        hk({ kind: "restart", id: v.id, reason: `stuck at height ${v.height} while the best known is ${s.ref} (max_offset ${config.maxOffset})` });
      }
      continue;
    }
    if (v.cap === "keyless" && m.deadSinceMs !== null && now - m.deadSinceMs > DEAD_RESTART_MS && v.pid > 0) {
      hk({ kind: "kill", id: v.id, pid: v.pid, reason: `REST has not answered for ${Math.round((now - m.deadSinceMs) / 1000)} s` });
    }
  }
  return out;
}

/** Streaks of runs failing at start last as long as the unit does not run past QUICK_EXIT_MS (or is
 *  found stopped after a run that did not fail at start). */
function carryStreaks(s: Situation): Omit<HousekeepingOut, "actions"> {
  const startBackoff: Record<number, StartStreak> = {};
  const heldBack: Record<number, { why: string; waitMs: number }> = {};
  for (const o of s.inScope) {
    const st = s.memory.startBackoff?.[o.id];
    const u = o.unit;
    if (!st) continue;
    const ranLong = u !== null && u.activeState === "active" && u.mainPid > 0 && u.sinceMs !== null && s.now - u.sinceMs >= QUICK_EXIT_MS;
    const stoppedClean = u !== null && (u.activeState === "inactive" || u.activeState === "failed") && failsAtStart(u) === null;
    if (ranLong || stoppedClean) continue;
    startBackoff[o.id] = st;
    heldBack[o.id] = { why: st.why, waitMs: backoffMs(st.count) };
  }
  return { startBackoff, heldBack };
}

/** Start a stopped unit now, or wait out its back-off: 1 s after it failed at start, then doubling
 *  from each start the master sent, up to 5 min. */
function startOrWait(s: Situation, u: UnitState, out: HousekeepingOut): void {
  const reason = `unit is ${u.activeState}`;
  const why = failsAtStart(u);
  if (why === null) {
    out.actions.push(tag("housekeeping", { kind: "start", id: u.id, reason }));
    return;
  }
  const prev = s.memory.startBackoff?.[u.id];
  const count = prev?.count ?? 0;
  const waitMs = backoffMs(count);
  const from = prev?.lastMs ?? u.sinceMs ?? s.now;
  if (s.now - from < waitMs) {
    out.heldBack[u.id] = { why, waitMs };
    return;
  }
  out.actions.push(tag("housekeeping", { kind: "start", id: u.id, reason: `${reason}; ${why}: started again after ${waitMs / 1000} s` }));
  out.startBackoff[u.id] = { count: count + 1, lastMs: s.now, why };
  out.heldBack[u.id] = { why, waitMs: backoffMs(count + 1) };
}

// --- Warmth ----------------------------------------------------------------------------------------

export interface WarmthOut extends RuleOut {
  warming: Memory["warming"];
  warmTried: NonNullable<Memory["warmTried"]>;
}

/** Warmth: standbys without this epoch's schedule (cold) cannot take over mid-epoch. In key mode boot
 *  one at a time is restarted with --secret, when its boot fits between the windows; the signer must
 *  be settled and unchanged this tick, and a runner fenced this tick is left alone. */
export function warmth(s: Situation, c: SignerChoice, after: { fenced: ReadonlySet<number>; newSigner: number | null }): WarmthOut {
  const { memory, curEpoch, config, now, views } = s;
  const out: WarmthOut = { ...none(), warming: null, warmTried: { epoch: -1, ids: [] } };
  const coldIds = coldStandbys(s, after.newSigner);
  const settled = c.ok && after.newSigner === c.signer;
  let warming = s.warmingId !== null && s.pendingAhead(s.warmingId) === 0 ? memory.warming! : null;
  let warmTried = memory.warmTried && memory.warmTried.epoch === curEpoch ? memory.warmTried : { epoch: curEpoch ?? -1, ids: [] };
  // A warming boot that ended cold (or ran out of time) is not tried again for that incarnation.
  const w0 = memory.warming;
  if (w0?.restarted && w0.epoch === curEpoch && views.has(w0.id)) {
    const pidNow = views.get(w0.id)!.pid;
    if (warming === null || (coldIds.includes(w0.id) && pidNow !== w0.pid)) {
      if (s.pendingAhead(w0.id) === 0) warmTried = { epoch: curEpoch!, ids: [...warmTried.ids, `${w0.id}:${pidNow}`] };
      warming = null;
    }
  }
  // The permit saying key was written after the tick that chose it: restart now, if still cold.
  if (warming && !warming.restarted) {
    if (coldIds.includes(warming.id) && !after.fenced.has(warming.id) && settled) {
      out.other.push(tag("warmth", { kind: "restart", id: warming.id, reason: `#${warming.id} lacks epoch ${curEpoch}'s schedule: it reboots with --secret to compute it` }));
      warming = { ...warming, restarted: true, pid: views.get(warming.id)!.pid, untilMs: now + config.maxBootMs + WARM_COMPUTE_ALLOWANCE_MS };
    } else warming = null;
  }
  if (coldIds.length > 0 && config.keyMode === "rest") {
    out.notes.push(`key mode rest: ${coldIds.map((id) => `#${id}`).join(", ")} lack epoch ${curEpoch}'s schedule; no mid-epoch remedy exists until the next boundary`);
  }
  if (coldIds.length > 0 && config.keyMode === "boot" && warming === null && settled) {
    const chosen = chooseWarming(s, coldIds, warmTried, after);
    if (chosen) {
      out.notes.push(chosen.note);
      warming = chosen.warming;
    }
  }
  return { ...out, warming, warmTried };
}

/** Which cold standby to warm now, if any: untried in this incarnation, while another healthy standby
 *  stays, no runner is booting, and its boot fits and ends before slots that remain. */
function chooseWarming(
  s: Situation,
  coldIds: readonly number[],
  warmTried: { ids: string[] },
  after: { fenced: ReadonlySet<number>; newSigner: number | null },
): { note: string; warming: NonNullable<Memory["warming"]> } | null {
  const { memory, config, now, views, windows, clock, curEpoch } = s;
  const bootMsOf = (id: number) => Math.max(memory.bootObservedMs ?? config.maxBootMs, memory.bootObservedByRunnerMs?.[id] ?? 0);
  const anyBooting = s.scope.some((v) => v.unitActive && !v.running);
  const tried = (c: number) => warmTried.ids.includes(`${c}:${views.get(c)!.pid}`);
  const id = coldIds.find((c) => !tried(c) && s.scope.some((v) => v.id !== c && v.id !== after.newSigner && s.healthy(v)));
  if (id === undefined) return null;
  const fit = bootFits(windows, now, bootMsOf(id), bootLeadMs(config));
  // Worth it only if it is warm (booted, frozen through the windows on the way) before slots that remain.
  const readyAt = fit ? now + bootMsOf(id) + fit.frozenMs : Infinity;
  const slotsAfter = windows.some((w) => clock!.epochOf(w.absSlot) === curEpoch && w.startMs > readyAt);
  if (anyBooting || after.fenced.has(id) || !fit.fits || !slotsAfter) return null;
  return {
    note: `#${id} lacks epoch ${curEpoch}'s schedule: its boot permit says key, and it restarts next tick (a ${Math.round(bootMsOf(id) / 1000)} s boot fits between the windows)`,
    warming: { id, epoch: curEpoch!, untilMs: now + 10 * config.loopPeriodMs + config.restTimeoutMs, restarted: false },
  };
}

/** Healthy key-less standbys whose whole, fresh logs show no slot ahead while this epoch has some. */
function coldStandbys(s: Situation, newSigner: number | null): number[] {
  const { clock, curEpoch, epochStartMs, windows, now } = s;
  if (!clock || curEpoch === null || !s.epochKnown || epochStartMs === null) return [];
  if (!windows.some((w) => clock.epochOf(w.absSlot) === curEpoch && w.startMs > now)) return [];
  return s.scope
    .filter((v) => v.id !== newSigner && v.cap === "keyless" && s.healthy(v) && !v.busy && s.pendingAhead(v.id) === 0 && !s.held(v.id))
    .filter((v) => (s.mem(v.id).logsReadMs ?? -Infinity) >= epochStartMs + clock.slotMs && keylessSinceRead(s.mem(v.id)))
    .map((v) => v.id);
}

// --- Boot modes ------------------------------------------------------------------------------------

/** How each runner boots if (re)started now: the one being warmed with the key; the others with it
 *  only when the boot fits between the windows (frozen with event_action's lead), else passive. And
 *  since when every permit said passive: the permits of the last plan are on disk by now; with this
 *  plan passive too, every permit from now on says passive until a plan says otherwise. */
export function bootModes(s: Situation, warming: Memory["warming"]): { bootModes: Record<number, "key" | "passive">; passivePermitSinceMs: Record<number, number> } {
  const { config, memory, now } = s;
  const modes: Record<number, "key" | "passive"> = {};
  const modeNow = bootMode(config, s.windows, now, memory.bootObservedMs ?? null, s.leadMs).mode;
  for (const o of s.inScope) modes[o.id] = warming?.id === o.id && config.keyMode === "boot" ? "key" : modeNow;
  const passivePermitSinceMs: Record<number, number> = {};
  for (const o of s.inScope) {
    if (modes[o.id] === "passive" && memory.lastBootModes?.[o.id] === "passive") passivePermitSinceMs[o.id] = memory.passivePermitSinceMs?.[o.id] ?? now;
  }
  return { bootModes: modes, passivePermitSinceMs };
}

// --- Tip report ------------------------------------------------------------------------------------

/** Share the tip with PoolTool: only rising heights, at most every send_wait. */
export function tipReport(s: Situation, newSigner: number | null): Action[] {
  const { config, memory, now } = s;
  if (!config.pooltool || newSigner === null) return [];
  const h = s.views.get(newSigner)?.height ?? null;
  if (h !== null && h > memory.tip.lastSentHeight && now - memory.tip.lastSentMs >= config.pooltool.sendWaitMs) {
    return [tag("tip-report", { kind: "reportTip", height: h, reason: `tip rose to ${h}` })];
  }
  return [];
}

// --- Retries and wake-up ---------------------------------------------------------------------------

/** Housekeeping that keeps failing (a unit that will not start) backs off instead of spawning
 *  systemctl every tick; promotions are never held back (fences are not in `other`). */
export function dueNow(s: Situation, other: readonly Action[]): Action[] {
  return other.filter((a) => a.kind === "promote" || retryDue(s.memory, a, s.now));
}

/** Never sleep through a window edge or the boundary; look again soon after acting, to confirm, but
 *  not when every action repeats last tick's failure. */
export function wakeUp(s: Situation, actions: readonly Action[]): number {
  const { config, now } = s;
  let wakeAtMs = now + config.loopPeriodMs;
  const consider = (t: number) => {
    if (t > now && t < wakeAtMs) wakeAtMs = t;
  };
  for (const w of s.windows.slice(0, 4)) {
    consider(w.startMs - s.leadMs);
    consider(w.endMs + 1);
  }
  if (s.nextBoundary !== null) {
    consider(s.nextBoundary - config.eventActionMs);
    consider(s.nextBoundary + 1);
  }
  const fresh = actions.some((a) => !s.memory.failures[actionKey(a)]);
  return fresh ? Math.min(wakeAtMs, now + CONFIRM_DELAY_MS) : wakeAtMs;
}

// --- Helpers the rules share -----------------------------------------------------------------------

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
