import { describe, expect, test } from "bun:test";
import { simConfig } from "../../src/lab/harness.ts";
import type { ServiceManager, UnitState } from "../../src/ports.ts";
import type { NodeApi, NodeResult, Settings } from "../../src/node/types.ts";
import { gatherStatus, type StatusDeps } from "../../src/status/gather.ts";

const settings: Settings = { block0Hash: "h", block0TimeMs: 0, slotDurationMs: 1000, slotsPerEpoch: 60, consensusVersion: "g", currSlotStartTimeMs: null };
const calls: string[] = [];

function api(id: number): NodeApi {
  const no = async (): Promise<NodeResult<never>> => ({ ok: false, error: { kind: "http", status: 500, message: "x" } });
  return {
    stats: async () => (calls.push(`stats ${id}`), { ok: true, value: { state: "Running", version: "v", height: 10 + id, lastBlockDate: null, lastBlockTimeMs: null, lastReceivedBlockTimeMs: null, uptimeS: 5, nodeId: null } }),
    settings: async () => (calls.push(`settings ${id}`), { ok: true, value: settings }),
    leaders: async () => (calls.push(`leaders ${id}`), { ok: true, value: id === 0 ? [1] : [] }),
    leaderLogs: async () => (calls.push(`logs ${id}`), { ok: true, value: [] }),
    addLeader: no,
    removeLeader: no,
    shutdown: no,
    tip: no,
  };
}

const unit = (id: number): UnitState => ({ id, activeState: "active", subState: "running", mainPid: 10 + id, sinceMs: 0, restarts: 0, frozen: false });
const services = (fail = false): ServiceManager =>
  ({
    showAll: async (ids: readonly number[]) => {
      calls.push(`showAll ${ids.join(",")}`);
      if (fail) throw new Error("systemctl --no-pager show -- jorm_runner@0.service failed (exit 1): Failed to connect to bus: No such file or directory");
      return new Map(ids.map((id) => [id, unit(id)]));
    },
  }) as unknown as ServiceManager;

function deps(over: Partial<StatusDeps> = {}): StatusDeps {
  return { node: api, services: services(), pooltool: null, now: () => 1_000, ...over };
}

describe("gatherStatus", () => {
  test("asks REST of the configured runners only, systemd once for all ids (extras included), settings once", async () => {
    calls.length = 0;
    const input = await gatherStatus(simConfig(2), deps());
    expect(calls.filter((c) => c.startsWith("showAll"))).toEqual(["showAll 0,1,2,3,4,5"]);
    expect(calls.filter((c) => c.startsWith("stats")).sort()).toEqual(["stats 0", "stats 1"]);
    expect(calls.filter((c) => c.startsWith("settings"))).toHaveLength(1);
    expect(input.settings).toEqual(settings);
    expect(input.runners.map((r) => [r.id, r.unit?.mainPid, r.stats !== null])).toEqual([
      [0, 10, true],
      [1, 11, true],
      [2, 12, false],
      [3, 13, false],
      [4, 14, false],
      [5, 15, false],
    ]);
    // Known settings are reused, not asked again.
    calls.length = 0;
    await gatherStatus(simConfig(2), deps(), { settings });
    expect(calls.some((c) => c.startsWith("settings"))).toBe(false);
  });

  test("systemd failing is reported briefly, not thrown; --rest-only says so", async () => {
    const failed = await gatherStatus(simConfig(1), deps({ services: services(true) }));
    expect(failed.systemdError).toBe("cannot read unit states: systemctl exit 1: Failed to connect to bus: No such file or directory");
    expect(failed.runners[0]!.unit).toBeNull();
    const restOnly = await gatherStatus(simConfig(1), deps({ services: null }));
    expect(restOnly.systemdError).toBe("not asked (--rest-only)");
  });

  test("PoolTool: its majority max, or why not; a given value skips the call", async () => {
    let asked = 0;
    const up = await gatherStatus(simConfig(1), deps({ pooltool: { majorityMax: async () => (asked++, 42), shareTip: async () => {} } }));
    expect(up.pooltool).toEqual({ majorityMax: 42, error: null });
    const down = await gatherStatus(simConfig(1), deps({ pooltool: { majorityMax: async () => { asked++; throw new Error("HTTP 503"); }, shareTip: async () => {} } }));
    expect(down.pooltool).toEqual({ majorityMax: null, error: "majority max unavailable: HTTP 503" });
    await gatherStatus(simConfig(1), deps({ pooltool: { majorityMax: async () => (asked++, 1), shareTip: async () => {} } }), { pooltool: { majorityMax: 42, error: null } });
    expect(asked).toBe(2);
    expect((await gatherStatus(simConfig(1), deps())).pooltool).toBeNull();
  });

  test("reads the dead-man switches of the configured runners, and hands the config's timing and key mode to the model", async () => {
    const asked: number[][] = [];
    const config = simConfig(2);
    const input = await gatherStatus(config, deps({ switches: async (ids) => (asked.push([...ids]), new Map(ids.map((id) => [id, { armed: id === 1, fireAtMs: id === 1 ? 5_000 : null }]))) }));
    expect(asked).toEqual([[0, 1]]);
    expect(input.runners.slice(0, 3).map((r) => r.deadManSwitch)).toEqual([{ armed: false, fireAtMs: null }, { armed: true, fireAtMs: 5_000 }, null]);
    expect(input.handout).toEqual({ eventActionMs: config.eventActionMs, slotGuardMs: config.slotGuardMs });
    expect(input.keyMode).toBe(config.keyMode);
    expect(input.switchesError).toBeNull();
    const failed = await gatherStatus(config, deps({ switches: async () => { throw new Error("systemctl --user show -- x failed (exit 1): Failed to connect to bus"); } }));
    expect(failed.switchesError).toBe("systemctl exit 1: Failed to connect to bus");
    expect(failed.runners.every((r) => r.deadManSwitch === null)).toBe(true);
    expect((await gatherStatus(config, deps({ services: null }))).systemdAsked).toBe(false);
  });
});

describe("gatherStatus in cluster mode", () => {
  const CLUSTER = { name: "host-a", etcdEndpoints: ["http://127.0.0.1:9"], prefix: "/p", leaseTtlS: 5, etcdTimeoutMs: 500 };
  const registry = { signer: { host: "host-b", lease: "1", createRevision: 3 }, leaseTtl: null, entries: [], invalid: [], noSignerGraceMs: 20_000 };
  test("the registry read gives the holder and the hosts; etcd failing (or throwing) is an error, not a crash", async () => {
    const config = { ...simConfig(1), cluster: CLUSTER };
    expect((await gatherStatus(config, deps({ clusterRegistry: async () => registry }))).cluster).toEqual({ self: "host-a", holder: "host-b", error: null, registry });
    expect((await gatherStatus(config, deps({ clusterRegistry: async () => ({ error: "range: no endpoint answered" }) }))).cluster).toEqual({ self: "host-a", holder: null, error: "range: no endpoint answered", registry: null });
    expect((await gatherStatus(config, deps({ clusterRegistry: async () => Promise.reject(new Error("boom")) }))).cluster).toMatchObject({ error: "boom", registry: null });
    // One server: not asked.
    expect((await gatherStatus(simConfig(1), deps({ clusterRegistry: async () => registry }))).cluster).toBeNull();
  });
});
