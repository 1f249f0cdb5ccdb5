import { describe, expect, test } from "bun:test";
import { decide, emptyMemory } from "../../src/master/decide.ts";
import type { MasterDeps } from "../../src/master/act.ts";
import { observe, startingUp, type ObserveState } from "../../src/master/observe.ts";
import type { ServiceManager, UnitState } from "../../src/master/ports.ts";
import type { RunnerObs } from "../../src/master/types.ts";
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
    expect(startingUp(refused(fresh()), undefined, NOW_MS, MAX_BOOT_MS)).toBe(true);
    // A previous incarnation answered: this one has not.
    expect(startingUp(refused(fresh()), 1111, NOW_MS, MAX_BOOT_MS)).toBe(true);
  });

  test("not once this incarnation answered: its REST died, so it is unknown", () => {
    expect(startingUp(refused(fresh()), 4242, NOW_MS, MAX_BOOT_MS)).toBe(false);
  });

  test("not after max_boot, nor when the start time is unknown", () => {
    expect(startingUp(refused(fresh({ sinceMs: NOW_MS - MAX_BOOT_MS })), undefined, NOW_MS, MAX_BOOT_MS)).toBe(false);
    expect(startingUp(refused(fresh({ sinceMs: null })), undefined, NOW_MS, MAX_BOOT_MS)).toBe(false);
  });

  test("only a refused connection: a timeout may be a hung signer", () => {
    const hung: RunnerObs = { ...runner(0, { kind: "hang" }), unit: fresh() };
    expect(startingUp(hung, undefined, NOW_MS, MAX_BOOT_MS)).toBe(false);
  });

  test("only a running, unfrozen process", () => {
    expect(startingUp(refused(null), undefined, NOW_MS, MAX_BOOT_MS)).toBe(false);
    expect(startingUp(refused(fresh({ activeState: "activating", subState: "auto-restart", mainPid: 0 })), undefined, NOW_MS, MAX_BOOT_MS)).toBe(false);
    expect(startingUp(refused(fresh({ frozen: true })), undefined, NOW_MS, MAX_BOOT_MS)).toBe(false);
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

  test("a just-started runner refusing REST is reported as not ready, and decide does not fence it", async () => {
    const state: ObserveState = { settings: null, majorityMax: null };
    const obs = await observe(deps(() => ({ ok: false, error: REFUSED }), () => fresh()), cfg, emptyMemory(), state);
    const r0 = obs.runners.find((r) => r.id === 0)!;
    expect(r0.stats).toMatchObject({ ok: false, error: { kind: "not_ready" } });
    expect(r0.leaders).toMatchObject({ ok: false, error: { kind: "not_ready" } });
    const { plan, views } = decide(obs, emptyMemory(), cfg, NOW_MS);
    expect(views.find((v) => v.id === 0)?.cap).toBe("booting-holder");
    expect([...plan.fences, ...plan.other].filter((a) => "id" in a && a.id === 0)).toEqual([]);
  });

  test("once the incarnation answered, a refused REST stays unreachable (it may still sign)", async () => {
    const state: ObserveState = { settings: null, majorityMax: null };
    let answer: NodeResult<NodeStats> = { ok: true, value: stats(10) };
    const d = deps(() => answer, () => fresh());
    await observe(d, cfg, emptyMemory(), state);
    answer = { ok: false, error: REFUSED };
    const obs = await observe(d, cfg, emptyMemory(), state);
    expect(obs.runners.find((r) => r.id === 0)!.stats).toMatchObject({ ok: false, error: { kind: "unreachable", reason: "refused" } });
  });

  test("a timeout is passed on as it is", async () => {
    const state: ObserveState = { settings: null, majorityMax: null };
    const obs = await observe(deps(() => ({ ok: false, error: TIMEOUT }), () => fresh()), cfg, emptyMemory(), state);
    expect(obs.runners.find((r) => r.id === 0)!.stats).toMatchObject({ ok: false, error: { kind: "unreachable", reason: "timeout" } });
  });
});
