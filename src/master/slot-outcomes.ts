// The pool's leader slots as the runners' leader logs show them once done: produced (some log shows
// a block), rejected (a reason, and no block anywhere) or missed. Pure: a ledger folded tick by tick,
// shared by the metrics, the alerts and the event log so they count the same slots the same way.

import type { RunnerObs } from "./types.ts";
import type { EpochClock } from "./schedule.ts";

/** A slot's outcome is settled this long after it ends: a demoted standby's log shows Rejected for a
 *  slot the signer produced, and logs are re-read at least every 30 s, so the block has been seen by
 *  then if any runner produced it. */
export const SLOT_OUTCOME_GRACE_MS = 60_000;

/** What the logs have shown of one slot so far */
export interface SlotSeen {
  endMs: number;
  block: boolean;
  /** The first reject reason seen, as "#id: reason" */
  rejected: string | null;
  epoch: number;
  slot: number;
  /** The block's hash and the runner whose log showed it first */
  hash?: string;
  producer?: number;
}

export interface SlotLedger {
  /** Slots some log shows as done, not yet settled, by absolute slot */
  pending: Record<number, SlotSeen>;
  /** Settled slots of this and the previous epoch: never taken in again */
  settled: number[];
  /** The first tick's start: slots that ended before it are history, not something this daemon saw */
  sinceMs: number | null;
}

/** A leader slot whose outcome is settled: the block's hash and the runner whose log shows it, or the
 *  first reject reason. */
export interface SettledSlot {
  abs: number;
  epoch: number;
  slot: number;
  endMs: number;
  block: { hash: string; producer: number } | null;
  rejected: string | null;
}

export const emptySlotLedger = (): SlotLedger => ({ pending: {}, settled: [], sinceMs: null });

/** Folds one tick's leader logs into the ledger and settles the slots whose grace has passed. */
export function foldSlotOutcomes(
  prev: SlotLedger,
  runners: readonly RunnerObs[],
  clock: EpochClock,
  tickStartMs: number,
  now: number,
): { ledger: SlotLedger; settled: SettledSlot[] } {
  const sinceMs = prev.sinceMs ?? tickStartMs;
  const pending: Record<number, SlotSeen> = { ...prev.pending };
  const settled = new Set(prev.settled);
  // Older slots are forgotten once settled; a standby's log may still list them (Rejected, from a
  // boundary hand-out) after the runner that produced them restarted with an empty log, so they are
  // not taken in again.
  const oldest = clock.abs(clock.epochAt(now) - 1, 0);
  for (const o of runners) {
    if (!o.logs?.ok) continue;
    for (const l of o.logs.value) {
      if (l.status.kind === "pending") continue;
      const abs = clock.abs(l.scheduledAt.epoch, l.scheduledAt.slot);
      if (settled.has(abs) || abs < oldest) continue;
      const endMs = clock.slotStartMs(abs) + clock.slotMs;
      if (endMs < sinceMs) continue;
      const seen = pending[abs];
      const rejected = l.status.kind === "rejected" ? `#${o.id}: ${l.status.reason}` : null;
      const produced =
        l.status.kind === "block" && !seen?.block
          ? { hash: l.status.block, producer: o.id }
          : seen?.block
            ? { hash: seen.hash, producer: seen.producer }
            : {};
      pending[abs] = {
        endMs,
        block: (seen?.block ?? false) || l.status.kind === "block",
        rejected: seen?.rejected ?? rejected,
        epoch: l.scheduledAt.epoch,
        slot: l.scheduledAt.slot,
        ...produced,
      };
    }
  }
  const out: SettledSlot[] = [];
  for (const [k, p] of Object.entries(pending)) {
    const abs = Number(k);
    if (abs < oldest) delete pending[abs];
    if (abs < oldest || now < p.endMs + SLOT_OUTCOME_GRACE_MS) continue;
    delete pending[abs];
    settled.add(abs);
    out.push({ abs, epoch: p.epoch, slot: p.slot, endMs: p.endMs, block: p.block ? { hash: p.hash ?? "", producer: p.producer ?? -1 } : null, rejected: p.rejected });
  }
  return { ledger: { pending, settled: [...settled].filter((a) => a >= oldest), sinceMs }, settled: out };
}
