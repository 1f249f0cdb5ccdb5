// Properties of the simulator under random operations and faults: the bookkeeping always adds up,
// blocks are only ever signed inside their own slot, by a process that held the key and was not
// frozen, and the service manager's view stays consistent with the processes.
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { couldSignIntervals } from "../../src/sim/audit.ts";
import { testChainParams } from "../../src/sim/chain.ts";
import { VirtualClock } from "../../src/sim/clock.ts";
import type { MemoryJournal } from "../../src/sim/journal.ts";
import { type Fault, World } from "../../src/sim/world.ts";
import { FAST_BOOT, POOL_SECRET } from "./helpers.ts";

const RUNS = Number(process.env.JORM_PROPERTY_RUNS ?? 40);

type Op =
  | { op: "wait"; ms: number }
  | { op: "start" | "stop" | "restart"; id: number }
  | { op: "kill"; id: number; signal: "SIGSTOP" | "SIGCONT" | "SIGKILL" | "SIGTERM" }
  | { op: "add" | "remove"; id: number }
  | { op: "fault"; id: number; fault: Fault };

const id = fc.integer({ min: 0, max: 2 });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ op: fc.constant("wait" as const), ms: fc.integer({ min: 1, max: 20_000 }) }) },
  fc.record({ op: fc.constantFrom("start" as const, "stop" as const, "restart" as const), id }),
  fc.record({ op: fc.constant("kill" as const), id, signal: fc.constantFrom("SIGSTOP" as const, "SIGCONT" as const, "SIGKILL" as const, "SIGTERM" as const) }),
  { weight: 3, arbitrary: fc.record({ op: fc.constantFrom("add" as const, "remove" as const), id }) },
  fc.record({
    op: fc.constant("fault" as const),
    id,
    fault: fc.oneof(
      fc.constant<Fault>({ kind: "crash" }),
      fc.constant<Fault>({ kind: "stuck" }),
      fc.constant<Fault>({ kind: "freeze" }),
      fc.constant<Fault>({ kind: "thaw" }),
      fc.record({ kind: fc.constant("restHang" as const), on: fc.boolean() }),
      fc.record({ kind: fc.constant("slowSchedule" as const), computeMs: fc.integer({ min: 0, max: 8000 }) }),
      fc.record({ kind: fc.constant("slowBoot" as const), bootstrapMs: fc.integer({ min: 0, max: 20_000 }) }),
    ),
  }),
);

async function play(ops: Op[], keyMode: "boot" | "rest") {
  const w = new World({ chain: testChainParams({ leaderSlotsPerEpoch: 20 }), runners: 3, boot: FAST_BOOT, keyMode, restTimeoutMs: 300 });
  const t0 = w.clock.now();
  for (const o of ops) {
    switch (o.op) {
      case "wait":
        await w.clock.advance(o.ms);
        break;
      case "start":
      case "restart":
        void w.services[o.op](o.id);
        break;
      case "stop":
        void w.services.stop(o.id);
        break;
      case "kill":
        await w.services.kill(o.id, o.signal);
        break;
      case "add":
        void w.api(o.id).addLeader(POOL_SECRET);
        break;
      case "remove":
        void w.api(o.id).removeLeader(1);
        break;
      case "fault":
        w.inject(o.id, o.fault);
        break;
    }
    // The service manager's view matches the processes (once the calls above have settled).
    await new Promise((r) => setImmediate(r));
    for (const i of w.ids) {
      const s = w.unitState(i);
      const node = w.node(i);
      if (s.activeState === "active") expect(node?.isAlive).toBe(true);
      if (s.activeState === "inactive" || s.subState === "auto-restart") expect(node).toBeNull();
      expect(s.mainPid).toBe(node?.pid ?? 0);
    }
  }
  await w.clock.advance(70_000);
  return { w, t0, end: w.clock.now() };
}

describe("simulator properties", () => {
  test("random operations and faults: the audit adds up; blocks only in their slot, by an unfrozen key holder", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 5, maxLength: 60 }), fc.constantFrom("boot" as const, "rest" as const), async (ops, keyMode) => {
        const { w, t0, end } = await play(ops, keyMode);
        const journal = w.journal as MemoryJournal;
        const entries = journal.entries();
        // In-process appends are in time order.
        for (let i = 1; i < entries.length; i++) expect(entries[i]!.t).toBeGreaterThanOrEqual(entries[i - 1]!.t);
        const report = w.audit({ fromMs: t0, toMs: end });
        expect(report.produced + report.missed + report.unproducible).toBe(report.scheduled);
        expect(Object.values(report.unproducibleReasons).reduce((a, b) => a + b, 0)).toBe(report.unproducible);
        const intervals = couldSignIntervals(entries, end);
        for (const b of journal.ofKind("block")) {
          const start = w.chain.slotStartMs(b.epoch, b.slot);
          expect(w.chain.leaderSlots(b.epoch)).toContain(b.slot);
          expect(b.t).toBeGreaterThanOrEqual(start);
          expect(b.t).toBeLessThan(start + w.chain.slotMs);
          const mine = intervals.find((x) => x.runner === b.runner && x.inc === b.inc)!;
          expect(mine.intervals.some(([a, z]) => a <= b.t && b.t <= z)).toBe(true);
        }
        // One process signs a slot at most once (one key per pool).
        const seen = new Set<string>();
        for (const b of journal.ofKind("block")) {
          const key = `${b.runner}:${b.inc}:${b.epoch}.${b.slot}`;
          expect(seen.has(key)).toBe(false);
          seen.add(key);
        }
      }),
      { numRuns: RUNS },
    );
  }, 60_000);

  test("sanity: without a master, every runner booting with the key double-produces", async () => {
    const w = new World({ chain: testChainParams({ leaderSlotsPerEpoch: 20 }), runners: 2, boot: FAST_BOOT, keyMode: "boot" });
    await w.services.start(0);
    await w.services.start(1);
    const t0 = w.clock.now();
    await w.clock.advance(120_000);
    const r = w.audit({ fromMs: t0, toMs: w.clock.now() });
    expect(r.doubleProduced).toBeGreaterThan(0);
    expect(r.overlapMs).toBeGreaterThan(0);
  });

  test("VirtualClock fires any set of timers in (time, scheduling order)", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.integer({ min: 0, max: 1000 }), { maxLength: 200 }), async (times) => {
        const clock = new VirtualClock(0);
        const fired: [number, number][] = [];
        times.forEach((t, i) => clock.at(t, () => fired.push([clock.now(), i])));
        await clock.runUntil(1000);
        const expected = times.map((t, i) => [t, i] as [number, number]).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
        expect(fired).toEqual(expected);
      }),
      { numRuns: RUNS },
    );
  });
});
