// observe() with a runner systemd shows SIGSTOPped: its REST is not waited for (bench:loop measured
// every tick costing a whole rest_timeout while any runner stayed frozen).
import { expect, test } from "bun:test";
import type { MasterDeps } from "../../src/master/act.ts";
import { emptyMemory } from "../../src/master/decide.ts";
import { observe, runnerIds } from "../../src/master/observe.ts";
import type { UnitState } from "../../src/ports.ts";
import type { NodeApi, NodeResult, NodeStats } from "../../src/node/types.ts";
import { config, SETTINGS, stats, unit } from "./fixtures.ts";

const never = <T>(): Promise<T> => new Promise<T>(() => {});
const okAsync = async <T>(value: T): Promise<NodeResult<T>> => ({ ok: true, value });

/** A node whose REST never answers (SIGSTOPped, or hanging): only its deadline would end a call. */
const hanging = { stats: never, leaders: never, leaderLogs: never, settings: never } as unknown as NodeApi;
const answering = (h: number): NodeApi =>
  ({
    stats: () => okAsync<NodeStats>(stats(h)),
    leaders: () => okAsync<number[]>([]),
    leaderLogs: () => okAsync([]),
    settings: () => okAsync(SETTINGS),
  }) as unknown as NodeApi;

function deps(nodes: NodeApi[], units: (id: number) => UnitState): MasterDeps {
  return {
    node: (id) => nodes[id] ?? hanging,
    services: {
      showAll: async (ids) => new Map(ids.map((id) => [id, units(id)])),
      start: async () => {},
      stop: async () => {},
      restart: async () => {},
      kill: async () => {},
    },
    clock: { now: () => 1_000_000, sleep: async () => {} },
    pooltool: null,
    readSecret: async () => ({}),
  };
}

const within = <T>(p: Promise<T>, ms: number): Promise<T | "pending"> => Promise.race([p, Bun.sleep(ms).then(() => "pending" as const)]);

test("a runner systemd shows SIGSTOPped does not hold the tick for its REST deadline", async () => {
  const cfg = config({ cntRunners: 3 });
  const d = deps([answering(10), hanging, answering(10)], (id) => unit(id, { frozen: id === 1 }));
  const obs = await within(observe(d, cfg, emptyMemory(), { settings: null, majorityMax: null }), 200);
  expect(obs).not.toBe("pending");
  if (obs === "pending") return;
  expect(obs.runners.map((r) => r.id)).toEqual(runnerIds(cfg));
  const frozen = obs.runners.find((r) => r.id === 1)!;
  expect(frozen.unit?.frozen).toBe(true);
  expect(frozen.stats).toMatchObject({ ok: false, error: { kind: "unreachable", reason: "timeout" } });
  expect(frozen.leaders).toMatchObject({ ok: false, error: { kind: "unreachable" } });
  expect(obs.runners.find((r) => r.id === 0)!.stats).toMatchObject({ ok: true });
});

test("an answer a frozen-shown runner already gave is kept", async () => {
  const cfg = config({ cntRunners: 2 });
  const d = deps([answering(10), answering(12)], (id) => unit(id, { frozen: id === 1 }));
  const obs = await observe(d, cfg, emptyMemory(), { settings: null, majorityMax: null });
  expect(obs.runners.find((r) => r.id === 1)!.stats).toMatchObject({ ok: true, value: { height: 12 } });
});

test("a hanging runner that is not frozen is waited for (its deadline decides)", async () => {
  const cfg = config({ cntRunners: 2 });
  const d = deps([answering(10), hanging], (id) => unit(id));
  expect(await within(observe(d, cfg, emptyMemory(), { settings: null, majorityMax: null }), 100)).toBe("pending");
});
