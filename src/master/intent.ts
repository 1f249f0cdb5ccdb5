// What the operator asked for (holds, a switchover), as a pure input to decide. The daemon keeps it
// (holds in its state dir, so they survive a restart) and passes it with each observation; decide
// reads it only through the few gates below, so the rules live here and are tested here.
//
// Safety comes first: a hold never exempts a runner from a fence. It only keeps the runner out of
// promotion, out of the boundary hand-out and out of housekeeping (no start, restart or kill), so a
// runner an operator stopped by hand stays stopped.

import { z } from "zod";
import type { RunnerView } from "./types.ts";

export const holdSchema = z.object({ reason: z.string(), sinceMs: z.number() }).strict();
export type Hold = z.infer<typeof holdSchema>;

export interface SwitchoverIntent {
  /** null: the best standby */
  target: number | null;
  /** Allow a target that lacks some of the coming slots (they are lost) */
  force: boolean;
  requestedMs: number;
  /** The signer when it was asked: the switchover is done once another runner signs */
  from: number | null;
  /** Cluster mode: hand the signing right to this host instead (switchover --host); target is null */
  host?: string | null;
  /** Cross-host only, for status: waiting for a gap, fencing this host's runners, the etcd txn, the
   *  key given up and the target host yet to take it (decide reads only `host`) */
  phase?: "waiting" | "fencing" | "committing" | "handed";
}

export interface OperatorIntent {
  holds: Record<number, Hold>;
  switchover: SwitchoverIntent | null;
}

export const NO_INTENT: OperatorIntent = { holds: {}, switchover: null };

export const isHeld = (intent: OperatorIntent | undefined, id: number): boolean => intent !== undefined && intent.holds[id] !== undefined;

/** The persisted form of the holds (holds.json in the state dir). */
export const holdsFileSchema = z.object({ holds: z.record(z.string().regex(/^\d+$/), holdSchema) }).strict();

export function parseHolds(json: unknown): Record<number, Hold> {
  const r = holdsFileSchema.parse(json);
  const out: Record<number, Hold> = {};
  for (const [k, v] of Object.entries(r.holds)) out[Number(k)] = v;
  return out;
}

/** Slots of `signerPending` (absolute, still ahead) that `targetPending` lacks: lost by the move. */
export function lostSlots(signerPending: readonly number[], targetPending: readonly number[]): number[] {
  const t = new Set(targetPending);
  return signerPending.filter((s) => !t.has(s));
}

export interface SwitchoverInput {
  intent: OperatorIntent;
  signer: RunnerView;
  /** Healthy, key-less, not busy standbys in scope (held ones included: they are refused here) */
  standbys: readonly RunnerView[];
  /** Slots still ahead per runner (absolute) */
  pendingAheadSlots: (id: number) => number[];
  pick: (vs: readonly RunnerView[]) => RunnerView;
  /** ms until the next window opens (negative: one is open), null when none is known */
  nextWindowInMs: number | null;
  /** The fences and the promotion need this long before a window */
  leadMs: number;
  /** The boundary hand-out is near or under way: the key does not move then */
  boundaryNear: boolean;
  /** This epoch's schedule is known (so the gaps are) */
  epochKnown: boolean;
}

export type SwitchoverDecision =
  /** Move now: through the failover path (fences first, window rule, promotion fenced by the next window) */
  | { kind: "move"; target: RunnerView; why: string; lost: number }
  /** Cross-host: fence this host's runners now and hand the signer lease to `host` (the lease shell does it) */
  | { kind: "release"; host: string; why: string }
  /** Not now: waiting for a gap (kept) */
  | { kind: "wait"; why: string }
  /** Not possible as asked (the daemon answers with this and drops the switchover) */
  | { kind: "refuse"; why: string };

/**
 * The switchover asked for, or the one a hold on the signer implies: to the named standby or the best
 * unheld one, only if it holds the coming slots (or `force`), only in a gap between windows with room
 * for the fences and the promotion, never near the boundary hand-out. Null: nothing asked.
 */
export function switchoverDecision(x: SwitchoverInput): SwitchoverDecision | null {
  const so = x.intent.switchover;
  if (so?.host) return hostHandoverDecision({ ...x, host: so.host, targetMayBeWarm: true, slotsLeft: 0, force: so.force });
  const signerHeld = isHeld(x.intent, x.signer.id);
  if (!so && !signerHeld) return null;
  // Done: another runner signs since it was asked (the daemon answers and drops it).
  if (so && so.from !== null && so.from !== x.signer.id && !signerHeld) return null;
  const target = so?.target ?? null;
  const force = so?.force ?? false;
  const whyAsked = so ? "switchover asked" : `#${x.signer.id} is held (${x.intent.holds[x.signer.id]!.reason})`;
  if (target === x.signer.id) return { kind: "refuse", why: `#${target} already signs` };
  if (target !== null && isHeld(x.intent, target)) return { kind: "refuse", why: `#${target} is held; release it first` };
  const free = x.standbys.filter((v) => !isHeld(x.intent, v.id));
  const signerSlots = x.pendingAheadSlots(x.signer.id);
  const lost = (v: RunnerView) => lostSlots(signerSlots, x.pendingAheadSlots(v.id)).length;
  let pick: RunnerView;
  if (target !== null) {
    const t = free.find((v) => v.id === target);
    if (!t) return { kind: "wait", why: `${whyAsked}: #${target} is not a healthy key-less standby yet` };
    pick = t;
  } else {
    if (free.length === 0) return { kind: "wait", why: `${whyAsked}: no healthy standby to take the key` };
    const whole = free.filter((v) => lost(v) === 0);
    pick = x.pick(whole.length > 0 ? whole : free);
  }
  const n = lost(pick);
  if (n > 0 && !force) {
    return so
      ? { kind: "refuse", why: `#${pick.id} lacks ${n} of the signer's ${signerSlots.length} coming slots; --force moves the key anyway and loses them` }
      : { kind: "wait", why: `${whyAsked}: no standby holds the coming slots (#${pick.id} lacks ${n}); the held signer keeps the key` };
  }
  const notYet = gapWait(x, whyAsked, x.leadMs);
  if (notYet) return notYet;
  return { kind: "move", target: pick, lost: n, why: `${whyAsked}: the key moves from #${x.signer.id} to #${pick.id} in the gap before the next window${n > 0 ? ` (forced: ${n} slots lost)` : ""}` };
}

/** Not a safe moment: the schedule unknown, the boundary near, or a window opens within `needMs`. */
function gapWait(x: Pick<SwitchoverInput, "epochKnown" | "boundaryNear" | "nextWindowInMs">, whyAsked: string, needMs: number): SwitchoverDecision | null {
  if (!x.epochKnown) return { kind: "wait", why: `${whyAsked}: this epoch's schedule is unknown, so no gap is known` };
  if (x.boundaryNear) return { kind: "wait", why: `${whyAsked}: the boundary hand-out is near; the key moves after it` };
  if (x.nextWindowInMs !== null && x.nextWindowInMs <= needMs) {
    return { kind: "wait", why: `${whyAsked}: waiting for the gap after the next window` };
  }
  return null;
}

/**
 * How long a hand-over to another host takes, from the decision to the target's promotion: a tick to
 * fence, one to prove the runners key-less, the txn, the target's poll (lease.ts HANDOVER_POLL_MS),
 * its campaign and its promotion with the read-backs. Measured at about 3.5 s from the decision to
 * the target's promotion in the cluster simulation (README); the gap asked for is this plus the
 * promotion lead, so no window opens while the key is between hosts.
 */
export const HANDOVER_EXPECTED_MS = 5_000;

/**
 * A hand-over of the signing right to another host: at a safe moment only (the single-host
 * switchover's gap rule, with room for the whole hand-over), never to this host.
 */
export function hostHandoverDecision(
  x: Pick<SwitchoverInput, "epochKnown" | "boundaryNear" | "nextWindowInMs" | "leadMs"> & {
    host: string;
    self?: string;
    /** The other hosts' standbys may hold this epoch's schedule: this host granted its boundary hand-out */
    targetMayBeWarm: boolean;
    /** The signer's slots still ahead in this epoch (lost if the target holds no schedule) */
    slotsLeft: number;
    force: boolean;
  },
): SwitchoverDecision {
  const whyAsked = `hand-over to ${x.host} asked`;
  if (x.self !== undefined && x.host === x.self) return { kind: "refuse", why: `${x.host} is this host` };
  if (!x.targetMayBeWarm && x.slotsLeft > 0 && !x.force) {
    // Another host's standbys hold an epoch's schedule only by the boundary hand-out this host grants.
    return { kind: "wait", why: `${whyAsked}: no boundary hand-out was granted for this epoch, so ${x.host}'s standbys hold no schedule for its ${x.slotsLeft} remaining slot${x.slotsLeft === 1 ? "" : "s"}; waiting for the next boundary (--force hands over now and loses them)` };
  }
  const notYet = gapWait(x, whyAsked, x.leadMs + HANDOVER_EXPECTED_MS);
  if (notYet) return notYet;
  return { kind: "release", host: x.host, why: `${whyAsked}: fencing this host's runners in the gap before the next window, then the signer lease goes to ${x.host}` };
}

/** Capabilities that prove a runner cannot sign: no process, or verified key-less. Frozen is not
 *  proof (its keys are unknown while stopped, and a thaw would let it sign). */
export function provenKeyless(views: readonly Pick<RunnerView, "id" | "cap">[]): { ok: true } | { ok: false; why: string } {
  const open = views.filter((v) => v.cap !== "keyless" && v.cap !== "stopped");
  return open.length === 0 ? { ok: true } : { ok: false, why: `not proven key-less yet: ${open.map((v) => `#${v.id} (${v.cap})`).join(", ")}` };
}
