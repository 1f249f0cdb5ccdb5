// The pool's leader slots of one epoch, from everything that knows about them: each runner's own
// leader log (GET /leaders/logs), the daemon's memory of the pool's events, and the event log's
// settled slots (which outlive a runner's restart, when its log starts empty). Pure.

import { ALERT_SLOT_GRACE_MS } from "../alerts/events.ts";
import type { DaemonView } from "../control/protocol.ts";
import type { HistoryRecord } from "../history/events.ts";
import { epochClock } from "../master/schedule.ts";
import type { LeaderLog, NodeResult, Settings } from "../node/types.ts";

/** unknown: over, and nothing readable shows its outcome (a runner's log could not be read, or only
 *  the daemon remembers the slot): not called missed without evidence */
export type SlotStatus = "pending" | "produced" | "rejected" | "missed" | "unknown";

export interface LeadersInput {
  nowMs: number;
  settings: Settings | null;
  cntRunners: number;
  /** Each configured runner's leader log, or why it could not be read */
  runners: { id: number; logs: NodeResult<LeaderLog[]> | null }[];
  /** The daemon's view when one answered */
  daemon: DaemonView | null;
  /** Settled slots from the event log (slot_produced, slot_rejected, slot_missed) */
  history: readonly HistoryRecord[];
}

export interface LeaderSlotRow {
  epoch: number;
  slot: number;
  /** Absolute slot (epoch × slots per epoch + slot) */
  abs: number;
  startMs: number;
  endMs: number;
  /** Runners whose leader log lists the slot: they computed it and can sign it if they hold the key */
  inScheduleOf: number[];
  status: SlotStatus;
  /** produced: the block's hash and the runner whose log shows it */
  block: string | null;
  producedBy: number | null;
  /** rejected: "#1: reason" as the node said it */
  reason: string | null;
  /** Where the row's outcome comes from when no runner's log shows it any more */
  source: "logs" | "history" | "daemon";
}

export interface LeadersModel {
  epoch: number;
  nowMs: number;
  slotsPerEpoch: number;
  rows: LeaderSlotRow[];
  counts: Record<SlotStatus, number>;
  /** Runners whose log could not be read: their slots may be missing from the table */
  unreadable: { id: number; error: string }[];
  daemon: boolean;
}

const errText = (r: NodeResult<unknown> | null): string => (r === null ? "not asked" : r.ok ? "" : `${r.error.kind}${"message" in r.error && r.error.message ? `: ${r.error.message}` : ""}`);

export function leadersModel(input: LeadersInput, wantEpoch: number | null): LeadersModel {
  if (!input.settings) throw new Error("no runner answered with the chain's settings (is any runner Running?)");
  const clock = epochClock(input.settings);
  const epoch = wantEpoch ?? clock.epochAt(input.nowMs);
  type Acc = { inScheduleOf: Set<number>; block: { hash: string; by: number } | null; rejected: string | null; missed: boolean; pending: boolean; source: LeaderSlotRow["source"] };
  const slots = new Map<number, Acc>();
  const at = (abs: number, source: LeaderSlotRow["source"]): Acc => {
    let a = slots.get(abs);
    if (!a) slots.set(abs, (a = { inScheduleOf: new Set(), block: null, rejected: null, missed: false, pending: false, source }));
    return a;
  };
  const unreadable: LeadersModel["unreadable"] = [];
  for (const r of input.runners) {
    if (r.id >= input.cntRunners) continue;
    if (!r.logs?.ok) {
      unreadable.push({ id: r.id, error: errText(r.logs) });
      continue;
    }
    for (const l of r.logs.value) {
      if (l.scheduledAt.epoch !== epoch) continue;
      const a = at(clock.abs(epoch, l.scheduledAt.slot), "logs");
      a.source = "logs";
      a.inScheduleOf.add(r.id);
      if (l.status.kind === "block" && !a.block) a.block = { hash: l.status.block, by: r.id };
      else if (l.status.kind === "rejected" && !a.rejected) a.rejected = `#${r.id}: ${l.status.reason}`;
      else if (l.status.kind === "pending") a.pending = true;
    }
  }
  // Slots the event log settled: a runner restarted since starts with an empty log.
  for (const h of input.history) {
    if (h.epoch !== epoch || h.slot === undefined) continue;
    const a = at(clock.abs(epoch, h.slot), "history");
    if (h.kind === "slot_produced" && !a.block) a.block = { hash: h.block ?? "", by: h.runner ?? -1 };
    if (h.kind === "slot_rejected" && !a.rejected) a.rejected = h.text.replace(/^no runner produced it; rejected by /, "");
    if (h.kind === "slot_missed") a.missed = true;
  }
  // The daemon's memory of the pool's events: a slot no log lists any more still counts.
  for (const abs of input.daemon?.events ?? []) if (clock.epochOf(abs) === epoch) at(abs, "daemon");

  const rows: LeaderSlotRow[] = [...slots.entries()]
    .sort(([a], [b]) => a - b)
    .map(([abs, a]) => {
      const startMs = clock.slotStartMs(abs);
      const endMs = startMs + clock.slotMs;
      // Not yet over, or over so recently that a log may still be updated (as the alerts settle).
      const open = input.nowMs < endMs || (input.nowMs < endMs + ALERT_SLOT_GRACE_MS && (a.pending || a.source !== "logs"));
      // Missed only on evidence: the event log settled it so, or every runner's log was read.
      const missed = a.missed || (a.source === "logs" && unreadable.length === 0);
      const status: SlotStatus = a.block ? "produced" : open ? "pending" : a.rejected ? "rejected" : missed ? "missed" : "unknown";
      return {
        epoch,
        slot: abs - clock.abs(epoch, 0),
        abs,
        startMs,
        endMs,
        inScheduleOf: [...a.inScheduleOf].sort((x, y) => x - y),
        status,
        block: a.block?.hash ?? null,
        producedBy: a.block && a.block.by >= 0 ? a.block.by : null,
        reason: status === "rejected" ? a.rejected : null,
        source: a.source,
      };
    });
  const counts: Record<SlotStatus, number> = { pending: 0, produced: 0, rejected: 0, missed: 0, unknown: 0 };
  for (const r of rows) counts[r.status]++;
  return { epoch, nowMs: input.nowMs, slotsPerEpoch: clock.slotsPerEpoch, rows, counts, unreadable, daemon: input.daemon !== null };
}
