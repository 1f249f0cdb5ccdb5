import { describe, expect, test } from "bun:test";
import { applyOutcomes } from "../../src/master/memory.ts";
import { DEAD_RESTART_MS, best, decide, emptyMemory, partingFences, step } from "../../src/master/decide.ts";
import type { Memory, Observation, Plan, RunnerObs, RunnerView } from "../../src/master/types.ts";
import { SETTINGS, config, observation, pending, runner, stats, unit } from "./fixtures.ts";
import type { UnitExit } from "../../src/ports.ts";
import { allOk, run, summary } from "./plan-helpers.ts";


// Pool events at slots 50 and 70 of epoch 0 (t = 50 s, 70 s).
const LOGS = [pending(0, 50), pending(0, 70)];
const T = 10_000; // well before the first window

describe("decide: who signs", () => {
  const cfg = config();
  test("adopts a single healthy holder without moving anything", () => {
    const { result } = run(cfg, [observation(T, [runner(0, { kind: "standby", logs: LOGS }), runner(1, { kind: "holder", logs: LOGS }), runner(2, { kind: "standby", logs: LOGS })])]);
    expect(summary(result.plan)).toEqual({ fences: [], promote: null, other: [] });
    expect(result.memory.signer).toBe(1);
    // Left armed by a daemon killed mid-hand-out, its dead-man switch would freeze the signer.
    expect(result.plan.other).toEqual([{ kind: "disarm", id: 1, reason: expect.any(String), rule: "adopt" }]);
  });

  test("a double holder found on start-up is repaired before anything else: one stays, the other is demoted", () => {
    const { result } = run(cfg, [observation(T, [runner(0, { kind: "holder", logs: [] }), runner(1, { kind: "holder", logs: LOGS }), runner(2, { kind: "standby" })])]);
    // #1 has the schedule, so it keeps the key; #0 loses it.
    expect(result.memory.signer).toBe(1);
    expect(summary(result.plan).fences).toEqual(["demote#0"]);
    expect(result.plan.promote).toBeNull();
  });

  test("no key anywhere: the best standby is promoted (schedule first)", () => {
    const { result } = run(cfg, [observation(T, [runner(0, { kind: "standby", height: 1010, logs: [] }), runner(1, { kind: "standby", height: 1000, logs: LOGS }), runner(2, { kind: "standby", height: 1010 })])]);
    expect(summary(result.plan)).toEqual({ fences: [], promote: "promote#1", other: [] });
  });

  test("height ties and small leads never move the key", () => {
    const obs = (h0: number, h1: number) => observation(T, [runner(0, { kind: "holder", height: h0, logs: LOGS }), runner(1, { kind: "standby", height: h1, logs: LOGS })], { runners: [] });
    let m = emptyMemory();
    for (const [h0, h1] of [[1000, 1000], [1000, 1001], [1000, 1005], [1001, 1000]] as const) {
      const o = observation(T, [runner(0, { kind: "holder", height: h0, logs: LOGS }), runner(1, { kind: "standby", height: h1, logs: LOGS }), runner(2, { kind: "standby", height: h1 })]);
      const r = decide(o, m, cfg, T);
      expect(r.plan.promote).toBeNull();
      expect(r.plan.fences).toEqual([]);
      m = r.memory;
    }
    expect(obs).toBeDefined();
  });
});

describe("decide: failover fences first", () => {
  const cfg = config();
  const start = () => run(cfg, [observation(T, [runner(0, { kind: "holder", logs: LOGS }), runner(1, { kind: "standby", logs: LOGS }), runner(2, { kind: "standby", logs: [] })])]).memory;

  test("signer REST hangs: it is frozen, then the standby with a schedule is promoted", () => {
    const r = decide(observation(T + 500, [runner(0, { kind: "hang" }), runner(1, { kind: "standby" }), runner(2, { kind: "standby" })]), start(), cfg, T + 500);
    expect(summary(r.plan)).toEqual({ fences: ["freeze#0"], promote: "promote#1", other: [] });
  });

  test("signer crashed (unit inactive): no fence needed, promote at once", () => {
    const r = decide(observation(T + 500, [runner(0, { kind: "stopped" }), runner(1, { kind: "standby" }), runner(2, { kind: "standby" })]), start(), cfg, T + 500);
    expect(summary(r.plan).promote).toBe("promote#1");
    expect(r.plan.fences).toEqual([]);
    expect(summary(r.plan).other).toContain("start#0");
  });

  test("signer frozen by someone else: SIGKILL it before promoting (systemctl stop would thaw it)", () => {
    const r = decide(observation(T + 500, [runner(0, { kind: "frozen" }), runner(1, { kind: "standby" }), runner(2, { kind: "standby" })]), start(), cfg, T + 500);
    expect(summary(r.plan)).toEqual({ fences: ["kill#0"], promote: "promote#1", other: [] });
  });

  test("every runner frozen with the key and no signer (boundary switches fired, the signer fenced): all are killed so systemd restarts them", () => {
    // Found by the property test's coverage check (seed 543241289): the signer hung just before a
    // boundary and was frozen, the co-holders' dead-man switches froze the rest, and with nobody
    // healthy the frozen runners were never touched again: every later epoch was lost.
    const frozen = [0, 1, 2].map((id) => runner(id, { kind: "frozen" }));
    const r = decide(observation(T + 500, frozen), emptyMemory(), cfg, T + 500);
    expect(r.plan.promote).toBeNull();
    expect(summary(r.plan).other).toEqual(["kill#0", "kill#1", "kill#2"]);
    // With one healthy runner to promote, the others are killed only as fences of that promotion.
    const withStandby = decide(observation(T + 500, [runner(0, { kind: "frozen" }), runner(1, { kind: "standby" }), runner(2, { kind: "frozen" })]), emptyMemory(), cfg, T + 500);
    expect(summary(withStandby.plan).other.filter((a) => a.startsWith("kill"))).toEqual([]);
  });

  test("a cluster host that may not sign kills a runner its dead-man switch froze with the key, though a standby is healthy", () => {
    // Seen in the cluster e2e: cut off from etcd, the host's signer was frozen by its switch and
    // stayed frozen for as long as the daemon lived, one runner fewer after every such fault.
    const obs = observation(T + 500, [runner(0, { kind: "frozen" }), runner(1, { kind: "standby" })], { cluster: { maySign: false, mustStopByMs: null, takeoverSafeAtMs: null } });
    const r = decide(obs, emptyMemory(), config({ cntRunners: 2 }), T + 500);
    expect(r.plan.promote).toBeNull();
    expect([...r.plan.fences, ...r.plan.other].filter((a) => a.kind === "kill").map((a) => a.id)).toEqual([0]);
  });

  test("no standby has a schedule for the slots left: a silent or externally frozen signer is kept, not replaced", () => {
    // Only #0 computed this epoch; moving the key would lose every slot left, keeping it risks none.
    const m = run(cfg, [observation(T, [runner(0, { kind: "holder", logs: LOGS }), runner(1, { kind: "standby", logs: [] }), runner(2, { kind: "standby", logs: [] })])]).memory;
    for (const kind of ["hang", "frozen"] as const) {
      const r = decide(observation(T + 500, [runner(0, { kind }), runner(1, { kind: "standby" }), runner(2, { kind: "standby" })]), m, cfg, T + 500);
      expect(summary(r.plan)).toEqual({ fences: [], promote: null, other: [] });
      expect(r.memory.signer).toBe(0);
      expect(r.plan.notes.join()).toContain("keeping it until the boundary");
    }
    // Near the boundary the new epoch needs a healthy key holder: then it moves.
    const late = 100_000 - 4_000;
    const r = decide(observation(late, [runner(0, { kind: "hang" }), runner(1, { kind: "standby" }), runner(2, { kind: "standby" })]), m, cfg, late);
    expect(summary(r.plan)).toEqual({ fences: ["freeze#0"], promote: "promote#1", other: [] });
  });

  test("signer stuck beyond max_offset after boot_catch_up: demote it, promote a standby", () => {
    const m = start();
    m.runners[0]!.runningSinceMs = -100_000;
    const r = decide(observation(T + 500, [runner(0, { kind: "holder", height: 990 }), runner(1, { kind: "standby", height: 1000 }), runner(2, { kind: "standby", height: 1000 })]), m, cfg, T + 500);
    expect(summary(r.plan)).toEqual({ fences: ["demote#0"], promote: "promote#1", other: [] });
  });

  test("a lag within boot_catch_up is tolerated", () => {
    const m = start();
    m.runners[0]!.runningSinceMs = T - 1000;
    const r = decide(observation(T + 500, [runner(0, { kind: "holder", height: 990 }), runner(1, { kind: "standby", height: 1000 }), runner(2, { kind: "standby", height: 1000 })]), m, cfg, T + 500);
    expect(r.plan.promote).toBeNull();
  });

  test("PoolTool's majority max counts as the reference height", () => {
    const cfg = config({ startBeforeEventMs: 20_000 });
    const m = start();
    for (const id of [0, 1, 2]) m.runners[id]!.runningSinceMs = -100_000;
    const r = decide(
      observation(T + 500, [runner(0, { kind: "holder", height: 1000 }), runner(1, { kind: "standby", height: 1000 }), runner(2, { kind: "standby", height: 1000 })], { majorityMax: 1020 }),
      m,
      cfg,
      T + 500,
    );
    // Everyone is behind PoolTool: nobody better, so the key stays and the stuck standbys restart.
    expect(r.plan.promote).toBeNull();
    expect(summary(r.plan).other.sort()).toEqual(["restart#1", "restart#2"]);
  });

  test("a standby whose REST died without proof of being key-less is frozen even while the signer is fine", () => {
    const r = decide(observation(T + 500, [runner(0, { kind: "holder" }), runner(1, { kind: "hang" }), runner(2, { kind: "standby" })]), emptyMemory(), cfg, T + 500);
    expect(summary(r.plan).fences).toEqual(["freeze#1"]);
  });

  test("a standby proven key-less in this incarnation is not fenced when its REST dies; it is restarted after a while", () => {
    const m = start();
    const r1 = decide(observation(T + 500, [runner(0, { kind: "holder" }), runner(1, { kind: "hang" }), runner(2, { kind: "standby" })]), m, cfg, T + 500);
    expect(r1.plan.fences).toEqual([]);
    const later = T + 1000 + DEAD_RESTART_MS;
    const r2 = decide(observation(later, [runner(0, { kind: "holder" }), runner(1, { kind: "hang" }), runner(2, { kind: "standby" })]), r1.memory, cfg, later);
    expect(summary(r2.plan).other).toEqual(["kill#1"]);
  });

  test("nobody can take over and the signer hangs: one possible signer is no risk, nothing is fenced", () => {
    const r = decide(observation(T + 500, [runner(0, { kind: "hang" }), runner(1, { kind: "booting" }), runner(2, { kind: "stopped" })]), start(), config({ keyMode: "rest" }), T + 500);
    expect(r.plan.fences).toEqual([]);
    expect(r.plan.promote).toBeNull();
    expect(r.memory.signer).toBe(0);
  });
});

describe("decide: a proof expires when its evidence cannot be refreshed", () => {
  const cfg = config();
  const warm = () => run(cfg, [observation(T, [runner(0, { kind: "holder", logs: LOGS }), runner(1, { kind: "standby", logs: LOGS }), runner(2, { kind: "standby", logs: [] })])]).memory;
  const blind = (o: RunnerObs): RunnerObs => ({ ...o, unit: null });
  const fencedIds = (p: Plan) => p.fences.map((a) => ("id" in a ? a.id : -1));

  test("a key-less proof does not outlive a restart systemd could not report: #1 back with --secret and a busy enclave is fenced", () => {
    // systemctl show fails; #1 restarts unseen with --secret: 503, then Running with /leaders timing out.
    const booting = decide(observation(T + 500, [blind(runner(0, { kind: "holder" })), blind(runner(1, { kind: "booting" })), blind(runner(2, { kind: "standby" }))]), warm(), cfg, T + 500);
    expect(booting.views.find((v) => v.id === 1)!.cap).not.toBe("keyless");
    const busy = decide(observation(T + 1_000, [blind(runner(0, { kind: "holder" })), blind(runner(1, { kind: "busy" })), blind(runner(2, { kind: "standby" }))]), booting.memory, cfg, T + 1_000);
    expect(fencedIds(busy.plan)).toContain(1);
  });

  test("systemd unreadable for one tick is enough: the proof is not taken back when it reads again", () => {
    const gap = decide(observation(T + 500, [runner(0, { kind: "holder" }), blind(runner(1, { kind: "hang" })), runner(2, { kind: "standby" })]), warm(), cfg, T + 500);
    expect(fencedIds(gap.plan)).toContain(1);
    const back = decide(observation(T + 1_000, [runner(0, { kind: "holder" }), runner(1, { kind: "hang" }), runner(2, { kind: "standby" })]), gap.memory, cfg, T + 1_000);
    expect(fencedIds(back.plan)).toContain(1);
  });

  test("same pid but another start time, a 503, or a fall in uptime: a new process, the proof is gone", () => {
    const hang = (over: Partial<RunnerObs>) => decide(observation(T + 500, [runner(0, { kind: "holder" }), { ...runner(1, { kind: "busy" }), ...over }, runner(2, { kind: "standby" })]), warm(), cfg, T + 500);
    // Control: the same process (pid and start time) keeps its proof while the enclave is busy.
    expect(fencedIds(hang({}).plan)).not.toContain(1);
    expect(fencedIds(hang({ unit: unit(1, { sinceMs: T + 100 }) }).plan)).toContain(1);
    expect(fencedIds(hang({ unit: unit(1, { sinceMs: null }) }).plan)).toContain(1);
    // uptime 100 s at T; 1 s at T + 500: it restarted in between.
    const restarted = { ...stats(1000), uptimeS: 1 };
    expect(fencedIds(hang({ stats: { ok: true, value: restarted } }).plan)).toContain(1);
    const notReady = decide(observation(T + 500, [runner(0, { kind: "holder" }), runner(1, { kind: "booting" }), runner(2, { kind: "standby" })]), warm(), cfg, T + 500);
    const thenBusy = decide(observation(T + 1_000, [runner(0, { kind: "holder" }), runner(1, { kind: "busy" }), runner(2, { kind: "standby" })]), notReady.memory, cfg, T + 1_000);
    expect(fencedIds(thenBusy.plan)).toContain(1);
  });
});

describe("decide: booting runners", () => {
  test("key mode boot: a booting runner is frozen only when a window is near, and thawed after it", () => {
    const cfg = config({ keyMode: "boot" });
    const m0 = run(cfg, [observation(T, [runner(0, { kind: "holder", logs: LOGS }), runner(1, { kind: "standby", logs: LOGS }), runner(2, { kind: "standby", logs: LOGS })])]).memory;
    const far = decide(observation(T + 500, [runner(0, { kind: "holder" }), runner(1, { kind: "standby" }), runner(2, { kind: "booting", unit: { mainPid: 2222 } })]), m0, cfg, T + 500);
    expect(far.plan.fences).toEqual([]);
    const nearT = 50_000 - 500 - 3_000; // 3 s before the slot-50 window, inside event_action (5 s)
    const near = decide(observation(nearT, [runner(0, { kind: "holder" }), runner(1, { kind: "standby" }), runner(2, { kind: "booting", unit: { mainPid: 2222 } })]), far.memory, cfg, nearT);
    expect(summary(near.plan).fences).toEqual(["freeze#2"]);
    const m2 = applyOutcomes(near.memory, allOk(near.plan), nearT);
    const during = decide(observation(50_200, [runner(0, { kind: "holder" }), runner(1, { kind: "standby" }), runner(2, { kind: "frozen", unit: { mainPid: 2222 } })]), m2, cfg, 50_200);
    expect(summary(during.plan).other).toEqual([]);
    const after = decide(observation(52_000, [runner(0, { kind: "holder" }), runner(1, { kind: "standby" }), runner(2, { kind: "frozen", unit: { mainPid: 2222 } })]), during.memory, cfg, 52_000);
    expect(summary(after.plan).other).toEqual(["thaw#2"]);
  });

  test("key mode rest: a booting runner is passive and never fenced", () => {
    const cfg = config({ keyMode: "rest" });
    const r = run(cfg, [observation(49_500, [runner(0, { kind: "holder", logs: LOGS }), runner(1, { kind: "booting" }), runner(2, { kind: "standby", logs: LOGS })])]).result;
    expect(r.plan.fences).toEqual([]);
  });

  test("a runner bootstrapping longer than max_boot is killed (Restart=always brings it back)", () => {
    const cfg = config({ maxBootMs: 900_000 });
    const r = run(cfg, [observation(1_000_000, [runner(0, { kind: "holder", logs: LOGS }), runner(1, { kind: "booting", unit: { sinceMs: 0 } }), runner(2, { kind: "standby" })])]).result;
    expect(summary(r.plan).other).toEqual(["kill#1"]);
  });

  test("stopped runners are started; all runners warm from a cold start", () => {
    const cfg = config();
    const r = run(cfg, [observation(T, [runner(0, { kind: "stopped" }), runner(1, { kind: "stopped" }), runner(2, { kind: "stopped" })])]).result;
    expect(summary(r.plan).other.sort()).toEqual(["start#0", "start#1", "start#2"]);
  });

  test("runners beyond cnt_runners are retired (SIGKILL, then stop) before anyone is promoted", () => {
    const cfg = config({ cntRunners: 2 });
    const extra = (id: number, kind: "standby" | "holder" | "stopped") => ({ ...runner(id, { kind }), stats: null, leaders: null });
    const r = run(cfg, [observation(T, [runner(0, { kind: "standby", logs: LOGS }), runner(1, { kind: "standby" }), extra(2, "holder"), extra(3, "standby"), extra(4, "stopped")])]).result;
    expect(summary(r.plan).fences).toEqual(["retire#2", "retire#3"]);
    expect(summary(r.plan).promote).toBe("promote#0");
    expect(summary(r.plan).other).toEqual([]);
  });
});

describe("decide: the epoch boundary", () => {
  const cfg = config({ eventActionMs: 5_000 });
  // Boundary at t = 100 s; last old-epoch event at slot 70.
  test("standbys take the key shortly before the boundary when no window lies before it, and lose it after", () => {
    const m0 = run(cfg, [observation(80_000, [runner(0, { kind: "holder", logs: LOGS }), runner(1, { kind: "standby", logs: LOGS }), runner(2, { kind: "standby", logs: LOGS })])]).memory;
    m0.runners[0]!.holderSinceMs = -1; // held since before the epoch: its list is the whole list
    const before = decide(observation(96_000, [runner(0, { kind: "holder", logs: LOGS }), runner(1, { kind: "standby" }), runner(2, { kind: "standby" })]), m0, cfg, 96_000);
    expect(summary(before.plan).other.sort()).toEqual(["promote#1", "promote#2"]);
    expect(before.plan.other.every((a) => a.kind === "promote" && a.purpose === "boundary")).toBe(true);
    // Each carries a dead-man switch set before slot 1's guarded window (100 s + 1 s − 0.5 s − 0.1 s).
    expect(before.plan.other.map((a) => (a.kind === "promote" ? a.leaseAtMs : null))).toEqual([100_400, 100_400]);
    const m1 = applyOutcomes(before.memory, allOk(before.plan), 96_000);
    expect(m1.signer).toBe(0);
    // Still before the boundary: co-holders are exempt.
    const still = decide(observation(98_000, [runner(0, { kind: "holder" }), runner(1, { kind: "holder" }), runner(2, { kind: "holder" })]), m1, cfg, 98_000);
    expect(still.plan.fences).toEqual([]);
    expect(still.plan.wakeAtMs).toBeLessThanOrEqual(100_001);
    // Right after it: they are demoted (the enclave applies it as soon as the schedule is computed).
    const after = decide(observation(100_001, [runner(0, { kind: "busy" }), runner(1, { kind: "busy" }), runner(2, { kind: "busy" })]), still.memory, cfg, 100_001);
    expect(summary(after.plan).fences.sort()).toEqual(["demote#1", "demote#2"]);
    expect(after.plan.promote).toBeNull();
  });

  test("no hand-out when a leader slot window lies between now and the boundary", () => {
    const logs = [pending(0, 50), pending(0, 98)];
    const m0 = run(cfg, [observation(80_000, [runner(0, { kind: "holder", logs }), runner(1, { kind: "standby", logs }), runner(2, { kind: "standby", logs })])]).memory;
    m0.runners[0]!.holderSinceMs = -1;
    const before = decide(observation(96_000, [runner(0, { kind: "holder" }), runner(1, { kind: "standby" }), runner(2, { kind: "standby" })]), m0, cfg, 96_000);
    expect(before.plan.other).toEqual([]);
  });

  test("no hand-out when slot_guard leaves no time in slot 1 to strip the co-holders", () => {
    const big = config({ eventActionMs: 5_000, slotGuardMs: 900 });
    const m0 = run(big, [observation(80_000, [runner(0, { kind: "holder", logs: LOGS }), runner(1, { kind: "standby", logs: LOGS }), runner(2, { kind: "standby", logs: LOGS })])]).memory;
    m0.runners[0]!.holderSinceMs = -1;
    const before = decide(observation(96_000, [runner(0, { kind: "holder" }), runner(1, { kind: "standby" }), runner(2, { kind: "standby" })]), m0, big, 96_000);
    expect(before.plan.other).toEqual([]);
    expect(before.plan.notes.join()).toContain("no boundary hand-out");
  });

  test("no hand-out while the epoch's schedule is unknown", () => {
    const m0 = run(cfg, [observation(80_000, [runner(0, { kind: "holder", logs: [] }), runner(1, { kind: "standby" }), runner(2, { kind: "standby" })])]).memory;
    m0.runners[0]!.holderSinceMs = 90_000; // got the key mid-epoch: its empty list proves nothing
    const before = decide(observation(96_000, [runner(0, { kind: "holder" }), runner(1, { kind: "standby" }), runner(2, { kind: "standby" })]), m0, cfg, 96_000);
    expect(before.plan.other).toEqual([]);
  });
});

describe("decide: timing and PoolTool", () => {
  test("the loop wakes before a window's lead time, not a full period later", () => {
    const cfg = config({ loopPeriodMs: 10_000, eventActionMs: 30_000 });
    const o = observation(15_000, [runner(0, { kind: "holder", logs: LOGS }), runner(1, { kind: "standby", logs: LOGS })]);
    const r = run(cfg, [o, { ...o, atMs: 15_001 }]).result;
    expect(r.plan.wakeAtMs).toBe(50_000 - 500 - 30_000);
  });

  test("the tip is shared only when it rose and send_wait passed", () => {
    const cfg = config({
      pooltool: { poolId: "p", userId: "u", genesis: "g", sendWaitMs: 60_000, recvWaitMs: 30_000, endpTip: "http://x", endpStats: "http://y" },
    });
    const o = (t: number, h: number) => observation(t, [runner(0, { kind: "holder", height: h, logs: LOGS }), runner(1, { kind: "standby", height: h })]);
    const a = run(cfg, [o(70_000, 1000)]);
    expect(summary(a.result.plan).other).toEqual(["reportTip"]);
    const b = decide(o(80_000, 1001), a.memory, cfg, 80_000);
    expect(summary(b.plan).other).toEqual([]); // within send_wait
    const c = decide(o(131_000, 1000), a.memory, cfg, 131_000);
    expect(summary(c.plan).other).toEqual([]); // not higher
    const d = decide(o(131_000, 1002), a.memory, cfg, 131_000);
    expect(summary(d.plan).other).toEqual(["reportTip"]);
  });

  test("best(): a schedule beats height; height beats holding the key only beyond max_offset", () => {
    const v = (id: number, height: number, cap: "holder" | "keyless" = "keyless"): RunnerView =>
      ({ id, cap, pid: 1, running: true, responsive: true, nodeState: "Running", height, leaderIds: [], busy: false, unitActive: true, frozen: false });
    expect(best([v(0, 100), v(1, 90)], (id) => (id === 1 ? 3 : 0), 100, 5).id).toBe(1);
    expect(best([v(0, 98), v(1, 100)], () => 0, 100, 5).id).toBe(0);
    expect(best([v(0, 80), v(1, 100)], () => 0, 100, 5).id).toBe(1);
    expect(best([v(0, 100), v(1, 100, "holder")], () => 0, 100, 5).id).toBe(1);
  });
});

describe("decide: retries", () => {
  test("a start that keeps failing backs off (1 s, 2 s, 4 s … 60 s) instead of spawning systemctl every tick", () => {
    const cfg = config();
    const obs = (t: number) => observation(t, [runner(0, { kind: "holder", logs: LOGS }), runner(1, { kind: "standby", logs: LOGS }), runner(2, { kind: "stopped" })]);
    let m = run(cfg, [obs(T)]).memory;
    const tried: number[] = [];
    for (let t = T; t < T + 10_000; t += 250) {
      const r = decide(obs(t), m, cfg, t);
      const start = r.plan.other.find((a) => a.kind === "start");
      if (start) tried.push(t - T);
      m = applyOutcomes(r.memory, start ? [{ action: start, ok: false, detail: "unit not found" }] : [], t);
      // a failure repeated is not a reason to look again in 50 ms
      if (start && m.failures["start#2"]!.count > 1) expect(r.plan.wakeAtMs).toBeGreaterThan(t + 50);
    }
    expect(tried).toEqual([0, 1_000, 3_000, 7_000]);
  });

  // systemctl start succeeds (the process starts), then the runner wrapper exits 78 and the unit
  // fails: without a back-off the master started it again at every tick (issue 9 point 13).
  test("a unit whose runs exit 78 is started again after 1 s, 2 s, 4 s … (up to 5 min), not every tick", () => {
    const cfg = config();
    const failed = (since: number): RunnerObs =>
      runner(2, { kind: "stopped", unit: { activeState: "failed", subState: "failed", sinceMs: since, lastExit: { result: "exit-code", code: "exited", status: 78, ranMs: 100 } } });
    const obs = (t: number, r2: RunnerObs) => observation(t, [runner(0, { kind: "holder", logs: LOGS }), runner(1, { kind: "standby", logs: LOGS }), r2]);
    let m = run(cfg, [obs(T, failed(T))]).memory;
    const started: number[] = [];
    let failedAt = T;
    for (let t = T; t < T + 60_000; t += 200) {
      const r = decide(obs(t, failed(failedAt)), m, cfg, t);
      const start = r.plan.other.find((a) => a.kind === "start");
      expect(r.plan.startBackoff?.[2]?.why).toContain("exited 78");
      if (start) {
        started.push(t - T);
        failedAt = t + 100; // the new run fails 100 ms later
      }
      m = applyOutcomes(r.memory, allOk(r.plan), t);
    }
    expect(started).toEqual([1_000, 3_000, 7_000, 15_000, 31_000]);
  });

  test("the back-off is capped at 5 min", () => {
    const cfg = config();
    const r2 = runner(2, { kind: "stopped", unit: { activeState: "failed", subState: "failed", sinceMs: T, lastExit: { result: "exit-code", code: "exited", status: 78, ranMs: 100 } } });
    const base = run(cfg, [observation(T, [runner(0, { kind: "holder", logs: LOGS }), r2])]).memory;
    const m: Memory = { ...base, startBackoff: { 2: { count: 20, lastMs: T, why: "x" } } };
    const at = (t: number) => decide(observation(t, [runner(0, { kind: "holder" }), r2]), m, cfg, t).plan.other.some((a) => a.kind === "start");
    expect(at(T + 299_000)).toBe(false);
    expect(at(T + 300_000)).toBe(true);
  });

  const exits: [string, UnitExit | null | undefined, boolean][] = [
    ["exit 78 (config error)", { result: "exit-code", code: "exited", status: 78, ranMs: 30_000 }, false],
    ["exit 1 within 5 s of its start", { result: "exit-code", code: "exited", status: 1, ranMs: 300 }, false],
    ["killed by a signal within 5 s", { result: "signal", code: "killed", status: 9, ranMs: 2_000 }, false],
    ["exit 1 after a long run", { result: "exit-code", code: "exited", status: 1, ranMs: 60_000 }, true],
    ["a clean stop right after start", { result: "success", code: "exited", status: 0, ranMs: 100 }, true],
    ["no run ended yet", null, true],
    ["exit status not read", undefined, true],
  ];
  for (const [name, lastExit, startsNow] of exits) test(`a unit failed 100 ms ago after ${name} ${startsNow ? "is started at once" : "waits"}`, () => {
    const u = { activeState: "failed" as const, subState: "failed", sinceMs: T - 100, ...(lastExit !== undefined ? { lastExit } : {}) };
    const o = observation(T, [runner(0, { kind: "holder", logs: LOGS }), runner(2, { kind: "stopped", unit: u })]);
    const r = decide(o, emptyMemory(), config(), T);
    expect(r.plan.other.some((a) => a.kind === "start" && a.id === 2)).toBe(startsNow);
    expect(r.plan.startBackoff?.[2] !== undefined).toBe(!startsNow);
  });

  test("a run that lasts past 5 s ends the streak", () => {
    const cfg = config();
    const streak = { 2: { count: 3, lastMs: T, why: "its last run exited 78" } };
    const at = (since: number) => {
      const o = observation(T + 6_000, [runner(0, { kind: "holder", logs: LOGS }), runner(2, { kind: "booting", unit: { mainPid: 2002, sinceMs: since } })]);
      return decide(o, { ...emptyMemory(), startBackoff: streak }, cfg, T + 6_000);
    };
    expect(at(T + 2_000).memory.startBackoff).toEqual(streak);
    expect(at(T).memory.startBackoff).toEqual({});
    expect(at(T).plan.startBackoff).toBeUndefined();
  });

  test("fences are never held back by earlier failures", () => {
    const cfg = config();
    let m = run(cfg, [observation(T, [runner(0, { kind: "holder", logs: LOGS }), runner(1, { kind: "hang" })])]).memory;
    m = { ...m, failures: { "freeze#1": { count: 5, lastMs: T } } };
    const r = decide(observation(T + 250, [runner(0, { kind: "holder" }), runner(1, { kind: "hang" })]), m, cfg, T + 250);
    expect(summary(r.plan).fences).toEqual(["freeze#1"]);
  });
});

describe("decide: reading leader logs", () => {
  test("a standby whose logs showed nothing ahead is read again within 2 s (its schedule may have been computed since)", () => {
    const cfg = config();
    const o = (t: number, logs?: ReturnType<typeof pending>[]) =>
      observation(t, [runner(0, { kind: "holder", logs: t === T ? LOGS : undefined }), runner(1, { kind: "standby", logs })]);
    let m = run(cfg, [o(T, [])]).memory;
    m.runners[0]!.holderSinceMs = -1;
    expect(decide(o(T + 1_000), m, cfg, T + 1_000).memory.runners[1]!.logsWanted).toBe(false);
    const later = decide(o(T + 2_500), m, cfg, T + 2_500);
    expect(later.memory.runners[1]!.logsWanted).toBe(true);
    // With events ahead, every 30 s is enough.
    m = run(cfg, [o(T, LOGS)]).memory;
    m.runners[0]!.holderSinceMs = -1;
    expect(decide(o(T + 2_500), m, cfg, T + 2_500).memory.runners[1]!.logsWanted).toBe(false);
  });

  test("with systemd unreadable for a tick, a unit beyond cnt_runners last seen without a process is not fenced", () => {
    const cfg = config({ cntRunners: 2 });
    const extra = (id: number, unitKnown: boolean) => ({ id, unit: unitKnown ? { ...runner(id, { kind: "stopped" }).unit! } : null, stats: null, leaders: null, logs: null });
    const m = run(cfg, [observation(T, [runner(0, { kind: "holder", logs: LOGS }), runner(1, { kind: "standby", logs: LOGS }), extra(2, true)])]).memory;
    const r = decide(observation(T + 500, [{ ...runner(0, { kind: "holder" }), unit: null }, { ...runner(1, { kind: "standby" }), unit: null }, extra(2, false)]), m, cfg, T + 500);
    expect(r.plan.fences).toEqual([]);
  });
});

describe("decide: one signer per window", () => {
  // LOGS: events at slots 50 and 70 of epoch 0. Slot 50's window: [49.5 s, 51.5 s).
  const cfg = config();
  const warm = () => run(cfg, [observation(T, [runner(0, { kind: "holder", logs: LOGS }), runner(1, { kind: "standby", logs: LOGS }), runner(2, { kind: "standby", logs: [] })])]).memory;
  const inWindow = 50_200;
  const afterWindow = 51_600;

  test("the signer goes silent inside a window: it keeps the window alone, the standby takes over once it closes", () => {
    // It may have signed slot 50 at its start; a standby given the key now would sign it again.
    const r = decide(observation(inWindow, [runner(0, { kind: "hang" }), runner(1, { kind: "standby" }), runner(2, { kind: "standby" })]), warm(), cfg, inWindow);
    expect(summary(r.plan)).toEqual({ fences: [], promote: null, other: [] });
    expect(r.memory.signer).toBe(0);
    expect(r.plan.notes.join()).toContain("#1 takes over once the window of slot 0.50 closes");
    const later = decide(observation(afterWindow, [runner(0, { kind: "hang" }), runner(1, { kind: "standby" }), runner(2, { kind: "standby" })]), r.memory, cfg, afterWindow);
    expect(summary(later.plan)).toEqual({ fences: ["freeze#0"], promote: "promote#1", other: [] });
  });

  test("a signer found crashed inside a window may have signed before it died: the standby waits for the window too", () => {
    const r = decide(observation(inWindow, [runner(0, { kind: "stopped" }), runner(1, { kind: "standby" }), runner(2, { kind: "standby" })]), warm(), cfg, inWindow);
    expect(r.plan.promote).toBeNull();
    const later = decide(observation(afterWindow, [runner(0, { kind: "stopped" }), runner(1, { kind: "standby" }), runner(2, { kind: "standby" })]), r.memory, cfg, afterWindow);
    expect(summary(later.plan).promote).toBe("promote#1");
  });

  test("waiting out a window, a lone standby that may hold the key is fenced: the slot may be signed already", () => {
    // #1 restarted with --secret and is computing (busy holder): it must not finish and sign slot 50.
    const r = decide(observation(inWindow, [runner(0, { kind: "hang" }), runner(1, { kind: "busy", logs: LOGS, unit: { mainPid: 2001 } }), runner(2, { kind: "stopped" })]), warm(), cfg, inWindow);
    expect(summary(r.plan).fences).toEqual(["demote#1"]);
    expect(r.plan.promote).toBeNull();
  });

  test("everyone else proven unable since before the window opened: the key moves inside it", () => {
    // #0 was seen down at 49 s, before slot 50's window; no standby was ready then.
    const m = warm();
    const down = decide(observation(49_000, [runner(0, { kind: "stopped" }), runner(1, { kind: "booting" }), runner(2, { kind: "stopped" })]), m, config({ keyMode: "rest" }), 49_000);
    const r = decide(observation(inWindow, [runner(0, { kind: "stopped" }), runner(1, { kind: "standby" }), runner(2, { kind: "stopped" })]), down.memory, config({ keyMode: "rest" }), inWindow);
    expect(summary(r.plan).promote).toBe("promote#1");
  });

  test("a standby still booting with --secret never holds the handover back: it cannot have signed yet", () => {
    // A fresh daemon (schedule unknown): #0 is gone, #2 bootstraps holding the key, #1 is ready.
    const obs = observation(T, [runner(0, { kind: "stopped" }), runner(1, { kind: "standby" }), runner(2, { kind: "booting" })]);
    const first = decide(obs, emptyMemory(), cfg, T);
    const later = decide({ ...obs, atMs: T + 2_000 }, first.memory, cfg, T + 2_000);
    expect(later.plan.promote?.id).toBe(1);
  });

  test("a signer that crashed inside a window and restarts with --secret may have signed its slot: the standby waits for the window", () => {
    // bench row signer-crash-in-slot-3h: the new process has signed nothing, but the crashed one may have.
    const seenIn = decide(observation(49_800, [runner(0, { kind: "holder" }), runner(1, { kind: "standby" }), runner(2, { kind: "standby" })]), warm(), cfg, 49_800);
    const restarted = (t: number) =>
      observation(t, [runner(0, { kind: "booting", unit: { mainPid: 2000, sinceMs: 50_100 } }), runner(1, { kind: "standby" }), runner(2, { kind: "standby" })]);
    const r = decide(restarted(inWindow), seenIn.memory, cfg, inWindow);
    expect(r.plan.promote).toBeNull();
    expect(r.plan.notes.join()).toContain("#0 may have signed in it");
    // Unseen between two ticks (last seen Running well before the window): the same.
    expect(decide(restarted(inWindow), warm(), cfg, inWindow).plan.promote).toBeNull();
    const later = decide(restarted(afterWindow), r.memory, cfg, afterWindow);
    expect(later.plan.promote?.id).toBe(1);
  });

  test("a runner restarted (booting with --secret) before the window opened cannot have signed in it: the key moves inside it", () => {
    const restarted = observation(inWindow, [runner(0, { kind: "booting", unit: { mainPid: 2000, sinceMs: 49_000 } }), runner(1, { kind: "standby" }), runner(2, { kind: "standby" })]);
    const r = decide(restarted, warm(), cfg, inWindow);
    expect(r.plan.promote?.id).toBe(1);
    // With the restart time unknown, it may have been the old process that lived into the window.
    const unknownStart = observation(inWindow, [runner(0, { kind: "booting", unit: { mainPid: 2000, sinceMs: null } }), runner(1, { kind: "standby" }), runner(2, { kind: "standby" })]);
    expect(decide(unknownStart, warm(), cfg, inWindow).plan.promote).toBeNull();
  });

  test("a promotion carries the start of the next window: fences that hold only after it void the promotion", () => {
    const r = decide(observation(T + 500, [runner(0, { kind: "hang" }), runner(1, { kind: "standby" }), runner(2, { kind: "standby" })]), warm(), cfg, T + 500);
    expect(summary(r.plan)).toEqual({ fences: ["freeze#0"], promote: "promote#1", other: [] });
    expect(r.plan.promote!.fencedByMs).toBe(49_500);
  });

  test("with the epoch's schedule unknown, any instant may be in a window: fence everyone, promote one window length later", () => {
    // A fresh daemon: nothing known about this epoch's events, the signer silent.
    const obs = (t: number, k0: "hang" | "frozen") => observation(t, [runner(0, { kind: k0 }), runner(1, { kind: "standby" }), runner(2, { kind: "standby" })]);
    const first = decide(obs(T, "hang"), emptyMemory(), cfg, T);
    expect(summary(first.plan)).toEqual({ fences: ["freeze#0"], promote: null, other: [] });
    expect(first.plan.notes.join()).toContain("schedule is unknown");
    let m = applyOutcomes(first.memory, allOk(first.plan), T);
    m.runners[0]!.frozenByUs = "fence";
    const frozen = decide(obs(T + 50, "frozen"), m, cfg, T + 50);
    expect(frozen.plan.promote).toBeNull();
    m = frozen.memory;
    // guard 0.5 s + slot 1 s + margin 0.5 s after #0 was first seen unable
    const windowLen = 2_000;
    expect(decide(obs(T + 50 + windowLen - 1, "frozen"), m, cfg, T + 50 + windowLen - 1).plan.promote).toBeNull();
    expect(decide(obs(T + 50 + windowLen, "frozen"), m, cfg, T + 50 + windowLen).plan.promote?.id).toBe(1);
  });
});

describe("decide: when an epoch's list of events is whole", () => {
  const cfg = config();
  // Boundary of epoch 1 at 100 s. #0 held the key since before it and computes epoch 1 at it.
  const held = () => {
    const m = run(cfg, [observation(80_000, [runner(0, { kind: "holder", logs: LOGS }), runner(1, { kind: "standby", logs: LOGS })])]).memory;
    m.runners[0]!.holderSinceMs = -1;
    return m;
  };

  test("a free enclave right after the boundary may not have locked yet: its empty list is not taken as the epoch's", () => {
    const o = observation(100_300, [runner(0, { kind: "holder", logs: LOGS }), runner(1, { kind: "standby" })], { fromMs: 100_010 });
    expect(decide(o, held(), cfg, 100_300).memory.knownEpochs).not.toContain(1);
    // One slot later the computation has surely begun, so a free enclave means it is done.
    const later = observation(101_300, [runner(0, { kind: "holder", logs: LOGS }), runner(1, { kind: "standby" })], { fromMs: 101_010 });
    expect(decide(later, held(), cfg, 101_300).memory.knownEpochs).toContain(1);
  });

  test("logs read while /leaders waited for the enclave are kept as events but do not make the epoch whole", () => {
    const partial = [pending(1, 5)];
    const o = observation(105_000, [runner(0, { kind: "busy", logs: partial }), runner(1, { kind: "standby" })], { fromMs: 104_500 });
    const r = decide(o, held(), cfg, 105_000);
    expect(r.memory.events).toContain(105);
    expect(r.memory.knownEpochs).not.toContain(1);
  });
});

describe("partingFences: what a stopping daemon fences", () => {
  const cfg = config();
  const views = (obs: Observation, memory = emptyMemory()) => decide(obs, memory, cfg, obs.atMs);

  test("the signer stays; a standby booting with --secret is killed (it reboots passive), a key-less one is left alone", () => {
    const r = views(observation(T, [runner(0, { kind: "holder", logs: LOGS }), runner(1, { kind: "booting" }), runner(2, { kind: "standby" })]));
    expect(r.memory.signer).toBe(0);
    expect(partingFences(r.views, r.memory.signer).map((a) => `${a.kind}#${"id" in a ? a.id : ""}`)).toEqual(["kill#1"]);
  });

  test("a second holder is demoted; with no signer, one runner that may sign is kept so the pool still produces", () => {
    const two = views(observation(T, [runner(0, { kind: "holder", logs: LOGS }), runner(1, { kind: "holder" }), runner(2, { kind: "standby" })]));
    expect(partingFences(two.views, 0).map((a) => `${a.kind}#${"id" in a ? a.id : ""}`)).toEqual(["demote#1"]);
    const cold = views(observation(T, [runner(0, { kind: "booting" }), runner(1, { kind: "booting" }), runner(2, { kind: "booting" })]));
    expect(partingFences(cold.views, null).map((a) => `${a.kind}#${"id" in a ? a.id : ""}`)).toEqual(["kill#1", "kill#2"]);
  });

  test("a frozen runner that may hold the key counts (review h23): with no daemon left to watch it, a thaw from outside makes it sign beside the kept one", () => {
    // Started with --secret by the daemon's last tick; #0 frozen from outside just then (SIGSTOP by
    // anything but the daemon), #1 still booting. Keeping #1 and ignoring #0 left two signers once
    // #0 was thawed (the property test's seed 1756012728: 3 slots produced twice).
    const r = views(observation(T, [runner(0, { kind: "frozen" }), runner(1, { kind: "booting" }), runner(2, { kind: "standby" })]));
    const fences = partingFences(r.views, r.memory.signer).map((a) => `${a.kind}#${"id" in a ? a.id : ""}`);
    expect(fences).toHaveLength(1);
    expect(["kill#0", "kill#1"]).toContain(fences[0]!);
  });

  test("nothing to fence when nobody else may sign", () => {
    const r = views(observation(T, [runner(0, { kind: "holder", logs: LOGS }), runner(1, { kind: "standby" }), runner(2, { kind: "stopped" })]));
    expect(partingFences(r.views, 0)).toEqual([]);
  });
});

describe("step: the loop's one entry into the core", () => {
  test("epoch-start strips the co-holders and marks it in memory; acted folds the outcomes; parting fences", () => {
    const cfg = config();
    const o = observation(T, [runner(0, { kind: "holder", logs: LOGS }), runner(1, { kind: "holder" }), runner(2, { kind: "standby" })]);
    const observed = step(emptyMemory(), { kind: "observed", obs: o, config: cfg, now: T });
    expect(observed).toEqual(decide(o, emptyMemory(), cfg, T));
    // A hand-out under way: at the boundary the strip is due, before any observation.
    const m: Memory = { ...observed.memory, boundary: { epoch: 1, coHolders: [2] } };
    expect(step(m, { kind: "epoch-start", settings: SETTINGS, now: 99_000 }).plan.fences).toEqual([]);
    const strip = step(m, { kind: "epoch-start", settings: SETTINGS, now: 100_000 });
    expect(strip.plan.fences.map((a) => [a.kind, "id" in a ? a.id : null, a.rule])).toEqual([["demote", 2, "boundary-strip"]]);
    expect(strip.memory.boundary).toEqual({ epoch: 1, coHolders: [2], stripped: true });
    expect(step(strip.memory, { kind: "epoch-start", settings: SETTINGS, now: 100_050 }).plan.fences).toEqual([]);
    const acted = step(strip.memory, { kind: "acted", outcomes: [{ action: strip.plan.fences[0]!, ok: true, detail: "" }], now: 100_100 });
    expect(acted.memory).toEqual(applyOutcomes(strip.memory, [{ action: strip.plan.fences[0]!, ok: true, detail: "" }], 100_100));
    expect(acted.memory.runners[2]!.keylessProof).toBe(true);
    // Told to stop: of the two holders one keeps the key, the other is demoted; memory is not changed.
    const parting = step(observed.memory, { kind: "parting", obs: o, config: cfg, now: T + 500 });
    expect(parting.plan.fences.map((a) => [a.kind, "id" in a ? a.id : null, a.rule])).toEqual([["demote", 1, "parting"]]);
    expect(parting.memory).toBe(observed.memory);
  });
});
