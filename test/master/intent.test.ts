import { describe, expect, test } from "bun:test";
import { decide, emptyMemory } from "../../src/master/decide.ts";
import { HANDOVER_EXPECTED_MS, hostHandoverDecision, lostSlots, parseHolds, provenKeyless, switchoverDecision, type OperatorIntent, type SwitchoverInput } from "../../src/master/intent.ts";
import type { Memory, Observation, RunnerView } from "../../src/master/types.ts";
import { config, observation, pending, runner } from "./fixtures.ts";
import { run } from "./plan-helpers.ts";

const rv = (id: number, over: Partial<RunnerView> = {}): RunnerView => ({
  id, cap: "keyless", pid: 100 + id, running: true, responsive: true, nodeState: "Running", height: 1000, leaderIds: [], busy: false, unitActive: true, frozen: false, ...over,
});
const hold = { reason: "maintenance", sinceMs: 0 };
const so = (target: number | null, force = false) => ({ target, force, requestedMs: 0, from: 0 });

function input(over: Partial<SwitchoverInput> & { slots?: Record<number, number[]> } = {}): SwitchoverInput {
  const slots = over.slots ?? { 0: [50, 70], 1: [50, 70], 2: [] };
  return {
    intent: { holds: {}, switchover: so(null) },
    signer: rv(0, { cap: "holder", leaderIds: [1] }),
    standbys: [rv(1), rv(2)],
    pendingAheadSlots: (id) => slots[id] ?? [],
    pick: (vs) => vs[0]!,
    nextWindowInMs: 20_000,
    leadMs: 2_000,
    boundaryNear: false,
    epochKnown: true,
    ...over,
  };
}

describe("switchoverDecision", () => {
  const cases: [string, Partial<SwitchoverInput> & { slots?: Record<number, number[]> }, string, number?][] = [
    ["nothing asked, nothing held: no decision", { intent: { holds: {}, switchover: null } }, "none"],
    ["to the best standby in a gap", {}, "move", 1],
    ["to a named standby that holds the coming slots", { intent: { holds: {}, switchover: so(1) } }, "move", 1],
    ["a named standby lacking the coming slots is refused without --force", { intent: { holds: {}, switchover: so(2) } }, "refuse"],
    ["…and moved to with --force", { intent: { holds: {}, switchover: so(2, true) } }, "move", 2],
    ["a held target is refused", { intent: { holds: { 1: hold }, switchover: so(1) } }, "refuse"],
    ["the signer as target is refused", { intent: { holds: {}, switchover: so(0) } }, "refuse"],
    ["the best standby skips held ones", { intent: { holds: { 1: hold }, switchover: so(null, true) } }, "move", 2],
    ["the best standby prefers one holding the slots", { standbys: [rv(2), rv(1)] }, "move", 1],
    ["inside a window it waits", { nextWindowInMs: -500 }, "wait"],
    ["too close to the next window it waits", { nextWindowInMs: 1_500 }, "wait"],
    ["no window ahead is a gap", { nextWindowInMs: null }, "move", 1],
    ["near the boundary hand-out it waits", { boundaryNear: true }, "wait"],
    ["schedule unknown: it waits", { epochKnown: false }, "wait"],
    ["a named target not healthy yet: it waits", { intent: { holds: {}, switchover: so(3) } }, "wait"],
    ["a held signer implies a switchover", { intent: { holds: { 0: hold }, switchover: null } }, "move", 1],
    ["a held signer with no standby holding the slots keeps the key", { intent: { holds: { 0: hold }, switchover: null }, standbys: [rv(2)] }, "wait"],
    ["done once another runner signs", { intent: { holds: {}, switchover: so(null) }, signer: rv(1, { cap: "holder" }) }, "none"],
  ];
  for (const [name, over, kind, target] of cases) {
    test(name, () => {
      const d = switchoverDecision(input(over));
      expect(d?.kind ?? "none").toBe(kind);
      if (d?.kind === "move") expect(d.target.id).toBe(target!);
    });
  }

  test("lostSlots counts the signer's slots the target lacks", () => {
    expect(lostSlots([50, 70, 90], [70])).toEqual([50, 90]);
    expect(lostSlots([], [1])).toEqual([]);
  });

  test("holds.json round trip refuses a malformed file", () => {
    expect(parseHolds({ holds: { "2": { reason: "disk", sinceMs: 5 } } })).toEqual({ 2: { reason: "disk", sinceMs: 5 } });
    expect(() => parseHolds({ holds: { x: {} } })).toThrow();
  });
});

// decide's gates: the same fixtures as decide.test.ts.
const LOGS = [pending(0, 50), pending(0, 70)];
const T = 10_000;
/** The memory after `obs`, the operator's intent on each, every action succeeding. */
const settle = (cfg: ReturnType<typeof config>, obs: Observation[], intent?: OperatorIntent): Memory => run(cfg, intent ? obs.map((o) => ({ ...o, intent })) : obs).memory;

describe("decide: operator gates", () => {
  const cfg = config();
  const three = (at: number, k0: "holder" | "standby" | "stopped" | "hang" = "holder", k1: "standby" | "stopped" | "holder" = "standby") =>
    observation(at, [runner(0, { kind: k0, logs: LOGS }), runner(1, { kind: k1, logs: LOGS }), runner(2, { kind: "standby", logs: LOGS })]);

  test("a switchover moves the key through the failover path: demote the signer, promote the target", () => {
    const m = settle(cfg, [three(T)]);
    const r = decide({ ...three(T + 100), intent: { holds: {}, switchover: { target: 2, force: false, requestedMs: T, from: 0 } } }, m, cfg, T + 100);
    expect(r.plan.fences.map((a) => `${a.kind}#${"id" in a ? a.id : ""}`)).toEqual(["demote#0"]);
    expect(r.plan.promote?.id).toBe(2);
    expect(r.plan.switchover?.kind).toBe("move");
  });

  test("holding the signer moves the key to an unheld standby", () => {
    const m = settle(cfg, [three(T)]);
    const r = decide({ ...three(T + 100), intent: { holds: { 0: hold, 1: hold }, switchover: null } }, m, cfg, T + 100);
    expect(r.plan.promote?.id).toBe(2);
  });

  test("a daemon restarted with the signer held adopts it and moves the key only to a standby holding the slots", () => {
    const intent = { holds: { 0: hold }, switchover: null };
    const cold = (at: number) => observation(at, [runner(0, { kind: "holder", logs: LOGS }), runner(1, { kind: "standby", logs: [] }), runner(2, { kind: "standby", logs: [] })]);
    const first = decide({ ...cold(T), intent }, emptyMemory(), cfg, T);
    expect(first.memory.signer).toBe(0);
    expect(first.plan.promote).toBeNull();
    expect(first.plan.fences).toEqual([]);
  });

  test("a held runner is never promoted on failover", () => {
    const m = settle(cfg, [three(T)]);
    const r = decide({ ...three(T + 100, "stopped"), intent: { holds: { 1: hold }, switchover: null } }, m, cfg, T + 100);
    expect(r.plan.promote?.id).toBe(2);
  });

  test("a held runner stopped by hand is not started", () => {
    const m = settle(cfg, [three(T)]);
    const free = decide(three(T + 100, "holder", "stopped"), m, cfg, T + 100);
    expect(free.plan.other.some((a) => a.kind === "start" && a.id === 1)).toBe(true);
    const held = decide({ ...three(T + 100, "holder", "stopped"), intent: { holds: { 1: hold }, switchover: null } }, m, cfg, T + 100);
    expect(held.plan.other.some((a) => "id" in a && a.id === 1)).toBe(false);
  });

  test("a held runner that holds the key beside the signer is still fenced", () => {
    const m = settle(cfg, [three(T)]);
    const r = decide({ ...three(T + 100, "holder", "holder"), intent: { holds: { 1: hold }, switchover: null } }, m, cfg, T + 100);
    expect(r.plan.fences.map((a) => `${a.kind}#${"id" in a ? a.id : ""}`)).toEqual(["demote#1"]);
  });

  test("a held standby is no boundary co-holder", () => {
    // Pool events early in epoch 0 only; the boundary hand-out runs near the end of the epoch.
    const c = config();
    const early = [pending(0, 5)];
    const at = (ms: number) => observation(ms, [runner(0, { kind: "holder", logs: early }), runner(1, { kind: "standby", logs: early }), runner(2, { kind: "standby", logs: early })]);
    const m = settle(c, [at(10_000)]);
    const end = 100 * 1000 - 1_500; // SETTINGS: 100 slots of 1 s; inside event_action of the boundary
    const free = decide(at(end), m, c, end);
    const co = (p: typeof free.plan) => p.other.filter((a) => a.kind === "promote").map((a) => ("id" in a ? a.id : -1));
    expect(co(free.plan)).toEqual([1, 2]);
    const held = decide({ ...at(end), intent: { holds: { 1: hold }, switchover: null } }, m, c, end);
    expect(co(held.plan)).toEqual([2]);
  });
});

describe("switchover --host: hostHandoverDecision (the safe moment) and provenKeyless (the proof)", () => {
  const gap = { nextWindowInMs: 20_000, leadMs: 2_000, boundaryNear: false, epochKnown: true, targetMayBeWarm: true, slotsLeft: 3, force: false };
  test("released in a gap with room for the promotion lead AND the whole hand-over", () => {
    expect(hostHandoverDecision({ ...gap, host: "host-b" })).toMatchObject({ kind: "release", host: "host-b" });
    expect(hostHandoverDecision({ ...gap, nextWindowInMs: null, host: "host-b" }).kind).toBe("release");
  });
  test("not while a window opens within lead + the hand-over's expected duration (the single-host gap would do)", () => {
    const tight = gap.leadMs + HANDOVER_EXPECTED_MS;
    expect(hostHandoverDecision({ ...gap, nextWindowInMs: tight, host: "host-b" }).kind).toBe("wait");
    expect(hostHandoverDecision({ ...gap, nextWindowInMs: tight + 1, host: "host-b" }).kind).toBe("release");
    // The same gap is enough for a switchover between runners of one host
    expect(switchoverDecision(input({ nextWindowInMs: tight }))?.kind).toBe("move");
    expect(hostHandoverDecision({ ...gap, nextWindowInMs: -500, host: "host-b" }).kind).toBe("wait");
  });
  test("not near the boundary, nor with the epoch's schedule unknown; never to this host", () => {
    expect(hostHandoverDecision({ ...gap, boundaryNear: true, host: "host-b" }).kind).toBe("wait");
    expect(hostHandoverDecision({ ...gap, epochKnown: false, host: "host-b" }).kind).toBe("wait");
    expect(hostHandoverDecision({ ...gap, host: "host-a", self: "host-a" }).kind).toBe("refuse");
  });
  test("the target host's standbys hold this epoch's schedule only on this host's boundary grant: without it, wait for the next boundary (or --force)", () => {
    const cold = hostHandoverDecision({ ...gap, targetMayBeWarm: false, host: "host-b" });
    expect(cold.kind).toBe("wait");
    expect(cold.why).toContain("3 remaining slots");
    expect(hostHandoverDecision({ ...gap, targetMayBeWarm: false, force: true, host: "host-b" }).kind).toBe("release");
    // Nothing left to lose this epoch: no need to wait
    expect(hostHandoverDecision({ ...gap, targetMayBeWarm: false, slotsLeft: 0, host: "host-b" }).kind).toBe("release");
  });
  test("switchoverDecision takes the cross-host path when the intent names a host (no runner is picked)", () => {
    const d = switchoverDecision(input({ intent: { holds: {}, switchover: { ...so(null), host: "host-b" } }, standbys: [] }));
    expect(d).toMatchObject({ kind: "release", host: "host-b" });
  });
  test("provenKeyless: key-less or stopped only; frozen, unknown and holders are not proof", () => {
    expect(provenKeyless([rv(0), rv(1, { cap: "stopped" })])).toEqual({ ok: true });
    for (const cap of ["frozen", "unknown", "holder", "booting-holder"] as const) {
      const r = provenKeyless([rv(0), rv(1, { cap })]);
      expect(r.ok).toBe(false);
      expect(!r.ok && r.why).toContain(`#1 (${cap})`);
    }
  });
  test("decide: the host switchover is a release far from a window (no runner move), a wait when slot 50's window is near", () => {
    const at = (t: number) => {
      const cluster = { maySign: true, mustStopByMs: 1e15, takeoverSafeAtMs: null, grantedEpoch: granted };
      const obs: Observation = { ...observation(t, [runner(0, { kind: "holder", logs: [pending(0, 50)] }), runner(1, { kind: "standby", logs: [pending(0, 50)] })]), intent: { holds: {}, switchover: { ...so(null), host: "host-b" } }, cluster };
      return decide(obs, emptyMemory(), config(), t).plan;
    };
    let granted: number | null = 0;
    expect(at(10_000).switchover?.kind).toBe("release");
    expect(at(10_000).promote).toBeNull();
    expect(at(49_000).switchover?.kind).toBe("wait");
    // No grant for epoch 0: slot 50 would be lost on host-b
    granted = null;
    expect(at(10_000).switchover).toMatchObject({ kind: "wait", why: expect.stringContaining("no boundary hand-out was granted") });
  });
});
