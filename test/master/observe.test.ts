import { describe, expect, test } from "bun:test";
import { decide, emptyMemory, startingUp } from "../../src/master/decide.ts";
import type { MasterDeps } from "../../src/master/act.ts";
import { observe, type ObserveState } from "../../src/master/observe.ts";
import type { ServiceManager, UnitState } from "../../src/ports.ts";
import type { Observation, RunnerObs } from "../../src/master/types.ts";
import type { NodeApi, NodeResult, NodeStats } from "../../src/node/types.ts";
import { config, REFUSED, runner, stats, TIMEOUT, unit } from "./fixtures.ts";

// Found under systemd (test/e2e/systemd.e2e.ts): the master's second tick saw runners it had just
// started refuse REST (the node not listening yet), fenced them as unknown with SIGSTOP, and nobody
// ever thawed them. A fresh incarnation that never answered is booting, not unknown.

const NOW_MS = 1_000_000;
const MAX_BOOT_MS = 60_000;
const fresh = (over: Partial<UnitState> = {}) => unit(0, { sinceMs: NOW_MS - 500, mainPid: 4242, ...over });
const refused = (u: UnitState | null): RunnerObs => ({ ...runner(0, { kind: "dead" }), unit: u });

describe("startingUp", () => {
  test("a unit started under max_boot ago whose REST refuses and never answered is starting", () => {
    expect(startingUp(refused(fresh()), false, NOW_MS, MAX_BOOT_MS)).toBe(true);
  });

  test("not once this incarnation answered: its REST died, so it is unknown", () => {
    expect(startingUp(refused(fresh()), true, NOW_MS, MAX_BOOT_MS)).toBe(false);
  });

  test("not after max_boot, nor when the start time is unknown", () => {
    expect(startingUp(refused(fresh({ sinceMs: NOW_MS - MAX_BOOT_MS })), false, NOW_MS, MAX_BOOT_MS)).toBe(false);
    expect(startingUp(refused(fresh({ sinceMs: null })), false, NOW_MS, MAX_BOOT_MS)).toBe(false);
  });

  test("only a refused connection: a timeout may be a hung signer", () => {
    const hung: RunnerObs = { ...runner(0, { kind: "hang" }), unit: fresh() };
    expect(startingUp(hung, false, NOW_MS, MAX_BOOT_MS)).toBe(false);
  });

  test("only a running, unfrozen process", () => {
    expect(startingUp(refused(null), false, NOW_MS, MAX_BOOT_MS)).toBe(false);
    expect(startingUp(refused(fresh({ activeState: "activating", subState: "auto-restart", mainPid: 0 })), false, NOW_MS, MAX_BOOT_MS)).toBe(false);
    expect(startingUp(refused(fresh({ frozen: true })), false, NOW_MS, MAX_BOOT_MS)).toBe(false);
  });
});

describe("decide on a runner that refuses REST", () => {
  const cfg = config({ cntRunners: 1, maxBootMs: MAX_BOOT_MS, keyMode: "boot" });
  const obs = (r: RunnerObs, atMs = NOW_MS): Observation => ({ atMs, settings: null, runners: [r], majorityMax: null });

  test("just started and never answered: booting (a --secret one holds the key), not fenced", () => {
    const { plan, views } = decide(obs(refused(fresh())), emptyMemory(), cfg, NOW_MS);
    expect(views[0]?.cap).toBe("booting-holder");
    expect([...plan.fences, ...plan.other].filter((a) => "id" in a && a.id === 0)).toEqual([]);
  });

  test("once this incarnation answered, a refused REST means unknown: it may still sign, so beside a signer it is fenced", () => {
    const two = config({ cntRunners: 2, maxBootMs: MAX_BOOT_MS, keyMode: "boot" });
    const with1 = (r: RunnerObs, atMs: number): Observation => ({ atMs, settings: null, runners: [r, runner(1, { kind: "holder" })], majorityMax: null });
    const first = decide(with1({ ...runner(0, { kind: "booting" }), unit: fresh() }, NOW_MS - 300), emptyMemory(), two, NOW_MS - 300);
    const { plan, views } = decide(with1(refused(fresh()), NOW_MS), first.memory, two, NOW_MS);
    expect(views[0]?.cap).toBe("unknown");
    expect(plan.fences.map((a) => `${a.kind}#${"id" in a ? a.id : ""}`)).toEqual(["freeze#0"]);
  });

  test("a new incarnation (new MainPID) starts with no answer on record", () => {
    const first = decide(obs({ ...runner(0, { kind: "booting" }), unit: fresh() }, NOW_MS - 300), emptyMemory(), cfg, NOW_MS - 300);
    const { views } = decide(obs(refused(fresh({ mainPid: 5555 }))), first.memory, cfg, NOW_MS);
    expect(views[0]?.cap).toBe("booting-holder");
  });
});

describe("observe", () => {
  function deps(answers: () => NodeResult<NodeStats>, unitState: () => UnitState): MasterDeps {
    const api = {
      stats: async () => answers(),
      leaders: async () => (answers().ok ? { ok: true as const, value: [] } : answers()),
      leaderLogs: async () => ({ ok: true as const, value: [] }),
      settings: async () => ({ ok: false as const, error: REFUSED }),
    } as unknown as NodeApi;
    const services = {
      showAll: async (ids: number[]) => new Map(ids.filter((id) => id === 0).map((id) => [id, unitState()])),
    } as unknown as ServiceManager;
    return { node: () => api, services, clock: { now: () => NOW_MS, sleep: async () => {} }, pooltool: null, readSecret: async () => ({}) as never };
  }
  const cfg = config({ cntRunners: 1, maxBootMs: MAX_BOOT_MS, keyMode: "boot" });

  test("answers are passed on as they are: interpreting them is decide's job", async () => {
    const state: ObserveState = { settings: null, majorityMax: null };
    for (const e of [REFUSED, TIMEOUT]) {
      const o = await observe(deps(() => ({ ok: false, error: e }), () => fresh()), cfg, emptyMemory(), state);
      expect(o.runners.find((r) => r.id === 0)!.stats).toEqual({ ok: false, error: e });
    }
    const ok = await observe(deps(() => ({ ok: true, value: stats(10) }), () => fresh()), cfg, emptyMemory(), state);
    expect(ok.runners.find((r) => r.id === 0)!.unit).toMatchObject({ mainPid: 4242 });
  });
});

test("observe asks a runner's leader logs only once /leaders has answered, and says when it began", async () => {
  // The logs never wait for the enclave; asked alongside a /leaders that waits out a schedule
  // computation, they would predate it while /leaders' answer vouched for the enclave being free.
  const order: string[] = [];
  let releaseLeaders!: () => void;
  const leadersGate = new Promise<void>((r) => (releaseLeaders = r));
  const api = {
    stats: async () => ({ ok: true as const, value: stats(10) }),
    leaders: async () => {
      order.push("leaders asked");
      await leadersGate;
      order.push("leaders answered");
      return { ok: true as const, value: [1] };
    },
    leaderLogs: async () => {
      order.push("logs asked");
      return { ok: true as const, value: [] };
    },
    settings: async () => ({ ok: false as const, error: REFUSED }),
  } as unknown as NodeApi;
  const services = { showAll: async (ids: number[]) => new Map(ids.filter((id) => id === 0).map((id) => [id, unit(0)])) } as unknown as ServiceManager;
  let now = 5_000;
  const deps: MasterDeps = { node: () => api, services, clock: { now: () => now, sleep: async () => {} }, pooltool: null, readSecret: async () => ({}) as never };
  const pending = observe(deps, config({ cntRunners: 1 }), emptyMemory(), { settings: null, majorityMax: null });
  await Bun.sleep(5);
  expect(order).toEqual(["leaders asked"]);
  now = 5_400;
  releaseLeaders();
  const o = await pending;
  expect(order).toEqual(["leaders asked", "leaders answered", "logs asked"]);
  expect(o.runners[0]!.logs).toEqual({ ok: true, value: [] });
  expect(o).toMatchObject({ fromMs: 5_000, atMs: 5_400 });
});

test("a /leaders that failed is not followed by a logs request: a hung node costs one deadline, not two", async () => {
  let logsAsked = 0;
  const api = {
    stats: async () => ({ ok: false as const, error: TIMEOUT }),
    leaders: async () => ({ ok: false as const, error: TIMEOUT }),
    leaderLogs: async () => {
      logsAsked++;
      return { ok: true as const, value: [] };
    },
    settings: async () => ({ ok: false as const, error: REFUSED }),
  } as unknown as NodeApi;
  const services = { showAll: async (ids: number[]) => new Map(ids.filter((id) => id === 0).map((id) => [id, unit(0)])) } as unknown as ServiceManager;
  const deps: MasterDeps = { node: () => api, services, clock: { now: () => 0, sleep: async () => {} }, pooltool: null, readSecret: async () => ({}) as never };
  const o = await observe(deps, config({ cntRunners: 1 }), emptyMemory(), { settings: null, majorityMax: null });
  expect(logsAsked).toBe(0);
  expect(o.runners[0]!.logs).toBeNull();
});
