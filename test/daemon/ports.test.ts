// The production ports are built from one configuration, so a new one gives new ports.
import { describe, expect, test } from "bun:test";
import { buildPorts, unitName } from "../../src/daemon/ports.ts";
import { ConfigError } from "../../src/errors.ts";
import { simConfig } from "../../src/lab/harness.ts";

const POOLTOOL = { poolId: "p", userId: "u", genesis: "g", sendWaitMs: 1_000, recvWaitMs: 30_000, endpTip: "http://127.0.0.1:9/tip", endpStats: "http://127.0.0.1:9/stats" };

describe("buildPorts", () => {
  test("PoolTool exists exactly when configured", () => {
    expect(buildPorts(simConfig(2)).pooltool).toBeNull();
    expect(buildPorts(simConfig(2, { pooltool: POOLTOOL })).pooltool).not.toBeNull();
  });

  test("unit names: the runner's own, the template's beyond cnt_runners", () => {
    const c = simConfig(2, { systemd: { ...simConfig(2).systemd, runnerUnitTemplate: "x@{id}.service" } });
    expect(unitName(c, 1)).toBe("jorm_runner@1.service");
    expect(unitName(c, 4)).toBe("x@4.service");
  });

  test("a REST address that is no URL fails at build time as a configuration error, not every tick", () => {
    const c = simConfig(1);
    const bad = { ...c, runners: [{ ...c.runners[0]!, restUrl: "http://127.0.0.1 :3100/api/v0" }] };
    expect(() => buildPorts(bad)).toThrow(ConfigError);
    expect(() => buildPorts(bad)).toThrow('runner 0: REST address "http://127.0.0.1 :3100/api/v0" is not a usable URL');
  });

  test("ids without a REST address answer unreachable", async () => {
    const r = await buildPorts(simConfig(1)).node(7).stats();
    expect(r).toMatchObject({ ok: false, error: { kind: "unreachable" } });
  });
});
