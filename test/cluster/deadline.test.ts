import { describe, expect, test } from "bun:test";
import {
  allowanceMs,
  DEFAULT_TIME_BOUNDS,
  extendSignUntil,
  maySign,
  renewIntervalMs,
  signUntilMs,
  takeoverSafeAtMs,
  leaseFixesIn,
  leaseSafety,
  type TimeBounds,
} from "../../src/cluster/deadline.ts";

const EXACT: TimeBounds = { clockRateError: 0, schedulingMarginMs: 0, etcdElectionTimeoutMs: 0 };

describe("signUntilMs: counted from the keep-alive's SEND time", () => {
  const rows: [string, number, number, TimeBounds, number | null][] = [
    ["no margins: exactly sent + TTL", 1_000, 5, EXACT, 6_000],
    ["the stop margin comes off", 1_000, 5, { ...EXACT, schedulingMarginMs: 500 }, 5_500],
    // 5000 * 0.99 / 1.01 = 4900.99...
    ["1 % clock rate error on both clocks", 0, 5, { ...EXACT, clockRateError: 0.01 }, (5_000 * 0.99) / 1.01],
    ["defaults: 1 % and 500 ms", 10_000, 5, DEFAULT_TIME_BOUNDS, 10_000 + (5_000 * 0.99) / 1.01 - 500],
    ["TTL 0 (etcd: lease gone): no time at all", 1_000, 0, EXACT, null],
    ["negative TTL (time-to-live of a gone lease): none", 1_000, -1, EXACT, null],
    ["TTL shorter than the margins: none", 1_000, 1, { ...EXACT, schedulingMarginMs: 1_000 }, null],
    ["NaN TTL: none", 1_000, Number.NaN, EXACT, null],
  ];
  for (const [name, sent, ttl, bounds, want] of rows) {
    test(name, () => {
      const got = signUntilMs(sent, ttl, bounds);
      if (want === null) expect(got).toBeNull();
      else expect(got).toBeCloseTo(want, 6);
    });
  }

  test("the allowance never outlives the lease at the worst rates", () => {
    for (const ttl of [2, 3, 5, 10, 60]) {
      const rho = DEFAULT_TIME_BOUNDS.clockRateError;
      // Local allowance lasts at most allowance / (1 - ρ) real ms, plus the stop margin; the lease at least TTL / (1 + ρ)
      const realEnd = allowanceMs(ttl) / (1 - rho) + DEFAULT_TIME_BOUNDS.schedulingMarginMs;
      expect(realEnd).toBeLessThanOrEqual((ttl * 1000) / (1 + rho) + 1e-6);
    }
  });
});

describe("extendSignUntil", () => {
  test("a later keep-alive moves the deadline forward", () => {
    expect(extendSignUntil(6_000, 3_000, 5, EXACT)).toBe(8_000);
  });
  test("an older answer arriving late never moves it back", () => {
    expect(extendSignUntil(8_000, 1_000, 5, EXACT)).toBe(8_000);
  });
  test("the first keep-alive sets it", () => {
    expect(extendSignUntil(null, 1_000, 5, EXACT)).toBe(6_000);
  });
  test("a lease proven gone drops it, however far the old deadline was", () => {
    expect(extendSignUntil(1e12, 3_000, 0, EXACT)).toBeNull();
  });
});

test("maySign: strictly before the deadline, never without one", () => {
  expect(maySign(5_000, 4_999)).toBe(true);
  expect(maySign(5_000, 5_000)).toBe(false);
  expect(maySign(null, 0)).toBe(false);
});

test("renewIntervalMs: three keep-alives per TTL", () => {
  expect(renewIntervalMs(6)).toBe(2_000);
  expect(renewIntervalMs(5)).toBeCloseTo(1_666.67, 1);
});

describe("takeoverSafeAtMs", () => {
  test("no margins: an election timeout plus the old holder's full TTL", () => {
    expect(takeoverSafeAtMs(10_000, 5, { ...EXACT, etcdElectionTimeoutMs: 1_000 })).toBe(16_000);
  });
  test("defaults: after the old holder's deadline at the worst rates, however the clocks drift", () => {
    const rho = DEFAULT_TIME_BOUNDS.clockRateError;
    for (const ttl of [2, 5, 10]) {
      const safe = takeoverSafeAtMs(0, ttl);
      // The old holder sent its last successful keep-alive at most an election timeout after our
      // confirmation, then stops within allowance / (1 - ρ) + margin real ms; we wait at least safe / (1 + ρ) real ms.
      const oldStopsBy = DEFAULT_TIME_BOUNDS.etcdElectionTimeoutMs + allowanceMs(ttl) / (1 - rho) + DEFAULT_TIME_BOUNDS.schedulingMarginMs;
      expect(safe / (1 + rho)).toBeGreaterThanOrEqual(oldStopsBy);
    }
  });
});

describe("etcd versions and the takeover wait", () => {
  test("leaseFixesIn: 3.4.38+, 3.5.23+, 3.6.5+ and later lines; older, unknown or garbage: no", () => {
    for (const v of ["3.4.38", "3.4.44", "3.5.23", "3.5.32", "3.6.5", "3.6.10", "3.7.0", "4.0.0", "v3.5.23", "3.6.5-rc.1"]) expect([v, leaseFixesIn(v)]).toEqual([v, true]);
    for (const v of ["3.4.23", "3.4.37", "3.5.13", "3.5.22", "3.6.0", "3.6.4", "3.3.27", "2.3.8", "", "latest", "3.5", null]) expect([v, leaseFixesIn(v)]).toEqual([v, false]);
  });
  test("leaseFixesIn: a pre-release of a line with no fixed release known (a build of etcd's main branch, which reported 3.7.0-alpha.0 before and after the fix merged) is not proven fixed (review h23)", () => {
    for (const v of ["3.7.0-alpha.0", "3.8.0-alpha.0", "4.0.0-alpha.0"]) expect([v, leaseFixesIn(v)]).toEqual([v, false]);
  });
  test("leaseSafety: only every member asked and fixed waives the wait; one unknown member (maybe the stuck old leader) does not", () => {
    expect(leaseSafety([{ name: "m1", version: "3.5.23" }, { name: "m2", version: "3.6.5" }]).earlyEndPossible).toBe(false);
    expect(leaseSafety([{ name: "m1", version: "3.5.23" }, { name: "m2", version: "3.4.23" }])).toMatchObject({ earlyEndPossible: true, why: expect.stringContaining("m2 runs etcd 3.4.23") });
    expect(leaseSafety([{ name: "m1", version: "3.5.23" }, { name: "m2", version: null, problem: "refused" }])).toMatchObject({ earlyEndPossible: true, why: expect.stringContaining("m2") });
    expect(leaseSafety(null).earlyEndPossible).toBe(true);
    expect(leaseSafety([]).earlyEndPossible).toBe(true);
  });
  test("takeoverSafeAtMs: the full wait by default and when a lease can end early; none when it cannot", () => {
    expect(takeoverSafeAtMs(10_000, 5)).toBeGreaterThan(15_000);
    expect(takeoverSafeAtMs(10_000, 5, DEFAULT_TIME_BOUNDS, true)).toBe(takeoverSafeAtMs(10_000, 5));
    expect(takeoverSafeAtMs(10_000, 5, DEFAULT_TIME_BOUNDS, false)).toBe(10_000);
  });
});
