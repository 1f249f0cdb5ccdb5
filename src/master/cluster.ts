// The cluster gate (issue 13): on a host of a cluster, decide's plan is bounded by the etcd signer
// lease, an input like any other observation. Pure; the daemon's lease shell (src/daemon/lease.ts)
// computes the input from its keep-alives and keeps the signer's dead-man switch armed.
//
// The rule: a host lets a runner hold the pool's key only while it holds `<prefix>/signer` and only
// until its local "must stop by" instant (deadline.ts: counted from the keep-alive's send time, so it
// ends before the lease can expire in etcd). A host that has just taken the lease over waits until
// the old holder has stopped for sure (takeoverSafeAt), and a window that opened before then stays
// the old holder's (the window rule, as between runners of one host).
//
// Kept to its own module so decide's body carries only two named gate lines: the window rule's
// external able-until, and `gateByCluster` applied to the finished result.

import type { Action, Memory, Observation, Plan, RunnerView } from "./types.ts";

/** What the lease shell knows at the observation, in the clock decide uses (ms since epoch). */
export interface ClusterObs {
  /** This host holds the signer key under its own live lease (no proof lost, switch armed) */
  maySign: boolean;
  /** The instant by which every runner of this host must have stopped signing; null: no allowance */
  mustStopByMs: number | null;
  /** After a takeover: before this instant the previous holder may still sign; null: not needed */
  takeoverSafeAtMs: number | null;
  /** Who holds the lease, when known (status and notes) */
  holder?: string | null;
  /** This host holds the lease but is handing it over to this host (switchover --host): no signing */
  handingOverTo?: string | null;
  /** The signing host: the last epoch whose boundary hand-out it granted the other hosts (their
   *  standbys can hold that epoch's schedule only then); null: none */
  grantedEpoch?: number | null;
  /** The signing host's boundary grant this host read last (`<prefix>/handout/<epoch>` under the
   *  signer's lease): a host that may not sign hands the key to its standbys for that epoch's
   *  boundary, exactly as the signing host does. null or absent: no grant, no hand-out. */
  handoutGrant?: { epoch: number } | null;
}

/**
 * A host that may not sign hands out the key at the boundary of `epoch` only on the signing host's
 * grant for that epoch. The grant is written once the signing host settled its own hand-out, which
 * it does only after the last window before the boundary closed: a grant read stands for "no
 * window lies before the boundary", which this host cannot know itself (none of its runners holds a
 * schedule).
 */
export function grantedHandout(c: ClusterObs | undefined, epoch: number, now: number): boolean {
  return c !== undefined && clusterBlock(c, now) !== null && c.handoutGrant?.epoch === epoch;
}

/** Why no runner of this host may hold the key at `now`, or null when the lease allows it. */
export function clusterBlock(c: ClusterObs | undefined, now: number): string | null {
  if (c === undefined) return null;
  if (c.handingOverTo) return `this host is handing the signer lease over to ${c.handingOverTo}; its runners are fenced first`;
  if (!c.maySign) return `this host does not hold the signer lease${c.holder ? ` (${c.holder} does)` : ""}`;
  if (c.mustStopByMs === null || now >= c.mustStopByMs) return "this host's signer lease allowance has run out (no keep-alive confirmed in time)";
  if (c.takeoverSafeAtMs !== null && now < c.takeoverSafeAtMs) {
    // No countdown in the text: a note that changes every tick would be logged every tick.
    return "the signer lease was just taken over; waiting until the previous holder has stopped for sure";
  }
  return null;
}

/** Until when a runner of another host may have signed: a window that opened before it is not ours. */
export function otherHostAbleUntilMs(c: ClusterObs | undefined): number {
  return c?.takeoverSafeAtMs ?? -Infinity;
}

const mayHoldKey = (v: RunnerView) => v.cap === "holder" || v.cap === "booting-holder" || v.cap === "unknown";

/** Fences a runner that may hold the key, as decide fences any non-signer. */
function fenceFor(v: RunnerView, why: string, memory: Memory): Action {
  const rule = "cluster-gate";
  if (v.cap === "holder") return { kind: "demote", id: v.id, reason: why, leaderIds: v.leaderIds ?? memory.runners[v.id]?.lastLeaderIds ?? [], rule };
  if (v.cap === "booting-holder") return { kind: "freeze", id: v.id, cause: "boot", reason: `${why}; it boots holding the key (--secret)`, rule };
  return { kind: "freeze", id: v.id, cause: "fence", reason: `${why}; its REST does not answer, so its keys are unknown`, rule };
}

/**
 * decide's result bounded by the lease. Without a cluster nothing changes. In a cluster: runners boot
 * passive (the key only ever comes by a promotion, after its dead-man switch is armed); a promotion
 * arms the signer's switch at mustStopBy; no switch is disarmed (the lease shell re-arms the
 * signer's after each keep-alive); a boundary hand-out whose switch would outlive the allowance is
 * dropped. When the lease does not allow signing: every runner that may hold the key is fenced,
 * nobody is promoted or thawed, nothing is handed out, and the host has no signer.
 */
export function gateByCluster<R extends { plan: Plan; memory: Memory; views: RunnerView[] }>(result: R, obs: Observation, now: number): R {
  const c = obs.cluster;
  if (c === undefined) return result;
  const { plan, memory } = result;
  const bootModes: Record<number, "key" | "passive"> = {};
  for (const id of Object.keys(plan.bootModes ?? {})) bootModes[Number(id)] = "passive";
  const notes = [...plan.notes];
  const block = clusterBlock(c, now);
  const stopBy = c.mustStopByMs;
  let other = plan.other.filter((a) => a.kind !== "disarm");
  // A co-holder's switch fires by the slot-1 deadline and never after the lease allowance; the lease
  // shell moves it with every keep-alive (coHolderSwitches), never past the slot-1 deadline.
  let switchAtMs: number | undefined;
  other = other.map((a) => {
    if (a.kind !== "promote" || a.purpose !== "boundary" || a.leaseAtMs === undefined || stopBy === null) return a;
    switchAtMs = a.leaseAtMs;
    return { ...a, leaseAtMs: Math.min(a.leaseAtMs, stopBy) };
  });
  const withSwitch = (m: Memory): Memory =>
    switchAtMs !== undefined && m.boundary ? { ...m, boundary: { ...m.boundary, switchAtMs } } : m;
  // Wake at the lease's instants: the allowance's end, and the moment a takeover becomes safe.
  let wakeAtMs = plan.wakeAtMs;
  for (const t of [stopBy, c.takeoverSafeAtMs]) if (t !== null && t > now && t < wakeAtMs) wakeAtMs = t;
  if (block === null) {
    const promote = plan.promote && stopBy !== null ? { ...plan.promote, leaseAtMs: stopBy, switchStays: true } : plan.promote;
    return { ...result, plan: { ...plan, promote, other, notes, bootModes, wakeAtMs }, memory: withSwitch({ ...memory, warming: null, lastBootModes: bootModes }) };
  }
  // Not ours to sign: every key holder is fenced like any non-signer, now; on the signing host's grant
  // for this boundary, its co-holders keep the key until the strip (their switches fire by slot 1).
  const b = memory.boundary;
  const granted = b !== null && !b.stripped && grantedHandout(c, b.epoch, now);
  const coHolders = new Set(granted ? b.coHolders : []);
  const fences = [...plan.fences];
  const fenced = new Set(fences.map((a) => ("id" in a ? a.id : -1)));
  for (const v of result.views) if (mayHoldKey(v) && !fenced.has(v.id) && !coHolders.has(v.id)) fences.push(fenceFor(v, `cluster: ${block}`, memory));
  other = other.filter((a) => (a.kind !== "promote" || (granted && a.purpose === "boundary")) && a.kind !== "thaw" && a.kind !== "reportTip");
  notes.push(`cluster: nobody on this host may sign: ${block}${granted ? `; boundary hand-out for epoch ${b.epoch} on the signing host's grant` : ""}`);
  const boundary = b ? { ...b, coHolders: granted ? b.coHolders : [] } : null;
  return {
    ...result,
    plan: { ...plan, fences, promote: null, other, notes, bootModes, wakeAtMs },
    memory: { ...memory, signer: null, boundary, warming: null, lastBootModes: bootModes },
  };
}

/**
 * The boundary co-holders whose switches the lease shell keeps moving, and the latest time they may
 * fire: until the boundary strip, while the slot-1 deadline is ahead. The signer is not among them
 * (its switch follows the allowance alone).
 */
export function coHolderSwitches(memory: Memory, now: number): { ids: number[]; untilMs: number } | null {
  const b = memory.boundary;
  if (!b || b.stripped || b.switchAtMs === undefined || now >= b.switchAtMs) return null;
  const ids = b.coHolders.filter((id) => id !== memory.signer);
  return ids.length > 0 ? { ids, untilMs: b.switchAtMs } : null;
}
