// The coverage rules of decide (issue 10): every producible slot, on busy pools too.
import { describe, expect, test } from "bun:test";
import { decide, emptyMemory } from "../../src/master/decide.ts";
import { bootFits, handoutNeedMs } from "../../src/master/coverage.ts";
import { bootPermits } from "../../src/master/bootpermits.ts";
import { config, observation, pending, runner } from "./fixtures.ts";
import { run, summary } from "./plan-helpers.ts";


// Pool events at slots 50 and 70 of epoch 0 (1 s slots, 100 per epoch; windows ±500 ms).
const LOGS = [pending(0, 50), pending(0, 70)];
const T = 10_000;

describe("rule 1: a signer with nothing to sign hands the key to the runner that has the slots", () => {
  for (const keyMode of ["boot", "rest"] as const) {
    test(`key mode ${keyMode}: moved in the gap, also right after a daemon restart (fresh memory)`, () => {
      const cfg = config({ keyMode });
      const obs = (t: number) => observation(t, [runner(0, { kind: "holder", logs: [] }), runner(1, { kind: "standby", logs: LOGS }), runner(2, { kind: "standby", logs: [] })]);
      // A restarted daemon adopts the only holder, and moves the key on at once.
      const first = run(cfg, [obs(T)]).result;
      expect(summary(first.plan)).toEqual({ fences: ["demote#0"], promote: "promote#1", other: [] });
      expect(first.memory.signer).toBe(1);
      expect(first.plan.promote!.fencedByMs).toBe(49_500);
    });
  }

  test("inside a window the old signer keeps it until the window closes", () => {
    const cfg = config();
    const o = (t: number) => observation(t, [runner(0, { kind: "holder", logs: [] }), runner(1, { kind: "standby", logs: LOGS }), runner(2, { kind: "standby" })]);
    const inWindow = run(cfg, [o(50_200)]).result;
    expect(inWindow.plan.promote).toBeNull();
    expect(inWindow.plan.fences).toEqual([]);
    expect(inWindow.memory.signer).toBe(0);
    const after = run(cfg, [o(50_200), o(51_600)]).result;
    expect(summary(after.plan)).toEqual({ fences: ["demote#0"], promote: "promote#1", other: [] });
  });

  test("nobody has the slots: the key stays", () => {
    const r = run(config(), [observation(T, [runner(0, { kind: "holder", logs: [pending(0, 5)] }), runner(1, { kind: "standby", logs: [] }), runner(2, { kind: "standby", logs: [] })])]).result;
    expect(summary(r.plan)).toEqual({ fences: [], promote: null, other: [] });
  });
});

describe("rule 2: the boundary hand-out goes in whatever gap follows the epoch's last window", () => {
  // rest_timeout 200 ms: the POST and its read-back need 400 ms, not a fixed second.
  const cfg = config({ restTimeoutMs: 200 });
  const obs = (t: number, logs = [pending(0, 50), pending(0, 98)]) =>
    observation(t, [runner(0, { kind: "holder", logs }), runner(1, { kind: "standby", logs }), runner(2, { kind: "standby", logs })]);

  test("a slot ending 1 s before the boundary: handed out 0.5 s before it, counted done", () => {
    expect(handoutNeedMs(cfg)).toBe(400);
    // Slot 98's window closes at 99.5 s; the boundary is at 100 s.
    const { result } = run(cfg, [obs(90_000), obs(99_501)]);
    expect(summary(result.plan).other).toEqual(["promote#1", "promote#2"]);
    expect(result.plan.handout).toMatchObject({ epoch: 1, result: "done" });
  });

  test("a window across the boundary: skipped, counted once with the reason", () => {
    const logs = [pending(0, 50), pending(0, 99)];
    const { result, memory } = run(cfg, [obs(90_000, logs), obs(99_200, logs)]);
    expect(summary(result.plan).other).toEqual([]);
    const next = run(cfg, [obs(100_001, logs)], memory).result;
    expect(next.plan.handout).toMatchObject({ epoch: 1, result: "skipped" });
    expect(next.plan.handout!.reason).toStartWith("window");
    expect(next.plan.notes.join()).toContain("boundary hand-out for epoch 1 skipped");
    const again = run(cfg, [obs(100_001, logs), obs(100_600, logs)], memory).result;
    expect(again.plan.handout).toBeUndefined();
  });

  test("a daemon restarted during the hand-out keeps the co-holders (re-armed) instead of demoting them", () => {
    const o = observation(97_000, [runner(0, { kind: "holder", logs: LOGS }), runner(1, { kind: "holder", logs: LOGS }), runner(2, { kind: "holder", logs: LOGS })]);
    const r = decide(o, emptyMemory(), cfg, 97_000);
    expect(r.plan.fences).toEqual([]);
    expect(r.plan.other.filter((a) => a.kind === "promote").map((a) => ("id" in a ? a.id : -1))).toEqual([1, 2]);
    expect(r.memory.boundary).toMatchObject({ epoch: 1, coHolders: [1, 2] });
  });
});

test("rule 2: kept co-holders whose hand-out cannot happen are demoted like any extra holder", () => {
  const cfg = config({ restTimeoutMs: 200 });
  const o = observation(97_000, [runner(0, { kind: "holder", logs: LOGS }), runner(1, { kind: "holder", logs: LOGS }), runner(2, { kind: "hang" })]);
  const r = decide(o, emptyMemory(), cfg, 97_000);
  expect(summary(r.plan).fences.sort()).toEqual(["demote#1", "freeze#2"]);
  expect(r.plan.other.filter((a) => a.kind === "promote")).toEqual([]);
});

describe("rule 3: cold standbys regain this epoch's schedule", () => {
  const obs = (t: number) => observation(t, [runner(0, { kind: "holder", logs: LOGS }), runner(1, { kind: "standby", logs: [] }), runner(2, { kind: "standby", logs: [] })]);

  test("key mode boot: one cold standby at a time reboots with --secret, its permit saying key first", () => {
    const cfg = config({ keyMode: "boot" });
    const first = run(cfg, [obs(T)], { ...emptyMemory(), bootObservedMs: 20_000 });
    expect(summary(first.result.plan).other).toEqual([]);
    expect(first.result.plan.bootModes![1]).toBe("key");
    const second = run(cfg, [obs(T + 500)], first.memory);
    expect(summary(second.result.plan).other).toEqual(["restart#1"]);
    // #1 boots: #2 waits its turn.
    const booting = observation(T + 1_000, [runner(0, { kind: "holder" }), runner(1, { kind: "booting", unit: { mainPid: 3001, sinceMs: T + 600 } }), runner(2, { kind: "standby" })]);
    const third = run(cfg, [booting], second.memory);
    expect(summary(third.result.plan).other).toEqual([]);
  });

  test("not when it could not be warm before the epoch's last slot", () => {
    const { result } = run(config({ keyMode: "boot" }), [obs(T), obs(T + 500)], { ...emptyMemory(), bootObservedMs: 65_000 });
    expect(summary(result.plan).other).toEqual([]);
  });

  test("never the last other healthy runner", () => {
    const cfg = config({ keyMode: "boot", cntRunners: 2 });
    const o = (t: number) => observation(t, [runner(0, { kind: "holder", logs: LOGS }), runner(1, { kind: "standby", logs: [] })]);
    const { result } = run(cfg, [o(T), o(T + 500), o(T + 1_000)]);
    expect(summary(result.plan).other).toEqual([]);
  });

  test("key mode rest: no remedy mid-epoch, and the log says so", () => {
    const { result } = run(config({ keyMode: "rest" }), [obs(T), obs(T + 500)]);
    expect(summary(result.plan).other).toEqual([]);
    expect(result.plan.notes.join()).toContain("no mid-epoch remedy exists until the next boundary");
  });
});

describe("rule 4: how a runner boots depends on whether its boot fits between the windows", () => {
  // A busy epoch: a leader slot every 3 slots from 20 on.
  const busy = Array.from({ length: 26 }, (_, i) => pending(0, 20 + 3 * i));
  const obs = (t: number, logs = busy, booting = false) =>
    observation(t, [
      runner(0, { kind: "holder", logs }),
      runner(1, { kind: "standby", logs }),
      booting ? runner(2, { kind: "booting", unit: { mainPid: 3002, sinceMs: t - 2_000 } }) : runner(2, { kind: "standby", logs }),
    ]);

  test("busy: passive (frozen through every window it would never finish); sparse: with the key", () => {
    const cfg = config({ keyMode: "boot" });
    const m = { ...emptyMemory(), bootObservedMs: 20_000 };
    expect(run(cfg, [obs(T)], m).result.plan.bootModes).toEqual({ 0: "passive", 1: "passive", 2: "passive" });
    expect(run(cfg, [obs(T, LOGS)], m).result.plan.bootModes).toEqual({ 0: "key", 1: "key", 2: "key" });
    expect(bootFits([{ absSlot: 1, startMs: 10_000, endMs: 12_000 }], 0, 5_000, 1_000).fits).toBe(true);
  });

  test("the daemon's boot permits follow the plan's boot modes (key mode rest: always passive)", () => {
    const modes = { 0: "key", 1: "passive", 2: "key" } as const;
    expect([...bootPermits(3, "boot", 5, modes).values()].map((p) => p.boot)).toEqual(["key", "passive", "key"]);
    expect([...bootPermits(3, "rest", 5, modes).values()].map((p) => p.boot)).toEqual(["passive", "passive", "passive"]);
  });

  test("a runner started while every permit said passive boots key-less: not frozen near a window", () => {
    const cfg = config({ keyMode: "boot" });
    const m = { ...emptyMemory(), bootObservedMs: 20_000 };
    const { memory } = run(cfg, [obs(21_000), obs(21_500)], m);
    // Started at 22.5 s, seen booting at 24.5 s, 500 ms before slot 26's window.
    const r = run(cfg, [obs(24_500, busy, true)], memory).result;
    expect(r.views.find((v) => v.id === 2)!.cap).toBe("keyless");
    expect(r.plan.fences).toEqual([]);
  });
});

describe("rule 5: a signer on a stale tip hands the key on before the next window", () => {
  const cfg = config();
  const obs = (t: number, h0: number) =>
    observation(t, [runner(0, { kind: "holder", height: h0, logs: LOGS }), runner(1, { kind: "standby", height: 1000, logs: LOGS }), runner(2, { kind: "standby", height: 999, logs: LOGS })]);

  test("signer_max_lag blocks behind, a window 3 s ahead: the in-sync warm standby takes over", () => {
    expect(cfg.signerMaxLag).toBe(2);
    const r = run(cfg, [obs(46_000, 998)]).result;
    expect(summary(r.plan)).toEqual({ fences: ["demote#0"], promote: "promote#1", other: [] });
  });

  test("one block behind for longer than a slot: stale too, the key moves", () => {
    const r = run(cfg, [obs(44_000, 999), obs(45_100, 999)]).result;
    expect(summary(r.plan)).toEqual({ fences: ["demote#0"], promote: "promote#1", other: [] });
  });

  test("one block behind (jitter) or no window near: the key stays", () => {
    expect(summary(run(cfg, [obs(46_000, 999)]).result.plan)).toEqual({ fences: [], promote: null, other: [] });
    expect(summary(run(cfg, [obs(T, 997)]).result.plan)).toEqual({ fences: [], promote: null, other: [] });
  });
});
