// The one ledger of settled leader slots that metrics, alerts and the event log share.
import { expect, test } from "bun:test";
import { epochClock } from "../../src/master/schedule.ts";
import { emptySlotLedger, foldSlotOutcomes, SLOT_OUTCOME_GRACE_MS } from "../../src/master/slot-outcomes.ts";
import type { RunnerObs } from "../../src/master/types.ts";

const clock = epochClock({ block0TimeMs: 0, slotDurationMs: 1000, slotsPerEpoch: 60 });
const entry = (slot: number, status: "block" | "rejected") => ({
  createdAtMs: 0,
  scheduledAtMs: slot * 1000,
  scheduledAt: { epoch: 0, slot },
  wakeAtMs: null,
  finishedAtMs: null,
  status: status === "block" ? ({ kind: "block", block: `h${slot}`, parent: null, chainLength: 1 } as const) : ({ kind: "rejected", reason: "key removed" } as const),
  enclaveLeaderId: 1,
});
const runners = (logs: Record<number, ReturnType<typeof entry>[]>): RunnerObs[] =>
  [0, 1].map((id) => ({ id, unit: null, stats: null, leaders: null, logs: logs[id] ? { ok: true as const, value: logs[id]! } : null }));

test("a slot settles a grace after it ends: produced by the runner whose log showed the block first, rejected with the first reason, each once", () => {
  let ledger = emptySlotLedger();
  const at = (now: number, logs: Record<number, ReturnType<typeof entry>[]>) => {
    const r = foldSlotOutcomes(ledger, runners(logs), clock, now, now);
    ledger = r.ledger;
    return r.settled;
  };
  expect(at(1_000, {})).toEqual([]);
  // Slot 5: #1 rejected it (demoted standby), #0 produced it. Slot 6: only a rejection.
  expect(at(7_000, { 0: [entry(5, "block")], 1: [entry(5, "rejected"), entry(6, "rejected")] })).toEqual([]);
  const settled = at(7_000 + SLOT_OUTCOME_GRACE_MS, { 1: [entry(5, "rejected"), entry(6, "rejected")] });
  expect(settled).toEqual([
    { abs: 5, epoch: 0, slot: 5, endMs: 6_000, block: { hash: "h5", producer: 0 }, rejected: "#1: key removed" },
    { abs: 6, epoch: 0, slot: 6, endMs: 7_000, block: null, rejected: "#1: key removed" },
  ]);
  // Listed again later: never counted twice.
  expect(at(8_000 + 2 * SLOT_OUTCOME_GRACE_MS, { 1: [entry(5, "rejected"), entry(6, "rejected")] })).toEqual([]);
});

test("slots that ended before the first tick are history, not something the daemon saw", () => {
  const r = foldSlotOutcomes(emptySlotLedger(), runners({ 0: [entry(2, "block")] }), clock, 10_000, 10_000);
  expect(r.ledger.pending).toEqual({});
  expect(r.ledger.sinceMs).toBe(10_000);
});
