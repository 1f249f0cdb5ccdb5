// The cluster bench's rows: the JSON shape the issue names, the figures derived honestly from a run,
// and a usage error on an unknown scenario. Short runs (small epochs, one run per row).
import { describe, expect, test } from "bun:test";
import { benchRow, parseCli, percentile, renderRow, SCENARIOS } from "../../scripts/bench-cluster.ts";

const SHORT = { runs: 1, epochs: 3, slotsPerEpoch: 60, leaderSlotsPerEpoch: 10 };

describe("bench:cluster", () => {
  test("a fault row carries the issue's fields; no slot doubled; the takeover on another host is measured", async () => {
    const row = await benchRow("host-killed", SHORT);
    const json = JSON.parse(JSON.stringify(row));
    for (const k of ["scenario", "double_produced", "shared_windows", "coverage_pct", "failover_p50_ms", "failover_p99_ms"]) expect(json).toHaveProperty(k);
    expect(json.scenario).toBe("host-killed");
    expect(row.double_produced).toBe(0);
    expect(row.shared_windows).toBe(0);
    expect(row.failovers).toBe(1);
    expect(row.failover_p50_ms).toBeGreaterThan(0);
    expect(row.coverage_pct).toBeGreaterThanOrEqual(0);
    expect(row.coverage_pct).toBeLessThanOrEqual(100);
    expect(renderRow(row)).toContain("host-killed");
  }, 60_000);

  test("the etcd version is the row's: Debian's 3.4.23 waits out an early lease end, a fixed release does not", async () => {
    const fixed = await benchRow("etcd-cut-off", SHORT);
    const debian = await benchRow("etcd-cut-off", { ...SHORT, etcdVersion: "3.4.23" });
    expect([fixed.etcd, debian.etcd]).toEqual(["3.5.23", "3.4.23"]);
    expect(fixed.failover_p50_ms!).toBeLessThanOrEqual(fixed.failover_target_ms);
    expect(debian.failover_p50_ms! - fixed.failover_p50_ms!).toBeGreaterThan(5_000);
  }, 60_000);

  test("calm: no failover measured, every scheduled slot after the first epoch produced", async () => {
    const row = await benchRow("calm", SHORT);
    expect(row.failover_p50_ms).toBeNull();
    expect(row.scheduled).toBeGreaterThan(0);
    expect(row.coverage_pct).toBe(100);
  }, 60_000);

  test("cli: every scenario by default; an unknown one is an error; percentiles by nearest rank", () => {
    expect(parseCli([]).scenarios).toEqual(SCENARIOS);
    expect(parseCli(["--json", "--runs", "2"]).runs).toBe(2);
    expect(parseCli([]).grants).toBe(true);
    expect(parseCli(["--no-grants"]).grants).toBe(false);
    expect(parseCli([]).etcdVersion).toBe("3.5.23");
    expect(parseCli(["--etcd", "3.4.23"]).etcdVersion).toBe("3.4.23");
    expect(() => parseCli(["--etcd", "latest"])).toThrow(/--etcd/);
    expect(() => parseCli(["--scenario", "calmm"])).toThrow(/unknown calmm/);
    expect(() => parseCli(["--bogus"])).toThrow();
    expect(percentile([], 50)).toBeNull();
    expect(percentile([3, 1, 2, 4], 50)).toBe(2);
    expect(percentile([3, 1, 2, 4], 99)).toBe(4);
  });
});
