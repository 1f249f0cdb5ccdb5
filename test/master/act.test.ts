// The shell's hands: every fence is read back, and a promotion follows only verified fences.
import { describe, expect, test } from "bun:test";
import { act, type MasterDeps } from "../../src/master/act.ts";
import { applyOutcomes } from "../../src/master/memory.ts";
import { emptyMemory } from "../../src/master/decide.ts";
import type { ServiceManager, Signal, UnitState } from "../../src/ports.ts";
import type { Action, Plan } from "../../src/master/types.ts";
import { ok, fail, type NodeApi, type NodeResult } from "../../src/node/types.ts";
import { VirtualClock } from "../../src/sim/clock.ts";

interface FakeNode {
  keys: number[];
  /** DELETE answers ok but does nothing (a node that lies or races) */
  deleteIgnored?: boolean;
  /** every call fails as unreachable */
  dead?: boolean;
  posts: number;
}

/** Who holds each runner's REST port (by pid); absent: the unit's main process. */
function fakes(nodes: Record<number, FakeNode>, units: Record<number, Partial<UnitState>> = {}, portHolder: Record<number, number> = {}) {
  const calls: string[] = [];
  const clock = new VirtualClock(0);
  const unreachable = <T>(): NodeResult<T> => fail({ kind: "unreachable", reason: "timeout", message: "deadline" });
  const api = (id: number): NodeApi => {
    const n = nodes[id]!;
    return {
      stats: async () => unreachable(),
      settings: async () => unreachable(),
      leaders: async () => (n.dead ? unreachable() : ok([...n.keys])),
      addLeader: async () => {
        calls.push(`POST #${id}`);
        if (n.dead) return unreachable();
        n.posts++;
        if (!n.keys.includes(1)) n.keys.push(1);
        return ok(1);
      },
      removeLeader: async (lid) => {
        calls.push(`DELETE #${id}/${lid}`);
        if (n.dead) return unreachable();
        if (!n.deleteIgnored) n.keys = n.keys.filter((k) => k !== lid);
        return ok(true);
      },
      leaderLogs: async () => ok([]),
      shutdown: async () => ok(undefined),
      tip: async () => ok("00"),
    };
  };
  const state = (id: number): UnitState => ({ id, activeState: "active", subState: "running", mainPid: 100 + id, sinceMs: 0, restarts: 0, frozen: false, ...units[id] });
  const services: ServiceManager = {
    showAll: async (ids) => new Map(ids.map((id) => [id, state(id)] as const)),
    start: async (id) => void calls.push(`start #${id}`),
    stop: async (id) => {
      calls.push(`stop #${id}`);
      units[id] = { ...units[id], activeState: "inactive", mainPid: 0, frozen: null };
    },
    restart: async (id) => void calls.push(`restart #${id}`),
    kill: async (id, sig: Signal) => {
      calls.push(`${sig} #${id}`);
      if (sig === "SIGSTOP" && !units[id]?.frozen) units[id] = { ...units[id], frozen: units[id]?.frozen === null ? null : true };
      if (sig === "SIGKILL") units[id] = { ...units[id], mainPid: 0, activeState: "activating", frozen: null };
    },
    armFreeze: async (id, at) => void calls.push(`arm #${id}@${at}`),
    disarmFreeze: async (id) => void calls.push(`disarm #${id}`),
  };
  const checks: string[] = [];
  const listener = {
    whyNotRunner: async (id: number, pid: number) => {
      checks.push(`check #${id} pid ${pid}`);
      const holder = portHolder[id] ?? pid;
      return holder === pid ? null : `port held by pid ${holder}`;
    },
  };
  const deps: MasterDeps = { node: api, services, clock, pooltool: null, readSecret: async () => ({ genesis: { node_id: "aa" } }), listener };
  return { deps, calls, checks, units };
}

const plan = (p: Partial<Plan>): Plan => ({ fences: [], promote: null, other: [], wakeAtMs: 0, notes: [], ...p });
const promote1: Plan["promote"] = { kind: "promote", purpose: "sign", id: 1, reason: "test" };

describe("act", () => {
  test("demote, read back empty, then promote", async () => {
    const f = fakes({ 0: { keys: [1], posts: 0 }, 1: { keys: [], posts: 0 } });
    const out = await act(f.deps, plan({ fences: [{ kind: "demote", id: 0, reason: "t", leaderIds: [1] }], promote: promote1 }));
    expect(out.map((o) => [o.action.kind, o.ok])).toEqual([["demote", true], ["promote", true]]);
    expect(f.calls).toEqual(["DELETE #0/1", "disarm #0", "POST #1"]);
  });

  test("the key is posted only once the runner unit's main process is proven to hold the REST port", async () => {
    const f = fakes({ 0: { keys: [], posts: 0 }, 1: { keys: [], posts: 0 } });
    await act(f.deps, plan({ promote: promote1 }));
    expect(f.checks).toEqual(["check #1 pid 101"]);
    expect(f.calls).toEqual(["POST #1"]);
    // Another process bound the port (the runner restarting): no POST, a failure (logged as an error).
    const g = fakes({ 0: { keys: [], posts: 0 }, 1: { keys: [], posts: 0 } }, {}, { 1: 4242 });
    const out = await act(g.deps, plan({ promote: promote1 }));
    expect(out.map((o) => [o.action.kind, o.ok, o.transient ?? false])).toEqual([["promote", false, false]]);
    expect(out[0]!.detail).toContain("port held by pid 4242");
    expect(g.calls.filter((c) => c.startsWith("POST"))).toEqual([]);
    // No main process, or no way to check: no POST either.
    const h = fakes({ 0: { keys: [], posts: 0 }, 1: { keys: [], posts: 0 } }, { 1: { mainPid: 0, activeState: "activating" } });
    expect((await act(h.deps, plan({ promote: promote1 })))[0]!.ok).toBe(false);
    expect(h.calls.filter((c) => c.startsWith("POST"))).toEqual([]);
    const { listener: _, ...unchecked } = fakes({ 1: { keys: [], posts: 0 } }).deps;
    const noCheck = fakes({ 1: { keys: [], posts: 0 } });
    const out2 = await act({ ...unchecked, node: noCheck.deps.node }, plan({ promote: promote1 }));
    expect(out2[0]!.ok).toBe(false);
    expect(noCheck.calls).toEqual([]);
    expect(out2[0]!.detail).toContain("no way to check");
  });

  test("systemd unreadable while a fence is read back: the fence is unverified (no promotion), nothing throws", async () => {
    for (const fence of [
      { kind: "freeze", id: 0, cause: "fence", reason: "t" },
      { kind: "kill", id: 0, pid: 100, reason: "t" },
      { kind: "retire", id: 0, reason: "t" },
    ] as const) {
      const f = fakes({ 0: { keys: [1], posts: 0 }, 1: { keys: [], posts: 0 } });
      f.deps.services.showAll = async () => {
        throw new Error("Failed to connect to bus");
      };
      let t = 0;
      f.deps.clock = { now: () => t, sleep: async (ms) => void (t += ms) };
      const out = await act(f.deps, plan({ fences: [fence], promote: promote1 }));
      expect(out.map((o) => [o.action.kind, o.ok])).toEqual([[fence.kind, false], ["promote", false]]);
      expect(f.calls.filter((c) => c.startsWith("POST"))).toEqual([]);
    }
  });

  test("a demotion that does not read back empty is a failure, and no promotion follows (the seed promoted anyway)", async () => {
    const f = fakes({ 0: { keys: [1], posts: 0, deleteIgnored: true }, 1: { keys: [], posts: 0 } });
    const out = await act(f.deps, plan({ fences: [{ kind: "demote", id: 0, reason: "t", leaderIds: [1] }], promote: promote1 }));
    expect(out[0]).toMatchObject({ ok: false, detail: "still lists keys [1]" });
    expect(out[1]).toMatchObject({ ok: false, detail: "not attempted: a fence was not verified" });
    expect(f.calls).not.toContain("POST #1");
  });

  test("a freeze counts only when /proc shows the process stopped", async () => {
    const f = fakes({ 0: { keys: [1], posts: 0, dead: true }, 1: { keys: [], posts: 0 } }, { 0: { frozen: null } });
    const out = await act(f.deps, plan({ fences: [{ kind: "freeze", id: 0, cause: "fence", reason: "t" }], promote: promote1 }));
    expect(out[0]).toMatchObject({ ok: false });
    expect(out[1]!.ok).toBe(false);
    const g = fakes({ 0: { keys: [1], posts: 0, dead: true }, 1: { keys: [], posts: 0 } });
    const out2 = await act(g.deps, plan({ fences: [{ kind: "freeze", id: 0, cause: "fence", reason: "t" }], promote: promote1 }));
    expect(out2.map((o) => o.ok)).toEqual([true, true]);
    expect(g.calls).toEqual(["SIGSTOP #0", "POST #1"]);
  });

  test("fences that held only after the next window opened void the promotion: the fenced runner could sign in it", async () => {
    const demote: Action = { kind: "demote", id: 0, reason: "t", leaderIds: [1] };
    const late = fakes({ 0: { keys: [1], posts: 0 }, 1: { keys: [], posts: 0 } });
    late.deps.clock.now = () => 5_001;
    const out = await act(late.deps, plan({ fences: [demote], promote: { ...promote1!, fencedByMs: 5_000 } }));
    expect(out[1]).toMatchObject({ ok: false, transient: true, detail: "not attempted: the fences held only after the next window opened" });
    expect(late.calls).not.toContain("POST #1");
    const inTime = fakes({ 0: { keys: [1], posts: 0 }, 1: { keys: [], posts: 0 } });
    inTime.deps.clock.now = () => 5_000;
    expect((await act(inTime.deps, plan({ fences: [demote], promote: { ...promote1!, fencedByMs: 5_000 } })))[1]!.ok).toBe(true);
    // Nothing fenced this tick: everyone was proven unable by the observation, so the deadline does not apply.
    const none = fakes({ 1: { keys: [], posts: 0 } });
    none.deps.clock.now = () => 9_000;
    expect((await act(none.deps, plan({ promote: { ...promote1!, fencedByMs: 5_000 } })))[0]!.ok).toBe(true);
  });

  test("kill: SIGKILL and the old pid must be gone", async () => {
    const f = fakes({ 0: { keys: [1], posts: 0 } });
    const out = await act(f.deps, plan({ fences: [{ kind: "kill", id: 0, pid: 100, reason: "t" }] }));
    expect(out[0]).toMatchObject({ ok: true, detail: "pid 100 gone" });
  });

  test("retire: SIGKILL first (stop would thaw a frozen holder), then stop", async () => {
    const f = fakes({ 4: { keys: [1], posts: 0 } }, { 4: { frozen: true } });
    const out = await act(f.deps, plan({ fences: [{ kind: "retire", id: 4, reason: "t" }] }));
    expect(f.calls).toEqual(["SIGKILL #4", "stop #4"]);
    expect(out[0]!.ok).toBe(true);
  });

  test("a boundary hand-out arms the dead-man switch before posting; no switch, no hand-out", async () => {
    const f = fakes({ 1: { keys: [], posts: 0 } });
    const handout: Action = { kind: "promote", purpose: "boundary", id: 1, reason: "t", leaseAtMs: 5_000 };
    await act(f.deps, plan({ other: [handout] }));
    expect(f.calls).toEqual(["arm #1@5000", "POST #1"]);
    const g = fakes({ 1: { keys: [], posts: 0 } });
    delete g.deps.services.armFreeze;
    const out = await act(g.deps, plan({ other: [handout] }));
    expect(out[0]).toMatchObject({ ok: false });
    expect(g.calls).toEqual([]);
  });

  test("a failed POST disarms a hand-out's switch, but not a cluster promotion's (the lost answer may have given the key)", async () => {
    const handout: Action = { kind: "promote", purpose: "boundary", id: 1, reason: "t", leaseAtMs: 5_000 };
    const f = fakes({ 1: { keys: [], posts: 0, dead: true } });
    await act(f.deps, plan({ other: [handout] }));
    expect(f.calls).toEqual(["arm #1@5000", "POST #1", "disarm #1"]);
    const g = fakes({ 1: { keys: [], posts: 0, dead: true } });
    await act(g.deps, plan({ promote: { kind: "promote", purpose: "sign", id: 1, reason: "t", leaseAtMs: 5_000, switchStays: true } }));
    expect(g.calls).toEqual(["arm #1@5000", "POST #1"]);
  });

  test("a cluster promotion arms the switch at the lease's deadline as read right before arming, not the observation's (review h23)", async () => {
    // The observation put the allowance's end at 5000 on the wall clock; the clock then stepped back
    // 2 s (NTP): the same monotonic deadline now reads 3000. Armed at 5000, the switch would fire 2 s
    // after the allowance, and a daemon dead by then leaves the signer signing past it.
    const f = fakes({ 1: { keys: [], posts: 0 } });
    f.deps.cluster = () => ({ maySign: true, mustStopByMs: 3_000, takeoverSafeAtMs: null });
    await act(f.deps, plan({ promote: { kind: "promote", purpose: "sign", id: 1, reason: "t", leaseAtMs: 5_000, switchStays: true } }));
    expect(f.calls).toEqual(["arm #1@3000", "POST #1"]);
    // The allowance gone meanwhile (the lease lost, or a hand-over begun): no promotion at all
    const g = fakes({ 1: { keys: [], posts: 0 } });
    g.deps.cluster = () => ({ maySign: false, mustStopByMs: null, takeoverSafeAtMs: null });
    const out = await act(g.deps, plan({ promote: { kind: "promote", purpose: "sign", id: 1, reason: "t", leaseAtMs: 5_000, switchStays: true } }));
    expect(out[0]).toMatchObject({ ok: false });
    expect(g.calls).toEqual([]);
  });

  test("a verified demotion disarms any dead-man switch", async () => {
    const f = fakes({ 2: { keys: [1], posts: 0 } });
    await act(f.deps, plan({ fences: [{ kind: "demote", id: 2, reason: "t", leaderIds: [1] }] }));
    expect(f.calls).toEqual(["DELETE #2/1", "disarm #2"]);
  });

  test("outcomes fold into memory: a verified demotion proves key-less, a promotion makes the signer", () => {
    const m0 = emptyMemory();
    m0.runners[0] = { pid: 100, firstSeenMs: 0, runningSinceMs: 0, answered: true, bootedAtMs: 0, deadSinceMs: null, keylessProof: false, lastLeaderIds: [1], frozenByUs: null, pendingSlots: [], logsReadMs: 0, logsWanted: false, holderSinceMs: 0, unableSinceMs: null, startedMs: 0, everRunning: true, ableUntilMs: 0, ableAtLastTick: true };
    m0.runners[1] = { ...m0.runners[0], pid: 101, lastLeaderIds: [], keylessProof: true, holderSinceMs: null };
    const m1 = applyOutcomes(
      m0,
      [
        { action: { kind: "demote", id: 0, reason: "", leaderIds: [1] }, ok: true, detail: "" },
        { action: promote1!, ok: true, detail: "", leaderId: 1 },
      ],
      1_000,
    );
    expect(m1.runners[0]!.keylessProof).toBe(true);
    expect(m1.runners[1]!.keylessProof).toBe(false);
    expect(m1.runners[1]!.lastLeaderIds).toEqual([1]);
    expect(m1.signer).toBe(1);
  });

  test("a port that throws fails only its own action: systemctl show timing out keeps the tick's other outcomes", async () => {
    const f = fakes({ 0: { keys: [1], posts: 0 }, 1: { keys: [], posts: 0 }, 2: { keys: [1], posts: 0 }, 3: { keys: [], posts: 0 } });
    f.deps.services.showAll = async () => {
      throw new Error("systemctl show: timed out after 5000 ms");
    };
    // Time moves on by itself, so a fence that polls its read-back gives up at its deadline.
    let t = 0;
    f.deps.clock = { now: () => t, sleep: async (ms) => void (t += ms) };
    const out = await act(
      f.deps,
      plan({
        fences: [
          { kind: "freeze", id: 0, cause: "fence", reason: "t" },
          { kind: "kill", id: 1, pid: 101, reason: "t" },
          { kind: "retire", id: 4, reason: "t" },
          { kind: "demote", id: 2, reason: "t", leaderIds: [1] },
        ],
        promote: promote1,
        other: [{ kind: "start", id: 3, reason: "t" }],
      }),
    );
    expect(out.map((o) => [o.action.kind, o.ok])).toEqual([
      ["freeze", false],
      ["kill", false],
      ["retire", false],
      ["demote", true],
      ["promote", false],
      ["start", true],
    ]);
    // Each failure says why (the read-back could not be had), not "tick failed".
    for (const o of out.slice(0, 3)) expect(o.detail.length).toBeGreaterThan(0);
    expect(out[4]!.detail).toBe("not attempted: a fence was not verified");
  });

  test("a node client that throws instead of answering a result is a failed action too", async () => {
    const f = fakes({ 0: { keys: [1], posts: 0 } });
    const broken = f.deps.node(0);
    f.deps.node = () => ({ ...broken, leaders: async () => { throw new TypeError("Invalid URL"); } });
    const out = await act(f.deps, plan({ fences: [{ kind: "demote", id: 0, reason: "t", leaderIds: [] }] }));
    expect(out).toEqual([{ action: expect.objectContaining({ kind: "demote" }), ok: false, detail: "failed: Invalid URL" }]);
  });
});
