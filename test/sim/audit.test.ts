import { describe, expect, test } from "bun:test";
import { audit, explainStaleTips, couldSignIntervals, coveredBy, intersectionMs, mergeIntervals } from "../../src/sim/audit.ts";
import { Chain, testChainParams } from "../../src/sim/chain.ts";
import type { JournalEntry } from "../../src/sim/journal.ts";

// Epoch 1 leader slots: 19 25 32 47 50 (1 s slots, 60 per epoch).
const chain = new Chain(testChainParams());
const S = (slot: number, plusMs = 0) => chain.slotStartMs(1, slot) + plusMs;
const EPOCH1 = [19, 25, 32, 47, 50];
const from = S(0);
const to = chain.epochStartMs(2);

const start = (runner: number, inc: number, t: number, keys: number[] = []): JournalEntry => ({ t, kind: "proc_start", runner, inc, pid: 1, keys });
const exit = (runner: number, inc: number, t: number): JournalEntry => ({ t, kind: "proc_exit", runner, inc, reason: "crash" });
const keys = (runner: number, inc: number, t: number, k: number[]): JournalEntry => ({ t, kind: "keys", runner, inc, keys: k });
const freeze = (runner: number, inc: number, t: number): JournalEntry => ({ t, kind: "freeze", runner, inc });
const thaw = (runner: number, inc: number, t: number): JournalEntry => ({ t, kind: "thaw", runner, inc });
const sched = (runner: number, inc: number, t0: number, t1: number | null, slots = EPOCH1): JournalEntry[] => [
  { t: t0, kind: "schedule_start", runner, inc, epoch: 1, slots, keys: [1], trigger: "boundary" },
  ...(t1 === null ? [] : [{ t: t1, kind: "schedule_done", runner, inc, epoch: 1, slots, keys: [1] } as JournalEntry]),
];
/** A block on the network's tip; `behind` blocks lower when signed on a stale tip. */
const block = (runner: number, inc: number, slot: number, behind = 0): JournalEntry => ({
  t: S(slot),
  kind: "block",
  runner,
  inc,
  epoch: 1,
  slot,
  leaderId: 1,
  chainLength: chain.lastBlockAtSlot(chain.params.slotsPerEpoch + slot - 1).height + 1 - behind,
  hash: "00",
});

describe("slot verdicts", () => {
  test("one runner with the schedule producing every slot: 100 % coverage", () => {
    const j = [start(0, 1, S(0), [1]), ...sched(0, 1, S(0), S(0)), ...EPOCH1.map((s) => block(0, 1, s))];
    expect(audit(j, chain, { fromMs: from, toMs: to })).toMatchObject({
      scheduled: 5,
      produced: 5,
      doubleProduced: 0,
      missed: 0,
      unproducible: 0,
      coveragePct: 100,
    });
  });

  test("a slot signed by two incarnations counts as double-produced", () => {
    const j = [start(0, 1, S(0), [1]), start(1, 1, S(0), [1]), ...sched(0, 1, S(0), S(0)), ...sched(1, 1, S(0), S(0)), block(0, 1, 19), block(1, 1, 19)];
    const r = audit(j, chain, { fromMs: from, toMs: to });
    expect(r.doubleProduced).toBe(1);
    expect(r.produced).toBe(1);
    expect(r.slots[0]!.signers).toEqual(["0:1", "1:1"]);
  });

  test("producible but not produced is missed; coverage counts only producible slots", () => {
    const j = [start(0, 1, S(0)), ...sched(0, 1, S(0), S(0)), block(0, 1, 19), block(0, 1, 25)];
    const r = audit(j, chain, { fromMs: from, toMs: to });
    expect(r).toMatchObject({ scheduled: 5, produced: 2, missed: 3, unproducible: 0, coveragePct: 40 });
    expect(r.slots.map((s) => s.verdict)).toEqual(["produced", "produced", "missed", "missed", "missed"]);
  });

  test("reasons: schedule still computing when the slot ended", () => {
    const j = [start(0, 1, S(0), [1]), ...sched(0, 1, S(0), S(25, 500)), block(0, 1, 25), block(0, 1, 32), block(0, 1, 47), block(0, 1, 50)];
    const r = audit(j, chain, { fromMs: from, toMs: to });
    expect(r).toMatchObject({ produced: 4, unproducible: 1, unproducibleReasons: { schedule_computing: 1 }, missed: 0, coveragePct: 100 });
  });

  test("reasons: all runners down; no live runner computed it; the schedule's process was gone", () => {
    const j = [
      start(0, 1, S(0), [1]),
      ...sched(0, 1, S(0), S(0)),
      exit(0, 1, S(10)), // 19 and 25: nobody alive
      start(0, 2, S(30)), // 32: alive without the slot in its schedule, the one that had it is gone
      keys(0, 2, S(35), [1]),
      start(1, 1, S(40)), // 47, 50: alive, nobody ever had the schedule? inc 1 had → schedule_lost
    ];
    const r = audit(j, chain, { fromMs: from, toMs: to });
    expect(r.slots.map((s) => s.reason)).toEqual(["all_down", "all_down", "schedule_lost", "schedule_lost", "schedule_lost"]);
    const none = audit([start(0, 1, S(0)), keys(0, 1, S(1), [1])], chain, { fromMs: from, toMs: to });
    expect(none.unproducibleReasons).toEqual({ not_scheduled: 5 });
    expect(none.coveragePct).toBe(100);
  });

  test("reasons: frozen through the rest of the slot; a thaw within the slot keeps it producible", () => {
    const j = [
      start(0, 1, S(0), [1]),
      ...sched(0, 1, S(0), S(0)),
      freeze(0, 1, S(18)),
      thaw(0, 1, S(20)), // 19 frozen throughout
      freeze(0, 1, S(24)),
      thaw(0, 1, S(25, 900)), // 25: thawed in time
    ];
    const r = audit(j, chain, { fromMs: from, toMs: to });
    expect(r.slots.slice(0, 2).map((s) => [s.verdict, s.reason])).toEqual([
      ["unproducible", "frozen"],
      ["missed", undefined],
    ]);
  });

  test("a block signed on a stale tip is lost, not produced; every loss has a reason", () => {
    const j = [start(0, 1, S(0), [1]), ...sched(0, 1, S(0), S(0)), block(0, 1, 19), block(0, 1, 25, 1), block(0, 1, 32, 3)];
    const r = audit(j, chain, { fromMs: from, toMs: to });
    expect(r).toMatchObject({ scheduled: 5, produced: 1, missed: 4, staleBlocks: 2, neverScheduled: 0, coverageAllPct: 20 });
    expect(r.lossReasons).toEqual({ stale_tip: 2, not_signed: 2 });
    expect(r.slots.map((s) => s.loss)).toEqual([undefined, "stale_tip", "stale_tip", "not_signed", "not_signed"]);
  });

  test("stale means the parent lacks a network block of an earlier slot; one in the slot itself is a race, not a stale tip", () => {
    // Slot 47 carries a network block of its own (height 54; 53 before it); slot 19 follows one in slot 18 (height 40).
    expect([chain.lastBlockAtSlot(60 + 47).abs, chain.lastBlockAtSlot(60 + 46).height, chain.lastBlockAtSlot(60 + 18).abs]).toEqual([60 + 47, 53, 60 + 18]);
    const onParent = (slot: number, chainLength: number): JournalEntry => ({ ...(block(0, 1, slot) as Extract<JournalEntry, { kind: "block" }>), chainLength });
    // 47 on 53: level with the network's block of the same slot (both 54), signed before it could be
    // seen: produced. 19 on 39: lacks slot 18's block, which every healthy node has by slot 19: lost.
    const j = [start(0, 1, S(0), [1]), ...sched(0, 1, S(0), S(0)), onParent(19, 40), onParent(47, 54)];
    const r = audit(j, chain, { fromMs: from, toMs: to });
    expect(r.slots.filter((s) => s.signers.length > 0).map((s) => [s.slot, s.verdict, s.loss])).toEqual([
      [19, "missed", "stale_tip"],
      [47, "produced", undefined],
    ]);
    expect(r.staleBlocks).toBe(1);
  });

  test("explainStaleTips: a stale block was avoidable only if a gap between windows followed the first look at the lacked block", () => {
    // Slot 19 follows the network's block of slot 18; the signer (#0) signs 19 without it. #1 shows
    // it after its view lag; the daemon looks every 250 ms; 19's window opens 300 ms before it.
    const j = [start(0, 1, S(0), [1]), ...sched(0, 1, S(0), S(0)), start(1, 1, S(0)), { t: S(1), kind: "running", runner: 1, inc: 1 } as JournalEntry, block(0, 1, 19, 1)];
    const opts = { fromMs: from, toMs: to, guardMs: 300, marginMs: 300, loopPeriodMs: 250 };
    const { slots } = audit(j, chain, opts);
    const why = (lagMs: number) => explainStaleTips(j, chain, slots, { ...opts, viewLagMs: () => lagMs })[0]!;
    expect(why(100)).toEqual({ epoch: 1, slot: 19, lackedAbs: 60 + 18, shownMs: S(18, 100), firstLookMs: S(18, 250), windowOpensMs: S(19, -300), gapAfterLook: true });
    // Shown 600 ms into slot 18, looked at 750 ms: 19's window was already open.
    expect(why(600)).toMatchObject({ shownMs: S(18, 600), firstLookMs: S(18, 750), gapAfterLook: false });
  });

  test("unproducible in the strict sense: nobody Running ever had the slot in a finished schedule in its epoch", () => {
    // inc 1 computed the epoch and crashed before 19: slots it had are schedule_lost, yet it was Running
    // with them in its schedule, so they count against coverage; a runner that never computed them did not.
    const j = [start(0, 1, S(0), [1]), ...sched(0, 1, S(0), S(1)), exit(0, 1, S(10)), start(1, 1, S(0))];
    const r = audit(j, chain, { fromMs: from, toMs: to });
    expect(r.neverScheduled).toBe(0);
    expect(r.coverageAllPct).toBe(0);
    const none = audit([start(0, 1, S(0)), keys(0, 1, S(1), [1])], chain, { fromMs: from, toMs: to });
    expect(none.neverScheduled).toBe(5);
    expect(none.lossReasons).toEqual({ not_scheduled: 5 });
  });

  test("only slots starting in [fromMs, toMs) count", () => {
    const j = [start(0, 1, S(0), [1]), ...sched(0, 1, S(0), S(0))];
    expect(audit(j, chain, { fromMs: S(25), toMs: S(47) }).scheduled).toBe(2);
  });
});

describe("could-sign intervals and overlap", () => {
  test("alive, not frozen, holding a key: freezes and key removals split intervals, exits close them", () => {
    const j = [
      start(0, 1, 0, [1]),
      freeze(0, 1, 10),
      thaw(0, 1, 20),
      keys(0, 1, 30, []),
      keys(0, 1, 40, [1]),
      exit(0, 1, 50),
      start(1, 1, 0),
      keys(1, 1, 5, [1]),
    ];
    expect(couldSignIntervals(j, 100)).toEqual([
      { runner: 0, inc: 1, intervals: [[0, 10], [20, 30], [40, 50]] },
      { runner: 1, inc: 1, intervals: [[5, 100]] },
    ]);
  });

  test("a process that left no exit entry (SIGKILL in process mode) is gone at the next start of its runner", () => {
    const j = [start(0, 1, 0, [1]), start(0, 2, 500, [])];
    expect(couldSignIntervals(j, 1000)).toEqual([
      { runner: 0, inc: 1, intervals: [[0, 500]] },
      { runner: 0, inc: 2, intervals: [] },
    ]);
  });

  test("with alive beats, a silent process counts as gone one beat after its last entry", () => {
    const j: JournalEntry[] = [
      { t: 0, kind: "proc_start", runner: 0, inc: 1, pid: 1, keys: [1], beatMs: 2000 },
      { t: 1000, kind: "alive", runner: 0, inc: 1 },
      { t: 2000, kind: "alive", runner: 0, inc: 1 },
    ];
    expect(couldSignIntervals(j, 60_000)).toEqual([{ runner: 0, inc: 1, intervals: [[0, 4000]] }]);
    expect(couldSignIntervals(j, 3000)).toEqual([{ runner: 0, inc: 1, intervals: [[0, 3000]] }]);
  });

  test("overlap counts time with ≥ 2 signers inside [slot start − guard, slot end + margin]", () => {
    const j = [
      start(0, 1, S(0), [1]),
      start(1, 1, S(0)),
      keys(1, 1, S(18, 500), [1]), // both can sign from 18.5 …
      keys(1, 1, S(19, 200), []), // … to 19.2
      keys(1, 1, S(30), [1]), // outside any window (32 − 1 s guard = 31)
      keys(1, 1, S(30, 500), []),
    ];
    const r = audit(j, chain, { fromMs: from, toMs: to, guardMs: 1000, marginMs: 500 });
    expect(r.overlapMs).toBe(700);
    expect(r.overlapTotalMs).toBe(1200);
    expect(audit(j, chain, { fromMs: from, toMs: to }).overlapMs).toBe(200);
  });

  test("boundary overlap around each epoch start", () => {
    const b = chain.epochStartMs(2);
    const j = [start(0, 1, b - 5000, [1]), start(1, 1, b - 300, [1]), exit(1, 1, b + 300)];
    const r = audit(j, chain, { fromMs: b - 10_000, toMs: b + 10_000, guardMs: 1000, marginMs: 1000 });
    expect(r.boundaryOverlapMs).toBe(600);
  });

  test("interval helpers", () => {
    expect(mergeIntervals([[5, 7], [0, 2], [1, 3], [7, 8]])).toEqual([[0, 3], [5, 8]]);
    expect(coveredBy([[0, 10], [5, 15], [8, 9], [20, 30]], 2)).toEqual([[5, 10]]);
    expect(coveredBy([[0, 5], [5, 10]], 2)).toEqual([]);
    expect(intersectionMs([[0, 10], [20, 30]], [[5, 25]])).toBe(10);
  });
});
